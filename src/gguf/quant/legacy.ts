// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: blocks of 32 values with one fp16 scale (and
// an fp16 minimum for the _1 types). Layouts, from ggml-common.h:
//   q4_0 (18 B): d, qs[16]            value = (nibble - 8) * d
//   q4_1 (20 B): d, m, qs[16]         value = nibble * d + m
//   q5_0 (22 B): d, qh[4], qs[16]     value = (nibble | high bit << 4) - 16) * d
//   q5_1 (24 B): d, m, qh[4], qs[16]  value = (nibble | high bit << 4) * d + m
//   q8_0 (34 B): d, qs[32] (int8)     value = q * d
// Element j of the first half lives in the low nibble of qs[j], element j+16
// in the high nibble; qh bit j is the fifth bit of element j.
// Encoding follows ggml's quantize_row_*_ref operation for operation in float32.
import { GGMLType } from "../types.ts";
import { blockCodec, type BlockFormat, type Codec } from "./codec.ts";
import { addBits, floatToHalf, halfToFloat, halfToFloatBits, intBits, mulBits } from "./float.ts";

const f = Math.fround;

/** Float-to-int8 conversion as x86 does it: truncate to int32 (NaN or overflow gives INT32_MIN), keep the low byte. */
export function truncToByte(v: number): number {
  const i = v > -2147483649 && v < 2147483648 ? Math.trunc(v) : -2147483648;
  return i & 0xff;
}

/** C's roundf: halfway cases away from zero. */
export function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

const readHalf = (src: Uint8Array, o: number) => src[o]! | (src[o + 1]! << 8);
function writeHalf(dst: Uint8Array, o: number, h: number) {
  dst[o] = h & 0xff;
  dst[o + 1] = h >> 8;
}

/** y[k] = q * d, with ggml's NaN bits when d is NaN or q * d is 0 * inf. */
function putScaled(y: Float32Array, yBits: Uint32Array, k: number, q: number, d: number, dBits: number) {
  const r = f(q * d);
  if (r === r) y[k] = r;
  else yBits[k] = mulBits(intBits(q), dBits);
}

/** y[k] = q * d + m, likewise. */
function putScaledShifted(y: Float32Array, yBits: Uint32Array, k: number, q: number, d: number, dBits: number, m: number, mBits: number) {
  const r = f(f(q * d) + m);
  if (r === r) y[k] = r;
  else yBits[k] = addBits(mulBits(intBits(q), dBits), mBits);
}

/** The value of largest magnitude (first one on ties) and that magnitude. */
function signedAbsMax(x: Float32Array, k: number, count: number): { amax: number; max: number } {
  let amax = 0, max = 0;
  for (let j = 0; j < count; j++) {
    const v = x[k + j]!;
    if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
  }
  return { amax, max };
}

function minMax(x: Float32Array, k: number, count: number): { min: number; max: number } {
  let min = 3.4028234663852886e38, max = -3.4028234663852886e38;
  for (let j = 0; j < count; j++) {
    const v = x[k + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

const q4_0: BlockFormat = {
  name: "q4_0", blockSize: 32, typeSize: 18,
  decodeBlock(src, o, y, yBits, k) {
    const dh = readHalf(src, o), d = halfToFloat(dh), dBits = halfToFloatBits(dh);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j]!;
      putScaled(y, yBits, k + j, (q & 15) - 8, d, dBits);
      putScaled(y, yBits, k + j + 16, (q >> 4) - 8, d, dBits);
    }
  },
  encodeBlock(x, k, dst, o) {
    const { max } = signedAbsMax(x, k, 32);
    const d = f(max / -8);
    const id = d !== 0 ? f(1 / d) : 0; // as C's `d ?`: NaN counts as non-zero
    writeHalf(dst, o, floatToHalf(d));
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, (truncToByte(f(f(x[k + j]! * id) + 8.5)) << 24) >> 24) & 0xff;
      const q1 = Math.min(15, (truncToByte(f(f(x[k + j + 16]! * id) + 8.5)) << 24) >> 24) & 0xff;
      dst[o + 2 + j] = (q0 | (q1 << 4)) & 0xff;
    }
  },
};

const q4_1: BlockFormat = {
  name: "q4_1", blockSize: 32, typeSize: 20,
  decodeBlock(src, o, y, yBits, k) {
    const dh = readHalf(src, o), d = halfToFloat(dh), dBits = halfToFloatBits(dh);
    const mh = readHalf(src, o + 2), m = halfToFloat(mh), mBits = halfToFloatBits(mh);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 4 + j]!;
      putScaledShifted(y, yBits, k + j, q & 15, d, dBits, m, mBits);
      putScaledShifted(y, yBits, k + j + 16, q >> 4, d, dBits, m, mBits);
    }
  },
  encodeBlock(x, k, dst, o) {
    const { min, max } = minMax(x, k, 32);
    const d = f(f(max - min) / 15);
    const id = d !== 0 ? f(1 / d) : 0; // as C's `d ?`: NaN counts as non-zero
    writeHalf(dst, o, floatToHalf(d));
    writeHalf(dst, o + 2, floatToHalf(min));
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, (truncToByte(f(f(f(x[k + j]! - min) * id) + 0.5)) << 24) >> 24) & 0xff;
      const q1 = Math.min(15, (truncToByte(f(f(f(x[k + j + 16]! - min) * id) + 0.5)) << 24) >> 24) & 0xff;
      dst[o + 4 + j] = (q0 | (q1 << 4)) & 0xff;
    }
  },
};

