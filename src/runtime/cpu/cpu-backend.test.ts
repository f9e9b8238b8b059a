// Every op of the CPU backend against the plain TypeScript reference backend on
// random inputs. Tolerances: ops whose C kernel follows ggml's float32 steps
// exactly as the reference does are bit-identical (embed, takeRows, rmsNorm,
// add); products differ only in summation order (float vs the reference's
// float64), relative 2e-5 of the output scale (see the F16 and Q4_1/Q5_1
// notes below); RoPE 1e-5 on inputs of scale 2 (the reference takes cos and
// sin in double); SwiGLU 2e-6 relative (the kernels' vector exp); attention
// over an F16 cache 2e-3 (one F16 step of the running sum).
import { describe, expect, it } from "bun:test";
import { GGMLType } from "../../gguf/types.ts";
import type { Activation, AttentionParams, Backend, MoEWeights, RopeParams, Weight } from "../backend.ts";
import { ReferenceBackend } from "../reference/reference-backend.ts";
import { cpuKernels } from "../../../ffi/cpu.ts";
import { CpuBackend } from "./cpu-backend.ts";
import type { CpuWeight } from "./cpu-tensors.ts";
import { matmul, Q8_0_ROWS16 } from "./matmul.ts";
import { sampleWeights } from "./matmul-test-data.ts";
import { maxAbsDiff, maxRelDiff, randomArray, seededRandom } from "./ops-test-support.ts";

const random = seededRandom(11);
const f32Bytes = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);

/** The same weight on both backends (ggml dims: [in, out, ...]). */
function both(name: string, type: GGMLType, dims: number[], bytes?: Uint8Array): [Weight, Weight, Uint8Array] {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = bytes ?? (type === GGMLType.F32 ? f32Bytes(randomArray(random, n)) : sampleWeights(type, n / dims[0]!, dims[0]!, n).bytes);
  return [cpu().loadWeight(name, type, dims, data), ref.loadWeight(name, type, dims, data), data];
}

const ref = new ReferenceBackend();
let cpuBackend: CpuBackend | undefined;
const cpu = () => (cpuBackend ??= new CpuBackend({ threads: 2 }));

function pair(rows: number, width: number, scale = 1): [Activation, Activation] {
  const values = randomArray(random, rows * width, scale);
  return [cpu().upload(values, rows, width), ref.upload(values, rows, width)];
}

const out = (b: Backend, x: Activation) => b.download(x);
const scaleOf = (v: Float32Array) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

