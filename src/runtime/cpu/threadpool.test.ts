// The kernel library's persistent thread pool, exercised through psi_matmul:
// many back-to-back ops with changing thread counts neither hang nor change
// results, and more threads than cores still give the same bits.
import { describe, expect, it } from "bun:test";
import { GGMLType } from "../../gguf/types.ts";
import { matmul } from "./matmul.ts";
import { sampleValues, sampleWeights } from "./matmul-test-data.ts";

describe("thread pool", () => {
  const rows = 64, cols = 256;
  const { bytes } = sampleWeights(GGMLType.Q8_0, rows, cols, 3);
  const x = sampleValues(2 * cols, 4);
  const shape = { type: GGMLType.Q8_0, rows, cols, nTokens: 2 };
  const expected = matmul(shape, bytes, x, { threads: 1 });

  it("runs 3000 back-to-back products with thread counts cycling 1..8 without hanging, all bit-identical", () => {
    const out = new Float32Array(2 * rows);
    let mismatches = 0;
    for (let i = 0; i < 3000; i++) {
      out.fill(NaN);
      matmul(shape, bytes, x, { threads: 1 + (i % 8), out });
      if (!out.every((v, j) => v === expected[j])) mismatches++;
    }
    expect(mismatches).toBe(0);
  }, 30_000);

  it("gives the same bits with 64 threads (the maximum), more threads than rows to split", () => {
    expect(matmul(shape, bytes, x, { threads: 64 })).toEqual(expected);
  }, 30_000);

  it("wakes workers that went to sleep after a long idle gap", async () => {
    matmul(shape, bytes, x, { threads: 2 });
    await Bun.sleep(50); // well past the 200 us spin: the workers are parked on the condition variable
    expect(matmul(shape, bytes, x, { threads: 2 })).toEqual(expected);
  }, 30_000);
});
