// Every CUDA op against the CPU backend (whose kernels are checked against
// their plain references and ggml) on fresh random inputs. Needs a GPU: run
// by scripts/device-check.sh as `bun test ./src/runtime/cuda/cuda-ops.cuda-check.ts`;
// the file is not named *.test.ts, so the default `bun test` (CI, no GPU) does not collect it.
import { describe, expect, it } from "bun:test";
import { encodeTensor } from "../../gguf/quant/codecs.ts";
import { GGMLType } from "../../gguf/types.ts";
import { addMoE, addMoEThenNorm, addThenNorm, DownloadBuffer, products, ropeQK, ropeThenAttend, type Activation, type Backend, type RopeParams, type Weight } from "../backend.ts";
import { CpuBackend } from "../cpu/cpu-backend.ts";
import { SeededRng } from "../rng.ts";
import { refTopKRows } from "../sampler-reference.ts";
import { CudaBackend } from "./cuda-backend.ts";
import { deviceAlloc } from "./cuda-tensors.ts";

const cuda = new CudaBackend();
const cpu = new CpuBackend({ threads: 4 });
// Fresh inputs each run; PSIONIC_CUDA_CHECK_SEED=N (printed below) repeats a run's.
const seed = process.env.PSIONIC_CUDA_CHECK_SEED ? Number(process.env.PSIONIC_CUDA_CHECK_SEED) : Date.now() >>> 0;
console.log(`device: ${cuda.deviceName}; cuBLAS: ${cuda.cublasStatus()}; inputs seed ${seed} (PSIONIC_CUDA_CHECK_SEED)`);
const rng = new SeededRng(seed);

function random(n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.nextDouble() * 2 - 1) * scale);
}

/** ‖a − b‖ / ‖b‖, refusing NaN. */
function relError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]!)) return Infinity;
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** The same weight on both backends. */
function both(name: string, type: GGMLType, dims: number[], values?: Float32Array): [Weight, Weight] {
  const v = values ?? random(dims.reduce((a, b) => a * b, 1));
  const bytes = type === GGMLType.F32 ? new Uint8Array(v.buffer.slice(0)) : encodeTensor(type, v);
  return [cuda.loadWeight(name, type, dims, bytes), cpu.loadWeight(name, type, dims, bytes.slice())];
}

/** Random rows, each drawn again until `clear(out, width, t)` holds for the CPU's `op` of it. */
function rowsWhere(tokens: number, d: number, op: (x: Activation) => Activation, clear: (out: Float32Array, width: number, t: number) => boolean): Float32Array {
  const v = random(tokens * d);
  for (let round = 0; round < 50; round++) {
    const out = cpu.download(op(cpu.upload(v, tokens, d)));
    const width = out.length / tokens;
    let redrawn = 0;
    for (let t = 0; t < tokens; t++) {
      if (clear(out, width, t)) continue;
      v.set(random(d), t * d);
      redrawn++;
    }
    if (redrawn === 0) return v;
  }
  throw new Error(`no ${tokens} clear rows in 50 rounds`);
}

/**
 * Rows in which no router logit (the CPU's, from `logits`) lies within `margin` of the k-th
 * largest without being exactly equal to it. The backends' logits differ in their last bits
 * (summation order, activation rounding), so a near-tie at the top-k boundary may pick a
 * different expert on each side: a property of those inputs, not a bug. Exact ties are kept:
 * the lower expert id wins on both, and a test checks it.
 */
function routableRows(tokens: number, d: number, k: number, logits: (x: Activation) => Activation, margin = 0.05): Float32Array {
  return rowsWhere(tokens, d, logits, (l, experts, t) => {
    const row = l.subarray(t * experts, (t + 1) * experts);
    const boundary = Array.from(row).sort((a, b) => b - a)[k - 1]!;
    return !row.some((v) => v !== boundary && Math.abs(v - boundary) < margin);
  });
}

/**
 * Rows whose `op` output (the CPU's) quantizes to the same 8-bit blocks on both sides: no
 * value within 1e-3 of halfway between two codes of its 32-value block (scale = largest
 * magnitude / 127), and no block scale within 1e-3 of halfway between two fp16 values (the
 * scale is kept as fp16). An op the CUDA backend fuses with the quantization for the next
 * product computes its floats in another order, so on such a half-step the two sides round
 * apart: a code's worth (~1e-3 of a product row) or an fp16 step of a block (~2e-4), a
 * property of the inputs, not a bug.
 */
function clearOfHalfSteps(tokens: number, d: number, op: (x: Activation) => Activation): Float32Array {
  return rowsWhere(tokens, d, op, (out, width, t) => {
    for (let b = t * width; b < (t + 1) * width; b += 32) {
      const block = out.subarray(b, b + 32);
      const step = block.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127;
      if (step === 0) continue;
      const fp16Steps = step / 2 ** (Math.floor(Math.log2(step)) - 10); // the scale in fp16 steps (normal range)
      if (Math.abs((fp16Steps % 1) - 0.5) < 1e-3) return false;
      if (block.some((v) => Math.abs(((Math.abs(v) / step) % 1) - 0.5) < 1e-3)) return false;
    }
    return true;
  });
}

