// The HTTP thread's handle on the engine worker: starts it, routes its
// events to the job streams that wait for them, and turns a stream's cancel
// (a client that went away) into a message the scheduler acts on next step.
import { embeddedEngineWorker } from "../../util/embedded.ts";
import { PsionicError } from "../../util/errors.ts";
import type { Engine, EngineOptions, JobStream } from "./engine.ts";
import { EngineError } from "./engine.ts";
import type { EmbedJob, EmbedResult, EngineMessage, EngineRequest, EngineStats, GenerateJob, JobEvent, ServedModel } from "./protocol.ts";

const DEFAULTS = { parallel: 4, maxQueue: 64, prefixCacheBytes: 256 * 1024 * 1024 };

/** Events of one job, buffered until its reader asks for them. */
class EventQueue {
  private readonly events: JobEvent[] = [];
  private waiter?: () => void;
  ended = false;

  push(e: JobEvent): void {
    this.events.push(e);
    if (e.kind === "done" || e.kind === "error") this.ended = true;
    this.waiter?.();
    this.waiter = undefined;
  }

  async *drain(): AsyncGenerator<JobEvent> {
    for (;;) {
      const next = this.events.shift();
      if (next) {
        yield next;
        if (next.kind === "done" || next.kind === "error") return;
        continue;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

class WorkerEngine implements Engine {
  models: ServedModel[] = [];
  private readonly jobs = new Map<string, EventQueue>();
  private readonly embeds = new Map<string, { resolve: (r: EmbedResult) => void; reject: (e: unknown) => void }>();
  private readonly statsWaiters = new Map<number, (s: EngineStats) => void>();
  private nextStats = 0;
  private closed = false;

  constructor(private readonly worker: Worker, private readonly onProgress?: (text: string) => void) {}

  send(request: EngineRequest): void {
    this.worker.postMessage(request);
  }

  handle(m: EngineMessage): void {
    switch (m.kind) {
      case "event": {
        const q = this.jobs.get(m.event.id);
        if (!q) return;
        q.push(m.event);
        if (q.ended) this.jobs.delete(m.event.id);
        return;
      }
      case "embedded": {
        this.embeds.get(m.result.id)?.resolve(m.result);
        this.embeds.delete(m.result.id);
        return;
      }
      case "embed-failed": {
        this.embeds.get(m.id)?.reject(new EngineError(m.status, m.code, m.message));
        this.embeds.delete(m.id);
        return;
      }
      case "stats": {
        this.statsWaiters.get(m.requestId)?.(m.stats);
        this.statsWaiters.delete(m.requestId);
        return;
      }
      case "progress":
        this.onProgress?.(m.text);
        return;
      default:
        return;
    }
  }

  generate(job: GenerateJob): JobStream {
    if (this.closed) throw new EngineError(503, "shutting-down", "the server is shutting down");
    if (this.jobs.has(job.id)) throw new EngineError(500, "duplicate-job", `job id ${job.id} is already running`);
    const queue = new EventQueue();
    this.jobs.set(job.id, queue);
    this.send({ kind: "generate", job });
    return {
      [Symbol.asyncIterator]: () => queue.drain(),
      cancel: () => {
        if (!queue.ended) this.send({ kind: "cancel", id: job.id });
      },
    };
  }

  embed(job: EmbedJob): Promise<EmbedResult> {
    if (this.closed) return Promise.reject(new EngineError(503, "shutting-down", "the server is shutting down"));
    return new Promise((resolve, reject) => {
      this.embeds.set(job.id, { resolve, reject });
      this.send({ kind: "embed", job });
    });
  }

  stats(): Promise<EngineStats> {
    const requestId = this.nextStats++;
    return new Promise((resolve) => {
      this.statsWaiters.set(requestId, resolve);
      this.send({ kind: "stats", requestId });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.worker.terminate();
    const gone = (id: string) => ({ kind: "error" as const, id, status: 503, code: "shutting-down", message: "the server is shutting down" });
    for (const [id, q] of this.jobs) q.push(gone(id));
    this.jobs.clear();
    for (const e of this.embeds.values()) e.reject(new EngineError(503, "shutting-down", "the server is shutting down"));
    this.embeds.clear();
  }
}

/** The worker script: beside this file when run from source; the compiled executable registers its own entry. */
function workerUrl(): string {
  return embeddedEngineWorker() ?? new URL("./engine-worker.ts", import.meta.url).href;
}

/** Spawns the engine worker and loads every model; rejects with the load error (a PsionicError). */
export function startEngine(options: EngineOptions): Promise<Engine> {
  if (options.models.length === 0) throw new PsionicError("serve.no-model", "no model given (-m FILE)");
  const worker = new Worker(workerUrl());
  const engine = new WorkerEngine(worker, options.onProgress);
  return new Promise((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<EngineMessage>) => {
      const m = event.data;
      if (m.kind === "ready") {
        engine.models = m.models;
        resolve(engine);
      } else if (m.kind === "load-failed") {
        worker.terminate();
        reject(new PsionicError(m.code, m.message));
      } else {
        engine.handle(m);
      }
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new PsionicError("serve.worker-failed", `the engine worker failed: ${event.message}`));
    };
    engine.send({
      kind: "init",
      init: {
        models: options.models, backend: options.backend, threads: options.threads, contextLimit: options.contextLimit,
        parallel: options.parallel ?? DEFAULTS.parallel, kvPrecision: options.kvPrecision, gpuLayers: options.gpuLayers,
        prefixCacheBytes: options.prefixCacheBytes ?? DEFAULTS.prefixCacheBytes, maxQueue: options.maxQueue ?? DEFAULTS.maxQueue,
      },
    });
  });
}
