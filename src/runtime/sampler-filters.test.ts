import { describe, expect, it } from "bun:test";
import { SeededRng } from "./rng.ts";
import { Candidates, minP, temperature, topP, typicalP } from "./sampler-filters.ts";
import {
  byLogit,
  refMinP,
  refSoftmax,
  refTemperature,
  refTopK,
  refTopP,
  refTypicalP,
  type RefCandidate,
} from "./sampler-reference.ts";

function load(logits: number[] | Float32Array): Candidates {
  const f = Float32Array.from(logits);
  const c = new Candidates(f.length);
  c.loadAll(f);
  return c;
}

/** Top-k as the sampler runs it: straight from the logits; k <= 0 or k >= size keeps all. */
function topKOf(logits: number[] | Float32Array, k: number): Candidates {
  const f = Float32Array.from(logits);
  const c = new Candidates(f.length);
  if (k > 0 && k < f.length) c.loadTopK(f, k);
  else c.loadAll(f);
  return c;
}

function ids(c: Candidates): number[] {
  return Array.from(c.ids.subarray(0, c.size));
}

function asRef(c: Candidates): RefCandidate[] {
  return ids(c).map((id, i) => ({ id, logit: c.logits[i]! }));
}

/** Logits whose softmax is exactly these probabilities (up to float rounding). */
const fromProbs = (ps: number[]) => ps.map(Math.log);

function randomLogits(rng: SeededRng, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Sum of uniforms: bell-shaped, with occasional exact ties from rounding to a coarse grid.
    const v = (rng.nextDouble() + rng.nextDouble() + rng.nextDouble() - 1.5) * scale;
    out[i] = i % 7 === 0 ? Math.round(v * 4) / 4 : v;
  }
  return out;
}

describe("top-k (hand-computed)", () => {
  it("keeps the k best, best first, ties to the lower id", () => {
    expect(ids(topKOf([1, 3, 2, 3, 0], 3))).toEqual([1, 3, 2]);
    expect(ids(topKOf([5, 1, 1, 1], 2))).toEqual([0, 1]);
    const c = topKOf([0.5, -1, 9, 0.5, 4, -Infinity], 3);
    expect(ids(c)).toEqual([2, 4, 0]);
    expect(Array.from(c.logits.subarray(0, 3))).toEqual([9, 4, 0.5]);
  });
  it("k = 1 is the argmax; k = size - 1 drops only the worst", () => {
    expect(ids(topKOf([2, 8, 8, -3], 1))).toEqual([1]);
    expect(ids(topKOf([2, 8, 8, -3], 3))).toEqual([1, 2, 0]);
  });
});

describe("top-p (hand-computed, probabilities 0.5 / 0.3 / 0.15 / 0.05)", () => {
  const logits = fromProbs([0.15, 0.5, 0.05, 0.3]); // ids in scrambled order
  it("keeps the smallest prefix reaching p", () => {
    for (const [p, want] of [
      [0.4, [1]],
      [0.7, [1, 3]],
      [0.85, [1, 3, 0]],
      [0.99, [1, 3, 0, 2]],
    ] as const) {
      const c = load(logits);
      topP(c, p, 0);
      expect(ids(c)).toEqual([...want]);
    }
  });
  it("honours min_keep and p = 1", () => {
    const c = load(logits);
    topP(c, 0.4, 3);
    expect(ids(c)).toEqual([1, 3, 0]);
    const d = load(logits);
    topP(d, 1, 0);
    expect(d.size).toBe(4);
  });
});

describe("min-p (hand-computed)", () => {
  const logits = fromProbs([0.15, 0.5, 0.05, 0.3]);
  it("keeps tokens with p >= min_p * p_max, in their current order", () => {
    let c = load(logits);
    minP(c, 0.25, 0); // threshold 0.125
    expect(ids(c)).toEqual([0, 1, 3]);
    c = load(logits);
    minP(c, 0.5, 0); // threshold 0.25
    expect(ids(c)).toEqual([1, 3]);
    c = load(logits);
    minP(c, 0.5, 3); // min_keep forces the third-best in
    expect(ids(c)).toEqual([1, 3, 0]);
  });
});

