// gpt-oss's mixture of experts on the CPU kernels, as llama.cpp's
// build_moe_ffn runs it (SOFTMAX_WEIGHT gating, SWIGLU_OAI): router logits
// plus bias, top-k over the raw logits and a softmax over the k chosen (the
// routing kernel), then for each expert that any token chose, its tokens
// gathered into one batch and multiplied by that expert's slab of the 3-D
// weights only (for one token: k small matrix-vector products), biases added,
// the clamped SwiGLU, the down projection; finally each token's k results
// scaled by their weights and summed in selection order.
// Shapes: x (tokens, d); gate/up ggml [d, ff, experts]; down [ff, d, experts].
import { GGMLType, typeLayout } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";
import type { MoEParams } from "../backend.ts";
import { project, type MatrixBytes } from "./cpu-products.ts";
import type { CpuWeight } from "./cpu-tensors.ts";
import { EXPERT_ORDERS } from "./matmul.ts";
import { getRows, routeExperts, swigluOai, weightedExpertSum } from "./ops.ts";

// ggml computes the clamped SwiGLU with scalar expf, which the plain C kernel
// reproduces bit for bit; the vectorized one (its own exp) is within 2e-6 and
// that is enough to move a Q8 activation rounding. It is k * ff values per token.
const SWIGLU_OAI_AS_GGML = { reference: true } as const;

export interface CpuMoEWeights {
  router: CpuWeight; routerBias?: CpuWeight;
  gate: CpuWeight; gateBias?: CpuWeight;
  up: CpuWeight; upBias?: CpuWeight;
  down: CpuWeight; downBias?: CpuWeight;
}

export interface MoEWorkspace {
  threads: number;
  /** Scratch floats that live until the op returns. */
  scratch(n: number): Float32Array;
}

/**
 * Expert `e`'s matrix within a 3-D weight [in, out, experts], multiplied as
 * llama.cpp multiplies experts (EXPERT_ORDERS) or in the weight's repacked layout.
 */
function expertMatrix(w: CpuWeight, e: number): MatrixBytes {
  const inWidth = w.dims[0]!, outWidth = w.dims[1]!;
  const layout = typeLayout(w.type)!;
  const slab = (inWidth / layout.blockSize) * layout.typeSize * outWidth;
  const kernelType = w.kernelType ?? EXPERT_ORDERS.get(w.type);
  return { type: w.type, bytes: w.bytes.subarray(e * slab, (e + 1) * slab), inWidth, outWidth, kernelType };
}

function expertBias(b: CpuWeight | undefined, width: number, e: number): Float32Array | null {
  return b ? b.vector().subarray(e * width, (e + 1) * width) : null;
}

function checkExperts(w: CpuMoEWeights, d: number, experts: number, k: number): number {
  const ff = w.up.dims[1]!;
  const same = (t: CpuWeight, dims: number[]) => t.dims.length === dims.length && t.dims.every((v, i) => v === dims[i]);
  if (!same(w.gate, [d, ff, experts]) || !same(w.up, [d, ff, experts]) || !same(w.down, [ff, d, experts])) {
    throw new PsionicError("backend.shape", `moe: experts ${w.gate.name} [${w.gate.dims}], ${w.up.name} [${w.up.dims}], ${w.down.name} [${w.down.dims}] do not fit d=${d}, ${experts} experts`);
  }
  if (!Number.isInteger(k) || k < 1 || k > experts) throw new PsionicError("backend.shape", `moe: ${k} experts per token out of ${experts}`);
  return ff;
}

/** The MoE block's output (tokens, d) into `out`. */
export function cpuMoE(x: Float32Array, tokens: number, w: CpuMoEWeights, p: MoEParams, ws: MoEWorkspace, out: Float32Array): Float32Array {
  const d = w.router.dims[0]!, experts = w.router.dims[1]!, k = p.expertsUsed;
  const ff = checkExperts(w, d, experts, k);
  const { alpha, limit } = p.activation;
  const router: MatrixBytes = { type: w.router.type, bytes: w.router.bytes, inWidth: d, outWidth: experts };
  const logits = project(router, x, tokens, ws.scratch(tokens * experts), ws.threads, w.routerBias?.vector());
  const { ids, weights } = routeExperts(logits, experts, k, "topk-softmax");
  const expertOut = ws.scratch(tokens * k * d);

  if (tokens === 1) {
    const up = ws.scratch(ff), gate = ws.scratch(ff), hidden = ws.scratch(ff);
    for (let slot = 0; slot < k; slot++) {
      const e = ids[slot]!;
      project(expertMatrix(w.up, e), x, 1, up, ws.threads, expertBias(w.upBias, ff, e));
      project(expertMatrix(w.gate, e), x, 1, gate, ws.threads, expertBias(w.gateBias, ff, e));
      swigluOai(gate, up, { rows: 1, cols: ff }, alpha, limit, hidden, SWIGLU_OAI_AS_GGML);
      project(expertMatrix(w.down, e), hidden, 1, expertOut.subarray(slot * d, (slot + 1) * d), ws.threads, expertBias(w.downBias, d, e));
    }
  } else {
    // Which (token, slot) pairs chose each expert, in token order.
    const chosenBy: number[][] = Array.from({ length: experts }, () => []);
    for (let i = 0; i < tokens * k; i++) chosenBy[ids[i]!]!.push(i);
    const xBytes = new Uint8Array(x.buffer, x.byteOffset, tokens * d * 4);
    const up = ws.scratch(tokens * ff), gate = ws.scratch(tokens * ff), hidden = ws.scratch(tokens * ff), down = ws.scratch(tokens * d);
    const gathered = ws.scratch(tokens * d);
    for (let e = 0; e < experts; e++) {
      const pairs = chosenBy[e]!;
      const n = pairs.length;
      if (n === 0) continue;
      const rows = Int32Array.from(pairs, (i) => Math.floor(i / k));
      const xe = getRows(GGMLType.F32, xBytes, tokens, d, rows, gathered.subarray(0, n * d));
      const upE = project(expertMatrix(w.up, e), xe, n, up.subarray(0, n * ff), ws.threads, expertBias(w.upBias, ff, e));
      const gateE = project(expertMatrix(w.gate, e), xe, n, gate.subarray(0, n * ff), ws.threads, expertBias(w.gateBias, ff, e));
      const hiddenE = swigluOai(gateE, upE, { rows: n, cols: ff }, alpha, limit, hidden.subarray(0, n * ff), SWIGLU_OAI_AS_GGML);
      const downE = project(expertMatrix(w.down, e), hiddenE, n, down.subarray(0, n * d), ws.threads, expertBias(w.downBias, d, e));
      for (let j = 0; j < n; j++) expertOut.set(downE.subarray(j * d, (j + 1) * d), pairs[j]! * d);
    }
  }
  return weightedExpertSum(expertOut, weights, k, d, out);
}
