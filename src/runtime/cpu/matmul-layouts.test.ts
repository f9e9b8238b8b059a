// psi_matmul's own kernel ids beyond ggml's types (matmul.h):
// - MXFP4 and Q8_0 repacked into 16-row groups (MXFP4_ROWS16, Q8_0_ROWS16,
//   kernels/cpu/matmul_mxfp4_rows16.c, matmul_q8_0_rows16.c) must multiply to
//   exactly the bits of the plain layout, whose order is llama.cpp's
//   (matmul-ggml-parity.test.ts): for decode (the grouped kernels: MXFP4 1-5
//   tokens, Q8_0 1-16 in tiles of 8), prefill (the panels), row counts with a
//   plain tail, and every thread count;
// - the expert-product orders (EXPERT_ORDERS) must give their reference's bits
//   on every instruction-set variant (ggml itself checks the reference on AMX
//   machines, matmul-ggml-parity.test.ts).
import { afterAll, describe, expect, it } from "bun:test";
import { ptr } from "bun:ffi";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../../ffi/cpu.ts";
import { GGMLType } from "../../gguf/types.ts";
import { EXPERT_ORDERS, matmul, matmulReference, MXFP4_ROWS16, Q8_0_ROWS16, repackRows16 } from "./matmul.ts";
import { sampleValues, sampleWeights, seededRandom, bitDifferences } from "./matmul-test-data.ts";

const lib = cpuKernels();
const VNNI = selectCpuVariant(lib, "avx512");
afterAll(() => void (selectCpuVariant(lib, "avx512") || selectCpuVariant(lib, "avx2")));


/** Random MXFP4 bytes with every code and e8m0 scales from the subnormal 0 and 1 up to large ones. */
function randomMxfp4(rows: number, cols: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  const bytes = new Uint8Array(rows * (cols / 32) * 17).map(() => Math.floor(random() * 256));
  const scales = [0, 1, 2, 100, 127, 130];
  for (let at = 0; at < bytes.length; at += 17) bytes[at] = scales[Math.floor(random() * scales.length)]!;
  return bytes;
}

/**
 * Random Q8_0 bytes: every quant byte (-128 included, which ggml's quantizer
 * never writes but the file format allows) and fp16 scales from subnormal to
 * large, of both signs.
 */
function randomQ8_0(rows: number, cols: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  const bytes = new Uint8Array(rows * (cols / 32) * 34).map(() => Math.floor(random() * 256));
  const scales = [0x0000, 0x0001, 0x03ff, 0x0400, 0x1800, 0x2a3b, 0x3c00, 0x5bff, 0x8001, 0xa000, 0xb555];
  for (let at = 0; at < bytes.length; at += 34) {
    const d = scales[Math.floor(random() * scales.length)]!;
    bytes[at] = d & 0xff;
    bytes[at + 1] = d >> 8;
  }
  return bytes;
}

const layouts = [
  { type: GGMLType.MXFP4, kernelType: MXFP4_ROWS16, random: randomMxfp4 },
  { type: GGMLType.Q8_0, kernelType: Q8_0_ROWS16, random: randomQ8_0 },
] as const;

describe.skipIf(!VNNI)("MXFP4 and Q8_0 repacked into 16-row groups (AVX-512 VNNI)", () => {
  for (const { type, kernelType, random } of layouts) {
    for (const [rows, cols] of [[96, 768], [37, 256], [83, 2560], [16, 64], [5, 96], [48, 32]] as const) {
      it(`${GGMLType[type]} ${rows}x${cols}: bit-identical to the plain type's reference for 1-8, 12, 16 and 17 tokens, 1-3 threads`, () => {
        const plain = random(rows, cols, rows + cols);
        const packed = repackRows16(type, plain, rows, cols)!;
        expect(packed?.kernelType).toBe(kernelType);
        if (rows >= 16) expect(Buffer.compare(packed.bytes, plain)).not.toBe(0);
        // the rows past the last whole group keep their bytes
        const tail = (rows % 16) * (cols / 32) * (type === GGMLType.Q8_0 ? 34 : 17);
        expect(Buffer.compare(packed.bytes.subarray(plain.length - tail), plain.subarray(plain.length - tail))).toBe(0);
        for (const nTokens of [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 17]) {
          const x = sampleValues(nTokens * cols, 7 + nTokens);
          const shape = { type, rows, cols, nTokens };
          const reference = matmulReference(shape, plain, x);
          for (const threads of [1, 2, 3]) {
            const ours = matmul({ ...shape, kernelType }, packed.bytes, x, { threads });
            expect({ nTokens, threads, diff: bitDifferences(ours, reference) }).toEqual({ nTokens, threads, diff: "identical" });
          }
        }
      });
    }

    it(`${GGMLType[type]}: repacks each matrix of a 3-D weight on its own, and in place as well as into a new buffer`, () => {
      const rows = 40, cols = 128, experts = 3;
      const { bytes } = sampleWeights(type, rows * experts, cols, 5);
      const packed = repackRows16(type, bytes, rows, cols, experts)!;
      const slab = bytes.length / experts;
      const x = sampleValues(cols, 6);
      for (let e = 0; e < experts; e++) {
        const shape = { type, rows, cols, nTokens: 1 };
        const ours = matmul({ ...shape, kernelType }, packed.bytes.subarray(e * slab, (e + 1) * slab), x, { threads: 2 });
        expect(bitDifferences(ours, matmulReference(shape, bytes.subarray(e * slab, (e + 1) * slab), x))).toBe("identical");
      }
      const inPlace = bytes.slice(0, slab);
      expect(lib.psi_matmul_repack(kernelType, ptr(inPlace), ptr(inPlace), rows, cols)).toBe(0);
      expect(Buffer.compare(inPlace, packed.bytes.subarray(0, slab))).toBe(0);
    });

    it(`${GGMLType[type]}: the layout has no plain reference, and variants without the grouped kernels decline to repack`, () => {
      const { bytes } = sampleWeights(type, 16, 64, 8);
      const packed = repackRows16(type, bytes, 16, 64)!;
      expect(lib.psi_matmul_reference(kernelType, ptr(packed.bytes), 16, 64, ptr(new Float32Array(64)), 1, ptr(new Float32Array(16)))).toBe(-1);
      try {
        for (const variant of ["avx2", "portable"] as const) {
          if (!selectCpuVariant(lib, variant)) continue;
          expect({ variant, packed: repackRows16(type, bytes, 16, 64) }).toEqual({ variant, packed: null });
          expect(lib.psi_matmul(kernelType, ptr(packed.bytes), 16, 64, ptr(new Float32Array(64)), 1, ptr(new Float32Array(16)), 1)).toBe(-1);
        }
      } finally {
        selectCpuVariant(lib, "avx512");
      }
    });
  }

  it("types without a 16-row layout are not repacked", () => {
    const { bytes } = sampleWeights(GGMLType.Q4_0, 16, 64, 9);
    expect(repackRows16(GGMLType.Q4_0, bytes, 16, 64)).toBeNull();
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
          // the order is not the dense one: some outputs differ in their last bits (BF16's
          // expert order is its dense one-token order, so only from two tokens)
          if (type !== GGMLType.BF16 || nTokens > 1) {
            expect(bitDifferences(out, matmulReference({ type, rows, cols, nTokens }, bytes, x))).not.toBe("identical");
          }
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
