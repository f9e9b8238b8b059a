import { describe, expect, it } from "bun:test";
import { PsionicError } from "../util/errors.ts";
import { seededRandom } from "../util/seeded-random.ts";
import { AdamW, learningRate, type AdamWConfig } from "./adamw.ts";
import type { ParameterInfo } from "./train-model.ts";

// Two tensors: a decayed weight (2 values) and an undecayed norm (1 value).
const table: ParameterInfo[] = [
  { name: "w", dims: [2], offset: 0, size: 2, decay: true },
  { name: "norm.weight", dims: [1], offset: 2, size: 1, decay: false },
];
/** Within float32 rounding of the moments and corrections (a few ulps of 1). */
function expectClose(actual: ArrayLike<number>, expected: number[], tolerance = 3e-6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((want, i) => expect(Math.abs(actual[i]! - want)).toBeLessThan(tolerance * Math.max(1, Math.abs(want))));
}
const config: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

describe("AdamW", () => {
  it("matches a hand-computed update for the first two steps (decay on the weight, none on the norm)", () => {
    // With a constant gradient, bias correction makes m_hat = g and v_hat = g^2 at every step, so
    // each update is lr * (wd * p + sign(g)) (eps is negligible):
    //   step 1: 1 - 0.1 * (0.1 * 1 + 1) = 0.89;  -2 - 0.1 * (0.1 * -2 - 1) = -1.88;  0.5 - 0.1 * 1 = 0.4
    //   step 2: 0.89 - 0.1 * (0.089 + 1) = 0.7811;  -1.88 - 0.1 * (-0.188 - 1) = -1.7612;  0.4 - 0.1 = 0.3
    const params = Float32Array.of(1, -2, 0.5), grads = Float32Array.of(0.1, -0.2, 0.3);
    const adam = new AdamW(table, config, 2);
    adam.update(params, grads, 0.1);
    expectClose(params, [0.89, -1.88, 0.4]);
    expectClose(adam.m, [0.01, -0.02, 0.03], 1e-8);
    expectClose(adam.v, [1e-5, 4e-5, 9e-5], 2e-9); // 1 - float32(0.999) is 0.99998713e-3
    adam.update(params, grads, 0.1);
    expectClose(params, [0.7811, -1.7612, 0.3]);
    expect(adam.step).toBe(2);
  });

  it("follows the float64 formula over changing gradients within float32 rounding", () => {
    const random = seededRandom(3);
    const n = 3;
    const params = Float32Array.from({ length: n }, () => random() - 0.5);
    const p = Float64Array.from(params), m = new Float64Array(n), v = new Float64Array(n);
    const adam = new AdamW(table, config, 1);
    for (let t = 1; t <= 5; t++) {
      const grads = Float32Array.from({ length: n }, () => random() - 0.5);
      const lr = 0.01 * t;
      adam.update(params, grads, lr);
      for (let i = 0; i < n; i++) {
        const g = grads[i]!;
        m[i] = 0.9 * m[i]! + 0.1 * g;
        v[i] = 0.999 * v[i]! + 0.001 * g * g;
        const update = m[i]! / (1 - 0.9 ** t) / (Math.sqrt(v[i]! / (1 - 0.999 ** t)) + 1e-8);
        p[i] = p[i]! - lr * ((table[i < 2 ? 0 : 1]!.decay ? 0.1 : 0) * p[i]! + update);
      }
    }
    for (let i = 0; i < n; i++) expect(Math.abs(params[i]! - p[i]!)).toBeLessThan(1e-5);
  });

  it("clips by the global norm: returns the norm before clipping and feeds the moments the scaled gradient", () => {
    const grads = Float32Array.of(3, 0, 4); // norm 5
    const adam = new AdamW(table, { ...config, weightDecay: 0 }, 1);
    const result = adam.update(new Float32Array(3), grads, 0.1, 1);
    expect(result.gradNorm).toBe(5);
    expect(result.clipScale).toBeCloseTo(0.2, 7);
    expectClose(adam.m, [0.06, 0, 0.08], 1e-7); // 0.1 * 0.2 * g
    expect(Array.from(grads)).toEqual([3, 0, 4]);
    const unclipped = new AdamW(table, config, 1).update(new Float32Array(3), grads, 0.1, 10);
    expect(unclipped).toEqual({ gradNorm: 5, clipScale: 1 });
  });

  it("restored from a saved state, makes the next update bit-identical", () => {
    const random = seededRandom(9);
    const size = 300_000; // several kernel chunks and both threads
    const big: ParameterInfo[] = [{ name: "a", dims: [1000, 200], offset: 0, size: 200_000, decay: true }, { name: "b", dims: [100_000], offset: 200_000, size: 100_000, decay: false }];
    const params = Float32Array.from({ length: size }, () => random() - 0.5);
    const gradients = [0, 1, 2].map(() => Float32Array.from({ length: size }, () => random() - 0.5));
    const first = new AdamW(big, config, 2);
    first.update(params, gradients[0]!, 0.01, 1);
    first.update(params, gradients[1]!, 0.01, 1);
    const saved = { m: first.m.slice(), v: first.v.slice(), step: first.step };
    const savedParams = params.slice();
    first.update(params, gradients[2]!, 0.01, 1);
    const resumed = new AdamW(big, config, 2);
    resumed.restore(saved);
    resumed.update(savedParams, gradients[2]!, 0.01, 1);
    expect(Buffer.from(savedParams.buffer).equals(Buffer.from(params.buffer))).toBe(true);
    expect(Buffer.from(resumed.m.buffer).equals(Buffer.from(first.m.buffer))).toBe(true);
    expect(Buffer.from(resumed.v.buffer).equals(Buffer.from(first.v.buffer))).toBe(true);
  });

  it("refuses a NaN or infinite gradient without touching parameters or moments", () => {
    const adam = new AdamW(table, config);
    const params = new Float32Array([0.5, -0.25, 1]);
    for (const bad of [NaN, Infinity]) {
      const before = Float32Array.from(params);
      let code = "accepted";
      try {
        adam.update(params, new Float32Array([0.1, bad, 0.2]), 0.01, 1);
      } catch (e) {
        code = e instanceof PsionicError ? e.code : String(e);
      }
      expect(code).toBe("train.diverged");
      expect(params).toEqual(before);
      expect(adam.state().step).toBe(0);
    }
  });

  it("refuses a state of the wrong size and bad hyper-parameters", () => {
    const adam = new AdamW(table, config);
    const code = (f: () => unknown) => { try { f(); } catch (e) { return e instanceof PsionicError ? e.code : String(e); } return "accepted"; };
    expect(code(() => adam.restore({ m: new Float32Array(2), v: new Float32Array(2), step: 1 }))).toBe("train.bad-optimizer-state");
    expect(code(() => adam.restore({ m: new Float32Array(3), v: new Float32Array(3), step: -1 }))).toBe("train.bad-optimizer-state");
    expect(code(() => new AdamW(table, { ...config, beta1: 1 }))).toBe("train.bad-optimizer");
    expect(code(() => adam.update(new Float32Array(2), new Float32Array(2), 0.1))).toBe("train.bad-optimizer");
  });
});

describe("learningRate", () => {
  const schedule = { peak: 1e-3, min: 1e-4, warmupSteps: 10, totalSteps: 110 };
  it("warms up linearly, peaks after warmup, follows a half cosine to min, and stays at min", () => {
    expect(learningRate(0, schedule)).toBeCloseTo(1e-4, 12);
    expect(learningRate(4, schedule)).toBeCloseTo(5e-4, 12);
    expect(learningRate(9, schedule)).toBeCloseTo(1e-3, 12);
    expect(learningRate(10, schedule)).toBeCloseTo(1e-3, 12);
    expect(learningRate(60, schedule)).toBeCloseTo(5.5e-4, 12); // halfway: (peak + min) / 2
    expect(learningRate(110, schedule)).toBe(1e-4);
    expect(learningRate(500, schedule)).toBe(1e-4);
    for (let s = 10; s < 110; s++) expect(learningRate(s + 1, schedule)).toBeLessThanOrEqual(learningRate(s, schedule));
  });
});
