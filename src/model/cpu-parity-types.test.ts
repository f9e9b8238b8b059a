// The CPU backend against llama.cpp for the weight types cpu-parity.test.ts
// does not cover (it holds the ones llama.cpp's AMX and repack paths take):
// first-token logits and 64 teacher-forced greedy tokens on the tiny llama
// and the tiny gpt-oss (its prompt runs past the 16-token sliding window),
// two threads on both sides.
import { describe, expect, it } from "bun:test";
import { GGMLType } from "../gguf/types.ts";
import { CpuBackend } from "../runtime/cpu/cpu-backend.ts";
import { cpuHasAmx } from "../runtime/cpu/ggml-matmul-oracle.ts";
import { FLOAT_WEIGHTS_TOLERANCE, QUANTIZED_WEIGHTS_TOLERANCE, describeNearTies, greedyDisagreement, runParity } from "./parity-harness.ts";

const PROMPTS = {
  llama: "The quick brown fox jumps over the lazy dog",
  "gpt-oss": "<|start|>user<|message|>The quick brown fox jumps over the lazy dog, and then the dog runs after the fox through the field and over the hill.<|end|><|start|>assistant",
};
const TYPES: [GGMLType, number][] = [
  [GGMLType.BF16, FLOAT_WEIGHTS_TOLERANCE],
  [GGMLType.Q4_1, QUANTIZED_WEIGHTS_TOLERANCE],
  [GGMLType.Q5_0, QUANTIZED_WEIGHTS_TOLERANCE],
  [GGMLType.Q5_1, QUANTIZED_WEIGHTS_TOLERANCE],
  [GGMLType.Q2_K, QUANTIZED_WEIGHTS_TOLERANCE],
  [GGMLType.Q3_K, QUANTIZED_WEIGHTS_TOLERANCE],
  [GGMLType.Q5_K, QUANTIZED_WEIGHTS_TOLERANCE],
  [GGMLType.Q6_K, QUANTIZED_WEIGHTS_TOLERANCE],
];

const GPT_OSS_TYPES: [GGMLType, number][] = [[GGMLType.F32, FLOAT_WEIGHTS_TOLERANCE], ...TYPES];

// Cases whose every product (dense and expert) takes llama.cpp's exact order on an
// AMX machine (docs/PARITY.md §5): there every logit of every step must be identical.
const AMX = cpuHasAmx();
const EXACT = new Set(["llama BF16", "llama Q4_1", "llama Q5_1", "llama Q3_K", "llama Q6_K", "gpt-oss BF16", "gpt-oss Q4_1", "gpt-oss Q5_1", "gpt-oss Q3_K", "gpt-oss Q5_K", "gpt-oss Q6_K"]);

describe("CpuBackend against llama.cpp, the other weight types", () => {
  const cases = [...TYPES.map(([t, tol]) => ["llama", t, tol] as const), ...GPT_OSS_TYPES.map(([t, tol]) => ["gpt-oss", t, tol] as const)];
  for (const [arch, type, tolerance] of cases) {
    it(`tiny ${arch} ${GGMLType[type]}: first-token logits within ${tolerance}; 64 greedy picks identical except near-ties under it`, () => {
      const r = runParity({ arch, preset: "tiny", type, prompt: PROMPTS[arch], generate: 64, backend: new CpuBackend({ threads: 2 }) });
      const same = r.ours.filter((t, i) => t === r.theirs[i]).length;
      console.log(`cpu vs llama.cpp | ${arch} ${GGMLType[type]} | first-token max |diff| ${r.firstLogitsMaxAbsDiff.toExponential(2)} | all steps ${r.allStepsMaxAbsDiff.toExponential(2)} | ${same}/64 identical | ${describeNearTies(r)}`);
      if (arch === "gpt-oss") expect(r.promptTokens).toBeGreaterThan(16);
      expect(r.firstLogitsMaxAbsDiff).toBeLessThan(tolerance);
      expect(r.ours).toHaveLength(64);
      expect(greedyDisagreement(r, tolerance)).toBeNull();
      if (AMX && EXACT.has(`${arch} ${GGMLType[type]}`)) {
        expect(r.ours).toEqual(r.theirs);
        expect(r.allStepsMaxAbsDiff).toBe(0);
      }
    }, 60_000);
  }
});
