// The llama decoder trained on the CPU: the TrainModel the training loop
// runs, each op a C kernel (kernels/cpu/train_*.c), in llm.c's order:
// forward, then backward adding into `grads`.
//
// Layout choices that make the products bigger and fewer: attn_q, attn_k and
// attn_v sit next to each other in the parameter buffer (parameters.ts), so
// one product gives each token's row [q | k | v], and one product of the
// backward gives dX summed over all three; ffn_gate and ffn_up likewise. The
// residual adds are products that accumulate into a copy of the stream.
import { availableParallelism } from "node:os";
import type { ModelShape, ParameterInfo, TrainModel } from "./train-model.ts";
import { checkBatch, headDim, initializeParameters, parameterCount, parameterNamed, parameterTable, trainingFlops } from "./parameters.ts";
import { TrainKernels } from "./train-kernels.ts";

export interface CpuTrainModelOptions {
  /** Threads for every kernel (default: the machine's cores); 0 runs the plain reference kernels. */
  threads?: number;
}

/** The activations one (batch, seqLen) needs, allocated once and reused every step. */
class Activations {
  readonly rows: number;
  readonly inputs: Int32Array;
  readonly targets: Int32Array;
  /** residual[l] is the stream entering layer l; residual[layers] enters the output norm. */
  readonly residual: Float32Array[];
  readonly layers: { xn1: Float32Array; rstd1: Float32Array; qkv: Float32Array; attn: Float32Array; probs: Float32Array;
                     xMid: Float32Array; xn2: Float32Array; rstd2: Float32Array; gu: Float32Array; h: Float32Array }[];
  readonly xnFinal: Float32Array;
  readonly rstdFinal: Float32Array;
  /** Logits, overwritten by their gradient in a training step. */
  readonly logits: Float32Array;
  readonly losses: Float32Array;
  readonly cos: Float32Array;
  readonly sin: Float32Array;
  // backward scratch
  readonly dResidual: Float32Array;
  readonly dNormed: Float32Array;
  readonly dQkv: Float32Array;
  readonly dAttn: Float32Array;
  readonly dGu: Float32Array;
  readonly dH: Float32Array;

  constructor(shape: ModelShape, readonly batch: number, readonly seqLen: number, kernels: TrainKernels) {
    const { width: d, heads, kvHeads, ffnWidth: ff, vocab } = shape;
    const hd = headDim(shape), n = batch * seqLen, qkvWidth = (heads + 2 * kvHeads) * hd;
    this.rows = n;
    this.inputs = new Int32Array(n);
    this.targets = new Int32Array(n);
    this.residual = Array.from({ length: shape.layers + 1 }, () => new Float32Array(n * d));
    this.layers = Array.from({ length: shape.layers }, () => ({
      xn1: new Float32Array(n * d), rstd1: new Float32Array(n), qkv: new Float32Array(n * qkvWidth),
      attn: new Float32Array(n * heads * hd), probs: new Float32Array(batch * heads * seqLen * seqLen),
      xMid: new Float32Array(n * d), xn2: new Float32Array(n * d), rstd2: new Float32Array(n),
      gu: new Float32Array(n * 2 * ff), h: new Float32Array(n * ff),
    }));
    this.xnFinal = new Float32Array(n * d);
    this.rstdFinal = new Float32Array(n);
    this.logits = new Float32Array(n * vocab);
    this.losses = new Float32Array(n);
    this.cos = new Float32Array(seqLen * hd / 2);
    this.sin = new Float32Array(seqLen * hd / 2);
    kernels.ropeTable(this.cos, this.sin, seqLen, hd, shape.ropeBase);
    this.dResidual = new Float32Array(n * d);
    this.dNormed = new Float32Array(n * d);
    this.dQkv = new Float32Array(n * qkvWidth);
    this.dAttn = new Float32Array(n * heads * hd);
    this.dGu = new Float32Array(n * 2 * ff);
    this.dH = new Float32Array(n * ff);
  }
}

/** Views of one layer's weights (or gradients) in a parameter-layout buffer. */
function layerViews(table: readonly ParameterInfo[], buffer: Float32Array, layer: number) {
  const span = (first: string, last: string) => {
    const a = parameterNamed(table, `blk.${layer}.${first}.weight`), b = parameterNamed(table, `blk.${layer}.${last}.weight`);
    return buffer.subarray(a.offset, b.offset + b.size);
  };
  return {
    attnNorm: span("attn_norm", "attn_norm"), qkv: span("attn_q", "attn_v"), output: span("attn_output", "attn_output"),
    ffnNorm: span("ffn_norm", "ffn_norm"), gateUp: span("ffn_gate", "ffn_up"), down: span("ffn_down", "ffn_down"),
  };
}

