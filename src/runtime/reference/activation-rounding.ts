// ggml's CPU backend does not multiply float32 activations with a quantized
// weight: it first converts each activation row to the weight's "vec_dot"
// type (ggml-cpu.c type_traits_cpu) and dots the two in that form. Measured on
// the tiny synthetic llama, leaving this out moves first-token logits by ~0.02
// for Q8_0/Q4_0/Q4_K weights and parts greedy generation after a few tokens,
// so the reference rounds activations the same way and then dots in float.
//   F16 -> none: ggml lists F16 as F16's vec_dot type, but llama.cpp's CPU
//     build here matches unrounded activations (single token: 3e-5 max logit
//     difference) and not F16-rounded ones (9e-4), so none it is;
//   BF16 -> BF16;
//   Q4_0, Q5_0, Q8_0, MXFP4, IQ4_NL (Q8_0) and Q4_1, Q5_1 (Q8_1, the same
//   values) -> blocks of 32 with d = amax/127 (stored F16), q = round(x*127/amax);
//   K-quants and other IQ types (Q8_K) -> blocks of 256, iscale = -127/max
//   (max: the value of largest magnitude), q = min(127, round(iscale*x)), d = 1/iscale (F32).
// The rounding is to nearest even, as the x86 paths llama.cpp runs here do.
import { GGMLType } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";

export type ActivationRounding = "none" | "f16" | "bf16" | "q8_0" | "q8_k";

const Q8_0_FAMILY = new Set([GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q8_0, GGMLType.MXFP4, GGMLType.IQ4_NL]);
const Q8_K_FAMILY = new Set([
  GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.IQ2_XXS, GGMLType.IQ2_XS, GGMLType.IQ2_S,
  GGMLType.IQ3_XXS, GGMLType.IQ3_S, GGMLType.IQ1_S, GGMLType.IQ1_M, GGMLType.IQ4_XS, GGMLType.TQ1_0, GGMLType.TQ2_0,
]);

export function activationRoundingFor(weightType: GGMLType): ActivationRounding {
  if (weightType === GGMLType.BF16) return "bf16";
  if (Q8_0_FAMILY.has(weightType)) return "q8_0";
  if (Q8_K_FAMILY.has(weightType)) return "q8_k";
  return "none";
}

const f = Math.fround;

/** Round half to even, as _mm256_round_ps(_MM_ROUND_NEAREST) and ggml's nearest_int. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const f16 = new Float16Array(1);
const toF16 = (x: number) => ((f16[0] = x), f16[0]!);

const bf16Bits = new Float32Array(1);
const bf16Word = new Uint32Array(bf16Bits.buffer);
function toBF16(x: number): number {
  bf16Bits[0] = x;
  const u = bf16Word[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return x; // NaN stays NaN
  bf16Word[0] = ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) << 16;
  return bf16Bits[0]!;
}

function roundQ8_0(x: Float32Array, out: Float32Array, start: number, count: number): void {
  let amax = 0;
  for (let i = start; i < start + count; i++) amax = Math.max(amax, Math.abs(x[i]!));
  const d = toF16(f(amax / 127));
  const id = amax !== 0 ? f(127 / amax) : 0;
  for (let i = start; i < start + count; i++) out[i] = d * roundEven(f(x[i]! * id));
}

function roundQ8_K(x: Float32Array, out: Float32Array, start: number, count: number): void {
  let amax = 0, max = 0;
  for (let i = start; i < start + count; i++) {
    const ax = Math.abs(x[i]!);
    if (ax > amax) { amax = ax; max = x[i]!; }
  }
  if (amax === 0) { out.fill(0, start, start + count); return; }
  const iscale = f(-127 / max);
  const d = f(1 / iscale);
  for (let i = start; i < start + count; i++) out[i] = d * Math.min(127, roundEven(f(iscale * x[i]!)));
}

/** x (rows of `width`) as ggml's product would see it against a weight of this rounding. */
export function roundActivations(x: Float32Array, width: number, rounding: ActivationRounding): Float32Array {
  if (rounding === "none") return x;
  const out = new Float32Array(x.length);
  if (rounding === "f16") { for (let i = 0; i < x.length; i++) out[i] = toF16(x[i]!); return out; }
  if (rounding === "bf16") { for (let i = 0; i < x.length; i++) out[i] = toBF16(x[i]!); return out; }
  const block = rounding === "q8_0" ? 32 : 256;
  if (width % block !== 0) throw new PsionicError("backend.shape", `activation rows of ${width} are not whole ${rounding} blocks of ${block}`);
  const roundBlock = rounding === "q8_0" ? roundQ8_0 : roundQ8_K;
  for (let start = 0; start < x.length; start += block) roundBlock(x, out, start, block);
  return out;
}
