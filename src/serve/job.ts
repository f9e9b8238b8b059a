// From a validated request to an engine job and back: sampling fields, stop
// strings and output constraints become a GenerateJob; the job's first event
// decides between a refusal (thrown as an ApiError before any byte is sent)
// and a running generation whose token events the routes shape into
// responses. Latency metrics are taken here, once for every endpoint.
import type { Engine, JobStream } from "../runtime/engine/engine.ts";
import type { GenerateJob, JobEvent, OutputConstraint, SamplingParams, ServedModel } from "../runtime/engine/protocol.ts";
import { compileJsonSchema } from "../runtime/constraint/json-schema.ts";
import { PsionicError } from "../util/errors.ts";
import { ApiError, fromEngine, reject } from "./errors.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { ResponseFormatInput, SamplingFields } from "./schemas.ts";

export type StartedEvent = Extract<JobEvent, { kind: "started" }>;
export type TokenEvent = Extract<JobEvent, { kind: "token" }>;
export type DoneEvent = Extract<JobEvent, { kind: "done" }>;

/** What every route needs from the server around it. */
export interface ServeContext {
  engine: Engine;
  metrics: ServerMetrics;
  /** gpt-oss reasoning effort when a request names none (--reasoning-budget). */
  reasoningEffort: "low" | "medium" | "high";
  maxBodyBytes: number;
  nextId(prefix: string): string;
}

/** The served model a request names, or 404 listing the ones there are. */
export function findModel(engine: Engine, name: string): ServedModel {
  const model = engine.models.find((m) => m.id === name);
  if (!model) {
    reject(404, "model_not_found", `model "${name}" is not served here; available: ${engine.models.map((m) => m.id).join(", ")}`, "model");
  }
  return model;
}

/** null (sent by many clients for "not set") becomes undefined. */
const given = <T>(value: T | null | undefined): T | undefined => (value === null ? undefined : value);

export function samplingFrom(fields: SamplingFields): SamplingParams {
  return {
    temperature: given(fields.temperature),
    topP: given(fields.top_p),
    topK: given(fields.top_k),
    minP: given(fields.min_p),
    typicalP: given(fields.typical_p),
    repeatPenalty: given(fields.repeat_penalty),
    penaltyLastN: given(fields.repeat_last_n),
    presencePenalty: given(fields.presence_penalty),
    frequencyPenalty: given(fields.frequency_penalty),
    seed: given(fields.seed),
  };
}

export function stopStrings(stop: string | string[] | null | undefined): string[] {
  const list = stop === null || stop === undefined ? [] : typeof stop === "string" ? [stop] : stop;
  return list.filter((s) => s.length > 0);
}

/** A JSON schema the constraint compiler accepts, or a 400 naming the field (checked here so the refusal can name it). */
export function checkedSchema(schema: unknown, param: string): OutputConstraint {
  try {
    compileJsonSchema(schema);
  } catch (error) {
    if (error instanceof PsionicError) reject(400, "invalid_json_schema", `${param}: ${error.message}`, param);
    throw error;
  }
  return { kind: "json-schema", schema };
}

/** response_format as an engine output constraint (text: none). */
export function constraintFor(format: ResponseFormatInput): OutputConstraint | undefined {
  if (!format || format.type === "text") return undefined;
  if (format.type === "json_object") return { kind: "json-object" };
  const schema = format.json_schema.schema;
  return schema ? checkedSchema(schema, "response_format.json_schema.schema") : { kind: "json-object" };
}

/** Tokens to generate when the request sets no limit: up to the context's end. */
export function tokenBudget(model: ServedModel, requested: number | null | undefined): number {
  return given(requested) ?? model.context;
}

/** Response headers every generation carries: which backend and model answered, and how the prefix cache served the prompt. */
export function generationHeaders(model: ServedModel, started: StartedEvent): Record<string, string> {
  return {
    "x-psionic-backend": model.backend,
    "x-psionic-model-digest": model.digest,
    "x-psionic-prefix-cache": started.prefixCache,
    "x-psionic-cached-tokens": String(started.cachedTokens),
  };
}

