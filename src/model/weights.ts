// Binds a model's weights by tensor name. What is required and what is
// optional (biases, a tied output head, fused QKV, rope factors) follows
// llama.cpp's loaders; what a file has is discovered from the file. A missing
// required tensor, or one of the wrong shape, is refused by name.
import type { GGUFFile } from "../gguf/reader.ts";
import type { Backend, Weight } from "../runtime/backend.ts";
import { refuse } from "../util/errors.ts";
import { LayerPlacement } from "./placement.ts";

export class WeightBinder {
  /**
   * Weights already handed to each backend, so a tensor used twice (a tied
   * head) is loaded once per backend that uses it.
   */
  private readonly loaded: Map<Backend, Map<string, Weight>>;

  constructor(private readonly file: GGUFFile, private readonly backend: Backend,
              private readonly placement = LayerPlacement.single(backend), loaded?: Map<Backend, Map<string, Weight>>) {
    this.loaded = loaded ?? new Map();
  }

  /** The binder for layer `il` (the layer count: the output head), loading onto that layer's backend. */
  layer(il: number): WeightBinder {
    const backend = this.placement.at(il);
    return backend === this.backend ? this : new WeightBinder(this.file, backend, this.placement, this.loaded);
  }

  has(name: string): boolean {
    return this.file.tensorsByName.has(name);
  }

  /** The tensor `name` with exactly `dims` (ggml order); refuses when absent or shaped otherwise. */
  required(name: string, dims: number[]): Weight {
    return this.optional(name, dims) ?? refuse("model.missing-tensor", `tensor ${name} is required but not in the file`);
  }

  optional(name: string, dims: number[]): Weight | undefined {
    const info = this.file.tensorsByName.get(name);
    if (!info) return undefined;
    const same = info.dims.length === dims.length && info.dims.every((d, i) => d === dims[i]);
    if (!same) refuse("model.bad-shape", `tensor ${name} has shape [${info.dims.join(", ")}], expected [${dims.join(", ")}]`);
    let mine = this.loaded.get(this.backend);
    if (!mine) this.loaded.set(this.backend, (mine = new Map()));
    let weight = mine.get(name);
    if (!weight) {
      weight = this.backend.loadWeight(name, info.type, info.dims, this.file.tensorData(info));
      mine.set(name, weight);
    }
    return weight;
  }

  /** token_embd's vocabulary size (its second dimension). */
  vocabSize(embeddingLength: number): number {
    const info = this.file.tensorsByName.get("token_embd.weight") ?? refuse("model.missing-tensor", "tensor token_embd.weight is required but not in the file");
    if (info.dims.length !== 2 || info.dims[0] !== embeddingLength) {
      refuse("model.bad-shape", `tensor token_embd.weight has shape [${info.dims.join(", ")}], expected [${embeddingLength}, n_vocab]`);
    }
    return info.dims[1]!;
  }
}
