// Continuous batching for one model. Each step runs one forward pass over
// every active sequence: one token for each sequence that is decoding plus a
// chunk of the prompt of each that is still being evaluated, so a new
// request's prefill shares steps with running streams instead of stalling
// them. Requests wait in a bounded queue for one of `parallel` slots; new ones
// join between steps, and a cancelled one leaves before the next.
import { ARGMAX, RowReader, type RowPick } from "../readback.ts";
import type { LoadedModel } from "../generator.ts";
import { PsionicError } from "../../util/errors.ts";
import { PrefixCache } from "./prefix-cache.ts";
import type { EmbedJob, EmbedResult, GenerateJob, JobEvent, ServedModel } from "./protocol.ts";
import { Sequence } from "./sequence.ts";

export interface SchedulerOptions {
  parallel: number;
  maxQueue: number;
  /** Cache entries the prefix-cache byte budget allows (raised to `parallel` if lower). */
  cacheEntries: number;
  /** Tokens per forward pass, all sequences together. */
  stepTokens?: number;
  /** Most prompt tokens one sequence evaluates in a step while others are decoding. */
  prefillChunk?: number;
}

interface Queued {
  job: GenerateJob;
  prompt: Int32Array;
  queuedAt: number;
}

/** A refusal of a job, with its HTTP status. */
function jobError(id: string, status: number, code: string, message: string): JobEvent {
  return { kind: "error", id, status, code, message };
}

export class Scheduler {
  private readonly queue: Queued[] = [];
  private readonly active: Sequence[] = [];
  private readonly cancelled = new Set<string>();
  // Each step's rows, picked from within the step (a prompt cache entry keeps its own copy of logits).
  private readonly rows = new RowReader();
  readonly prefixCache: PrefixCache;
  private readonly stepTokens: number;
  private readonly prefillChunk: number;
  promptTokens = 0;
  completionTokens = 0;

  constructor(
    readonly info: ServedModel,
    private readonly loaded: LoadedModel,
    private readonly options: SchedulerOptions,
    private readonly emit: (e: JobEvent) => void,
  ) {
    const model = loaded.model;
    this.prefixCache = new PrefixCache(() => model.newCache(), Math.max(options.parallel, options.cacheEntries));
    this.stepTokens = options.stepTokens ?? 512;
    this.prefillChunk = options.prefillChunk ?? 128;
  }

  get queued(): number {
    return this.queue.length;
  }

  get running(): number {
    return this.active.length;
  }

  hasWork(): boolean {
    return this.active.length > 0 || this.queue.length > 0;
  }

  /** Tokenizes and checks a job, then queues it; a refusal is emitted as its only event. */
  submit(job: GenerateJob): void {
    try {
      const { tokenizer, model } = this.loaded;
      const ids = "text" in job.prompt ? tokenizer.encode(job.prompt.text, { parseSpecial: true }) : job.prompt.tokens;
      const limit = model.cache.contextLimit;
      if (ids.length === 0) return this.emit(jobError(job.id, 400, "prompt-empty", "the prompt has no tokens"));
      if (ids.length >= limit) {
        return this.emit(jobError(job.id, 400, "context_length_exceeded", `the prompt is ${ids.length} tokens but the context holds ${limit} (-c ${limit}), leaving no room to generate; shorten the prompt or raise -c`));
      }
      const bad = ids.findIndex((t) => !(Number.isInteger(t) && t >= 0 && t < model.vocabSize));
      if (bad >= 0) return this.emit(jobError(job.id, 400, "invalid-token", `prompt token ${bad} (id ${ids[bad]}) is outside the vocabulary of ${model.vocabSize}`));
      if (!(Number.isInteger(job.maxTokens) && job.maxTokens >= 1)) return this.emit(jobError(job.id, 400, "invalid-max-tokens", `max_tokens must be a positive integer, got ${job.maxTokens}`));
      // Jobs that will get a free slot at the next step do not count as waiting.
      const freeSlots = Math.max(0, this.options.parallel - this.active.length);
      if (this.queue.length >= this.options.maxQueue + freeSlots) {
        return this.emit(jobError(job.id, 429, "queue-full", `${this.queue.length} requests are already waiting for ${this.options.parallel} slots; retry shortly`));
      }
      this.queue.push({ job, prompt: Int32Array.from(ids), queuedAt: performance.now() });
    } catch (error) {
      this.emit(refusalEvent(job.id, error));
    }
  }