/** A generation past its first event: the job got a slot and its prompt was accepted. */
export class RunningJob {
  private lastTokenAt: number | undefined;

  constructor(
    readonly started: StartedEvent,
    private readonly iterator: AsyncIterator<JobEvent>,
    private readonly stream: JobStream,
    private readonly metrics: ServerMetrics,
    private readonly arrivedAt: number,
  ) {}

  /** Stops generation within one engine step and frees the slot. */
  cancel(): void {
    this.stream.cancel();
  }

  /** Token events in order, then the done event; an engine error mid-way is thrown as an ApiError. */
  async *events(): AsyncGenerator<TokenEvent | DoneEvent> {
    for (;;) {
      const next = await this.iterator.next();
      if (next.done) throw new ApiError(500, "engine_stream_ended", "the engine ended the job without a final event");
      const event = next.value;
      if (event.kind === "error") throw fromEngine(event.status, event.code, event.message);
      if (event.kind === "started") continue;
      if (event.kind === "token") {
        const now = performance.now();
        if (this.lastTokenAt === undefined) this.metrics.timeToFirstToken.observe((now - this.arrivedAt) / 1000);
        else this.metrics.interTokenLatency.observe((now - this.lastTokenAt) / 1000);
        this.lastTokenAt = now;
      }
      yield event;
      if (event.kind === "done") return;
    }
  }
}

/** Submits a job and waits for its first event: a refusal throws (404, 400 with the numbers, 429), a start returns the running job. */
export async function startJob(context: ServeContext, job: GenerateJob, arrivedAt: number): Promise<RunningJob> {
  const stream = context.engine.generate(job);
  const iterator = stream[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) throw new ApiError(500, "engine_stream_ended", "the engine ended the job before starting it");
  const event = first.value;
  if (event.kind === "error") throw fromEngine(event.status, event.code, event.message);
  if (event.kind !== "started") {
    stream.cancel();
    throw new ApiError(500, "engine_protocol", `the engine's first event was "${event.kind}", not "started"`);
  }
  return new RunningJob(event, iterator, stream, context.metrics, arrivedAt);
}

/** Everything a non-streaming response needs from a finished job. */
export interface CollectedJob {
  text: string;
  tokens: TokenEvent[];
  done: DoneEvent;
}

/** Runs a job to its end; a client that goes away (signal) cancels it. */
export async function collectJob(running: RunningJob, signal: AbortSignal | undefined): Promise<CollectedJob> {
  const cancel = () => running.cancel();
  signal?.addEventListener("abort", cancel, { once: true });
  try {
    const tokens: TokenEvent[] = [];
    let text = "";
    for await (const event of running.events()) {
      if (event.kind === "done") return { text, tokens, done: event };
      tokens.push(event);
      text += event.text;
    }
    throw new ApiError(500, "engine_stream_ended", "the engine ended the job without a final event");
  } finally {
    signal?.removeEventListener("abort", cancel);
  }
}

/** The engine's finish reasons as OpenAI's. */
export function finishReason(done: DoneEvent): "stop" | "length" {
  return done.finishReason === "length" || done.finishReason === "context-full" ? "length" : "stop";
}

/** Timing headers of a finished (non-streaming) generation. */
export function timingHeaders(done: DoneEvent): Record<string, string> {
  return {
    "x-psionic-prompt-ms": done.timings.prefillMs.toFixed(2),
    "x-psionic-decode-ms": done.timings.decodeMs.toFixed(2),
  };
}

export function usageOf(done: DoneEvent) {
  return {
    prompt_tokens: done.promptTokens,
    completion_tokens: done.completionTokens,
    total_tokens: done.promptTokens + done.completionTokens,
    prompt_tokens_details: { cached_tokens: done.cachedTokens },
  };
}

/** A fresh GenerateJob id. */
export function newJob(context: ServeContext, fields: Omit<GenerateJob, "id">): GenerateJob {
  return { id: context.nextId("job"), ...fields };
}
