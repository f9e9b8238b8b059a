// Shared by the matmul tests: seeded inputs, weights encoded by the psionic
// codecs, plain float64 decoding of quantized activation rows, and a bitwise
// comparison that names the first differing outputs.
import { decodeTensor, encodeTensor } from "../../gguf/quant/codecs.ts";
import { GGMLType, typeLayout } from "../../gguf/types.ts";
import { seededRandom } from "../../util/seeded-random.ts";
export { seededRandom };


/** n values, roughly normal, with a few large outliers and some exact zeros, as activations have. */
export function sampleValues(n: number, seed: number, scale = 1): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = random();
    const gaussian = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    out[i] = u < 0.01 ? 0 : u > 0.995 ? gaussian * 8 * scale : gaussian * scale;
  }
  return out;
}

/** A rows x cols weight matrix of `type`, encoded from sampled floats, and its decoded values. */
export function sampleWeights(type: GGMLType, rows: number, cols: number, seed: number): { bytes: Uint8Array; values: Float32Array } {
  const floats = sampleValues(rows * cols, seed, 0.05);
  const bytes = encodeTensor(type, floats);
  return { bytes, values: decodeTensor(type, bytes, rows * cols) };
}

const half = (bytes: Uint8Array, offset: number) => {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const h = view.getUint16(offset, true);
  const exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, sign = h & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
};

/** Decodes one activation row of `actType` (Q8_0, Q8_1, Q8_K, F16, BF16, F32) to float64. */
export function decodeActivations(actType: GGMLType, bytes: Uint8Array, n: number): Float64Array {
  const out = new Float64Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = typeLayout(actType)!.typeSize;
  if (actType === GGMLType.Q8_0 || actType === GGMLType.Q8_1) {
    const quantsAt = actType === GGMLType.Q8_0 ? 2 : 4;
    for (let i = 0; i < n; i++) out[i] = half(bytes, Math.floor(i / 32) * size) * q[Math.floor(i / 32) * size + quantsAt + (i % 32)]!;
  } else if (actType === GGMLType.Q8_K) {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(Math.floor(i / 256) * size, true) * q[Math.floor(i / 256) * size + 4 + (i % 256)]!;
  } else if (actType === GGMLType.F32) {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  } else {
    const floats = decodeTensor(actType, bytes, n);
    for (let i = 0; i < n; i++) out[i] = floats[i]!;
  }
  return out;
}

/** The fp16 value at byte `offset` (for reading block fields in tests). */
export const readHalf = half;

/** Positions where a and b differ in their bits (NaN equals NaN), with the first few listed. */
export function bitDifferences(a: Float32Array, b: Float32Array): string {
  const wrong: string[] = [];
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    if (count++ < 3) wrong.push(`[${i}] ${a[i]} vs ${b[i]}`);
  }
  return count === 0 ? "identical" : `${count} of ${a.length} differ: ${wrong.join(", ")}`;
}