  cancel(id: string): void {
    const q = this.queue.findIndex((x) => x.job.id === id);
    if (q >= 0) {
      this.queue.splice(q, 1);
      return;
    }
    if (this.active.some((s) => s.job.id === id)) this.cancelled.add(id);
  }

  /** Admits waiting jobs, runs one batched forward pass and samples; emits every resulting event. */
  step(): void {
    this.dropCancelled();
    this.admit();
    const ready = this.active.filter((s) => s.readyLogits);
    for (const s of ready) {
      const logits = s.readyLogits!;
      s.readyLogits = undefined;
      this.sampleAndEmit(s, logits);
    }
    const batch = this.buildBatch();
    if (batch.length === 0) return;
    const { model } = this.loaded;
    const segments = batch.map(({ seq, count }) => ({
      cache: seq.entry.cache,
      tokens: seq.pending.subarray(0, count),
      // Logits only where the sequence has evaluated everything it had.
      outputRows: count === seq.pending.length ? [count - 1] : [],
    }));
    // A step made only of prompt chunks still needs one output row for the forward pass.
    const anyOutput = segments.some((s) => s.outputRows.length > 0);
    if (!anyOutput) segments[segments.length - 1]!.outputRows = [segments[segments.length - 1]!.tokens.length - 1];
    // Each output row's pick needs its argmax, its top-k or its logits (readback.ts);
    // a row only there to give a prompt-only step an output needs nothing, so the argmax.
    const wanted = batch.flatMap(({ seq, count }, i) => (segments[i]!.outputRows.length > 0 ? [count === seq.pending.length ? seq : null] : []));
    let picks: RowPick[];
    try {
      const out = model.forwardBatch(segments);
      picks = this.rows.read(model.backend, out, wanted.map((seq) => seq?.need ?? ARGMAX));
    } catch (error) {
      for (const { seq } of batch) this.finish(seq, refusalEvent(seq.job.id, error));
      return;
    }
    for (const { seq, count } of batch) seq.evaluated(count);
    wanted.forEach((seq, row) => {
      if (seq) this.emitEvents(seq, () => seq.pick(picks[row]!));
    });
  }

  /** Mean-pooled, L2-normalised final hidden states, one input at a time on a scratch cache. */
  embed(job: EmbedJob): EmbedResult {
    const { tokenizer, model } = this.loaded;
    const cache = model.newCache();
    const vectors: number[][] = [];
    let promptTokens = 0;
    for (const [i, input] of job.inputs.entries()) {
      const ids = "text" in input ? tokenizer.encode(input.text) : input.tokens;
      if (ids.length === 0) throw new PsionicError("embed.empty-input", `input ${i} has no tokens`);
      if (ids.length > cache.contextLimit) throw new PsionicError("embed.too-long", `input ${i} is ${ids.length} tokens but the context holds ${cache.contextLimit} (-c)`);
      cache.truncate(0);
      const tokens = Int32Array.from(ids);
      const width = model.hparams.embeddingLength;
      const sum = new Float64Array(width);
      for (let start = 0; start < tokens.length; start += this.stepTokens) {
        const chunk = tokens.subarray(start, start + this.stepTokens);
        const hidden = model.backend.download(model.forwardBatch([{ cache, tokens: chunk, outputRows: Array.from(chunk, (_, r) => r) }], "hidden"));
        for (let r = 0; r < chunk.length; r++) for (let c = 0; c < width; c++) sum[c]! += hidden[r * width + c]!;
      }
      let norm = 0;
      for (let c = 0; c < width; c++) norm += (sum[c]! / tokens.length) ** 2;
      norm = Math.sqrt(norm) || 1;
      vectors.push(Array.from(sum, (v) => v / tokens.length / norm));
      promptTokens += tokens.length;
    }
    this.promptTokens += promptTokens;
    return { id: job.id, vectors, promptTokens };
  }

