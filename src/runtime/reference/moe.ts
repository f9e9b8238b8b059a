// gpt-oss's mixture of experts in plain float math, as llama.cpp's
// build_moe_ffn runs it with SOFTMAX_WEIGHT gating and the SWIGLU_OAI
// activation: router logits (+ bias), top-k over the raw logits, softmax over
// the k chosen; each chosen expert's up, gate (+ biases), clamped SwiGLU,
// down (+ bias), scaled by its weight; the k results summed in expert order.
// Shapes: x is (tokens, d); gate/up are (d -> ff) per expert, stored as
// ggml [d, ff, experts]; down is (ff -> d) per expert, [ff, d, experts].
import type { MoEParams } from "../backend.ts";
import { matmulRows } from "./matmul.ts";
import type { RefWeight } from "./reference-backend.ts";

export interface RefMoEWeights {
  router: RefWeight;
  routerBias: Float32Array | null;
  gate: RefWeight;
  gateBias: Float32Array | null;
  up: RefWeight;
  upBias: Float32Array | null;
  down: RefWeight;
  downBias: Float32Array | null;
}

/** ggml_swiglu_oai: x = min(gate, limit), y = clamp(up, -limit, limit), x * sigmoid(alpha x) * (y + 1). */
export function swigluOai(gate: number, up: number, alpha: number, limit: number): number {
  const f = Math.fround;
  // ggml keeps alpha and limit as float op parameters and computes in float.
  const x = Math.min(gate, f(limit));
  const y = Math.min(Math.max(up, -f(limit)), f(limit));
  return f(f(x / f(1 + f(Math.exp(f(f(alpha) * -x))))) * f(y + 1));
}

/** The k largest entries' indices, largest first. */
export function topK(values: Float32Array, k: number): number[] {
  const order = Array.from(values.keys());
  order.sort((a, b) => values[b]! - values[a]! || a - b);
  return order.slice(0, k);
}

function expertSlab(w: RefWeight, expert: number): Float32Array {
  const size = w.dims[0]! * w.dims[1]!;
  return w.values.subarray(expert * size, (expert + 1) * size);
}

function expertBias(b: Float32Array | null, width: number, expert: number): Float32Array | null {
  return b ? b.subarray(expert * width, (expert + 1) * width) : null;
}

/** How a product's input is rounded for a weight (the backend's activation rounding). */
export type ProductInput = (values: Float32Array, width: number, w: RefWeight) => Float32Array;

export function referenceMoE(x: Float32Array, tokens: number, w: RefMoEWeights, p: MoEParams, productInput: ProductInput): Float32Array {
  const d = w.router.dims[0]!, experts = w.router.dims[1]!;
  const ff = w.up.dims[1]!;
  const { alpha, limit } = p.activation;
  const logits = matmulRows(productInput(x, d, w.router), tokens, w.router.values, d, experts, w.routerBias);
  const forUp = productInput(x, d, w.up), forGate = productInput(x, d, w.gate);
  const out = new Float32Array(tokens * d);
  for (let t = 0; t < tokens; t++) {
    const upRow = forUp.subarray(t * d, (t + 1) * d), gateRow = forGate.subarray(t * d, (t + 1) * d);
    const chosen = topK(logits.subarray(t * experts, (t + 1) * experts), p.expertsUsed);
    const chosenLogits = chosen.map((e) => logits[t * experts + e]!);
    // ggml_soft_max: float exps summed in double, then scaled by the float reciprocal.
    const max = Math.max(...chosenLogits);
    const exps = chosenLogits.map((l) => Math.fround(Math.exp(Math.fround(l - max))));
    const inverse = Math.fround(1 / exps.reduce((a, b) => a + b, 0));
    const sum = new Float32Array(d);
    chosen.forEach((e, i) => {
      const weightOfExpert = Math.fround(exps[i]! * inverse);
      const up = matmulRows(upRow, 1, expertSlab(w.up, e), d, ff, expertBias(w.upBias, ff, e));
      const gate = matmulRows(gateRow, 1, expertSlab(w.gate, e), d, ff, expertBias(w.gateBias, ff, e));
      const hidden = new Float32Array(ff);
      for (let j = 0; j < ff; j++) hidden[j] = swigluOai(gate[j]!, up[j]!, alpha, limit);
      const down = matmulRows(productInput(hidden, ff, w.down), 1, expertSlab(w.down, e), ff, d, expertBias(w.downBias, d, e));
      for (let j = 0; j < d; j++) sum[j] = sum[j]! + Math.fround(down[j]! * weightOfExpert);
    });
    out.set(sum, t * d);
  }
  return out;
}
