// The parameter table of a llama decoder: every tensor's GGUF name, ggml dims
// and place in the one parameter buffer (llm.c's fill_in_parameter_sizes), and
// the seeded initialisation both training models share.
//
// Order matters to the kernels: within a layer attn_q, attn_k and attn_v are
// adjacent, so together they are one [width, (heads + 2 kvHeads) headDim]
// weight and Q, K and V come out of one matrix multiply; ffn_gate and ffn_up
// likewise form one [width, 2 ffnWidth] weight.
import { refuse } from "../util/errors.ts";
import { seededRandom } from "../util/seeded-random.ts";
import type { ModelShape, ParameterInfo } from "./train-model.ts";

/** Per-head width; the shape must already be valid (see checkShape). */
export function headDim(shape: ModelShape): number {
  return shape.width / shape.heads;
}

/** Refuses a shape the kernels cannot run (code `train.bad-shape`). */
export function checkShape(shape: ModelShape): void {
  const sizes = ["layers", "width", "heads", "kvHeads", "ffnWidth", "vocab", "context"] as const;
  for (const key of sizes) {
    const value = shape[key];
    if (!Number.isSafeInteger(value) || value <= 0) refuse("train.bad-shape", `model shape: ${key} must be a positive integer, got ${value}`);
  }
  if (shape.width % shape.heads !== 0) refuse("train.bad-shape", `model shape: width ${shape.width} is not a multiple of heads ${shape.heads}`);
  if (shape.heads % shape.kvHeads !== 0) refuse("train.bad-shape", `model shape: heads ${shape.heads} is not a multiple of kvHeads ${shape.kvHeads}`);
  if (headDim(shape) % 2 !== 0) refuse("train.bad-shape", `model shape: head dim ${headDim(shape)} must be even for RoPE`);
  if (!(shape.ropeBase > 0)) refuse("train.bad-shape", `model shape: ropeBase must be positive, got ${shape.ropeBase}`);
  if (!(shape.normEps > 0)) refuse("train.bad-shape", `model shape: normEps must be positive, got ${shape.normEps}`);
}

/** Every parameter tensor of `shape`, in buffer order, with GGUF names and ggml dims ([in, out]). */
export function parameterTable(shape: ModelShape): ParameterInfo[] {
  checkShape(shape);
  const { width, heads, kvHeads, ffnWidth, vocab } = shape;
  const hd = headDim(shape);
  const table: ParameterInfo[] = [];
  let offset = 0;
  const add = (name: string, dims: number[], decay: boolean) => {
    const size = dims.reduce((a, b) => a * b, 1);
    table.push({ name, dims, offset, size, decay });
    offset += size;
  };
  add("token_embd.weight", [width, vocab], false);
  for (let l = 0; l < shape.layers; l++) {
    const blk = `blk.${l}`;
    add(`${blk}.attn_norm.weight`, [width], false);
    add(`${blk}.attn_q.weight`, [width, heads * hd], true);
    add(`${blk}.attn_k.weight`, [width, kvHeads * hd], true);
    add(`${blk}.attn_v.weight`, [width, kvHeads * hd], true);
    add(`${blk}.attn_output.weight`, [heads * hd, width], true);
    add(`${blk}.ffn_norm.weight`, [width], false);
    add(`${blk}.ffn_gate.weight`, [width, ffnWidth], true);
    add(`${blk}.ffn_up.weight`, [width, ffnWidth], true);
    add(`${blk}.ffn_down.weight`, [ffnWidth, width], true);
  }
  add("output_norm.weight", [width], false);
  if (!shape.tiedEmbeddings) add("output.weight", [width, vocab], true);
  return table;
}

/** Floats in the parameter buffer. */
export function parameterCount(table: readonly ParameterInfo[]): number {
  const last = table[table.length - 1]!;
  return last.offset + last.size;
}

/** The entry named `name`; a missing name is a programming error, not user input. */
export function parameterNamed(table: readonly ParameterInfo[], name: string): ParameterInfo {
  const info = table.find((p) => p.name === name);
  if (!info) throw new Error(`no parameter ${name}`);
  return info;
}

/**
 * Seeded initialisation (GPT-2's): norms 1, weights normal(0, 0.02), the two
 * projections that write into the residual stream (attn_output, ffn_down)
 * scaled by 1/sqrt(2 layers) so the stream's variance does not grow with depth.
 * Each tensor draws from its own stream (seed, tensor index), so the bytes of
 * one tensor do not depend on the sizes of the others.
 */
export function initializeParameters(params: Float32Array, table: readonly ParameterInfo[], shape: ModelShape, seed: number): void {
  const residualScale = 1 / Math.sqrt(2 * shape.layers);
  table.forEach((info, index) => {
    const view = params.subarray(info.offset, info.offset + info.size);
    if (info.dims.length === 1) return void view.fill(1);
    const projection = info.name.endsWith("attn_output.weight") || info.name.endsWith("ffn_down.weight");
    const std = 0.02 * (projection ? residualScale : 1);
    const random = seededRandom((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
    // Box-Muller, two values per pair of uniforms; 1 - u keeps the log finite.
    for (let i = 0; i < view.length; i += 2) {
      const radius = Math.sqrt(-2 * Math.log(1 - random())) * std;
      const angle = 2 * Math.PI * random();
      view[i] = radius * Math.cos(angle);
      if (i + 1 < view.length) view[i + 1] = radius * Math.sin(angle);
    }
  });
}

/** Multiply-adds of matrix products per token, forward only: every weight matrix, the output head included. */
function matmulParameters(shape: ModelShape): number {
  const hd = headDim(shape);
  const attention = shape.width * (shape.heads + 2 * shape.kvHeads) * hd + shape.heads * hd * shape.width;
  const ffn = 3 * shape.width * shape.ffnWidth;
  return shape.layers * (attention + ffn) + shape.width * shape.vocab;
}

/**
 * FLOPs of one forward+backward over batch x seqLen tokens: 6 per matmul
 * parameter per token (2 forward, 4 backward), plus attention's two T x T
 * products per head, counted over the causal half actually computed
 * (4 hd FLOPs per query-key pair forward, 8 backward). Norms, softmax and
 * the optimizer are not counted.
 */
export function trainingFlops(shape: ModelShape, batch: number, seqLen: number): number {
  const pairs = batch * seqLen * (seqLen + 1) / 2;
  return 6 * matmulParameters(shape) * batch * seqLen + 12 * headDim(shape) * shape.heads * shape.layers * pairs;
}

/** Refuses a micro-batch the model cannot take (code `train.bad-batch`, or `train.bad-token` for an id outside the vocabulary). */
export function checkBatch(shape: ModelShape, tokens: Int32Array, batch: number, seqLen: number): void {
  if (!Number.isSafeInteger(batch) || batch <= 0) refuse("train.bad-batch", `batch must be a positive integer, got ${batch}`);
  if (!Number.isSafeInteger(seqLen) || seqLen <= 0 || seqLen > shape.context) refuse("train.bad-batch", `seqLen must be an integer in [1, ${shape.context}], got ${seqLen}`);
  const need = batch * (seqLen + 1);
  if (tokens.length < need) refuse("train.bad-batch", `tokens holds ${tokens.length} ids, a batch of ${batch} x ${seqLen + 1} needs ${need}`);
  for (let i = 0; i < need; i++) {
    const id = tokens[i]!;
    if (id < 0 || id >= shape.vocab) refuse("train.bad-token", `token ${id} at index ${i} is outside the vocabulary [0, ${shape.vocab})`);
  }
}
