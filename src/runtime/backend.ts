// The op set every architecture is written against (DESIGN.md principle 1).
// A model file is a readable sequence of these calls; a backend (the plain
// TypeScript reference, the C kernels, later CUDA) implements them. Tensors are
// opaque handles: a model never reads their numbers, so a backend may keep
// them quantized, in its own layout, or on a device.
import { tensorBytes, typeLayout, type GGMLType, type TypeLayout } from "../gguf/types.ts";
import { PsionicError } from "../util/errors.ts";

/** The largest k Backend.topKRows takes (kernels/cuda/topk.cu TOPK_MAX). */
export const MAX_DEVICE_TOP_K = 128;

/** Backend.topKRows's answer: row r's candidates are entries [r * k, (r + 1) * k). */
export interface TopKRows {
  readonly k: number;
  readonly ids: Int32Array;
  /** The logits at those indices. */
  readonly values: Float32Array;
  /** Each row's log Z = log(sum of exp(logit)) over the whole row, for logprobs. */
  readonly logZ: Float64Array;
}

/** Activations: `rows` tokens by `width` values each. */
export interface Activation {
  readonly rows: number;
  readonly width: number;
}

/** A model weight as the backend holds it. `dims` are ggml order (ne0, the row length, first). */
export interface Weight {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: GGMLType;
}

/** One layer's K or V rows, one slot per position of the single sequence. */
export interface KVStorage {
  readonly capacity: number;
  readonly width: number;
  readonly precision: KVPrecision;
}

export type KVPrecision = "f16" | "f32";

/** ggml_rope_ext's parameters, as llama.cpp derives them from the file and context. */
export interface RopeParams {
  /** Rotated values per head (the rest pass through). */
  dims: number;
  /** normal: rotate pairs (2i, 2i+1); neox: rotate pairs (i, i + dims/2). */
  mode: "normal" | "neox";
  freqBase: number;
  /** 1 / scaling factor. */
  freqScale: number;
  /** YaRN: 0 off, 1 full ramp between the correction dims. */
  extFactor: number;
  /** Magnitude factor applied to cos and sin (YaRN's mscale before its own correction). */
  attnFactor: number;
  betaFast: number;
  betaSlow: number;
  /** The training context YaRN extends from. */
  originalContext: number;
  /** Per-pair frequency divisors (llama 3's rope_freqs.weight), dims/2 values. */
  freqFactors?: Weight;
}

export interface AttentionParams {
  heads: number;
  kvHeads: number;
  headDimK: number;
  headDimV: number;
  /** Multiplies q.k before the softmax. */
  scale: number;
  /** 0: full causal attention; n: a query at p sees keys at p-n+1 .. p. */
  window: number;
  /** Per-head logits that join each softmax denominator without a value (gpt-oss). */
  sinks?: Weight;
}

/** The expert stack of one MoE layer: matrices are 3-D, one slab per expert. */
export interface MoEWeights {
  router: Weight;
  routerBias?: Weight;
  gate: Weight;
  gateBias?: Weight;
  up: Weight;
  upBias?: Weight;
  down: Weight;
  downBias?: Weight;
}

export interface MoEParams {
  expertsUsed: number;
  /**
   * gpt-oss routing: top-k over the (biased) router logits, softmax over the k
   * selected; experts use the clamped SwiGLU x*sigmoid(alpha x) * (y + 1) with
   * x <= limit and |y| <= limit.
   */
  activation: { kind: "swiglu-oai"; alpha: number; limit: number };
}

export interface Backend {
  readonly name: string;

