import { describe, expect, it } from "bun:test";
import { SeededRng } from "./rng.ts";
import { Sampler, type SamplerOptions } from "./sampler.ts";
import { refChainDistribution, refTopCandidates, type RefChainOptions } from "./sampler-reference.ts";
import { refusalText as refusedWith } from "../util/refusal-of.ts";

function randomLogits(rng: SeededRng, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.nextDouble() + rng.nextDouble() + rng.nextDouble() - 1.5) * scale;
  return out;
}

function refOptions(s: Sampler): RefChainOptions {
  return s.options;
}


/** 99.9th percentile of the chi-square distribution, indexed by degrees of freedom. */
const CHI_SQUARE_999 = [NaN, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59, 31.26];

/** Pearson chi-square of observed counts against expected probabilities. */
function chiSquare(counts: Map<number, number>, probs: Map<number, number>, draws: number): number {
  let chi = 0;
  for (const [token, p] of probs) {
    const expected = p * draws;
    const observed = counts.get(token) ?? 0;
    chi += ((observed - expected) * (observed - expected)) / expected;
  }
  return chi;
}

describe("SeededRng", () => {
  it("produces the published xoshiro128** stream for state (1, 2, 3, 4)", () => {
    const rng = new SeededRng(0);
    rng.setState([1, 2, 3, 4]);
    expect([rng.nextUint32(), rng.nextUint32(), rng.nextUint32(), rng.nextUint32()]).toEqual([11520, 0, 5927040, 70819200]);
  });
  it("is reproducible per seed and different across seeds", () => {
    const a = new SeededRng(42);
    const b = new SeededRng(42);
    const c = new SeededRng(2 ** 40 + 42); // high bits matter too
    const sa = Array.from({ length: 8 }, () => a.nextUint32());
    expect(Array.from({ length: 8 }, () => b.nextUint32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextUint32())).not.toEqual(sa);
  });
  it("draws doubles in [0, 1) with mean 1/2 and variance 1/12", () => {
    const rng = new SeededRng(7);
    let sum = 0;
    let sumSq = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const u = rng.nextDouble();
      expect(u >= 0 && u < 1).toBe(true);
      sum += u;
      sumSq += u * u;
    }
    const mean = sum / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(sumSq / n - mean * mean - 1 / 12)).toBeLessThan(0.002);
  });
  it("refuses bad seeds and states", () => {
    expect(refusedWith(() => new SeededRng(-1))).toStartWith("sampler.bad-seed");
    expect(refusedWith(() => new SeededRng(1.5))).toStartWith("sampler.bad-seed");
    expect(refusedWith(() => new SeededRng(0).setState([0, 0, 0, 0]))).toStartWith("sampler.bad-rng-state");
  });
});

describe("parameter validation", () => {
  const base: SamplerOptions = { vocabSize: 10, seed: 1 };
  const cases: [Partial<SamplerOptions>, string][] = [
    [{ topK: -1 }, "top_k"],
    [{ topK: 2.5 }, "top_k"],
    [{ topP: 0 }, "top_p"],
    [{ topP: 1.01 }, "top_p"],
    [{ topP: Number.NaN }, "top_p"],
    [{ minP: -0.1 }, "min_p"],
    [{ minP: 2 }, "min_p"],
    [{ typicalP: 0 }, "typical_p"],
    [{ temperature: Infinity }, "temperature"],
    [{ repeatPenalty: 0 }, "repeat_penalty"],
    [{ frequencyPenalty: Number.NaN }, "frequency_penalty"],
    [{ penaltyLastN: -2 }, "penalty_last_n"],
    [{ penaltyLastN: -1 }, "penalty_last_n"],
    [{ penaltyLastN: 1e9 }, "penalty_last_n"],
    [{ minKeep: -1 }, "min_keep"],
    [{ seed: -5 }, "seed"],
    [{ topLogprobs: 11 }, "top_logprobs"],
    [{ vocabSize: 0 }, "vocabulary size"],
  ];
  for (const [bad, name] of cases) {
    it(`refuses ${JSON.stringify(bad)} naming ${name}`, () => {
      const msg = refusedWith(() => new Sampler({ ...base, ...bad }));
      expect(msg).toContain(name);
    });
  }
  it("refuses logits of the wrong length, NaN, +inf, all -inf, and out-of-vocab tokens", () => {
    const s = new Sampler({ ...base, temperature: 0 });
    expect(refusedWith(() => s.sample(new Float32Array(9)))).toContain("10 logits");
    const nan = new Float32Array(10);
    nan[3] = Number.NaN;
    expect(refusedWith(() => s.sample(nan))).toContain("token 3");
    const inf = new Float32Array(10);
    inf[4] = Infinity;
    expect(refusedWith(() => s.sample(inf))).toContain("token 4");
    const masked = new Float32Array(10).fill(-Infinity);
    expect(refusedWith(() => s.sample(masked))).toStartWith("sampler.all-masked");
    expect(refusedWith(() => new Sampler({ ...base }).sample(masked))).toStartWith("sampler.all-masked");
    expect(refusedWith(() => s.accept(10))).toStartWith("sampler.bad-token");
  });
  it("fills llama.cpp's defaults and accepts penalty_last_n = -1 with a context size", () => {
    const s = new Sampler({ vocabSize: 5, penaltyLastN: -1, contextSize: 128 });
    expect(s.options).toMatchObject({ temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, typicalP: 1, penaltyLastN: -1 });
    expect(Number.isSafeInteger(s.seed)).toBe(true);
  });
});

