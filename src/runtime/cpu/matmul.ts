// Quantized matrix products on the CPU kernels (kernels/cpu/matmul*.c):
// Y[t][r] = dot(W row r, X[t]) with W stored in a ggml tensor type and the
// activations X quantized on the fly the way ggml does (matmul.h lists which
// activation type each weight type uses). Shapes:
//   weights: rows x cols of `type`, row-major (what a GGUF tensor of ne = [cols, rows] holds)
//   x: nTokens x cols float32; result: nTokens x rows float32
import { cpuKernels } from "../../../ffi/cpu.ts";
import { GGMLType, typeLayout, type TypeLayout } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";

/** Weight types psi_matmul multiplies without dequantizing. */
export const MATMUL_TYPES: readonly GGMLType[] = [
  GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1,
  GGMLType.Q8_0, GGMLType.MXFP4, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K,
];

/** The most threads one product may use (PSI_POOL_MAX_THREADS in threadpool.h). */
export const MAX_MATMUL_THREADS = 64;

/** Status codes of the psi_matmul kernels (kernels/cpu/matmul.h). */
const STATUS: Record<number, string> = {
  [-1]: "the kernel library has no matrix product for this weight type",
  [-2]: "the shape is not valid for this type (cols must be a positive whole number of blocks)",
  [-3]: `the thread count must be 1..${MAX_MATMUL_THREADS}`,
  [-4]: "out of memory for the quantized activations",
};

function typeName(type: GGMLType): string {
  return typeLayout(type)?.name ?? `type id ${type}`;
}

function matmulLayout(type: GGMLType): TypeLayout {
  const layout = typeLayout(type);
  if (!layout || !MATMUL_TYPES.includes(type)) {
    throw new PsionicError("matmul.unsupported-type", `no CPU matrix product for weight type ${typeName(type)}; supported: ${MATMUL_TYPES.map(typeName).join(", ")}`);
  }
  return layout;
}

// The kernels read fp16 fields and floats in place: give them naturally aligned data.
const aligned = (bytes: Uint8Array) => (bytes.byteOffset % 4 === 0 ? bytes : bytes.slice());

export interface MatmulShape {
  type: GGMLType;
  rows: number;
  cols: number;
  nTokens: number;
  /** The id psi_matmul gets when it is not `type` itself: a layout of `type`'s bytes (MXFP4_ROWS16, Q8_0_ROWS16). */
  kernelType?: number;
}

/**
 * psi_matmul's own layouts of MXFP4 and Q8_0 bytes (kernels/cpu/matmul_mxfp4_rows16.c,
 * matmul_q8_0_rows16.c): groups of 16 rows rearranged once so few-token
 * products need no unpacking or gathers; same size, same product bits as the plain type.
 */
export const MXFP4_ROWS16 = 0x1000 + GGMLType.MXFP4;
export const Q8_0_ROWS16 = 0x1000 + GGMLType.Q8_0;
const ROWS16_LAYOUTS: ReadonlyMap<GGMLType, number> = new Map([[GGMLType.MXFP4, MXFP4_ROWS16], [GGMLType.Q8_0, Q8_0_ROWS16]]);

/**
 * psi_matmul's ids for the orders llama.cpp multiplies expert weights in
 * (MUL_MAT_ID, which its AMX kernels do not take) where they differ from
 * psi_matmul's for the type (docs/PARITY.md §3): Q8_0, Q5_0, Q4_1 and Q5_K in
 * ggml_vec_dot's 8 lanes and BF16 in ggml_vec_dot_bf16's one-token order at
 * every batch size (a plain CPU buffer), Q4_K in the q4_K_8x8 repack gemv's
 * two sums. MXFP4, Q4_0 and Q3_K experts take the dense order (the repack
 * gemvs sum as AMX does; dense Q3_K is ggml_vec_dot_q3_K_q8_K's already).
 */
export const EXPERT_ORDERS: ReadonlyMap<GGMLType, number> = new Map([
  [GGMLType.Q8_0, 0x2000 + GGMLType.Q8_0],
  [GGMLType.Q5_0, 0x2000 + GGMLType.Q5_0],
  [GGMLType.Q4_K, 0x2000 + GGMLType.Q4_K],
  [GGMLType.Q4_1, 0x2000 + GGMLType.Q4_1],
  [GGMLType.Q5_K, 0x2000 + GGMLType.Q5_K],
  [GGMLType.BF16, 0x2000 + GGMLType.BF16],
]);

/**
 * `experts` matrices of rows x cols `type` (one after another, as a 3-D weight
 * holds them) repacked into the type's 16-row layout, each matrix on its own:
 * the bytes and the kernel id to multiply them as; null when the loaded kernel
 * variant does not multiply that layout (or the type has none).
 */
