// The contract between the training loop (data, optimizer, checkpoints,
// export) and the model math (forward and backward kernels). The model math
// implements `TrainModel`; everything else only uses this file.
//
// Parameters live in one Float32Array described by a table (llm.c style), in
// the same layout and with the same names the GGUF export writes, so export
// is a rename: `token_embd.weight`, `blk.N.attn_norm.weight`,
// `blk.N.attn_q.weight`, ..., `output_norm.weight`, `output.weight` (absent
// when embeddings are tied). Dims are ggml order (ne0, the row length, first):
// a [in, out] weight stores `out` rows of `in` values.

export interface ModelShape {
  layers: number;
  /** d_model. */
  width: number;
  heads: number;
  kvHeads: number;
  ffnWidth: number;
  vocab: number;
  /** Positions the model is trained on (and exported with as its context length). */
  context: number;
  /** The output head reuses token_embd.weight. */
  tiedEmbeddings: boolean;
  /** RoPE frequency base (llama "normal" rotation: pairs 2i, 2i+1, as GGUF llama files). */
  ropeBase: number;
  normEps: number;
}

export interface ParameterInfo {
  name: string;
  dims: number[];
  /** Offset (in floats) into the parameter buffer. */
  offset: number;
  size: number;
  /** Whether AdamW's weight decay applies (not to norms and embeddings, by default). */
  decay: boolean;
}

export interface TrainModel {
  readonly shape: ModelShape;
  readonly parameters: readonly ParameterInfo[];
  /** All parameters, laid out as `parameters` says. */
  readonly params: Float32Array;
  /** Gradients, same layout; forwardBackward adds into them. */
  readonly grads: Float32Array;
  /** Deterministic seeded initialisation (same seed and shape -> same bytes). */
  initialize(seed: number): void;
  /**
   * One micro-batch: `tokens` holds `batch` rows of `seqLen + 1` ids; inputs are
   * each row's first seqLen, targets its last seqLen. Adds d(mean loss)/d(param)
   * into `grads` (scaled by `gradScale`, e.g. 1 / accumulation steps) and
   * returns the mean cross-entropy loss. Bit-identical for the same inputs,
   * parameters and thread count.
   */
  forwardBackward(tokens: Int32Array, batch: number, seqLen: number, gradScale?: number): number;
  /** Mean cross-entropy over the same layout, no gradients (evaluation). */
  loss(tokens: Int32Array, batch: number, seqLen: number): number;
  zeroGrads(): void;
  /** FLOPs of one forwardBackward on this shape (6 x params x tokens plus attention), for GFLOP/s. */
  flopsPerStep(batch: number, seqLen: number): number;
}
