// Typed wrappers over the non-matmul CPU kernels (kernels/cpu/ops_*.c): RMSNorm,
// RoPE, attention over a KV cache, softmax, SiLU/SwiGLU, MoE routing, embedding
// lookup and KV stores. Every wrapper checks its buffer sizes before the call,
// so a wrong shape is a PsionicError naming it, never an out-of-bounds read in C.
// `{ reference: true }` runs the plain C reference instead of the fast kernel.
import { ptr, type Pointer } from "bun:ffi";
import { cpuKernels } from "../../../ffi/cpu.ts";
import { GGMLType, typeLayout } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";

export interface OpOptions {
  /** Run the plain C reference (`psi_*_ref`) instead of the fast kernel. */
  reference?: boolean;
  /** Threads for the ops that split work (rope, attention); 1 by default. */
  threads?: number;
}

/** Status codes of kernels/cpu/ops.h and quant.h. */
const STATUS: Record<number, string> = {
  [-1]: "the tensor type is not supported by the codecs",
  [-2]: "the row length is not a whole number of blocks",
  [-10]: "a size is out of range or inconsistent",
  [-11]: "a row or expert id is out of range",
  [-12]: "the type or mode is not supported",
};

function check(op: string, status: number): void {
  if (status !== 0) throw new PsionicError("ops.kernel-refused", `${op}: ${STATUS[status] ?? `kernel status ${status}`}`);
}

function need(op: string, what: string, have: number, needed: number): void {
  if (have < needed) throw new PsionicError("ops.bad-shape", `${op}: ${what} holds ${have} values, needs ${needed}`);
}

function positiveInt(op: string, what: string, value: number, allowZero = false): void {
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new PsionicError("ops.bad-shape", `${op}: ${what} must be a ${allowZero ? "non-negative" : "positive"} integer, got ${value}`);
  }
}

const threadsOf = (options?: OpOptions) => Math.max(1, Math.min(64, Math.floor(options?.threads ?? 1)));

/** y = x / sqrt(mean(x^2) + eps) (* weight), per row of n values; ggml's rounding (double sum of float squares). */
export function rmsNorm(x: Float32Array, n: number, eps: number, weight?: Float32Array | null, out?: Float32Array, options?: OpOptions): Float32Array {
  positiveInt("rmsNorm", "row length", n);
  if (x.length % n !== 0) throw new PsionicError("ops.bad-shape", `rmsNorm: ${x.length} values is not a whole number of rows of ${n}`);
  if (!(eps >= 0)) throw new PsionicError("ops.bad-shape", `rmsNorm: eps must be >= 0, got ${eps}`);
  if (weight) need("rmsNorm", "weight", weight.length, n);
  const y = out ?? new Float32Array(x.length);
  need("rmsNorm", "out", y.length, x.length);
  if (x.length === 0) return y;
  const lib = cpuKernels();
  const call = options?.reference ? lib.psi_rms_norm_ref : lib.psi_rms_norm;
  check("rmsNorm", call(ptr(x), weight ? ptr(weight) : null, ptr(y), x.length / n, n, eps));
  return y;
}

export type RopeMode = "normal" | "neox";

/** RoPE hyper-parameters as ggml_rope_ext takes them (llama.cpp reads them from GGUF metadata). */
export interface RopeParams {
  nDims: number;
  mode: RopeMode;
  freqBase: number;
  freqScale?: number; // 1 = no interpolation
  nCtxOrig?: number; // training context, for YaRN's correction dims
  extFactor?: number; // 0 = YaRN off
  attnFactor?: number; // 1 by default
  betaFast?: number; // 32 by default
  betaSlow?: number; // 1 by default
  freqFactors?: Float32Array | null; // nDims/2 per-pair divisors (llama3 rope_freqs)
}

const ROPE_MODE: Record<RopeMode, number> = { normal: 0, neox: 2 };