function modelViews(table: readonly ParameterInfo[], buffer: Float32Array, shape: ModelShape) {
  const view = (name: string) => {
    const info = parameterNamed(table, name);
    return buffer.subarray(info.offset, info.offset + info.size);
  };
  return {
    embedding: view("token_embd.weight"),
    layers: Array.from({ length: shape.layers }, (_, l) => layerViews(table, buffer, l)),
    outputNorm: view("output_norm.weight"),
    head: view(shape.tiedEmbeddings ? "token_embd.weight" : "output.weight"),
  };
}

export class CpuTrainModel implements TrainModel {
  readonly parameters: readonly ParameterInfo[];
  readonly params: Float32Array;
  readonly grads: Float32Array;
  readonly threads: number;
  private readonly kernels: TrainKernels;
  private readonly weights: ReturnType<typeof modelViews>;
  private readonly gradients: ReturnType<typeof modelViews>;
  private activations: Activations | undefined;

  constructor(readonly shape: ModelShape, options: CpuTrainModelOptions = {}) {
    this.parameters = parameterTable(shape);
    this.params = new Float32Array(parameterCount(this.parameters));
    this.grads = new Float32Array(this.params.length);
    this.threads = options.threads ?? availableParallelism();
    this.kernels = new TrainKernels(this.threads);
    this.weights = modelViews(this.parameters, this.params, shape);
    this.gradients = modelViews(this.parameters, this.grads, shape);
  }

  initialize(seed: number): void {
    initializeParameters(this.params, this.parameters, this.shape, seed);
  }

  forwardBackward(tokens: Int32Array, batch: number, seqLen: number, gradScale = 1): number {
    const act = this.prepare(tokens, batch, seqLen);
    const loss = this.forward(act, gradScale);
    this.backward(act);
    return loss;
  }

  loss(tokens: Int32Array, batch: number, seqLen: number): number {
    return this.forward(this.prepare(tokens, batch, seqLen), null);
  }

  zeroGrads(): void {
    this.grads.fill(0);
  }

  flopsPerStep(batch: number, seqLen: number): number {
    return trainingFlops(this.shape, batch, seqLen);
  }

  private prepare(tokens: Int32Array, batch: number, seqLen: number): Activations {
    checkBatch(this.shape, tokens, batch, seqLen);
    if (this.activations?.batch !== batch || this.activations.seqLen !== seqLen) {
      this.activations = undefined; // let the old buffers go before the new ones are made
      this.activations = new Activations(this.shape, batch, seqLen, this.kernels);
    }
    const act = this.activations;
    for (let b = 0; b < batch; b++) {
      act.inputs.set(tokens.subarray(b * (seqLen + 1), b * (seqLen + 1) + seqLen), b * seqLen);
      act.targets.set(tokens.subarray(b * (seqLen + 1) + 1, (b + 1) * (seqLen + 1)), b * seqLen);
    }
    return act;
  }

  /** The mean loss; with a gradScale, the logits become d(mean loss * gradScale)/dlogits. */
  private forward(act: Activations, gradScale: number | null): number {
    const k = this.kernels, w = this.weights;
    const { width: d, heads, kvHeads, ffnWidth: ff, vocab, normEps: eps } = this.shape;
    const hd = headDim(this.shape), n = act.rows, T = act.seqLen, qkvWidth = (heads + 2 * kvHeads) * hd, attnWidth = heads * hd;
    k.embeddingForward(w.embedding, act.inputs, act.residual[0]!, n, d, vocab);
    w.layers.forEach((lw, l) => {
      const a = act.layers[l]!, x = act.residual[l]!, next = act.residual[l + 1]!;
      k.rmsnormForward(x, lw.attnNorm, a.xn1, a.rstd1, n, d, eps);
      k.sgemm(false, true, n, qkvWidth, d, a.xn1, d, lw.qkv, d, a.qkv, qkvWidth, false);
      k.rope(false, a.qkv, n, T, heads, hd, qkvWidth, act.cos, act.sin);
      k.rope(false, a.qkv.subarray(attnWidth), n, T, kvHeads, hd, qkvWidth, act.cos, act.sin);
      k.attentionForward(a.qkv, a.attn, a.probs, act.batch, T, heads, kvHeads, hd);
      a.xMid.set(x);
      k.sgemm(false, true, n, d, attnWidth, a.attn, attnWidth, lw.output, attnWidth, a.xMid, d, true);
      k.rmsnormForward(a.xMid, lw.ffnNorm, a.xn2, a.rstd2, n, d, eps);
      k.sgemm(false, true, n, 2 * ff, d, a.xn2, d, lw.gateUp, d, a.gu, 2 * ff, false);
      k.swigluForward(a.gu, a.h, n, ff);
      next.set(a.xMid);
      k.sgemm(false, true, n, d, ff, a.h, ff, lw.down, ff, next, d, true);
    });
    k.rmsnormForward(act.residual[this.shape.layers]!, w.outputNorm, act.xnFinal, act.rstdFinal, n, d, eps);
    k.sgemm(false, true, n, vocab, d, act.xnFinal, d, w.head, d, act.logits, vocab, false);
    k.crossEntropy(act.logits, act.targets, act.losses, gradScale === null ? null : act.logits, n, vocab, (gradScale ?? 1) / n);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += act.losses[i]!;
    return sum / n;
  }

