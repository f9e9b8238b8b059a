// First-token logits and 64 greedy tokens of the llama reference path against
// llama.cpp, on tiny synthesized models of every common weight type.
import { describe, expect, it } from "bun:test";
import { GGMLType } from "../gguf/types.ts";
import { FLOAT_WEIGHTS_TOLERANCE, QUANTIZED_WEIGHTS_TOLERANCE, describeNearTies, greedyDisagreement, runParity } from "./parity-harness.ts";

const PROMPT = "The quick brown fox jumps over the lazy dog";

const cases: { preset: string; type: GGMLType; name: string; tolerance: number }[] = [
  { preset: "tiny", type: GGMLType.F32, name: "F32", tolerance: FLOAT_WEIGHTS_TOLERANCE },
  { preset: "tiny", type: GGMLType.F16, name: "F16", tolerance: FLOAT_WEIGHTS_TOLERANCE },
  { preset: "tiny", type: GGMLType.BF16, name: "BF16", tolerance: FLOAT_WEIGHTS_TOLERANCE },
  { preset: "tiny", type: GGMLType.Q8_0, name: "Q8_0", tolerance: QUANTIZED_WEIGHTS_TOLERANCE },
  { preset: "tiny", type: GGMLType.Q4_0, name: "Q4_0", tolerance: QUANTIZED_WEIGHTS_TOLERANCE },
  { preset: "tiny", type: GGMLType.Q4_K, name: "Q4_K", tolerance: QUANTIZED_WEIGHTS_TOLERANCE },
  { preset: "tiny", type: GGMLType.Q6_K, name: "Q6_K", tolerance: QUANTIZED_WEIGHTS_TOLERANCE },
  { preset: "tiny-tied", type: GGMLType.Q8_0, name: "Q8_0 (output tied to token_embd)", tolerance: QUANTIZED_WEIGHTS_TOLERANCE },
];

describe("llama reference backend against llama.cpp", () => {
  for (const c of cases) {
    it(`${c.preset} ${c.name}: first-token logits within ${c.tolerance}; 64 greedy picks identical except near-ties under it`, () => {
      const r = runParity({ arch: "llama", preset: c.preset, type: c.type, prompt: PROMPT, generate: 64 });
      console.log(`llama ${c.preset} ${c.name}: ${r.promptTokens} prompt tokens, first-token max |diff| ${r.firstLogitsMaxAbsDiff.toExponential(2)} (max |logit| ${r.firstLogitsMaxAbs.toFixed(2)}), over all steps ${r.allStepsMaxAbsDiff.toExponential(2)}; ${describeNearTies(r)}`);
      expect(r.firstLogitsMaxAbsDiff).toBeLessThan(c.tolerance);
      expect(r.ours).toHaveLength(64);
      expect(greedyDisagreement(r, c.tolerance)).toBeNull();
    }, 60_000);
  }
});