export function repackRows16(type: GGMLType, bytes: Uint8Array, rows: number, cols: number, experts = 1): { bytes: Uint8Array; kernelType: number } | null {
  const kernelType = ROWS16_LAYOUTS.get(type);
  if (kernelType === undefined) return null;
  const layout = typeLayout(type)!;
  const slab = rows * (cols / layout.blockSize) * layout.typeSize;
  if (!Number.isInteger(slab) || bytes.byteLength !== slab * experts) {
    throw new PsionicError("matmul.size-mismatch", `repack: ${experts} ${layout.name} matrices of ${rows}x${cols} need ${slab * experts} bytes, got ${bytes.byteLength}`);
  }
  const out = new Uint8Array(bytes.byteLength);
  if (out.byteLength === 0) return { bytes: out, kernelType };
  const lib = cpuKernels();
  for (let e = 0; e < experts; e++) {
    const status = lib.psi_matmul_repack(kernelType, aligned(bytes.subarray(e * slab, (e + 1) * slab)), out.subarray(e * slab, (e + 1) * slab), rows, cols);
    if (status === -1) return null;
    checkStatus(status, `repacking ${rows}x${cols} ${layout.name}`);
  }
  return { bytes: out, kernelType };
}

function checkShape({ type, rows, cols, nTokens }: MatmulShape, weights: Uint8Array, x: Float32Array, out: Float32Array): void {
  const layout = matmulLayout(type);
  const name = layout.name;
  for (const [label, value] of [["rows", rows], ["cols", cols], ["nTokens", nTokens]] as const) {
    if (!Number.isSafeInteger(value) || value < 0 || value > 2 ** 31) throw new PsionicError("matmul.bad-shape", `${name} matmul: ${label} = ${value} is not an integer in 0..2^31`);
  }
  if (cols === 0 || cols % layout.blockSize !== 0) {
    throw new PsionicError("matmul.bad-shape", `${name} matmul: cols = ${cols} is not a positive whole number of ${name} blocks of ${layout.blockSize}`);
  }
  const weightBytes = rows * (cols / layout.blockSize) * layout.typeSize;
  if (weights.byteLength !== weightBytes) {
    throw new PsionicError("matmul.size-mismatch", `${name} matmul: ${rows}x${cols} weights need ${weightBytes} bytes, got ${weights.byteLength}`);
  }
  if (x.length !== nTokens * cols) throw new PsionicError("matmul.size-mismatch", `${name} matmul: ${nTokens} tokens of ${cols} need ${nTokens * cols} floats, got ${x.length}`);
  if (out.length !== nTokens * rows) throw new PsionicError("matmul.size-mismatch", `${name} matmul: the output needs ${nTokens * rows} floats, got ${out.length}`);
}

function checkStatus(status: number, what: string): void {
  if (status !== 0) throw new PsionicError("matmul.kernel-refused", `${what}: ${STATUS[status] ?? `status ${status}`}`);
}

export interface MatmulOptions {
  /** Threads of the kernel pool to use (default: every core). */
  threads?: number;
  /** Where to write the nTokens x rows result (default: a new array). */
  out?: Float32Array;
}

/** Y = X W^T on the fast kernels (SIMD where the CPU has it, threaded). */
export function matmul(shape: MatmulShape, weights: Uint8Array, x: Float32Array, options: MatmulOptions = {}): Float32Array {
  const out = options.out ?? new Float32Array(shape.nTokens * shape.rows);
  checkShape(shape, weights, x, out);
  const threads = options.threads ?? Math.max(1, navigator.hardwareConcurrency || 1);
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_MATMUL_THREADS) {
    throw new PsionicError("matmul.bad-threads", `matmul threads = ${threads}: must be an integer in 1..${MAX_MATMUL_THREADS}`);
  }
  if (shape.rows === 0 || shape.nTokens === 0) return out;
  const status = cpuKernels().psi_matmul(shape.kernelType ?? shape.type, aligned(weights), shape.rows, shape.cols, x, shape.nTokens, out, threads);
  checkStatus(status, `${typeName(shape.type)} matmul ${shape.rows}x${shape.cols} by ${shape.nTokens} tokens`);
  return out;
}

/** The same product on the plain C reference, single-threaded: what tests hold `matmul` to. */
export function matmulReference(shape: MatmulShape, weights: Uint8Array, x: Float32Array): Float32Array {
  const out = new Float32Array(shape.nTokens * shape.rows);
  checkShape(shape, weights, x, out);
  if (shape.rows === 0 || shape.nTokens === 0) return out;
  const status = cpuKernels().psi_matmul_reference(shape.type, aligned(weights), shape.rows, shape.cols, x, shape.nTokens, out);
  checkStatus(status, `${typeName(shape.type)} reference matmul`);
  return out;
}

/** The ggml type activations are quantized to for weights of `type` (Q8_0, Q8_1, Q8_K, F16, BF16 or F32). */
export function activationType(type: GGMLType): GGMLType {
  matmulLayout(type);
  return cpuKernels().psi_matmul_activation_type(type) as GGMLType;
}

/** One token's activations quantized exactly as `matmul` quantizes them for weights of `type`. */
export function quantizeActivations(type: GGMLType, x: Float32Array): Uint8Array {
  const layout = matmulLayout(type);
  const act = typeLayout(activationType(type))!;
  if (x.length % layout.blockSize !== 0) {
    throw new PsionicError("matmul.bad-shape", `${x.length} activations are not a whole number of ${layout.name} blocks of ${layout.blockSize}`);
  }
  const out = new Uint8Array((x.length / act.blockSize) * act.typeSize);
  if (x.length === 0) return out;
  const written = Number(cpuKernels().psi_matmul_quantize_activations(type, x, x.length, out));
  if (written < 0) checkStatus(written, `quantizing activations for ${layout.name}`);
  return out;
}
