// bun:ffi symbol table of libpsionic_cpu.so (kernels/cpu/api.h lists the same kernels).
import { FFIType } from "bun:ffi";
import { locateLibrary, openLibrary } from "./load.ts";

const { ptr, i32, i64, cstring } = FFIType;

export const cpuSymbols = {
  psi_cpu_variant: { args: [], returns: cstring },
  psi_cpu_select_variant: { args: [cstring], returns: i32 },
  psi_dequantize_row: { args: [i32, ptr, ptr, i64], returns: i32 },
  psi_quantize_row: { args: [i32, ptr, ptr, i64], returns: i32 },
} as const;

export type CpuLibrary = ReturnType<typeof openLibrary<typeof cpuSymbols>>["symbols"];

let library: CpuLibrary | undefined;

/** The CPU kernel library, loaded once. Throws a PsionicError naming the file when it is missing or broken. */
export function cpuKernels(): CpuLibrary {
  library ??= openLibrary(locateLibrary("libpsionic_cpu.so", "PSIONIC_CPU_LIB"), cpuSymbols).symbols;
  return library;
}

export const CPU_VARIANTS = ["portable", "avx2", "avx512"] as const;

/** Selects an instruction-set variant; false when this CPU cannot run it. */
export function selectCpuVariant(lib: CpuLibrary, variant: (typeof CPU_VARIANTS)[number]): boolean {
  return lib.psi_cpu_select_variant(Buffer.from(`${variant}\0`)) === 1;
}
