// The ops against ggml itself: node-llama-cpp's ggml CPU build (the AVX-512 "zen4"
// build llama.cpp loads on these machines) run op by op through
// kernels/oracle/ggml_ops_oracle.c. Where psionic follows ggml's arithmetic the
// claim is bit-identical results; where ggml uses its own vector exp, a tolerance.
import { describe, expect, it } from "bun:test";
import { ggmlAttention, ggmlCpuBuild, ggmlRmsNorm, ggmlRope, ggmlSoftmax, ggmlSwiglu, type GgmlRope } from "./ggml-ops-oracle.ts";
import { attention, ggmlAttentionPrecision, ggmlDecodeChunks, rmsNorm, rope, softmax, swiglu, swigluOai } from "./ops.ts";
import { maxAbsDiff, maxRelDiff, randomArray, runnableVariants, seededRandom, toHalfBits, withVariant } from "./ops-test-support.ts";

const variants = runnableVariants();
const zen4 = ggmlCpuBuild() === "libggml-cpu-zen4.so";

describe("rms_norm matches ggml bit for bit", () => {
  for (const variant of variants) {
    it(`${variant}: reference and fast, with and without the weight multiply`, () => {
      const random = seededRandom(1);
      withVariant(variant, () => {
        for (const n of [64, 2880, 4099]) {
          const x = randomArray(random, 6 * n, 3), w = randomArray(random, n);
          for (const weight of [null, w]) {
            const oracle = ggmlRmsNorm(x, n, 1e-5, weight);
            expect(maxAbsDiff(rmsNorm(x, n, 1e-5, weight, undefined, { reference: true }), oracle)).toBe(0);
            expect(maxAbsDiff(rmsNorm(x, n, 1e-5, weight), oracle)).toBe(0);
          }
        }
      });
    });
  }
});

describe("rope matches ggml bit for bit", () => {
  const base: GgmlRope = { nDims: 64, mode: 0, nCtxOrig: 4096, freqBase: 10000, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1 };
  const cases: [string, GgmlRope, number][] = [
    ["llama (normal)", base, 64],
    ["qwen (neox, partial rotation)", { ...base, mode: 2, nDims: 32, freqBase: 1000000 }, 48],
    ["gpt-oss (neox, YaRN)", { ...base, mode: 2, freqBase: 150000, freqScale: 1 / 32, extFactor: 1, attnFactor: 1.3465736 }, 64],
    ["llama3 (frequency factors)", { ...base, freqBase: 500000, freqFactors: Float32Array.from({ length: 32 }, (_, i) => 1 + (i % 7)) }, 64],
  ];
  for (const variant of variants) {
    it.skipIf(!zen4)(`${variant}: reference and fast, positions up to 30000`, () => {
      const random = seededRandom(2);
      withVariant(variant, () => {
        for (const [, params, headDim] of cases) {
          const x = randomArray(random, 30 * 4 * headDim, 2), pos = Int32Array.from({ length: 30 }, () => Math.floor(random() * 30000));
          const ours = { nDims: params.nDims, mode: params.mode === 2 ? "neox" as const : "normal" as const, nCtxOrig: params.nCtxOrig, freqBase: params.freqBase,
            freqScale: params.freqScale, extFactor: params.extFactor, attnFactor: params.attnFactor, betaFast: params.betaFast, betaSlow: params.betaSlow, freqFactors: params.freqFactors };
          const oracle = ggmlRope(x, pos, 4, headDim, params);
          expect(maxAbsDiff(rope(x, pos, 4, headDim, ours, undefined, { reference: true }), oracle)).toBe(0);
          expect(maxAbsDiff(rope(x, pos, 4, headDim, ours, undefined, { threads: 2 }), oracle)).toBe(0);
        }
      });
    });
  }
});

interface AttnCase { name: string; nTokens: number; nKv: number; headDim: number; window: number; sinks: boolean; threads: number }

function attentionCase(c: AttnCase, seed: number) {
  const random = seededRandom(seed);
  const nHead = 8, nHeadKv = 2;
  const q = randomArray(random, c.nTokens * nHead * c.headDim, 1.5);
  const k = toHalfBits(randomArray(random, c.nKv * nHeadKv * c.headDim, 1.5)), v = toHalfBits(randomArray(random, c.nKv * nHeadKv * c.headDim));
  const qPositions = Int32Array.from({ length: c.nTokens }, (_, t) => c.nKv - c.nTokens + t);
  const sinks = c.sinks ? randomArray(random, nHead, 3) : null;
  const oracle = ggmlAttention(q, k, v, qPositions, nHead, nHeadKv, c.headDim, c.nKv, c.window, sinks, c.threads);
  const args = { q, k, v, qPositions, nHead, nHeadKv, headDim: c.headDim, nKv: c.nKv, window: c.window, sinks,
    precision: ggmlAttentionPrecision(c.nTokens, c.headDim), kvChunks: ggmlDecodeChunks(c.nTokens, c.nKv, c.threads) };
  return { oracle, args };
}

