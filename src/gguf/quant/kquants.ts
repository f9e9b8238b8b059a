// K-quants: super-blocks of 256 values split into sub-blocks that each carry a
// small integer scale (and for Q2_K/Q4_K/Q5_K a minimum), themselves scaled by
// fp16 super-block factors. Layouts, from ggml-common.h:
//   q2_K  (84 B): scales[16] (4-bit scale | 4-bit min), qs[64] (2-bit), d, dmin
//   q3_K (110 B): hmask[32] (3rd bit), qs[64] (2-bit), scales[12] (16 x 6-bit), d
//   q4_K (144 B): d, dmin, scales[12] (8 x 6-bit scale + 8 x 6-bit min), qs[128]
//   q5_K (176 B): d, dmin, scales[12], qh[32] (5th bit), qs[128]
//   q6_K (210 B): ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8), d
// Encoding runs ggml's quantize_row_*_ref (kquant-search.ts has the searches).
import { GGMLType } from "../types.ts";
import { blockCodec, type BlockFormat, type Codec } from "./codec.ts";
import { bitsOfFloat, floatToHalf, halfToFloat, halfToFloatBits, intBits, mulBits, subBits } from "./float.ts";
import { nearestInt, q3ScaleSearch, scaleMinSearch, symmetricScaleSearch } from "./kquant-search.ts";

const f = Math.fround;
const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));
const readHalf = (src: Uint8Array, o: number) => src[o]! | (src[o + 1]! << 8);
function writeHalf(dst: Uint8Array, o: number, h: number) {
  dst[o] = h & 0xff;
  dst[o + 1] = h >> 8;
}

/**
 * One sub-block's decoding factors, kept both as values and as float32 bits so
 * a NaN or infinite super-block scale yields exactly ggml's bits:
 * value = (d * scale) * q - (dmin * min).
 */
class SubBlock {
  d = 0; dBits = 0; m = 0; mBits = 0;
  set(superD: number, superDBits: number, scale: number, superMin: number, superMinBits: number, min: number): this {
    this.d = f(superD * scale);
    this.dBits = this.d === this.d ? bitsOfFloat(this.d) : mulBits(superDBits, intBits(scale));
    this.m = f(superMin * min);
    this.mBits = this.m === this.m ? bitsOfFloat(this.m) : mulBits(superMinBits, intBits(min));
    return this;
  }
  put(y: Float32Array, yBits: Uint32Array, k: number, q: number) {
    const r = f(f(this.d * q) - this.m);
    if (r === r) y[k] = r;
    else yBits[k] = subBits(mulBits(this.dBits, intBits(q)), this.mBits);
  }
  /** value = (d * scale) * q, for the types without a minimum. */
  putScaled(y: Float32Array, yBits: Uint32Array, k: number, q: number) {
    const r = f(this.d * q);
    if (r === r) y[k] = r;
    else yBits[k] = mulBits(this.dBits, intBits(q));
  }
}

function superScales(src: Uint8Array, o: number) {
  const dh = readHalf(src, o), mh = readHalf(src, o + 2);
  return { d: halfToFloat(dh), dBits: halfToFloatBits(dh), min: halfToFloat(mh), minBits: halfToFloatBits(mh) };
}

/** bytes[i] |= bits (written out for noUncheckedIndexedAccess). */
function setBits(bytes: Uint8Array, i: number, bits: number) {
  bytes[i] = bytes[i]! | bits;
}

/** Q4_K/Q5_K: 6-bit scale and min of sub-block j from the 12 packed bytes at `o`. */
function scaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j]! & 63, q[o + j + 4]! & 63];
  return [(q[o + j + 4]! & 0xf) | ((q[o + j - 4]! >> 6) << 4), (q[o + j + 4]! >> 4) | ((q[o + j]! >> 6) << 4)];
}

