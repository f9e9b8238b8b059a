// The training ops in plain float64 TypeScript: the reference the C kernels
// and the whole-model gradients are checked against. Each op is a
// forward/backward pair; backward functions ADD into the gradients they are
// given (like the C kernels), shapes are in the first comment.
//
// These follow the math, not the kernels' layouts: Q, K and V are separate
// arrays here, and RoPE angles are computed in double by the closed form.
type Vec = Float64Array;

/** out (n, d) = table[ids[i]]; table is (vocab, d). */
export function embeddingForward(table: ArrayLike<number>, ids: ArrayLike<number>, n: number, d: number): Vec {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = table[ids[i]! * d + j]!;
  return out;
}

/** dtable[ids[i]] += dout[i]. */
export function embeddingBackward(dtable: Vec, ids: ArrayLike<number>, dout: Vec, n: number, d: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) dtable[ids[i]! * d + j]! += dout[i * d + j]!;
}

/** y (rows, n) = x * rstd * weight, rstd (rows) = 1 / sqrt(mean(x^2) + eps). */
export function rmsnormForward(x: Vec, weight: ArrayLike<number>, rows: number, n: number, eps: number): { y: Vec; rstd: Vec } {
  const y = new Float64Array(rows * n), rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += x[r * n + i]! ** 2;
    const s = 1 / Math.sqrt(sum / n + eps);
    rstd[r] = s;
    for (let i = 0; i < n; i++) y[r * n + i] = x[r * n + i]! * s * weight[i]!;
  }
  return { y, rstd };
}

/** dx += d/dx, dweight += d/dweight of sum(dy * y). */
export function rmsnormBackward(x: Vec, weight: ArrayLike<number>, rstd: Vec, dy: Vec, dx: Vec, dweight: Vec, rows: number, n: number): void {
  for (let r = 0; r < rows; r++) {
    const s = rstd[r]!;
    let dot = 0;
    for (let i = 0; i < n; i++) dot += dy[r * n + i]! * weight[i]! * x[r * n + i]! * s;
    for (let i = 0; i < n; i++) {
      const xhat = x[r * n + i]! * s;
      dx[r * n + i]! += s * (dy[r * n + i]! * weight[i]! - xhat * dot / n);
      dweight[i]! += dy[r * n + i]! * xhat;
    }
  }
}

/** y (rows, out) = x (rows, in) . w^T, w being (out, in) (ggml dims [in, out]). */
export function matmulForward(x: Vec, w: ArrayLike<number>, rows: number, inDim: number, outDim: number): Vec {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let sum = 0;
      for (let i = 0; i < inDim; i++) sum += x[r * inDim + i]! * w[o * inDim + i]!;
      y[r * outDim + o] = sum;
    }
  }
  return y;
}

/** dx += dy . w, dw += dy^T . x. */
export function matmulBackward(x: Vec, w: ArrayLike<number>, dy: Vec, dx: Vec, dw: Vec, rows: number, inDim: number, outDim: number): void {
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      const g = dy[r * outDim + o]!;
      if (g === 0) continue;
      for (let i = 0; i < inDim; i++) {
        dx[r * inDim + i]! += g * w[o * inDim + i]!;
        dw[o * inDim + i]! += g * x[r * inDim + i]!;
      }
    }
  }
}

/** Rotates pairs (2i, 2i+1) of each head of x (rows, heads, headDim) in place by theta = pos * base^(-2i/headDim); backward rotates by -theta. */
export function rope(x: Vec, rows: number, seqLen: number, heads: number, headDim: number, base: number, backward: boolean): void {
  for (let r = 0; r < rows; r++) {
    const pos = r % seqLen;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < headDim / 2; i++) {
        const theta = pos * base ** (-2 * i / headDim) * (backward ? -1 : 1);
        const c = Math.cos(theta), s = Math.sin(theta);
        const at = (r * heads + h) * headDim + 2 * i;
        const x0 = x[at]!, x1 = x[at + 1]!;
        x[at] = x0 * c - x1 * s;
        x[at + 1] = x0 * s + x1 * c;
      }
    }
  }
}

export interface AttentionShape { batch: number; seqLen: number; heads: number; kvHeads: number; headDim: number }

/**
 * Causal GQA attention. q (B*T, heads, hd), k and v (B*T, kvHeads, hd);
 * out (B*T, heads, hd), probs (B, heads, T, T).
 */