// The kernels take their parameters as one struct (ops.h). One block per
// struct is reused for every call (a call reads it synchronously and each
// Worker has its own module), written through typed views: no allocation and
// no BigInt per call, which is most of what a small op costs in TypeScript.
const ropeBlock = new ArrayBuffer(48);
const ropeInts = new Int32Array(ropeBlock), ropeFloats = new Float32Array(ropeBlock), ropeWords = new Uint32Array(ropeBlock);
const ropeBlockPtr = ptr(ropeBlock);

/** A pointer as two little-endian 32-bit words at word `at` (pointers are below 2^53). */
function setPointer(words: Uint32Array, at: number, pointer: number): void {
  words[at] = pointer % 4294967296;
  words[at + 1] = Math.floor(pointer / 4294967296);
}

function writeRopeParams(p: RopeParams): Pointer {
  ropeInts[0] = p.nDims;
  ropeInts[1] = ROPE_MODE[p.mode];
  ropeInts[2] = p.nCtxOrig ?? 4096;
  ropeInts[3] = 0;
  ropeFloats[4] = p.freqBase;
  ropeFloats[5] = p.freqScale ?? 1;
  ropeFloats[6] = p.extFactor ?? 0;
  ropeFloats[7] = p.attnFactor ?? 1;
  ropeFloats[8] = p.betaFast ?? 32;
  ropeFloats[9] = p.betaSlow ?? 1;
  setPointer(ropeWords, 10, p.freqFactors && p.freqFactors.length > 0 ? ptr(p.freqFactors) : 0);
  return ropeBlockPtr;
}

/** Rotates x, laid out (tokens, nHead, headDim), by each token's position. `out` may be x. */
export function rope(x: Float32Array, positions: Int32Array, nHead: number, headDim: number, params: RopeParams, out?: Float32Array, options?: OpOptions): Float32Array {
  positiveInt("rope", "nHead", nHead);
  positiveInt("rope", "headDim", headDim);
  const nTokens = positions.length;
  need("rope", "x", x.length, nTokens * nHead * headDim);
  if (!(params.mode in ROPE_MODE)) throw new PsionicError("ops.unsupported", `rope: mode ${params.mode} is not one of normal, neox`);
  if (!Number.isInteger(params.nDims) || params.nDims <= 0 || params.nDims % 2 !== 0 || params.nDims > headDim || params.nDims > 4096) {
    throw new PsionicError("ops.bad-shape", `rope: nDims ${params.nDims} must be even, positive, at most headDim ${headDim} and 4096`);
  }
  if (params.freqFactors) need("rope", "freqFactors", params.freqFactors.length, params.nDims / 2);
  const y = out ?? new Float32Array(nTokens * nHead * headDim);
  need("rope", "out", y.length, nTokens * nHead * headDim);
  if (nTokens === 0) return y;
  const lib = cpuKernels();
  const block = writeRopeParams(params);
  const status = options?.reference
    ? lib.psi_rope_ref(ptr(x), ptr(y), ptr(positions), nTokens, nHead, headDim, block)
    : lib.psi_rope(ptr(x), ptr(y), ptr(positions), nTokens, nHead, headDim, block, threadsOf(options));
  check("rope", status);
  return y;
}

/** ggml's attention precision paths (see kernels/cpu/ops.h): llama.cpp uses "ggml-vec" for batches under 64 tokens. */
export type AttentionPrecision = "ggml-vec" | "f32";

/**
 * The path llama.cpp's CPU flash attention takes for a batch (ggml-cpu ops.cpp,
 * ggml_compute_forward_flash_attn_ext_f16): the tiled F32 path needs 64+ query
 * tokens, an F32/F16 cache and a V head size that fills whole SIMD vectors
 * (16 floats in the AVX-512 build llama.cpp picks on these machines).
 */
export function ggmlAttentionPrecision(nTokens: number, headDimV: number): AttentionPrecision {
  return nTokens >= 64 && headDimV % 16 === 0 ? "f32" : "ggml-vec";
}

