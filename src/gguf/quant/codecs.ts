// The codec table: which ggml tensor types psionic can decode and encode, the
// plain TypeScript reference for each, and the fast path through the C kernels
// (kernels/cpu/quant_*.c) that tests hold to the reference bit for bit.
import { cpuKernels } from "../../../ffi/cpu.ts";
import { PsionicError } from "../../util/errors.ts";
import { GGMLType, typeLayout, type TypeLayout } from "../types.ts";
import type { Codec } from "./codec.ts";
import { bf16Codec, f16Codec, f32Codec } from "./float.ts";
import { kQuantCodecs } from "./kquants.ts";
import { legacyCodecs } from "./legacy.ts";
import { mxfp4Codec } from "./mxfp4.ts";

export type { Codec } from "./codec.ts";

/** Plain TypeScript codecs, the reference the C kernels are tested against. */
export const referenceCodecs: ReadonlyMap<GGMLType, Codec> = new Map<GGMLType, Codec>([
  [GGMLType.F32, f32Codec],
  [GGMLType.F16, f16Codec],
  [GGMLType.BF16, bf16Codec],
  ...legacyCodecs,
  ...kQuantCodecs,
  [GGMLType.MXFP4, mxfp4Codec],
]);

export function isCodecSupported(type: GGMLType): boolean {
  return referenceCodecs.has(type);
}

/** Status codes of psi_dequantize_row / psi_quantize_row (kernels/cpu/quant.h). */
const KERNEL_STATUS: Record<number, string> = {
  [-1]: "the kernel library does not support this type",
  [-2]: "the element count is not a whole number of blocks",
  [-3]: "the input holds a NaN or infinity, which a quantized block cannot represent",
};

/** The layout of a supported type and the byte size of `elements` values; refuses anything else. */
export function codecLayout(type: GGMLType, elements: number): { layout: TypeLayout; bytes: number } {
  const layout = typeLayout(type);
  const name = layout?.name ?? `type id ${type}`;
  if (!layout || !isCodecSupported(type)) {
    throw new PsionicError("quant.unsupported-type", `no codec for tensor type ${name}; supported: ${supportedTypeNames().join(", ")}`);
  }
  if (!Number.isSafeInteger(elements) || elements < 0 || elements % layout.blockSize !== 0) {
    throw new PsionicError("quant.partial-block", `${elements} elements is not a whole number of ${name} blocks of ${layout.blockSize}`);
  }
  return { layout, bytes: (elements / layout.blockSize) * layout.typeSize };
}

export function supportedTypeNames(): string[] {
  return [...referenceCodecs.keys()].map((t) => typeLayout(t)!.name);
}

/** Decodes a whole tensor of `type` to float32 with the C kernels. */
export function decodeTensor(type: GGMLType, bytes: Uint8Array, elements: number): Float32Array {
  const { layout, bytes: expected } = codecLayout(type, elements);
  if (bytes.byteLength !== expected) {
    throw new PsionicError("quant.size-mismatch", `${elements} ${layout.name} elements need ${expected} bytes, got ${bytes.byteLength}`);
  }
  const out = new Float32Array(elements);
  if (elements === 0) return out;
  // The kernels read fp16 fields and floats in place; a copy gives them natural alignment.
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const status = cpuKernels().psi_dequantize_row(type, aligned, out, elements);
  if (status !== 0) throw new PsionicError("quant.kernel-refused", `decoding ${elements} ${layout.name} elements: ${KERNEL_STATUS[status] ?? `status ${status}`}`);
  return out;
}

/** Encodes float32 values into blocks of `type` with the C kernels, byte-compatible with ggml. */
export function encodeTensor(type: GGMLType, values: Float32Array): Uint8Array {
  const { layout, bytes } = codecLayout(type, values.length);
  const out = new Uint8Array(bytes);
  if (values.length === 0) return out;
  const status = cpuKernels().psi_quantize_row(type, values, out, values.length);
  if (status === -3) {
    const index = values.findIndex((v) => !Number.isFinite(v));
    throw new PsionicError("quant.non-finite", `cannot encode ${layout.name}: element ${index} is ${values[index]}; quantized blocks hold only finite values`);
  }
  if (status !== 0) throw new PsionicError("quant.kernel-refused", `encoding ${values.length} ${layout.name} elements: ${KERNEL_STATUS[status] ?? `status ${status}`}`);
  return out;
}
