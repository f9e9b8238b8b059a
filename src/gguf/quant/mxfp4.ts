// MXFP4 (OCP microscaling FP4, gpt-oss's expert weights): blocks of 32 values,
//   e (1 B, e8m0 power-of-two scale), qs[16] (4-bit E2M1 codes)
// value = kvalue[code] * 2^(e-128), where kvalue holds the E2M1 values doubled
// (0, 1, 2, 3, 4, 6, 8, 12 and their negatives) so they are integers.
// Element j of the block lives in the low nibble of qs[j], element j+16 in the high nibble.
import { blockCodec, type BlockFormat, type Codec } from "./codec.ts";
import { e8m0HalfToFloat } from "./float.ts";

export const MXFP4_VALUES = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12] as const;

const f = Math.fround;

/** The code whose value is nearest to x (first one on ties), as ggml measures distance: |kvalue * e - x| in float32. */
function nearestCode(x: number, e: number): number {
  let best = 0;
  let bestError = Math.abs(f(f(MXFP4_VALUES[0] * e) - x));
  for (let i = 1; i < 16; i++) {
    const error = Math.abs(f(f(MXFP4_VALUES[i]! * e) - x));
    if (error < bestError) { best = i; bestError = error; }
  }
  return best;
}

/**
 * The shared exponent: floor(log2(amax)) - 2 + 127, so the largest magnitude
 * lands near the top code (6 = 12/2). ggml computes log2f in float32; the
 * float32 rounding of the exact log2 agrees with it (tested near powers of two).
 */
export function mxfp4Exponent(amax: number): number {
  if (!(amax > 0)) return 0;
  return (Math.floor(f(Math.log2(amax))) - 2 + 127) & 0xff;
}

const mxfp4: BlockFormat = {
  name: "mxfp4", blockSize: 32, typeSize: 17,
  decodeBlock(src, o, y, _yBits, k) {
    // The scale is a finite power of two and the codes are small integers: no NaN can arise.
    const d = e8m0HalfToFloat(src[o]!);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 1 + j]!;
      y[k + j] = f(MXFP4_VALUES[q & 15]! * d);
      y[k + j + 16] = f(MXFP4_VALUES[q >> 4]! * d);
    }
  },
  encodeBlock(x, k, dst, o) {
    let amax = 0;
    for (let j = 0; j < 32; j++) if (amax < Math.abs(x[k + j]!)) amax = Math.abs(x[k + j]!);
    const e = mxfp4Exponent(amax);
    const d = e8m0HalfToFloat(e);
    dst[o] = e;
    for (let j = 0; j < 16; j++) dst[o + 1 + j] = nearestCode(x[k + j]!, d) | (nearestCode(x[k + j + 16]!, d) << 4);
  },
};

export const mxfp4Codec: Codec = blockCodec(mxfp4);