describe("greedy", () => {
  it("takes the argmax, ties to the lowest id", () => {
    const s = new Sampler({ vocabSize: 5, temperature: 0, seed: 1 });
    expect(s.sample(Float32Array.from([1, 3, 2, 3, -Infinity])).token).toBe(1);
    expect(s.sample(Float32Array.from([7, 7, 7, 7, 7])).token).toBe(0);
    expect(s.sample(Float32Array.from([-Infinity, -2, -1, -1, -3])).token).toBe(2);
  });
  it("through the full chain (typical-p on) also ties to the lowest id", () => {
    const s = new Sampler({ vocabSize: 4, temperature: 0, typicalP: 0.99, topK: 0, seed: 1 });
    expect(s.sample(Float32Array.from([0, 5, 5, 1])).token).toBe(1);
  });
  it("is deterministic whatever the seed", () => {
    const logits = randomLogits(new SeededRng(3), 1000, 5);
    const tokens = [1, 2, 3].map((seed) => new Sampler({ vocabSize: 1000, temperature: -1, seed }).sample(logits).token);
    expect(new Set(tokens).size).toBe(1);
  });
});

describe("penalties", () => {
  const o = { vocabSize: 4, topK: 0, topP: 1, minP: 0, temperature: 1, seed: 1 };
  it("apply llama.cpp's repetition / frequency / presence formulas (hand-computed)", () => {
    const s = new Sampler({ ...o, repeatPenalty: 2, frequencyPenalty: 0.1, presencePenalty: 0.5 });
    for (const t of [0, 1, 0, 2]) s.accept(t);
    // token 0 (x2): 2 / 2 - (2 * 0.1 + 0.5) = 0.3;  token 1 (x1): -1 * 2 - 0.6 = -2.6
    // token 2 (x1): logit 0 counts as non-positive: 0 * 2 - 0.6 = -0.6;  token 3 untouched.
    const dist = s.filteredDistribution(Float32Array.from([2, -1, 0, 3]));
    const want = [0.3, -2.6, -0.6, 3].map(Math.fround);
    const z = want.reduce((a, v) => a + Math.exp(v), 0);
    for (const { token, probability } of dist) expect(probability).toBeCloseTo(Math.exp(want[token]!) / z, 6);
  });
  it("look only at the last penalty_last_n tokens", () => {
    const s = new Sampler({ ...o, temperature: 0, repeatPenalty: 100, penaltyLastN: 2 });
    const logits = Float32Array.from([5, 4, 3, 2]);
    for (const t of [0, 1, 2]) s.accept(t); // window now holds 1, 2: token 0 left it
    expect(s.sample(logits).token).toBe(0);
    // The sampled 0 entered the window and pushed 1 out: 0 and 2 are penalized now.
    expect(s.sample(logits).token).toBe(1);
  });
  it("repeat penalty 1 with zero frequency/presence changes nothing", () => {
    const s = new Sampler({ ...o, temperature: 0 });
    for (let i = 0; i < 100; i++) s.accept(0);
    expect(s.sample(Float32Array.from([5, 4, 3, 2])).token).toBe(0);
  });
  it("reset forgets the window", () => {
    const s = new Sampler({ ...o, temperature: 0, repeatPenalty: 100 });
    s.accept(0);
    expect(s.sample(Float32Array.from([5, 4, 3, 2])).token).toBe(1);
    s.reset();
    expect(s.sample(Float32Array.from([5, 4, 3, 2])).token).toBe(0);
  });
});