const readU32 = (src: Uint8Array, o: number) => (src[o]! | (src[o + 1]! << 8) | (src[o + 2]! << 16) | (src[o + 3]! << 24)) >>> 0;
function writeU32(dst: Uint8Array, o: number, v: number) {
  for (let b = 0; b < 4; b++) dst[o + b] = (v >>> (8 * b)) & 0xff;
}

const q5_0: BlockFormat = {
  name: "q5_0", blockSize: 32, typeSize: 22,
  decodeBlock(src, o, y, yBits, k) {
    const dh = readHalf(src, o), d = halfToFloat(dh), dBits = halfToFloatBits(dh);
    const qh = readU32(src, o + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 6 + j]!;
      putScaled(y, yBits, k + j, ((q & 15) | (((qh >>> j) & 1) << 4)) - 16, d, dBits);
      putScaled(y, yBits, k + j + 16, ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16, d, dBits);
    }
  },
  encodeBlock(x, k, dst, o) {
    const { max } = signedAbsMax(x, k, 32);
    const d = f(max / -16);
    const id = d !== 0 ? f(1 / d) : 0; // as C's `d ?`: NaN counts as non-zero
    writeHalf(dst, o, floatToHalf(d));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, (truncToByte(f(f(x[k + j]! * id) + 16.5)) << 24) >> 24) & 0xff;
      const q1 = Math.min(31, (truncToByte(f(f(x[k + j + 16]! * id) + 16.5)) << 24) >> 24) & 0xff;
      dst[o + 6 + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 & 16) >> 4) << j;
      qh |= ((q1 & 16) >> 4) << (j + 16);
    }
    writeU32(dst, o + 2, qh >>> 0);
  },
};

const q5_1: BlockFormat = {
  name: "q5_1", blockSize: 32, typeSize: 24,
  decodeBlock(src, o, y, yBits, k) {
    const dh = readHalf(src, o), d = halfToFloat(dh), dBits = halfToFloatBits(dh);
    const mh = readHalf(src, o + 2), m = halfToFloat(mh), mBits = halfToFloatBits(mh);
    const qh = readU32(src, o + 4);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 8 + j]!;
      putScaledShifted(y, yBits, k + j, (q & 15) | (((qh >>> j) & 1) << 4), d, dBits, m, mBits);
      putScaledShifted(y, yBits, k + j + 16, (q >> 4) | (((qh >>> (j + 16)) & 1) << 4), d, dBits, m, mBits);
    }
  },
  encodeBlock(x, k, dst, o) {
    const { min, max } = minMax(x, k, 32);
    const d = f(f(max - min) / 31);
    const id = d !== 0 ? f(1 / d) : 0; // as C's `d ?`: NaN counts as non-zero
    writeHalf(dst, o, floatToHalf(d));
    writeHalf(dst, o + 2, floatToHalf(min));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = truncToByte(f(f(f(x[k + j]! - min) * id) + 0.5));
      const q1 = truncToByte(f(f(f(x[k + j + 16]! - min) * id) + 0.5));
      dst[o + 8 + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 & 16) >> 4) << j;
      qh |= ((q1 & 16) >> 4) << (j + 16);
    }
    writeU32(dst, o + 4, qh >>> 0);
  },
};

const q8_0: BlockFormat = {
  name: "q8_0", blockSize: 32, typeSize: 34,
  decodeBlock(src, o, y, yBits, k) {
    const dh = readHalf(src, o), d = halfToFloat(dh), dBits = halfToFloatBits(dh);
    for (let j = 0; j < 32; j++) putScaled(y, yBits, k + j, (src[o + 2 + j]! << 24) >> 24, d, dBits);
  },
  encodeBlock(x, k, dst, o) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[k + j]!));
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0; // as C's `d ?`: NaN counts as non-zero
    writeHalf(dst, o, floatToHalf(d));
    for (let j = 0; j < 32; j++) dst[o + 2 + j] = truncToByte(roundAway(f(x[k + j]! * id)));
  },
};

export const legacyCodecs: [GGMLType, Codec][] = [
  [GGMLType.Q4_0, blockCodec(q4_0)],
  [GGMLType.Q4_1, blockCodec(q4_1)],
  [GGMLType.Q5_0, blockCodec(q5_0)],
  [GGMLType.Q5_1, blockCodec(q5_1)],
  [GGMLType.Q8_0, blockCodec(q8_0)],
];
