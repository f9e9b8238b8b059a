import { describe, expect, it } from "bun:test";
import { SeededRng } from "./rng.ts";
import { Sampler, type SamplerOptions } from "./sampler.ts";
import { llamaFilteredCandidates } from "./sampler-llama-oracle.ts";

function randomLogits(rng: SeededRng, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.nextDouble() + rng.nextDouble() + rng.nextDouble() - 1.5) * scale;
  return out;
}

/** token -> probability over the tokens with any mass (llama.cpp's greedy temp keeps the rest at -inf). */
function softmaxOf(cands: { id: number; logit: number }[]): Map<number, number> {
  const max = Math.max(...cands.map((c) => c.logit));
  const z = cands.reduce((a, c) => a + Math.exp(c.logit - max), 0);
  return new Map(cands.filter((c) => c.logit > -Infinity).map((c) => [c.id, Math.exp(c.logit - max) / z]));
}

describe("the filter chain against llama.cpp's own samplers (libllama 3.21.1)", () => {
  it("keeps the same tokens with the same probabilities on random logits", () => {
    const rng = new SeededRng(4242);
    const configs: Partial<SamplerOptions>[] = [
      {}, // llama.cpp's defaults: top-k 40, top-p 0.95, min-p 0.05, temp 0.8
      { topK: 0, topP: 0.9, minP: 0 },
      { topK: 0, topP: 0.5, minP: 0, temperature: 1.2 },
      { topK: 200, typicalP: 0.6, temperature: 1.1, minP: 0 },
      { topK: 0, topP: 1, minP: 0.2, temperature: 0.5 },
      { topK: 10, topP: 0.3, minP: 0.5, minKeep: 4 },
      { repeatPenalty: 1.5, frequencyPenalty: 0.3, presencePenalty: 0.7, penaltyLastN: 24, topK: 0, minP: 0.01 },
      { temperature: 0, topK: 0, typicalP: 0.4 },
    ];
    let compared = 0;
    for (const config of configs) {
      for (const n of [7, 300, 5000, 32000]) {
        const s = new Sampler({ vocabSize: n, seed: 9, ...config });
        const history = Array.from({ length: 40 }, () => Math.floor(rng.nextDouble() * Math.min(n, 50)));
        for (const t of history) s.accept(t);
        const logits = randomLogits(rng, n, 5);
        const o = s.options;
        const want = softmaxOf(llamaFilteredCandidates(logits, { ...o, history }));
        const got = new Map(s.filteredDistribution(logits).filter((x) => x.probability > 0).map((x) => [x.token, x.probability]));
        expect([...got.keys()].sort((a, b) => a - b)).toEqual([...want.keys()].sort((a, b) => a - b));
        for (const [token, p] of want) expect(got.get(token)!).toBeCloseTo(p, 6);
        compared++;
      }
    }
    expect(compared).toBe(32);
  }, 30_000);
});
