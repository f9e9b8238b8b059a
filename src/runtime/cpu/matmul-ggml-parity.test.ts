// psi_matmul against llama.cpp's own matrix product on this machine, bit for
// bit: ggml_mul_mat / ggml_mul_mat_id through ggml_backend_graph_compute with
// the weight in the buffer llama.cpp would choose (ggml-matmul-oracle.ts). On
// a CPU with AMX-INT8, llama.cpp takes the AMX kernels for Q8_0, Q4_0, Q4_1,
// Q4_K, Q5_K, Q6_K and F16, the repacked mxfp4_8x8 / q2_K_8x8 kernels for MXFP4
// and Q2_K, and plain ggml for F32, BF16 and Q3_K (docs/PARITY.md §2-§3), and psionic follows
// those orders. Without AMX llama.cpp takes other paths, so these tests skip.
import { describe, expect, it } from "bun:test";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../../ffi/cpu.ts";
import { GGMLType } from "../../gguf/types.ts";
import { cpuHasAmx, ggmlMatmul } from "./ggml-matmul-oracle.ts";
import { EXPERT_ORDERS, matmul, matmulReference, repackRows16 } from "./matmul.ts";
import { sampleValues, sampleWeights, seededRandom, bitDifferences } from "./matmul-test-data.ts";

const ROWS = 96; // a multiple of 32 (AMX), 16-row groups, and a tail for 2-thread splits
const COLS = 768; // three K-quant super-blocks, 24 blocks of 32
const lib = cpuKernels();


const cases: { type: GGMLType; buffer: string; tokens: number[] }[] = [
  { type: GGMLType.Q8_0, buffer: "AMX", tokens: [1, 2, 5, 6, 12, 17] },
  { type: GGMLType.Q4_0, buffer: "AMX", tokens: [1, 2, 5, 6, 17] },
  { type: GGMLType.Q4_1, buffer: "AMX", tokens: [1, 2, 5, 6, 17] },
  { type: GGMLType.Q4_K, buffer: "AMX", tokens: [1, 3, 17] },
  { type: GGMLType.Q5_K, buffer: "AMX", tokens: [1, 3, 17] },
  { type: GGMLType.Q6_K, buffer: "AMX", tokens: [1, 3, 17] },
  { type: GGMLType.F16, buffer: "AMX", tokens: [1, 3, 17] },
  { type: GGMLType.F32, buffer: "CPU", tokens: [1, 3, 17] },
  { type: GGMLType.BF16, buffer: "CPU", tokens: [1, 3, 17] },
  { type: GGMLType.Q3_K, buffer: "CPU", tokens: [1, 3, 17] },
  { type: GGMLType.MXFP4, buffer: "CPU_REPACK", tokens: [1, 3, 17] },
  // Only up to 3 tokens: from 4, ggml's q2_K_8x8 gemm sums the first n - n%4 tokens in another order (not followed yet).
  { type: GGMLType.Q2_K, buffer: "CPU_REPACK", tokens: [1, 3] },
];