describe("typical-p (hand-computed)", () => {
  // Entropy of (0.5, 0.3, 0.15, 0.05) is 1.1421 nats; |surprisal - entropy| is
  // 0.449, 0.062, 0.755, 1.854, so the typical order is 0.3, 0.5, 0.15, 0.05.
  const logits = fromProbs([0.5, 0.3, 0.15, 0.05]);
  it("keeps the most typical tokens until their mass exceeds p", () => {
    for (const [p, want] of [
      [0.2, [1]],
      [0.5, [1, 0]],
      [0.9, [1, 0, 2]],
    ] as const) {
      const c = load(logits);
      typicalP(c, p, 0);
      expect(ids(c)).toEqual([...want]);
    }
  });
});

describe("temperature (hand-computed)", () => {
  it("divides logits (shifted so the best is 0); t <= 0 keeps only the best (lowest id on ties)", () => {
    const c = load([1, 2, -3]);
    temperature(c, 0.5);
    expect(Array.from(c.logits.subarray(0, 3))).toEqual([-2, 0, -10]);
    const d = load([1, 7, 7, 2]);
    temperature(d, 0);
    expect(ids(d)).toEqual([1]);
  });
  it("a tiny positive t does not overflow: all mass goes to the best token", () => {
    const c = load([1, 3, -2]);
    temperature(c, 1e-30);
    c.softmax();
    expect(Array.from(c.probs.subarray(0, 3))).toEqual([0, 1, 0]);
  });
});

describe("filters agree with the plain reference on random logits", () => {
  const rng = new SeededRng(20261126);
  const sizes = [1, 2, 5, 37, 300, 1500, 5000];
  const sortedIds = (cs: RefCandidate[]) => [...cs].sort(byLogit).map((c) => c.id);

  it("top-k", () => {
    for (const n of sizes) {
      for (const k of [1, 3, 40, 1000]) {
        const logits = randomLogits(rng, n, 8);
        const want = refTopK(asRef(load(logits)), k).map((x) => x.id);
        const c = topKOf(logits, k);
        if (k < n) expect(ids(c)).toEqual(want);
        // k >= size leaves the set (and its order) alone: the same tokens survive.
        else expect(ids(c).sort((a, b) => a - b)).toEqual(want.sort((a, b) => a - b));
      }
    }
  });

  it("top-p (both the adaptive 256-token path and the full sort)", () => {
    for (const n of sizes) {
      for (const scale of [1, 8, 30]) {
        for (const p of [0.1, 0.5, 0.9, 0.95, 0.999]) {
          const logits = randomLogits(rng, n, scale);
          const c = load(logits);
          const want = refTopP(asRef(c), p, 0).map((x) => x.id);
          topP(c, p, 0);
          expect(ids(c)).toEqual(want);
        }
      }
    }
  });

  it("min-p", () => {
    for (const n of sizes) {
      for (const [p, keep] of [[0.05, 0], [0.3, 0], [0.9, 4], [1, 0]] as const) {
        const logits = randomLogits(rng, n, 8);
        const c = load(logits);
        const want = refMinP(asRef(c), p, keep);
        minP(c, p, keep);
        // Same set; order is the input order (unsorted path) or best-first (min_keep path).
        expect(sortedIds(asRef(c))).toEqual(sortedIds(want));
      }
    }
  });

  it("typical-p", () => {
    for (const n of sizes) {
      for (const p of [0.2, 0.5, 0.9]) {
        const logits = randomLogits(rng, n, 4);
        const c = load(logits);
        const want = refTypicalP(asRef(c), p, 0).map((x) => x.id);
        typicalP(c, p, 0);
        expect(ids(c)).toEqual(want);
      }
    }
  });

  it("temperature", () => {
    for (const n of sizes) {
      for (const t of [0, 0.3, 1.7]) {
        const logits = randomLogits(rng, n, 8);
        const c = load(logits);
        const want = refTemperature(asRef(c), t);
        temperature(c, t);
        // Same tokens with the same softmax (the fast path shifts logits, which softmax ignores).
        expect(ids(c)).toEqual(want.map((x) => x.id));
        const wantProbs = refSoftmax(want);
        c.softmax();
        wantProbs.forEach((p, i) => expect(c.probs[i]!).toBeCloseTo(p, 6));
      }
    }
  });

  it("full sort orders by logit then id, across signs, zeros and -inf", () => {
    const logits = Float32Array.from([0, -0.5, 3, -Infinity, 3, 1e-30, -1e-30, -7, 0, 2.5]);
    const c = load(logits);
    c.sortAll();
    const want = [...asRef(load(logits))].sort(byLogit);
    expect(asRef(c)).toEqual(want);
  });
});