describe("the chain", () => {
  it("yields the same candidate set and probabilities as the plain reference, on random logits", () => {
    const rng = new SeededRng(99);
    const configs: Partial<SamplerOptions>[] = [
      {},
      { topK: 0, topP: 0.9, minP: 0 },
      { topK: 100, typicalP: 0.7, temperature: 1.3 },
      { topK: 0, topP: 1, minP: 0.1, temperature: 0.5 },
      { topK: 5, topP: 0.5, minP: 0.3, minKeep: 3 },
      { repeatPenalty: 1.3, frequencyPenalty: 0.2, presencePenalty: 0.4, penaltyLastN: 16 },
      { temperature: 0, typicalP: 0.5, topK: 0 },
    ];
    for (const config of configs) {
      for (const n of [3, 64, 3000]) {
        const s = new Sampler({ vocabSize: n, seed: 5, ...config });
        const recent = Array.from({ length: 20 }, () => Math.floor(rng.nextDouble() * Math.min(n, 30)));
        for (const t of recent) s.accept(t);
        const window = recent.slice(-s.options.penaltyLastN);
        const logits = randomLogits(rng, n, 6);
        const want = refChainDistribution(logits, window, refOptions(s));
        const got = s.filteredDistribution(logits);
        expect(got.map((x) => x.token).sort((a, b) => a - b)).toEqual([...want.keys()].sort((a, b) => a - b));
        for (const { token, probability } of got) expect(probability).toBeCloseTo(want.get(token)!, 6);
      }
    }
  });

  it("draws tokens with the filtered distribution's frequencies (chi-square, fixed seeds)", () => {
    const rng = new SeededRng(1234);
    const configs: Partial<SamplerOptions>[] = [
      { topK: 8, topP: 0.9, minP: 0.02, temperature: 0.7 },
      { topK: 0, topP: 1, minP: 0, temperature: 1 },
      { topK: 0, typicalP: 0.8, topP: 1, minP: 0, temperature: 1.5 },
    ];
    const draws = 20_000;
    for (const [i, config] of configs.entries()) {
      const s = new Sampler({ vocabSize: 12, seed: 1000 + i, ...config });
      const logits = randomLogits(rng, 12, 3);
      const probs = refChainDistribution(logits, [], refOptions(s));
      const counts = new Map<number, number>();
      for (let d = 0; d < draws; d++) {
        const t = s.sample(logits).token;
        counts.set(t, (counts.get(t) ?? 0) + 1);
      }
      for (const t of counts.keys()) expect(probs.has(t)).toBe(true); // nothing outside the filtered set
      // Seeded, so this never flakes; a 10% temperature error scores 18 to 220 on these cases.
      const chi = chiSquare(counts, probs, draws);
      expect(probs.size).toBeGreaterThan(2);
      expect(chi).toBeLessThan(CHI_SQUARE_999[probs.size - 1]!);
    }
  });

  it("repeats token for token with the same seed and differs with another", () => {
    const rng = new SeededRng(8);
    const steps = Array.from({ length: 64 }, () => randomLogits(rng, 500, 2));
    const run = (seed: number) => {
      const s = new Sampler({ vocabSize: 500, seed, topK: 0, topP: 0.98, repeatPenalty: 1.1 });
      return steps.map((l) => s.sample(l).token);
    };
    expect(run(77)).toEqual(run(77));
    expect(run(78)).not.toEqual(run(77));
  });
});

