// Picks the next token from a step's vocabulary logits, the way llama.cpp's
// default sampler chain does (common/sampling.cpp):
//   penalties -> top-k -> typical-p -> top-p -> min-p -> temperature -> draw
// with greedy (argmax, ties to the lowest id) when temperature <= 0. The draw
// uses a seeded generator, so the same seed and logits give the same tokens.
//
// One Sampler serves one sequence: it remembers the last `penaltyLastN` tokens
// for the repetition penalties. Feed it the prompt with `accept` (llama.cpp's
// server and CLI do), and `sample` records each token it returns.

import { refuse } from "../util/errors.ts";
import { MAX_DEVICE_TOP_K } from "./backend.ts";
import { freshSeed, SeededRng } from "./rng.ts";
import {
  argmax,
  Candidates,
  drawFromDistribution,
  minP,
  temperature,
  topP,
  typicalP,
} from "./sampler-filters.ts";

export interface SamplerOptions {
  /** Number of logits per step (the model's vocabulary size). */
  vocabSize: number;
  /** <= 0: greedy. Default 0.8. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 disables. Default 40. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 disables. Default 0.95. */
  topP?: number;
  /** Keep tokens with p >= minP * p_max, in [0, 1]; 0 disables. Default 0.05. */
  minP?: number;
  /** Locally typical mass in (0, 1]; 1 disables. Default 1. */
  typicalP?: number;
  /** Fewest tokens top-p, min-p and typical-p may leave. Default 0. */
  minKeep?: number;
  /** Divides positive / multiplies negative logits of recent tokens; 1 disables. Default 1. */
  repeatPenalty?: number;
  /** Subtracted once per occurrence in the window. Default 0. */
  frequencyPenalty?: number;
  /** Subtracted once if the token occurs in the window. Default 0. */
  presencePenalty?: number;
  /** How many recent tokens the penalties look at; 0 disables, -1 means `contextSize`. Default 64. */
  penaltyLastN?: number;
  /** The context length, needed only for penaltyLastN = -1. */
  contextSize?: number;
  /** Seed for the draw; omitted: a fresh one from the OS (read it back from `seed`). */
  seed?: number;
  /** Report the chosen token's log-probability under the model's own distribution. */
  logprobs?: boolean;
  /** Also report this many most likely tokens with their log-probabilities (implies logprobs). */
  topLogprobs?: number;
}

export interface SampleOptions {
  /** Record the token in the penalty window (default true); false for a trial draw. */
  record?: boolean;
  /** The unmasked model logits to report logprobs from (default: the logits sampled). */
  logprobsFrom?: Float32Array;
}

/** A row's best candidates in loadTopK's order, and its log Z (Backend.topKRows, one row). */
export interface TopCandidates {
  ids: Int32Array;
  values: Float32Array;
  logZ: number;
}

export type ResolvedSamplerOptions = Required<Omit<SamplerOptions, "contextSize">> & { contextSize?: number };

export interface TokenLogprob {
  token: number;
  logprob: number;
}

export interface TokenProbability {
  token: number;
  probability: number;
}

export interface SampledToken {
  token: number;
  /** Probability of `token` in the distribution it was drawn from (after every filter); 1 for greedy. */
  probability: number;
  /** log softmax(model logits)[token]: the model's own view, before penalties and filters (OpenAI semantics). */
  logprob?: number;
  /** The `topLogprobs` most likely tokens under the model's logits, best first (ties: lower id first). */
  topLogprobs?: TokenLogprob[];
}

/** Largest penalty window accepted (tokens); bounds the ring buffer a request can ask for. */
export const MAX_PENALTY_WINDOW = 1 << 20;