describe.skipIf(!cpuHasAmx())("psi_matmul against llama.cpp's ggml_mul_mat on this AMX machine", () => {
  for (const c of cases) {
    it(`${GGMLType[c.type]} (${c.buffer} buffer): reference and every SIMD variant bit-identical to ggml for ${c.tokens.join("/")} tokens`, () => {
      const { bytes } = sampleWeights(c.type, ROWS, COLS, 200 + c.type);
      try {
        for (const n of c.tokens) {
          const x = sampleValues(n * COLS, 300 + n);
          const shape = { type: c.type, rows: ROWS, cols: COLS, nTokens: n };
          const ggml = ggmlMatmul(c.type, bytes, ROWS, COLS, x, n);
          expect(ggml.buffer).toBe(c.buffer);
          expect({ n, reference: bitDifferences(matmulReference(shape, bytes, x), ggml.y) }).toEqual({ n, reference: "identical" });
          for (const variant of CPU_VARIANTS) {
            if (!selectCpuVariant(lib, variant)) continue;
            expect({ n, variant, fast: bitDifferences(matmul(shape, bytes, x, { threads: 2 }), ggml.y) }).toEqual({ n, variant, fast: "identical" });
            // Q8_0 and MXFP4 also in their 16-row layouts, where the variant multiplies them (CpuWeight.matrix)
            const packed = repackRows16(c.type, bytes, ROWS, COLS);
            if (!packed) continue;
            const ours = matmul({ ...shape, kernelType: packed.kernelType }, packed.bytes, x, { threads: 2 });
            expect({ n, variant, packed: bitDifferences(ours, ggml.y) }).toEqual({ n, variant, packed: "identical" });
          }
        }
      } finally {
        selectCpuVariant(lib, "avx512") || selectCpuVariant(lib, "avx2");
      }
    });
  }

  // llama.cpp's expert products (ggml_mul_mat_id) never take AMX: MXFP4, Q4_0 and Q4_K go to
  // CPU_REPACK (gemv per routed row); Q8_0, Q5_0, Q4_1, Q5_K, Q3_K and BF16 stay in a plain CPU buffer (ggml_vec_dot_*).
  const expertCases: { type: GGMLType; buffer: string; cols?: number }[] = [
    { type: GGMLType.MXFP4, buffer: "CPU_REPACK" },
    { type: GGMLType.Q4_0, buffer: "CPU_REPACK" },
    { type: GGMLType.Q4_K, buffer: "CPU_REPACK" },
    { type: GGMLType.Q8_0, buffer: "CPU" },
    { type: GGMLType.Q5_0, buffer: "CPU" },
    { type: GGMLType.Q4_1, buffer: "CPU" },
    { type: GGMLType.Q5_K, buffer: "CPU" },
    { type: GGMLType.Q3_K, buffer: "CPU" },
    { type: GGMLType.BF16, buffer: "CPU" },
    // 11 steps of 64 and 32 values past them, which ggml_vec_dot_bf16 adds one by one in double
    { type: GGMLType.BF16, buffer: "CPU", cols: 736 },
  ];
  for (const c of expertCases) {
    const COLS = c.cols ?? 768;
    it(`${GGMLType[c.type]} experts (ggml_mul_mat_id, ${c.buffer} buffer, K=${COLS}): one batched product per expert, as the CPU backend's MoE runs it, bit-identical on every variant`, () => {
      const experts = 4, n = 11;
      const { bytes } = sampleWeights(c.type, ROWS * experts, COLS, 91 + c.type);
      const x = sampleValues(n * COLS, 92);
      const random = seededRandom(93);
      const ids = Int32Array.from({ length: n }, () => Math.floor(random() * experts));
      const ggml = ggmlMatmul(c.type, bytes, ROWS, COLS, x, n, { experts, ids });
      expect(ggml.buffer).toBe(c.buffer);
      const slab = bytes.byteLength / experts;
      try {
        for (const variant of CPU_VARIANTS) {
          if (!selectCpuVariant(lib, variant)) continue;
          // As CpuBackend.loadWeight and cpuMoE: MXFP4 repacked where the variant multiplies that layout, else the expert order.
          const packed = c.type === GGMLType.MXFP4 ? repackRows16(c.type, bytes, ROWS, COLS, experts) : null;
          const weights = packed?.bytes ?? bytes;
          const kernelType = packed?.kernelType ?? EXPERT_ORDERS.get(c.type);
          const ours = new Float32Array(n * ROWS);
          for (let e = 0; e < experts; e++) {
            const tokens = [...ids.keys()].filter((t) => ids[t] === e);
            if (tokens.length === 0) continue;
            const xe = new Float32Array(tokens.length * COLS);
            tokens.forEach((t, j) => xe.set(x.subarray(t * COLS, (t + 1) * COLS), j * COLS));
            const shape = { type: c.type, rows: ROWS, cols: COLS, nTokens: tokens.length, kernelType };
            const ye = matmul(shape, weights.subarray(e * slab, (e + 1) * slab), xe, { threads: 2 });
            tokens.forEach((t, j) => ours.set(ye.subarray(j * ROWS, (j + 1) * ROWS), t * ROWS));
          }
          expect({ variant, packed: packed !== null, diff: bitDifferences(ours, ggml.y) }).toEqual({ variant, packed: packed !== null, diff: "identical" });
        }
      } finally {
        selectCpuVariant(lib, "avx512") || selectCpuVariant(lib, "avx2");
      }
    });
  }
});
