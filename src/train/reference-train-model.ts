// The whole llama forward and backward in plain float64 TypeScript, op by op
// (reference-ops.ts), with separate Q/K/V and gate/up products. Slow; the
// tests check the C model (cpu-train-model.ts) against it and it against
// finite differences.
import type { ModelShape, ParameterInfo, TrainModel } from "./train-model.ts";
import { checkBatch, headDim, initializeParameters, parameterCount, parameterNamed, parameterTable, trainingFlops } from "./parameters.ts";
import * as op from "./reference-ops.ts";

export class ReferenceTrainModel implements TrainModel {
  readonly parameters: readonly ParameterInfo[];
  readonly params: Float32Array;
  readonly grads: Float32Array;

  constructor(readonly shape: ModelShape) {
    this.parameters = parameterTable(shape);
    this.params = new Float32Array(parameterCount(this.parameters));
    this.grads = new Float32Array(this.params.length);
  }

  initialize(seed: number): void {
    initializeParameters(this.params, this.parameters, this.shape, seed);
  }

  forwardBackward(tokens: Int32Array, batch: number, seqLen: number, gradScale = 1): number {
    const grads = new Float64Array(this.params.length);
    const loss = this.run(Float64Array.from(this.params), tokens, batch, seqLen, grads, gradScale);
    for (let i = 0; i < grads.length; i++) this.grads[i]! += grads[i]!;
    return loss;
  }

  loss(tokens: Int32Array, batch: number, seqLen: number): number {
    return this.run(Float64Array.from(this.params), tokens, batch, seqLen, null, 1);
  }

  /** The mean loss at arbitrary float64 parameters (for finite differences). */
  lossAt(params: Float64Array, tokens: Int32Array, batch: number, seqLen: number): number {
    return this.run(params, tokens, batch, seqLen, null, 1);
  }

  /** The float64 gradient of the mean loss at `params`. */
  gradientAt(params: Float64Array, tokens: Int32Array, batch: number, seqLen: number): Float64Array {
    const grads = new Float64Array(params.length);
    this.run(params, tokens, batch, seqLen, grads, 1);
    return grads;
  }

  zeroGrads(): void {
    this.grads.fill(0);
  }

  flopsPerStep(batch: number, seqLen: number): number {
    return trainingFlops(this.shape, batch, seqLen);
  }