export function resolveSamplerOptions(o: SamplerOptions): ResolvedSamplerOptions {
  const vocabSize = o.vocabSize;
  if (!Number.isInteger(vocabSize) || vocabSize < 1) {
    refuse("sampler.bad-vocab-size", `vocabulary size must be a positive integer, got ${vocabSize}`);
  }
  const r: ResolvedSamplerOptions = {
    vocabSize,
    temperature: o.temperature ?? 0.8,
    topK: o.topK ?? 40,
    topP: o.topP ?? 0.95,
    minP: o.minP ?? 0.05,
    typicalP: o.typicalP ?? 1,
    minKeep: o.minKeep ?? 0,
    repeatPenalty: o.repeatPenalty ?? 1,
    frequencyPenalty: o.frequencyPenalty ?? 0,
    presencePenalty: o.presencePenalty ?? 0,
    penaltyLastN: o.penaltyLastN ?? 64,
    contextSize: o.contextSize,
    seed: o.seed ?? freshSeed(),
    logprobs: (o.logprobs ?? false) || (o.topLogprobs ?? 0) > 0,
    topLogprobs: o.topLogprobs ?? 0,
  };
  const bad = (name: string, want: string, got: unknown): never =>
    refuse("sampler.bad-parameter", `${name} must be ${want}, got ${String(got)}`);
  const finite = (name: string, v: number): void => {
    if (typeof v !== "number" || !Number.isFinite(v)) bad(name, "a finite number", v);
  };
  const integer = (name: string, v: number, min: number, max: number): void => {
    if (!Number.isInteger(v) || v < min || v > max) bad(name, `an integer in [${min}, ${max}]`, v);
  };
  finite("temperature", r.temperature);
  integer("top_k", r.topK, 0, Number.MAX_SAFE_INTEGER);
  finite("top_p", r.topP);
  if (!(r.topP > 0 && r.topP <= 1)) bad("top_p", "in (0, 1]", r.topP);
  finite("min_p", r.minP);
  if (!(r.minP >= 0 && r.minP <= 1)) bad("min_p", "in [0, 1]", r.minP);
  finite("typical_p", r.typicalP);
  if (!(r.typicalP > 0 && r.typicalP <= 1)) bad("typical_p", "in (0, 1]", r.typicalP);
  integer("min_keep", r.minKeep, 0, vocabSize);
  finite("repeat_penalty", r.repeatPenalty);
  if (!(r.repeatPenalty > 0)) bad("repeat_penalty", "greater than 0 (1 disables it)", r.repeatPenalty);
  finite("frequency_penalty", r.frequencyPenalty);
  finite("presence_penalty", r.presencePenalty);
  integer("penalty_last_n", r.penaltyLastN, -1, MAX_PENALTY_WINDOW);
  if (r.penaltyLastN === -1) {
    if (r.contextSize === undefined) bad("penalty_last_n", "given explicitly when no context size is known", -1);
    integer("context size", r.contextSize!, 1, MAX_PENALTY_WINDOW);
  }
  integer("seed", r.seed, 0, Number.MAX_SAFE_INTEGER);
  integer("top_logprobs", r.topLogprobs, 0, vocabSize);
  return r;
}

export class Sampler {
  readonly options: Readonly<ResolvedSamplerOptions>;
  private readonly rng: SeededRng;
  private readonly candidates: Candidates;
  /** The penalized copy of a step's logits (only when penalties are on). */
  private readonly penalized: Float32Array | null;
  // The penalty window: a ring of the last `window.length` tokens and their counts.
  private readonly window: Int32Array;
  private windowStart = 0;
  private windowFill = 0;
  private readonly counts = new Map<number, number>();

  constructor(options: SamplerOptions) {
    this.options = Object.freeze(resolveSamplerOptions(options));
    const o = this.options;
    this.rng = new SeededRng(o.seed);
    this.candidates = new Candidates(o.vocabSize);
    const windowSize = o.penaltyLastN === -1 ? o.contextSize! : o.penaltyLastN;
    const penaltiesOn = windowSize > 0 && (o.repeatPenalty !== 1 || o.frequencyPenalty !== 0 || o.presencePenalty !== 0);
    this.window = new Int32Array(penaltiesOn ? windowSize : 0);
    this.penalized = penaltiesOn ? new Float32Array(o.vocabSize) : null;
  }

  get seed(): number {
    return this.options.seed;
  }

  /** Record a token in the penalty window (prompt tokens, or tokens chosen elsewhere). */
  accept(token: number): void {
    this.checkToken(token);
    const w = this.window;
    if (w.length === 0) return;
    if (this.windowFill === w.length) {
      const old = w[this.windowStart]!;
      const n = this.counts.get(old)! - 1;
      if (n === 0) this.counts.delete(old);
      else this.counts.set(old, n);
      w[this.windowStart] = token;
      this.windowStart = (this.windowStart + 1) % w.length;
    } else {
      w[(this.windowStart + this.windowFill) % w.length] = token;
      this.windowFill++;
    }
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
  }

  /** Forget the penalty window and restart the random stream from the seed. */
  reset(): void {
    this.windowStart = 0;
    this.windowFill = 0;
    this.counts.clear();
    this.rng.reseed(this.options.seed);
  }

