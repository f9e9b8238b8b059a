// The CPU backend against llama.cpp for the weight types cpu-parity.test.ts
// does not cover (it holds the ones llama.cpp's AMX and repack paths take and
// the gpt-oss cases): first-token logits and 64 teacher-forced greedy tokens
// on the tiny llama, two threads on both sides.
import { describe, expect, it } from "bun:test";
import { GGMLType } from "../gguf/types.ts";
import { CpuBackend } from "../runtime/cpu/cpu-backend.ts";
import { FLOAT_WEIGHTS_TOLERANCE, QUANTIZED_WEIGHTS_TOLERANCE, describeNearTies, greedyDisagreement, runParity } from "./parity-harness.ts";

const PROMPT = "The quick brown fox jumps over the lazy dog";
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

describe("CpuBackend against llama.cpp, the other weight types", () => {
  for (const [type, tolerance] of TYPES) {
    it(`tiny llama ${GGMLType[type]}: first-token logits within ${tolerance}; 64 greedy picks identical except near-ties under it`, () => {
      const r = runParity({ arch: "llama", preset: "tiny", type, prompt: PROMPT, generate: 64, backend: new CpuBackend({ threads: 2 }) });
      const same = r.ours.filter((t, i) => t === r.theirs[i]).length;
      console.log(`cpu vs llama.cpp | llama ${GGMLType[type]} | first-token max |diff| ${r.firstLogitsMaxAbsDiff.toExponential(2)} | all steps ${r.allStepsMaxAbsDiff.toExponential(2)} | ${same}/64 identical | ${describeNearTies(r)}`);
      expect(r.firstLogitsMaxAbsDiff).toBeLessThan(tolerance);
      expect(r.ours).toHaveLength(64);
      expect(greedyDisagreement(r, tolerance)).toBeNull();
    }, 60_000);
  }
});