/**
 * The chunk count of ggml's split-KV decode for one query token: llama.cpp splits
 * the cache view (its padded n_kv) across its threads once the view holds 512+
 * cells and merges the partial softmaxes, which changes the rounding; 0 when it
 * does not split.
 */
export function ggmlDecodeChunks(nTokens: number, nKv: number, threads: number): number {
  return nTokens === 1 && nKv >= 512 && threads > 1 ? threads : 0;
}

export interface AttentionArgs {
  /** (nTokens, nHead, headDim) */
  q: Float32Array;
  /** (nKv cells, kStride) F16 bits or F32; each cell holds nHeadKv * headDim values first */
  k: Uint16Array | Float32Array;
  v: Uint16Array | Float32Array;
  /** one position per query token */
  qPositions: Int32Array;
  /** one position per cache cell (negative = empty); omitted: cell i holds position i */
  kvPositions?: Int32Array;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  headDimV?: number;
  nKv: number;
  kStride?: number;
  vStride?: number;
  /** 1.0f / sqrtf(headDim) by default (defaultAttentionScale) */
  scale?: number;
  /** 0 or omitted: no sliding window */
  window?: number;
  /** nHead sink logits (gpt-oss) */
  sinks?: Float32Array | null;
  precision?: AttentionPrecision;
  /** One query token, "ggml-vec": split the cells into this many chunks and merge them as
   * ggml's split-KV decode does with that many threads (see ggmlDecodeChunks); 0: no split. */
  kvChunks?: number;
  out?: Float32Array;
}

const attentionBlock = new ArrayBuffer(120);
const attentionWords = new Uint32Array(attentionBlock), attentionInts = new Int32Array(attentionBlock), attentionFloats = new Float32Array(attentionBlock);
const attentionBlockPtr = ptr(attentionBlock);

/** llama.cpp's kq_scale, 1.0f / sqrtf(headDim), rounded in float as it is there. */
export function defaultAttentionScale(headDim: number): number {
  return Math.fround(1 / Math.fround(Math.sqrt(headDim)));
}

