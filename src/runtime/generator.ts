// Text generation for one sequence: the prompt goes through the model in
// batched chunks (matrix-matrix products, never a token at a time), then one
// token per step is sampled, checked against the stop rules and streamed as
// text as soon as it decodes. The KV cache starts empty for every request.
import type { GGUFFile } from "../gguf/reader.ts";
import { openGGUF } from "../gguf/reader.ts";
import { Model } from "../model/model.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { PsionicError, refuse } from "../util/errors.ts";
import type { Activation, Backend, KVPrecision } from "./backend.ts";
import { LOGITS, pickAnswered, RowReader, samplerNeed, type RowPick } from "./readback.ts";
import { Sampler, type SamplerOptions } from "./sampler.ts";
import { StopChecker, type StopReason } from "./stop.ts";

/** A model ready to generate: its file, tokenizer and weights on a backend. */
export interface LoadedModel {
  path: string;
  file: GGUFFile;
  tokenizer: Tokenizer;
  model: Model;
  /** Milliseconds from opening the file to weights bound on the backend. */
  loadMs: number;
}

export interface LoadModelOptions {
  backend: Backend;
  /** -c: positions the KV cache holds (default: the model's training context). */
  contextLimit?: number;
  kvPrecision?: KVPrecision;
  /** -ngl: the first `layers` layers on `backend`, the rest on `rest` (offloadFor builds it). */
  offload?: { layers: number; rest: Backend };
}

/** Maps the GGUF, builds its tokenizer and binds its weights; refusals name the file and the key or tensor. */
export function loadModel(path: string, options: LoadModelOptions): LoadedModel {
  const start = performance.now();
  try {
    const file = openGGUF(path);
    const tokenizer = Tokenizer.fromMetadata(file.meta);
    const model = Model.load(file, options.backend, { contextLimit: options.contextLimit, kvPrecision: options.kvPrecision, offload: options.offload });
    return { path, file, tokenizer, model, loadMs: performance.now() - start };
  } catch (error) {
    if (error instanceof PsionicError && !error.message.startsWith(path)) throw new PsionicError(error.code, `${path}: ${error.message}`);
    throw error;
  }
}

export const DEFAULT_BATCH_SIZE = 512;

export interface GenerationRequest {
  /** Text (tokenized with BOS/EOS as the vocabulary asks) or token ids used as they are. */
  prompt: string | readonly number[];
  /** Most tokens to generate; -1: until an end-of-generation token, a stop string or the context end. */
  maxTokens: number;
  sampling?: Omit<SamplerOptions, "vocabSize" | "contextSize">;
  stopStrings?: readonly string[];
  /** Never stop at (or sample) an end-of-generation token, as llama.cpp's --ignore-eos. */
  ignoreEos?: boolean;
  /** Prompt tokens per forward pass (default 512). */
  batchSize?: number;
}

export type FinishReason = StopReason | "context-full";

export interface GenerationTimings {
  promptTokens: number;
  /** Forward passes over the prompt plus reading back the last logits. */
  prefillMs: number;
  /** Single-token forward passes after the prompt (the last sampled token is never run). */
  decodeTokens: number;
  decodeMs: number;
  /** Sampling, detokenizing and stop checks, over all steps. */
  sampleMs: number;
}

export type GenerationEvent =
  | { kind: "text"; text: string }
  | { kind: "done"; reason: FinishReason; tokens: number[]; seed: number; timings: GenerationTimings };

/**
 * Runs `tokens` through the model from the cache's current end in chunks of
 * `batchSize` and returns the logits of the last token (as llama.cpp's
 * batches, only the final row of the final chunk produces logits we read).
 */
export function prefill(model: Model, tokens: Int32Array, batchSize: number): Activation {
  checkBatchSize(batchSize);
  if (tokens.length === 0) refuse("generate.empty-prompt", "the prompt has no tokens");
  let logits: Activation | undefined;
  for (let start = 0; start < tokens.length; start += batchSize) {
    logits = model.forward(tokens.subarray(start, Math.min(tokens.length, start + batchSize)));
  }
  return logits!;
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) refuse("generate.bad-batch-size", `batch size must be a positive integer, got ${batchSize}`);
}

/** The request's prompt as token ids, refused with the numbers when it cannot fit the context. */
export function promptTokens(loaded: LoadedModel, prompt: GenerationRequest["prompt"]): Int32Array {
  const ids = typeof prompt === "string" ? loaded.tokenizer.encode(prompt) : [...prompt];
  const { contextLimit } = loaded.model.cache;
  if (ids.length === 0) refuse("generate.empty-prompt", "the prompt tokenizes to no tokens (and the vocabulary adds no BOS); give some text");
  if (ids.length > contextLimit) {
    refuse("generate.prompt-too-long", `the prompt is ${ids.length} tokens but the context holds ${contextLimit} (-c ${contextLimit}); raise -c or shorten the prompt`);
  }
  const vocab = loaded.model.vocabSize;
  ids.forEach((id, i) => {
    if (!(Number.isInteger(id) && id >= 0 && id < vocab)) refuse("generate.bad-token", `prompt token ${i} (id ${id}) is outside the model's vocabulary of ${vocab}`);
  });
  return Int32Array.from(ids);
}