  /** Ends every job with an internal error (after a failed step). */
  failAll(error: unknown): void {
    for (const q of this.queue.splice(0)) this.emit(refusalEvent(q.job.id, error));
    for (const s of [...this.active]) this.finish(s, refusalEvent(s.job.id, error));
  }

  /** Frees every slot and forgets every queued job (shutdown). */
  abortAll(): void {
    for (const q of this.queue.splice(0)) this.emit(jobError(q.job.id, 503, "shutting-down", "the server is shutting down"));
    for (const s of [...this.active]) this.finish(s, s.done("cancelled"));
  }

  private admit(): void {
    while (this.queue.length > 0 && this.active.length < this.options.parallel) {
      const next = this.queue[0]!;
      const got = this.prefixCache.acquire(next.prompt);
      if (!got) return;
      this.queue.shift();
      const { tokenizer, model } = this.loaded;
      let seq: Sequence;
      try {
        seq = new Sequence({
          job: next.job, prompt: next.prompt, entry: got.entry, reused: got.reused, outcome: got.outcome,
          cachedLogits: got.logits, queuedAt: next.queuedAt, tokenizer, vocabSize: model.vocabSize,
          renderSpecial: this.info.architecture === "gpt-oss",
        }, got.reused);
      } catch (error) {
        this.prefixCache.release(got.entry);
        this.emit(refusalEvent(next.job.id, error));
        continue;
      }
      this.active.push(seq);
      this.promptTokens += next.prompt.length;
      this.emit(seq.startedEvent(performance.now() - next.queuedAt, got.outcome));
    }
  }

  /** Decoders first (one token each), then prompt chunks in the tokens left. */
  private buildBatch(): { seq: Sequence; count: number }[] {
    const batch: { seq: Sequence; count: number }[] = [];
    let budget = this.stepTokens;
    const decoding = this.active.filter((s) => s.generated.length > 0 && s.pending.length > 0);
    for (const seq of decoding) {
      batch.push({ seq, count: 1 });
      budget--;
    }
    const chunk = decoding.length > 0 ? this.prefillChunk : this.stepTokens;
    for (const seq of this.active) {
      if (budget <= 0) break;
      if (seq.generated.length > 0 || seq.pending.length === 0) continue;
      const count = Math.min(seq.pending.length, chunk, budget);
      batch.push({ seq, count });
      budget -= count;
    }
    return batch;
  }

  private sampleAndEmit(seq: Sequence, logits: Float32Array): void {
    this.emitEvents(seq, () => seq.sample(logits));
  }

  /** Sends what a sequence's pick produced (a token, maybe "done"); a refused pick ends the sequence. */
  private emitEvents(seq: Sequence, pick: () => JobEvent[]): void {
    let events: JobEvent[];
    try {
      events = pick();
    } catch (error) {
      this.finish(seq, refusalEvent(seq.job.id, error));
      return;
    }
    this.completionTokens++;
    for (const e of events) {
      if (e.kind === "done") this.finish(seq, e);
      else this.emit(e);
    }
  }

  private dropCancelled(): void {
    if (this.cancelled.size === 0) return;
    for (const seq of [...this.active]) if (this.cancelled.has(seq.job.id)) this.finish(seq, seq.done("cancelled"));
    this.cancelled.clear();
  }

  private finish(seq: Sequence, last: JobEvent): void {
    const i = this.active.indexOf(seq);
    if (i < 0) return;
    this.active.splice(i, 1);
    this.prefixCache.release(seq.entry);
    this.emit(last);
  }
}

/** A thrown error as the job's error event: PsionicErrors are the client's fault (400), anything else the server's. */
export function refusalEvent(id: string, error: unknown): JobEvent {
  if (error instanceof PsionicError) return jobError(id, 400, error.code, error.message);
  return jobError(id, 500, "internal", error instanceof Error ? error.message : String(error));
}
