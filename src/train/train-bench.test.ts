// psionic train bench: what it measures and on which shapes.
import { describe, expect, it } from "bun:test";
import { loadLane, modelShapeOf } from "./lane.ts";
import { BENCH_SHAPES, runTrainBench } from "./train-bench.ts";

describe("train bench", () => {
  it("benchmarks the shape the default model is trained with, and a wide one (d_model 512+)", () => {
    expect(BENCH_SHAPES.default).toEqual(modelShapeOf(loadLane("brown-default")));
    expect(BENCH_SHAPES.wide.width).toBeGreaterThanOrEqual(512);
  });

  it("reports tokens/s and GFLOP/s consistent with its step times and the model's FLOPs", () => {
    const lines: string[] = [];
    const shape = { ...BENCH_SHAPES.default, layers: 1, width: 64, heads: 4, kvHeads: 2, ffnWidth: 128, vocab: 512 };
    const r = runTrainBench({ shape, batch: 2, seqLen: 32, steps: 3, threads: 2, log: (l) => lines.push(l) });
    expect(r.stepSeconds).toHaveLength(3);
    expect(r.tokensPerStep).toBe(64);
    expect(r.best.seconds).toBe(Math.min(...r.stepSeconds));
    expect(r.best.tokensPerSecond).toBeCloseTo(r.tokensPerStep / r.best.seconds, 6);
    expect(r.best.gflops).toBeCloseTo(r.flopsPerStep / r.best.seconds / 1e9, 6);
    expect(r.median.seconds).toBeGreaterThanOrEqual(r.best.seconds);
    expect(lines.length).toBeGreaterThan(0);
  });
});