  /** Takes ownership of a weight from its GGUF bytes (the backend may decode or repack them). */
  loadWeight(name: string, type: GGMLType, dims: readonly number[], bytes: Uint8Array): Weight;
  /** Host values in, for tests and inputs. */
  upload(values: Float32Array, rows: number, width: number): Activation;
  /**
   * Host values out (row-major): a new array, or, with `into` (at least
   * rows x width values), written there and returned as its view of that
   * length, so a loop that reads logits every step (~800 KB for a 201k
   * vocabulary) allocates nothing (`DownloadBuffer`).
   */
  download(x: Activation, into?: Float32Array): Float32Array;
  /** A host array of `floats` values that download fills fastest (a GPU's page-locked memory, copied into directly). Optional. */
  hostBuffer?(floats: number): Float32Array;
  /**
   * Each row's largest value's index (ties to the lowest), computed where the
   * values are, so greedy decoding reads back one int per row, not the logits;
   * refuses a row holding NaN or +inf. Optional: without it, download and argmax.
   */
  argmaxRows?(x: Activation): Int32Array;
  /**
   * Each row's k best values (1 <= k <= MAX_DEVICE_TOP_K, at most the width)
   * and their indices, best first, ties to the lower index (the sampler's top-k
   * order), computed where the values are, so a sampled step reads back k pairs
   * per row instead of the logits. null when a row holds NaN or +inf: download
   * the logits then, and the sampler names the token. Optional.
   */
  topKRows?(x: Activation, k: number): TopKRows | null;

  /** Starts a forward step: buffers of earlier steps' activations may be reused from here (embed starts one too). */
  beginStep(): void;
  /** out[i] = table row tokens[i]. */
  embed(table: Weight, tokens: Int32Array): Activation;
  /** Selected rows of x, in the order given. */
  takeRows(x: Activation, rows: readonly number[]): Activation;
  /** The rows of each part, one part after another (all parts of one width). */
  concatRows(parts: readonly Activation[]): Activation;
  /** RMS-normalizes each group of `groupWidth` values (default: the whole row), then scales by `weight`. */
  rmsNorm(x: Activation, weight: Weight | null, eps: number, groupWidth?: number): Activation;
  /** x (rows x in) times w (ggml [in, out]) plus an optional bias of `out` values. */
  matmul(x: Activation, w: Weight, bias?: Weight): Activation;
  /** Rotates each head of `headDim` values of every row by its token's position. */
  rope(x: Activation, positions: Int32Array, headDim: number, params: RopeParams): Activation;
  add(a: Activation, b: Activation): Activation;
  /** silu(gate) * up. */
  swiglu(gate: Activation, up: Activation): Activation;
  /** Router, selected experts only, weighted sum. */
  moe(x: Activation, weights: MoEWeights, params: MoEParams): Activation;
  /**
   * Fused forms of two steps every layer takes, for backends where each op is
   * a launch (the same values as the steps one by one). Optional: the model
   * calls them through addThenNorm and addMoE, which fall back to the steps.
   */
  /** a + b, and that sum RMS-normalized (whole rows) and scaled by `weight`. */
  addRmsNorm?(a: Activation, b: Activation, weight: Weight | null, eps: number): { sum: Activation; normed: Activation };
  /** residual + moe(x). */
  moeAdd?(residual: Activation, x: Activation, weights: MoEWeights, params: MoEParams): Activation;
  /** residual + moe(x), and that sum RMS-normalized (whole rows) and scaled by `normWeight`: the next layer's norm in the same op. */
  moeAddRmsNorm?(residual: Activation, x: Activation, weights: MoEWeights, params: MoEParams, normWeight: Weight | null, eps: number): { sum: Activation; normed: Activation };
  /** x times each weight (plus its bias): q, k and v; gate and up. */
  matmuls?(x: Activation, products: readonly Product[]): Activation[];
  /** rope of q and of k, rows of the same tokens at the same positions. */
  ropeQK?(q: Activation, k: Activation, positions: Int32Array, headDim: number, params: RopeParams): { q: Activation; k: Activation };
  /** ropeQK, then attendSegments of the rotated rows: the rotation in the launch that stores k and v. */
  ropeAttendSegments?(q: Activation, k: Activation, v: Activation, positions: Int32Array, headDim: number, rope: RopeParams,
    segments: readonly AttentionSegment[], p: AttentionParams): Activation;

  allocKV(capacity: number, width: number, precision: KVPrecision): KVStorage;
  /** Writes the rows of x into slots firstSlot, firstSlot+1, ... */
  storeKV(cache: KVStorage, x: Activation, firstSlot: number): void;
  /**
   * Causal attention of each query row (at positions[i]) over the cached keys
   * and values in slots 0..positions[i]; the slot of a key is its position.
   */
  attention(q: Activation, k: KVStorage, v: KVStorage, positions: Int32Array, params: AttentionParams): Activation;
  /**
   * Several sequences in one batch: the rows of segment i (from rowStart, one
   * per position) of k and v go into its caches, then its queries attend over
   * them as `attention` does. Output rows line up with q's.
   */
  attendSegments(q: Activation, k: Activation, v: Activation, segments: readonly AttentionSegment[], params: AttentionParams): Activation;
}