  /**
   * Whether the next pick is the plain argmax of the raw logits (greedy, no
   * penalties, no logprobs): then a backend may pick it where the logits are
   * (Backend.argmaxRows), and `accept` records it.
   */
  get picksArgmax(): boolean {
    return this.greedy && this.penalized === null && !this.options.logprobs;
  }

  /** Greedy: the best (penalized) token, no draw. */
  private get greedy(): boolean {
    return this.options.temperature <= 0 && this.options.typicalP >= 1;
  }

  /**
   * How many of the best logits a backend may compute where the logits are
   * (Backend.topKRows) for this sampler's next pick, or 0 when the pick needs
   * the whole row: logprobs, sampling without a top-k, penalties that can
   * raise a logit, or more than MAX_DEVICE_TOP_K. Greedy needs one, sampling
   * its top-k: everything after top-k in the chain looks only at its
   * candidates, so `sampleTop` on them picks what `sample` on the row would.
   * Penalties that only lower logits (repeat >= 1, frequency and presence >= 0)
   * lower only the window's tokens, so the top-k after them lies within the
   * top (k + distinct tokens in the window) before them.
   */
  get deviceTopK(): number {
    const o = this.options;
    // Greedy needs the best token; sampling its top-k (without one, the whole row).
    let k = this.greedy ? 1 : o.topK;
    if (!(k > 0)) return 0;
    if (this.penalized !== null) {
      if (!(o.repeatPenalty >= 1 && o.frequencyPenalty >= 0 && o.presencePenalty >= 0)) return 0;
      k += this.counts.size;
    }
    // Logprobs: the chosen token is among those, and the top-N come from the same list.
    if (o.logprobs) k = Math.max(k, o.topLogprobs);
    return k <= MAX_DEVICE_TOP_K && k < o.vocabSize ? k : 0;
  }

  /**
   * As `sample`, from a row's best candidates in loadTopK's order (at least
   * `deviceTopK` of them; the first deviceTopK are used) and the row's log Z
   * (for logprobs), recording the token unless `record` is false.
   */
  sampleTop(top: TopCandidates, options: Pick<SampleOptions, "record"> = {}): SampledToken {
    const k = this.deviceTopK;
    if (k === 0) refuse("sampler.bad-logits", "this sampler's pick needs the whole row of logits (raising penalties, no top-k or a large one)");
    const { ids, values: logits } = top;
    const c = this.candidates;
    c.loadBest(ids, logits, k);
    if (this.penalized !== null) {
      for (let i = 0; i < c.size; i++) {
        const count = this.counts.get(c.ids[i]!);
        if (count !== undefined) c.logits[i] = this.penalize(c.logits[i]!, count);
      }
      c.keepBest(this.greedy ? 1 : this.options.topK);
    }
    let token: number, probability = 1;
    if (this.greedy) {
      if (c.logits[0] === -Infinity) refuseAllMasked();
      token = c.ids[0]!;
    } else {
      this.narrow();
      const at = drawFromDistribution(c, this.rng);
      token = c.ids[at]!;
      probability = c.probs[at]!;
    }
    const result: SampledToken = { token, probability };
    if (this.options.logprobs) {
      // As addLogprobs, from the list: the raw logits' best, the token among them.
      result.logprob = logits[ids.subarray(0, k).indexOf(token)]! - top.logZ;
      const n = this.options.topLogprobs;
      if (n > 0) result.topLogprobs = Array.from({ length: n }, (_, i) => ({ token: ids[i]!, logprob: logits[i]! - top.logZ }));
    }
    if (options.record ?? true) this.accept(token);
    return result;
  }

  /**
   * Choose the next token from `logits` (length vocabSize) and record it in the
   * penalty window (unless `record` is false). `logprobsFrom` gives the model's
   * own logits when `logits` were masked (constrained decoding), so logprobs keep
   * OpenAI's meaning.
   */
  sample(logits: Float32Array, options: SampleOptions = {}): SampledToken {
    const o = this.options;
    const source = this.penalizedSource(logits);
    let token: number;
    let probability = 1;
    if (this.greedy) {
      // Top-k, top-p and min-p always keep the best token, so greedy is argmax of the penalized logits.
      token = argmax(source);
      if (source[token] === -Infinity) refuseAllMasked();
    } else {
      this.filter(source);
      const c = this.candidates;
      const at = drawFromDistribution(c, this.rng);
      token = c.ids[at]!;
      probability = c.probs[at]!;
    }
    const result: SampledToken = { token, probability };
    if (o.logprobs) this.addLogprobs(this.checkedLogits(options.logprobsFrom ?? logits), result);
    if (options.record ?? true) this.accept(token);
    return result;
  }

