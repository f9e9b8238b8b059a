// The llama family as llama.cpp builds it (src/models/llama.cpp, qwen2.cpp,
// qwen3.cpp): pre-norm attention with RoPE (normal for llama, NeoX for qwen),
// optional Q/K/V/O biases (qwen2 has Q/K/V biases), per-head RMS norm of Q and
// K before RoPE (qwen3), a SwiGLU FFN, and an output head that is
// token_embd when the file has no output.weight.
import { addThenNorm, products, type Activation, type RopeParams, type Weight } from "../runtime/backend.ts";
import type { HyperParameters } from "./hparams.ts";
import type { BatchPlan } from "./batch-plan.ts";
import type { ForwardOutput } from "./model.ts";
import { attentionBlock, bindAttention, ropeParams, type AttentionWeights } from "./attention-block.ts";
import { LayerPlacement, sameBackendNext } from "./placement.ts";
import type { WeightBinder } from "./weights.ts";

interface LlamaLayer {
  attnNorm: Weight;
  attention: AttentionWeights;
  ffnNorm: Weight;
  gate: Weight; gateBias?: Weight;
  up: Weight; upBias?: Weight;
  down: Weight; downBias?: Weight;
}

export interface LlamaWeights {
  tokenEmbedding: Weight;
  outputNorm: Weight;
  output: Weight;
  outputBias?: Weight;
  /** Per layer (the same tensor on each layer's backend). */
  ropeFactors?: (Weight | undefined)[];
  layers: LlamaLayer[];
}

export function bindLlama(hp: HyperParameters, vocab: number, all: WeightBinder): LlamaWeights {
  const d = hp.embeddingLength, ff = hp.feedForwardLength;
  const layers: LlamaLayer[] = [];
  for (let il = 0; il < hp.layers; il++) {
    const blk = `blk.${il}`;
    const w = all.layer(il);
    layers.push({
      attnNorm: w.required(`${blk}.attn_norm.weight`, [d]),
      attention: bindAttention(hp, il, w, { qkNorm: hp.arch === "qwen3" }),
      ffnNorm: w.required(`${blk}.ffn_norm.weight`, [d]),
      gate: w.required(`${blk}.ffn_gate.weight`, [d, ff]),
      gateBias: w.optional(`${blk}.ffn_gate.bias`, [ff]),
      up: w.required(`${blk}.ffn_up.weight`, [d, ff]),
      upBias: w.optional(`${blk}.ffn_up.bias`, [ff]),
      down: w.required(`${blk}.ffn_down.weight`, [ff, d]),
      downBias: w.optional(`${blk}.ffn_down.bias`, [d]),
    });
  }
  const head = all.layer(hp.layers);
  return {
    tokenEmbedding: all.layer(0).required("token_embd.weight", [d, vocab]),
    outputNorm: head.required("output_norm.weight", [d]),
    output: head.optional("output.weight", [d, vocab]) ?? head.required("token_embd.weight", [d, vocab]),
    outputBias: hp.arch === "qwen2" ? head.optional("output.bias", [vocab]) : undefined,
    // llama 3's rope_freqs (one per layer's backend); llama.cpp's llama loader reads it, qwen's do not.
    ropeFactors: hp.arch === "llama" ? layers.map((_, il) => all.layer(il).optional("rope_freqs.weight", [hp.rope.dims / 2])) : undefined,
    layers,
  };
}

/** Logits (one row per entry of outputRows) for `tokens` placed at the cache's next positions. */
export function llamaForward(
  placement: LayerPlacement, hp: HyperParameters, weights: LlamaWeights, plan: BatchPlan, output: ForwardOutput,
): Activation {
  const { tokens, positions, segments, outputRows } = plan;
  const base = ropeParams(hp, hp.rope.freqBase);
  const ropes: RopeParams[] = weights.layers.map((_, il) => ({ ...base, freqFactors: weights.ropeFactors?.[il] }));
  let backend = placement.at(0);
  let x = backend.embed(weights.tokenEmbedding, tokens);
  // This layer's attention input, when the previous layer's last add normalized its sum (same backend).
  let attnIn: Activation | undefined;
  weights.layers.forEach((layer, il) => {
    x = LayerPlacement.move(x, backend, (backend = placement.at(il)));
    const rope = ropes[il]!;
    attnIn ??= backend.rmsNorm(x, layer.attnNorm, hp.rmsEps);
    const attnOut = attentionBlock(backend, hp, layer.attention, il, segments, attnIn, positions, rope, 0);
    const { sum, normed: ffnIn } = addThenNorm(backend, x, attnOut, layer.ffnNorm, hp.rmsEps);
    const [gate, up] = products(backend, ffnIn, [{ w: layer.gate, bias: layer.gateBias }, { w: layer.up, bias: layer.upBias }]) as [Activation, Activation];
    const ffnOut = backend.matmul(backend.swiglu(gate, up), layer.down, layer.downBias);
    const next = sameBackendNext(placement, weights.layers, il);
    if (next) ({ sum: x, normed: attnIn } = addThenNorm(backend, sum, ffnOut, next.attnNorm, hp.rmsEps));
    else [x, attnIn] = [backend.add(sum, ffnOut), undefined];
  });
  x = LayerPlacement.move(x, backend, (backend = placement.at(hp.layers)));
  const normed = backend.rmsNorm(backend.takeRows(x, outputRows), weights.outputNorm, hp.rmsEps);
  return output === "hidden" ? normed : backend.matmul(normed, weights.output, weights.outputBias);
}