describe("CpuBackend ops against ReferenceBackend", () => {
  it("embed (F32, F16, Q8_0, Q4_K tables) and takeRows are bit-identical", () => {
    const tokens = Int32Array.of(3, 0, 63, 3, 17);
    for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_K]) {
      const [c, r] = both("token_embd.weight", type, [256, 64]);
      const ec = cpu().embed(c, tokens), er = ref.embed(r, tokens);
      expect(maxAbsDiff(out(cpu(), ec), out(ref, er))).toBe(0);
      expect(maxAbsDiff(out(cpu(), cpu().takeRows(ec, [4, 1])), out(ref, ref.takeRows(er, [4, 1])))).toBe(0);
    }
  });

  it("rmsNorm with and without a weight, whole rows and per-head groups, is bit-identical", () => {
    const [xc, xr] = pair(5, 512, 3);
    const [wc, wr] = both("norm.weight", GGMLType.F32, [512]);
    expect(maxAbsDiff(out(cpu(), cpu().rmsNorm(xc, wc, 1e-5)), out(ref, ref.rmsNorm(xr, wr, 1e-5)))).toBe(0);
    expect(maxAbsDiff(out(cpu(), cpu().rmsNorm(xc, null, 1e-6)), out(ref, ref.rmsNorm(xr, null, 1e-6)))).toBe(0);
    const [gc, gr] = both("q_norm.weight", GGMLType.F32, [64]);
    expect(maxAbsDiff(out(cpu(), cpu().rmsNorm(xc, gc, 1e-5, 64)), out(ref, ref.rmsNorm(xr, gr, 1e-5, 64)))).toBe(0);
  });

  const productTypes = [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0,
    GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.MXFP4];
  for (const type of productTypes) {
    it(`matmul on ${GGMLType[type]} weights (1 and 7 tokens, with a bias) within the stated share of the output scale`, () => {
      const [wc, wr] = both(`w.${GGMLType[type]}`, type, [512, 96]);
      const [bc, br] = both("b", GGMLType.F32, [96]);
      for (const tokens of [1, 7]) {
        const [xc, xr] = pair(tokens, 512, 2);
        const expected = out(ref, ref.matmul(xr, wr, br));
        const got = out(cpu(), cpu().matmul(xc, wc, bc));
        // F16: the CPU kernel rounds activations to F16 as ggml's vec_dot_f16 does; the reference (like llama.cpp's build here) does not.
        // Q4_1/Q5_1: ggml's Q8_1 activation blocks carry d * sum(q) in F16, which the kernel uses and the reference does not round.
        const tolerance = type === GGMLType.F16 ? 2e-3 : type === GGMLType.Q4_1 || type === GGMLType.Q5_1 ? 3e-3 : 2e-5;
        expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(tolerance * scaleOf(expected));
      }
    });
  }

  const ropes: [string, RopeParams, number][] = [
    ["llama (normal)", { dims: 64, mode: "normal", freqBase: 10000, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096 }, 64],
    ["qwen (neox, partial)", { dims: 32, mode: "neox", freqBase: 1e6, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096 }, 64],
    ["gpt-oss (neox, YaRN)", { dims: 64, mode: "neox", freqBase: 150000, freqScale: 1 / 32, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096 }, 64],
  ];
  for (const [name, params, headDim] of ropes) {
    it(`rope ${name} at positions up to 5000 within 1e-5 (the reference takes cos and sin in double)`, () => {
      const [xc, xr] = pair(9, 4 * headDim, 2);
      const positions = Int32Array.from({ length: 9 }, () => Math.floor(random() * 5000));
      const a = out(cpu(), cpu().rope(xc, positions, headDim, params)), b = out(ref, ref.rope(xr, positions, headDim, params));
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
    });
  }
  it("rope with llama 3 frequency factors within 1e-5", () => {
    const [fc, fr] = both("rope_freqs.weight", GGMLType.F32, [32], f32Bytes(Float32Array.from({ length: 32 }, (_, i) => 1 + (i % 5))));
    const params: RopeParams = { dims: 64, mode: "normal", freqBase: 500000, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 8192 };
    const [xc, xr] = pair(4, 128, 2);
    const positions = Int32Array.of(0, 7, 900, 4000);
    const a = out(cpu(), cpu().rope(xc, positions, 64, { ...params, freqFactors: fc }));
    const b = out(ref, ref.rope(xr, positions, 64, { ...params, freqFactors: fr }));
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
  });

  it("add is bit-identical; swiglu within 2e-6 relative", () => {
    const [ac, ar] = pair(3, 768, 4), [bc, br] = pair(3, 768, 4);
    expect(maxAbsDiff(out(cpu(), cpu().add(ac, bc)), out(ref, ref.add(ar, br)))).toBe(0);
    expect(maxRelDiff(out(cpu(), cpu().swiglu(ac, bc)), out(ref, ref.swiglu(ar, br)), 1e-3)).toBeLessThan(2e-6);
  });

  function attentionCase(tokens: number, cached: number, precision: "f16" | "f32", p: AttentionParams, sinks: boolean) {
    const capacity = 300;
    const [sc, sr] = sinks ? both("attn_sinks.weight", GGMLType.F32, [p.heads], f32Bytes(randomArray(random, p.heads, 3))) : [undefined, undefined];
    const [kc, kr] = [cpu().allocKV(capacity, p.kvHeads * p.headDimK, precision), ref.allocKV(capacity, p.kvHeads * p.headDimK, precision)];
    const [vc, vr] = [cpu().allocKV(capacity, p.kvHeads * p.headDimV, precision), ref.allocKV(capacity, p.kvHeads * p.headDimV, precision)];
    const total = cached + tokens;
    const [kxc, kxr] = pair(total, p.kvHeads * p.headDimK, 1.5), [vxc, vxr] = pair(total, p.kvHeads * p.headDimV);
    cpu().storeKV(kc, kxc, 0); ref.storeKV(kr, kxr, 0);
    cpu().storeKV(vc, vxc, 0); ref.storeKV(vr, vxr, 0);
    const [qc, qr] = pair(tokens, p.heads * p.headDimK, 1.5);
    const positions = Int32Array.from({ length: tokens }, (_, i) => cached + i);
    return [
      out(cpu(), cpu().attention(qc, kc, vc, positions, { ...p, sinks: sc })),
      out(ref, ref.attention(qr, kr, vr, positions, { ...p, sinks: sr })),
    ] as const;
  }

  const base: AttentionParams = { heads: 8, kvHeads: 2, headDimK: 64, headDimV: 64, scale: 0.125, window: 0 };
  const attentionCases: [string, number, number, "f16" | "f32", number, boolean, number][] = [
    ["decode over 200 F16 cells", 1, 199, "f16", 0, false, 2e-3],
    ["decode, window 16, sinks", 1, 150, "f16", 16, true, 2e-3],
    ["20-token prompt, F16 cache (ggml's F16 path), window 8", 20, 30, "f16", 8, false, 2e-3],
    ["70-token prompt, F16 cache (ggml's tiled F32 path), sinks", 70, 10, "f16", 0, true, 1e-5],
    ["decode over an F32 cache", 1, 120, "f32", 0, false, 1e-5],
  ];
  for (const [name, tokens, cached, precision, window, sinks, tolerance] of attentionCases) {
    it(`storeKV + attention: ${name}, within ${tolerance}`, () => {
      const [a, b] = attentionCase(tokens, cached, precision, { ...base, window }, sinks);
      expect(maxAbsDiff(a, b)).toBeLessThan(tolerance);
    });
  }

  for (const type of [GGMLType.MXFP4, GGMLType.Q8_0, GGMLType.F32]) {
    it(`moe with ${GGMLType[type]} experts (8 experts, top 2, biases), 1 and 6 tokens, within 1e-4 of the output scale`, () => {
      const d = 256, ff = 320, experts = 8;
      const pick = (name: string, t: GGMLType, dims: number[]) => both(name, t, dims);
      const parts = {
        router: pick("router", GGMLType.F32, [d, experts]), routerBias: pick("router.bias", GGMLType.F32, [experts]),
        gate: pick("gate", type, [d, ff, experts]), gateBias: pick("gate.bias", GGMLType.F32, [ff, experts]),
        up: pick("up", type, [d, ff, experts]), upBias: pick("up.bias", GGMLType.F32, [ff, experts]),
        down: pick("down", type, [ff, d, experts]), downBias: pick("down.bias", GGMLType.F32, [d, experts]),
      };
      const side = (i: 0 | 1) => Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v[i]])) as unknown as MoEWeights;
      const params = { expertsUsed: 2, activation: { kind: "swiglu-oai" as const, alpha: 1.702, limit: 7 } };
      for (const tokens of [1, 6]) {
        const [xc, xr] = pair(tokens, d, 2);
        const expected = out(ref, ref.moe(xr, side(1), params));
        const got = out(cpu(), cpu().moe(xc, side(0), params));
        expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-4 * scaleOf(expected));
      }
    });
  }
});

