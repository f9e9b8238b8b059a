// RMSNorm, softmax, SiLU, SwiGLU (plain and gpt-oss clamped), residual add:
// every variant's fast kernel against the C reference, and the C reference
// against the textbook formula in float64.
import { describe, expect, it } from "bun:test";
import { PsionicError } from "../../util/errors.ts";
import { add, rmsNorm, silu, softmax, swiglu, swigluOai } from "./ops.ts";
import { maxAbsDiff, maxRelDiff, randomArray, runnableVariants, seededRandom, withVariant } from "./ops-test-support.ts";

const variants = runnableVariants();
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

// Row lengths that exercise the 16- and 8-wide bodies and the scalar tails.
const LENGTHS = [1, 7, 64, 100, 2880];

function rmsNorm64(x: Float32Array, n: number, eps: number, weight?: Float32Array): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += x[r * n + i]! ** 2;
    const scale = 1 / Math.sqrt(sum / n + eps);
    for (let i = 0; i < n; i++) y[r * n + i] = x[r * n + i]! * scale * (weight ? weight[i]! : 1);
  }
  return y;
}

describe("rmsNorm", () => {
  it("reference matches the float64 formula within 1e-6 relative, with and without weight", () => {
    const random = seededRandom(1);
    for (const n of LENGTHS) {
      const x = randomArray(random, 3 * n, 4), w = randomArray(random, n, 2);
      for (const weight of [undefined, w]) {
        const got = rmsNorm(x, n, 1e-5, weight, undefined, { reference: true });
        expect(maxRelDiff(got, rmsNorm64(x, n, 1e-5, weight), 1e-3)).toBeLessThan(1e-6);
      }
    }
  });

  it("reference squares in float and sums in double as ggml does (a sum float32 would get wrong)", () => {
    // 2^24 ones then small values: a float32 running sum would drop the small squares.
    const n = 4096;
    const x = new Float32Array(n).fill(1e-4);
    x[0] = 4096;
    const got = rmsNorm(x, n, 0, null, undefined, { reference: true });
    const exact = rmsNorm64(x, n, 0);
    expect(maxRelDiff(got, exact, 1e-12)).toBeLessThan(2e-7);
  });

  for (const variant of variants) {
    it(`${variant}: fast equals reference bit for bit (products identical, double sum reordered)`, () => {
      const random = seededRandom(2);
      withVariant(variant, () => {
        for (const n of LENGTHS) {
          const x = randomArray(random, 5 * n, 3), w = randomArray(random, n);
          for (const weight of [null, w]) {
            const fast = rmsNorm(x, n, 1e-6, weight);
            const ref = rmsNorm(x, n, 1e-6, weight, undefined, { reference: true });
            expect(maxAbsDiff(fast, ref)).toBe(0);
          }
        }
      });
    });
  }

  it("works in place and refuses a ragged input", () => {
    const x = Float32Array.from([3, 4, 0, 0]);
    rmsNorm(x, 2, 1e-6, null, x);
    expect(Array.from(x).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([0.848528, 1.131371, 0, 0]);
    expect(() => rmsNorm(new Float32Array(5), 2, 1e-5)).toThrow(PsionicError);
    expect(() => rmsNorm(new Float32Array(4), 2, 1e-5, new Float32Array(1))).toThrow(/weight holds 1 values, needs 2/);
  });
});

describe("softmax", () => {
  it("reference matches float64 within 1e-7 absolute, including rows of large logits", () => {
    const random = seededRandom(3);
    for (const n of LENGTHS) {
      const x = randomArray(random, 2 * n, 30);
      const got = softmax(x, n, undefined, { reference: true });
      for (let r = 0; r < 2; r++) {
        const row = Array.from(x.subarray(r * n, (r + 1) * n));
        const max = Math.max(...row), exps = row.map((v) => Math.exp(v - max)), sum = exps.reduce((a, b) => a + b, 0);
        expect(maxAbsDiff(got.subarray(r * n, (r + 1) * n), exps.map((e) => e / sum))).toBeLessThan(1e-7);
      }
    }
  });

  for (const variant of variants) {
    it(`${variant}: fast within 1e-6 relative of reference (vector exp vs expf)`, () => {
      const random = seededRandom(4);
      withVariant(variant, () => {
        let worst = 0;
        for (const n of LENGTHS) {
          const x = randomArray(random, 4 * n, 20);
          const fast = softmax(x, n), ref = softmax(x, n, undefined, { reference: true });
          worst = Math.max(worst, maxRelDiff(fast, ref, 1e-30));
        }
        expect(worst).toBeLessThan(1e-6);
      });
    });
  }
});

describe("silu / swiglu / swigluOai", () => {
  const random = seededRandom(5);
  const rows = 3, cols = 200;
  // Values well past the gpt-oss limit of 7 on both sides, and large enough to reach exp's clamps.
  const gate = randomArray(random, rows * 2 * cols, 12);
  gate[0] = -120; gate[1] = 95; gate[2] = 7; gate[3] = -7.5;
  const up = randomArray(random, rows * cols, 12);

  it("references match the float64 formulas within 1e-6 relative", () => {
    const x = gate.subarray(0, rows * cols);
    const s = silu(x, undefined, { reference: true });
    expect(maxRelDiff(s, Array.from(x, (v) => v * sigmoid(v)), 1e-30)).toBeLessThan(1e-6);
    const g = swiglu(x, up, { rows, cols }, undefined, { reference: true });
    expect(maxRelDiff(g, Array.from(x, (v, i) => v * sigmoid(v) * up[i]!), 1e-30)).toBeLessThan(1e-6);
    const o = swigluOai(x, up, { rows, cols }, 1.702, 7, undefined, { reference: true });
    const textbook = Array.from(x, (v, i) => {
      const gv = Math.min(v, 7), uv = Math.min(Math.max(up[i]!, -7), 7);
      return gv * sigmoid(1.702 * gv) * (uv + 1);
    });
    // (up + 1) cancels near up = -1, so the error is measured against the size of the gate factor.
    expect(maxRelDiff(o, textbook, 1e-2)).toBeLessThan(1e-6);
  });

  it("swigluOai clamps gate only from above and adds 1 to the clamped up", () => {
    const y = swigluOai(Float32Array.from([-20, 20]), Float32Array.from([-20, 20]), { rows: 1, cols: 2 }, 1.702, 7, undefined, { reference: true });
    expect(y[0]).toBeCloseTo(-20 * sigmoid(-1.702 * 20) * -6, 12); // gate -20 kept, up -20 -> -7
    expect(y[1]).toBeCloseTo(7 * sigmoid(1.702 * 7) * 8, 4); // gate 20 -> 7, up 20 -> 7
  });

  it("reads gate and up as the two halves of a merged gate_up row via strides", () => {
    const merged = randomArray(random, rows * 2 * cols, 3);
    const strided = swiglu(merged, merged.subarray(cols), { rows, cols, gateStride: 2 * cols, upStride: 2 * cols });
    const g = new Float32Array(rows * cols), u = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      g.set(merged.subarray(r * 2 * cols, r * 2 * cols + cols), r * cols);
      u.set(merged.subarray(r * 2 * cols + cols, (r + 1) * 2 * cols), r * cols);
    }
    expect(maxAbsDiff(strided, swiglu(g, u, { rows, cols }))).toBe(0);
    expect(() => swiglu(merged, merged.subarray(cols + 1), { rows, cols, gateStride: 2 * cols, upStride: 2 * cols })).toThrow(/up holds/);
  });

  for (const variant of variants) {
    it(`${variant}: fast within 2e-6 relative of reference, add bit-exact`, () => {
      withVariant(variant, () => {
        const x = gate.subarray(0, rows * cols);
        expect(maxRelDiff(silu(x), silu(x, undefined, { reference: true }), 1e-30)).toBeLessThan(2e-6);
        const shape = { rows, cols, gateStride: 2 * cols };
        expect(maxRelDiff(swiglu(gate, up, shape), swiglu(gate, up, shape, undefined, { reference: true }), 1e-30)).toBeLessThan(2e-6);
        expect(maxRelDiff(swigluOai(gate, up, shape), swigluOai(gate, up, shape, 1.702, 7, undefined, { reference: true }), 1e-30)).toBeLessThan(2e-6);
        const sum = add(x, up), sumRef = add(x, up, undefined, { reference: true });
        expect(maxAbsDiff(sum, sumRef)).toBe(0);
        expect(maxAbsDiff(sum, Array.from(x, (v, i) => Math.fround(v + up[i]!)))).toBe(0);
      });
    });
  }
});
