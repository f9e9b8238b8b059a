// The candidate set a sampling step narrows, and the filters that narrow it,
// with llama.cpp's semantics (src/llama-sampler.cpp): top-k, typical-p, top-p,
// min-p, temperature, and the final draw. The set lives in typed arrays sized
// to the vocabulary once, so a step allocates no per-token storage.
//
// Order convention where llama.cpp leaves it to an unstable sort: higher logit
// first, and among equal logits the lower token id first. That makes every
// step deterministic and matches greedy's "ties go to the lowest id".

import { refuse } from "../util/errors.ts";
import type { SeededRng } from "./rng.ts";

/** Token ids must fit the 21 bits left beside a 32-bit key in a double's 53 (see sortAll). */
export const MAX_SORTABLE_VOCAB = 1 << 21;
const ID_SPAN = MAX_SORTABLE_VOCAB;

/** Above this many candidates top-p first tries the best ADAPTIVE_TOP_P_SPAN (llama.cpp does the same). */
const ADAPTIVE_TOP_P_MIN_SIZE = 1024;
const ADAPTIVE_TOP_P_SPAN = 256;

export class Candidates {
  /** Token id of each candidate. */
  readonly ids: Int32Array;
  /** Current (possibly penalized / tempered) logit of each candidate. */
  readonly logits: Float32Array;
  /** Probabilities after the last softmax over the set (valid after `softmax`). */
  readonly probs: Float32Array;
  /** Number of live candidates: entries [0, size) of the arrays above. */
  size = 0;
  /** True when [0, size) is in descending logit order (ties: lower id first). */
  sorted = false;

