import { describe, expect, it } from "bun:test";
import type { Activation, Backend } from "./backend.ts";
import { CpuBackend } from "./cpu/cpu-backend.ts";
import { ARGMAX, LOGITS, RowReader, type RowNeed } from "./readback.ts";
import { refTopKRows } from "./sampler-reference.ts";

const width = 50;
const values = Float32Array.from({ length: 3 * width }, (_, i) => Math.sin(i * 7.3) * 4);
const rowOf = (r: number) => Array.from(values.subarray(r * width, (r + 1) * width));
const best = (r: number, k: number) => refTopKRows(values.subarray(r * width, (r + 1) * width), 1, k);

/** The CPU backend with whichever of argmaxRows / topKRows, counting the rows each reads. */
function backendWith(methods: { argmax?: boolean; topK?: boolean; brokenTopK?: boolean }) {
  const cpu = new CpuBackend({ threads: 1 }) as Backend;
  const read = { download: 0, argmax: 0, topK: 0 }, asked: number[] = [];
  const download = cpu.download.bind(cpu);
  cpu.download = (x, into) => ((read.download += x.rows), download(x, into));
  if (methods.argmax) cpu.argmaxRows = (x) => ((read.argmax += x.rows), Int32Array.from({ length: x.rows }, (_, r) => best(r, 1).ids[0]!));
  if (methods.topK) cpu.topKRows = (x, k) => ((read.topK += x.rows), asked.push(k), methods.brokenTopK ? null : refTopKRows(download(x), x.rows, k));
  return { backend: cpu, read, asked, out: cpu.upload(values, 3, width) as Activation };
}

describe("RowReader", () => {
  it("answers argmax and top-k rows on the device and copies only the rows that need their logits", () => {
    const { backend, read, asked, out } = backendWith({ argmax: true, topK: true });
    const needs: RowNeed[] = [ARGMAX, { kind: "top", k: 5 }, LOGITS];
    const [a, t, l] = new RowReader().read(backend, out, needs);
    expect(a).toMatchObject({ kind: "id", id: best(0, 1).ids[0]! });
    expect(t).toMatchObject({ kind: "top", ids: best(1, 5).ids, values: best(1, 5).values });
    expect(l!.kind === "logits" && Array.from(l!.logits)).toEqual(rowOf(2));
    expect(read).toEqual({ download: 1, argmax: 0, topK: 3 });
    // A device row's logits on demand (a constrained pick whose trial token was refused): that row alone.
    expect(t!.kind === "top" && Array.from(t!.row())).toEqual(rowOf(1));
    expect(l!.kind === "logits" && Array.from(l!.logits)).toEqual(rowOf(2)); // the other rows' buffer is untouched
    expect(read.download).toBe(2);
    // k goes up to a power of two (one CUDA graph for steps whose top-k differ a little), at most the row.
    new RowReader().read(backend, out, [{ kind: "top", k: 33 }, ARGMAX, ARGMAX]);
    new RowReader().read(backend, out, [{ kind: "top", k: 49 }, ARGMAX, ARGMAX]);
    expect(asked).toEqual([8, 50, 50]);
  });

  it("rows that all pick the argmax read one id each", () => {
    const { backend, read, out } = backendWith({ argmax: true, topK: true });
    expect(new RowReader().read(backend, out, [ARGMAX, ARGMAX, ARGMAX]).map((p) => p.kind === "id" && p.id)).toEqual([0, 1, 2].map((r) => best(r, 1).ids[0]!));
    expect(read).toEqual({ download: 0, argmax: 3, topK: 0 });
  });

  it("what the backend cannot answer comes back whole: a top-k without topKRows, every row without either method", () => {
    const some = backendWith({ argmax: true });
    const picks = new RowReader().read(some.backend, some.out, [ARGMAX, { kind: "top", k: 5 }, ARGMAX]);
    expect(picks.map((p) => p.kind)).toEqual(["id", "logits", "id"]);
    expect(some.read).toEqual({ download: 1, argmax: 3, topK: 0 });
    const none = backendWith({});
    expect(new RowReader().read(none.backend, none.out, [ARGMAX, { kind: "top", k: 5 }, LOGITS]).map((p) => p.kind)).toEqual(["logits", "logits", "logits"]);
    expect(none.read.download).toBe(3);
  });

  it("a row with no top-k (NaN or +inf: topKRows gives null) brings every row back whole, for the sampler to name", () => {
    const { backend, read, out } = backendWith({ argmax: true, topK: true, brokenTopK: true });
    const picks = new RowReader().read(backend, out, [ARGMAX, { kind: "top", k: 5 }, LOGITS]);
    expect(picks.map((p) => p.kind === "logits" && Array.from(p.logits))).toEqual([rowOf(0), rowOf(1), rowOf(2)]);
    expect(read).toEqual({ download: 3, argmax: 0, topK: 3 });
    expect(() => new RowReader().read(backend, out, [ARGMAX])).toThrow(/1 needs for 3 rows/);
  });
});
