// Shared pieces of the ops tests: a seeded RNG, float16 rounding, error measures,
// and a loop over every instruction-set variant this CPU can run.
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../../ffi/cpu.ts";
import { seededRandom } from "../../util/seeded-random.ts";
export { seededRandom };


/** n values uniform in [-scale, scale). */
export function randomArray(random: () => number, n: number, scale = 1): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (random() * 2 - 1) * scale;
  return out;
}

const f16Scratch = new Float16Array(1);
/** The F16 bit pattern nearest to x (round to nearest even), via the engine's Float16Array. */
export function toHalfBits(values: ArrayLike<number>): Uint16Array<ArrayBuffer> {
  const halves = Float16Array.from(values);
  return new Uint16Array(halves.buffer as ArrayBuffer);
}
/** The value of x rounded to F16. */
export function roundHalf(x: number): number {
  f16Scratch[0] = x;
  return f16Scratch[0]!;
}
export function halfBitsToNumbers(bits: Uint16Array): Float64Array {
  return Float64Array.from(new Float16Array(bits.buffer, bits.byteOffset, bits.length));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return Infinity;
    if (d > max) max = d;
  }
  return max;
}

/** max |a - b| / (|b| + floor): relative error that does not blow up near zero. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-30): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + floor);
    if (Number.isNaN(d)) return Infinity;
    if (d > max) max = d;
  }
  return max;
}

/** The variants this CPU can run (portable always). */
export function runnableVariants(): (typeof CPU_VARIANTS)[number][] {
  const lib = cpuKernels();
  const runnable = CPU_VARIANTS.filter((variant) => selectCpuVariant(lib, variant));
  restoreBestVariant();
  return runnable;
}

/** Runs fn with `variant` selected, then puts the best variant back. */
export function withVariant<T>(variant: (typeof CPU_VARIANTS)[number], fn: () => T): T {
  const lib = cpuKernels();
  if (!selectCpuVariant(lib, variant)) throw new Error(`variant ${variant} is not runnable here`);
  try {
    return fn();
  } finally {
    restoreBestVariant();
  }
}

function restoreBestVariant(): void {
  const lib = cpuKernels();
  if (!selectCpuVariant(lib, "avx512") && !selectCpuVariant(lib, "avx2")) selectCpuVariant(lib, "portable");
}
