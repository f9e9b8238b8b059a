// The CPU backend's products: a quantized matmul on the weight's own bytes
// (or one expert's slab of them) followed, as ggml does, by the bias as a
// separate float32 add per row.
import { ptr, type Pointer } from "bun:ffi";
import { cpuKernels } from "../../../ffi/cpu.ts";
import { typeLayout, type GGMLType } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";
import type { PreparedMatrix } from "./cpu-tensors.ts";
import { matmul } from "./matmul.ts";

/** A matrix of `outWidth` rows of `inWidth` values in a ggml type: a whole 2-D weight or one expert of a 3-D one. */
export interface MatrixBytes {
  type: GGMLType;
  bytes: Uint8Array;
  inWidth: number;
  outWidth: number;
  /** The id psi_matmul gets when the bytes are a psionic layout of `type` (CpuWeight.kernelType). */
  kernelType?: number;
}

/** y[r] += bias for each of `rows` rows of `width` (ggml_add broadcasting the bias). */
export function addBiasRows(y: Float32Array, rows: number, width: number, bias: Float32Array): void {
  if (bias.length < width || y.length < rows * width) throw new PsionicError("backend.shape", `bias of ${bias.length} values for ${rows} rows of ${width}`);
  if (rows === 0) return;
  const lib = cpuKernels();
  const base = ptr(y), b = ptr(bias);
  for (let r = 0; r < rows; r++) {
    const row = (base + r * width * 4) as Pointer;
    const status = lib.psi_add(row, b, row, width);
    if (status !== 0) throw new PsionicError("ops.kernel-refused", `bias add: kernel status ${status}`);
  }
}

/** out = x W^T (+ bias) for `nTokens` rows of x; out holds nTokens * outWidth floats. */
export function project(m: MatrixBytes, x: Float32Array, nTokens: number, out: Float32Array, threads: number, bias?: Float32Array | null): Float32Array {
  matmul({ type: m.type, rows: m.outWidth, cols: m.inWidth, nTokens, kernelType: m.kernelType }, m.bytes, x, { threads, out });
  if (bias) addBiasRows(out, nTokens, m.outWidth, bias);
  return out;
}

/**
 * project() for a whole 2-D weight prepared once (CpuWeight.matrix): the
 * same kernel call without re-deriving and re-checking the weight's layout on
 * every decode step; only the activation and output sizes are checked here.
 */
export function projectPrepared(m: PreparedMatrix, x: Float32Array, nTokens: number, out: Float32Array, threads: number, bias?: Float32Array | null): Float32Array {
  if (x.length !== nTokens * m.cols || out.length !== nTokens * m.rows) {
    throw new PsionicError("matmul.size-mismatch", `matmul ${m.rows}x${m.cols}: ${x.length} inputs and ${out.length} outputs for ${nTokens} tokens`);
  }
  if (nTokens === 0) return out;
  const status = cpuKernels().psi_matmul(m.type, m.pointer, m.rows, m.cols, ptr(x), nTokens, ptr(out), threads);
  if (status !== 0) throw new PsionicError("matmul.kernel-refused", `${typeLayout(m.type)?.name ?? m.type} matmul ${m.rows}x${m.cols} by ${nTokens} tokens: status ${status}`);
  if (bias) addBiasRows(out, nTokens, m.rows, bias);
  return out;
}