describe("sampling from a backend's top-k (Backend.topKRows)", () => {
  it("deviceTopK is the top-k only when everything after it looks at its candidates alone", () => {
    const k = (o: Partial<SamplerOptions>) => new Sampler({ vocabSize: 1000, seed: 1, ...o }).deviceTopK;
    expect(k({})).toBe(40);
    expect(k({ topK: 128, topP: 0.5, minP: 0.2, typicalP: 0.9 })).toBe(128);
    expect(k({ temperature: 0 })).toBe(1); // the best one (without penalties the scheduler asks argmaxRows)
    expect(k({ temperature: 0, topK: 0, repeatPenalty: 1.2 })).toBe(1);
    expect(k({ temperature: 0, typicalP: 0.9 })).toBe(40);
    expect(k({ topK: 0 })).toBe(0);
    expect(k({ topK: 129 })).toBe(0);
    expect(new Sampler({ vocabSize: 40, seed: 1 }).deviceTopK).toBe(0); // k = vocabulary: no filter
    // Penalties that only lower logits: the top-k plus one candidate per distinct token in the window.
    const penalized = new Sampler({ vocabSize: 1000, seed: 1, repeatPenalty: 1.1, presencePenalty: 0.5, penaltyLastN: 8 });
    expect(penalized.deviceTopK).toBe(40);
    for (const t of [5, 6, 5, 7]) penalized.accept(t);
    expect(penalized.deviceTopK).toBe(43);
    for (let t = 100; t < 120; t++) penalized.accept(t); // the window holds 8
    expect(penalized.deviceTopK).toBe(48);
    expect(new Sampler({ vocabSize: 1000, seed: 1, topK: 100, repeatPenalty: 1.1, penaltyLastN: 64, contextSize: 64 }).deviceTopK).toBe(100);
    const wide = new Sampler({ vocabSize: 1000, seed: 1, topK: 100, repeatPenalty: 1.1, penaltyLastN: 64 });
    for (let t = 0; t < 29; t++) wide.accept(t);
    expect(wide.deviceTopK).toBe(0); // 129 > MAX_DEVICE_TOP_K
    // Penalties that can raise a logit need the whole row.
    expect(k({ repeatPenalty: 0.9 })).toBe(0);
    expect(k({ frequencyPenalty: -0.5 })).toBe(0);
    expect(k({ presencePenalty: -0.5 })).toBe(0);
    expect(() => new Sampler({ vocabSize: 1000, seed: 1, topK: 0 }).sampleTop({ ids: new Int32Array(40), values: new Float32Array(40), logZ: 0 })).toThrow(/needs the whole row/);
    // Logprobs: the top-N come from the same list.
    expect(k({ logprobs: true, topLogprobs: 5 })).toBe(40);
    expect(k({ logprobs: true, topLogprobs: 100 })).toBe(100);
    expect(k({ temperature: 0, logprobs: true })).toBe(1);
    expect(k({ logprobs: true, topLogprobs: 129 })).toBe(0);
  });

  it("picks token for token what sampling the whole row picks, from a longer list too, ties and signed zeros included", () => {
    const rng = new SeededRng(21);
    const vocab = 3000;
    // Logits rounded to a quarter so many tie; some exact -0 and +0, and masked tokens.
    const steps = Array.from({ length: 200 }, (_, step) => {
      const l = randomLogits(rng, vocab, 3).map((v) => Math.round(v * 4) / 4);
      for (let i = step % 7; i < vocab; i += 97) l[i] = i % 2 ? -0 : 0;
      for (let i = step % 5; i < vocab; i += 13) l[i] = -Infinity;
      return l;
    });
    const options: Partial<SamplerOptions>[] = [
      {}, { topK: 1 }, { topK: 128, topP: 0.99, minP: 0 }, { topK: 7, temperature: 1.5, typicalP: 0.8 }, { topK: 64, temperature: 0, typicalP: 0.5 },
      // Strong penalties over a window that fills up: the window's tokens drop out of the top-k and others enter.
      { topK: 20, repeatPenalty: 3, frequencyPenalty: 0.5, presencePenalty: 1, penaltyLastN: 32, temperature: 0.3 },
      { topK: 40, repeatPenalty: 1.5, penaltyLastN: 64 },
      { temperature: 0, topK: 0, repeatPenalty: 2, frequencyPenalty: 0.5, penaltyLastN: 24 }, // greedy: the best after penalties
      // Logprobs (the chosen token's and the top-N, against the row's log Z), sampled, greedy, penalized.
      { logprobs: true, topLogprobs: 5 }, { temperature: 0, logprobs: true, topLogprobs: 60 }, { topK: 10, repeatPenalty: 2, logprobs: true },
    ];
    for (const o of options) {
      const whole = new Sampler({ vocabSize: vocab, seed: 5, ...o });
      const fromTop = new Sampler({ vocabSize: vocab, seed: 5, ...o });
      for (const logits of steps) {
        expect(fromTop.sampleTop(refTopCandidates(logits, 128))).toEqual(whole.sample(logits));
      }
    }
  });
});

