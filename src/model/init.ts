// Seeded random weights for synthetic models.
//
// Every tensor draws from its own stream, keyed by (seed, tensor name), so a
// tensor's values do not depend on which tensors came before it or on how the
// generator splits it into chunks: same seed, same name -> same numbers.
//
// Values are uniform on [mean - a, mean + a] with a = std * sqrt(3) (which has
// standard deviation `std`), not normal: a uniform draw costs a few integer
// ops, a normal one a log, a square root and a cosine, and gpt-oss-20b has 21
// billion weights to draw. Random weights only need the right scale.

/** How a tensor's values are drawn. */
export interface InitSpec {
  mean: number;
  std: number;
}

/** 32-bit FNV-1a of a string's UTF-16 code units. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32 step: spreads a 32-bit state into a well-mixed output. */
function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A xoshiro128** generator: four 32-bit words of state, one unsigned 32-bit
 * output per step. `fill` is the hot loop and keeps the state in locals.
 */
export class TensorRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** Stream for one tensor of one seeded model. `seed` is any safe integer. */
  constructor(seed: number, name: string) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
    const low = seed >>> 0;
    const high = Math.floor(seed / 2 ** 32) >>> 0;
    let x = fnv1a(name) ^ splitmix32(low) ^ Math.imul(splitmix32(high ^ 0x5bd1e995), 3);
    x = splitmix32(x);
    this.s0 = x = splitmix32(x + 1);
    this.s1 = x = splitmix32(x + 2);
    this.s2 = x = splitmix32(x + 3);
    this.s3 = splitmix32(x + 4);
    // xoshiro must not start from all zeros.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Fills `out` with the next out.length values drawn as `spec` says. */
  fill(out: Float32Array, spec: InitSpec): void {
    const halfWidth = spec.std * Math.sqrt(3);
    // Maps a uint32 u to mean + halfWidth * (2u/2^32 - 1).
    const scale = (2 * halfWidth) / 2 ** 32;
    const offset = spec.mean - halfWidth;
    let s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    for (let i = 0; i < out.length; i++) {
      const x = Math.imul(s1, 5);
      const r = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = offset + r * scale;
    }
    this.s0 = s0; this.s1 = s1; this.s2 = s2; this.s3 = s3;
  }
}

