// Downloads into a caller's buffer (what generate, the server's scheduler and
// bench do every step, so reading logits allocates nothing): the values land in
// the buffer's first rows x width, a short buffer is refused, and DownloadBuffer
// hands back the same memory while the rows fit and a bigger one when they do not.
import { describe, expect, it } from "bun:test";
import { DownloadBuffer, type Backend } from "./backend.ts";
import { CpuBackend } from "./cpu/cpu-backend.ts";
import { ReferenceBackend } from "./reference/reference-backend.ts";

const backends: [string, () => Backend][] = [
  ["cpu", () => new CpuBackend({ threads: 2 })],
  ["reference", () => new ReferenceBackend()],
];

describe.each(backends)("download into a buffer (%s backend)", (_, make) => {
  const backend = make();
  const values = (rows: number, width: number, base: number) => Float32Array.from({ length: rows * width }, (_, i) => base + i / 8);

  it("writes the first rows x width values and returns its view of them; the rest stays", () => {
    const into = new Float32Array(40).fill(-1);
    const got = backend.download(backend.upload(values(3, 10, 1), 3, 10), into);
    expect(got.buffer).toBe(into.buffer);
    expect(got).toEqual(values(3, 10, 1));
    expect(Array.from(into.subarray(30))).toEqual(new Array(10).fill(-1));
  });

  it("refuses a buffer too short for the rows, naming both sizes", () => {
    expect(() => backend.download(backend.upload(values(2, 5, 0), 2, 5), new Float32Array(9))).toThrow(/download: 2x5 values do not fit a buffer of 9/);
  });

  it("without a buffer, returns a new array each call", () => {
    const x = backend.upload(values(1, 4, 3), 1, 4);
    const a = backend.download(x), b = backend.download(x);
    expect(a).toEqual(b);
    expect(a.buffer).not.toBe(b.buffer);
  });

  it("DownloadBuffer reuses its memory while the rows fit and grows when they do not", () => {
    const reads = new DownloadBuffer();
    const first = reads.read(backend, backend.upload(values(2, 6, 0), 2, 6));
    expect(first).toEqual(values(2, 6, 0));
    const smaller = reads.read(backend, backend.upload(values(1, 6, 5), 1, 6));
    expect(smaller.buffer).toBe(first.buffer);
    expect(smaller).toEqual(values(1, 6, 5));
    const bigger = reads.read(backend, backend.upload(values(4, 6, 9), 4, 6));
    expect(bigger.buffer).not.toBe(first.buffer);
    expect(bigger).toEqual(values(4, 6, 9));
  });
});