function packScaleMinK4(scales: Uint8Array, o: number, j: number, ls: number, lm: number) {
  if (j < 4) {
    scales[o + j] = ls;
    scales[o + j + 4] = lm;
  } else {
    scales[o + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
    setBits(scales, o + j - 4, (ls >> 4) << 6);
    setBits(scales, o + j, (lm >> 4) << 6);
  }
}

const q2_K: BlockFormat = {
  name: "q2_K", blockSize: 256, typeSize: 84,
  decodeBlock(src, o, y, yBits, k) {
    const s = superScales(src, o + 80);
    const sub = new SubBlock();
    for (let e = 0; e < 256; e += 16) {
      const sc = src[o + e / 16]!;
      sub.set(s.d, s.dBits, sc & 0xf, s.min, s.minBits, sc >> 4);
      const half = e >> 7, shift = ((e >> 5) & 3) * 2, base = o + 16 + half * 32 + (e & 16);
      for (let l = 0; l < 16; l++) sub.put(y, yBits, k + e + l, (src[base + l]! >> shift) & 3);
    }
  },
  encodeBlock(x, k, dst, o) {
    const L = new Uint8Array(256), weights = new Float32Array(16);
    const scales = new Float32Array(16), mins = new Float32Array(16);
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[k + 16 * j + l]!);
      const [scale, min] = scaleMinSearch(16, 3, x, k + 16 * j, weights, L, 16 * j, { rmin: -0.5, rdelta: 0.1, nstep: 15, absoluteError: true });
      scales[j] = scale;
      mins[j] = min;
      if (scale > maxScale) maxScale = scale;
      if (min > maxMin) maxMin = min;
    }
    dst.fill(0, o, o + 84);
    if (maxScale > 0) {
      const iscale = f(15 / maxScale);
      for (let j = 0; j < 16; j++) dst[o + j] = nearestInt(f(iscale * scales[j]!));
      writeHalf(dst, o + 80, floatToHalf(f(maxScale / 15)));
    }
    if (maxMin > 0) {
      const iscale = f(15 / maxMin);
      for (let j = 0; j < 16; j++) setBits(dst, o + j, nearestInt(f(iscale * mins[j]!)) << 4);
      writeHalf(dst, o + 82, floatToHalf(f(maxMin / 15)));
    }
    const d = halfToFloat(readHalf(dst, o + 80)), dmin = halfToFloat(readHalf(dst, o + 82));
    for (let j = 0; j < 16; j++) {
      const dl = f(d * (dst[o + j]! & 0xf));
      if (dl === 0) continue; // C's `!d`: a NaN scale does not skip
      const ml = f(dmin * (dst[o + j]! >> 4));
      for (let i = 0; i < 16; i++) L[16 * j + i] = clamp(nearestInt(f(f(x[k + 16 * j + i]! + ml) / dl)), 0, 3);
    }
    for (let j = 0; j < 256; j += 128) {
      for (let l = 0; l < 32; l++) {
        dst[o + 16 + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
      }
    }
  },
};

