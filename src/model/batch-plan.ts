// A forward pass over several sequences at once (continuous batching): the
// rows of all segments go through every matrix product together, while each
// segment's K/V go to its own cache and its queries attend only over it.
import { refuse } from "../util/errors.ts";
import type { KVCache } from "./kv-cache.ts";

/** One sequence's share of a batch: tokens placed at its cache's next positions. */
export interface BatchSegment {
  cache: KVCache;
  tokens: Int32Array;
  /** Rows of this segment whose output is wanted (indices into `tokens`). */
  outputRows: readonly number[];
}

/** Where a segment's rows sit in the batch, and the positions its cache reserved for them. */
export interface SegmentRows {
  cache: KVCache;
  rowStart: number;
  positions: Int32Array;
}

export interface BatchPlan {
  tokens: Int32Array;
  /** Each row's position in its own sequence. */
  positions: Int32Array;
  segments: SegmentRows[];
  /** Batch rows to produce outputs for, segment by segment. */
  outputRows: number[];
}

/**
 * Lays the segments out one after another and reserves their positions. Every
 * segment is checked before any cache reserves, so a refused batch changes nothing.
 */
export function planBatch(segments: readonly BatchSegment[], vocabSize: number): BatchPlan {
  if (segments.length === 0) refuse("model.empty-batch", "a batch needs at least one sequence");
  const caches = new Set<KVCache>();
  let total = 0;
  segments.forEach((s, si) => {
    if (caches.has(s.cache)) refuse("model.bad-batch", `segment ${si} uses a cache that another segment of the batch uses`);
    caches.add(s.cache);
    if (s.tokens.length === 0) refuse("kv.bad-batch", `segment ${si} has no tokens`);
    if (s.cache.length + s.tokens.length > s.cache.contextLimit) {
      refuse("kv.context-full", `${s.cache.length} cached + ${s.tokens.length} new tokens exceed the context limit of ${s.cache.contextLimit} (-c); raise -c or shorten the prompt`);
    }
    for (const r of s.outputRows) if (!(Number.isInteger(r) && r >= 0 && r < s.tokens.length)) refuse("model.bad-output-row", `output row ${r} is not in a batch of ${s.tokens.length}`);
    s.tokens.forEach((t, i) => {
      if (!(t >= 0 && t < vocabSize)) refuse("model.bad-token", `token ${i} of the batch, id ${t}, is outside the vocabulary of ${vocabSize}`);
    });
    total += s.tokens.length;
  });
  const tokens = new Int32Array(total), positions = new Int32Array(total);
  const rows: SegmentRows[] = [];
  const outputRows: number[] = [];
  let at = 0;
  for (const s of segments) {
    const reserved = s.cache.reserve(s.tokens.length);
    tokens.set(s.tokens, at);
    positions.set(reserved, at);
    rows.push({ cache: s.cache, rowStart: at, positions: reserved });
    for (const r of s.outputRows) outputRows.push(at + r);
    at += s.tokens.length;
  }
  return { tokens, positions, segments: rows, outputRows };
}