describe("logprobs", () => {
  it("reports the chosen token's log-probability under the raw logits and the top-N", () => {
    const logits = Float32Array.from([Math.log(0.1), Math.log(0.6), Math.log(0.3), -Infinity]);
    const s = new Sampler({ vocabSize: 4, temperature: 0, topLogprobs: 3, repeatPenalty: 5, seed: 1 });
    const first = s.sample(logits);
    expect(first.token).toBe(1);
    expect(first.logprob!).toBeCloseTo(Math.log(0.6), 6);
    expect(first.topLogprobs!.map((x) => x.token)).toEqual([1, 2, 0]);
    expect(first.topLogprobs![1]!.logprob).toBeCloseTo(Math.log(0.3), 6);
    // The penalty moves the choice to token 2, but logprobs stay the model's own.
    const second = s.sample(logits);
    expect(second.token).toBe(2);
    expect(second.logprob!).toBeCloseTo(Math.log(0.3), 6);
  });
  it("probability is the chosen token's share of the filtered distribution", () => {
    const logits = Float32Array.from([0, 0, 0, -100]);
    const s = new Sampler({ vocabSize: 4, topK: 2, topP: 1, minP: 0, temperature: 1, seed: 3 });
    const r = s.sample(logits);
    expect([0, 1]).toContain(r.token);
    expect(r.probability).toBeCloseTo(0.5, 6);
    expect(r.logprob).toBeUndefined();
  });
});

describe("a 201088-token vocabulary (gpt-oss)", () => {
  it("greedy and top-k chains take about a millisecond a step; full-sort chains stay bounded", () => {
    const n = 201_088;
    const rng = new SeededRng(11);
    const logits = randomLogits(rng, n, 10);
    // [name, options, steps, bound in ms]. Bounds are generous for a shared 2-core CI machine;
    // a decode step of a small model takes 5-10 ms. Flat random logits defeat top-p's
    // 256-token shortcut, so that case measures the full sort.
    const shapes: [string, Partial<SamplerOptions>, number, number][] = [
      ["greedy", { temperature: 0 }, 21, 20],
      ["default chain (top-k 40)", {}, 21, 20],
      ["default + penalties + top-5 logprobs", { repeatPenalty: 1.1, presencePenalty: 0.5, topLogprobs: 5 }, 21, 20],
      ["top-p 0.95 without top-k (full sort)", { topK: 0, minP: 0 }, 7, 400],
      ["typical-p (full sort)", { topK: 0, typicalP: 0.9 }, 5, 400],
    ];
    for (const [name, config, steps, boundMs] of shapes) {
      const s = new Sampler({ vocabSize: n, seed: 1, ...config });
      for (let i = 0; i < 64; i++) s.accept(i * 7);
      s.sample(logits); // warm up the JIT
      const times: number[] = [];
      for (let i = 0; i < steps; i++) {
        const t0 = performance.now();
        s.sample(logits);
        times.push(performance.now() - t0);
      }
      const ms = times.sort((a, b) => a - b)[Math.floor(steps / 2)]!; // median: robust to a busy machine
      console.log(`sampler ${name}: ${ms.toFixed(2)} ms/step (median)`);
      expect(ms).toBeLessThan(boundMs);
    }
  }, 60_000);
});