/** Attention of the query tokens over the cache; returns (nTokens, nHead, headDimV). */
export function attention(a: AttentionArgs, options?: OpOptions): Float32Array {
  const op = "attention";
  const headDimV = a.headDimV ?? a.headDim;
  positiveInt(op, "nHead", a.nHead);
  positiveInt(op, "nHeadKv", a.nHeadKv);
  positiveInt(op, "headDim", a.headDim);
  positiveInt(op, "headDimV", headDimV);
  positiveInt(op, "nKv", a.nKv, true);
  if (a.nHead % a.nHeadKv !== 0) throw new PsionicError("ops.bad-shape", `${op}: nHead ${a.nHead} is not a multiple of nHeadKv ${a.nHeadKv}`);
  if (a.headDim > 1024 || headDimV > 1024) throw new PsionicError("ops.bad-shape", `${op}: head dims above 1024 are not supported (got ${a.headDim}, ${headDimV})`);
  const isF16 = a.k instanceof Uint16Array;
  if ((a.v instanceof Uint16Array) !== isF16) throw new PsionicError("ops.bad-shape", `${op}: K and V caches must have the same type`);
  const kStride = a.kStride ?? a.nHeadKv * a.headDim, vStride = a.vStride ?? a.nHeadKv * headDimV;
  if (kStride < a.nHeadKv * a.headDim || vStride < a.nHeadKv * headDimV) throw new PsionicError("ops.bad-shape", `${op}: cache strides ${kStride}, ${vStride} are shorter than a cell`);
  const nTokens = a.qPositions.length;
  need(op, "q", a.q.length, nTokens * a.nHead * a.headDim);
  if (a.nKv > 0) {
    need(op, "k cache", a.k.length, (a.nKv - 1) * kStride + a.nHeadKv * a.headDim);
    need(op, "v cache", a.v.length, (a.nKv - 1) * vStride + a.nHeadKv * headDimV);
  }
  if (a.kvPositions) need(op, "kvPositions", a.kvPositions.length, a.nKv);
  if (a.sinks) need(op, "sinks", a.sinks.length, a.nHead);
  const window = a.window ?? 0;
  positiveInt(op, "window", window, true);
  const out = a.out ?? new Float32Array(nTokens * a.nHead * headDimV);
  need(op, "out", out.length, nTokens * a.nHead * headDimV);
  if (nTokens === 0) return out;

  // psi_attention_params (ops.h): 7 pointers, 10 ints, scale, kv chunks, 2 int64 strides.
  const words = attentionWords, ints = attentionInts;
  // An empty cache has no bytes to point at; the kernel reads no key when nKv is 0.
  setPointer(words, 0, ptr(a.q));
  setPointer(words, 2, a.k.length > 0 ? ptr(a.k) : 0);
  setPointer(words, 4, a.v.length > 0 ? ptr(a.v) : 0);
  setPointer(words, 6, ptr(out));
  setPointer(words, 8, ptr(a.qPositions));
  setPointer(words, 10, a.kvPositions && a.kvPositions.length > 0 ? ptr(a.kvPositions) : 0);
  setPointer(words, 12, a.sinks ? ptr(a.sinks) : 0);
  ints[14] = nTokens;
  ints[15] = a.nHead;
  ints[16] = a.nHeadKv;
  ints[17] = a.headDim;
  ints[18] = headDimV;
  ints[19] = a.nKv;
  ints[20] = isF16 ? GGMLType.F16 : GGMLType.F32;
  ints[21] = window;
  ints[22] = (a.precision ?? "ggml-vec") === "f32" ? 1 : 0;
  ints[23] = threadsOf(options);
  attentionFloats[24] = a.scale ?? defaultAttentionScale(a.headDim);
  ints[25] = Math.max(0, Math.min(1 << 20, Math.floor(a.kvChunks ?? 0)));
  setPointer(words, 26, kStride);
  setPointer(words, 28, vStride);
  const lib = cpuKernels();
  check(op, (options?.reference ? lib.psi_attention_ref : lib.psi_attention)(attentionBlockPtr));
  return out;
}

/** Softmax over each row of n values (ggml: double sum, float scale). */
export function softmax(x: Float32Array, n: number, out?: Float32Array, options?: OpOptions): Float32Array {
  positiveInt("softmax", "row length", n);
  if (x.length % n !== 0) throw new PsionicError("ops.bad-shape", `softmax: ${x.length} values is not a whole number of rows of ${n}`);
  const y = out ?? new Float32Array(x.length);
  need("softmax", "out", y.length, x.length);
  if (x.length === 0) return y;
  const lib = cpuKernels();
  check("softmax", (options?.reference ? lib.psi_softmax_ref : lib.psi_softmax)(ptr(x), ptr(y), x.length / n, n));
  return y;
}

export function silu(x: Float32Array, out?: Float32Array, options?: OpOptions): Float32Array {
  const y = out ?? new Float32Array(x.length);
  need("silu", "out", y.length, x.length);
  if (x.length === 0) return y;
  const lib = cpuKernels();
  check("silu", (options?.reference ? lib.psi_silu_ref : lib.psi_silu)(ptr(x), ptr(y), x.length));
  return y;
}

export interface GluShape {
  rows: number;
  cols: number;
  /** elements between rows of gate / up (cols by default; 2*cols for halves of a merged gate_up row) */
  gateStride?: number;
  upStride?: number;
}

function gluCheck(op: string, gate: Float32Array, up: Float32Array, shape: GluShape, out?: Float32Array) {
  positiveInt(op, "rows", shape.rows, true);
  positiveInt(op, "cols", shape.cols, true);
  const gateStride = shape.gateStride ?? shape.cols, upStride = shape.upStride ?? shape.cols;
  if (gateStride < shape.cols || upStride < shape.cols) throw new PsionicError("ops.bad-shape", `${op}: row strides must be at least cols ${shape.cols}`);
  if (shape.rows > 0) {
    need(op, "gate", gate.length, (shape.rows - 1) * gateStride + shape.cols);
    need(op, "up", up.length, (shape.rows - 1) * upStride + shape.cols);
  }
  const y = out ?? new Float32Array(shape.rows * shape.cols);
  need(op, "out", y.length, shape.rows * shape.cols);
  return { y, gateStride, upStride, empty: shape.rows * shape.cols === 0 };
}

