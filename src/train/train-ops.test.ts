// Every training op: the C forward (fast and `_ref`, on every instruction-set
// variant) against the float64 TypeScript reference, and the C backward
// against central finite differences of that float64 forward, through a
// random projection loss L = sum(r * y).
import { afterAll, describe, expect, it } from "bun:test";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../ffi/cpu.ts";
import { PsionicError } from "../util/errors.ts";
import { seededRandom } from "../util/seeded-random.ts";
import * as ref from "./reference-ops.ts";
import { TrainKernels } from "./train-kernels.ts";

const lib = cpuKernels();
const bestVariant = String(lib.psi_cpu_variant()) as (typeof CPU_VARIANTS)[number];
afterAll(() => void selectCpuVariant(lib, bestVariant));

const random = seededRandom(7);
const fill = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (random() - 0.5) * 2 * scale);
const f64 = (a: ArrayLike<number>) => Float64Array.from(a as ArrayLike<number>);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!; return s; };

function maxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0, scale = 0;
  for (let i = 0; i < a.length; i++) { worst = Math.max(worst, Math.abs(a[i]! - b[i]!)); scale = Math.max(scale, Math.abs(b[i]!)); }
  return worst / Math.max(scale, 1e-30);
}

/** Central differences (h = 1e-6, float64) of loss at x, against `grad`; error relative to the largest gradient. */
function finiteDifferenceError(loss: (x: Float64Array) => number, x0: ArrayLike<number>, grad: ArrayLike<number>): number {
  const x = f64(x0), numeric = new Float64Array(x.length), h = 1e-6;
  for (let i = 0; i < x.length; i++) {
    const saved = x[i]!;
    x[i] = saved + h; const up = loss(x);
    x[i] = saved - h; const down = loss(x);
    x[i] = saved;
    numeric[i] = (up - down) / (2 * h);
  }
  return maxError(grad, numeric);
}

const variants = CPU_VARIANTS.filter((v) => selectCpuVariant(lib, v));
const modes = [0, 2].map((threads) => new TrainKernels(threads));

