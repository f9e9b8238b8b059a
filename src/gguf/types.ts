// The ggml tensor type table: one row per type, as ggml's `type_traits` has it.
// Block layout sizes are checked against ggml-common.h's static_asserts in tests.
// Codecs (decode/encode) for the supported types live in ./quant/codecs.ts; this
// file only describes storage, so the GGUF reader can size every tensor it meets.

export const QK_K = 256;

export enum GGMLType {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42,
}

export interface TypeLayout {
  type: GGMLType;
  /** Name as ggml prints it (`q4_K`), also what `--type` accepts (case-insensitive). */
  name: string;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

const rows: [GGMLType, string, number, number][] = [
  [GGMLType.F32, "f32", 1, 4], [GGMLType.F16, "f16", 1, 2], [GGMLType.BF16, "bf16", 1, 2],
  [GGMLType.F64, "f64", 1, 8], [GGMLType.I8, "i8", 1, 1], [GGMLType.I16, "i16", 1, 2],
  [GGMLType.I32, "i32", 1, 4], [GGMLType.I64, "i64", 1, 8],
  [GGMLType.Q4_0, "q4_0", 32, 18], [GGMLType.Q4_1, "q4_1", 32, 20],
  [GGMLType.Q5_0, "q5_0", 32, 22], [GGMLType.Q5_1, "q5_1", 32, 24],
  [GGMLType.Q8_0, "q8_0", 32, 34], [GGMLType.Q8_1, "q8_1", 32, 36],
  [GGMLType.Q2_K, "q2_K", QK_K, 84], [GGMLType.Q3_K, "q3_K", QK_K, 110],
  [GGMLType.Q4_K, "q4_K", QK_K, 144], [GGMLType.Q5_K, "q5_K", QK_K, 176],
  [GGMLType.Q6_K, "q6_K", QK_K, 210], [GGMLType.Q8_K, "q8_K", QK_K, 292],
  [GGMLType.IQ2_XXS, "iq2_xxs", QK_K, 66], [GGMLType.IQ2_XS, "iq2_xs", QK_K, 74],
  [GGMLType.IQ3_XXS, "iq3_xxs", QK_K, 98], [GGMLType.IQ1_S, "iq1_s", QK_K, 50],
  [GGMLType.IQ4_NL, "iq4_nl", 32, 18], [GGMLType.IQ3_S, "iq3_s", QK_K, 110],
  [GGMLType.IQ2_S, "iq2_s", QK_K, 82], [GGMLType.IQ4_XS, "iq4_xs", QK_K, 136],
  [GGMLType.IQ1_M, "iq1_m", QK_K, 56], [GGMLType.TQ1_0, "tq1_0", QK_K, 54],
  [GGMLType.TQ2_0, "tq2_0", QK_K, 66], [GGMLType.MXFP4, "mxfp4", 32, 17],
  [GGMLType.NVFP4, "nvfp4", 64, 36], [GGMLType.Q1_0, "q1_0", 128, 18], [GGMLType.Q2_0, "q2_0", 64, 18],
];

const byId = new Map<number, TypeLayout>(rows.map(([type, name, blockSize, typeSize]) => [type, { type, name, blockSize, typeSize }]));

/** Layout of a ggml type id, or undefined when the id is not a type ggml defines. */
export function typeLayout(id: number): TypeLayout | undefined {
  return byId.get(id);
}

/** Every defined type, in id order. */
export function allTypes(): TypeLayout[] {
  return [...byId.values()].sort((a, b) => a.type - b.type);
}

/** Resolve a user-supplied type name such as `Q4_K` or `f16`. */
export function typeByName(name: string): TypeLayout | undefined {
  const lower = name.toLowerCase();
  return allTypes().find((t) => t.name.toLowerCase() === lower);
}

/** Bytes needed to store `elements` values of `type`; throws when not a whole number of blocks. */
export function tensorBytes(layout: TypeLayout, elements: number): number {
  if (elements % layout.blockSize !== 0) {
    throw new RangeError(`${elements} elements is not a whole number of ${layout.name} blocks of ${layout.blockSize}`);
  }
  return (elements / layout.blockSize) * layout.typeSize;
}
