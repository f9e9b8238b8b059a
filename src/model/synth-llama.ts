// The llama architecture as llama.cpp loads it (src/models/llama.cpp,
// llama_model_base::load_hparams): hyper-parameter keys and tensor table.
import type { LlamaPreset } from "./presets.ts";
import {
  type ArchitecturePlan, type PlannedTensor,
  embeddingInit, f32, normInit, projectionInit, residualInit, u32,
} from "./synth-plan.ts";

export function llamaPlan(p: LlamaPreset): ArchitecturePlan {
  const a = "llama";
  const d = p.embeddingLength;
  const qWidth = p.heads * p.headDim;
  const kvWidth = p.kvHeads * p.headDim;
  const hyperParameters = [
    u32(`${a}.vocab_size`, p.vocabSize),
    u32(`${a}.context_length`, p.contextLength),
    u32(`${a}.embedding_length`, d),
    u32(`${a}.block_count`, p.layers),
    u32(`${a}.feed_forward_length`, p.feedForwardLength),
    u32(`${a}.attention.head_count`, p.heads),
    u32(`${a}.attention.head_count_kv`, p.kvHeads),
    u32(`${a}.attention.key_length`, p.headDim),
    u32(`${a}.attention.value_length`, p.headDim),
    // llama.cpp refuses a llama file whose rotary dimension is not the head size.
    u32(`${a}.rope.dimension_count`, p.headDim),
    f32(`${a}.rope.freq_base`, p.ropeFreqBase),
    f32(`${a}.attention.layer_norm_rms_epsilon`, p.rmsEpsilon),
  ];

  const tensors: PlannedTensor[] = [
    { name: "token_embd.weight", dims: [d, p.vocabSize], role: "embedding", init: embeddingInit(d, p.tiedEmbeddings) },
    { name: "output_norm.weight", dims: [d], role: "vector", init: normInit },
  ];
  if (!p.tiedEmbeddings) {
    tensors.push({ name: "output.weight", dims: [d, p.vocabSize], role: "output", init: projectionInit(d) });
  }
  for (let i = 0; i < p.layers; i++) {
    const blk = `blk.${i}`;
    tensors.push(
      { name: `${blk}.attn_norm.weight`, dims: [d], role: "vector", init: normInit },
      { name: `${blk}.attn_q.weight`, dims: [d, qWidth], role: "projection", init: projectionInit(d) },
      { name: `${blk}.attn_k.weight`, dims: [d, kvWidth], role: "projection", init: projectionInit(d) },
      { name: `${blk}.attn_v.weight`, dims: [d, kvWidth], role: "projection", init: projectionInit(d) },
      { name: `${blk}.attn_output.weight`, dims: [qWidth, d], role: "projection", init: residualInit(qWidth, p.layers) },
      { name: `${blk}.ffn_norm.weight`, dims: [d], role: "vector", init: normInit },
      { name: `${blk}.ffn_gate.weight`, dims: [d, p.feedForwardLength], role: "projection", init: projectionInit(d) },
      { name: `${blk}.ffn_up.weight`, dims: [d, p.feedForwardLength], role: "projection", init: projectionInit(d) },
      { name: `${blk}.ffn_down.weight`, dims: [p.feedForwardLength, d], role: "projection", init: residualInit(p.feedForwardLength, p.layers) },
    );
  }
  return { hyperParameters, tensors };
}