/** a + b and its RMS norm, in one op where the backend has it. */
export function addThenNorm(b: Backend, a: Activation, c: Activation, weight: Weight | null, eps: number): { sum: Activation; normed: Activation } {
  if (b.addRmsNorm) return b.addRmsNorm(a, c, weight, eps);
  const sum = b.add(a, c);
  return { sum, normed: b.rmsNorm(sum, weight, eps) };
}

/** A weight and its optional bias, for matmuls. */
export interface Product {
  w: Weight;
  bias?: Weight;
}

/** x times each weight, in one op where the backend has it. */
export function products(b: Backend, x: Activation, list: readonly Product[]): Activation[] {
  return b.matmuls ? b.matmuls(x, list) : list.map((p) => b.matmul(x, p.w, p.bias));
}

/** rope of q and of k (the same tokens), in one op where the backend has it. */
export function ropeQK(b: Backend, q: Activation, k: Activation, positions: Int32Array, headDim: number, params: RopeParams): { q: Activation; k: Activation } {
  if (b.ropeQK) return b.ropeQK(q, k, positions, headDim, params);
  return { q: b.rope(q, positions, headDim, params), k: b.rope(k, positions, headDim, params) };
}

/** q and k rotated, then each segment's rows stored in its caches and attended, in one op where the backend has it. */
export function ropeThenAttend(b: Backend, q: Activation, k: Activation, v: Activation, positions: Int32Array, headDim: number, rope: RopeParams,
  segments: readonly AttentionSegment[], p: AttentionParams): Activation {
  if (b.ropeAttendSegments) return b.ropeAttendSegments(q, k, v, positions, headDim, rope, segments, p);
  const rotated = ropeQK(b, q, k, positions, headDim, rope);
  return b.attendSegments(rotated.q, rotated.k, v, segments, p);
}

/** residual + moe(x), in one op where the backend has it. */
export function addMoE(b: Backend, residual: Activation, x: Activation, weights: MoEWeights, params: MoEParams): Activation {
  return b.moeAdd ? b.moeAdd(residual, x, weights, params) : b.add(residual, b.moe(x, weights, params));
}

/** residual + moe(x), and that sum RMS-normalized and scaled by `normWeight`, in one op where the backend has it. */
export function addMoEThenNorm(b: Backend, residual: Activation, x: Activation, weights: MoEWeights, params: MoEParams, normWeight: Weight | null, eps: number): { sum: Activation; normed: Activation } {
  if (b.moeAddRmsNorm) return b.moeAddRmsNorm(residual, x, weights, params, normWeight, eps);
  const sum = addMoE(b, residual, x, weights, params);
  return { sum, normed: b.rmsNorm(sum, normWeight, eps) };
}

/** One sequence's rows of a batch and the caches they use. */
export interface AttentionSegment {
  kCache: KVStorage;
  vCache: KVStorage;
  /** Positions of the segment's rows (consecutive, starting where its cache ends). */
  positions: Int32Array;
  rowStart: number;
}

/** attendSegments from the single-sequence ops: copy each segment's rows out, attend, join. */
export function attendSegmentsByCopy(b: Backend, q: Activation, k: Activation, v: Activation, segments: readonly AttentionSegment[], params: AttentionParams): Activation {
  return b.concatRows(segments.map((s) => {
    const rows = Array.from(s.positions, (_, i) => s.rowStart + i);
    b.storeKV(s.kCache, b.takeRows(k, rows), s.positions[0]!);
    b.storeKV(s.vCache, b.takeRows(v, rows), s.positions[0]!);
    return b.attention(b.takeRows(q, rows), s.kCache, s.vCache, s.positions, params);
  }));
}

