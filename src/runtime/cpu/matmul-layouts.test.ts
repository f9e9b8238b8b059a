// psi_matmul's own kernel ids beyond ggml's types (matmul.h):
// - MXFP4 repacked into 16-row groups (MXFP4_ROWS16, kernels/cpu/matmul_mxfp4_rows16.c)
//   must multiply to exactly the bits of the plain layout, whose order is
//   llama.cpp's (matmul-ggml-parity.test.ts): for decode (1-5 tokens, the
//   grouped kernel), prefill (6+ tokens, the panels), row counts with a plain
//   tail, and every thread count;
// - the expert-product orders (EXPERT_ORDERS) must give their reference's bits
//   on every instruction-set variant (ggml itself checks the reference on AMX
//   machines, matmul-ggml-parity.test.ts).
import { afterAll, describe, expect, it } from "bun:test";
import { ptr } from "bun:ffi";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../../ffi/cpu.ts";
import { GGMLType } from "../../gguf/types.ts";
import { EXPERT_ORDERS, matmul, matmulReference, MXFP4_ROWS16, repackRows16 } from "./matmul.ts";
import { sampleValues, sampleWeights, seededRandom } from "./matmul-test-data.ts";

const lib = cpuKernels();
const VNNI = selectCpuVariant(lib, "avx512");
afterAll(() => void (selectCpuVariant(lib, "avx512") || selectCpuVariant(lib, "avx2")));

/** Positions where a and b differ in their bits (NaN equals NaN), with the first few listed. */
function bitDifferences(a: Float32Array, b: Float32Array): string {
  const wrong: string[] = [];
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    if (count++ < 3) wrong.push(`[${i}] ${a[i]} vs ${b[i]}`);
  }
  return count === 0 ? "identical" : `${count} of ${a.length} differ: ${wrong.join(", ")}`;
}

/** Random MXFP4 bytes with every code and e8m0 scales from the subnormal 0 and 1 up to large ones. */
function randomMxfp4(rows: number, cols: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  const bytes = new Uint8Array(rows * (cols / 32) * 17).map(() => Math.floor(random() * 256));
  const scales = [0, 1, 2, 100, 127, 130];
  for (let at = 0; at < bytes.length; at += 17) bytes[at] = scales[Math.floor(random() * scales.length)]!;
  return bytes;
}

describe.skipIf(!VNNI)("MXFP4 repacked into 16-row groups (AVX-512 VNNI)", () => {
  for (const [rows, cols] of [[96, 768], [37, 256], [83, 2560], [16, 64], [5, 96]] as const) {
    it(`${rows}x${cols}: bit-identical to plain MXFP4 and its reference for 1-8 and 17 tokens, 1-3 threads`, () => {
      const plain = randomMxfp4(rows, cols, rows + cols);
      const packed = repackRows16(plain, rows, cols)!;
      expect(packed).not.toBeNull();
      if (rows >= 16) expect(Buffer.compare(packed, plain)).not.toBe(0);
      for (const nTokens of [1, 2, 3, 4, 5, 6, 7, 8, 17]) {
        const x = sampleValues(nTokens * cols, 7 + nTokens);
        const shape = { type: GGMLType.MXFP4, rows, cols, nTokens };
        const reference = matmulReference(shape, plain, x);
        for (const threads of [1, 2, 3]) {
          const ours = matmul({ ...shape, kernelType: MXFP4_ROWS16 }, packed, x, { threads });
          expect({ nTokens, threads, diff: bitDifferences(ours, reference) }).toEqual({ nTokens, threads, diff: "identical" });
        }
      }
    });
  }

  it("repacks each expert of a 3-D weight on its own, and in place as well as into a new buffer", () => {
    const rows = 40, cols = 128, experts = 3;
    const { bytes } = sampleWeights(GGMLType.MXFP4, rows * experts, cols, 5);
    const packed = repackRows16(bytes, rows, cols, experts)!;
    const slab = bytes.length / experts;
    const x = sampleValues(cols, 6);
    for (let e = 0; e < experts; e++) {
      const shape = { type: GGMLType.MXFP4, rows, cols, nTokens: 1 };
      const ours = matmul({ ...shape, kernelType: MXFP4_ROWS16 }, packed.subarray(e * slab, (e + 1) * slab), x, { threads: 2 });
      expect(bitDifferences(ours, matmulReference(shape, bytes.subarray(e * slab, (e + 1) * slab), x))).toBe("identical");
    }
    const inPlace = bytes.slice(0, slab);
    expect(lib.psi_matmul_repack(MXFP4_ROWS16, ptr(inPlace), ptr(inPlace), rows, cols)).toBe(0);
    expect(Buffer.compare(inPlace, packed.subarray(0, slab))).toBe(0);
  });

  it("has no plain reference, and variants without the grouped kernels decline to repack", () => {
    const { bytes } = sampleWeights(GGMLType.MXFP4, 16, 64, 8);
    const packed = repackRows16(bytes, 16, 64)!;
    expect(lib.psi_matmul_reference(MXFP4_ROWS16, ptr(packed), 16, 64, ptr(new Float32Array(64)), 1, ptr(new Float32Array(16)))).toBe(-1);
    for (const variant of ["avx2", "portable"] as const) {
      if (!selectCpuVariant(lib, variant)) continue;
      expect({ variant, packed: repackRows16(bytes, 16, 64) }).toEqual({ variant, packed: null });
      expect(lib.psi_matmul(MXFP4_ROWS16, ptr(packed), 16, 64, ptr(new Float32Array(64)), 1, ptr(new Float32Array(16)), 1)).toBe(-1);
    }
    selectCpuVariant(lib, "avx512");
  });
});

describe("expert-product orders", () => {
  for (const [type, kernelType] of EXPERT_ORDERS) {
    it(`${GGMLType[type]} in llama.cpp's MUL_MAT_ID order: every variant bit-identical to its reference, 1/3/17 tokens, 37 rows`, () => {
      const rows = 37, cols = 512;
      const { bytes } = sampleWeights(type, rows, cols, 40 + type);
      try {
        for (const nTokens of [1, 3, 17]) {
          const x = sampleValues(nTokens * cols, 41 + nTokens);
          const shape = { type, rows, cols, nTokens, kernelType };
          const out = new Float32Array(nTokens * rows);
          expect(lib.psi_matmul_reference(kernelType, ptr(bytes), rows, cols, ptr(x), nTokens, ptr(out))).toBe(0);
          // the order is not the dense one: some outputs differ in their last bits
          expect(bitDifferences(out, matmulReference({ type, rows, cols, nTokens }, bytes, x))).not.toBe("identical");
          for (const variant of CPU_VARIANTS) {
            if (!selectCpuVariant(lib, variant)) continue;
            for (const threads of [1, 2]) {
              expect({ nTokens, variant, threads, diff: bitDifferences(matmul(shape, bytes, x, { threads }), out) }).toEqual({ nTokens, variant, threads, diff: "identical" });
            }
          }
        }
      } finally {
        selectCpuVariant(lib, "avx512") || selectCpuVariant(lib, "avx2");
      }
    });
  }
});