describe("CpuBackend Q8_0 matrices in 16-row groups", () => {
  it("a Q8_0 table that is also a product's weight (a tied head): lookups read the file's rows, products give the plain layout's bits", () => {
    const d = 96, vocab = 40, tokens = Int32Array.of(0, 17, 39, 33);
    const { bytes, values } = sampleWeights(GGMLType.Q8_0, vocab, d, 77);
    const fileBytes = bytes.slice();
    const table = cpu().loadWeight("token_embd.weight", GGMLType.Q8_0, [d, vocab], bytes) as CpuWeight;
    const rows = (e: Float32Array) => [...tokens].every((t, i) => e.subarray(i * d, (i + 1) * d).every((v, j) => Object.is(v, values[t * d + j])));
    expect(rows(out(cpu(), cpu().embed(table, tokens)))).toBe(true);
    for (const n of [1, 5, 12, 20]) {
      const x = randomArray(random, n * d);
      const plain = matmul({ type: GGMLType.Q8_0, rows: vocab, cols: d, nTokens: n }, fileBytes, x, { threads: 2 });
      const ours = out(cpu(), cpu().matmul(cpu().upload(x, n, d), table));
      expect({ n, same: ours.every((v, i) => Object.is(v, plain[i])) }).toEqual({ n, same: true });
    }
    // the product took the repacked copy where this CPU's kernels multiply it; the table kept the file's bytes
    const vnni = String(cpuKernels().psi_cpu_variant()) === "avx512";
    expect(table.matrix().type).toBe(vnni ? Q8_0_ROWS16 : GGMLType.Q8_0);
    expect(Buffer.compare(table.bytes, fileBytes)).toBe(0);
    expect(rows(out(cpu(), cpu().embed(table, tokens)))).toBe(true);
  });
});