  /** Forward; with `grads`, backward too, adding d(mean loss * gradScale)/dparams into it. */
  private run(params: Float64Array, tokens: Int32Array, batch: number, seqLen: number, grads: Float64Array | null, gradScale: number): number {
    checkBatch(this.shape, tokens, batch, seqLen);
    const { width: d, heads, kvHeads, ffnWidth: ff, vocab, normEps: eps, ropeBase } = this.shape;
    const hd = headDim(this.shape), rows = batch * seqLen;
    const att: op.AttentionShape = { batch, seqLen, heads, kvHeads, headDim: hd };
    const view = (name: string, of: Float64Array) => {
      const info = parameterNamed(this.parameters, name);
      return of.subarray(info.offset, info.offset + info.size);
    };
    const w = (name: string) => view(name, params);
    const g = (name: string) => view(name, grads!);
    const inputs = new Int32Array(rows), targets = new Int32Array(rows);
    for (let b = 0; b < batch; b++) for (let t = 0; t < seqLen; t++) {
      inputs[b * seqLen + t] = tokens[b * (seqLen + 1) + t]!;
      targets[b * seqLen + t] = tokens[b * (seqLen + 1) + t + 1]!;
    }

    let x = op.embeddingForward(w("token_embd.weight"), inputs, rows, d);
    const saved = [];
    for (let l = 0; l < this.shape.layers; l++) {
      const p = (n: string) => w(`blk.${l}.${n}.weight`);
      const xIn = x;
      const norm1 = op.rmsnormForward(xIn, p("attn_norm"), rows, d, eps);
      const q = op.matmulForward(norm1.y, p("attn_q"), rows, d, heads * hd);
      const k = op.matmulForward(norm1.y, p("attn_k"), rows, d, kvHeads * hd);
      const v = op.matmulForward(norm1.y, p("attn_v"), rows, d, kvHeads * hd);
      op.rope(q, rows, seqLen, heads, hd, ropeBase, false);
      op.rope(k, rows, seqLen, kvHeads, hd, ropeBase, false);
      const attn = op.attentionForward(q, k, v, att);
      const proj = op.matmulForward(attn.out, p("attn_output"), rows, heads * hd, d);
      const xMid = xIn.map((value, i) => value + proj[i]!);
      const norm2 = op.rmsnormForward(xMid, p("ffn_norm"), rows, d, eps);
      const gate = op.matmulForward(norm2.y, p("ffn_gate"), rows, d, ff);
      const up = op.matmulForward(norm2.y, p("ffn_up"), rows, d, ff);
      const h = op.swigluForward(gate, up);
      const down = op.matmulForward(h, p("ffn_down"), rows, ff, d);
      x = xMid.map((value, i) => value + down[i]!);
      saved.push({ xIn, norm1, q, k, v, attn, xMid, norm2, gate, up, h });
    }
    const headName = this.shape.tiedEmbeddings ? "token_embd.weight" : "output.weight";
    const normF = op.rmsnormForward(x, w("output_norm.weight"), rows, d, eps);
    const logits = op.matmulForward(normF.y, w(headName), rows, d, vocab);
    const ce = op.crossEntropy(logits, targets, rows, vocab, gradScale / rows);
    const loss = ce.losses.reduce((a, b) => a + b, 0) / rows;
    if (!grads) return loss;

    const dNormF = new Float64Array(rows * d);
    op.matmulBackward(normF.y, w(headName), ce.dlogits, dNormF, g(headName), rows, d, vocab);
    const dx = new Float64Array(rows * d);
    op.rmsnormBackward(x, w("output_norm.weight"), normF.rstd, dNormF, dx, g("output_norm.weight"), rows, d);
    for (let l = this.shape.layers - 1; l >= 0; l--) {
      const s = saved[l]!;
      const p = (n: string) => w(`blk.${l}.${n}.weight`);
      const gp = (n: string) => g(`blk.${l}.${n}.weight`);
      // FFN: dx holds d(x_out); the residual passes it through to x_mid unchanged.
      const dh = new Float64Array(rows * ff);
      op.matmulBackward(s.h, p("ffn_down"), dx, dh, gp("ffn_down"), rows, ff, d);
      const dGate = new Float64Array(rows * ff), dUp = new Float64Array(rows * ff);
      op.swigluBackward(s.gate, s.up, dh, dGate, dUp);
      const dNorm2 = new Float64Array(rows * d);
      op.matmulBackward(s.norm2.y, p("ffn_gate"), dGate, dNorm2, gp("ffn_gate"), rows, d, ff);
      op.matmulBackward(s.norm2.y, p("ffn_up"), dUp, dNorm2, gp("ffn_up"), rows, d, ff);
      op.rmsnormBackward(s.xMid, p("ffn_norm"), s.norm2.rstd, dNorm2, dx, gp("ffn_norm"), rows, d);
      // Attention: dx now holds d(x_mid), which passes through to x_in.
      const dAttn = new Float64Array(rows * heads * hd);
      op.matmulBackward(s.attn.out, p("attn_output"), dx, dAttn, gp("attn_output"), rows, heads * hd, d);
      const dq = new Float64Array(s.q.length), dk = new Float64Array(s.k.length), dv = new Float64Array(s.v.length);
      op.attentionBackward(s.q, s.k, s.v, s.attn.probs, dAttn, dq, dk, dv, att);
      op.rope(dq, rows, seqLen, heads, hd, ropeBase, true);
      op.rope(dk, rows, seqLen, kvHeads, hd, ropeBase, true);
      const dNorm1 = new Float64Array(rows * d);
      op.matmulBackward(s.norm1.y, p("attn_q"), dq, dNorm1, gp("attn_q"), rows, d, heads * hd);
      op.matmulBackward(s.norm1.y, p("attn_k"), dk, dNorm1, gp("attn_k"), rows, d, kvHeads * hd);
      op.matmulBackward(s.norm1.y, p("attn_v"), dv, dNorm1, gp("attn_v"), rows, d, kvHeads * hd);
      op.rmsnormBackward(s.xIn, p("attn_norm"), s.norm1.rstd, dNorm1, dx, gp("attn_norm"), rows, d);
    }
    op.embeddingBackward(g("token_embd.weight"), inputs, dx, rows, d);
    return loss;
  }
}
