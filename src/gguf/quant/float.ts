// Float formats and float32 arithmetic that matches ggml bit for bit.
//
// JavaScript numbers are doubles and JavaScriptCore canonicalizes NaN payloads,
// so the reference codecs work on float32 *bit patterns* wherever a NaN can
// appear, and round every operation with Math.fround (one double operation on
// two float32 values, then rounding, is exactly the float32 operation).
// NaN rules are x86 SSE's, which is what ggml's compiled row functions do:
// a NaN operand propagates (first operand first) with its quiet bit set, and an
// invalid operation (0 * inf, inf - inf) gives the "default NaN" 0xFFC00000.

import type { Codec } from "./codec.ts";

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The float32 value of a bit pattern (NaN payloads are not preserved in the number). */
export function floatOfBits(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0]!;
}

/** The bit pattern of a non-NaN float32 value. */
export function bitsOfFloat(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0]!;
}

const QUIET_BIT = 0x00400000;
const DEFAULT_NAN = 0xffc00000;

/** Bits of a float32 operation result `r` on operands a, b (given with their bits), with SSE NaN rules. */
function resultBits(r: number, a: number, aBits: number, b: number, bBits: number): number {
  if (r === r) return bitsOfFloat(r);
  if (a !== a) return (aBits | QUIET_BIT) >>> 0;
  if (b !== b) return (bBits | QUIET_BIT) >>> 0;
  return DEFAULT_NAN;
}

/** float32 a * b on bit patterns. */
export function mulBits(aBits: number, bBits: number): number {
  const a = floatOfBits(aBits), b = floatOfBits(bBits);
  return resultBits(Math.fround(a * b), a, aBits, b, bBits);
}

/** float32 a + b on bit patterns. */
export function addBits(aBits: number, bBits: number): number {
  const a = floatOfBits(aBits), b = floatOfBits(bBits);
  return resultBits(Math.fround(a + b), a, aBits, b, bBits);
}

/** float32 a - b on bit patterns. */
export function subBits(aBits: number, bBits: number): number {
  const a = floatOfBits(aBits), b = floatOfBits(bBits);
  return resultBits(Math.fround(a - b), a, aBits, b, bBits);
}

/** Bits of a small integer converted to float32 (exact for |i| < 2^24). */
export function intBits(i: number): number {
  return bitsOfFloat(i);
}

// ---- fp16 (IEEE binary16) ----

/** float32 bits of an fp16 value: exact, NaNs quieted with their payload kept (as F16C and ggml do). */
export function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa ? QUIET_BIT | (mantissa << 13) : 0)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal: value is mantissa * 2^-24, exactly representable as a normal float32.
  return (sign | bitsOfFloat(mantissa * 2 ** -24)) >>> 0;
}

const halfTable = new Float32Array(65536);
new Uint32Array(halfTable.buffer).forEach((_, h, bits) => { bits[h] = halfToFloatBits(h); });

/** The value of an fp16 bit pattern (NaN for any NaN; use halfToFloatBits for its payload). */
export function halfToFloat(h: number): number {
  return halfTable[h]!;
}

/**
 * fp16 bits of a float32 (given as bits): round to nearest even, overflow to
 * inf, NaN becomes 0x7E00 with the sign kept. The same arithmetic as ggml's
 * portable conversion (scale into fp16 range, let an addition round).
 */
export function floatBitsToHalf(w: number): number {
  const f = floatOfBits(w);
  const shl1 = (w * 2) % 2 ** 32;
  const sign = (w >>> 16) & 0x8000;
  if (shl1 > 0xff000000) return sign | 0x7e00;
  // |f| * 2^112 * 2^-110: overflows to inf for values beyond fp16 range.
  let base = Math.fround(Math.fround(Math.abs(f) * 2 ** 112) * 2 ** -110);
  let bias = (shl1 & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  base = Math.fround(floatOfBits((bias >>> 1) + 0x07800000) + base);
  const bits = bitsOfFloat(base);
  const exponentBits = (bits >>> 13) & 0x7c00;
  const mantissaBits = bits & 0x0fff;
  return sign | (exponentBits + mantissaBits);
}

/** fp16 bits of a float32 value that is not NaN. */
export function floatToHalf(value: number): number {
  return floatBitsToHalf(bitsOfFloat(value));
}

// ---- bf16 ----

/** bf16 bits of float32 bits: round to nearest even; NaN keeps its top bits and is made quiet. */
export function floatBitsToBf16(w: number): number {
  if ((w & 0x7fffffff) >>> 0 > 0x7f800000) return ((w >>> 16) | 64) & 0xffff;
  return Math.floor((w + 0x7fff + ((w >>> 16) & 1)) / 65536) & 0xffff;
}

// ---- e8m0 (MXFP4 block scale) ----

/** float32 value of 2^(e-128): half the e8m0 scale, as MXFP4 stores doubled codes. e=0,1 are subnormal. */
export function e8m0HalfToFloat(e: number): number {
  return floatOfBits(e < 2 ? 0x00200000 << e : (e - 1) << 23);
}

// ---- the three float codecs ----

function u32View(a: Float32Array, n: number): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, n);
}
function u16View(a: Uint8Array, n: number): Uint16Array {
  if (a.byteOffset % 2 !== 0) return new Uint16Array(a.slice(0, 2 * n).buffer);
  return new Uint16Array(a.buffer, a.byteOffset, n);
}

export const f32Codec: Codec = {
  decode(src, dst, n) {
    // Copied as integers so NaN payloads survive.
    u32View(dst, n).set(new Uint32Array(src.slice(0, 4 * n).buffer));
  },
  encode(src, dst, n) {
    dst.set(new Uint8Array(src.buffer, src.byteOffset, 4 * n));
  },
};

export const f16Codec: Codec = {
  decode(src, dst, n) {
    const halves = u16View(src, n);
    const out = u32View(dst, n);
    for (let i = 0; i < n; i++) out[i] = halfToFloatBits(halves[i]!);
  },
  encode(src, dst, n) {
    const bits = u32View(src, n);
    for (let i = 0; i < n; i++) {
      const h = floatBitsToHalf(bits[i]!);
      dst[2 * i] = h & 0xff;
      dst[2 * i + 1] = h >> 8;
    }
  },
};

export const bf16Codec: Codec = {
  decode(src, dst, n) {
    const halves = u16View(src, n);
    const out = u32View(dst, n);
    for (let i = 0; i < n; i++) out[i] = (halves[i]! << 16) >>> 0;
  },
  encode(src, dst, n) {
    const bits = u32View(src, n);
    for (let i = 0; i < n; i++) {
      const h = floatBitsToBf16(bits[i]!);
      dst[2 * i] = h & 0xff;
      dst[2 * i + 1] = h >> 8;
    }
  },
};