export function attentionForward(q: Vec, k: Vec, v: Vec, a: AttentionShape): { out: Vec; probs: Vec } {
  const { batch, seqLen: T, heads, kvHeads, headDim: hd } = a;
  const out = new Float64Array(batch * T * heads * hd), probs = new Float64Array(batch * heads * T * T);
  const scale = 1 / Math.sqrt(hd), group = heads / kvHeads;
  for (let b = 0; b < batch; b++) for (let h = 0; h < heads; h++) {
    const kvh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const p = probs.subarray(((b * heads + h) * T + t) * T);
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < hd; i++) dot += q[((b * T + t) * heads + h) * hd + i]! * k[((b * T + s) * kvHeads + kvh) * hd + i]!;
        p[s] = dot * scale;
        max = Math.max(max, p[s]!);
      }
      let sum = 0;
      for (let s = 0; s <= t; s++) { p[s] = Math.exp(p[s]! - max); sum += p[s]!; }
      for (let s = 0; s <= t; s++) {
        p[s]! /= sum;
        for (let i = 0; i < hd; i++) out[((b * T + t) * heads + h) * hd + i]! += p[s]! * v[((b * T + s) * kvHeads + kvh) * hd + i]!;
      }
    }
  }
  return { out, probs };
}

/** dq, dk, dv += gradients of sum(dout * out). */
export function attentionBackward(q: Vec, k: Vec, v: Vec, probs: Vec, dout: Vec, dq: Vec, dk: Vec, dv: Vec, a: AttentionShape): void {
  const { batch, seqLen: T, heads, kvHeads, headDim: hd } = a;
  const scale = 1 / Math.sqrt(hd), group = heads / kvHeads;
  const dp = new Float64Array(T);
  for (let b = 0; b < batch; b++) for (let h = 0; h < heads; h++) {
    const kvh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const p = probs.subarray(((b * heads + h) * T + t) * T);
      const qAt = ((b * T + t) * heads + h) * hd;
      let weighted = 0;
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < hd; i++) dot += dout[qAt + i]! * v[((b * T + s) * kvHeads + kvh) * hd + i]!;
        dp[s] = dot;
        weighted += p[s]! * dot;
      }
      for (let s = 0; s <= t; s++) {
        const ds = p[s]! * (dp[s]! - weighted) * scale;
        const kvAt = ((b * T + s) * kvHeads + kvh) * hd;
        for (let i = 0; i < hd; i++) {
          dq[qAt + i]! += ds * k[kvAt + i]!;
          dk[kvAt + i]! += ds * q[qAt + i]!;
          dv[kvAt + i]! += p[s]! * dout[qAt + i]!;
        }
      }
    }
  }
}

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

/** h = silu(gate) * up, all (rows * ffn). */
export function swigluForward(gate: Vec, up: Vec): Vec {
  return gate.map((g, i) => g * sigmoid(g) * up[i]!);
}

/** dgate, dup += gradients of sum(dh * h). */
export function swigluBackward(gate: Vec, up: Vec, dh: Vec, dgate: Vec, dup: Vec): void {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i]!, s = sigmoid(g);
    dgate[i]! += dh[i]! * up[i]! * s * (1 + g * (1 - s));
    dup[i]! += dh[i]! * g * s;
  }
}

/** Per-row losses of logits (rows, vocab) against targets, and d(sum of losses * gradScale)/dlogits. */
export function crossEntropy(logits: Vec, targets: ArrayLike<number>, rows: number, vocab: number, gradScale: number): { losses: Vec; dlogits: Vec } {
  const losses = new Float64Array(rows), dlogits = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let i = 0; i < vocab; i++) max = Math.max(max, logits[r * vocab + i]!);
    let sum = 0;
    for (let i = 0; i < vocab; i++) sum += Math.exp(logits[r * vocab + i]! - max);
    const lse = max + Math.log(sum);
    losses[r] = lse - logits[r * vocab + targets[r]!]!;
    for (let i = 0; i < vocab; i++) dlogits[r * vocab + i] = Math.exp(logits[r * vocab + i]! - lse) * gradScale;
    dlogits[r * vocab + targets[r]!]! -= gradScale;
  }
  return { losses, dlogits };
}
