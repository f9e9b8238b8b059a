// Attention over a single sequence's KV cache, in plain float math: the
// reference the fast kernels are held to. Shapes: q is (tokens, heads *
// headDimK); k and v hold one row per position, kvHeads * headDim wide; out is
// (tokens, heads * headDimV). Query head h reads KV head h / (heads / kvHeads),
// as ggml broadcasts grouped-query attention.
import type { AttentionParams } from "../backend.ts";

const f = Math.fround;

export interface AttentionInputs {
  q: Float32Array;
  k: ArrayLike<number>;
  v: ArrayLike<number>;
  positions: Int32Array;
  sinks: Float32Array | null;
  /**
   * Follow ggml's CPU flash attention for batches under 64 queries with an F16
   * cache: Q rounded to F16, online softmax in float32, the V sum kept in F16.
   * (From 64 queries on, ggml's tiled path is float32 throughout, as is the default here.)
   */
  f16Online?: boolean;
}

export function referenceAttention(input: AttentionInputs, p: AttentionParams): Float32Array {
  if (input.f16Online) return f16OnlineAttention(input, p);
  const { q, k, v, positions, sinks } = input;
  const tokens = positions.length;
  const qWidth = p.heads * p.headDimK;
  const kWidth = p.kvHeads * p.headDimK;
  const vWidth = p.kvHeads * p.headDimV;
  const outWidth = p.heads * p.headDimV;
  const group = p.heads / p.kvHeads;
  const out = new Float32Array(tokens * outWidth);
  const maxKeys = positions.reduce((m, x) => Math.max(m, x + 1), 0);
  const scores = new Float64Array(maxKeys);
  const acc = new Float64Array(p.headDimV);
  for (let t = 0; t < tokens; t++) {
    const pos = positions[t]!;
    // Keys at p0 with pos - p0 >= window are masked, as llama.cpp's is_masked_swa.
    const first = p.window > 0 ? Math.max(0, pos - p.window + 1) : 0;
    for (let h = 0; h < p.heads; h++) {
      const kvh = Math.floor(h / group);
      const qOff = t * qWidth + h * p.headDimK;
      let max = -Infinity;
      for (let j = first; j <= pos; j++) {
        const kOff = j * kWidth + kvh * p.headDimK;
        let dot = 0;
        for (let d = 0; d < p.headDimK; d++) dot += q[qOff + d]! * k[kOff + d]!;
        const s = Math.fround(dot * p.scale);
        scores[j] = s;
        if (s > max) max = s;
      }
      const sink = sinks ? sinks[h]! : -Infinity;
      if (sink > max) max = sink;
      let denominator = sinks ? Math.exp(sink - max) : 0;
      acc.fill(0);
      for (let j = first; j <= pos; j++) {
        const w = Math.exp(scores[j]! - max);
        denominator += w;
        const vOff = j * vWidth + kvh * p.headDimV;
        for (let d = 0; d < p.headDimV; d++) acc[d]! += w * v[vOff + d]!;
      }
      const oOff = t * outWidth + h * p.headDimV;
      for (let d = 0; d < p.headDimV; d++) out[oOff + d] = acc[d]! / denominator;
    }
  }
  return out;
}

const half = new Float16Array(1);
const toF16 = (x: number) => ((half[0] = x), half[0]!);

/** ggml_compute_forward_flash_attn_ext_f16_one_chunk's arithmetic, one query head at a time. */
function f16OnlineAttention(input: AttentionInputs, p: AttentionParams): Float32Array {
  const { q, k, v, positions, sinks } = input;
  const tokens = positions.length;
  const qWidth = p.heads * p.headDimK, kWidth = p.kvHeads * p.headDimK, vWidth = p.kvHeads * p.headDimV;
  const outWidth = p.heads * p.headDimV;
  const group = p.heads / p.kvHeads;
  const out = new Float32Array(tokens * outWidth);
  const q16 = new Float16Array(p.headDimK);
  const acc = new Float16Array(p.headDimV);
  for (let t = 0; t < tokens; t++) {
    const pos = positions[t]!;
    const first = p.window > 0 ? Math.max(0, pos - p.window + 1) : 0;
    for (let h = 0; h < p.heads; h++) {
      const kvh = Math.floor(h / group);
      const qOff = t * qWidth + h * p.headDimK;
      for (let d = 0; d < p.headDimK; d++) q16[d] = q[qOff + d]!;
      acc.fill(0);
      let max = -Infinity, sum = 0;
      for (let j = first; j <= pos; j++) {
        const kOff = j * kWidth + kvh * p.headDimK;
        let dot = 0;
        for (let d = 0; d < p.headDimK; d++) dot += q16[d]! * k[kOff + d]!;
        const s = f(f(dot) * p.scale);
        let ms = 1, vs = 1;
        if (s > max) {
          ms = f(Math.exp(max - s));
          max = s;
          for (let d = 0; d < p.headDimV; d++) acc[d] = acc[d]! * ms;
        } else {
          vs = f(Math.exp(s - max));
        }
        const vOff = j * vWidth + kvh * p.headDimV;
        for (let d = 0; d < p.headDimV; d++) acc[d] = acc[d]! + v[vOff + d]! * vs;
        sum = f(f(sum * ms) + vs);
      }
      let scaleOut = 1;
      if (sinks) {
        const sink = sinks[h]!;
        let ms = 1, vs = 1;
        if (sink > max) { ms = f(Math.exp(max - sink)); max = sink; } else { vs = f(Math.exp(sink - max)); }
        scaleOut = ms;
        sum = f(f(sum * ms) + vs);
      }
      const inverse = sum === 0 ? 0 : f(1 / sum);
      const oOff = t * outWidth + h * p.headDimV;
      for (let d = 0; d < p.headDimV; d++) out[oOff + d] = f(f(acc[d]! * scaleOut) * inverse);
    }
  }
  return out;
}