describe("attention over an F16 cache against ggml_flash_attn_ext", () => {
  const vecCases: AttnCase[] = [
    { name: "decode, 100 cells", nTokens: 1, nKv: 100, headDim: 64, window: 0, sinks: false, threads: 1 },
    { name: "decode, head dim 128, sinks", nTokens: 1, nKv: 300, headDim: 128, window: 0, sinks: true, threads: 2 },
    { name: "decode over 700 cells split in 2 (ggml's split-KV path), sinks", nTokens: 1, nKv: 700, headDim: 64, window: 0, sinks: true, threads: 2 },
    { name: "decode over 1000 cells split in 3, window 256", nTokens: 1, nKv: 1000, headDim: 64, window: 256, sinks: true, threads: 3 },
    { name: "20-token prompt, window 16, sinks", nTokens: 20, nKv: 60, headDim: 64, window: 16, sinks: true, threads: 2 },
  ];
  for (const c of vecCases) {
    it.skipIf(!zen4 || !variants.includes("avx512"))(`avx512 fast kernel is bit-identical: ${c.name}`, () => {
      const { oracle, args } = attentionCase(c, 3);
      withVariant("avx512", () => expect(maxAbsDiff(attention(args, { threads: 2 }), oracle)).toBe(0));
    });
    it(`reference and every variant within one F16 step (1e-3): ${c.name}`, () => {
      const { oracle, args } = attentionCase(c, 3);
      expect(maxAbsDiff(attention(args, { reference: true }), oracle)).toBeLessThan(1e-3);
      for (const variant of variants) withVariant(variant, () => expect(maxAbsDiff(attention(args), oracle)).toBeLessThan(1e-3));
    });
  }

  it("split-KV decode: without the split the F16 rounding differs (the chunk count matters)", () => {
    const { oracle, args } = attentionCase(vecCases[2]!, 3);
    expect(maxAbsDiff(attention({ ...args, kvChunks: 0 }), oracle)).toBeGreaterThan(1e-5);
  });

  it("prompts of 64+ tokens (ggml's tiled F32 path) within 1e-6, every variant", () => {
    for (const [window, sinks] of [[0, false], [32, true]] as const) {
      const { oracle, args } = attentionCase({ name: "", nTokens: 70, nKv: 200, headDim: 64, window, sinks, threads: 2 }, 4);
      expect(args.precision).toBe("f32");
      expect(maxAbsDiff(attention(args, { reference: true }), oracle)).toBeLessThan(1e-6);
      for (const variant of variants) withVariant(variant, () => expect(maxAbsDiff(attention(args, { threads: 2 }), oracle)).toBeLessThan(1e-6));
    }
  });
});

describe("softmax and SwiGLU against ggml", () => {
  const random = seededRandom(5);
  it("router softmax over k = 4 selected logits is bit-identical (ggml uses expf below 16 values)", () => {
    const x = randomArray(random, 64 * 4, 6);
    expect(maxAbsDiff(softmax(x, 4, undefined, { reference: true }), ggmlSoftmax(x, 4))).toBe(0);
    for (const variant of variants) withVariant(variant, () => expect(maxAbsDiff(softmax(x, 4), ggmlSoftmax(x, 4))).toBe(0));
  });
  it("softmax over 128 values within 1e-7 (ggml's vector exp vs expf)", () => {
    const x = randomArray(random, 8 * 128, 6);
    expect(maxAbsDiff(softmax(x, 128, undefined, { reference: true }), ggmlSoftmax(x, 128))).toBeLessThan(1e-7);
    for (const variant of variants) withVariant(variant, () => expect(maxAbsDiff(softmax(x, 128), ggmlSoftmax(x, 128))).toBeLessThan(1e-7));
  });
  it("gpt-oss clamped SwiGLU reference is bit-identical, fast within 2e-6 relative; SwiGLU within 1e-6 relative", () => {
    const gate = randomArray(random, 4 * 2880, 12), up = randomArray(random, 4 * 2880, 12), shape = { rows: 4, cols: 2880 };
    const oai = ggmlSwiglu(gate, up, 2880, { alpha: 1.702, limit: 7 });
    expect(maxAbsDiff(swigluOai(gate, up, shape, 1.702, 7, undefined, { reference: true }), oai)).toBe(0);
    const plain = ggmlSwiglu(gate, up, 2880);
    expect(maxRelDiff(swiglu(gate, up, shape, undefined, { reference: true }), plain, 1e-3)).toBeLessThan(1e-6);
    for (const variant of variants) {
      withVariant(variant, () => {
        expect(maxRelDiff(swigluOai(gate, up, shape), oai, 1e-2)).toBeLessThan(2e-6);
        expect(maxRelDiff(swiglu(gate, up, shape), plain, 1e-3)).toBeLessThan(2e-6);
      });
    }
  });
});
