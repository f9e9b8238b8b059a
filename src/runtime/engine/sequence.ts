// One request's generation state inside the scheduler: its prompt, the cache
// entry it holds, the tokens still to evaluate, and the sampler, stop rules,
// streaming decoder and optional output constraint that turn each step's
// logits into a token event.
import type { Tokenizer } from "../../tokenizer/tokenizer.ts";
import { createTokenConstraint, pickConstrained, sampleConstrained, type TokenConstraint } from "../constraint/token-constraint.ts";
import type { GenerationTimings } from "../generator.ts";
import { Sampler, type SampledToken } from "../sampler.ts";
import { StopChecker } from "../stop.ts";
import { LOGITS, pickAnswered, samplerNeed, type RowNeed, type RowPick } from "../readback.ts";
import type { CacheEntry } from "./prefix-cache.ts";
import type { FinishReason, GenerateJob, JobEvent, PrefixCacheOutcome, TokenAlternative } from "./protocol.ts";

/** Decodes a single alternative's bytes (one token: complete or not, never streamed). */
const utf8 = new TextDecoder();

export interface SequenceSetup {
  job: GenerateJob;
  prompt: Int32Array;
  entry: CacheEntry;
  reused: number;
  outcome: PrefixCacheOutcome;
  /** Logits of the last prompt token when the prefix cache already had them. */
  cachedLogits?: Float32Array;
  queuedAt: number;
  tokenizer: Tokenizer;
  vocabSize: number;
  /** Whether special tokens' text is part of the output (harmony models parse it). */
  renderSpecial: boolean;
}

export class Sequence {
  readonly job: GenerateJob;
  readonly prompt: Int32Array;
  readonly entry: CacheEntry;
  /** Tokens to run through the model next: the rest of the prompt, then each sampled token. */
  pending: Int32Array;
  /** Logits ready to sample from without a forward pass (exact prefix-cache hit). */
  readyLogits?: Float32Array;
  readonly generated: number[] = [];
  readonly timings: GenerationTimings;
  cancelled = false;
  private readonly sampler: Sampler;
  private readonly stop: StopChecker;
  private readonly decoder: { push(id: number): string; flush(): string };
  private readonly constraint?: TokenConstraint;
  private readonly tokenizer: Tokenizer;
  private readonly startedAt = performance.now();
  private firstLogitsAt?: number;

  constructor(s: SequenceSetup, readonly cachedTokens: number) {
    this.job = s.job;
    this.prompt = s.prompt;
    this.entry = s.entry;
    this.tokenizer = s.tokenizer;
    this.pending = s.prompt.subarray(s.reused);
    this.readyLogits = s.cachedLogits;
    const contextSize = s.entry.cache.contextLimit;
    this.sampler = new Sampler({
      ...s.job.sampling, vocabSize: s.vocabSize, contextSize,
      logprobs: s.job.logprobs, topLogprobs: s.job.topLogprobs,
    });
    for (const id of s.prompt) this.sampler.accept(id);
    const eog = [...s.tokenizer.eogIds].filter((id) => id < s.vocabSize);
    this.stop = new StopChecker({ stopStrings: s.job.stop, stopTokens: [...eog, ...(s.job.stopTokens ?? [])], maxTokens: s.job.maxTokens });
    this.decoder = s.tokenizer.createDecoder({ unparseSpecial: s.renderSpecial });
    if (s.job.constraint) this.constraint = createTokenConstraint(s.tokenizer, s.job.constraint, eog, { maxTokens: s.job.maxTokens });
    this.timings = { promptTokens: s.prompt.length, prefillMs: 0, decodeTokens: 0, decodeMs: 0, sampleMs: 0 };
  }

  startedEvent(queuedMs: number, outcome: PrefixCacheOutcome): JobEvent {
    return { kind: "started", id: this.job.id, promptTokens: this.prompt.length, cachedTokens: this.cachedTokens, prefixCache: outcome, queuedMs };
  }

  /** The forward pass evaluated `count` pending tokens (their K/V are now in the cache). */
  evaluated(count: number): void {
    for (let i = 0; i < count; i++) this.entry.tokens.push(this.pending[i]!);
    this.pending = this.pending.subarray(count);
  }