/** The common width of rows to concatenate; refuses an empty list or mixed widths. */
export function checkConcat(parts: readonly Activation[]): number {
  const first = parts[0];
  if (!first) throw new PsionicError("backend.shape", "concatRows: no parts");
  const bad = parts.find((p) => p.width !== first.width);
  if (bad) throw new PsionicError("backend.shape", `concatRows: rows of ${bad.width} after rows of ${first.width}`);
  return first.width;
}

/** The step of an activation whose buffer is never reused (uploads, buffers past an arena's budget). */
export const PERSISTENT = -1;

/**
 * `x` as one of `backend`'s activations (class `own`), refused when it is
 * another backend's, or when its buffer belongs to an earlier forward step
 * than `currentStep` and has been reused since.
 */
export function ownedActivation<T extends Activation & { readonly step: number }>(
  x: Activation, own: abstract new (...args: never[]) => T, backend: string, currentStep: number, op: string,
): T {
  if (!(x instanceof own)) throw new PsionicError("backend.foreign", `${op}: the activation does not belong to the ${backend} backend`);
  if (x.step !== PERSISTENT && x.step !== currentStep) {
    throw new PsionicError("backend.stale-activation", `${op}: this activation is from an earlier forward step; its buffer has been reused (download what you need before the next forward)`);
  }
  return x;
}

/** Where `download` writes x's values: a view of `into`, refused when too short, or a new array. */
export function downloadTarget(x: Activation, into: Float32Array | undefined): Float32Array {
  const count = x.rows * x.width;
  if (!into) return new Float32Array(count);
  if (into.length < count) throw new PsionicError("backend.shape", `download: ${x.rows}x${x.width} values do not fit a buffer of ${into.length}`);
  return into.subarray(0, count);
}

/** `download` of host-held values: a copy of them, into `into` when given (downloadTarget). */
export function downloadCopy(x: Activation, values: Float32Array, into: Float32Array | undefined): Float32Array {
  const out = downloadTarget(x, into);
  out.set(values);
  return out;
}

/**
 * One host buffer for a download repeated every step (logits), from the
 * backend's hostBuffer where it has one: grown when a download needs more,
 * never shrunk. What `read` returns stays valid until
 * its next call, so a caller keeping values past that copies them.
 */
export class DownloadBuffer {
  private buffer: Float32Array = new Float32Array(0);

  read(backend: Backend, x: Activation): Float32Array {
    const count = x.rows * x.width;
    if (this.buffer.length < count) this.buffer = backend.hostBuffer?.(count) ?? new Float32Array(count);
    return backend.download(x, this.buffer);
  }
}

/** Refuses two activations of different shapes (element-wise ops). */
export function checkSameShape(a: Activation, b: Activation, op: string): void {
  if (a.rows !== b.rows || a.width !== b.width) throw new PsionicError("backend.shape", `${op}: shapes ${a.rows}x${a.width} and ${b.rows}x${b.width} differ`);
}

/**
 * Checks a tensor's type (one `backend` has kernels for) and byte size against
 * its dims, naming it on refusal; returns its layout and byte size.
 */
export function checkWeightBytes(backend: string, supported: readonly GGMLType[], name: string, type: GGMLType, dims: readonly number[], bytes: Uint8Array): { layout: TypeLayout; total: number } {
  const layout = typeLayout(type);
  if (!layout) throw new PsionicError("model.bad-tensor", `tensor ${name}: unknown ggml type id ${type}`);
  if (!supported.includes(type)) {
    throw new PsionicError("backend.unsupported-type", `tensor ${name}: the ${backend} backend has no kernels for ${layout.name}; supported: ${supported.map((t) => typeLayout(t)!.name).join(", ")}`);
  }
  if (dims.length === 0 || dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) throw new PsionicError("model.bad-tensor", `tensor ${name}: dims [${dims.join(", ")}] are not positive integers`);
  if (dims[0]! % layout.blockSize !== 0) throw new PsionicError("model.bad-tensor", `tensor ${name}: rows of ${dims[0]} are not whole ${layout.name} blocks of ${layout.blockSize}`);
  const total = tensorBytes(layout, dims.reduce((a, b) => a * b, 1));
  if (bytes.byteLength !== total) throw new PsionicError("model.bad-tensor", `tensor ${name}: [${dims.join(", ")}] ${layout.name} needs ${total} bytes, got ${bytes.byteLength}`);
  return { layout, total };
}