  // Scratch: sort keys and a bounded heap, reused every step.
  private readonly keys: Float64Array;
  private readonly keyBits: Uint32Array;
  private readonly heapLogits: Float32Array;
  private readonly heapIds: Int32Array;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_SORTABLE_VOCAB) {
      refuse("sampler.bad-vocab-size", `vocabulary size must be an integer in [1, ${MAX_SORTABLE_VOCAB}], got ${capacity}`);
    }
    this.ids = new Int32Array(capacity);
    this.logits = new Float32Array(capacity);
    this.probs = new Float32Array(capacity);
    this.keys = new Float64Array(capacity);
    this.keyBits = new Uint32Array(this.logits.buffer);
    this.heapLogits = new Float32Array(capacity);
    this.heapIds = new Int32Array(capacity);
  }

  /** Every token, in id order, with its logit. */
  loadAll(logits: Float32Array): void {
    this.logits.set(logits);
    for (let i = 0; i < logits.length; i++) this.ids[i] = i;
    this.size = logits.length;
    this.sorted = false;
  }

  /**
   * Top-k fused with loading: the k best tokens of `logits` (one pass with a
   * bounded heap, never a full copy or sort), best first. k <= 0 or k >= the
   * vocabulary is no filter (llama.cpp), so callers use loadAll then.
   */
  loadTopK(logits: Float32Array, k: number): void {
    this.size = this.selectBest(logits, null, logits.length, k, this.ids, this.logits);
    this.sorted = true;
  }

  /**
   * The first k of a list already in loadTopK's order (a backend's top-k,
   * Backend.topKRows): the same candidates loadTopK would have chosen.
   */
  loadBest(ids: Int32Array, logits: Float32Array, k: number): void {
    if (k > this.capacity || k > ids.length || k > logits.length) refuse("sampler.bad-logits", `top-k list of ${Math.min(ids.length, logits.length)} candidates is shorter than k = ${k}`);
    this.ids.set(ids.subarray(0, k));
    this.logits.set(logits.subarray(0, k));
    this.size = k;
    this.sorted = true;
  }

  /** Keep the best k of the current candidates, best first (loadTopK's order). */
  keepBest(k: number): void {
    const best = this.bestOfCurrent(k);
    this.loadBest(best.ids, best.logits, best.count);
  }

  /** Sort [0, size) descending by logit, ties by id (native sort of packed numeric keys). */
  sortAll(): void {
    if (this.sorted) return;
    const n = this.size;
    const keys = this.keys.subarray(0, n);
    for (let i = 0; i < n; i++) keys[i] = (0xffffffff - sortableBits(this.keyBits[i]!)) * ID_SPAN + this.ids[i]!;
    keys.sort();
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      const id = key % ID_SPAN;
      this.ids[i] = id;
      this.keyBits[i] = unsortableBits(0xffffffff - (key - id) / ID_SPAN);
    }
    this.sorted = true;
  }

  /**
   * Write the best `k` of candidates [0, n) into (outIds, outLogits), sorted.
   * `fromIds` null means the candidate at position i is token i.
   */
  private selectBest(
    logits: Float32Array,
    fromIds: Int32Array | null,
    n: number,
    k: number,
    outIds: Int32Array,
    outLogits: Float32Array,
  ): number {
    k = Math.min(k, n);
    const hl = this.heapLogits;
    const hi = this.heapIds;
    // Min-heap on "worse first": the root is the weakest of the best k so far.
    // Once the heap is full, a logit below the root's cannot enter whatever its id:
    // one compare rejects almost every token of a large vocabulary.
    let size = 0, floor = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = logits[i]!;
      if (v < floor) continue;
      const id = fromIds === null ? i : fromIds[i]!;
      if (size < k) {
        let c = size++;
        while (c > 0) {
          const p = (c - 1) >> 1;
          if (!worse(v, id, hl[p]!, hi[p]!)) break;
          hl[c] = hl[p]!;
          hi[c] = hi[p]!;
          c = p;
        }
        hl[c] = v;
        hi[c] = id;
        if (size === k) floor = hl[0]!;
      } else if (worse(hl[0]!, hi[0]!, v, id)) {
        siftDown(hl, hi, size, v, id);
        floor = hl[0]!;
      }
    }
    // Pop the weakest repeatedly, filling the output from the back.
    for (let end = size - 1; end >= 0; end--) {
      outLogits[end] = hl[0]!;
      outIds[end] = hi[0]!;
      if (end > 0) siftDown(hl, hi, end, hl[end]!, hi[end]!);
    }
    return size;
  }

  /** Best k of the current candidates, best first, as views into the sort-key scratch. */
  bestOfCurrent(k: number): { ids: Int32Array; logits: Float32Array; count: number } {
    const outIds = new Int32Array(this.keys.buffer, 0, Math.min(k, this.size));
    const outLogits = new Float32Array(this.keys.buffer, 4 * outIds.length, outIds.length);
    const count = this.selectBest(this.logits, this.ids, this.size, k, outIds, outLogits);
    return { ids: outIds, logits: outLogits, count };
  }

  /** Largest logit among [0, size). */
  maxLogit(): number {
    if (this.sorted) return this.logits[0]!;
    let max = -Infinity;
    for (let i = 0; i < this.size; i++) if (this.logits[i]! > max) max = this.logits[i]!;
    return max;
  }

  /** probs[i] = softmax(logits)[i] over [0, size). Returns the sum of exp before normalizing. */
  softmax(): number {
    const max = this.maxLogit();
    if (max === -Infinity) refuse("sampler.all-masked", "every candidate token has logit -inf; nothing can be sampled");
    let sum = 0;
    for (let i = 0; i < this.size; i++) {
      const p = Math.exp(this.logits[i]! - max);
      this.probs[i] = p;
      sum += p;
    }
    const inv = 1 / sum;
    for (let i = 0; i < this.size; i++) this.probs[i] = this.probs[i]! * inv;
    return sum;
  }

  /** Sort [0, size) ascending by an arbitrary non-negative score (ties by id); used by typical-p. */
  sortByScore(score: Float32Array): void {
    const n = this.size;
    const scoreBits = new Uint32Array(score.buffer, score.byteOffset, n);
    const keys = this.keys.subarray(0, n);
    for (let i = 0; i < n; i++) keys[i] = sortableBits(scoreBits[i]!) * ID_SPAN + this.ids[i]!;
    keys.sort();
    // Rebuild ids/logits in the new order through a by-id table (the heap scratch is free here).
    const logitById = this.heapLogits;
    for (let i = 0; i < n; i++) logitById[this.ids[i]!] = this.logits[i]!;
    for (let i = 0; i < n; i++) {
      const id = keys[i]! % ID_SPAN;
      this.ids[i] = id;
      this.logits[i] = logitById[id]!;
    }
    this.sorted = false;
  }
}