  /**
   * Samples from `logits` (the output of the last evaluated token) and returns
   * the events to send: a token, and a "done" when generation ends here.
   */
  sample(logits: Float32Array): JobEvent[] {
    const { now, first } = this.stepStarted();
    // Remember the prompt's last logits, so an identical prompt later skips evaluation.
    if (first && this.entry.tokens.length === this.prompt.length) this.entry.logits = { position: this.prompt.length - 1, values: logits.slice() };
    const picked = this.constraint ? sampleConstrained(this.sampler, logits, this.constraint, this.remaining) : this.sampler.sample(logits);
    return this.emitPick(picked, now);
  }

  /**
   * What this step's pick needs back from the backend (readback.ts): the
   * prompt's first pick the whole row (kept for the prompt cache), the others
   * what the sampler needs (under a constraint, for the trial pick).
   */
  get need(): RowNeed {
    return this.firstLogitsAt === undefined ? LOGITS : samplerNeed(this.sampler);
  }

  /**
   * As `sample`, from what the row got back for `need`. Under a constraint that
   * is the trial pick, and only a refused one reads the row's logits to mask.
   */
  pick(got: RowPick): JobEvent[] {
    if (got.kind === "logits") return this.sample(got.logits);
    const { now } = this.stepStarted();
    const picked = this.constraint
      ? pickConstrained(this.sampler, this.constraint, this.remaining, () => pickAnswered(this.sampler, got, false), got.row)
      : pickAnswered(this.sampler, got);
    return this.emitPick(picked, now);
  }

  /** Tokens the job may still generate. */
  private get remaining(): number {
    return this.job.maxTokens - this.generated.length;
  }

  /** Starts a pick's timing; `first`: the prompt's first output. */
  private stepStarted(): { now: number; first: boolean } {
    const now = performance.now();
    const first = this.firstLogitsAt === undefined;
    if (first) {
      this.firstLogitsAt = now;
      this.timings.prefillMs = now - this.startedAt;
    } else {
      this.timings.decodeMs = now - this.firstLogitsAt!;
      this.timings.decodeTokens++;
    }
    return { now, first };
  }

  private emitPick(picked: SampledToken, now: number): JobEvent[] {
    this.constraint?.accept(picked.token);
    this.generated.push(picked.token);
    const step = this.stop.push(picked.token, this.decoder.push(picked.token));
    // A finished JSON document allows nothing but an end token: stop here rather than spend a step on it.
    // (Completed exactly at the token budget, it still ended as it should: "stop", not "length".)
    const documentDone = (!step.stop || step.stop === "max-tokens") && this.constraint?.isComplete() === true;
    const full = !step.stop && !documentDone && this.entry.cache.length + 1 > this.entry.cache.contextLimit;
    const tail = step.stop === "max-tokens" || full || documentDone ? this.stop.flush() + this.decoder.flush() : "";
    this.timings.sampleMs += performance.now() - now;
    const events: JobEvent[] = [{
      kind: "token", id: this.job.id, token: picked.token, text: step.emit + tail,
      ...(picked.logprob !== undefined ? { logprob: picked.logprob, bytes: [...this.tokenizer.tokenPieceBytes(picked.token)] } : {}),
      ...(picked.topLogprobs ? { topLogprobs: picked.topLogprobs.map((t) => this.alternative(t.token, t.logprob)) } : {}),
    }];
    if (step.stop || full || documentDone) {
      const reason: FinishReason = documentDone || (step.stop && step.stop !== "max-tokens") ? "stop" : step.stop === "max-tokens" ? "length" : "context-full";
      events.push(this.done(reason, step.stopToken, step.stopString));
    } else {
      this.pending = Int32Array.of(picked.token);
    }
    return events;
  }

  done(reason: FinishReason, stopToken?: number, stopString?: string): JobEvent {
    this.pending = new Int32Array(0);
    return {
      kind: "done", id: this.job.id, finishReason: reason, promptTokens: this.prompt.length,
      completionTokens: this.generated.length, cachedTokens: this.cachedTokens, timings: this.timings,
      ...(stopToken !== undefined ? { stopToken } : {}), ...(stopString !== undefined ? { stopString } : {}),
    };
  }

  get finished(): boolean {
    return this.pending.length === 0 && this.readyLogits === undefined;
  }

  private alternative(token: number, logprob: number): TokenAlternative {
    const bytes = this.tokenizer.tokenPieceBytes(token);
    return { token, logprob, bytes: [...bytes], text: utf8.decode(bytes) };
  }
}
