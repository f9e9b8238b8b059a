// Whole models on the CPU backend against the reference backend: tiny
// synthesized llama and gpt-oss files in every weight type the CPU kernels
// multiply. Both run the same prompt, then greedy steps fed the reference's
// pick. Claims: logits within the type's tolerance at every step, and the
// same greedy pick except where the reference's own margin is under it.
// (Against llama.cpp itself: src/model/cpu-parity.test.ts.)
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../../gguf/reader.ts";
import { GGMLType } from "../../gguf/types.ts";
import { Model } from "../../model/model.ts";
import { synthesize } from "../../model/synth.ts";
import { ReferenceBackend } from "../reference/reference-backend.ts";
import { CpuBackend } from "./cpu-backend.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-cpu-model-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const argmax = (v: Float32Array) => v.reduce((best, x, i) => (x > v[best]! ? i : best), 0);

function compare(arch: "llama" | "gpt-oss", type: GGMLType, promptLength: number, steps: number) {
  const path = join(dir, `${arch}-${GGMLType[type]}.gguf`);
  synthesize({ preset: { arch, name: "tiny" }, type, seed: 7 }, path);
  const file = openGGUF(path);
  const ref = Model.load(file, new ReferenceBackend(), { contextLimit: 256 });
  const cpu = Model.load(file, new CpuBackend({ threads: 2 }), { contextLimit: 256 });
  const prompt = Int32Array.from({ length: promptLength }, (_, i) => (i * 97 + 11) % 1000);
  let theirs = ref.backend.download(ref.forward(prompt)), ours = cpu.backend.download(cpu.forward(prompt));
  let maxDiff = 0, same = 0;
  const disagreements: { step: number; margin: number }[] = [];
  for (let step = 0; step < steps; step++) {
    for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - theirs[i]!));
    const pick = argmax(theirs), mine = argmax(ours);
    if (pick === mine) same++;
    else disagreements.push({ step, margin: theirs[pick]! - theirs[mine]! });
    if (step + 1 === steps) break;
    theirs = ref.backend.download(ref.forward(Int32Array.of(pick)));
    ours = cpu.backend.download(cpu.forward(Int32Array.of(pick)));
  }
  return { maxDiff, same, disagreements };
}

// Float weights: summation order only (F16: the CPU product rounds activations
// to F16 as ggml's vec_dot_f16, the reference does not). BF16 and quantized
// weights round activations (to BF16, Q8_0, Q8_K) on both sides, and an ulp of
// summation order can move a value across a rounding step: ~0.01-0.03 here.
const FLOAT = 1e-3, HALF = 5e-3, ROUNDED = 0.06;

const llamaTypes: [GGMLType, number][] = [
  [GGMLType.F32, FLOAT], [GGMLType.F16, HALF], [GGMLType.BF16, ROUNDED], [GGMLType.Q8_0, ROUNDED], [GGMLType.Q4_0, ROUNDED],
  [GGMLType.Q4_1, ROUNDED], [GGMLType.Q5_0, ROUNDED], [GGMLType.Q5_1, ROUNDED], [GGMLType.Q2_K, ROUNDED],
  [GGMLType.Q3_K, ROUNDED], [GGMLType.Q4_K, ROUNDED], [GGMLType.Q5_K, ROUNDED], [GGMLType.Q6_K, ROUNDED],
];
// gpt-oss's router picks experts by top-k: a near-tie in the router can swap an
// expert, a discontinuous jump; these prompts and seeds have none.
const gptOssTypes: [GGMLType, number][] = [
  [GGMLType.F32, FLOAT], [GGMLType.F16, HALF], [GGMLType.Q8_0, ROUNDED], [GGMLType.Q4_0, ROUNDED],
  [GGMLType.Q4_K, ROUNDED], [GGMLType.MXFP4, ROUNDED],
];

describe("Model on CpuBackend against ReferenceBackend", () => {
  const cases = [
    ...llamaTypes.map(([t, tol]) => ["llama", t, tol, 12, 16] as const),
    // 24 prompt tokens: past gpt-oss tiny's sliding window of 16.
    ...gptOssTypes.map(([t, tol]) => ["gpt-oss", t, tol, 24, 16] as const),
  ];
  for (const [arch, type, tolerance, promptLength, steps] of cases) {
    it(`tiny ${arch} ${GGMLType[type]}: logits within ${tolerance} over ${steps} steps, greedy picks identical except near-ties`, () => {
      const r = compare(arch, type, promptLength, steps);
      console.log(`cpu vs reference, ${arch} ${GGMLType[type]}: max |logit diff| ${r.maxDiff.toExponential(2)}, ${r.same}/${steps} picks identical`);
      expect(r.maxDiff).toBeLessThan(tolerance);
      expect(r.disagreements.filter((d) => d.margin >= tolerance)).toEqual([]);
    }, 30_000);
  }
});
