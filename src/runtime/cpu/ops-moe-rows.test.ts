// MoE routing and the weighted expert sum (fast vs reference vs float64), the
// embedding lookup against the TypeScript reference codecs, and KV stores.
import { describe, expect, it } from "bun:test";
import { referenceCodecs } from "../../gguf/quant/codecs.ts";
import { GGMLType, typeLayout } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";
import { getRows, routeExperts, storeKv, weightedExpertSum, type MoeGating } from "./ops.ts";
import { maxAbsDiff, randomArray, runnableVariants, seededRandom, toHalfBits, withVariant } from "./ops-test-support.ts";

const variants = runnableVariants();

function softmax64(x: number[]): number[] {
  const max = Math.max(...x), e = x.map((v) => Math.exp(v - max)), sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** The textbook routing in float64; ties go to the lower expert id. */
function route64(logits: Float32Array, nExpert: number, k: number, gating: MoeGating) {
  const ids: number[] = [], weights: number[] = [];
  for (let t = 0; t < logits.length / nExpert; t++) {
    const row = Array.from(logits.subarray(t * nExpert, (t + 1) * nExpert));
    const scores = gating === "topk-softmax" ? row : softmax64(row);
    const order = scores.map((_, e) => e).sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, k);
    let w = order.map((e) => scores[e]!);
    if (gating === "topk-softmax") w = softmax64(w);
    if (gating === "softmax-topk-norm") { const s = w.reduce((a, b) => a + b, 0); w = w.map((v) => v / s); }
    ids.push(...order);
    weights.push(...w);
  }
  return { ids, weights };
}

describe("routeExperts", () => {
  const random = seededRandom(1);
  const nExpert = 32, k = 4, nTokens = 50;
  const logits = randomArray(random, nTokens * nExpert, 4);
  // Exact ties: the lower id must win, in every implementation.
  logits[3] = logits[7] = logits[11] = 9;

  for (const gating of ["topk-softmax", "softmax-topk", "softmax-topk-norm"] as const) {
    it(`${gating}: reference picks the float64 textbook's experts, weights within 1e-7`, () => {
      const got = routeExperts(logits, nExpert, k, gating, { reference: true });
      const want = route64(logits, nExpert, k, gating);
      expect(Array.from(got.ids)).toEqual(want.ids);
      expect(maxAbsDiff(got.weights, want.weights)).toBeLessThan(1e-7);
      expect(Array.from(got.ids.subarray(0, 3))).toEqual([3, 7, 11]);
    });
    for (const variant of variants) {
      it(`${variant} ${gating}: fast equals reference exactly`, () => {
        withVariant(variant, () => {
          const fast = routeExperts(logits, nExpert, k, gating), ref = routeExperts(logits, nExpert, k, gating, { reference: true });
          expect(Array.from(fast.ids)).toEqual(Array.from(ref.ids));
          expect(maxAbsDiff(fast.weights, ref.weights)).toBe(0);
        });
      });
    }
  }

  it("refuses k above the expert count", () => {
    expect(() => routeExperts(logits, nExpert, 33, "topk-softmax")).toThrow(PsionicError);
  });
});