/** silu(gate) * up. */
export function swiglu(gate: Float32Array, up: Float32Array, shape: GluShape, out?: Float32Array, options?: OpOptions): Float32Array {
  const { y, gateStride, upStride, empty } = gluCheck("swiglu", gate, up, shape, out);
  if (empty) return y;
  const lib = cpuKernels();
  const call = options?.reference ? lib.psi_swiglu_ref : lib.psi_swiglu;
  check("swiglu", call(ptr(gate), ptr(up), ptr(y), shape.rows, shape.cols, gateStride, upStride));
  return y;
}

/** gpt-oss experts' clamped SwiGLU: g = min(gate, limit), u = clamp(up, ±limit), g * sigmoid(alpha g) * (u + 1). */
export function swigluOai(gate: Float32Array, up: Float32Array, shape: GluShape, alpha = 1.702, limit = 7, out?: Float32Array, options?: OpOptions): Float32Array {
  const { y, gateStride, upStride, empty } = gluCheck("swigluOai", gate, up, shape, out);
  if (empty) return y;
  const lib = cpuKernels();
  const call = options?.reference ? lib.psi_swiglu_oai_ref : lib.psi_swiglu_oai;
  check("swigluOai", call(ptr(gate), ptr(up), ptr(y), shape.rows, shape.cols, gateStride, upStride, alpha, limit));
  return y;
}

/** Elementwise a + b (the residual add); out may be a or b. */
export function add(a: Float32Array, b: Float32Array, out?: Float32Array, options?: OpOptions): Float32Array {
  need("add", "b", b.length, a.length);
  const y = out ?? new Float32Array(a.length);
  need("add", "out", y.length, a.length);
  if (a.length === 0) return y;
  const lib = cpuKernels();
  check("add", (options?.reference ? lib.psi_add_ref : lib.psi_add)(ptr(a), ptr(b), ptr(y), a.length));
  return y;
}

/** How router logits become expert weights (llama.cpp's gating functions). */
export type MoeGating = "topk-softmax" | "softmax-topk" | "softmax-topk-norm";
const MOE_MODE: Record<MoeGating, number> = { "topk-softmax": 0, "softmax-topk": 1, "softmax-topk-norm": 2 };

/** Per token, the k chosen experts (best first, ties to the lower id) and their weights. */
export function routeExperts(logits: Float32Array, nExpert: number, k: number, gating: MoeGating, options?: OpOptions): { ids: Int32Array; weights: Float32Array } {
  positiveInt("routeExperts", "nExpert", nExpert);
  positiveInt("routeExperts", "k", k);
  if (k > nExpert || nExpert > 4096) throw new PsionicError("ops.bad-shape", `routeExperts: k ${k} must not exceed nExpert ${nExpert}, and nExpert at most 4096`);
  if (!(gating in MOE_MODE)) throw new PsionicError("ops.unsupported", `routeExperts: gating ${gating} is not one of ${Object.keys(MOE_MODE).join(", ")}`);
  if (logits.length % nExpert !== 0) throw new PsionicError("ops.bad-shape", `routeExperts: ${logits.length} logits is not a whole number of rows of ${nExpert}`);
  const nTokens = logits.length / nExpert;
  const ids = new Int32Array(nTokens * k), weights = new Float32Array(nTokens * k);
  if (nTokens === 0) return { ids, weights };
  const lib = cpuKernels();
  const call = options?.reference ? lib.psi_moe_route_ref : lib.psi_moe_route;
  check("routeExperts", call(ptr(logits), ptr(ids), ptr(weights), nTokens, nExpert, k, MOE_MODE[gating]));
  return { ids, weights };
}