  /** Adds every parameter's gradient into `grads`; act.logits holds dlogits. */
  private backward(act: Activations): void {
    const k = this.kernels, w = this.weights, g = this.gradients;
    const { width: d, heads, kvHeads, ffnWidth: ff, vocab } = this.shape;
    const hd = headDim(this.shape), n = act.rows, T = act.seqLen, qkvWidth = (heads + 2 * kvHeads) * hd, attnWidth = heads * hd;
    const dx = act.dResidual, dxn = act.dNormed;
    // Output head: dX = dlogits . W (NN), dW += dlogits^T . X (TN).
    k.sgemm(false, false, n, d, vocab, act.logits, vocab, w.head, d, dxn, d, false);
    k.sgemm(true, false, vocab, d, n, act.logits, vocab, act.xnFinal, d, g.head, d, true);
    dx.fill(0);
    k.rmsnormBackward(act.residual[this.shape.layers]!, w.outputNorm, act.rstdFinal, dxn, dx, g.outputNorm, n, d);
    for (let l = this.shape.layers - 1; l >= 0; l--) {
      const a = act.layers[l]!, lw = w.layers[l]!, lg = g.layers[l]!;
      // FFN; dx is d(layer output), which the residual passes to xMid as is.
      k.sgemm(false, false, n, ff, d, dx, d, lw.down, ff, act.dH, ff, false);
      k.sgemm(true, false, d, ff, n, dx, d, a.h, ff, lg.down, ff, true);
      k.swigluBackward(a.gu, act.dH, act.dGu, n, ff);
      k.sgemm(false, false, n, d, 2 * ff, act.dGu, 2 * ff, lw.gateUp, d, dxn, d, false);
      k.sgemm(true, false, 2 * ff, d, n, act.dGu, 2 * ff, a.xn2, d, lg.gateUp, d, true);
      k.rmsnormBackward(a.xMid, lw.ffnNorm, a.rstd2, dxn, dx, lg.ffnNorm, n, d);
      // Attention; dx is now d(xMid), which the residual passes to the layer input.
      k.sgemm(false, false, n, attnWidth, d, dx, d, lw.output, attnWidth, act.dAttn, attnWidth, false);
      k.sgemm(true, false, d, attnWidth, n, dx, d, a.attn, attnWidth, lg.output, attnWidth, true);
      k.attentionBackward(a.qkv, a.probs, act.dAttn, act.dQkv, act.batch, T, heads, kvHeads, hd);
      k.rope(true, act.dQkv, n, T, heads, hd, qkvWidth, act.cos, act.sin);
      k.rope(true, act.dQkv.subarray(attnWidth), n, T, kvHeads, hd, qkvWidth, act.cos, act.sin);
      k.sgemm(false, false, n, d, qkvWidth, act.dQkv, qkvWidth, lw.qkv, d, dxn, d, false);
      k.sgemm(true, false, qkvWidth, d, n, act.dQkv, qkvWidth, a.xn1, d, lg.qkv, d, true);
      k.rmsnormBackward(act.residual[l]!, lw.attnNorm, a.rstd1, dxn, dx, lg.attnNorm, n, d);
    }
    k.embeddingBackward(g.embedding, act.inputs, dx, n, d, vocab);
  }
}
