// gpt-oss as llama.cpp builds it (src/models/openai-moe.cpp): attention with
// Q/K/V/O biases and per-head sinks, NeoX RoPE with YaRN, a sliding window on
// the layers hparams marks (every other layer, starting with layer 0, by
// default), a post-attention RMS norm, and a biased router over SwiGLU experts
// with biases and the clamped activation (alpha 1.702, limit 7).
import { addMoE, addMoEThenNorm, addThenNorm, type Activation, type MoEWeights, type Weight } from "../runtime/backend.ts";
import { attentionBlock, bindAttention, ropeParams, type AttentionWeights } from "./attention-block.ts";
import type { HyperParameters } from "./hparams.ts";
import type { BatchPlan } from "./batch-plan.ts";
import type { ForwardOutput } from "./model.ts";
import { LayerPlacement, sameBackendNext } from "./placement.ts";
import type { WeightBinder } from "./weights.ts";

// llama-graph.cpp, LLM_FFN_SWIGLU_OAI_MOE: constants, not metadata.
const SWIGLU_OAI = { kind: "swiglu-oai", alpha: 1.702, limit: 7 } as const;

interface GptOssLayer {
  attnNorm: Weight;
  attention: AttentionWeights;
  postAttentionNorm: Weight;
  experts: MoEWeights;
}

export interface GptOssWeights {
  tokenEmbedding: Weight;
  outputNorm: Weight;
  output: Weight;
  layers: GptOssLayer[];
}

export function bindGptOss(hp: HyperParameters, vocab: number, all: WeightBinder): GptOssWeights {
  const d = hp.embeddingLength, ff = hp.expertFeedForwardLength, e = hp.experts;
  const layers: GptOssLayer[] = [];
  for (let il = 0; il < hp.layers; il++) {
    const blk = `blk.${il}`;
    const w = all.layer(il);
    layers.push({
      attnNorm: w.required(`${blk}.attn_norm.weight`, [d]),
      attention: bindAttention(hp, il, w, { sinks: true }),
      postAttentionNorm: w.required(`${blk}.post_attention_norm.weight`, [d]),
      experts: {
        router: w.required(`${blk}.ffn_gate_inp.weight`, [d, e]),
        routerBias: w.required(`${blk}.ffn_gate_inp.bias`, [e]),
        gate: w.required(`${blk}.ffn_gate_exps.weight`, [d, ff, e]),
        gateBias: w.required(`${blk}.ffn_gate_exps.bias`, [ff, e]),
        up: w.required(`${blk}.ffn_up_exps.weight`, [d, ff, e]),
        upBias: w.required(`${blk}.ffn_up_exps.bias`, [ff, e]),
        down: w.required(`${blk}.ffn_down_exps.weight`, [ff, d, e]),
        downBias: w.required(`${blk}.ffn_down_exps.bias`, [d, e]),
      },
    });
  }
  const head = all.layer(hp.layers);
  return {
    tokenEmbedding: all.layer(0).required("token_embd.weight", [d, vocab]),
    outputNorm: head.required("output_norm.weight", [d]),
    // openai-moe.cpp requires a separate output head.
    output: head.required("output.weight", [d, vocab]),
    layers,
  };
}

export function gptOssForward(
  placement: LayerPlacement, hp: HyperParameters, weights: GptOssWeights, plan: BatchPlan, output: ForwardOutput,
): Activation {
  const { tokens, positions, segments, outputRows } = plan;
  // Two rope settings for all layers: one object each, so backends that key their argument bytes by it build them once.
  const ropes = { windowed: ropeParams(hp, hp.rope.freqBaseSwa), full: ropeParams(hp, hp.rope.freqBase) };
  let backend = placement.at(0);
  let x = backend.embed(weights.tokenEmbedding, tokens);
  // This layer's attention input, when the previous layer's MoE step normalized its sum (same backend).
  let attnIn: Activation | undefined;
  weights.layers.forEach((layer, il) => {
    x = LayerPlacement.move(x, backend, (backend = placement.at(il)));
    const windowed = hp.swaLayers[il]!;
    const rope = windowed ? ropes.windowed : ropes.full;
    attnIn ??= backend.rmsNorm(x, layer.attnNorm, hp.rmsEps);
    const attnOut = attentionBlock(backend, hp, layer.attention, il, segments, attnIn, positions, rope, windowed ? hp.slidingWindow : 0);
    const { sum, normed: moeIn } = addThenNorm(backend, x, attnOut, layer.postAttentionNorm, hp.rmsEps);
    const moe = { expertsUsed: hp.expertsUsed, activation: SWIGLU_OAI };
    const next = sameBackendNext(placement, weights.layers, il);
    if (next) ({ sum: x, normed: attnIn } = addMoEThenNorm(backend, sum, moeIn, layer.experts, moe, next.attnNorm, hp.rmsEps));
    else [x, attnIn] = [addMoE(backend, sum, moeIn, layer.experts, moe), undefined];
  });
  x = LayerPlacement.move(x, backend, (backend = placement.at(hp.layers)));
  const normed = backend.rmsNorm(backend.takeRows(x, outputRows), weights.outputNorm, hp.rmsEps);
  return output === "hidden" ? normed : backend.matmul(normed, weights.output);
}