describe("weightedExpertSum", () => {
  const random = seededRandom(2);
  const k = 4, nEmbd = 2880, nTokens = 3;
  const outs = randomArray(random, nTokens * k * nEmbd, 5), weights = randomArray(random, nTokens * k, 1);

  it("reference adds rounded products in expert order, as llama.cpp's mul + add chain", () => {
    const got = weightedExpertSum(outs, weights, k, nEmbd, undefined, { reference: true });
    const f = Math.fround, chain = new Float32Array(nTokens * nEmbd), exact = new Float64Array(nTokens * nEmbd);
    for (let t = 0; t < nTokens; t++) {
      for (let d = 0; d < nEmbd; d++) {
        let acc = f(outs[t * k * nEmbd + d]! * weights[t * k]!), sum = 0;
        for (let i = 1; i < k; i++) acc = f(acc + f(outs[(t * k + i) * nEmbd + d]! * weights[t * k + i]!));
        for (let i = 0; i < k; i++) sum += outs[(t * k + i) * nEmbd + d]! * weights[t * k + i]!;
        chain[t * nEmbd + d] = acc;
        exact[t * nEmbd + d] = sum;
      }
    }
    expect(maxAbsDiff(got, chain)).toBe(0);
    expect(maxAbsDiff(got, exact)).toBeLessThan(5e-6);
  });

  for (const variant of variants) {
    it(`${variant}: fast equals reference bit for bit`, () => {
      withVariant(variant, () => {
        expect(maxAbsDiff(weightedExpertSum(outs, weights, k, nEmbd), weightedExpertSum(outs, weights, k, nEmbd, undefined, { reference: true }))).toBe(0);
      });
    });
  }
});

describe("getRows (embedding lookup)", () => {
  const random = seededRandom(3);
  const nTable = 40, nCols = 512;
  const values = randomArray(random, nTable * nCols, 2);
  const ids = Int32Array.of(0, 39, 7, 7, 23);

  for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.MXFP4]) {
    const layout = typeLayout(type)!;
    it(`${layout.name}: rows equal the TypeScript reference codec's decode, bit for bit`, () => {
      const codec = referenceCodecs.get(type)!;
      const rowBytes = (nCols / layout.blockSize) * layout.typeSize;
      const table = new Uint8Array(nTable * rowBytes);
      codec.encode(values, table, values.length);
      const got = getRows(type, table, nTable, nCols, ids);
      for (const [i, id] of ids.entries()) {
        const want = new Float32Array(nCols);
        codec.decode(table.subarray(id * rowBytes, (id + 1) * rowBytes), want, nCols);
        expect(new Uint32Array(got.buffer, i * nCols * 4, nCols)).toEqual(new Uint32Array(want.buffer));
      }
    });
  }

  it("names an out-of-range id and a partial block", () => {
    const table = new Uint8Array(nTable * nCols * 4);
    expect(() => getRows(GGMLType.F32, table, nTable, nCols, Int32Array.of(1, 40))).toThrow(/id 40 at index 1 is outside the table of 40 rows/);
    expect(() => getRows(GGMLType.Q8_0, table, nTable, 33, Int32Array.of(0))).toThrow(/not a whole number of q8_0 blocks/);
    expect(() => getRows(GGMLType.F32, table.subarray(1), nTable, nCols, Int32Array.of(0))).toThrow(/table bytes/);
  });
});

describe("storeKv", () => {
  it("rounds rows into F16 cells as ggml's fp32->fp16 (nearest even) and copies F32 cells", () => {
    const random = seededRandom(4);
    const rowLen = 96, cellStride = 128, nCells = 10;
    const src = randomArray(random, 3 * rowLen, 70000); // past the F16 range too: becomes infinity
    const cells = Int32Array.of(9, 0, 4);
    const half = new Uint16Array(nCells * cellStride).fill(0xaaaa), full = new Float32Array(nCells * cellStride);
    storeKv(src, half, cells, rowLen, cellStride);
    storeKv(src, full, cells, rowLen, cellStride);
    for (const [t, cell] of cells.entries()) {
      const row = src.subarray(t * rowLen, (t + 1) * rowLen);
      expect(half.subarray(cell * cellStride, cell * cellStride + rowLen)).toEqual(toHalfBits(row));
      expect(half[cell * cellStride + rowLen]).toBe(0xaaaa); // padding after the row untouched
      expect(full.subarray(cell * cellStride, cell * cellStride + rowLen)).toEqual(row);
    }
    expect(() => storeKv(src, half, Int32Array.of(0, 1, 10), rowLen, cellStride)).toThrow(/cell 10 at index 2 is outside the cache of 10 cells/);
  });
});
