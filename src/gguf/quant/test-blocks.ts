// Inputs the codec tests feed to psionic and to ggml: random and edge-case
// blocks for decoding, and value distributions for encoding. Seeded, so a
// failure reproduces.
import { GGMLType, typeLayout } from "../types.ts";

/** A small deterministic generator (xorshift32); `next()` is uniform in [0, 1). */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }
  nextU32(): number {
    let x = this.state;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.state = x;
    return x;
  }
  next(): number {
    return this.nextU32() / 2 ** 32;
  }
  /** Approximately standard normal (sum of uniforms). */
  normal(): number {
    let s = 0;
    for (let i = 0; i < 6; i++) s += this.next();
    return (s - 3) * Math.SQRT2;
  }
}

/** fp16 patterns that stress a scale: signed zeros, infinities, NaNs (quiet, signaling, with payloads), subnormals, extremes. */
export const EDGE_HALVES = [
  0x0000, 0x8000, 0x7c00, 0xfc00, 0x7c01, 0x7d55, 0x7e00, 0xfe00, 0x7fff, 0xffff,
  0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x1400,
];

/** float32 patterns: signed zeros, infinities, quiet and signaling NaNs with payloads, subnormals, fp16/bf16 rounding boundaries. */
export const EDGE_FLOAT_BITS = [
  0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fbfffff,
  0x7fc12345, 0x7fffffff, 0xffffffff, 0x7f802000, 0x7fe00000, 0x00000001, 0x80000001, 0x007fffff, 0x00800000,
  0x7f7fffff, 0xff7fffff, 0x3f800000, 0x477fe000, 0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, 0x33000000,
  0x33000001, 0x387fc000, 0x38800000, 0x3f801000, 0x3f803000, 0x3f808000, 0x3f818000, 0x3f817fff, 0x7f7f8000,
];

/** Byte offsets of the fp16 scale fields in one block of each quantized type. */
export const HALF_FIELDS: Partial<Record<GGMLType, number[]>> = {
  [GGMLType.Q4_0]: [0], [GGMLType.Q4_1]: [0, 2], [GGMLType.Q5_0]: [0], [GGMLType.Q5_1]: [0, 2], [GGMLType.Q8_0]: [0],
  [GGMLType.Q2_K]: [80, 82], [GGMLType.Q3_K]: [108], [GGMLType.Q4_K]: [0, 2], [GGMLType.Q5_K]: [0, 2], [GGMLType.Q6_K]: [208],
};

export function randomBytes(rng: Random, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.nextU32() & 0xff;
  return out;
}

/**
 * Edge-case blocks of `type`: every pair of EDGE_HALVES in the scale fields
 * (every e8m0 exponent for MXFP4), with the remaining bytes walking through all
 * 256 byte values so every nibble and bit pattern of the codes appears.
 */
export function edgeBlocks(type: GGMLType): { bytes: Uint8Array; elements: number } {
  const layout = typeLayout(type)!;
  const blocks: Uint8Array[] = [];
  let counter = 0;
  const fill = (block: Uint8Array, skip: Set<number>) => {
    for (let i = 0; i < block.length; i++) if (!skip.has(i)) block[i] = counter++ & 0xff;
  };
  if (type === GGMLType.MXFP4) {
    for (let e = 0; e < 256; e++) {
      for (let rep = 0; rep < 16; rep++) {
        const block = new Uint8Array(layout.typeSize);
        block[0] = e;
        fill(block, new Set([0]));
        blocks.push(block);
      }
    }
  } else if (type === GGMLType.F32) {
    const words = new Uint32Array(EDGE_FLOAT_BITS);
    return { bytes: new Uint8Array(words.buffer), elements: words.length };
  } else if (type === GGMLType.F16 || type === GGMLType.BF16) {
    const block = new Uint8Array(2 * 65536);
    for (let h = 0; h < 65536; h++) { block[2 * h] = h & 0xff; block[2 * h + 1] = h >> 8; }
    return { bytes: block, elements: 65536 };
  } else {
    const fields = HALF_FIELDS[type]!;
    const skip = new Set(fields.flatMap((o) => [o, o + 1]));
    const second = fields.length > 1 ? EDGE_HALVES : [0];
    for (const a of EDGE_HALVES) {
      for (const b of second) {
        const block = new Uint8Array(layout.typeSize);
        fill(block, skip);
        [a, b].slice(0, fields.length).forEach((h, i) => { block[fields[i]!] = h & 0xff; block[fields[i]! + 1] = h >> 8; });
        blocks.push(block);
      }
    }
  }
  const bytes = new Uint8Array(blocks.length * layout.typeSize);
  blocks.forEach((b, i) => bytes.set(b, i * layout.typeSize));
  return { bytes, elements: blocks.length * layout.blockSize };
}

/** Named value distributions for encoding tests; each returns `n` finite float32 values. */
export function encodeInputs(n: number, seed: number): [string, Float32Array][] {
  const rng = new Random(seed);
  const make = (fn: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => fn(i));
  const nearPowersOfTwo = [1 - 2 ** -24, 1, 1 + 2 ** -23, 0.75, 1.5, 0.5 - 2 ** -25];
  return [
    ["normal", make(() => rng.normal())],
    ["uniform [-1, 1)", make(() => 2 * rng.next() - 1)],
    ["all zero", make(() => 0)],
    ["negative zeros and zeros", make((i) => (i % 3 ? -0 : 0))],
    ["constant positive", make(() => 0.3)],
    ["constant negative", make(() => -7.25)],
    ["one outlier per 32", make((i) => (i % 32 === 5 ? 100 * rng.normal() : rng.normal() * 0.01))],
    ["sparse", make(() => (rng.next() < 0.9 ? 0 : rng.normal()))],
    ["non-negative", make(() => Math.abs(rng.normal()))],
    ["non-positive", make(() => -Math.abs(rng.normal()))],
    ["tiny (1e-30)", make(() => rng.normal() * 1e-30)],
    ["subnormal float32", make(() => rng.normal() * 1e-40)],
    ["fp16-subnormal range", make(() => rng.normal() * 1e-6)],
    ["huge (1e30)", make(() => rng.normal() * 1e30)],
    ["beyond fp16 range", make(() => rng.normal() * 1e6)],
    ["near float32 max", make((i) => (i % 2 ? 3.4e38 : -3.3e38) * rng.next())],
    ["integer grid", make(() => Math.round(rng.normal() * 8))],
    ["half-step ties", make(() => (Math.floor(rng.next() * 32) - 16) + 0.5)],
    ["near powers of two", make(() => nearPowersOfTwo[Math.floor(rng.next() * nearPowersOfTwo.length)]! * 2 ** Math.floor(rng.next() * 40 - 20) * (rng.next() < 0.5 ? -1 : 1))],
    ["wide dynamic range", make(() => rng.normal() * 2 ** Math.floor(rng.next() * 60 - 30))],
  ];
}