/** out[t] = sum over i of expertOut[t][i] * weights[t][i], added in expert order; expertOut is (tokens, k, nEmbd). */
export function weightedExpertSum(expertOut: Float32Array, weights: Float32Array, k: number, nEmbd: number, out?: Float32Array, options?: OpOptions): Float32Array {
  positiveInt("weightedExpertSum", "k", k);
  positiveInt("weightedExpertSum", "nEmbd", nEmbd);
  if (weights.length % k !== 0) throw new PsionicError("ops.bad-shape", `weightedExpertSum: ${weights.length} weights is not a whole number of rows of ${k}`);
  const nTokens = weights.length / k;
  need("weightedExpertSum", "expertOut", expertOut.length, nTokens * k * nEmbd);
  const y = out ?? new Float32Array(nTokens * nEmbd);
  need("weightedExpertSum", "out", y.length, nTokens * nEmbd);
  if (nTokens === 0) return y;
  const lib = cpuKernels();
  const call = options?.reference ? lib.psi_moe_weighted_sum_ref : lib.psi_moe_weighted_sum;
  check("weightedExpertSum", call(ptr(expertOut), ptr(weights), ptr(y), nTokens, k, nEmbd));
  return y;
}

/** Embedding lookup: rows `ids` of a (nTable, nCols) table of `type`, decoded to F32 (nIds, nCols). */
export function getRows(type: GGMLType, table: Uint8Array, nTable: number, nCols: number, ids: Int32Array, out?: Float32Array): Float32Array {
  const layout = typeLayout(type);
  if (!layout) throw new PsionicError("ops.unsupported", `getRows: unknown tensor type id ${type}`);
  positiveInt("getRows", "nCols", nCols);
  positiveInt("getRows", "nTable", nTable, true);
  if (nCols % layout.blockSize !== 0) throw new PsionicError("ops.bad-shape", `getRows: row length ${nCols} is not a whole number of ${layout.name} blocks of ${layout.blockSize}`);
  const rowBytes = (nCols / layout.blockSize) * layout.typeSize;
  need("getRows", "table bytes", table.byteLength, nTable * rowBytes);
  const bad = ids.findIndex((id) => id < 0 || id >= nTable);
  if (bad >= 0) throw new PsionicError("ops.bad-index", `getRows: id ${ids[bad]} at index ${bad} is outside the table of ${nTable} rows`);
  const y = out ?? new Float32Array(ids.length * nCols);
  need("getRows", "out", y.length, ids.length * nCols);
  if (ids.length === 0) return y;
  check(`getRows(${layout.name})`, cpuKernels().psi_get_rows(type, ptr(table), rowBytes, nTable, nCols, ptr(ids), ids.length, ptr(y)));
  return y;
}

/** Writes rows of src (tokens, rowLen) into cache cells `cells` (F16 cache: rounded to nearest even; F32: copied). */
export function storeKv(src: Float32Array, cache: Uint16Array | Float32Array, cells: Int32Array, rowLen: number, cellStride = rowLen): void {
  positiveInt("storeKv", "rowLen", rowLen);
  if (cellStride < rowLen) throw new PsionicError("ops.bad-shape", `storeKv: cell stride ${cellStride} is shorter than a row of ${rowLen}`);
  need("storeKv", "src", src.length, cells.length * rowLen);
  const nCells = cache.length >= rowLen ? Math.floor((cache.length - rowLen) / cellStride) + 1 : 0;
  const bad = cells.findIndex((cell) => cell < 0 || cell >= nCells);
  if (bad >= 0) throw new PsionicError("ops.bad-index", `storeKv: cell ${cells[bad]} at index ${bad} is outside the cache of ${nCells} cells`);
  if (cells.length === 0) return;
  const type = cache instanceof Uint16Array ? GGMLType.F16 : GGMLType.F32;
  check("storeKv", cpuKernels().psi_kv_store(ptr(src), ptr(cache), type, ptr(cells), cells.length, rowLen, cellStride, nCells));
}
