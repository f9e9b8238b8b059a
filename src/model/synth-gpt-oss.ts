// The gpt-oss architecture as llama.cpp loads it (LLM_ARCH_OPENAI_MOE, arch
// name "gpt-oss", src/models/openai-moe.cpp) and as its converter lays it out
// (conversion/gpt_oss.py): attention with Q/K/V/O biases and per-head sinks,
// a post-attention RMS norm, a biased softmax router, and SwiGLU experts with
// biases; sliding-window attention on every other layer; YaRN rope scaling.
import type { GptOssPreset } from "./presets.ts";
import {
  type ArchitecturePlan, type PlannedTensor,
  biasInit, embeddingInit, f32, normInit, projectionInit, residualInit, str, u32,
} from "./synth-plan.ts";

// Sinks are per-head logits that join each attention softmax; ~N(0, 0.5) keeps
// them comparable to the scaled q.k scores (std ~1) without dominating.
const sinkInit = { mean: 0, std: 0.5 };

export function gptOssPlan(p: GptOssPreset): ArchitecturePlan {
  const a = "gpt-oss";
  const d = p.embeddingLength;
  const ff = p.expertFeedForwardLength;
  const e = p.experts;
  const qWidth = p.heads * p.headDim;
  const kvWidth = p.kvHeads * p.headDim;
  const hyperParameters = [
    u32(`${a}.context_length`, p.contextLength),
    u32(`${a}.embedding_length`, d),
    u32(`${a}.block_count`, p.layers),
    // The converter writes intermediate_size under both keys; llama.cpp reads the expert one.
    u32(`${a}.feed_forward_length`, ff),
    u32(`${a}.expert_feed_forward_length`, ff),
    u32(`${a}.attention.head_count`, p.heads),
    u32(`${a}.attention.head_count_kv`, p.kvHeads),
    u32(`${a}.attention.key_length`, p.headDim),
    u32(`${a}.attention.value_length`, p.headDim),
    u32(`${a}.rope.dimension_count`, p.headDim),
    f32(`${a}.rope.freq_base`, p.ropeFreqBase),
    f32(`${a}.attention.layer_norm_rms_epsilon`, p.rmsEpsilon),
    u32(`${a}.expert_count`, e),
    u32(`${a}.expert_used_count`, p.expertsUsed),
    u32(`${a}.attention.sliding_window`, p.slidingWindow),
    // llama.cpp's default for gpt-oss is 2 as well; written so the file says it.
    u32(`${a}.attention.sliding_window_pattern`, p.slidingWindowPattern),
    str(`${a}.rope.scaling.type`, "yarn"),
    f32(`${a}.rope.scaling.factor`, p.yarn.factor),
    u32(`${a}.rope.scaling.original_context_length`, p.yarn.originalContextLength),
    f32(`${a}.rope.scaling.yarn_beta_fast`, p.yarn.betaFast),
    f32(`${a}.rope.scaling.yarn_beta_slow`, p.yarn.betaSlow),
  ];

  const tensors: PlannedTensor[] = [
    { name: "token_embd.weight", dims: [d, p.vocabSize], role: "embedding", init: embeddingInit(d, false) },
    { name: "output_norm.weight", dims: [d], role: "vector", init: normInit },
    { name: "output.weight", dims: [d, p.vocabSize], role: "output", init: projectionInit(d) },
  ];
  for (let i = 0; i < p.layers; i++) {
    const blk = `blk.${i}`;
    tensors.push(
      { name: `${blk}.attn_norm.weight`, dims: [d], role: "vector", init: normInit },
      { name: `${blk}.attn_q.weight`, dims: [d, qWidth], role: "projection", init: projectionInit(d) },
      { name: `${blk}.attn_q.bias`, dims: [qWidth], role: "vector", init: biasInit },
      { name: `${blk}.attn_k.weight`, dims: [d, kvWidth], role: "projection", init: projectionInit(d) },
      { name: `${blk}.attn_k.bias`, dims: [kvWidth], role: "vector", init: biasInit },
      { name: `${blk}.attn_v.weight`, dims: [d, kvWidth], role: "projection", init: projectionInit(d) },
      { name: `${blk}.attn_v.bias`, dims: [kvWidth], role: "vector", init: biasInit },
      { name: `${blk}.attn_output.weight`, dims: [qWidth, d], role: "projection", init: residualInit(qWidth, p.layers) },
      { name: `${blk}.attn_output.bias`, dims: [d], role: "vector", init: biasInit },
      { name: `${blk}.attn_sinks.weight`, dims: [p.heads], role: "vector", init: sinkInit },
      { name: `${blk}.post_attention_norm.weight`, dims: [d], role: "vector", init: normInit },
      { name: `${blk}.ffn_gate_inp.weight`, dims: [d, e], role: "router", init: projectionInit(d) },
      { name: `${blk}.ffn_gate_inp.bias`, dims: [e], role: "vector", init: biasInit },
      { name: `${blk}.ffn_gate_exps.weight`, dims: [d, ff, e], role: "expert", init: projectionInit(d) },
      { name: `${blk}.ffn_gate_exps.bias`, dims: [ff, e], role: "vector", init: biasInit },
      { name: `${blk}.ffn_up_exps.weight`, dims: [d, ff, e], role: "expert", init: projectionInit(d) },
      { name: `${blk}.ffn_up_exps.bias`, dims: [ff, e], role: "vector", init: biasInit },
      { name: `${blk}.ffn_down_exps.weight`, dims: [ff, d, e], role: "expert", init: residualInit(ff, p.layers) },
      { name: `${blk}.ffn_down_exps.bias`, dims: [d, e], role: "vector", init: biasInit },
    );
  }
  return { hyperParameters, tensors };
}
