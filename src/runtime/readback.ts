// How a step's output rows come back to the host for picking tokens. Each row
// says what its pick needs: the argmax (greedy), its k best and log Z
// (Sampler.deviceTopK), or the whole row of logits (raising penalties, over
// 128 candidates, a prompt's first pick kept for the prompt cache). A
// backend that answers where the logits are (argmaxRows, topKRows) answers the
// first two there, one id or k pairs a row, and only the rows that need their
// logits are copied whole (takeRows, then download): one such row, a new
// request joining a 32-sequence step, does not bring every row back whole.
import { PsionicError } from "../util/errors.ts";
import { DownloadBuffer, type Activation, type Backend, type TopKRows } from "./backend.ts";
import type { SampledToken, Sampler } from "./sampler.ts";

/** What a row's pick needs. A row whose pick is not wanted asks for the argmax, the cheapest. */
export type RowNeed = { kind: "argmax" } | { kind: "top"; k: number } | { kind: "logits" };

/**
 * What a row got back: its argmax, its k best (best first, ties to the lower
 * id), or its logits. The first two can still read the row's logits (`row`:
 * a pick under a constraint whose trial token was refused), until the next
 * forward pass and the next such read.
 */
export type RowPick =
  | { kind: "id"; id: number; row: () => Float32Array }
  | { kind: "top"; ids: Int32Array; values: Float32Array; logZ: number; row: () => Float32Array }
  | { kind: "logits"; logits: Float32Array };

export const ARGMAX: RowNeed = { kind: "argmax" };
export const LOGITS: RowNeed = { kind: "logits" };

/** The need of a sampler's next pick: the argmax, its top-k, or (the rest) the logits. */
export function samplerNeed(sampler: Sampler): RowNeed {
  if (sampler.picksArgmax) return ARGMAX;
  return sampler.deviceTopK > 0 ? { kind: "top", k: sampler.deviceTopK } : LOGITS;
}

/** The sampler's pick from a row answered on the device (its argmax or top-k), recorded unless `record` is false. */
export function pickAnswered(sampler: Sampler, got: Exclude<RowPick, { kind: "logits" }>, record = true): SampledToken {
  if (got.kind === "top") return sampler.sampleTop(got, { record });
  if (record) sampler.accept(got.id);
  return { token: got.id, probability: 1 };
}

/** Reads a step's rows back for their picks; one per generation loop, its buffers reused each step. */
export class RowReader {
  private readonly rows = new DownloadBuffer();
  private readonly single = new DownloadBuffer();

  /**
   * What each row of `out` (one need per row) needs. Rows that need their
   * logits land in one buffer, valid until the next read.
   */
  read(backend: Backend, out: Activation, needs: readonly RowNeed[]): RowPick[] {
    if (needs.length !== out.rows) throw new PsionicError("backend.shape", `RowReader: ${needs.length} needs for ${out.rows} rows`);
    const onDevice = (n: RowNeed) =>
      n.kind === "argmax" ? backend.argmaxRows !== undefined || backend.topKRows !== undefined : n.kind === "top" && backend.topKRows !== undefined;
    const hostRows = needs.flatMap((n, r) => (onDevice(n) ? [] : [r]));
    const whole = () => {
      const logits = this.rows.read(backend, out);
      return needs.map((_, r): RowPick => ({ kind: "logits", logits: logits.subarray(r * out.width, (r + 1) * out.width) }));
    };
    if (hostRows.length === needs.length) return whole();
    const k = Math.max(0, ...needs.map((n) => (n.kind === "top" && onDevice(n) ? n.k : 0)));
    let ids: Int32Array | undefined, top: TopKRows | null = null;
    if (k === 0 && backend.argmaxRows) ids = backend.argmaxRows(out);
    // k rounded up to a power of two (at most the row): a step's launches are one CUDA graph, replayed
    // while they stay the same, so requests with different top-k should not make each step a new one.
    else top = backend.topKRows!(out, Math.min(out.width, 2 ** Math.ceil(Math.log2(Math.max(1, k)))));
    // A row holding NaN or +inf has no top-k: every row comes back whole, and its sampler names the token.
    if (!ids && !top) return whole();
    const hostLogits = hostRows.length > 0 ? this.rows.read(backend, backend.takeRows(out, hostRows)) : undefined;
    let h = 0;
    return needs.map((n, r): RowPick => {
      if (!onDevice(n)) return { kind: "logits", logits: hostLogits!.subarray(h * out.width, ++h * out.width) };
      const row = () => this.single.read(backend, backend.takeRows(out, [r]));
      if (n.kind === "top") {
        const at = r * top!.k;
        return { kind: "top", ids: top!.ids.subarray(at, at + n.k), values: top!.values.subarray(at, at + n.k), logZ: top!.logZ[r]!, row };
      }
      return { kind: "id", id: ids ? ids[r]! : top!.ids[r * top!.k]!, row };
    });
  }
}
