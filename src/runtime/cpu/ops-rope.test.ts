// RoPE: the fast kernel (theta cache per token, threads) against the C reference
// for every variant, and the reference against the float64 textbook rotation,
// for normal and NeoX pairing, partial rotation, frequency factors and YaRN.
import { describe, expect, it } from "bun:test";
import { PsionicError } from "../../util/errors.ts";
import { rope, type RopeParams } from "./ops.ts";
import { maxAbsDiff, randomArray, runnableVariants, seededRandom, withVariant } from "./ops-test-support.ts";

const variants = runnableVariants();

/** The rotation in float64: closed-form theta, YaRN blend and magnitude as in the YaRN paper / ggml. */
function rope64(x: Float32Array, pos: Int32Array, nHead: number, headDim: number, p: RopeParams): Float64Array {
  const y = Float64Array.from(x);
  const freqScale = p.freqScale ?? 1, ext = p.extFactor ?? 0, nCtx = p.nCtxOrig ?? 4096;
  const corrDim = (beta: number) => (p.nDims * Math.log(nCtx / (beta * 2 * Math.PI))) / (2 * Math.log(p.freqBase));
  const low = Math.max(0, Math.floor(corrDim(p.betaFast ?? 32))), high = Math.min(p.nDims - 1, Math.ceil(corrDim(p.betaSlow ?? 1)));
  for (let t = 0; t < pos.length; t++) {
    for (let h = 0; h < nHead; h++) {
      const base = (t * nHead + h) * headDim;
      for (let i = 0; i < p.nDims / 2; i++) {
        const extrap = (pos[t]! * p.freqBase ** ((-2 * i) / p.nDims)) / (p.freqFactors ? p.freqFactors[i]! : 1);
        let theta = freqScale * extrap, mscale = p.attnFactor ?? 1;
        if (ext !== 0) {
          const ramp = 1 - Math.min(1, Math.max(0, (i - low) / Math.max(0.001, high - low)));
          theta = theta * (1 - ramp * ext) + extrap * ramp * ext;
          mscale *= 1 + 0.1 * Math.log(1 / freqScale);
        }
        const [a, b] = p.mode === "neox" ? [i, i + p.nDims / 2] : [2 * i, 2 * i + 1];
        const x0 = x[base + a]!, x1 = x[base + b]!;
        y[base + a] = (x0 * Math.cos(theta) - x1 * Math.sin(theta)) * mscale;
        y[base + b] = (x0 * Math.sin(theta) + x1 * Math.cos(theta)) * mscale;
      }
    }
  }
  return y;
}

const llama: RopeParams = { nDims: 64, mode: "normal", freqBase: 10000 };
const partialNeox: RopeParams = { nDims: 32, mode: "neox", freqBase: 1000000 };
const gptOssYarn: RopeParams = { nDims: 64, mode: "neox", freqBase: 150000, freqScale: 1 / 32, extFactor: 1, attnFactor: 1.3465736, betaFast: 32, betaSlow: 1, nCtxOrig: 4096 };
const withFactors = (random: () => number): RopeParams => ({ nDims: 64, mode: "normal", freqBase: 500000, freqFactors: Float32Array.from({ length: 32 }, () => 1 + random() * 8) });

function setup(seed: number, nTokens: number, nHead: number, headDim: number, maxPos: number) {
  const random = seededRandom(seed);
  const x = randomArray(random, nTokens * nHead * headDim, 2);
  const pos = Int32Array.from({ length: nTokens }, () => Math.floor(random() * maxPos));
  return { random, x, pos };
}

describe("rope reference against float64", () => {
  for (const [name, params, headDim] of [["llama normal", llama, 64], ["partial neox", partialNeox, 48], ["gpt-oss yarn neox", gptOssYarn, 64]] as const) {
    it(`${name}: within 2e-5 at positions < 64, within 3e-3 at positions < 8192 (float theta rounding, as ggml)`, () => {
      for (const [maxPos, tolerance] of [[64, 2e-5], [8192, 3e-3]] as const) {
        const { x, pos } = setup(1, 24, 3, headDim, maxPos);
        const got = rope(x, pos, 3, headDim, params, undefined, { reference: true });
        expect(maxAbsDiff(got, rope64(x, pos, 3, headDim, params))).toBeLessThan(tolerance);
      }
    });
  }

  it("frequency factors divide theta per pair", () => {
    const { random, x, pos } = setup(2, 8, 2, 64, 64);
    const params = withFactors(random);
    expect(maxAbsDiff(rope(x, pos, 2, 64, params, undefined, { reference: true }), rope64(x, pos, 2, 64, params))).toBeLessThan(2e-5);
  });

  it("builds theta by float32 recurrence like ggml, not the closed form", () => {
    // ggml: theta_0 = p, theta_{i+1} = fround(theta_i * fround(base^(-2/n))). At p = 30000 the
    // recurrence and the closed form disagree in the angle; the reference follows the recurrence.
    const n = 64, p = 30000, base = 10000;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i += 2) x[i] = 1; // (1, 0) pairs: output is (cos, sin) of theta
    const got = rope(x, Int32Array.of(p), 1, n, { nDims: n, mode: "normal", freqBase: base }, undefined, { reference: true });
    const scale = Math.fround(Math.pow(Math.fround(base), Math.fround(-2 / n)));
    let theta = Math.fround(p), recurrence = 0, closedForm = 0;
    for (let i = 0; i < n / 2; i++) {
      recurrence = Math.max(recurrence, Math.abs(got[2 * i]! - Math.cos(theta)));
      closedForm = Math.max(closedForm, Math.abs(got[2 * i]! - Math.cos(p * base ** ((-2 * i) / n))));
      theta = Math.fround(theta * scale);
    }
    expect(recurrence).toBeLessThan(1e-6);
    expect(closedForm).toBeGreaterThan(1e-4);
  });
});

describe("rope fast kernel against the reference", () => {
  for (const variant of variants) {
    it(`${variant}: bit-identical for every mode, in place, 1 and 2 threads`, () => {
      withVariant(variant, () => {
        for (const [params, headDim] of [[llama, 64], [partialNeox, 48], [gptOssYarn, 64], [withFactors(seededRandom(9)), 128]] as const) {
          const { x, pos } = setup(3, 37, 4, headDim, 5000);
          const ref = rope(x, pos, 4, headDim, params, undefined, { reference: true });
          for (const threads of [1, 2]) expect(maxAbsDiff(rope(x, pos, 4, headDim, params, undefined, { threads }), ref)).toBe(0);
          const inPlace = x.slice();
          rope(inPlace, pos, 4, headDim, params, inPlace, { threads: 2 });
          expect(maxAbsDiff(inPlace, ref)).toBe(0);
        }
      });
    });
  }

  it("refuses odd or oversized nDims and short buffers", () => {
    const x = new Float32Array(64);
    expect(() => rope(x, Int32Array.of(0), 1, 64, { ...llama, nDims: 63 })).toThrow(PsionicError);
    expect(() => rope(x, Int32Array.of(0), 1, 64, { ...llama, nDims: 128 })).toThrow(/nDims 128/);
    expect(() => rope(x, Int32Array.of(0, 1), 1, 64, llama)).toThrow(/x holds 64 values, needs 128/);
    expect(() => rope(x, Int32Array.of(0), 1, 64, { ...llama, freqFactors: new Float32Array(3) })).toThrow(/freqFactors/);
  });
});
