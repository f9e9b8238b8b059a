// What the HTTP thread and the engine worker say to each other (DESIGN.md
// principle 3: no forward pass on the HTTP thread). Everything here is plain
// data, so it crosses `postMessage` as it is.
import type { BackendName } from "../backends.ts";
import type { GenerationTimings } from "../generator.ts";

/** A model as /v1/models lists it, plus what the HTTP layer needs to render prompts for it. */
export interface ServedModel {
  /** The name requests use in `model` (the file name without .gguf unless given). */
  id: string;
  path: string;
  /** general.architecture: "llama", "qwen2", "qwen3", "gpt-oss". */
  architecture: string;
  /** Most common weight type of the 2-D matrices, e.g. "Q8_0". */
  quant: string;
  /** KV positions one sequence may use (-c). */
  context: number;
  backend: string;
  /** SHA-256 of the file's header and tensor-info bytes (a cheap identity of the model). */
  digest: string;
  /** Unix seconds the model was loaded. */
  created: number;
  /** tokenizer.chat_template, when the file has one. */
  chatTemplate?: string;
  /** Text of the BOS and EOS tokens, for chat templates that print them. */
  bosText?: string;
  eosText?: string;
  vocabSize: number;
  embeddingLength: number;
}

export interface SamplingParams {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  typicalP?: number;
  repeatPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  penaltyLastN?: number;
  seed?: number;
}

/** Output constraint: the generated text must parse as JSON (and validate against `schema`). */
export type OutputConstraint = { kind: "json-object" } | { kind: "json-schema"; schema: unknown };

export interface GenerateJob {
  /** Chosen by the HTTP layer, unique among live jobs. */
  id: string;
  model: string;
  /** Text is tokenized with the vocabulary's BOS rule and control tokens recognised (rendered chat prompts contain them). */
  prompt: { text: string } | { tokens: number[] };
  /** Most tokens to generate (at least 1); generation also stops at the context end. */
  maxTokens: number;
  sampling: SamplingParams;
  stop: string[];
  /** Report each token's logprob, and this many alternatives (0..20). */
  logprobs: boolean;
  topLogprobs: number;
  constraint?: OutputConstraint;
  /** Extra token ids that end generation (e.g. harmony's <|call|>), besides the vocabulary's end-of-generation tokens. */
  stopTokens?: number[];
}

export interface EmbedJob {
  id: string;
  model: string;
  inputs: ({ text: string } | { tokens: number[] })[];
}

export type PrefixCacheOutcome = "hit" | "partial" | "miss";

export type FinishReason = "stop" | "length" | "context-full" | "cancelled";

export interface TokenAlternative {
  token: number;
  text: string;
  bytes: number[];
  logprob: number;
}

export type JobEvent =
  /** The job got a sequence slot; its prompt is being (or was) evaluated. */
  | { kind: "started"; id: string; promptTokens: number; cachedTokens: number; prefixCache: PrefixCacheOutcome; queuedMs: number }
  /** One generated token; `text` is what is safe to show now (whole characters, stop strings held back), possibly empty. */
  | { kind: "token"; id: string; token: number; text: string; logprob?: number; bytes?: number[]; topLogprobs?: TokenAlternative[] }
  | { kind: "done"; id: string; finishReason: FinishReason; promptTokens: number; completionTokens: number; cachedTokens: number; timings: GenerationTimings; stopToken?: number; stopString?: string }
  | { kind: "error"; id: string; status: number; code: string; message: string };

export interface EmbedResult {
  id: string;
  /** One normalised vector per input, in order. */
  vectors: number[][];
  promptTokens: number;
}

export interface EngineStats {
  queued: number;
  active: number;
  /** KV positions in use / available over all cached sequences. */
  kvUsedTokens: number;
  kvCapacityTokens: number;
  prefixCache: { hits: number; partial: number; misses: number; reusedTokens: number };
  promptTokens: number;
  completionTokens: number;
}

/** What the worker needs to load its models (EngineOptions without callbacks). */
export interface WorkerInit {
  models: { path: string; id?: string }[];
  backend: BackendName;
  threads?: number;
  contextLimit?: number;
  parallel: number;
  kvPrecision?: "f16" | "f32";
  /** -ngl (GPU backends): the first N layers on the GPU, the rest on the CPU. */
  gpuLayers?: number;
  prefixCacheBytes: number;
  maxQueue: number;
}

/** HTTP thread -> worker. */
export type EngineRequest =
  | { kind: "init"; init: WorkerInit }
  | { kind: "generate"; job: GenerateJob }
  | { kind: "embed"; job: EmbedJob }
  | { kind: "cancel"; id: string }
  | { kind: "stats"; requestId: number }
  | { kind: "shutdown" };

/** Worker -> HTTP thread. */
export type EngineMessage =
  | { kind: "ready"; models: ServedModel[] }
  | { kind: "load-failed"; code: string; message: string }
  | { kind: "event"; event: JobEvent }
  | { kind: "embedded"; result: EmbedResult }
  | { kind: "embed-failed"; id: string; status: number; code: string; message: string }
  | { kind: "stats"; requestId: number; stats: EngineStats }
  | { kind: "progress"; text: string };
