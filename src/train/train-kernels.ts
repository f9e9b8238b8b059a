// Typed wrappers of the training kernels (kernels/cpu/train_*.c). Each call
// checks that every buffer holds what the kernel will touch, so a wrong size
// is a PsionicError here, never a write past the end in C. `threads: 0` runs
// the plain `_ref` version of a kernel (the tests' reference), otherwise the
// fast one on that many threads.
import { ptr } from "bun:ffi";
import { cpuKernels, type CpuLibrary } from "../../ffi/cpu.ts";
import { refuse } from "../util/errors.ts";

const STATUS: Record<number, string> = { [-10]: "bad shape", [-11]: "index out of range", [-13]: "out of memory" };

function check(op: string, status: number): void {
  if (status !== 0) refuse(status === -11 ? "train.bad-token" : "train.kernel", `${op}: ${STATUS[status] ?? `status ${status}`}`);
}

function need(op: string, name: string, array: { length: number }, count: number): void {
  if (array.length < count) refuse("train.kernel", `${op}: ${name} holds ${array.length} values, needs ${count}`);
}

/** Float32 elements op(A)(m, k) . op(B)(k, n) reads or writes in a row-major matrix with leading dimension ld. */
function extent(rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
}

export class TrainKernels {
  private readonly lib: CpuLibrary = cpuKernels();
  private sumScratch = new Float64Array(1);
  private readonly sumResult = new Float64Array(1);