  /**
   * The distribution `sample` would draw from for these logits (after penalties
   * and every filter), most likely first; draws nothing and records nothing.
   */
  filteredDistribution(logits: Float32Array): TokenProbability[] {
    this.filter(this.penalizedSource(logits));
    const c = this.candidates;
    c.softmax();
    const out: TokenProbability[] = [];
    for (let i = 0; i < c.size; i++) out.push({ token: c.ids[i]!, probability: c.probs[i]! });
    return out.sort((a, b) => b.probability - a.probability || a.token - b.token);
  }

  private penalizedSource(logits: Float32Array): Float32Array {
    this.checkedLogits(logits);
    checkFinite(logits);
    return this.penalized === null ? logits : this.applyPenalties(logits, this.penalized);
  }

  private checkedLogits(logits: Float32Array): Float32Array {
    const o = this.options;
    if (!(logits instanceof Float32Array) || logits.length !== o.vocabSize) {
      refuse("sampler.bad-logits", `expected a Float32Array of ${o.vocabSize} logits, got ${describe(logits)}`);
    }
    return logits;
  }

  /** Run the chain after penalties: top-k -> typical-p -> top-p -> min-p -> temperature. */
  private filter(source: Float32Array): void {
    const o = this.options;
    const c = this.candidates;
    if (o.topK > 0 && o.topK < o.vocabSize) c.loadTopK(source, o.topK);
    else c.loadAll(source);
    this.narrow();
  }

  /** The chain after top-k: typical-p -> top-p -> min-p -> temperature. */
  private narrow(): void {
    const o = this.options;
    const c = this.candidates;
    typicalP(c, o.typicalP, o.minKeep);
    topP(c, o.topP, o.minKeep);
    minP(c, o.minP, o.minKeep);
    temperature(c, o.temperature);
  }

  /** penalized = logits with llama.cpp's repetition, frequency and presence penalties applied. */
  private applyPenalties(logits: Float32Array, penalized: Float32Array): Float32Array {
    penalized.set(logits);
    for (const [token, count] of this.counts) penalized[token] = this.penalize(penalized[token]!, count);
    return penalized;
  }

  /** A logit of a token seen `count` times in the window, penalized (float arithmetic, as llama.cpp). */
  private penalize(v: number, count: number): number {
    const o = this.options;
    // Dividing a negative logit would make the token more likely, so those are multiplied.
    v = v <= 0 ? Math.fround(v * o.repeatPenalty) : Math.fround(v / o.repeatPenalty);
    return Math.fround(v - Math.fround(Math.fround(count * o.frequencyPenalty) + o.presencePenalty));
  }

  private addLogprobs(logits: Float32Array, result: SampledToken): void {
    const max = logits[argmax(logits)]!;
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
    const logZ = max + Math.log(sum);
    result.logprob = logits[result.token]! - logZ;
    const n = this.options.topLogprobs;
    if (n > 0) {
      // The candidate buffers are free again once the token is chosen.
      const c = this.candidates;
      c.loadTopK(logits, n);
      const top: TokenLogprob[] = new Array(c.size);
      for (let i = 0; i < c.size; i++) top[i] = { token: c.ids[i]!, logprob: c.logits[i]! - logZ };
      result.topLogprobs = top;
    }
  }

  private checkToken(token: number): void {
    if (!Number.isInteger(token) || token < 0 || token >= this.options.vocabSize) {
      refuse("sampler.bad-token", `token id ${token} is outside the vocabulary [0, ${this.options.vocabSize})`);
    }
  }
}

function refuseAllMasked(): never {
  refuse("sampler.all-masked", "every token has logit -inf; nothing can be sampled");
}

/** NaN or +inf logits mean the forward pass broke; -inf is a legitimate mask. */
function checkFinite(logits: Float32Array): void {
  for (let i = 0; i < logits.length; i++) {
    if (!(logits[i]! < Infinity)) {
      refuse("sampler.bad-logits", `logit of token ${i} is ${logits[i]}; the forward pass produced a non-finite value`);
    }
  }
}

function describe(x: unknown): string {
  if (x instanceof Float32Array) return `${x.length} values`;
  return x === null ? "null" : typeof x === "object" ? (x.constructor?.name ?? "object") : typeof x;
}
