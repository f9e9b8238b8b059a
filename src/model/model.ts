// A loaded model: hyper-parameters and weights from a GGUF, bound to a
// backend, with its KV cache. `forward` runs a batch of tokens (a prefill
// chunk or one decode step: the same code) at the next positions.
import type { GGUFFile } from "../gguf/reader.ts";
import type { Activation, Backend, KVPrecision } from "../runtime/backend.ts";
import { refuse } from "../util/errors.ts";
import { headDims } from "./attention-block.ts";
import { bindGptOss, gptOssForward, type GptOssWeights } from "./gpt-oss.ts";
import { readHyperParameters, type HyperParameters } from "./hparams.ts";
import { KVCache } from "./kv-cache.ts";
import { bindLlama, llamaForward, type LlamaWeights } from "./llama.ts";
import { WeightBinder } from "./weights.ts";

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

  /**
   * Runs `tokens` at positions cache.length, cache.length + 1, ... and returns
   * the logits of the batch rows listed in `outputRows` (default: the last).
   */
  forward(tokens: Int32Array, outputRows: number[] = [tokens.length - 1]): Activation {
    for (const r of outputRows) if (!(Number.isInteger(r) && r >= 0 && r < tokens.length)) refuse("model.bad-output-row", `output row ${r} is not in a batch of ${tokens.length}`);
    // Checked before the cache reserves positions, so a bad batch leaves it as it was.
    tokens.forEach((t, i) => {
      if (!(t >= 0 && t < this.vocabSize)) refuse("model.bad-token", `token ${i} of the batch, id ${t}, is outside the vocabulary of ${this.vocabSize}`);
    });
    const { backend, hparams: hp, cache } = this;
    return this.weights.kind === "gpt-oss"
      ? gptOssForward(backend, hp, this.weights.w, cache, tokens, outputRows)
      : llamaForward(backend, hp, this.weights.w, cache, tokens, outputRows);
  }
}