/** Runs `op` on both backends from the same host rows (an embed first starts each one's step). */
function compare(rows: number, width: number, op: (b: Backend, x: Activation, side: 0 | 1) => Activation, tolerance: number, label: string, values?: Float32Array): number {
  const v = values ?? random(rows * width);
  const outs = ([cuda, cpu] as Backend[]).map((b, side) => b.download(op(b, b.upload(v, rows, width), side as 0 | 1)));
  const err = relError(outs[0]!, outs[1]!);
  console.log(`${label}: rel error ${err.toExponential(2)}`);
  expect(err).toBeLessThanOrEqual(tolerance);
  return err;
}

const FLOAT_TYPES = [GGMLType.F32, GGMLType.F16, GGMLType.BF16];
const QUANT_TYPES = [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.MXFP4, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K];
const K_QUANTS = new Set([GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]);

function matmulTolerance(type: GGMLType, rows: number): number {
  // From 65 rows float weights go through fp16 cuBLAS; quantized ones keep the int8 arithmetic (tensor cores).
  if (rows >= 65 && FLOAT_TYPES.includes(type)) return 2e-2;
  if (type === GGMLType.F16) return 1e-3; // the CPU's F16 dot rounds its partial sums differently
  if (FLOAT_TYPES.includes(type)) return 1e-4;
  // Q4_1/Q5_1 multiply their min by fp16(d * sum(q)) as ggml's q8_1 keeps it; the device has only
  // the fp16-rounded d, the CPU the float d, so the two round some blocks' min term one fp16 step
  // apart: up to 1.6e-3 in 780 compares of 30 seeds (2.1e-3 once in 80 runs), a wrong min term ~1.
  if (type === GGMLType.Q4_1 || type === GGMLType.Q5_1) return 4e-3;
  // The CPU quantizes K-quant activations per 256 (q8_K): about 5e-3 apart (up to 6.4e-3 over
  // a few rows), so from 13 rows on a 1% slip still shows.
  return K_QUANTS.has(type) ? (rows >= 13 ? 1e-2 : 2e-2) : 1e-4;
}

