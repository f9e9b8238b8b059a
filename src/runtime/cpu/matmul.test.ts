// psi_matmul against its plain C reference, the reference against float64 and
// against ggml's own ggml_vec_dot_*, for every weight type, every instruction
// set variant, 1-3 threads and 1, 3 and 17 tokens (17 and more take the AVX-512
// prefill panels for the types that have them).
import { afterAll, describe, expect, it } from "bun:test";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../../ffi/cpu.ts";
import { GGMLType, typeLayout } from "../../gguf/types.ts";
import { ggmlQuantizeActivations, ggmlVecDot } from "./ggml-vec-dot.ts";
import { activationType, matmul, MATMUL_TYPES, matmulReference, quantizeActivations } from "./matmul.ts";
import { decodeTensor } from "../../gguf/quant/codecs.ts";
import { decodeActivations, seededRandom, sampleValues, sampleWeights } from "./matmul-test-data.ts";

const ROWS = 37; // not a multiple of the 4-row split granule
const COLS = 512; // two K-quant super-blocks
// 8 and 12: one and one-and-a-half tiles of the 16-row kernel (batched decode); 17: past it, two full 8-token tiles and a tail of 1
const TOKEN_COUNTS = [1, 3, 8, 12, 17];

const lib = cpuKernels();
// The types whose fast paths compute the reference's (llama.cpp's) order exactly, bit for bit (Q2_K only
// below PSI_PANEL_MIN_TOKENS: its prefill panel keeps one accumulator).
const BIT_EXACT_TYPES = [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.MXFP4, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.F16, GGMLType.F32];
afterAll(() => void (selectCpuVariant(lib, "avx512") || selectCpuVariant(lib, "avx2")));

interface Case {
  type: GGMLType;
  name: string;
  weights: Uint8Array;
  weightValues: Float32Array;
}
const cases: Case[] = MATMUL_TYPES.map((type, i) => {
  const { bytes, values } = sampleWeights(type, ROWS, COLS, 100 + i);
  return { type, name: typeLayout(type)!.name, weights: bytes, weightValues: values };
});

/** sum |w_i x_i| over a row-token pair in float64: the scale rounding errors are measured against. */
function magnitudesOf(c: Case, rows: number, cols: number, x: Float32Array, nTokens: number): Float64Array {
  const out = new Float64Array(nTokens * rows);
  const actType = activationType(c.type);
  for (let t = 0; t < nTokens; t++) {
    const act = decodeActivations(actType, quantizeActivations(c.type, x.subarray(t * cols, (t + 1) * cols)), cols);
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let k = 0; k < cols; k++) sum += Math.abs(c.weightValues[r * cols + k]! * act[k]!);
      out[t * rows + r] = sum;
    }
  }
  return out;
}
const magnitudes = (c: Case, x: Float32Array, nTokens: number) => magnitudesOf(c, ROWS, COLS, x, nTokens);

function maxRelative(a: Float32Array | Float64Array, b: Float32Array | Float64Array, scale: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (scale[i]! + 1e-30));
  return worst;
}

const report: string[] = [];
afterAll(() => console.log(`matmul agreement (max |difference| / sum|w x|):\n${report.join("\n")}`));

