// The self-attention block every supported architecture shares: Q/K/V
// projections (separate or fused, each with an optional bias), optional
// per-head Q/K RMS norm, RoPE, the KV cache write, attention, and the output
// projection. Shapes: x is (tokens, d); Q is (tokens, heads * headDimK).
import { products, ropeThenAttend, type Activation, type Backend, type RopeParams, type Weight } from "../runtime/backend.ts";
import type { HyperParameters } from "./hparams.ts";
import type { WeightBinder } from "./weights.ts";
import type { SegmentRows } from "./batch-plan.ts";
import { refuse } from "../util/errors.ts";

/** Per-head K and V sizes: gpt-oss sizes its projections by the rotary dims (openai-moe.cpp uses n_rot). */
export function headDims(hp: HyperParameters): { k: number; v: number } {
  return hp.arch === "gpt-oss" ? { k: hp.rope.dims, v: hp.rope.dims } : { k: hp.headDimK, v: hp.headDimV };
}

export interface AttentionWeights {
  q: Weight; qBias?: Weight;
  k: Weight; kBias?: Weight;
  v: Weight; vBias?: Weight;
  output: Weight; outputBias?: Weight;
  qNorm?: Weight;
  kNorm?: Weight;
  sinks?: Weight;
}

export function bindAttention(hp: HyperParameters, il: number, w: WeightBinder, opts: { qkNorm?: boolean; sinks?: boolean }): AttentionWeights {
  const blk = `blk.${il}`;
  const d = hp.embeddingLength;
  const head = headDims(hp);
  const qWidth = hp.heads * head.k, kWidth = hp.kvHeads * head.k, vWidth = hp.kvHeads * head.v;
  if (w.has(`${blk}.attn_qkv.weight`)) {
    refuse("model.unsupported", `tensor ${blk}.attn_qkv.weight: fused QKV projections are not supported yet`);
  }
  return {
    q: w.required(`${blk}.attn_q.weight`, [d, qWidth]),
    qBias: w.optional(`${blk}.attn_q.bias`, [qWidth]),
    k: w.required(`${blk}.attn_k.weight`, [d, kWidth]),
    kBias: w.optional(`${blk}.attn_k.bias`, [kWidth]),
    v: w.required(`${blk}.attn_v.weight`, [d, vWidth]),
    vBias: w.optional(`${blk}.attn_v.bias`, [vWidth]),
    output: w.required(`${blk}.attn_output.weight`, [hp.heads * head.v, d]),
    outputBias: w.optional(`${blk}.attn_output.bias`, [d]),
    qNorm: opts.qkNorm ? w.required(`${blk}.attn_q_norm.weight`, [hp.headDimK]) : undefined,
    kNorm: opts.qkNorm ? w.required(`${blk}.attn_k_norm.weight`, [hp.headDimK]) : undefined,
    sinks: opts.sinks ? w.required(`${blk}.attn_sinks.weight`, [hp.heads]) : undefined,
  };
}

/** The rope parameters of a layer whose frequency base is `freqBase`. */
export function ropeParams(hp: HyperParameters, freqBase: number): RopeParams {
  const r = hp.rope;
  return {
    dims: r.dims, mode: r.mode, freqBase, freqScale: r.freqScale, extFactor: r.extFactor, attnFactor: r.attnFactor,
    betaFast: r.betaFast, betaSlow: r.betaSlow, originalContext: r.originalContext,
  };
}

export function attentionBlock(
  backend: Backend, hp: HyperParameters, w: AttentionWeights, layer: number, segments: readonly SegmentRows[],
  x: Activation, positions: Int32Array, rope: RopeParams, window: number,
): Activation {
  const head = headDims(hp);
  const headDim = head.k;
  const [q0, k0, v] = products(backend, x, [{ w: w.q, bias: w.qBias }, { w: w.k, bias: w.kBias }, { w: w.v, bias: w.vBias }]) as [Activation, Activation, Activation];
  let q = q0, k = k0;
  if (w.qNorm) q = backend.rmsNorm(q, w.qNorm, hp.rmsEps, headDim);
  if (w.kNorm) k = backend.rmsNorm(k, w.kNorm, hp.rmsEps, headDim);
  const params = {
    heads: hp.heads, kvHeads: hp.kvHeads, headDimK: head.k, headDimV: head.v,
    scale: Math.fround(1 / Math.sqrt(headDim)), window, sinks: w.sinks,
  };
  // q and k rotated, then each sequence writes its own cache and attends over it alone.
  const attended = ropeThenAttend(backend, q, k, v, positions, headDim, rope, segments.map((s) => {
    const cache = s.cache.layer(layer);
    return { kCache: cache.k, vCache: cache.v, positions: s.positions, rowStart: s.rowStart };
  }), params);
  return backend.matmul(attended, w.output, w.outputBias);
}