describe("CUDA ops against the CPU backend", () => {
  // An odd N: the matrix-vector kernels take outputs two to a warp from 4 rows, so the last warp has one.
  const K = 512, N = 71;
  for (const type of [...FLOAT_TYPES, ...QUANT_TYPES]) {
    it(`matmul ${GGMLType[type]}: 1..40 rows, with bias`, () => {
      const [wg, wc] = both("w", type, [K, N]);
      const [bg, bc] = both("b", GGMLType.F32, [N]);
      for (const rows of [1, 2, 3, 5, 8, 13, 40]) {
        compare(rows, K, (b, x, side) => b.matmul(x, side ? wc : wg, side ? bc : bg), matmulTolerance(type, rows), `matmul ${GGMLType[type]} x${rows}`);
      }
    });
    // Rows of 90-96 sub-blocks (gpt-oss's 2880): lanes take two sub-blocks a step, then the rest one at a time.
    it(`matmul ${GGMLType[type]}: 1..8 rows of a wide K (${K_QUANTS.has(type) ? 3072 : 2880})`, () => {
      const k = K_QUANTS.has(type) ? 3072 : 2880;
      const [wg, wc] = both("w", type, [k, 40]);
      for (const rows of [1, 3, 8]) compare(rows, k, (b, x, side) => b.matmul(x, side ? wc : wg), matmulTolerance(type, rows), `matmul ${GGMLType[type]} x${rows} (K ${k})`);
    });
    // Float rows load 16 bytes at a time where K allows it (F32: K % 4, F16/BF16: K % 8), else a value at a time.
    if (FLOAT_TYPES.includes(type)) {
      it(`matmul ${GGMLType[type]}: rows of K 36 and 50 (vector loads or not), 1..8 rows`, () => {
        for (const k of [36, 50]) {
          const [wg, wc] = both("w", type, [k, 24]);
          for (const rows of [1, 3, 8]) compare(rows, k, (b, x, side) => b.matmul(x, side ? wc : wg), matmulTolerance(type, rows), `matmul ${GGMLType[type]} x${rows} (K ${k})`);
        }
      });
    }
    // Past the tiles' edges: K of 11 sub-blocks (a partial stage of 4), 140 outputs (2 x 64 + 12), rows 65..130 (64 + 1, + 36, + 2).
    it(`matmul ${GGMLType[type]}: 65..130 rows (the many-row kernels), with bias`, () => {
      const k = K_QUANTS.has(type) ? 768 : 352, n = 140;
      const [wg, wc] = both("w", type, [k, n]);
      const [bg, bc] = both("b", GGMLType.F32, [n]);
      for (const rows of [65, 100, 130]) {
        compare(rows, k, (b, x, side) => b.matmul(x, side ? wc : wg, side ? bc : bg), matmulTolerance(type, rows), `matmul ${GGMLType[type]} x${rows} (K ${k})`);
      }
    });
    it(`embed ${GGMLType[type]}: rows of a table`, () => {
      const [tg, tc] = both("table", type, [K, 40]);
      const tokens = Int32Array.of(3, 0, 39, 3, 17);
      const ours = cuda.download(cuda.embed(tg, tokens)), theirs = cpu.download(cpu.embed(tc, tokens));
      expect(relError(ours, theirs)).toBeLessThan(1e-6);
    });
  }

  it("three products of one input (q, k, v) share its int8 rows, a norm's output comes with its int8 rows, and a product of another input does not", () => {
    const ws = [GGMLType.Q8_0, GGMLType.MXFP4, GGMLType.F16, GGMLType.Q4_K].map((t, i) => both(`w${i}`, t, [K, N]));
    compare(3, K, (b, x, side) => {
      const y = b.rmsNorm(x, null, 1e-5);
      const outs = [b.matmul(y, side ? ws[1]![1] : ws[1]![0])];
      outs.push(...ws.map(([wg, wc]) => b.matmul(x, side ? wc : wg)));
      // A different input after the same input's products must be quantized afresh.
      outs.push(b.matmul(y, side ? ws[0]![1] : ws[0]![0]), b.matmul(x, side ? ws[1]![1] : ws[1]![0]));
      return b.concatRows(outs.map((o) => b.rmsNorm(o, null, 1e-5)));
    }, 2e-2, "shared quantization");
  });

  it("an allocation the device cannot hold is refused with the sizes and what to change, not a crash", () => {
    expect(() => deviceAlloc(2 ** 50, "blk.0.ffn_gate_exps.weight")).toThrow(
      /blk\.0\.ffn_gate_exps\.weight: cudaMalloc of 1125899906842624 bytes failed: \d+ of \d+ bytes free on the device; put fewer layers on the GPU \(-ngl N/);
  });

  it("download into a caller's buffer: the first rows x width values, the rest untouched; a short buffer is refused", () => {
    const v = random(3 * 70);
    const x = cuda.upload(v, 3, 70);
    const into = new Float32Array(300).fill(7);
    const got = cuda.download(x, into);
    expect(got.buffer).toBe(into.buffer);
    expect(got).toEqual(v);
    expect(into.subarray(210).every((value) => value === 7)).toBe(true);
    expect(() => cuda.download(x, new Float32Array(209))).toThrow(/download: 3x70 values do not fit a buffer of 209/);
    // DownloadBuffer takes the backend's page-locked memory, which the device copies into directly.
    const reads = new DownloadBuffer();
    const first = reads.read(cuda, x);
    expect(first).toEqual(v);
    expect(reads.read(cuda, cuda.upload(v.subarray(0, 140), 2, 70)).buffer).toBe(first.buffer);
    const pinned = cuda.hostBuffer(500);
    expect(pinned.length).toBe(500);
    expect(cuda.download(x, pinned)).toEqual(v);
    // Page-locked arrays no longer referenced are freed when collected, not at exit (and not while viewed).
    for (let i = 0; i < 64; i++) cuda.hostBuffer(1 << 18)[i] = i;
    Bun.gc(true);
    expect(cuda.download(x, pinned)).toEqual(v);
  });

  it("argmaxRows: each row's largest value, ties to the lowest index; a NaN row is refused", () => {
    const width = 5000, rows = 3;
    const v = random(rows * width);
    v[width + 17] = 9; v[width + 4000] = 9; // a tie in row 1
    v[2 * width + width - 1] = 50;          // the last column in row 2
    const ids = cuda.argmaxRows(cuda.upload(v, rows, width));
    const host = Array.from({ length: rows }, (_, r) => {
      let best = 0;
      for (let i = 1; i < width; i++) if (v[r * width + i]! > v[r * width + best]!) best = i;
      return best;
    });
    expect(Array.from(ids)).toEqual(host);
    expect(ids[1]).toBe(17);
    v[5] = NaN;
    expect(() => cuda.argmaxRows(cuda.upload(v, rows, width))).toThrow(/row 0 holds a non-finite logit/);
  });

  it("topKRows: each row's k best with their values, best first, ties to the lower index (the sampler's top-k), and its log Z; NaN or +inf gives null", () => {
    const bits = (f: Float32Array) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
    const check = (v: Float32Array, rows: number, k: number, what: string) => {
      const got = cuda.topKRows(cuda.upload(v, rows, v.length / rows), k);
      const want = refTopKRows(v, rows, k);
      expect(got, what).not.toBeNull();
      expect(got!.k).toBe(k);
      expect(Array.from(got!.ids), what).toEqual(Array.from(want.ids));
      expect(bits(got!.values), what).toEqual(bits(want.values)); // -0 stays -0
      // log Z over the whole row (float sums in another order than the reference's doubles); -inf for a row of -inf.
      for (let r = 0; r < rows; r++) {
        if (Number.isNaN(want.logZ[r])) expect(got!.logZ[r], what).toBe(-Infinity);
        else expect(Math.abs(got!.logZ[r]! - want.logZ[r]!), `${what}: log Z of row ${r}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(want.logZ[r]!)));
      }
    };
    // Quarter steps tie often; signed zeros compare equal (ties by index); -inf is a value like any other.
    const ties = random(3 * 5000, 3).map((x) => Math.round(x * 4) / 4);
    for (let i = 0; i < ties.length; i += 61) ties[i] = i % 2 ? -0 : 0;
    for (let i = 5; i < ties.length; i += 7) ties[i] = -Infinity;
    for (const k of [1, 40, 128]) check(ties, 3, k, `ties, k ${k}`);
    check(random(2 * 201_088, 4), 2, 128, "gpt-oss's vocabulary: every part of the row");
    check(Float32Array.from({ length: 20_000 }, (_, i) => i), 1, 128, "increasing: every value enters its list");
    check(Float32Array.from({ length: 20_000 }, (_, i) => -i), 1, 128, "decreasing");
    check(new Float32Array(9000).fill(0.5), 1, 50, "all equal: the lowest indices");
    check(new Float32Array(300).fill(-Infinity), 1, 10, "all -inf");
    check(random(100), 1, 100, "k = the row width");
    const broken = random(3 * 5000);
    broken[5000 + 4321] = NaN;
    expect(cuda.topKRows(cuda.upload(broken, 3, 5000), 40)).toBeNull();
    broken[5000 + 4321] = Infinity;
    expect(cuda.topKRows(cuda.upload(broken, 3, 5000), 40)).toBeNull();
    expect(() => cuda.topKRows(cuda.upload(random(500), 1, 500), 129)).toThrow(/k = 129 must be in \[1, 128\]/);
    expect(() => cuda.topKRows(cuda.upload(random(50), 1, 50), 51)).toThrow(/at most the row width 50/);
  });

  it("a weight wide enough to fill the GPU with tiles (an output head): 16 and 40 rows on the tensor cores, 8 on the matrix-vector kernels", () => {
    const k = 64, n = 264 * 64 + 40;
    const [wg, wc] = both("head", GGMLType.Q8_0, [k, n]);
    for (const rows of [8, 16, 40]) compare(rows, k, (b, x, side) => b.matmul(x, side ? wc : wg), 1e-4, `wide matmul Q8_0 x${rows} (${n} outputs)`);
  });

  it("products of one input with three weights in one op (q, k, v; the products helper) as three matmuls, with biases", () => {
    for (const type of [GGMLType.Q8_0, GGMLType.MXFP4, GGMLType.F16]) {
      const ws = [70, 20, 36].map((n, i) => [both(`w${i}`, type, [K, n]), both(`b${i}`, GGMLType.F32, [n])] as const);
      for (const rows of [1, 5, 40, 100]) {
        for (let i = 0; i < 3; i++) {
          compare(rows, K, (b, x, side) => products(b, x, ws.map(([w, bias]) => ({ w: w[side], bias: bias[side] })))[i]!,
            matmulTolerance(type, rows), `products ${GGMLType[type]} x${rows} [${i}]`);
        }
      }
    }
  });

  it("add + rmsNorm in one op (addThenNorm: the CUDA backend's addRmsNorm, the CPU's two ops), then products of the norm", () => {
    const [wg, wc] = both("norm", GGMLType.F32, [256]);
    const [mg, mc] = both("w", GGMLType.Q8_0, [256, 256]);
    for (const rows of [1, 5, 70]) {
      compare(rows, 256, (b, x, s) => {
        const { sum, normed } = addThenNorm(b, x, b.rmsNorm(x, null, 1e-5), s ? wc : wg, 1e-5);
        return b.concatRows([sum, normed, b.matmul(normed, s ? mc : mg)]);
      }, 1e-5, `addThenNorm x${rows}`, clearOfHalfSteps(rows, 256, (x) => addThenNorm(cpu, x, cpu.rmsNorm(x, null, 1e-5), wc, 1e-5).normed));
    }
  });

  it("rmsNorm (whole rows and groups), add, swiglu, takeRows, concatRows", () => {
    const [wg, wc] = both("norm", GGMLType.F32, [64]);
    compare(5, 256, (b, x, s) => b.rmsNorm(x, null, 1e-5), 1e-5, "rmsNorm");
    compare(5, 256, (b, x, s) => b.rmsNorm(x, s ? wc : wg, 1e-6, 64), 1e-5, "rmsNorm groups of 64");
    compare(4, 300, (b, x) => b.add(x, b.rmsNorm(x, null, 1e-5)), 1e-6, "add");
    compare(4, 300, (b, x) => b.swiglu(x, b.rmsNorm(x, null, 1e-5)), 1e-5, "swiglu");
    compare(6, 96, (b, x) => b.concatRows([b.takeRows(x, [5, 0, 2]), b.takeRows(x, [1, 1])]), 0, "takeRows + concatRows");
  });

  const selectValues = new Float32Array(256 * 128);
  for (let i = 0; i < 128; i++) selectValues[i * 256 + i] = 1;
  const [selectG, selectC] = both("select", GGMLType.F32, [256, 128], selectValues);
  const ropes: [string, RopeParams][] = [
    ["normal", { dims: 64, mode: "normal", freqBase: 10000, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096 }],
    ["normal, partial dims", { dims: 32, mode: "normal", freqBase: 10000, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096 }],
    ["neox, partial dims", { dims: 32, mode: "neox", freqBase: 1e6, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096 }],
    ["YaRN x32 (gpt-oss)", { dims: 64, mode: "neox", freqBase: 150000, freqScale: 1 / 32, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096 }],
  ];
  for (const [label, params] of ropes) {
    it(`rope ${label}, and q with k in one op (ropeQK)`, () => {
      const positions = Int32Array.of(0, 1, 7, 300, 4095, 20000);
      compare(6, 4 * 64, (b, x) => b.rope(x, positions, 64, params), 1e-5, `rope ${label}`);
      // k: 2 heads, the first half of each q row's values (an exact F32 selection).
      for (const part of ["q", "k"] as const) {
        compare(6, 4 * 64, (b, x, side) => ropeQK(b, x, b.matmul(x, side ? selectC : selectG), positions, 64, params)[part], 1e-5, `ropeQK ${label}: ${part}`);
      }
    });
  }

  it("rope of an odd head dim is refused with the dims, not run (the kernel reads pairs as float2)", () => {
    const params = ropes[0]![1];
    const x = cuda.upload(random(2 * 4 * 63), 2, 4 * 63);
    expect(() => cuda.rope(x, Int32Array.of(0, 1), 63, { ...params, dims: 62 })).toThrow(/rope: head dim 63 and rotated dims 62 must be even/);
  });

  it("attention: two sequences in one batch, GQA, sliding window and sinks, over stored and new rows; the output projection after it", () => {
    const heads = 8, kvHeads = 2, hd = 64;
    const [sg, sc] = both("sinks", GGMLType.F32, [heads]);
    // The CUDA backend's attention leaves its output's int8 rows for this product.
    const [og, oc] = both("attn_output", GGMLType.Q8_0, [heads * hd, heads * hd]);
    for (const window of [0, 5]) {
      for (const withSinks of [false, true]) {
        const caches = ([cuda, cpu] as Backend[]).map((b) => [b.allocKV(64, kvHeads * hd, "f16"), b.allocKV(64, kvHeads * hd, "f16"), b.allocKV(64, kvHeads * hd, "f16"), b.allocKV(64, kvHeads * hd, "f16")] as const);
        const params = (side: 0 | 1) => ({ heads, kvHeads, headDimK: hd, headDimV: hd, scale: 0.125, window, sinks: withSinks ? (side ? sc : sg) : undefined });
        // First a prompt of 9 and one of 20 tokens, then one decode row each.
        for (const [lens, starts] of [[[9, 20], [0, 0]], [[1, 1], [9, 20]]] as const) {
          const rows = lens[0] + lens[1];
          const q = random(rows * heads * hd), k = random(rows * kvHeads * hd), v = random(rows * kvHeads * hd);
          const outs = ([cuda, cpu] as Backend[]).map((b, side) => {
            const [k0, v0, k1, v1] = caches[side]!;
            const segs = [
              { kCache: k0, vCache: v0, positions: Int32Array.from({ length: lens[0] }, (_, i) => starts[0] + i), rowStart: 0 },
              { kCache: k1, vCache: v1, positions: Int32Array.from({ length: lens[1] }, (_, i) => starts[1] + i), rowStart: lens[0] },
            ];
            const attended = b.attendSegments(b.upload(q, rows, heads * hd), b.upload(k, rows, kvHeads * hd), b.upload(v, rows, kvHeads * hd), segs, params(side as 0 | 1));
            return b.download(b.concatRows([attended, b.matmul(attended, side ? oc : og)]));
          });
          // The attention's own 3-6e-4 moves int8 codes of the projection's input here and there.
          const split = rows * heads * hd;
          const err = relError(outs[0]!.subarray(0, split), outs[1]!.subarray(0, split));
          const projected = relError(outs[0]!.subarray(split), outs[1]!.subarray(split));
          console.log(`attention window ${window} sinks ${withSinks} rows ${rows}: rel error ${err.toExponential(2)}, output projection ${projected.toExponential(2)}`);
          expect(err).toBeLessThan(5e-3);
          expect(projected).toBeLessThan(2e-2);
        }
      }
    }
  });

  it("rope in the launch that stores k and v (ropeThenAttend: the CUDA backend's ropeAttendSegments): bit for bit ropeQK then attendSegments, prompts and decode", () => {
    const heads = 8, kvHeads = 2, hd = 64;
    const [sg, sc] = both("sinks", GGMLType.F32, [heads]);
    for (const [label, rope] of ropes) {
      // Three runs with their own caches: CUDA fused, CUDA rope then attention, the CPU.
      const runs = [[cuda, true], [cuda, false], [cpu, true]] as const;
      const caches = runs.map(([b]) => [b.allocKV(64, kvHeads * hd, "f16"), b.allocKV(64, kvHeads * hd, "f16"), b.allocKV(64, kvHeads * hd, "f16"), b.allocKV(64, kvHeads * hd, "f16")] as const);
      // Prompts of 9 and 20 tokens (20: flash attention reads the rotated q), then a decode row each (over the stored, rotated keys).
      for (const [lens, starts] of [[[9, 20], [0, 0]], [[1, 1], [9, 20]]] as const) {
        const rows = lens[0] + lens[1];
        const q = random(rows * heads * hd), k = random(rows * kvHeads * hd), v = random(rows * kvHeads * hd);
        const positions = Int32Array.from({ length: rows }, (_, r) => (r < lens[0] ? starts[0] + r : starts[1] + r - lens[0]));
        const outs = runs.map(([b, fused], i) => {
          const [k0, v0, k1, v1] = caches[i]!;
          const segs = [
            { kCache: k0, vCache: v0, positions: positions.subarray(0, lens[0]), rowStart: 0 },
            { kCache: k1, vCache: v1, positions: positions.subarray(lens[0]), rowStart: lens[0] },
          ];
          const params = { heads, kvHeads, headDimK: hd, headDimV: hd, scale: 0.125, window: 0, sinks: b === cpu ? sc : sg };
          const [qa, ka, va] = [b.upload(q, rows, heads * hd), b.upload(k, rows, kvHeads * hd), b.upload(v, rows, kvHeads * hd)];
          if (fused) return b.download(ropeThenAttend(b, qa, ka, va, positions, hd, rope, segs, params));
          const rotated = ropeQK(b, qa, ka, positions, hd, rope);
          return b.download(b.attendSegments(rotated.q, rotated.k, va, segs, params));
        });
        expect(outs[0]).toEqual(outs[1]!);
        const err = relError(outs[0]!, outs[2]!);
        console.log(`rope ${label} in the KV store, rows ${rows}: rel error ${err.toExponential(2)} against the CPU`);
        expect(err).toBeLessThan(5e-3);
      }
    }
    const kv = [cuda.allocKV(8, kvHeads * hd, "f16"), cuda.allocKV(8, kvHeads * hd, "f16")];
    const x = (width: number) => cuda.upload(random(2 * width), 2, width);
    expect(() => ropeThenAttend(cuda, x(heads * hd), x(kvHeads * hd), x(kvHeads * hd), Int32Array.of(3, 4), hd, ropes[0]![1],
      [{ kCache: kv[0]!, vCache: kv[1]!, positions: Int32Array.of(0, 1), rowStart: 0 }], { heads, kvHeads, headDimK: hd, headDimV: hd, scale: 0.125, window: 0 }))
      .toThrow(/ropeAttendSegments: row 0 is at 3 for rope, 0 in its segment/);
  });

  it("attention for prompts (flash.cuh, or attention.cu past PSIONIC_CUDA_FLASH_MIN_ROWS): heads of 64 and 128, segments past one 64-row tile, continuing after stored rows, window and sinks", () => {
    const heads = 4, kvHeads = 2;
    const [sg, sc] = both("sinks", GGMLType.F32, [heads]);
    for (const [hd, window, withSinks] of [[64, 0, false], [64, 40, true], [128, 40, true]] as const) {
      const caches = ([cuda, cpu] as Backend[]).map((b) => [0, 1, 2, 3].map(() => b.allocKV(256, kvHeads * hd, "f16")));
      const params = (side: 0 | 1) => ({ heads, kvHeads, headDimK: hd, headDimV: hd, scale: 0.125, window, sinks: withSinks ? (side ? sc : sg) : undefined });
      // Prompts of 70 and 17 rows, then 100 and 3 more rows after them.
      for (const [lens, starts] of [[[70, 17], [0, 0]], [[100, 3], [70, 17]]] as const) {
        const rows = lens[0] + lens[1];
        const q = random(rows * heads * hd), k = random(rows * kvHeads * hd), v = random(rows * kvHeads * hd);
        const outs = ([cuda, cpu] as Backend[]).map((b, side) => {
          const [k0, v0, k1, v1] = caches[side]!;
          const segs = [
            { kCache: k0!, vCache: v0!, positions: Int32Array.from({ length: lens[0] }, (_, i) => starts[0] + i), rowStart: 0 },
            { kCache: k1!, vCache: v1!, positions: Int32Array.from({ length: lens[1] }, (_, i) => starts[1] + i), rowStart: lens[0] },
          ];
          return b.download(b.attendSegments(b.upload(q, rows, heads * hd), b.upload(k, rows, kvHeads * hd), b.upload(v, rows, kvHeads * hd), segs, params(side as 0 | 1)));
        });
        const err = relError(outs[0]!, outs[1]!);
        console.log(`prompt attention head dim ${hd} window ${window} sinks ${withSinks} rows ${lens.join("+")} from ${starts.join("/")}: rel error ${err.toExponential(2)}`);
        expect(err).toBeLessThan(5e-3);
      }
    }
  });

  it("attention over a long context: decode rows split their keys among blocks (flash-decoding), with sinks and a window", () => {
    // Against float64 over the F16-rounded keys and values both caches hold (the CPU
    // backend's own one-token attention keeps an F16 running sum, as ggml's does).
    const heads = 4, kvHeads = 2, hd = 64, filled = 3000;
    const sinkValues = random(heads);
    const [sg] = both("sinks", GGMLType.F32, [heads], sinkValues);
    const k = random(filled * kvHeads * hd), v = random(filled * kvHeads * hd);
    const kh = k.map(Math.f16round), vh = v.map(Math.f16round);
    const [projection] = both("attn_output", GGMLType.Q8_0, [heads * hd, 96]);
    for (const window of [0, 1000]) {
      for (const rows of [1, 2]) {
        const q = random(rows * heads * hd);
        const positions = Int32Array.from({ length: rows }, (_, i) => filled - rows + i);
        const kc = cuda.allocKV(filled, kvHeads * hd, "f16"), vc = cuda.allocKV(filled, kvHeads * hd, "f16");
        cuda.storeKV(kc, cuda.upload(k, filled, kvHeads * hd), 0);
        cuda.storeKV(vc, cuda.upload(v, filled, kvHeads * hd), 0);
        const attended = cuda.attention(cuda.upload(q, rows, heads * hd), kc, vc, positions,
          { heads, kvHeads, headDimK: hd, headDimV: hd, scale: 0.125, window, sinks: sg });
        // The int8 rows the merge of the splits left are those a fresh quantization of its output gives.
        const projected = cuda.download(cuda.matmul(attended, projection));
        const ours = cuda.download(attended);
        expect(relError(projected, cuda.download(cuda.matmul(cuda.upload(ours, rows, heads * hd), projection)))).toBe(0);
        const ref = new Float32Array(rows * heads * hd);
        for (let r = 0; r < rows; r++) {
          for (let h = 0; h < heads; h++) {
            const kvh = Math.floor(h / (heads / kvHeads)), pos = positions[r]!, first = window > 0 ? Math.max(0, pos - window + 1) : 0;
            const scores: number[] = [];
            for (let key = first; key <= pos; key++) {
              let dot = 0;
              for (let i = 0; i < hd; i++) dot += q[(r * heads + h) * hd + i]! * kh[(key * kvHeads + kvh) * hd + i]!;
              scores.push(dot * 0.125);
            }
            const max = Math.max(...scores, sinkValues[h]!);
            let sum = Math.exp(sinkValues[h]! - max);
            const acc = new Float64Array(hd);
            scores.forEach((sc, j) => {
              const p = Math.exp(sc - max);
              sum += p;
              for (let i = 0; i < hd; i++) acc[i]! += p * vh[((first + j) * kvHeads + kvh) * hd + i]!;
            });
            for (let i = 0; i < hd; i++) ref[(r * heads + h) * hd + i] = acc[i]! / sum;
          }
        }
        const err = relError(ours, ref);
        console.log(`attention ${filled} keys, window ${window}, ${rows} rows: rel error ${err.toExponential(2)} against float64`);
        expect(err).toBeLessThan(1e-4);
      }
    }
  });

  // [router, gate, up, down] types: gpt-oss's own mix, a quantized router (whose int8 rows the
  // experts reuse), float experts, gate/up of different types (no fused gate+up pass), and
  // K-quant gate/up (a Q4_K_M file's: the fused pass with the blocks' minimums).
  const MOE_CASES: GGMLType[][] = [
    [GGMLType.F32, GGMLType.MXFP4, GGMLType.MXFP4, GGMLType.MXFP4],
    [GGMLType.Q8_0, GGMLType.Q8_0, GGMLType.Q8_0, GGMLType.Q8_0],
    [GGMLType.F32, GGMLType.F16, GGMLType.F16, GGMLType.F16],
    [GGMLType.F32, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q8_0],
    [GGMLType.F32, GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q8_0],
  ];
  for (const [routerType, gateType, upType, downType] of MOE_CASES) {
    const label = `router ${GGMLType[routerType!]}, experts ${GGMLType[gateType!]}/${GGMLType[upType!]}/${GGMLType[downType!]}`;
    it(`moe, ${label}: 1 to 200 tokens (past 64, quantized experts on the tensor cores, float experts grouped by the host)`, () => {
      const d = 256, ff = 128, experts = 8;
      const [rg, rc] = both("router", routerType!, [d, experts], random(d * experts, 0.5));
      const [rbg, rbc] = both("router.bias", GGMLType.F32, [experts]);
      const [gg, gc] = both("gate", gateType!, [d, ff, experts]);
      const [ug, uc] = both("up", upType!, [d, ff, experts]);
      const [dg, dc] = both("down", downType!, [ff, d, experts]);
      const [gbg, gbc] = both("gate.bias", GGMLType.F32, [ff, experts]);
      const [ubg, ubc] = both("up.bias", GGMLType.F32, [ff, experts]);
      const [dbg, dbc] = both("down.bias", GGMLType.F32, [d, experts]);
      const params = { expertsUsed: 4, activation: { kind: "swiglu-oai" as const, alpha: 1.702, limit: 7 } };
      const floatExperts = FLOAT_TYPES.includes(gateType!);
      // Float experts past 64 tokens go through fp16 cuBLAS. K-quant gate/up differ from the CPU's as their
      // products do (matmulTolerance), and the SwiGLU of two such products compounds it: up to 1.33e-2 in
      // 275 compares of 25 seeds.
      const tolerance = (tokens: number) => tokens > 64 && floatExperts ? 3e-2 : K_QUANTS.has(gateType!) ? 2e-2 : 2e-3;
      // With the residual in the same op (addMoE: the CUDA backend's moeAdd, the CPU's moe then add).
      for (const tokens of [3, 100]) {
        compare(tokens, d, (b, x, s) => addMoE(b, b.rmsNorm(x, null, 1e-5), x, s
          ? { router: rc, routerBias: rbc, gate: gc, gateBias: gbc, up: uc, upBias: ubc, down: dc, downBias: dbc }
          : { router: rg, routerBias: rbg, gate: gg, gateBias: gbg, up: ug, upBias: ubg, down: dg, downBias: dbg }, params),
          tolerance(tokens), `moe + residual ${label} x${tokens}`,
          routableRows(tokens, d, params.expertsUsed, (x) => cpu.matmul(cpu.rmsNorm(x, null, 1e-5), rc, rbc)));
      }
      // With the next layer's norm in the same op (addMoEThenNorm: the CUDA backend's moeAddRmsNorm,
      // one launch for the weighted sum, the residual and the norm): the same sum and normed rows, bit
      // for bit, as its moeAdd then rmsNorm, and the same int8 codes of the normed rows, which the
      // product after it reads (so its output matches too); the normed rows against the CPU's.
      const [ng, nc] = both("next.attn_norm", GGMLType.F32, [d]);
      const [pg, pc] = both("next.attn_q", GGMLType.Q8_0, [d, 64]);
      for (const tokens of [3, 100]) {
        const v = routableRows(tokens, d, params.expertsUsed, (x) => cpu.matmul(cpu.rmsNorm(x, null, 1e-5), rc, rbc));
        const gpuExperts = { router: rg, routerBias: rbg, gate: gg, gateBias: gbg, up: ug, upBias: ubg, down: dg, downBias: dbg };
        const run = (fused: boolean) => {
          const x = cuda.upload(v, tokens, d);
          const moeIn = cuda.rmsNorm(x, null, 1e-5);
          const { sum, normed } = fused
            ? cuda.moeAddRmsNorm(x, moeIn, gpuExperts, params, ng, 1e-5)
            : (() => { const s = cuda.moeAdd(x, moeIn, gpuExperts, params); return { sum: s, normed: cuda.rmsNorm(s, ng, 1e-5) }; })();
          return [sum, normed, cuda.matmul(normed, pg)].map((a) => cuda.download(a));
        };
        const [fused, apart] = [run(true), run(false)];
        fused.forEach((values, i) => expect(values).toEqual(apart[i]!));
        compare(tokens, d, (b, x, s) => {
          const experts = s ? { router: rc, routerBias: rbc, gate: gc, gateBias: gbc, up: uc, upBias: ubc, down: dc, downBias: dbc } : gpuExperts;
          return addMoEThenNorm(b, x, b.rmsNorm(x, null, 1e-5), experts, params, s ? nc : ng, 1e-5).normed;
        }, tolerance(tokens), `moe + residual + next norm ${label} x${tokens}`, v);
      }
      for (const tokens of [1, 2, 3, 9, 40, 100, 200]) {
        compare(tokens, d, (b, x, s) => b.moe(x, s
          ? { router: rc, routerBias: rbc, gate: gc, gateBias: gbc, up: uc, upBias: ubc, down: dc, downBias: dbc }
          : { router: rg, routerBias: rbg, gate: gg, gateBias: gbg, up: ug, upBias: ubg, down: dg, downBias: dbg }, params),
          tolerance(tokens), `moe ${label} x${tokens}`,
          routableRows(tokens, d, params.expertsUsed, (x) => cpu.matmul(x, rc, rbc)));
      }
    });
  }

  it("moe routing: tied router logits go to the lower expert id first, on the device as on the CPU (decode, batch, prefill)", () => {
    // Experts 1, 3 and 6 (and 0 and 7) have identical router rows and biases, so their
    // logits tie exactly; choosing 6 over 3, or 3 before 1, would change the result.
    const d = 128, ff = 64, experts = 8;
    const router = random(d * experts, 0.5);
    for (const [from, to] of [[1, 3], [1, 6], [0, 7]] as const) router.copyWithin(to * d, from * d, from * d + d);
    const bias = random(experts, 0.1);
    bias[3] = bias[6] = bias[1]!;
    bias[7] = bias[0]!;
    const [rg, rc] = both("router", GGMLType.F32, [d, experts], router);
    const [rbg, rbc] = both("router.bias", GGMLType.F32, [experts], bias);
    const [gg, gc] = both("gate", GGMLType.Q8_0, [d, ff, experts]);
    const [ug, uc] = both("up", GGMLType.Q8_0, [d, ff, experts]);
    const [dg, dc] = both("down", GGMLType.Q8_0, [ff, d, experts]);
    const params = { expertsUsed: 3, activation: { kind: "swiglu-oai" as const, alpha: 1.702, limit: 7 } };
    for (const tokens of [1, 5, 40, 90]) {
      compare(tokens, d, (b, x, s) => b.moe(x, s
        ? { router: rc, routerBias: rbc, gate: gc, up: uc, down: dc }
        : { router: rg, routerBias: rbg, gate: gg, up: ug, down: dg }, params),
        // A wrong pick moves a whole row (error ~1); 2e-3 leaves room for an expert input that
        // rounds to the next 8-bit step on one side (exp differs in its last bit), ~1e-3 on its row.
        2e-3, `moe with tied router logits x${tokens}`, routableRows(tokens, d, params.expertsUsed, (x) => cpu.matmul(x, rc, rbc)));
    }
  });
});
