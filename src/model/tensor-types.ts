// Which ggml type each synthetic tensor is stored in, given the --type asked
// for. The rules follow llama.cpp's own tools so the files look like real ones:
// - norms, biases and sinks (every "vector" tensor) are F32, as the converter
//   writes every 1-D tensor and every .bias;
// - the MoE router (ffn_gate_inp) is F32, as the converter keeps it;
// - --type MXFP4 means llama.cpp's MXFP4_MOE mix: expert stacks in MXFP4 and
//   every other matrix in Q8_0 (this is how the gpt-oss GGUFs are published);
// - everything else takes the requested type, then falls back exactly as
//   llama.cpp's quantizer does (llama-quant.cpp, tensor_type_fallback) when the
//   row length is not a whole number of the type's blocks.
import { GGMLType, typeLayout, type TypeLayout } from "../gguf/types.ts";
import { PsionicError } from "../util/errors.ts";
import type { PlannedTensor } from "./synth-plan.ts";

export interface TypeChoice {
  type: GGMLType;
  /** Set when the shape forced a different type than the rules picked. */
  fellBackFrom?: GGMLType;
}

// The smaller-block type llama.cpp substitutes when a row does not fill whole blocks.
const SHAPE_FALLBACK = new Map<GGMLType, GGMLType>([
  [GGMLType.IQ1_S, GGMLType.IQ4_NL], [GGMLType.IQ1_M, GGMLType.IQ4_NL],
  [GGMLType.IQ2_XXS, GGMLType.IQ4_NL], [GGMLType.IQ2_XS, GGMLType.IQ4_NL], [GGMLType.IQ2_S, GGMLType.IQ4_NL],
  [GGMLType.IQ3_XXS, GGMLType.IQ4_NL], [GGMLType.IQ3_S, GGMLType.IQ4_NL], [GGMLType.IQ4_XS, GGMLType.IQ4_NL],
  [GGMLType.Q2_0, GGMLType.Q4_0], [GGMLType.Q2_K, GGMLType.Q4_0], [GGMLType.Q3_K, GGMLType.Q4_0],
  [GGMLType.TQ1_0, GGMLType.Q4_0], [GGMLType.TQ2_0, GGMLType.Q4_0],
  [GGMLType.Q4_K, GGMLType.Q5_0], [GGMLType.Q5_K, GGMLType.Q5_1], [GGMLType.Q6_K, GGMLType.Q8_0],
]);

// Types that hold model weights at all; index types (I8..I64) and the
// dot-product-only Q8_1 / Q8_K are refused.
const NOT_WEIGHT_TYPES = new Set([GGMLType.I8, GGMLType.I16, GGMLType.I32, GGMLType.I64, GGMLType.F64, GGMLType.Q8_1, GGMLType.Q8_K]);

function layout(type: GGMLType): TypeLayout {
  return typeLayout(type)!;
}

/** Refuses a --type that cannot store weights. */
export function checkRequestedType(type: GGMLType): void {
  if (NOT_WEIGHT_TYPES.has(type)) {
    throw new PsionicError("synth.bad-type", `--type ${layout(type).name} does not store model weights; use e.g. F16, Q8_0, Q4_0, Q4_K or MXFP4`);
  }
}

/** The type llama.cpp's quantizer would use for a row length of `rowLength` when asked for `type`. */
export function shapeCompatibleType(type: GGMLType, rowLength: number, tensorName: string): TypeChoice {
  const block = layout(type).blockSize;
  if (rowLength % block === 0) return { type };
  let fallback = SHAPE_FALLBACK.get(type);
  if (fallback === undefined) {
    if (block > 32) {
      throw new PsionicError("synth.no-fallback", `${tensorName}: row length ${rowLength} is not a multiple of ${layout(type).name}'s block of ${block}, and llama.cpp defines no fallback type for ${layout(type).name}`);
    }
    fallback = type;
  }
  // Rows not even a multiple of 32 are stored F16, as llama.cpp does.
  if (rowLength % layout(fallback).blockSize !== 0) fallback = GGMLType.F16;
  return { type: fallback, fellBackFrom: type };
}

/** The storage type of one tensor of a file synthesized with --type `requested`. */
export function chooseTensorType(tensor: PlannedTensor, requested: GGMLType): TypeChoice {
  if (tensor.role === "vector" || tensor.role === "router") return { type: GGMLType.F32 };
  let wanted = requested;
  if (requested === GGMLType.MXFP4 && tensor.role !== "expert") wanted = GGMLType.Q8_0;
  return shapeCompatibleType(wanted, tensor.dims[0]!, tensor.name);
}

// general.file_type values (llama.h's llama_ftype), as llama.cpp's loader names
// a file whose tensors are mostly of one type.
const FILE_TYPE = new Map<GGMLType, number>([
  [GGMLType.F32, 0], [GGMLType.F16, 1], [GGMLType.Q4_0, 2], [GGMLType.Q4_1, 3], [GGMLType.Q8_0, 7],
  [GGMLType.Q5_0, 8], [GGMLType.Q5_1, 9], [GGMLType.Q2_K, 10], [GGMLType.Q3_K, 12], [GGMLType.Q4_K, 15],
  [GGMLType.Q5_K, 17], [GGMLType.Q6_K, 18], [GGMLType.IQ2_XXS, 19], [GGMLType.IQ2_XS, 20], [GGMLType.IQ3_XXS, 23],
  [GGMLType.IQ1_S, 24], [GGMLType.IQ4_NL, 25], [GGMLType.IQ3_S, 26], [GGMLType.IQ2_S, 28], [GGMLType.IQ4_XS, 30],
  [GGMLType.IQ1_M, 31], [GGMLType.BF16, 32], [GGMLType.TQ1_0, 36], [GGMLType.TQ2_0, 37], [GGMLType.MXFP4, 38],
  [GGMLType.NVFP4, 39], [GGMLType.Q1_0, 40], [GGMLType.Q2_0, 41],
]);

/** general.file_type for a file made with --type `requested`, or undefined (llama.cpp then guesses). */
export function fileTypeOf(requested: GGMLType): number | undefined {
  return FILE_TYPE.get(requested);
}
