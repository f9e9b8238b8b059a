// First-token logits and 64 greedy tokens of the gpt-oss reference path against
// llama.cpp on the tiny preset (window 16 on layer 0, full attention on layer
// 1). The 53-token harmony prompt plus 64 generated tokens run far past the
// window, so both kinds of layer, sinks, YaRN and the MoE are exercised.
import { describe, expect, it } from "bun:test";
import { GGMLType } from "../gguf/types.ts";
import { FLOAT_WEIGHTS_TOLERANCE, QUANTIZED_WEIGHTS_TOLERANCE, describeNearTies, greedyDisagreement, runParity } from "./parity-harness.ts";

const PROMPT = "<|start|>user<|message|>The quick brown fox jumps over the lazy dog, and then the dog runs after the fox through the field and over the hill.<|end|><|start|>assistant";
// ggml's flash attention takes its float32 tiled path from 64 queries on.
const LONG_PROMPT = `<|start|>user<|message|>${"It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness. ".repeat(4)}<|end|><|start|>assistant`;

const cases: { type: GGMLType; name: string; tolerance: number; prompt: string }[] = [
  { type: GGMLType.F32, name: "F32", tolerance: FLOAT_WEIGHTS_TOLERANCE, prompt: PROMPT },
  { type: GGMLType.F32, name: "F32, a prompt of over 64 tokens", tolerance: FLOAT_WEIGHTS_TOLERANCE, prompt: LONG_PROMPT },
  { type: GGMLType.Q8_0, name: "Q8_0", tolerance: QUANTIZED_WEIGHTS_TOLERANCE, prompt: PROMPT },
  { type: GGMLType.MXFP4, name: "MXFP4 experts, Q8_0 elsewhere", tolerance: QUANTIZED_WEIGHTS_TOLERANCE, prompt: PROMPT },
];

describe("gpt-oss reference backend against llama.cpp", () => {
  for (const c of cases) {
    it(`tiny ${c.name}: prompt longer than the sliding window, first-token logits within ${c.tolerance}; 64 greedy picks identical except near-ties under it`, () => {
      const r = runParity({ arch: "gpt-oss", preset: "tiny", type: c.type, prompt: c.prompt, generate: 64 });
            console.log(`gpt-oss tiny ${c.name}: ${r.promptTokens} prompt tokens, first-token max |diff| ${r.firstLogitsMaxAbsDiff.toExponential(2)} (max |logit| ${r.firstLogitsMaxAbs.toFixed(2)}), over all steps ${r.allStepsMaxAbsDiff.toExponential(2)}; ${describeNearTies(r)}`);
      expect(r.promptTokens).toBeGreaterThan(16);
      expect(r.firstLogitsMaxAbsDiff).toBeLessThan(c.tolerance);
      expect(r.ours).toHaveLength(64);
      expect(greedyDisagreement(r, c.tolerance)).toBeNull();
    }, 60_000);
  }
});
