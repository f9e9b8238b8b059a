// Test-only bindings to ggml's own row codecs in node-llama-cpp's libggml-base.so,
// the oracle the psionic codecs are held to (dequantize_row_*, quantize_row_*_ref,
// and the fp16/bf16 row converters).
import { FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { GGMLType, typeLayout } from "../src/gguf/types.ts";
import { PsionicError } from "../src/util/errors.ts";
import { openLibrary } from "./load.ts";

const { ptr, i64, void: none } = FFIType;
const row = { args: [ptr, ptr, i64], returns: none } as const;

/** ggml's function names per type: [to float, from float (reference)]. */
const rowFunctions: Partial<Record<GGMLType, [string, string]>> = {
  [GGMLType.F16]: ["ggml_fp16_to_fp32_row", "ggml_fp32_to_fp16_row"],
  [GGMLType.BF16]: ["ggml_bf16_to_fp32_row", "ggml_fp32_to_bf16_row_ref"],
  [GGMLType.Q4_0]: ["dequantize_row_q4_0", "quantize_row_q4_0_ref"],
  [GGMLType.Q4_1]: ["dequantize_row_q4_1", "quantize_row_q4_1_ref"],
  [GGMLType.Q5_0]: ["dequantize_row_q5_0", "quantize_row_q5_0_ref"],
  [GGMLType.Q5_1]: ["dequantize_row_q5_1", "quantize_row_q5_1_ref"],
  [GGMLType.Q8_0]: ["dequantize_row_q8_0", "quantize_row_q8_0_ref"],
  [GGMLType.Q2_K]: ["dequantize_row_q2_K", "quantize_row_q2_K_ref"],
  [GGMLType.Q3_K]: ["dequantize_row_q3_K", "quantize_row_q3_K_ref"],
  [GGMLType.Q4_K]: ["dequantize_row_q4_K", "quantize_row_q4_K_ref"],
  [GGMLType.Q5_K]: ["dequantize_row_q5_K", "quantize_row_q5_K_ref"],
  [GGMLType.Q6_K]: ["dequantize_row_q6_K", "quantize_row_q6_K_ref"],
  [GGMLType.MXFP4]: ["dequantize_row_mxfp4", "quantize_row_mxfp4_ref"],
};

export const GGML_BASE_LIBRARY = join(import.meta.dir, "..", "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so");

type RowFunction = (src: Uint8Array | Float32Array, dst: Uint8Array | Float32Array, n: number) => void;
let functions: Map<string, RowFunction> | undefined;

function oracle(): Map<string, RowFunction> {
  if (functions) return functions;
  if (!existsSync(GGML_BASE_LIBRARY)) {
    throw new PsionicError("ffi.missing-library", `the ggml oracle ${GGML_BASE_LIBRARY} is missing: run \`npm install\` (node-llama-cpp@3.21.1 with @node-llama-cpp/linux-x64)`);
  }
  const names = Object.values(rowFunctions).flat();
  const symbols = Object.fromEntries(names.map((name) => [name, row]));
  const lib = openLibrary(GGML_BASE_LIBRARY, symbols);
  functions = new Map(names.map((name) => [name, lib.symbols[name] as unknown as RowFunction]));
  return functions;
}

function entry(type: GGMLType): [string, string] {
  const names = rowFunctions[type];
  if (!names) throw new PsionicError("quant.unsupported-type", `the ggml oracle binding has no row functions for ${typeLayout(type)?.name ?? `type ${type}`}`);
  return names;
}

/** ggml's decoding of `n` values of `type` (F32 is returned as a copy). */
export function ggmlDequantize(type: GGMLType, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  if (type === GGMLType.F32) {
    new Uint8Array(out.buffer).set(bytes.subarray(0, 4 * n));
    return out;
  }
  if (n > 0) oracle().get(entry(type)[0])!(bytes, out, n);
  return out;
}

/** ggml's reference encoding of `floats` into blocks of `type`. */
export function ggmlQuantizeRef(type: GGMLType, floats: Float32Array): Uint8Array {
  const layout = typeLayout(type)!;
  const out = new Uint8Array((floats.length / layout.blockSize) * layout.typeSize);
  if (type === GGMLType.F32) {
    out.set(new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength));
    return out;
  }
  if (floats.length > 0) oracle().get(entry(type)[1])!(floats, out, floats.length);
  return out;
}
