// A small seeded pseudo-random generator for sampling: xoshiro128** (Blackman &
// Vigna), state expanded from the seed with splitmix32. Chosen because it is
// fast in 32-bit integer JavaScript arithmetic, has a 2^128-1 period, and gives
// the same stream for the same seed on every machine, so a seeded generation
// repeats token for token (the validator and tests rely on that).

import { refuse } from "../util/errors.ts";

/** Largest seed accepted: seeds are unsigned 53-bit integers (any safe JS integer >= 0). */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

export class SeededRng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(readonly seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      refuse("sampler.bad-seed", `seed must be an integer in [0, ${MAX_SEED}], got ${seed}`);
    }
    this.reseed(seed);
  }

  /** Restart the stream from `seed` (the state after construction with that seed). */
  reseed(seed: number): void {
    // splitmix32 over both halves of the seed so seeds above 2^32 differ too.
    let x = (seed >>> 0) ^ Math.imul(Math.floor(seed / 4294967296) >>> 0, 0x9e3779b9);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    // The all-zero state is the one xoshiro cannot leave; splitmix32 never yields
    // four zeros in a row, but make the guarantee explicit.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextDouble(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** The generator state, to resume a stream exactly (e.g. after a snapshot). */
  getState(): [number, number, number, number] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      refuse("sampler.bad-rng-state", "an RNG state is four unsigned 32-bit integers");
    }
    if (state.every((w) => w === 0)) refuse("sampler.bad-rng-state", "the all-zero RNG state is not valid");
    [this.s0, this.s1, this.s2, this.s3] = state.map((w) => w | 0) as [number, number, number, number];
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A seed from the operating system's entropy, for requests that do not give one. */
export function freshSeed(): number {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (words[0]! & 0x1fffff) * 4294967296 + words[1]!;
}
