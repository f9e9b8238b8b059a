// bun:ffi symbol table of libpsionic_cuda.so (kernels/cuda/*.cu), built only where nvcc exists.
// Device addresses travel as plain numbers (bun:ffi pointers); weights are
// described to the kernels by six int64 fields (kernels/cuda/matmul.cuh MatDesc).
import { CString, FFIType, ptr } from "bun:ffi";
import { PsionicError } from "../src/util/errors.ts";
import { locateLibrary, openLibrary } from "./load.ts";

const { i32, i64, u64, f32, ptr: p, cstring } = FFIType;

const cudaSymbols = {
  psi_cuda_device_count: { args: [], returns: i32 },
  psi_cuda_device_describe: { args: [i32, p, i32], returns: i32 },
  psi_cuda_last_error: { args: [], returns: cstring },
  psi_cuda_cublas_status: { args: [], returns: cstring },
  psi_cuda_init: { args: [i32], returns: i32 },
  psi_cuda_malloc: { args: [u64], returns: p },
  psi_cuda_free: { args: [p], returns: i32 },
  psi_cuda_host_alloc: { args: [u64], returns: p },
  psi_cuda_host_free: { args: [p], returns: i32 },
  psi_cuda_poison: { args: [p, u64, i32], returns: i32 },
  psi_cuda_upload: { args: [p, p, u64], returns: i32 },
  psi_cuda_download: { args: [p, p, u64], returns: i32 },
  psi_cuda_copy: { args: [p, p, u64], returns: i32 },
  psi_cuda_sync: { args: [], returns: i32 },
  psi_cuda_repack: { args: [i32, p, p, i64, i64, i64], returns: i32 },
  psi_cuda_matmul: { args: [p, p, i64, p, p, i32], returns: i32 },
  psi_cuda_matmul_many: { args: [p, p, p, i32, p, i64, i32], returns: i32 },
  psi_cuda_get_rows: { args: [p, p, i64, p], returns: i32 },
  psi_cuda_rms_norm: { args: [p, p, p, p, f32, i64, i64, i64, p, i32], returns: i32 },
  psi_cuda_rope: { args: [p, p, i64, p, p, i64, p, i64, i64, p, p], returns: i32 },
  psi_cuda_add: { args: [p, p, p, i64], returns: i32 },
  psi_cuda_swiglu: { args: [p, p, p, i64], returns: i32 },
  psi_cuda_take_rows: { args: [p, p, i64, i64, p], returns: i32 },
  psi_cuda_store_rows: { args: [p, i64, i64, p, i64], returns: i32 },
  psi_cuda_attend: { args: [p, p, p, p, i32, i32, i32, i32, i32, i32, f32, p, p, i32, p, p, p], returns: i32 },
  psi_cuda_moe: { args: [p, i64, p, p, p, p, p, p, p, p, i32, f32, f32, p, p, i32, p, f32, p], returns: i32 },
  psi_cuda_argmax_rows: { args: [p, i64, i64, p], returns: i32 },
  psi_cuda_topk_rows: { args: [p, i64, i64, i32, p], returns: i32 },
  psi_cuda_graphs: { args: [i32], returns: i32 },
  psi_cuda_record_begin: { args: [], returns: i32 },
  psi_cuda_graph_stats: { args: [p], returns: FFIType.void },
  psi_cuda_prof_begin: { args: [i32], returns: i32 },
  psi_cuda_prof_end: { args: [], returns: i32 },
  psi_cuda_prof_collect: { args: [p, p, p, i32], returns: i32 },
} as const;

export type CudaLibrary = ReturnType<typeof openLibrary<typeof cudaSymbols>>["symbols"];

let library: CudaLibrary | undefined;

export function cudaKernels(): CudaLibrary {
  if (!library) {
    const path = locateLibrary("libpsionic_cuda.so", "PSIONIC_CUDA_LIB");
    library = openLibrary(path, cudaSymbols).symbols;
    if (process.env.PSIONIC_CUDA_TRACE) writeTraceAtExit(path);
  }
  return library;
}

// The emulator's access-trace build (kernels/cuda/emulate_trace.cpp) writes its
// totals to $PSIONIC_CUDA_TRACE when asked; Bun runs no C exit handlers of a
// library it opened, so the request comes from here (and from the test preload,
// as `bun test` runs no process exit handlers either).
let traceWriter: (() => void) | undefined;
function writeTraceAtExit(path: string) {
  const trace = openLibrary(path, { psi_emu_trace_write: { args: [], returns: "void" } }).symbols;
  traceWriter = () => trace.psi_emu_trace_write();
  process.on("exit", traceWriter);
}

/** Writes the access trace now, where the trace build is loaded and $PSIONIC_CUDA_TRACE names a file. */
export function writeCudaTrace(): void {
  traceWriter?.();
}

/** Throws a PsionicError naming `what` and the library's last error when `status` is non-zero. */
export function checkCuda(status: number, what: string): void {
  if (status !== 0) throw new PsionicError("cuda.failed", `${what}: ${cudaKernels().psi_cuda_last_error()}`);
}

export interface CudaDevice {
  index: number;
  name: string;
  totalBytes: number;
  computeCapability: string;
}

/** The CUDA devices this machine can use; a PsionicError saying why when there are none. */
export function cudaDevices(): CudaDevice[] {
  const lib = cudaKernels();
  const count = lib.psi_cuda_device_count();
  if (count < 0) throw new PsionicError("cuda.unavailable", `no usable CUDA device: ${lib.psi_cuda_last_error()}`);
  if (count === 0) throw new PsionicError("cuda.unavailable", "no CUDA device found");
  const text = new Uint8Array(512);
  return Array.from({ length: count }, (_, index) => {
    if (lib.psi_cuda_device_describe(index, ptr(text), text.length) !== 0) {
      throw new PsionicError("cuda.unavailable", `CUDA device ${index}: ${lib.psi_cuda_last_error()}`);
    }
    const [name = "", totalBytes = "0", computeCapability = ""] = new CString(ptr(text)).toString().split("|");
    return { index, name, totalBytes: Number(totalBytes), computeCapability };
  });
}
