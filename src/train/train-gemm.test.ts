import { afterAll, describe, expect, it } from "bun:test";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../ffi/cpu.ts";
import { PsionicError } from "../util/errors.ts";
import { seededRandom } from "../util/seeded-random.ts";
import { TrainKernels } from "./train-kernels.ts";

const lib = cpuKernels();
const bestVariant = String(lib.psi_cpu_variant());
afterAll(() => void selectCpuVariant(lib, bestVariant as (typeof CPU_VARIANTS)[number]));

const random = seededRandom(42);
const fill = (n: number) => Float32Array.from({ length: n }, () => random() - 0.5);

/** op(A) . op(B) in float64, straight from the definition. */
function product(transA: boolean, transB: boolean, m: number, n: number, k: number, a: Float32Array, lda: number, b: Float32Array, ldb: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let p = 0; p < k; p++) sum += (transA ? a[p * lda + i]! : a[i * lda + p]!) * (transB ? b[j * ldb + p]! : b[p * ldb + j]!);
    c[i * n + j] = sum;
  }
  return c;
}

// Sizes past every blocking boundary of the fast kernel (KC 256, MC 16 tiles, NC 48 tiles), with ragged edges.
const shapes: [number, number, number][] = [[1, 1, 1], [7, 5, 3], [37, 45, 300], [200, 1600, 70], [13, 70, 600]];

describe.each(CPU_VARIANTS.filter((v) => selectCpuVariant(lib, v)))("training SGEMM (%s)", (variant) => {
  for (const [transA, transB] of [[false, true], [false, false], [true, false], [true, true]] as const) {
    it.each(shapes)(`${transA ? "T" : "N"}${transB ? "T" : "N"} m=%p n=%p k=%p matches float64 within 1e-5 x sqrt(k), overwriting and accumulating, fast and reference`, (m, n, k) => {
      selectCpuVariant(lib, variant);
      const lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1, ldc = n + 2; // strided, like views into wider rows
      const a = fill((transA ? k : m) * lda), b = fill((transB ? n : k) * ldb);
      const expected = product(transA, transB, m, n, k, a, lda, b, ldb);
      const start = fill(m * ldc);
      for (const threads of [0, 2]) {
        const kernels = new TrainKernels(threads);
        const c = start.slice();
        kernels.sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, false);
        const accumulated = start.slice();
        kernels.sgemm(transA, transB, m, n, k, a, lda, b, ldb, accumulated, ldc, true);
        const tolerance = 1e-5 * Math.sqrt(k);
        let worst = 0, worstAccumulated = 0;
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
          worst = Math.max(worst, Math.abs(c[i * ldc + j]! - expected[i * n + j]!));
          worstAccumulated = Math.max(worstAccumulated, Math.abs(accumulated[i * ldc + j]! - (start[i * ldc + j]! + expected[i * n + j]!)));
        }
        expect(worst).toBeLessThan(tolerance);
        expect(worstAccumulated).toBeLessThan(tolerance);
        // The padding between rows is never written.
        for (let i = 0; i < m; i++) for (let j = n; j < ldc && i * ldc + j < c.length; j++) expect(c[i * ldc + j]).toBe(start[i * ldc + j]!);
      }
    });
  }

  it("gives the same bits on 1, 2 and 5 threads", () => {
    selectCpuVariant(lib, variant);
    const [m, n, k] = [150, 700, 520];
    const a = fill(m * k), b = fill(n * k);
    const results = [1, 2, 5].map((threads) => {
      const c = new Float32Array(m * n);
      new TrainKernels(threads).sgemm(false, true, m, n, k, a, k, b, k, c, n, false);
      return Buffer.from(c.buffer);
    });
    expect(results[1]!.equals(results[0]!)).toBe(true);
    expect(results[2]!.equals(results[0]!)).toBe(true);
  });
});

describe("training SGEMM checks", () => {
  it("with k = 0 writes zeros, or leaves C alone when accumulating", () => {
    const kernels = new TrainKernels(2);
    const c = Float32Array.of(1, 2, 3, 4);
    kernels.sgemm(false, false, 2, 2, 0, new Float32Array(0), 0, new Float32Array(0), 2, c, 2, true);
    expect(Array.from(c)).toEqual([1, 2, 3, 4]);
    kernels.sgemm(false, false, 2, 2, 0, new Float32Array(0), 0, new Float32Array(0), 2, c, 2, false);
    expect(Array.from(c)).toEqual([0, 0, 0, 0]);
  });

  it("refuses buffers too small for the shape instead of reading past them", () => {
    const kernels = new TrainKernels(2);
    expect(() => kernels.sgemm(false, true, 4, 4, 4, new Float32Array(15), 4, new Float32Array(16), 4, new Float32Array(16), 4, false)).toThrow(PsionicError);
    expect(() => kernels.sgemm(false, true, 4, 4, 4, new Float32Array(16), 4, new Float32Array(16), 4, new Float32Array(15), 4, false)).toThrow(PsionicError);
  });
});