describe("CpuBackend buffers and refusals", () => {
  it("a decode step after the first allocates no activation buffers, and old activations are refused, not misread", () => {
    const backend = new CpuBackend({ threads: 1 });
    const table = backend.loadWeight("token_embd.weight", GGMLType.F32, [64, 16], f32Bytes(randomArray(random, 64 * 16)));
    const w = backend.loadWeight("w", GGMLType.Q8_0, [64, 64], sampleWeights(GGMLType.Q8_0, 64, 64, 3).bytes);
    const step = (token: number) => {
      const x = backend.embed(table, Int32Array.of(token));
      return backend.add(x, backend.matmul(backend.rmsNorm(x, null, 1e-5), w));
    };
    step(1);
    const allocations = backend.arena.allocations;
    const kept = step(2);
    const first = backend.download(kept);
    for (let i = 3; i < 10; i++) step(i);
    expect(backend.arena.allocations).toBe(allocations);
    expect(() => backend.download(kept)).toThrow(/earlier forward step/);
    expect(first.length).toBe(64);
  });

  it("refuses bad shapes, foreign handles, cache overflow and types without kernels, naming them", () => {
    const backend = cpu();
    const [xc] = pair(2, 64);
    const w = backend.loadWeight("blk.0.attn_q.weight", GGMLType.F32, [32, 8], f32Bytes(randomArray(random, 256)));
    expect(() => backend.matmul(xc, w)).toThrow(/blk.0.attn_q.weight: input width 64/);
    expect(() => backend.loadWeight("blk.0.ffn_up.weight", GGMLType.IQ4_NL, [32, 4], new Uint8Array(4 * 18))).toThrow(/blk.0.ffn_up.weight: the cpu backend has no kernels for iq4_nl/);
    expect(() => backend.loadWeight("t", GGMLType.Q8_0, [64, 2], new Uint8Array(10))).toThrow(/tensor t: .* needs 136 bytes, got 10/);
    expect(() => backend.add(xc, ref.upload(new Float32Array(128), 2, 64))).toThrow(/does not belong to the cpu backend/);
    const kv = backend.allocKV(4, 64, "f16");
    expect(() => backend.storeKV(kv, xc, 3)).toThrow(/slots 3..4 outside a cache of 4/);
    expect(() => new CpuBackend({ threads: 0 })).toThrow(/threads must be an integer/);
  });
});
