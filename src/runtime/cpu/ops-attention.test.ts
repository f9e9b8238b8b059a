// Attention over a KV cache: the C reference against the float64 textbook
// softmax(q k / sqrt(d)) v with llama.cpp's causal / sliding-window mask and
// gpt-oss sinks, against a float16/float32 emulation of ggml's flash-attention
// steps, and every variant's fast kernel (grouped heads, threads) against the
// reference.
import { describe, expect, it } from "bun:test";
import { PsionicError } from "../../util/errors.ts";
import { attention, defaultAttentionScale, type AttentionArgs, type AttentionPrecision } from "./ops.ts";
import { halfBitsToNumbers, maxAbsDiff, randomArray, roundHalf, runnableVariants, seededRandom, toHalfBits, withVariant } from "./ops-test-support.ts";

const variants = runnableVariants();

interface Case {
  nTokens: number; nHead: number; nHeadKv: number; headDim: number; nKv: number;
  window?: number; sinks?: boolean; f16?: boolean; kvPositions?: Int32Array; firstPos?: number;
}

/** Random q/k/v with the query tokens at the end of the cache (positions firstPos..). */
function build(seed: number, c: Case, precision: AttentionPrecision = "ggml-vec"): AttentionArgs {
  const random = seededRandom(seed);
  const kv = c.nKv * c.nHeadKv * c.headDim;
  const k32 = randomArray(random, kv, 1.5), v32 = randomArray(random, kv, 1);
  const firstPos = c.firstPos ?? c.nKv - c.nTokens;
  return {
    q: randomArray(random, c.nTokens * c.nHead * c.headDim, 1.5),
    k: c.f16 === false ? k32 : toHalfBits(k32),
    v: c.f16 === false ? v32 : toHalfBits(v32),
    qPositions: Int32Array.from({ length: c.nTokens }, (_, t) => firstPos + t),
    kvPositions: c.kvPositions,
    nHead: c.nHead, nHeadKv: c.nHeadKv, headDim: c.headDim, nKv: c.nKv,
    window: c.window, sinks: c.sinks ? randomArray(random, c.nHead, 3) : null, precision,
  };
}

const values = (buffer: Uint16Array | Float32Array) => (buffer instanceof Uint16Array ? halfBitsToNumbers(buffer) : Float64Array.from(buffer));

/** llama.cpp's rule: causal, and with a window w, keys at p - p_key >= w are masked. */
function visible(a: AttentionArgs, j: number, p: number): boolean {
  const kp = a.kvPositions ? a.kvPositions[j]! : j;
  return kp >= 0 && kp <= p && (!a.window || p - kp < a.window);
}

/** The textbook in float64: softmax over visible keys (plus the sink in the denominator), times V. */
function attention64(a: AttentionArgs): Float64Array {
  const k = values(a.k), v = values(a.v), d = a.headDim, group = a.nHead / a.nHeadKv;
  const out = new Float64Array(a.qPositions.length * a.nHead * d);
  for (let t = 0; t < a.qPositions.length; t++) {
    for (let h = 0; h < a.nHead; h++) {
      const kvh = Math.floor(h / group), scores: [number, number][] = [];
      for (let j = 0; j < a.nKv; j++) {
        if (!visible(a, j, a.qPositions[t]!)) continue;
        let s = 0;
        for (let i = 0; i < d; i++) s += a.q[(t * a.nHead + h) * d + i]! * k[(j * a.nHeadKv + kvh) * d + i]!;
        scores.push([j, s / Math.sqrt(d)]);
      }
      const sink = a.sinks ? a.sinks[h]! : -Infinity;
      const max = Math.max(sink, ...scores.map(([, s]) => s));
      let denominator = a.sinks ? Math.exp(sink - max) : 0;
      for (const [, s] of scores) denominator += Math.exp(s - max);
      for (const [j, s] of scores) {
        const w = Math.exp(s - max) / denominator;
        for (let i = 0; i < d; i++) out[(t * a.nHead + h) * d + i]! += w * v[(j * a.nHeadKv + kvh) * d + i]!;
      }
    }
  }
  return out;
}