  /** threads 0: the `_ref` kernels; n >= 1: the fast kernels on n threads. */
  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 0 || threads > 64) refuse("train.bad-threads", `threads must be an integer in [0, 64], got ${threads}`);
  }

  get reference(): boolean { return this.threads === 0; }

  /** C (m, n) = [C +] op(A) . op(B); op(A)[i][p] = transA ? a[p lda + i] : a[i lda + p], likewise B. */
  sgemm(transA: boolean, transB: boolean, m: number, n: number, k: number,
        a: Float32Array, lda: number, b: Float32Array, ldb: number, c: Float32Array, ldc: number, accumulate: boolean): void {
    need("sgemm", "A", a, transA ? extent(k, m, lda) : extent(m, k, lda));
    need("sgemm", "B", b, transB ? extent(n, k, ldb) : extent(k, n, ldb));
    need("sgemm", "C", c, extent(m, n, ldc));
    if (m === 0 || n === 0) return;
    if (k === 0) { // an empty sum (and nothing to take a pointer to)
      if (!accumulate) for (let i = 0; i < m; i++) c.fill(0, i * ldc, i * ldc + n);
      return;
    }
    const ta = transA ? 1 : 0, tb = transB ? 1 : 0, acc = accumulate ? 1 : 0;
    check("sgemm", this.reference
      ? this.lib.psi_train_sgemm_ref(ta, tb, m, n, k, ptr(a), lda, ptr(b), ldb, ptr(c), ldc, acc)
      : this.lib.psi_train_sgemm(ta, tb, m, n, k, ptr(a), lda, ptr(b), ldb, ptr(c), ldc, acc, this.threads));
  }

  /** out (n, d) = rows ids of table (vocab, d). */
  embeddingForward(table: Float32Array, ids: Int32Array, out: Float32Array, n: number, d: number, vocab: number): void {
    need("embedding", "table", table, vocab * d); need("embedding", "ids", ids, n); need("embedding", "out", out, n * d);
    check("embedding forward", this.reference
      ? this.lib.psi_train_embedding_forward_ref(ptr(table), ptr(ids), ptr(out), n, d, vocab)
      : this.lib.psi_train_embedding_forward(ptr(table), ptr(ids), ptr(out), n, d, vocab, this.threads));
  }

  /** dtable[ids[i]] += dout[i]. */
  embeddingBackward(dtable: Float32Array, ids: Int32Array, dout: Float32Array, n: number, d: number, vocab: number): void {
    need("embedding", "dtable", dtable, vocab * d); need("embedding", "ids", ids, n); need("embedding", "dout", dout, n * d);
    check("embedding backward", this.reference
      ? this.lib.psi_train_embedding_backward_ref(ptr(dtable), ptr(ids), ptr(dout), n, d, vocab)
      : this.lib.psi_train_embedding_backward(ptr(dtable), ptr(ids), ptr(dout), n, d, vocab, this.threads));
  }

  rmsnormForward(x: Float32Array, weight: Float32Array, y: Float32Array, rstd: Float32Array, rows: number, n: number, eps: number): void {
    need("rmsnorm", "x", x, rows * n); need("rmsnorm", "weight", weight, n); need("rmsnorm", "y", y, rows * n); need("rmsnorm", "rstd", rstd, rows);
    check("rmsnorm forward", this.reference
      ? this.lib.psi_train_rmsnorm_forward_ref(ptr(x), ptr(weight), ptr(y), ptr(rstd), rows, n, eps)
      : this.lib.psi_train_rmsnorm_forward(ptr(x), ptr(weight), ptr(y), ptr(rstd), rows, n, eps, this.threads));
  }

  /** dx += input gradient, dweight += weight gradient. */
  rmsnormBackward(x: Float32Array, weight: Float32Array, rstd: Float32Array, dy: Float32Array, dx: Float32Array, dweight: Float32Array, rows: number, n: number): void {
    for (const [name, a, size] of [["x", x, rows * n], ["weight", weight, n], ["rstd", rstd, rows], ["dy", dy, rows * n], ["dx", dx, rows * n], ["dweight", dweight, n]] as const) need("rmsnorm", name, a, size);
    check("rmsnorm backward", this.reference
      ? this.lib.psi_train_rmsnorm_backward_ref(ptr(x), ptr(weight), ptr(rstd), ptr(dy), ptr(dx), ptr(dweight), rows, n)
      : this.lib.psi_train_rmsnorm_backward(ptr(x), ptr(weight), ptr(rstd), ptr(dy), ptr(dx), ptr(dweight), rows, n, this.threads));
  }

  /** cos and sin (seqLen, headDim / 2) of llama's normal RoPE, built as ggml builds them. */
  ropeTable(cos: Float32Array, sin: Float32Array, seqLen: number, headDim: number, base: number): void {
    need("rope table", "cos", cos, seqLen * headDim / 2); need("rope table", "sin", sin, seqLen * headDim / 2);
    check("rope table", this.lib.psi_train_rope_table(ptr(cos), ptr(sin), seqLen, headDim, base));
  }

  /** Rotates (backward: un-rotates) `heads` heads at the start of each of `rows` rows of rowStride floats, in place. */
  rope(backward: boolean, x: Float32Array, rows: number, seqLen: number, heads: number, headDim: number, rowStride: number, cos: Float32Array, sin: Float32Array): void {
    need("rope", "x", x, extent(rows, heads * headDim, rowStride)); need("rope", "cos", cos, seqLen * headDim / 2); need("rope", "sin", sin, seqLen * headDim / 2);
    const args = [ptr(x), rows, seqLen, heads, headDim, rowStride, ptr(cos), ptr(sin)] as const;
    const lib = this.lib;
    check("rope", this.reference
      ? (backward ? lib.psi_train_rope_backward_ref(...args) : lib.psi_train_rope_forward_ref(...args))
      : (backward ? lib.psi_train_rope_backward(...args, this.threads) : lib.psi_train_rope_forward(...args, this.threads)));
  }

  attentionForward(qkv: Float32Array, out: Float32Array, probs: Float32Array, batch: number, seqLen: number, heads: number, kvHeads: number, headDim: number): void {
    const rows = batch * seqLen;
    need("attention", "qkv", qkv, rows * (heads + 2 * kvHeads) * headDim); need("attention", "out", out, rows * heads * headDim);
    need("attention", "probs", probs, batch * heads * seqLen * seqLen);
    check("attention forward", this.reference
      ? this.lib.psi_train_attention_forward_ref(ptr(qkv), ptr(out), ptr(probs), batch, seqLen, heads, kvHeads, headDim)
      : this.lib.psi_train_attention_forward(ptr(qkv), ptr(out), ptr(probs), batch, seqLen, heads, kvHeads, headDim, this.threads));
  }

  /** dqkv is overwritten. */
  attentionBackward(qkv: Float32Array, probs: Float32Array, dout: Float32Array, dqkv: Float32Array, batch: number, seqLen: number, heads: number, kvHeads: number, headDim: number): void {
    const rows = batch * seqLen, width = (heads + 2 * kvHeads) * headDim;
    need("attention", "qkv", qkv, rows * width); need("attention", "dqkv", dqkv, rows * width);
    need("attention", "dout", dout, rows * heads * headDim); need("attention", "probs", probs, batch * heads * seqLen * seqLen);
    check("attention backward", this.reference
      ? this.lib.psi_train_attention_backward_ref(ptr(qkv), ptr(probs), ptr(dout), ptr(dqkv), batch, seqLen, heads, kvHeads, headDim)
      : this.lib.psi_train_attention_backward(ptr(qkv), ptr(probs), ptr(dout), ptr(dqkv), batch, seqLen, heads, kvHeads, headDim, this.threads));
  }

  /** h (rows, ffn) = silu(gate) * up, gu rows being [gate | up]. */
  swigluForward(gu: Float32Array, h: Float32Array, rows: number, ffn: number): void {
    need("swiglu", "gu", gu, rows * 2 * ffn); need("swiglu", "h", h, rows * ffn);
    check("swiglu forward", this.reference
      ? this.lib.psi_train_swiglu_forward_ref(ptr(gu), ptr(h), rows, ffn)
      : this.lib.psi_train_swiglu_forward(ptr(gu), ptr(h), rows, ffn, this.threads));
  }

  /** dgu is overwritten. */
  swigluBackward(gu: Float32Array, dh: Float32Array, dgu: Float32Array, rows: number, ffn: number): void {
    need("swiglu", "gu", gu, rows * 2 * ffn); need("swiglu", "dh", dh, rows * ffn); need("swiglu", "dgu", dgu, rows * 2 * ffn);
    check("swiglu backward", this.reference
      ? this.lib.psi_train_swiglu_backward_ref(ptr(gu), ptr(dh), ptr(dgu), rows, ffn)
      : this.lib.psi_train_swiglu_backward(ptr(gu), ptr(dh), ptr(dgu), rows, ffn, this.threads));
  }

  /** Per-row losses; with dlogits (which may be logits), also (softmax - onehot) * gradScale. */
  crossEntropy(logits: Float32Array, targets: Int32Array, losses: Float32Array, dlogits: Float32Array | null, rows: number, vocab: number, gradScale: number): void {
    need("cross-entropy", "logits", logits, rows * vocab); need("cross-entropy", "targets", targets, rows); need("cross-entropy", "losses", losses, rows);
    if (dlogits) need("cross-entropy", "dlogits", dlogits, rows * vocab);
    const d = dlogits ? ptr(dlogits) : null;
    check("cross-entropy", this.reference
      ? this.lib.psi_train_cross_entropy_ref(ptr(logits), ptr(targets), ptr(losses), d, rows, vocab, gradScale)
      : this.lib.psi_train_cross_entropy(ptr(logits), ptr(targets), ptr(losses), d, rows, vocab, gradScale, this.threads));
  }

  /** One AdamW step over a range (all arrays the same length); see kernels/cpu/train_adamw.c. */
  adamw(params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array,
        h: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; correction1: number; correction2: number; gradScale: number }): void {
    const n = params.length;
    need("adamw", "grads", grads, n); need("adamw", "m", m, n); need("adamw", "v", v, n);
    if (n === 0) return;
    const args = [ptr(params), ptr(grads), ptr(m), ptr(v), n, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.correction1, h.correction2, h.gradScale] as const;
    check("adamw", this.reference ? this.lib.psi_train_adamw_ref(...args) : this.lib.psi_train_adamw(...args, this.threads));
  }

  /** Sum of squares in double, in an order fixed by the length alone. */
  sumOfSquares(x: Float32Array): number {
    if (x.length === 0) return 0;
    const chunks = Math.ceil(x.length / 65536);
    if (this.sumScratch.length < chunks) this.sumScratch = new Float64Array(chunks);
    check("sum of squares", this.lib.psi_train_sum_squares(ptr(x), x.length, ptr(this.sumScratch), ptr(this.sumResult), Math.max(1, this.threads)));
    return this.sumResult[0]!;
  }
}