/** Q3_K: the 6-bit scale of sub-block j (0..63, stored with +32 bias) from the 12 packed bytes at `o`. */
function q3Scale(src: Uint8Array, o: number, j: number): number {
  const low = j < 8 ? src[o + j]! & 0xf : src[o + j - 8]! >> 4;
  return low | (((src[o + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3) << 4);
}

const q3_K: BlockFormat = {
  name: "q3_K", blockSize: 256, typeSize: 110,
  decodeBlock(src, o, y, yBits, k) {
    const dh = readHalf(src, o + 108), d = halfToFloat(dh), dBits = halfToFloatBits(dh);
    const sub = new SubBlock();
    for (let e = 0; e < 256; e += 16) {
      sub.set(d, dBits, q3Scale(src, o + 96, e / 16) - 32, 0, 0, 0);
      const half = e >> 7, j = (e >> 5) & 3, base = (e & 16) + 0;
      const qBase = o + 32 + half * 32 + base, hBase = o + base, bit = 1 << (half * 4 + j);
      for (let l = 0; l < 16; l++) {
        const q = ((src[qBase + l]! >> (2 * j)) & 3) - (src[hBase + l]! & bit ? 0 : 4);
        sub.putScaled(y, yBits, k + e + l, q);
      }
    }
  },
  encodeBlock(x, k, dst, o) {
    const L = new Int8Array(256), scales = new Float32Array(16);
    let maxScale = 0, amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = q3ScaleSearch(16, 4, x, k + 16 * j, L, 16 * j);
      const scale = Math.abs(scales[j]!);
      if (scale > amax) { amax = scale; maxScale = scales[j]!; }
    }
    dst.fill(0, o, o + 110);
    const sc = o + 96;
    if (maxScale !== 0) {
      const iscale = f(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        let l = (nearestInt(f(iscale * scales[j]!)) << 24) >> 24;
        l = clamp(l, -32, 31) + 32;
        if (j < 8) dst[sc + j] = l & 0xf;
        else setBits(dst, sc + j - 8, (l & 0xf) << 4);
        setBits(dst, sc + 8 + (j % 4), (l >> 4) << (2 * (j >> 2)));
      }
      writeHalf(dst, o + 108, floatToHalf(f(1 / iscale)));
    }
    const d = halfToFloat(readHalf(dst, o + 108));
    for (let j = 0; j < 16; j++) {
      const dl = f(d * (q3Scale(dst, sc, j) - 32));
      if (dl === 0) continue; // C's `!d`: a NaN scale does not skip
      for (let i = 0; i < 16; i++) L[16 * j + i] = clamp(nearestInt(f(x[k + 16 * j + i]! / dl)), -4, 3) + 4;
    }
    // High bit of element j goes to hmask[j % 32], bit j / 32.
    for (let j = 0; j < 256; j++) {
      if (L[j]! > 3) {
        setBits(dst, o + (j % 32), 1 << (j >> 5));
        L[j] = L[j]! - 4;
      }
    }
    for (let j = 0; j < 256; j += 128) {
      for (let l = 0; l < 32; l++) {
        dst[o + 32 + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
      }
    }
  },
};

/** Shared by Q4_K and Q5_K: the scale search and 6-bit packing of scales and mins; returns the codes. */
function encodeScaleMinK4(x: Float32Array, k: number, dst: Uint8Array, o: number, nmax: number, search: { rmin: number; nstep: number }): Uint8Array {
  const L = new Uint8Array(256), weights = new Float32Array(32);
  const scales = new Float32Array(8), mins = new Float32Array(8);
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[k + 32 * j + l]! * x[k + 32 * j + l]!));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[k + 32 * j + l]!));
    const [scale, min] = scaleMinSearch(32, nmax, x, k + 32 * j, weights, L, 32 * j, { rmin: search.rmin, rdelta: 0.1, nstep: search.nstep, absoluteError: false });
    scales[j] = scale;
    mins[j] = min;
    if (scale > maxScale) maxScale = scale;
    if (min > maxMin) maxMin = min;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(f(invMin * mins[j]!)) & 0xff);
    packScaleMinK4(dst, o + 4, j, ls, lm);
  }
  writeHalf(dst, o, floatToHalf(f(maxScale / 63)));
  writeHalf(dst, o + 2, floatToHalf(f(maxMin / 63)));
  const d = halfToFloat(readHalf(dst, o)), dmin = halfToFloat(readHalf(dst, o + 2));
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, dst, o + 4);
    const dl = f(d * sc);
    if (dl === 0) continue; // C's `!d`: a NaN scale does not skip
    const ml = f(dmin * m);
    for (let i = 0; i < 32; i++) L[32 * j + i] = clamp(nearestInt(f(f(x[k + 32 * j + i]! + ml) / dl)), 0, nmax);
  }
  return L;
}