describe.each(variants)("training ops (%s)", (variant) => {
  const each = (f: (k: TrainKernels) => void) => { selectCpuVariant(lib, variant); for (const k of modes) f(k); };

  it("embedding: forward gathers rows, backward scatter-adds (repeated ids sum) exactly as the reference", () => each((k) => {
    const [n, d, vocab] = [9, 20, 6];
    const table = fill(vocab * d), ids = Int32Array.of(0, 5, 2, 2, 5, 1, 0, 5, 3), dout = fill(n * d);
    const out = new Float32Array(n * d);
    k.embeddingForward(table, ids, out, n, d, vocab);
    expect(Array.from(out)).toEqual(Array.from(ref.embeddingForward(table, ids, n, d)).map(Math.fround));
    const dtable = fill(vocab * d), expected = f64(dtable);
    k.embeddingBackward(dtable, ids, dout, n, d, vocab);
    ref.embeddingBackward(expected, ids, f64(dout), n, d);
    expect(maxError(dtable, expected)).toBeLessThan(1e-6);
    expect(() => k.embeddingForward(table, Int32Array.of(6), out, 1, d, vocab)).toThrow(PsionicError);
  }));

  it("rmsnorm: forward within 1e-6 of float64; backward (dx and dweight, added) within 1e-5 of finite differences", () => each((k) => {
    const [rows, n, eps] = [5, 37, 1e-5];
    const x = fill(rows * n), w = fill(n, 1.5), r = fill(rows * n);
    const y = new Float32Array(rows * n), rstd = new Float32Array(rows);
    k.rmsnormForward(x, w, y, rstd, rows, n, eps);
    const expected = ref.rmsnormForward(f64(x), w, rows, n, eps);
    expect(maxError(y, expected.y)).toBeLessThan(1e-6);
    const dx = new Float32Array(rows * n), dw = new Float32Array(n);
    k.rmsnormBackward(x, w, rstd, r, dx, dw, rows, n);
    expect(finiteDifferenceError((xv) => dot(ref.rmsnormForward(xv, w, rows, n, eps).y, r), x, dx)).toBeLessThan(1e-5);
    expect(finiteDifferenceError((wv) => dot(ref.rmsnormForward(f64(x), wv, rows, n, eps).y, r), w, dw)).toBeLessThan(1e-5);
    // Gradients add: a second backward doubles them.
    const dx2 = dx.slice(), dw2 = dw.slice();
    k.rmsnormBackward(x, w, rstd, r, dx2, dw2, rows, n);
    expect(maxError(dx2, Array.from(dx, (v) => 2 * v))).toBeLessThan(1e-6);
    expect(maxError(dw2, Array.from(dw, (v) => 2 * v))).toBeLessThan(1e-6);
  }));

  it("matmul: dX = dY W and dW += dY^T X within 1e-5 of finite differences of Y = X W^T", () => each((k) => {
    const [rows, inDim, outDim] = [6, 11, 9];
    const x = fill(rows * inDim), w = fill(outDim * inDim), r = fill(rows * outDim);
    const dx = new Float32Array(rows * inDim), dw = new Float32Array(outDim * inDim);
    k.sgemm(false, false, rows, inDim, outDim, r, outDim, w, inDim, dx, inDim, false);
    k.sgemm(true, false, outDim, inDim, rows, r, outDim, x, inDim, dw, inDim, true);
    expect(finiteDifferenceError((xv) => dot(ref.matmulForward(xv, w, rows, inDim, outDim), r), x, dx)).toBeLessThan(1e-5);
    expect(finiteDifferenceError((wv) => dot(ref.matmulForward(f64(x), wv, rows, inDim, outDim), r), w, dw)).toBeLessThan(1e-5);
  }));

  it("rope: rotates the Q and K parts of packed rows like the float64 closed form; backward is the exact transpose", () => each((k) => {
    const [seqLen, heads, kvHeads, hd, base] = [6, 3, 1, 8, 10000];
    const rows = 2 * seqLen, width = (heads + 2 * kvHeads) * hd;
    const cos = new Float32Array(seqLen * hd / 2), sin = new Float32Array(seqLen * hd / 2);
    k.ropeTable(cos, sin, seqLen, hd, base);
    const qkv = fill(rows * width), rotated = qkv.slice();
    k.rope(false, rotated, rows, seqLen, heads, hd, width, cos, sin);
    k.rope(false, rotated.subarray(heads * hd), rows, seqLen, kvHeads, hd, width, cos, sin);
    const q = new Float64Array(rows * heads * hd), kk = new Float64Array(rows * kvHeads * hd);
    for (let r = 0; r < rows; r++) {
      q.set(qkv.subarray(r * width, r * width + heads * hd), r * heads * hd);
      kk.set(qkv.subarray(r * width + heads * hd, r * width + (heads + kvHeads) * hd), r * kvHeads * hd);
    }
    ref.rope(q, rows, seqLen, heads, hd, base, false);
    ref.rope(kk, rows, seqLen, kvHeads, hd, base, false);
    for (let r = 0; r < rows; r++) {
      expect(maxError(rotated.subarray(r * width, r * width + heads * hd), q.subarray(r * heads * hd, (r + 1) * heads * hd))).toBeLessThan(1e-5);
      expect(maxError(rotated.subarray(r * width + heads * hd, r * width + (heads + kvHeads) * hd), kk.subarray(r * kvHeads * hd, (r + 1) * kvHeads * hd))).toBeLessThan(1e-5);
      // V is not touched.
      expect(Array.from(rotated.subarray(r * width + (heads + kvHeads) * hd, (r + 1) * width))).toEqual(Array.from(qkv.subarray(r * width + (heads + kvHeads) * hd, (r + 1) * width)));
    }
    // Backward: <R x, g> = <x, R^T g> for the rotation R.
    const g = fill(rows * heads * hd), back = g.slice(), x = fill(rows * heads * hd), forward = x.slice();
    k.rope(false, forward, rows, seqLen, heads, hd, heads * hd, cos, sin);
    k.rope(true, back, rows, seqLen, heads, hd, heads * hd, cos, sin);
    expect(Math.abs(dot(forward, g) - dot(x, back))).toBeLessThan(1e-5 * Math.sqrt(x.length));
  }));

  it("attention: forward matches float64 within 1e-5; backward matches finite differences for Q, K and V within 1e-5 (grouped heads)", () => each((k) => {
    const a: ref.AttentionShape = { batch: 2, seqLen: 5, heads: 4, kvHeads: 2, headDim: 6 };
    const rows = a.batch * a.seqLen, qw = a.heads * a.headDim, kw = a.kvHeads * a.headDim, width = qw + 2 * kw;
    const qkv = fill(rows * width, 1.5), r = fill(rows * qw);
    const split = (packed: ArrayLike<number>) => {
      const q = new Float64Array(rows * qw), kk = new Float64Array(rows * kw), v = new Float64Array(rows * kw);
      for (let t = 0; t < rows; t++) for (let i = 0; i < width; i++) {
        const value = packed[t * width + i]!;
        if (i < qw) q[t * qw + i] = value; else if (i < qw + kw) kk[t * kw + i - qw] = value; else v[t * kw + i - qw - kw] = value;
      }
      return { q, kk, v };
    };
    const out = new Float32Array(rows * qw), probs = new Float32Array(a.batch * a.heads * a.seqLen * a.seqLen);
    k.attentionForward(qkv, out, probs, a.batch, a.seqLen, a.heads, a.kvHeads, a.headDim);
    const s = split(qkv);
    const expected = ref.attentionForward(s.q, s.kk, s.v, a);
    expect(maxError(out, expected.out)).toBeLessThan(1e-5);
    expect(maxError(probs, expected.probs)).toBeLessThan(1e-5);
    const dqkv = fill(rows * width); // overwritten
    k.attentionBackward(qkv, probs, r, dqkv, a.batch, a.seqLen, a.heads, a.kvHeads, a.headDim);
    const loss = (packed: Float64Array) => { const p = split(packed); return dot(ref.attentionForward(p.q, p.kk, p.v, a).out, r); };
    expect(finiteDifferenceError(loss, qkv, dqkv)).toBeLessThan(1e-5);
  }));

  it("swiglu: forward within 1e-6 of float64; backward (gate and up) within 1e-5 of finite differences", () => each((k) => {
    const [rows, ffn] = [4, 19];
    const gu = fill(rows * 2 * ffn, 4), r = fill(rows * ffn);
    const parts = (packed: ArrayLike<number>) => {
      const gate = new Float64Array(rows * ffn), up = new Float64Array(rows * ffn);
      for (let t = 0; t < rows; t++) for (let i = 0; i < ffn; i++) { gate[t * ffn + i] = packed[t * 2 * ffn + i]!; up[t * ffn + i] = packed[t * 2 * ffn + ffn + i]!; }
      return { gate, up };
    };
    const h = new Float32Array(rows * ffn);
    k.swigluForward(gu, h, rows, ffn);
    const p = parts(gu);
    expect(maxError(h, ref.swigluForward(p.gate, p.up))).toBeLessThan(1e-6);
    const dgu = new Float32Array(rows * 2 * ffn);
    k.swigluBackward(gu, r, dgu, rows, ffn);
    expect(finiteDifferenceError((x) => { const q = parts(x); return dot(ref.swigluForward(q.gate, q.up), r); }, gu, dgu)).toBeLessThan(1e-5);
  }));

  it("cross-entropy: losses within 1e-6 of float64, dlogits within 1e-5 of finite differences (also in place); bad targets refused", () => each((k) => {
    const [rows, vocab, scale] = [3, 70, 0.25];
    const logits = fill(rows * vocab, 5), targets = Int32Array.of(0, 69, 33);
    const losses = new Float32Array(rows), dlogits = new Float32Array(rows * vocab);
    k.crossEntropy(logits, targets, losses, dlogits, rows, vocab, scale);
    expect(maxError(losses, ref.crossEntropy(f64(logits), targets, rows, vocab, scale).losses)).toBeLessThan(1e-6);
    const total = (x: Float64Array) => ref.crossEntropy(x, targets, rows, vocab, scale).losses.reduce((a, b) => a + b, 0) * scale;
    expect(finiteDifferenceError(total, logits, dlogits)).toBeLessThan(1e-5);
    const inPlace = logits.slice(), lossesOnly = new Float32Array(rows);
    k.crossEntropy(inPlace, targets, losses, inPlace, rows, vocab, scale);
    expect(Array.from(inPlace)).toEqual(Array.from(dlogits));
    k.crossEntropy(logits, targets, lossesOnly, null, rows, vocab, scale);
    expect(Array.from(lossesOnly)).toEqual(Array.from(losses));
    const error = (() => { try { k.crossEntropy(logits, Int32Array.of(0, 70, 1), losses, null, rows, vocab, 1); } catch (e) { return e; } })();
    expect(error instanceof PsionicError && error.code).toBe("train.bad-token");
  }));
});