/**
 * Generates from a fresh cache, yielding text pieces as soon as they are safe
 * to show (whole characters, not part of a possible stop string) and then one
 * "done" event with the tokens, the reason and the timings.
 */
export async function* generate(loaded: LoadedModel, request: GenerationRequest): AsyncGenerator<GenerationEvent> {
  const { model, tokenizer } = loaded;
  const { cache, backend } = model;
  const batchSize = request.batchSize ?? DEFAULT_BATCH_SIZE;
  checkBatchSize(batchSize);
  const maxTokens = request.maxTokens;
  if (!Number.isInteger(maxTokens) || maxTokens < -1) refuse("generate.bad-max-tokens", `the number of tokens to generate must be -1 (no limit) or a non-negative integer, got ${maxTokens}`);
  const prompt = promptTokens(loaded, request.prompt);
  const sampler = new Sampler({ ...request.sampling, vocabSize: model.vocabSize, contextSize: cache.contextLimit });
  const eog = [...tokenizer.eogIds].filter((id) => id < model.vocabSize);
  const stop = new StopChecker({
    stopStrings: request.stopStrings ?? [],
    stopTokens: request.ignoreEos ? [] : eog,
    maxTokens: maxTokens > 0 ? maxTokens : undefined,
  });
  const decoder = tokenizer.createDecoder();
  const timings: GenerationTimings = { promptTokens: prompt.length, prefillMs: 0, decodeTokens: 0, decodeMs: 0, sampleMs: 0 };
  const tokens: number[] = [];
  const done = (reason: FinishReason): GenerationEvent => ({ kind: "done", reason, tokens, seed: sampler.seed, timings });

  for (const id of prompt) sampler.accept(id);
  cache.truncate(0);
  // What each step reads back (readback.ts): on a backend that answers where the logits are, plain
  // greedy one id and sampling from a small top-k its k best (which grows with the penalty window,
  // so asked each step); --ignore-eos edits the logits, so them.
  // The logits are sampled before the next forward pass, so one reader's buffers serve every step.
  const rows = new RowReader();
  const evaluate = (out: Activation): RowPick => rows.read(backend, out, [request.ignoreEos ? LOGITS : samplerNeed(sampler)])[0]!;
  let start = performance.now();
  let next = evaluate(prefill(model, prompt, batchSize));
  timings.prefillMs = performance.now() - start;
  if (maxTokens === 0) {
    yield done("max-tokens");
    return;
  }

  for (;;) {
    start = performance.now();
    let token: number;
    if (next.kind !== "logits") {
      token = pickAnswered(sampler, next).token;
    } else {
      // llama.cpp's --ignore-eos: end-of-generation tokens get a -inf logit bias, so they are never drawn.
      if (request.ignoreEos) for (const id of eog) next.logits[id] = -Infinity;
      token = sampler.sample(next.logits).token;
    }
    tokens.push(token);
    const step = stop.push(token, decoder.push(token));
    const full = !step.stop && cache.length >= cache.contextLimit;
    // What the decoder still holds (a character cut by the token budget) is shown as U+FFFD, as llama.cpp prints it.
    const tail = step.stop === "max-tokens" ? decoder.flush() : full ? stop.flush() + decoder.flush() : "";
    timings.sampleMs += performance.now() - start;
    if (step.emit + tail) yield { kind: "text", text: step.emit + tail };
    if (step.stop || full) {
      yield done(step.stop ?? "context-full");
      return;
    }

    start = performance.now();
    next = evaluate(model.forward(Int32Array.of(token)));
    timings.decodeMs += performance.now() - start;
    timings.decodeTokens++;
  }
}

/** Tokens per second, 0 when nothing was timed. */
export const tokensPerSecond = (tokens: number, ms: number) => (ms > 0 ? (tokens * 1000) / ms : 0);

/** The timing summary llama.cpp prints after a generation, one line per phase. */
export function formatTimings(t: GenerationTimings, loadMs?: number): string {
  const line = (label: string, ms: number, tokens: number, unit: string) =>
    `${label.padStart(17)} = ${ms.toFixed(2).padStart(10)} ms / ${String(tokens).padStart(5)} ${unit} (${(tokens > 0 ? ms / tokens : 0).toFixed(2).padStart(8)} ms per token, ${tokensPerSecond(tokens, ms).toFixed(2).padStart(8)} tokens per second)`;
  const lines = [];
  if (loadMs !== undefined) lines.push(`${"load time".padStart(17)} = ${loadMs.toFixed(2).padStart(10)} ms`);
  lines.push(line("prompt eval time", t.prefillMs, t.promptTokens, "tokens"));
  lines.push(line("eval time", t.decodeMs, t.decodeTokens, "runs  "));
  lines.push(`${"sampling time".padStart(17)} = ${t.sampleMs.toFixed(2).padStart(10)} ms`);
  return lines.join("\n");
}