describe("psi_matmul", () => {
  for (const c of cases) {
    it(`${c.name}: the reference matches a float64 dot of the dequantized weights and activations`, () => {
      const x = sampleValues(3 * COLS, 5);
      const reference = matmulReference({ type: c.type, rows: ROWS, cols: COLS, nTokens: 3 }, c.weights, x);
      const exact = new Float64Array(3 * ROWS);
      const actType = activationType(c.type);
      for (let t = 0; t < 3; t++) {
        const actBytes = quantizeActivations(c.type, x.subarray(t * COLS, (t + 1) * COLS));
        const act = decodeActivations(actType, actBytes, COLS);
        for (let r = 0; r < ROWS; r++) {
          let sum = 0;
          for (let k = 0; k < COLS; k++) sum += c.weightValues[r * COLS + k]! * act[k]!;
          exact[t * ROWS + r] = sum;
        }
      }
      const worst = maxRelative(reference, exact, magnitudes(c, x, 3));
      report.push(`  ${c.name.padEnd(5)} reference vs float64 ${worst.toExponential(2)}`);
      // Q4_1/Q5_1 use ggml's per-block sum s = fp16(d * sum q), rounded to 11 bits.
      expect(worst).toBeLessThan(c.type === GGMLType.Q4_1 || c.type === GGMLType.Q5_1 ? 1e-3 : 1e-6);
    });

    // F16: ggml_vec_dot_f16 takes F16 activations; psionic's F16 product follows
    // ggml's AMX kernel instead (F32 activations), held bit for bit in matmul-ggml-parity.test.ts.
    if (c.type !== GGMLType.F16) it(`${c.name}: the reference matches ggml's own vec_dot on the same bytes`, () => {
      const x = sampleValues(COLS, 9);
      const actType = activationType(c.type);
      const act = quantizeActivations(c.type, x);
      expect(act).toEqual(ggmlQuantizeActivations(c.type, actType, x));
      const reference = matmulReference({ type: c.type, rows: ROWS, cols: COLS, nTokens: 1 }, c.weights, x);
      const rowBytes = c.weights.byteLength / ROWS;
      const ggml = new Float64Array(ROWS);
      for (let r = 0; r < ROWS; r++) ggml[r] = ggmlVecDot(c.type, COLS, c.weights.subarray(r * rowBytes, (r + 1) * rowBytes), act);
      const worst = maxRelative(reference, ggml, magnitudes(c, x, 1));
      report.push(`  ${c.name.padEnd(5)} reference vs ggml_vec_dot ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-6);
    });

    it(`${c.name}: every variant, 1-3 threads and 1/3/17 tokens match the reference, bit-identical across thread counts`, () => {
      for (const nTokens of TOKEN_COUNTS) {
        const shape = { type: c.type, rows: ROWS, cols: COLS, nTokens };
        const x = sampleValues(nTokens * COLS, 1000 + nTokens);
        const reference = matmulReference(shape, c.weights, x);
        const scale = magnitudes(c, x, nTokens);
        for (const variant of CPU_VARIANTS) {
          if (!selectCpuVariant(lib, variant)) continue;
          const single = matmul(shape, c.weights, x, { threads: 1 });
          const worst = maxRelative(single, reference, scale);
          if (nTokens === 17) report.push(`  ${c.name.padEnd(5)} ${variant.padEnd(8)} vs reference ${worst.toExponential(2)}`);
          expect(worst).toBeLessThan(1e-6);
          if (BIT_EXACT_TYPES.includes(c.type)) expect({ variant, nTokens, same: single.every((v, i) => Object.is(v, reference[i])) }).toEqual({ variant, nTokens, same: true });
          for (const threads of [2, 3]) expect(matmul(shape, c.weights, x, { threads })).toEqual(single);
        }
      }
    });
  }

  /** Byte offsets of each block's fp16 scales, and of MXFP4's e8m0 exponent, which random bytes must not make huge. */
  const scaleFields: Partial<Record<GGMLType, number[]>> = {
    [GGMLType.Q4_0]: [0], [GGMLType.Q4_1]: [0, 2], [GGMLType.Q5_0]: [0], [GGMLType.Q5_1]: [0, 2], [GGMLType.Q8_0]: [0],
    [GGMLType.Q2_K]: [80, 82], [GGMLType.Q3_K]: [108], [GGMLType.Q4_K]: [0, 2], [GGMLType.Q5_K]: [0, 2], [GGMLType.Q6_K]: [208],
  };
  it("every quantized type on random block bytes (bit patterns no encoder writes) matches the reference on every variant", () => {
    const random = seededRandom(77);
    for (const c of cases) {
      const layout = typeLayout(c.type)!;
      if (layout.blockSize === 1) continue;
      const weights = new Uint8Array(c.weights.byteLength).map(() => Math.floor(random() * 256));
      const view = new DataView(weights.buffer);
      for (let block = 0; block < weights.byteLength / layout.typeSize; block++) {
        const at = block * layout.typeSize;
        if (c.type === GGMLType.MXFP4) weights[at] = 120 + Math.floor(random() * 16);
        for (const field of scaleFields[c.type] ?? []) view.setUint16(at + field, 0x2000 + Math.floor(random() * 0x1000), true);
      }
      const randomCase = { ...c, weights, weightValues: decodeTensor(c.type, weights, ROWS * COLS) };
      const shape = { type: c.type, rows: ROWS, cols: COLS, nTokens: 17 };
      const x = sampleValues(17 * COLS, 31);
      const reference = matmulReference(shape, weights, x);
      const scale = magnitudes(randomCase, x, 17);
      for (const variant of CPU_VARIANTS) {
        if (!selectCpuVariant(lib, variant)) continue;
        const worst = maxRelative(matmul(shape, weights, x, { threads: 2 }), reference, scale);
        if (variant === "avx512") report.push(`  ${c.name.padEnd(5)} random bytes avx512 vs reference ${worst.toExponential(2)}`);
        expect({ type: c.name, variant, ok: worst < 1e-6 }).toEqual({ type: c.name, variant, ok: true });
      }
    }
  });

  it("32-value block types with an odd number of blocks per row (7) match the reference on every variant, 1 and 17 tokens", () => {
    const cols = 7 * 32, rows = 5;
    for (const nTokens of [1, 17])
    for (const type of [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q5_0, GGMLType.MXFP4, GGMLType.Q4_1, GGMLType.Q5_1]) {
      const { bytes } = sampleWeights(type, rows, cols, 55);
      const x = sampleValues(nTokens * cols, 56);
      const shape = { type, rows, cols, nTokens };
      const reference = matmulReference(shape, bytes, x);
      for (const variant of CPU_VARIANTS) {
        if (!selectCpuVariant(lib, variant)) continue;
        const fast = matmul(shape, bytes, x, { threads: 2 });
        const worst = Math.max(...Array.from(fast, (v, i) => Math.abs(v - reference[i]!) / (Math.abs(reference[i]!) + 1e-3)));
        expect({ type: typeLayout(type)!.name, variant, nTokens, ok: worst < 1e-4 }).toEqual({ type: typeLayout(type)!.name, variant, nTokens, ok: true });
      }
    }
  });

  // 16+ tokens take the AVX-512 panel path (matmul_panel*.c): 32-row panels, 4-token kernels, blocks in chunks.
  it("prefill panels: 83 rows (a partial third panel), 2560 columns (many chunks) and 16/41 tokens match the reference, bit-identical for 1-3 threads", () => {
    const rows = 83, cols = 2560;
    for (const type of [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q5_0, GGMLType.MXFP4, GGMLType.Q4_1, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]) {
      const name = typeLayout(type)!.name;
      const { bytes, values } = sampleWeights(type, rows, cols, 61);
      const c = { type, name, weights: bytes, weightValues: values };
      for (const nTokens of [16, 41]) {
        const shape = { type, rows, cols, nTokens };
        const x = sampleValues(nTokens * cols, 62 + nTokens);
        const reference = matmulReference(shape, bytes, x);
        const scale = magnitudesOf(c, rows, cols, x, nTokens);
        for (const variant of CPU_VARIANTS) {
          if (!selectCpuVariant(lib, variant)) continue;
          const single = matmul(shape, bytes, x, { threads: 1 });
          const worst = maxRelative(single, reference, scale);
          if (nTokens === 41 && variant === "avx512") report.push(`  ${name.padEnd(5)} panels (41 tokens) avx512 vs reference ${worst.toExponential(2)}`);
          expect({ type: name, variant, nTokens, ok: worst < 1e-6 }).toEqual({ type: name, variant, nTokens, ok: true });
          for (const threads of [2, 3]) expect(matmul(shape, bytes, x, { threads })).toEqual(single);
        }
      }
    }
  }, 30_000);

  it("Q8_0 blocks at the int8 extremes do not saturate the prefill panels' sums (16 tokens)", () => {
    const weights = new Uint8Array(34 * 2);
    const view = new DataView(weights.buffer);
    view.setUint16(0, 0x3c00, true);
    view.setUint16(34, 0x3c00, true);
    for (let i = 0; i < 32; i++) weights[2 + i] = 0x80; // -128
    for (let i = 0; i < 32; i++) weights[36 + i] = 127;
    const x = new Float32Array(16 * 32).fill(-127);
    for (const variant of CPU_VARIANTS) {
      if (!selectCpuVariant(lib, variant)) continue;
      const y = matmul({ type: GGMLType.Q8_0, rows: 2, cols: 32, nTokens: 16 }, weights, x, { threads: 1 });
      for (let t = 0; t < 16; t++) expect([y[2 * t], y[2 * t + 1]]).toEqual([32 * 128 * 127, -32 * 127 * 127]);
    }
  });

  it("Q8_0 blocks at the int8 extremes do not saturate the AVX2 byte-pair sums", () => {
    const weights = new Uint8Array(34 * 2);
    const view = new DataView(weights.buffer);
    view.setUint16(0, 0x3c00, true); // d = 1
    view.setUint16(34, 0x3c00, true);
    for (let i = 0; i < 32; i++) weights[2 + i] = 0x80; // -128: |w| = 128 in the sign trick
    for (let i = 0; i < 32; i++) weights[36 + i] = 127;
    const x = new Float32Array(32).fill(-127);
    for (const variant of CPU_VARIANTS) {
      if (!selectCpuVariant(lib, variant)) continue;
      const y = matmul({ type: GGMLType.Q8_0, rows: 2, cols: 32, nTokens: 1 }, weights, x, { threads: 1 });
      expect(Array.from(y)).toEqual([32 * 128 * 127, -32 * 127 * 127]);
    }
  });

  it("refuses unsupported types, partial blocks, mismatched buffers and bad thread counts, naming each", () => {
    const x = new Float32Array(64);
    const q8 = new Uint8Array(2 * 34);
    const shape = { type: GGMLType.Q8_0, rows: 1, cols: 64, nTokens: 1 };
    expect(() => matmul({ ...shape, type: GGMLType.IQ2_XXS }, q8, x)).toThrow(/no CPU matrix product for weight type iq2_xxs/);
    expect(() => matmul({ ...shape, type: GGMLType.Q8_K }, q8, x)).toThrow(/weight type q8_K/);
    expect(() => matmul({ ...shape, cols: 48 }, q8, new Float32Array(48))).toThrow(/cols = 48 is not a positive whole number of q8_0 blocks/);
    expect(() => matmul(shape, q8.subarray(1), x)).toThrow(/need 68 bytes, got 67/);
    expect(() => matmul(shape, q8, new Float32Array(63))).toThrow(/need 64 floats, got 63/);
    expect(() => matmul(shape, q8, x, { threads: 0 })).toThrow(/threads = 0/);
    expect(() => matmul(shape, q8, x, { threads: 65 })).toThrow(/threads = 65/);
    expect(lib.psi_matmul(GGMLType.Q8_0, q8, 1, 48, x, 1, new Float32Array(1), 1)).toBe(-2);
    expect(lib.psi_matmul(GGMLType.IQ2_XXS, q8, 1, 64, x, 1, new Float32Array(1), 1)).toBe(-1);
    expect(lib.psi_matmul(GGMLType.Q8_0, q8, 1, 64, x, 1, new Float32Array(1), 0)).toBe(-3);
  });

  it("returns an empty result for zero rows or zero tokens", () => {
    expect(matmul({ type: GGMLType.Q4_0, rows: 0, cols: 32, nTokens: 2 }, new Uint8Array(0), new Float32Array(64)).length).toBe(0);
    expect(matmul({ type: GGMLType.Q4_0, rows: 2, cols: 32, nTokens: 0 }, new Uint8Array(36), new Float32Array(0)).length).toBe(0);
  });
});
