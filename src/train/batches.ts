// Which tokens each training step sees: a pure function of (seed, step), so a
// resumed run, a validator or a test can recompute any step's batch without
// replaying the ones before it.
//
// The training stream is cut into non-overlapping windows of seqLen + 1 tokens
// (window w starts at w * seqLen: each window's last token is the next one's
// first, so every token is a target exactly once per epoch). Sample g of the
// run (counting sequences across steps and micro-batches) is window
// perm_e[g mod W] of epoch e = floor(g / W), where perm_e is a Fisher-Yates
// shuffle drawn from xoshiro128** seeded with (seed, e).
import { SeededRng } from "../runtime/rng.ts";
import { refuse } from "../util/errors.ts";

export interface BatchShape {
  sequences: number;
  seqLen: number;
  accumulation: number;
}

/** Epochs stay below this, so (seed, epoch) packs into one safe-integer seed. */
const MAX_EPOCHS = 2 ** 20;

export class BatchSchedule {
  readonly windows: number;
  private cachedEpoch = -1;
  private cachedPerm = new Uint32Array(0);

  constructor(
    private readonly stream: Int32Array,
    readonly shape: BatchShape,
    readonly seed: number,
  ) {
    this.windows = Math.floor((stream.length - 1) / shape.seqLen);
    if (this.windows < 1) refuse("train.bad-data", `the training split has ${stream.length} tokens, fewer than one window of ${shape.seqLen + 1}`);
  }

  /** The shuffle of window indices for one epoch. */
  permutation(epoch: number): Uint32Array {
    if (epoch === this.cachedEpoch) return this.cachedPerm;
    if (epoch >= MAX_EPOCHS) refuse("train.too-many-epochs", `epoch ${epoch} exceeds the ${MAX_EPOCHS} the data order supports`);
    const rng = new SeededRng(this.seed * MAX_EPOCHS + epoch);
    const perm = new Uint32Array(this.windows);
    for (let i = 0; i < perm.length; i++) perm[i] = i;
    for (let i = perm.length - 1; i > 0; i--) {
      // floor(u * (i + 1)) with u in [0, 1) from 53 bits: bias far below anything measurable.
      const j = Math.floor(rng.nextDouble() * (i + 1));
      const t = perm[i]!;
      perm[i] = perm[j]!;
      perm[j] = t;
    }
    this.cachedEpoch = epoch;
    this.cachedPerm = perm;
    return perm;
  }

  /** Index of the first sample of (step, micro) in the run's sample order. */
  sampleIndex(step: number, micro: number): number {
    return (step * this.shape.accumulation + micro) * this.shape.sequences;
  }

  /** Micro-batch `micro` of step `step` (0-based): `sequences` rows of seqLen + 1 ids. */
  microBatch(step: number, micro: number): Int32Array {
    const { sequences, seqLen } = this.shape;
    const out = new Int32Array(sequences * (seqLen + 1));
    const first = this.sampleIndex(step, micro);
    for (let b = 0; b < sequences; b++) {
      const g = first + b;
      const window = this.permutation(Math.floor(g / this.windows))[g % this.windows]!;
      out.set(this.stream.subarray(window * seqLen, window * seqLen + seqLen + 1), b * (seqLen + 1));
    }
    return out;
  }

  epochOf(step: number): number {
    return Math.floor(this.sampleIndex(step, 0) / this.windows);
  }
}

/**
 * The fixed evaluation set: `count` windows of seqLen + 1 spread evenly over the
 * held-out stream, in `count / sequences` batches. The same every evaluation.
 */
export function evalBatches(heldOut: Int32Array, sequences: number, seqLen: number, batches: number): Int32Array[] {
  const windows = Math.floor((heldOut.length - 1) / seqLen);
  const count = sequences * batches;
  if (windows < count) refuse("train.bad-data", `the held-out split has ${windows} windows of ${seqLen + 1} tokens, evaluation needs ${count}; lower eval.batches`);
  const out: Int32Array[] = [];
  for (let b = 0; b < batches; b++) {
    const rows = new Int32Array(sequences * (seqLen + 1));
    for (let s = 0; s < sequences; s++) {
      const w = Math.floor(((b * sequences + s) * windows) / count);
      rows.set(heldOut.subarray(w * seqLen, w * seqLen + seqLen + 1), s * (seqLen + 1));
    }
    out.push(rows);
  }
  return out;
}