/** ggml's one_chunk steps with an F16 cache, in float32/float16 rounding (Math.fround / Float16Array). */
function ggmlVecEmulation(a: AttentionArgs): Float64Array {
  const k = values(a.k), v = values(a.v), d = a.headDim, group = a.nHead / a.nHeadKv, f = Math.fround;
  const scale = defaultAttentionScale(d);
  const out = new Float64Array(a.qPositions.length * a.nHead * d);
  for (let t = 0; t < a.qPositions.length; t++) {
    for (let h = 0; h < a.nHead; h++) {
      const kvh = Math.floor(h / group);
      const q = Array.from(a.q.subarray((t * a.nHead + h) * d, (t * a.nHead + h + 1) * d), roundHalf);
      const acc = new Array<number>(d).fill(0);
      let S = 0, M = -Infinity;
      for (let j = 0; j < a.nKv; j++) {
        if (!visible(a, j, a.qPositions[t]!)) continue;
        let s = 0;
        for (let i = 0; i < d; i++) s = f(s + f(k[(j * a.nHeadKv + kvh) * d + i]! * q[i]!));
        s = f(s * scale);
        let ms = 1, vs = 1;
        if (s > M) {
          ms = f(Math.exp(M - s));
          M = s;
          for (let i = 0; i < d; i++) acc[i] = roundHalf(f(acc[i]! * ms));
        } else {
          vs = f(Math.exp(s - M));
        }
        for (let i = 0; i < d; i++) acc[i] = roundHalf(f(v[(j * a.nHeadKv + kvh) * d + i]! * vs + acc[i]!));
        S = f(f(S * ms) + vs);
      }
      if (a.sinks) {
        const sink = a.sinks[h]!;
        let ms = 1, vs = 1;
        if (sink > M) {
          ms = f(Math.exp(M - sink));
          for (let i = 0; i < d; i++) acc[i] = f(acc[i]! * ms);
        } else {
          vs = f(Math.exp(sink - M));
        }
        S = f(f(S * ms) + vs);
      }
      const inverse = S === 0 ? 0 : f(1 / S);
      for (let i = 0; i < d; i++) out[(t * a.nHead + h) * d + i] = f(acc[i]! * inverse);
    }
  }
  return out;
}

const gqaDecode: Case = { nTokens: 1, nHead: 8, nHeadKv: 2, headDim: 64, nKv: 100 };
const gqaPrefill: Case = { nTokens: 20, nHead: 8, nHeadKv: 2, headDim: 64, nKv: 30 };
const gptOssLike: Case = { nTokens: 12, nHead: 16, nHeadKv: 2, headDim: 64, nKv: 40, window: 8, sinks: true };

describe("attention reference against the float64 textbook", () => {
  for (const [name, c] of [["GQA decode", gqaDecode], ["GQA prefill", gqaPrefill], ["sliding window 8 with sinks, prompt longer than the window", gptOssLike]] as const) {
    it(`${name}: f32 precision within 2e-6 (F32 cache) and 1e-5 (F16 cache values)`, () => {
      for (const f16 of [false, true]) {
        const a = build(1, { ...c, f16 }, "f32");
        expect(maxAbsDiff(attention(a, { reference: true }), attention64(a))).toBeLessThan(f16 ? 1e-5 : 2e-6);
      }
    });
    it(`${name}: ggml-vec precision with an F16 cache within 4e-3 (Q and the running output in F16, as ggml)`, () => {
      const a = build(2, c, "ggml-vec");
      const error = maxAbsDiff(attention(a, { reference: true }), attention64(a));
      expect(error).toBeLessThan(4e-3);
      expect(error).toBeGreaterThan(1e-5); // the F16 roundings are really there
    });
  }

  it("masks by explicit cell positions: empty cells (-1) and out-of-order cells", () => {
    const kvPositions = Int32Array.from({ length: 24 }, (_, j) => (j % 5 === 3 ? -1 : 23 - j));
    const a = build(3, { nTokens: 4, nHead: 4, nHeadKv: 4, headDim: 32, nKv: 24, kvPositions, firstPos: 10, window: 6, f16: false }, "f32");
    expect(maxAbsDiff(attention(a, { reference: true }), attention64(a))).toBeLessThan(2e-6);
  });

  it("a query that sees no key gives zeros, with or without a sink", () => {
    for (const sinks of [false, true]) {
      const a = build(4, { nTokens: 1, nHead: 2, nHeadKv: 1, headDim: 16, nKv: 3, kvPositions: Int32Array.of(-1, 5, 6), firstPos: 2, sinks });
      expect(Array.from(attention(a, { reference: true })).every((x) => x === 0)).toBe(true);
    }
  });
});

