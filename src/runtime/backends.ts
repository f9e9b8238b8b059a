// Picks a backend by name for the CLI and the engine. "cpu" (the C kernels) is
// imported lazily, so the reference backend works on a machine (or build)
// where the kernel library cannot load, and a missing backend is a clear
// refusal rather than a crash at import time.
import { PsionicError, refuse } from "../util/errors.ts";
import type { Backend } from "./backend.ts";
import { ReferenceBackend } from "./reference/reference-backend.ts";

export const BACKEND_NAMES = ["cpu", "reference", "cuda"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendOptions {
  /** Threads the kernels may use (cpu only; the reference is single-threaded). */
  threads?: number;
  /** Weight bytes uploaded so far (cuda: model load progress). */
  onUpload?: (bytes: number) => void;
}

/** Most threads a caller may ask for: the thread pool's limit (kernels/cpu/threadpool.h). */
export const MAX_THREADS = 64;

/** The threads to use when none are given: every core the process may run on. */
export function defaultThreads(): number {
  return Math.max(1, Math.min(MAX_THREADS, navigator.hardwareConcurrency || 1));
}

export function isBackendName(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name);
}

export async function createBackend(name: string, options: BackendOptions = {}): Promise<Backend> {
  const threads = options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    refuse("backend.bad-threads", `threads must be an integer in [1, ${MAX_THREADS}], got ${threads}`);
  }
  if (name === "reference") return new ReferenceBackend();
  if (name === "cpu") {
    let module: Record<string, unknown>;
    try {
      // Resolved at run time: a build without the CPU backend still runs the reference.
      module = await import("./cpu/cpu-backend.ts");
    } catch (error) {
      if (error instanceof PsionicError) throw error;
      return refuse("backend.unavailable", `the cpu backend could not be loaded (${error instanceof Error ? error.message.split("\n")[0] : error}); use --backend reference`);
    }
    const found = Object.values(module).find((v) => typeof v === "function" && /CpuBackend$/.test((v as { name: string }).name));
    if (!found) refuse("backend.unavailable", "src/runtime/cpu/cpu-backend.ts exports no CpuBackend class; use --backend reference");
    return new (found as new (o: { threads: number }) => Backend)({ threads });
  }
  if (name === "cuda") {
    // Loaded only when asked for: the library exists only where nvcc built it,
    // and a machine without a usable GPU gets the driver's reason, not a crash.
    const { CudaBackend } = await import("./cuda/cuda-backend.ts");
    const backend = new CudaBackend({ onUpload: options.onUpload });
    if (process.env.PSIONIC_CUDA_PROFILE) (await import("./cuda/cuda-profile.ts")).profileBackend(backend);
    return backend;
  }
  return refuse("backend.unknown", `unknown backend "${name}"; choose one of ${BACKEND_NAMES.join(", ")}`);
}

/**
 * -ngl for a GPU backend: the first `gpuLayers` layers on the GPU and the
 * rest on a CPU backend; none given means every layer on the GPU. The CPU
 * backends run every layer anyway, so there -ngl changes nothing (as in llama.cpp).
 */
export async function offloadFor(name: string, gpuLayers: number | undefined, threads?: number): Promise<{ layers: number; rest: Backend } | undefined> {
  if (name !== "cuda" || gpuLayers === undefined) return undefined;
  return { layers: gpuLayers, rest: await createBackend("cpu", { threads }) };
}

/**
 * createBackend's options with a progress report of the weight upload to a GPU
 * backend (`report(done, total)`, total = the model file's size): loading
 * gpt-oss-20b moves 12 GB over PCIe.
 */
export function withUploadProgress(name: string, modelPath: string, options: BackendOptions, report: (done: number, total: number) => void): BackendOptions {
  if (name !== "cuda") return options;
  const total = Bun.file(modelPath).size;
  return { ...options, onUpload: (done) => report(done, total) };
}
