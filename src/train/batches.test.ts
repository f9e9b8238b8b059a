import { describe, expect, it } from "bun:test";
import { BatchSchedule, evalBatches } from "./batches.ts";

const stream = Int32Array.from({ length: 1001 }, (_, i) => i);
const shape = { sequences: 4, seqLen: 10, accumulation: 2 };

describe("batch schedule", () => {
  it("gives a step the same batch from a fresh schedule, whatever came before (a pure function of seed and step)", () => {
    const a = new BatchSchedule(stream, shape, 7);
    for (let s = 0; s < 40; s++) a.microBatch(s, 0);
    const b = new BatchSchedule(stream, shape, 7);
    expect(b.microBatch(33, 1)).toEqual(a.microBatch(33, 1));
    expect(b.microBatch(3, 0)).toEqual(new BatchSchedule(stream, shape, 7).microBatch(3, 0));
  });

  it("visits every window exactly once per epoch", () => {
    const s = new BatchSchedule(stream, { sequences: 4, seqLen: 10, accumulation: 1 }, 3);
    expect(s.windows).toBe(100);
    const starts = new Set<number>();
    for (let step = 0; step < 25; step++) {
      const batch = s.microBatch(step, 0);
      for (let b = 0; b < 4; b++) starts.add(batch[b * 11]!);
    }
    expect(starts.size).toBe(100);
    for (const x of starts) expect(x % 10).toBe(0);
  });

  it("rows are contiguous windows of seqLen + 1 tokens", () => {
    const batch = new BatchSchedule(stream, shape, 1).microBatch(5, 1);
    for (let b = 0; b < 4; b++) for (let i = 1; i <= 10; i++) expect(batch[b * 11 + i]).toBe(batch[b * 11]! + i);
  });

  it("shuffles differently per seed and per epoch", () => {
    const a = new BatchSchedule(stream, shape, 1), b = new BatchSchedule(stream, shape, 2);
    expect(a.permutation(0)).not.toEqual(b.permutation(0));
    expect([...a.permutation(1)]).not.toEqual([...new BatchSchedule(stream, shape, 1).permutation(0)]);
  });

  it("evaluates on the same evenly spread held-out windows every time", () => {
    const x = evalBatches(stream, 2, 10, 3), y = evalBatches(stream, 2, 10, 3);
    expect(x).toEqual(y);
    expect(x.length).toBe(3);
    expect(x.map((r) => r[0])).toEqual([0, 330, 660]);
  });
});
