// The engine as the HTTP thread sees it: models loaded in a Bun Worker,
// generation jobs streamed back as events. `startEngine` spawns the worker and
// resolves once every model is loaded (or rejects with the load error).
import type { BackendName } from "../backends.ts";
import type { KVPrecision } from "../backend.ts";
import type { EmbedJob, EmbedResult, EngineStats, GenerateJob, JobEvent, ServedModel } from "./protocol.ts";

export interface EngineModelSpec {
  path: string;
  /** Name requests use; default: the file name without `.gguf`. */
  id?: string;
}

export interface EngineOptions {
  models: EngineModelSpec[];
  backend: BackendName;
  /** CPU threads for the kernels (default: all cores). */
  threads?: number;
  /** -c: KV positions per sequence (default: the model's training context, capped at 4096). */
  contextLimit?: number;
  /** --parallel: sequences decoded together (default 4). */
  parallel?: number;
  kvPrecision?: KVPrecision;
  /** -ngl (GPU backends): the first N layers on the GPU, the rest on the CPU backend; default all. */
  gpuLayers?: number;
  /** Bytes of KV kept for finished sequences, for prefix reuse (default 256 MiB). */
  prefixCacheBytes?: number;
  /** Jobs waiting for a slot before new ones are refused with 429 (default 64). */
  maxQueue?: number;
  /** Model-load progress lines. */
  onProgress?: (text: string) => void;
}

/** A generation in flight: iterate its events; `cancel` stops it within one step and frees its slot. */
export interface JobStream extends AsyncIterable<JobEvent> {
  cancel(): void;
}

/** A refusal from the engine with the HTTP status it maps to. */
export class EngineError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export interface Engine {
  readonly models: readonly ServedModel[];
  /** Starts a job. Its first event is "started" or "error" (unknown model 404, prompt too long 400, queue full 429). */
  generate(job: GenerateJob): JobStream;
  /** Rejects with an EngineError. */
  embed(job: EmbedJob): Promise<EmbedResult>;
  stats(): Promise<EngineStats>;
  close(): Promise<void>;
}