describe("attention reference against ggml's flash-attention steps", () => {
  it("follows the F16 rounding of ggml's vec path (emulated in float32/float16), unlike an F32 computation", () => {
    for (const c of [gqaDecode, gqaPrefill, gptOssLike, { ...gqaPrefill, sinks: true }]) {
      const a = build(5, c, "ggml-vec");
      const emulated = ggmlVecEmulation(a);
      // Left over: glibc's expf is not always correctly rounded (Math.exp then fround is), and one
      // differing weight moves a few F16 accumulator values by one step, scaled down by the sum.
      expect(maxAbsDiff(attention(a, { reference: true }), emulated)).toBeLessThan(5e-5);
      expect(maxAbsDiff(attention({ ...a, precision: "f32" }, { reference: true }), emulated)).toBeGreaterThan(3e-4);
    }
  });
});

describe("attention fast kernel against the reference", () => {
  const cases: [string, Case][] = [
    ["decode over 600 cells, 64 heads / 8 kv heads", { nTokens: 1, nHead: 64, nHeadKv: 8, headDim: 64, nKv: 600, sinks: true }],
    ["prefill of 70 tokens, head dim 128, window 32", { nTokens: 70, nHead: 4, nHeadKv: 1, headDim: 128, nKv: 70, window: 32 }],
    ["odd head dim 40, 3 heads sharing one kv head", { nTokens: 5, nHead: 3, nHeadKv: 1, headDim: 40, nKv: 9 }],
  ];
  for (const variant of variants) {
    it(`${variant}: within 2e-6 (F32 output) / one F16 step 2e-3 (F16 output), 1 and 2 threads`, () => {
      withVariant(variant, () => {
        for (const [, c] of cases) {
          for (const [f16, precision, tolerance] of [[true, "ggml-vec", 2e-3], [true, "f32", 2e-6], [false, "ggml-vec", 2e-6], [false, "f32", 2e-6]] as const) {
            const a = build(6, { ...c, f16 }, precision);
            const ref = attention(a, { reference: true });
            for (const threads of [1, 2]) expect(maxAbsDiff(attention(a, { threads }), ref)).toBeLessThan(tolerance);
          }
        }
      });
    }, 30_000);
  }

  for (const variant of variants) {
    it(`${variant}: split-KV decode (kvChunks 2, 3, 7) within one F16 step of the reference, independent of threads`, () => {
      withVariant(variant, () => {
        for (const kvChunks of [2, 3, 7]) {
          const a = { ...build(9, { nTokens: 1, nHead: 8, nHeadKv: 2, headDim: 64, nKv: 600, sinks: true }), kvChunks };
          const ref = attention(a, { reference: true }), one = attention(a, { threads: 1 });
          expect(maxAbsDiff(one, ref)).toBeLessThan(2e-3);
          expect(maxAbsDiff(attention(a, { threads: 2 }), one)).toBe(0);
          expect(maxAbsDiff(ref, attention64(a))).toBeLessThan(4e-3);
        }
      });
    });
  }

  it("gives the same bits for 1 and 2 threads (work split by head group, not by timing)", () => {
    const a = build(7, { nTokens: 9, nHead: 16, nHeadKv: 4, headDim: 64, nKv: 50, sinks: true });
    expect(maxAbsDiff(attention(a, { threads: 1 }), attention(a, { threads: 2 }))).toBe(0);
  });

  it("refuses inconsistent shapes with a PsionicError", () => {
    const a = build(8, gqaDecode);
    expect(() => attention({ ...a, nHeadKv: 3 })).toThrow(/not a multiple of nHeadKv 3/);
    expect(() => attention({ ...a, nKv: 101 })).toThrow(/k cache holds/);
    expect(() => attention({ ...a, v: new Float32Array(a.v.length) })).toThrow(/same type/);
    expect(() => attention({ ...a, sinks: new Float32Array(2) })).toThrow(PsionicError);
    expect(() => attention({ ...a, headDim: 2048 })).toThrow(/above 1024/);
  });
});
