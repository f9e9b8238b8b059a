// bun:ffi symbol table of libpsionic_cuda.so (kernels/cuda/*.cu), built only where nvcc exists.
import { CString, FFIType, ptr } from "bun:ffi";
import { PsionicError } from "../src/util/errors.ts";
import { locateLibrary, openLibrary } from "./load.ts";

const cudaSymbols = {
  psi_cuda_device_count: { args: [], returns: FFIType.i32 },
  psi_cuda_device_describe: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  psi_cuda_last_error: { args: [], returns: FFIType.cstring },
} as const;

export type CudaLibrary = ReturnType<typeof openLibrary<typeof cudaSymbols>>["symbols"];

let library: CudaLibrary | undefined;

export function cudaKernels(): CudaLibrary {
  library ??= openLibrary(locateLibrary("libpsionic_cuda.so", "PSIONIC_CUDA_LIB"), cudaSymbols).symbols;
  return library;
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
