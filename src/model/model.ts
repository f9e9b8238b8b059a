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
import { bindLlama, llamaForward, type LlamaWeights } from "./llama.ts";
import { WeightBinder } from "./weights.ts";

/** What a forward pass returns for its output rows. */
export type ForwardOutput = "logits" | "hidden";

export interface LoadOptions {
  /** -c: positions the KV cache holds (default: the training context). */
  contextLimit?: number;
  kvPrecision?: KVPrecision;
}

export class Model {
  readonly cache: KVCache;

  private constructor(
    readonly backend: Backend,
    readonly hparams: HyperParameters,
    readonly vocabSize: number,
    private readonly weights: { kind: "llama"; w: LlamaWeights } | { kind: "gpt-oss"; w: GptOssWeights },
    options: LoadOptions,
  ) {
    const head = headDims(hparams);
    this.cache = new KVCache(backend, {
      layers: hparams.layers, kWidth: hparams.kvHeads * head.k, vWidth: hparams.kvHeads * head.v,
      contextLimit: options.contextLimit ?? hparams.contextLength, precision: options.kvPrecision,
    });
  }

  static load(file: GGUFFile, backend: Backend, options: LoadOptions = {}): Model {
    const hp = readHyperParameters(file);
    const binder = new WeightBinder(file, backend);
    const vocab = binder.vocabSize(hp.embeddingLength);
    const weights = hp.arch === "gpt-oss"
      ? { kind: "gpt-oss" as const, w: bindGptOss(hp, vocab, binder) }
      : { kind: "llama" as const, w: bindLlama(hp, vocab, binder) };
    return new Model(backend, hp, vocab, weights, options);
  }

  /** A fresh, empty KV cache sized like the model's own (one per concurrent sequence). */
  newCache(contextLimit = this.cache.contextLimit): KVCache {
    const head = headDims(this.hparams);
    return new KVCache(this.backend, {
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
    const { backend, hparams: hp } = this;
    return this.weights.kind === "gpt-oss"
      ? gptOssForward(backend, hp, this.weights.w, plan, output)
      : llamaForward(backend, hp, this.weights.w, plan, output);
  }
}
