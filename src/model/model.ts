// A loaded model: hyper-parameters and weights from a GGUF, bound to a
// backend, with its KV cache. `forward` runs a batch of tokens (a prefill
// chunk or one decode step: the same code) at the next positions.
import type { GGUFFile } from "../gguf/reader.ts";
import type { Activation, Backend, KVPrecision } from "../runtime/backend.ts";
import { planBatch, type BatchSegment } from "./batch-plan.ts";
import { headDims } from "./attention-block.ts";
import { bindGptOss, gptOssForward, type GptOssWeights } from "./gpt-oss.ts";
import { readHyperParameters, type HyperParameters } from "./hparams.ts";
import { KVCache } from "./kv-cache.ts";
import { LayerPlacement } from "./placement.ts";
import { bindLlama, llamaForward, type LlamaWeights } from "./llama.ts";
import { WeightBinder } from "./weights.ts";

/** What a forward pass returns for its output rows. */
export type ForwardOutput = "logits" | "hidden";

export interface LoadOptions {
  /** -c: positions the KV cache holds (default: the training context). */
  contextLimit?: number;
  kvPrecision?: KVPrecision;
  /**
   * -ngl: only the first `layers` layers (and the embedding) on the load
   * backend, the rest (and the output head unless layers > the layer count)
   * on `rest`.
   */
  offload?: { layers: number; rest: Backend };
}

export class Model {
  readonly cache: KVCache;

  /**
   * The backend that produces the outputs (the output head's): forward's
   * result is its activation, to download.
   */
  readonly backend: Backend;

  private constructor(
    readonly placement: LayerPlacement,
    readonly hparams: HyperParameters,
    readonly vocabSize: number,
    private readonly weights: { kind: "llama"; w: LlamaWeights } | { kind: "gpt-oss"; w: GptOssWeights },
    options: LoadOptions,
  ) {
    this.backend = placement.at(hparams.layers);
    const head = headDims(hparams);
    this.cache = new KVCache((il) => placement.at(il), {
      layers: hparams.layers, kWidth: hparams.kvHeads * head.k, vWidth: hparams.kvHeads * head.v,
      contextLimit: options.contextLimit ?? hparams.contextLength, precision: options.kvPrecision,
    });
  }

  static load(file: GGUFFile, backend: Backend, options: LoadOptions = {}): Model {
    const hp = readHyperParameters(file);
    const placement = options.offload ? LayerPlacement.split(backend, options.offload.layers, options.offload.rest) : LayerPlacement.single(backend);
    const binder = new WeightBinder(file, placement.at(0), placement);
    const vocab = binder.vocabSize(hp.embeddingLength);
    const weights = hp.arch === "gpt-oss"
      ? { kind: "gpt-oss" as const, w: bindGptOss(hp, vocab, binder) }
      : { kind: "llama" as const, w: bindLlama(hp, vocab, binder) };
    return new Model(placement, hp, vocab, weights, options);
  }

  /** A fresh, empty KV cache sized like the model's own (one per concurrent sequence). */
  newCache(contextLimit = this.cache.contextLimit): KVCache {
    const head = headDims(this.hparams);
    return new KVCache((il) => this.placement.at(il), {
      layers: this.hparams.layers, kWidth: this.hparams.kvHeads * head.k, vWidth: this.hparams.kvHeads * head.v,
      contextLimit, precision: this.cache.precision,
    });
  }

  /**
   * Runs `tokens` at positions cache.length, cache.length + 1, ... of the
   * model's own cache and returns the logits of the batch rows listed in
   * `outputRows` (default: the last).
   */
  forward(tokens: Int32Array, outputRows: number[] = [tokens.length - 1]): Activation {
    return this.forwardBatch([{ cache: this.cache, tokens, outputRows }]);
  }

  /**
   * Several sequences in one pass, each with its own cache: returns the
   * logits (or, with "hidden", the final normalized hidden states) of every
   * segment's output rows, segment by segment. A refused batch (bad token,
   * context full) leaves every cache as it was.
   */
  forwardBatch(segments: readonly BatchSegment[], output: ForwardOutput = "logits"): Activation {
    const plan = planBatch(segments, this.vocabSize);
    const { placement, hparams: hp } = this;
    // A backend that runs only later layers begins its step here, not at an embed.
    for (const b of placement.backends) b.beginStep();
    return this.weights.kind === "gpt-oss"
      ? gptOssForward(placement, hp, this.weights.w, plan, output)
      : llamaForward(placement, hp, this.weights.w, plan, output);
  }
}
