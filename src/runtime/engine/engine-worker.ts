// The engine's Bun Worker: loads the models, then runs each model's
// scheduler step after step while any has work, yielding to the event loop
// between steps so new jobs and cancellations arrive within one step.
import { createBackend, offloadFor, withUploadProgress } from "../backends.ts";
import { loadModel } from "../generator.ts";
import { PsionicError } from "../../util/errors.ts";
import type { EngineMessage, EngineRequest, EngineStats, JobEvent, WorkerInit } from "./protocol.ts";
import { Scheduler, refusalEvent } from "./scheduler.ts";
import { describeModel, kvBytesPerSequence } from "./served-model.ts";

declare const self: Worker;

const post = (m: EngineMessage) => self.postMessage(m);
const schedulers = new Map<string, Scheduler>();
let looping = false;

async function load(init: WorkerInit): Promise<void> {
  // A GPU backend reports the weight upload of each model, a line per tenth.
  let shown = -1;
  const report = (done: number, total: number) => {
    const tenth = Math.floor((10 * done) / Math.max(1, total));
    if (tenth !== shown && tenth <= 10) post({ kind: "progress", text: `uploading weights to the GPU: ${tenth * 10}%` });
    shown = tenth;
  };
  const backend = await createBackend(init.backend, withUploadProgress(init.backend, init.models[0]?.path ?? "", { threads: init.threads }, report));
  const offload = await offloadFor(init.backend, init.gpuLayers, init.threads);
  for (const spec of init.models) {
    post({ kind: "progress", text: `loading ${spec.path}` });
    const loaded = loadModel(spec.path, { backend, contextLimit: init.contextLimit, kvPrecision: init.kvPrecision, offload });
    const info = describeModel(loaded, spec.id, init.backend);
    if (schedulers.has(info.id)) throw new PsionicError("serve.duplicate-model", `two models are named "${info.id}"; give them distinct file names`);
    const cacheEntries = Math.floor(init.prefixCacheBytes / Math.max(1, kvBytesPerSequence(loaded)));
    const emit = (event: JobEvent) => post({ kind: "event", event });
    schedulers.set(info.id, new Scheduler(info, loaded, { parallel: init.parallel, maxQueue: init.maxQueue, cacheEntries }, emit));
    post({ kind: "progress", text: `loaded ${info.id} (${info.architecture}, ${info.quant}, context ${info.context}) in ${(loaded.loadMs / 1000).toFixed(1)} s` });
  }
  post({ kind: "ready", models: [...schedulers.values()].map((s) => s.info) });
}

function loop(): void {
  let busy = false;
  for (const s of schedulers.values()) {
    if (!s.hasWork()) continue;
    try {
      s.step();
    } catch (error) {
      // A bug, not a request's fault: fail this model's jobs rather than the whole worker.
      console.error(`psionic engine: step failed: ${error instanceof Error ? error.stack : error}`);
      s.failAll(error);
    }
    busy ||= s.hasWork();
  }
  if (busy) setImmediate(loop);
  else looping = false;
}

function kick(): void {
  if (looping) return;
  looping = true;
  setImmediate(loop);
}

function stats(): EngineStats {
  const out: EngineStats = { queued: 0, active: 0, kvUsedTokens: 0, kvCapacityTokens: 0, prefixCache: { hits: 0, partial: 0, misses: 0, reusedTokens: 0 }, promptTokens: 0, completionTokens: 0 };
  for (const s of schedulers.values()) {
    out.queued += s.queued;
    out.active += s.running;
    const kv = s.prefixCache.usage();
    out.kvUsedTokens += kv.used;
    out.kvCapacityTokens += kv.capacity;
    for (const k of ["hits", "partial", "misses", "reusedTokens"] as const) out.prefixCache[k] += s.prefixCache.stats[k];
    out.promptTokens += s.promptTokens;
    out.completionTokens += s.completionTokens;
  }
  return out;
}

self.onmessage = (message: MessageEvent<EngineRequest>) => {
  const request = message.data;
  switch (request.kind) {
    case "init":
      load(request.init).catch((error) => {
        const code = error instanceof PsionicError ? error.code : "internal";
        post({ kind: "load-failed", code, message: error instanceof Error ? error.message : String(error) });
      });
      return;
    case "generate": {
      const s = schedulers.get(request.job.model);
      if (!s) {
        post({ kind: "event", event: { kind: "error", id: request.job.id, status: 404, code: "model_not_found", message: `the model "${request.job.model}" is not served here; GET /v1/models lists ${[...schedulers.keys()].map((k) => `"${k}"`).join(", ")}` } });
        return;
      }
      s.submit(request.job);
      kick();
      return;
    }
    case "embed": {
      const s = schedulers.get(request.job.model);
      if (!s) {
        post({ kind: "embed-failed", id: request.job.id, status: 404, code: "model_not_found", message: `the model "${request.job.model}" is not served here` });
        return;
      }
      try {
        post({ kind: "embedded", result: s.embed(request.job) });
      } catch (error) {
        const e = refusalEvent(request.job.id, error) as Extract<JobEvent, { kind: "error" }>;
        post({ kind: "embed-failed", id: e.id, status: e.status, code: e.code, message: e.message });
      }
      return;
    }
    case "cancel":
      for (const s of schedulers.values()) s.cancel(request.id);
      return;
    case "stats":
      post({ kind: "stats", requestId: request.requestId, stats: stats() });
      return;
    case "shutdown":
      for (const s of schedulers.values()) s.abortAll();
      process.exit(0);
  }
};
