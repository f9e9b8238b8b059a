// The plain reference the fast sampler is tested against: each filter written
// the obvious way over an array of {id, logit} with full sorts and fresh
// arrays, following llama.cpp's src/llama-sampler.cpp step by step. Slow on
// purpose; it exists to be easy to check by reading.

export interface RefCandidate {
  id: number;
  logit: number;
}

export interface RefChainOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  typicalP: number;
  minKeep: number;
  repeatPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
}

/** Higher logit first; equal logits: lower id first. */
export function byLogit(a: RefCandidate, b: RefCandidate): number {
  return b.logit - a.logit || a.id - b.id;
}

export function refSoftmax(cands: readonly RefCandidate[]): number[] {
  const max = Math.max(...cands.map((c) => c.logit));
  const exps = cands.map((c) => Math.exp(c.logit - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** `recent` is the penalty window's tokens, oldest first. */
export function refPenalties(cands: RefCandidate[], recent: readonly number[], o: RefChainOptions): RefCandidate[] {
  return cands.map(({ id, logit }) => {
    const count = recent.filter((t) => t === id).length;
    if (count === 0) return { id, logit };
    // float arithmetic, one rounding per operation, as llama.cpp computes it
    const f = Math.fround;
    const v = logit <= 0 ? f(logit * o.repeatPenalty) : f(logit / o.repeatPenalty);
    return { id, logit: f(v - f(f(count * o.frequencyPenalty) + o.presencePenalty)) };
  });
}

export function refTopK(cands: RefCandidate[], k: number): RefCandidate[] {
  if (k <= 0) return cands;
  return [...cands].sort(byLogit).slice(0, k);
}

/** Backend.topKRows the obvious way: each row of a rows x width array sorted, its first k kept. */
export function refTopKRows(values: Float32Array, rows: number, k: number): { k: number; ids: Int32Array; values: Float32Array; logZ: Float64Array } {
  const width = values.length / rows;
  const ids = new Int32Array(rows * k), best = new Float32Array(rows * k), logZ = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = Array.from(values.subarray(r * width, (r + 1) * width), (logit, id) => ({ id, logit }));
    refTopK(row, k).forEach((c, i) => {
      ids[r * k + i] = c.id;
      best[r * k + i] = values[r * width + c.id]!;
    });
    const max = row.reduce((m, c) => Math.max(m, c.logit), -Infinity);
    logZ[r] = max + Math.log(row.reduce((sum, c) => sum + Math.exp(c.logit - max), 0));
  }
  return { k, ids, values: best, logZ };
}

/** One row's refTopKRows, as Sampler.sampleTop takes it. */
export function refTopCandidates(logits: Float32Array, k: number): { ids: Int32Array; values: Float32Array; logZ: number } {
  const top = refTopKRows(logits, 1, k);
  return { ids: top.ids, values: top.values, logZ: top.logZ[0]! };
}

export function refTopP(cands: RefCandidate[], p: number, minKeep: number): RefCandidate[] {
  if (p >= 1) return cands;
  const sorted = [...cands].sort(byLogit);
  const probs = refSoftmax(sorted);
  let cum = 0;
  for (let i = 0; i < sorted.length; i++) {
    cum += probs[i]!;
    if (cum >= p && i + 1 >= minKeep) return sorted.slice(0, i + 1);
  }
  return sorted;
}

export function refMinP(cands: RefCandidate[], p: number, minKeep: number): RefCandidate[] {
  if (p <= 0) return cands;
  // p_i >= p * p_max  <=>  logit_i >= max_logit + log p
  const threshold = Math.max(...cands.map((c) => c.logit)) + Math.log(p);
  const kept = cands.filter((c) => c.logit >= threshold);
  if (kept.length >= minKeep) return kept;
  const sorted = [...cands].sort(byLogit);
  return sorted.filter((c, i) => i === 0 || c.logit >= threshold || i < minKeep);
}

export function refTypicalP(cands: RefCandidate[], p: number, minKeep: number): RefCandidate[] {
  if (p >= 1 || cands.length <= 1) return cands;
  const probs = refSoftmax(cands);
  const entropy = -probs.reduce((h, q) => h + (q > 0 ? q * Math.log(q) : 0), 0);
  const scored = cands.map((c, i) => ({
    c,
    q: probs[i]!,
    score: probs[i]! > 0 ? Math.abs(-Math.log(probs[i]!) - entropy) : Infinity,
  }));
  scored.sort((a, b) => a.score - b.score || a.c.id - b.c.id);
  let cum = 0;
  for (let i = 0; i < scored.length; i++) {
    cum += scored[i]!.q;
    if (cum > p && (minKeep === 0 || i >= minKeep - 1)) return scored.slice(0, i + 1).map((s) => s.c);
  }
  return scored.map((s) => s.c);
}

export function refTemperature(cands: RefCandidate[], t: number): RefCandidate[] {
  if (t <= 0) return [[...cands].sort(byLogit)[0]!];
  return cands.map(({ id, logit }) => ({ id, logit: Math.fround(logit / t) }));
}

/** The filtered distribution the default chain draws from: token id -> probability. */
export function refChainDistribution(
  logits: Float32Array,
  recent: readonly number[],
  o: RefChainOptions,
): Map<number, number> {
  let cands: RefCandidate[] = Array.from(logits, (logit, id) => ({ id, logit }));
  cands = refPenalties(cands, recent, o);
  cands = refTopK(cands, o.topK);
  cands = refTypicalP(cands, o.typicalP, o.minKeep);
  cands = refTopP(cands, o.topP, o.minKeep);
  cands = refMinP(cands, o.minP, o.minKeep);
  cands = refTemperature(cands, o.temperature);
  const probs = refSoftmax(cands);
  return new Map(cands.map((c, i) => [c.id, probs[i]!]));
}