/** a ranks below b: lower logit, or equal logit and higher id. */
function worse(av: number, aid: number, bv: number, bid: number): boolean {
  return av < bv || (av === bv && aid > bid);
}

function siftDown(hl: Float32Array, hi: Int32Array, size: number, v: number, id: number): void {
  let c = 0;
  for (;;) {
    const l = 2 * c + 1;
    if (l >= size) break;
    let m = l;
    const r = l + 1;
    if (r < size && worse(hl[r]!, hi[r]!, hl[l]!, hi[l]!)) m = r;
    if (!worse(hl[m]!, hi[m]!, v, id)) break;
    hl[c] = hl[m]!;
    hi[c] = hi[m]!;
    c = m;
  }
  hl[c] = v;
  hi[c] = id;
}

/** float32 bits -> unsigned int with the same order as the floats (-0 counts as +0, as `<` does). */
function sortableBits(bits: number): number {
  if (bits === 0x80000000) return 0x80000000;
  return bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

function unsortableBits(key: number): number {
  return key & 0x80000000 ? (key & 0x7fffffff) >>> 0 : ~key >>> 0;
}

// ---- the filters, each a plain function of (candidates, parameter) ----

/**
 * Locally typical sampling: keep the tokens whose surprisal -log p is closest to
 * the entropy, in that order, until their mass exceeds p. Leaves the set ordered
 * by that closeness, not by logit.
 */
export function typicalP(c: Candidates, p: number, minKeep: number): void {
  if (p >= 1 || c.size <= 1) return;
  c.softmax();
  const n = c.size;
  let entropy = 0;
  for (let i = 0; i < n; i++) {
    const q = c.probs[i]!;
    if (q > 0) entropy -= q * Math.log(q);
  }
  // Scores go into `probs` (restored below); a token with p = 0 has infinite surprisal.
  const score = c.probs;
  for (let i = 0; i < n; i++) {
    const q = c.probs[i]!;
    score[i] = q > 0 ? Math.abs(-Math.log(q) - entropy) : Infinity;
  }
  c.sortByScore(score);
  c.softmax(); // probabilities in the new order
  let cum = 0;
  let keep = n;
  for (let i = 0; i < n; i++) {
    cum += c.probs[i]!;
    if (cum > p && (minKeep === 0 || i >= minKeep - 1)) {
      keep = i + 1;
      break;
    }
  }
  c.size = keep;
  c.sorted = false;
}

/** Nucleus sampling: the smallest best-first prefix whose mass reaches p (at least minKeep tokens). */
export function topP(c: Candidates, p: number, minKeep: number): void {
  if (p >= 1) return;
  if (!c.sorted && c.size > ADAPTIVE_TOP_P_MIN_SIZE) {
    // Most of the mass is usually in the first few hundred tokens: sort only those.
    const best = c.bestOfCurrent(ADAPTIVE_TOP_P_SPAN);
    const max = best.logits[0]!;
    if (max === -Infinity) refuse("sampler.all-masked", "every candidate token has logit -inf; nothing can be sampled");
    const total = sumExp(c, max);
    let cum = 0;
    for (let i = 0; i < best.count; i++) {
      cum += Math.exp(best.logits[i]! - max) / total;
      if (cum >= p && i + 1 >= minKeep) {
        c.ids.set(best.ids.subarray(0, i + 1));
        c.logits.set(best.logits.subarray(0, i + 1));
        c.size = i + 1;
        c.sorted = true;
        c.softmax();
        return;
      }
    }
  }
  c.sortAll();
  c.softmax();
  let cum = 0;
  for (let i = 0; i < c.size; i++) {
    cum += c.probs[i]!;
    if (cum >= p && i + 1 >= minKeep) {
      c.size = i + 1;
      return;
    }
  }
}

function sumExp(c: Candidates, max: number): number {
  let sum = 0;
  for (let i = 0; i < c.size; i++) sum += Math.exp(c.logits[i]! - max);
  return sum;
}

/** Keep tokens whose probability is at least p times the best one's (at least minKeep tokens). */
export function minP(c: Candidates, p: number, minKeep: number): void {
  if (p <= 0 || c.size === 0) return;
  const threshold = c.maxLogit() + Math.log(p);
  let kept = 0;
  for (let i = 0; i < c.size; i++) if (c.logits[i]! >= threshold) kept++;
  if (kept >= minKeep) {
    // Compact in place; relative order (and so sortedness) is preserved.
    let w = 0;
    for (let i = 0; i < c.size; i++) {
      if (c.logits[i]! >= threshold) {
        c.ids[w] = c.ids[i]!;
        c.logits[w] = c.logits[i]!;
        w++;
      }
    }
    c.size = w;
    return;
  }
  c.sortAll();
  let i = 1;
  for (; i < c.size; i++) if (c.logits[i]! < threshold && i >= minKeep) break;
  c.size = i;
}

/** Divide logits by t (after shifting the best to 0); t <= 0 keeps only the best token (greedy), as llama.cpp's temp sampler does. */
export function temperature(c: Candidates, t: number): void {
  if (c.size === 0) return;
  if (t <= 0) {
    let best = 0;
    for (let i = 1; i < c.size; i++) {
      if (worse(c.logits[best]!, c.ids[best]!, c.logits[i]!, c.ids[i]!)) best = i;
    }
    c.ids[0] = c.ids[best]!;
    c.logits[0] = c.logits[best]!;
    c.size = 1;
    c.sorted = true;
    return;
  }
  if (t === 1) return;
  // Shift by the best logit first: softmax is unchanged, and a tiny t cannot
  // overflow a logit to +inf (which would make the draw NaN).
  const max = c.maxLogit();
  if (max === -Infinity) refuse("sampler.all-masked", "every candidate token has logit -inf; nothing can be sampled");
  for (let i = 0; i < c.size; i++) c.logits[i] = (c.logits[i]! - max) / t;
}

/**
 * Draw one candidate from softmax(logits) with one uniform number; returns its
 * position and leaves the normalized probabilities in `probs`.
 */
export function drawFromDistribution(c: Candidates, rng: SeededRng): number {
  const max = c.maxLogit();
  if (max === -Infinity) refuse("sampler.all-masked", "every candidate token has logit -inf; nothing can be sampled");
  let sum = 0;
  for (let i = 0; i < c.size; i++) {
    const e = Math.exp(c.logits[i]! - max);
    c.probs[i] = e;
    sum += e;
  }
  // Accumulate unnormalized mass against u * total, so a token with zero mass is never chosen.
  const target = rng.nextDouble() * sum;
  let chosen = -1;
  let cum = 0;
  for (let i = 0; i < c.size; i++) {
    const e = c.probs[i]!;
    cum += e;
    if (chosen < 0 && cum > target) chosen = i;
    c.probs[i] = e / sum;
  }
  if (chosen >= 0) return chosen;
  // Rounding left the running total a hair below the target: take the last token with mass.
  for (let i = c.size - 1; i > 0; i--) if (c.probs[i]! > 0) return i;
  return 0;
}

/** Position of the best token: highest logit, lowest id among ties. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = logits[0]!;
  for (let i = 1; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}