const q4_K: BlockFormat = {
  name: "q4_K", blockSize: 256, typeSize: 144,
  decodeBlock(src, o, y, yBits, k) {
    const s = superScales(src, o);
    const sub = new SubBlock();
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(j, src, o + 4);
      sub.set(s.d, s.dBits, sc, s.min, s.minBits, m);
      const base = o + 16 + (j >> 1) * 32, shift = (j & 1) * 4;
      for (let l = 0; l < 32; l++) sub.put(y, yBits, k + 32 * j + l, (src[base + l]! >> shift) & 0xf);
    }
  },
  encodeBlock(x, k, dst, o) {
    dst.fill(0, o, o + 144);
    const L = encodeScaleMinK4(x, k, dst, o, 15, { rmin: -1, nstep: 20 });
    for (let j = 0; j < 256; j += 64) {
      for (let l = 0; l < 32; l++) dst[o + 16 + j / 2 + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
  },
};

const q5_K: BlockFormat = {
  name: "q5_K", blockSize: 256, typeSize: 176,
  decodeBlock(src, o, y, yBits, k) {
    const s = superScales(src, o);
    const sub = new SubBlock();
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(j, src, o + 4);
      sub.set(s.d, s.dBits, sc, s.min, s.minBits, m);
      const base = o + 48 + (j >> 1) * 32, shift = (j & 1) * 4, high = 1 << j;
      for (let l = 0; l < 32; l++) {
        const q = ((src[base + l]! >> shift) & 0xf) + (src[o + 16 + l]! & high ? 16 : 0);
        sub.put(y, yBits, k + 32 * j + l, q);
      }
    }
  },
  encodeBlock(x, k, dst, o) {
    dst.fill(0, o, o + 176);
    const L = encodeScaleMinK4(x, k, dst, o, 31, { rmin: -0.5, nstep: 15 });
    for (let j = 0; j < 8; j += 2) {
      for (let l = 0; l < 32; l++) {
        let l1 = L[32 * j + l]!, l2 = L[32 * j + 32 + l]!;
        if (l1 > 15) { l1 -= 16; setBits(dst, o + 16 + l, 1 << j); }
        if (l2 > 15) { l2 -= 16; setBits(dst, o + 16 + l, 2 << j); }
        dst[o + 48 + 16 * j + l] = l1 | (l2 << 4);
      }
    }
  },
};

const q6_K: BlockFormat = {
  name: "q6_K", blockSize: 256, typeSize: 210,
  decodeBlock(src, o, y, yBits, k) {
    const dh = readHalf(src, o + 208), d = halfToFloat(dh), dBits = halfToFloatBits(dh);
    const sub = new SubBlock();
    for (let e = 0; e < 256; e += 16) {
      // Element e+l: half h = e/128, quarter r = (e/32)%4, within-quarter l' = e%32 + l.
      const h = e >> 7, r = (e >> 5) & 3;
      sub.set(d, dBits, (src[o + 192 + e / 16]! << 24) >> 24, 0, 0, 0);
      const qlBase = o + h * 64 + (r & 1) * 32 + (e & 16), shift = (r >> 1) * 4;
      const qhBase = o + 128 + h * 32 + (e & 16), highShift = r * 2;
      for (let l = 0; l < 16; l++) {
        const q = (((src[qlBase + l]! >> shift) & 0xf) | (((src[qhBase + l]! >> highShift) & 3) << 4)) - 32;
        sub.putScaled(y, yBits, k + e + l, q);
      }
    }
  },
  encodeBlock(x, k, dst, o) {
    const L = new Int8Array(256), scales = new Float32Array(16);
    let maxScale = 0, maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = symmetricScaleSearch(16, 32, x, k + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) { maxAbsScale = Math.abs(scale); maxScale = scale; }
    }
    dst.fill(0, o, o + 210);
    if (maxAbsScale < f(1e-15)) return;
    const iscale = f(-128 / maxScale);
    writeHalf(dst, o + 208, floatToHalf(f(1 / iscale)));
    for (let ib = 0; ib < 16; ib++) dst[o + 192 + ib] = Math.min(127, nearestInt(f(iscale * scales[ib]!))) & 0xff;
    const d = halfToFloat(readHalf(dst, o + 208));
    for (let j = 0; j < 16; j++) {
      const dl = f(d * ((dst[o + 192 + j]! << 24) >> 24));
      if (dl === 0) continue; // C's `!d`: a NaN scale does not skip
      for (let i = 0; i < 16; i++) L[16 * j + i] = clamp(nearestInt(f(x[k + 16 * j + i]! / dl)), -32, 31) + 32;
    }
    for (let j = 0; j < 256; j += 128) {
      const ql = o + j / 2, qh = o + 128 + j / 4;
      for (let l = 0; l < 32; l++) {
        const q1 = L[j + l]!, q2 = L[j + l + 32]!, q3 = L[j + l + 64]!, q4 = L[j + l + 96]!;
        dst[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
        dst[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
        dst[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  },
};

export const kQuantCodecs: [GGMLType, Codec][] = [
  [GGMLType.Q2_K, blockCodec(q2_K)],
  [GGMLType.Q3_K, blockCodec(q3_K)],
  [GGMLType.Q4_K, blockCodec(q4_K)],
  [GGMLType.Q5_K, blockCodec(q5_K)],
  [GGMLType.Q6_K, blockCodec(q6_K)],
];
