// What the decode-step savings rely on: the arena hands a decode step the same
// views every step (after a bigger prefill too), the parameter blocks that
// rope and attention reuse carry each call's own parameters, and a weight's
// matrix prepared once (aligned copy when the file bytes are misaligned)
// multiplies exactly as the unprepared product does.
import { describe, expect, it } from "bun:test";
import { GGMLType } from "../../gguf/types.ts";
import { ActivationArena } from "./activation-arena.ts";
import { CpuBackend } from "./cpu-backend.ts";
import { matmul } from "./matmul.ts";
import { sampleWeights } from "./matmul-test-data.ts";
import { attention, rope, type RopeParams } from "./ops.ts";
import { maxAbsDiff, randomArray, seededRandom, toHalfBits } from "./ops-test-support.ts";

const random = seededRandom(5);

describe("decode-step reuse in the CPU backend", () => {
  it("a decode step after a larger prefill gets the same buffer views every step", () => {
    const arena = new ActivationArena();
    const take = () => [arena.take(64).data, arena.take(128).data];
    arena.beginStep();
    arena.take(64 * 8); // a prefill of 8 rows
    arena.take(128 * 8);
    arena.beginStep();
    const first = take();
    for (let step = 0; step < 5; step++) {
      arena.beginStep();
      const again = take();
      expect(again[0]).toBe(first[0]!);
      expect(again[1]).toBe(first[1]!);
    }
    expect(first[0]!.length).toBe(64);
    expect(first[1]!.length).toBe(128);
  });

  it("rope calls with different parameters, one after another, each rotate by their own parameters", () => {
    const x = randomArray(random, 3 * 2 * 64, 2);
    const positions = Int32Array.of(0, 7, 300);
    const factors = Float32Array.from({ length: 32 }, (_, i) => 1 + i / 8);
    const a: RopeParams = { nDims: 64, mode: "normal", freqBase: 10000, freqFactors: factors };
    const b: RopeParams = { nDims: 32, mode: "neox", freqBase: 1e6, freqScale: 0.25, extFactor: 1, nCtxOrig: 2048 };
    const expectA = rope(x, positions, 2, 64, a, undefined, { reference: true });
    // Divisors of 1 change no angle: b's rotation, stated with every field of the block set.
    const expectB = rope(x, positions, 2, 64, { ...b, freqFactors: new Float32Array(16).fill(1) }, undefined, { reference: true });
    for (let i = 0; i < 3; i++) {
      expect(rope(x, positions, 2, 64, a, undefined, { threads: 2 })).toEqual(expectA);
      expect(rope(x, positions, 2, 64, b, undefined, { threads: 2 })).toEqual(expectB);
    }
    expect(expectA).not.toEqual(expectB);
  });

  it("attention calls with different shapes, one after another, each read their own arguments", () => {
    const heads = 4, kvHeads = 2, headDim = 32, cells = 300;
    const k = toHalfBits(randomArray(random, cells * kvHeads * headDim));
    const v = toHalfBits(randomArray(random, cells * kvHeads * headDim));
    const sinks = randomArray(random, heads);
    const one = { q: randomArray(random, heads * headDim), k, v, qPositions: Int32Array.of(299), nHead: heads, nHeadKv: kvHeads, headDim, nKv: 300, sinks };
    const two = { q: randomArray(random, 2 * heads * headDim), k, v, qPositions: Int32Array.of(10, 11), nHead: heads, nHeadKv: kvHeads, headDim, nKv: 12, window: 4 };
    // The fast path rounds as ggml's F16 path does, the reference in float: close, not equal.
    const firstOne = attention(one, { threads: 2 }), firstTwo = attention(two, { threads: 2 });
    expect(maxAbsDiff(firstOne, attention(one, { reference: true }))).toBeLessThan(5e-3);
    expect(maxAbsDiff(firstTwo, attention(two, { reference: true }))).toBeLessThan(5e-3);
    for (let i = 0; i < 3; i++) {
      expect(attention(one, { threads: 2 })).toEqual(firstOne);
      expect(attention(two, { threads: 2 })).toEqual(firstTwo);
    }
  });

  it("a weight whose file bytes are misaligned multiplies exactly as the plain product does", () => {
    const rows = 48, cols = 128;
    const { bytes } = sampleWeights(GGMLType.Q8_0, rows, cols, 9);
    const shifted = new Uint8Array(bytes.byteLength + 1).subarray(1);
    shifted.set(bytes);
    const backend = new CpuBackend({ threads: 2 });
    const w = backend.loadWeight("w", GGMLType.Q8_0, [cols, rows], shifted);
    const x = randomArray(random, 3 * cols);
    const expected = matmul({ type: GGMLType.Q8_0, rows, cols, nTokens: 3 }, bytes, x, { threads: 1 });
    for (let step = 0; step < 3; step++) {
      const table = backend.loadWeight("e", GGMLType.F32, [cols, 1], new Uint8Array(cols * 4));
      backend.embed(table, Int32Array.of(0)); // a new step, so the arena reuses its buffers
      expect(backend.download(backend.matmul(backend.upload(x, 3, cols), w))).toEqual(expected);
    }
  });
});
