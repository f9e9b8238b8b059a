// bun:ffi symbol table of libpsionic_cpu.so (kernels/cpu/api.h lists the same kernels).
import { FFIType } from "bun:ffi";
import { locateLibrary, openLibrary } from "./load.ts";
import { cpuTrainSymbols } from "./cpu-train.ts";

const { ptr, i32, i64, f32, cstring } = FFIType;

export const cpuSymbols = {
  psi_cpu_variant: { args: [], returns: cstring },
  psi_cpu_select_variant: { args: [cstring], returns: i32 },
  // non-matmul inference ops (kernels/cpu/ops_*.c); src/runtime/cpu/ops.ts wraps them
  psi_rms_norm: { args: [ptr, ptr, ptr, i64, i64, f32], returns: i32 },
  psi_rms_norm_ref: { args: [ptr, ptr, ptr, i64, i64, f32], returns: i32 },
  psi_rope: { args: [ptr, ptr, ptr, i64, i64, i64, ptr, i32], returns: i32 },
  psi_rope_ref: { args: [ptr, ptr, ptr, i64, i64, i64, ptr], returns: i32 },
  psi_attention: { args: [ptr], returns: i32 },
  psi_attention_ref: { args: [ptr], returns: i32 },
  psi_softmax: { args: [ptr, ptr, i64, i64], returns: i32 },
  psi_softmax_ref: { args: [ptr, ptr, i64, i64], returns: i32 },
  psi_silu: { args: [ptr, ptr, i64], returns: i32 },
  psi_silu_ref: { args: [ptr, ptr, i64], returns: i32 },
  psi_swiglu: { args: [ptr, ptr, ptr, i64, i64, i64, i64], returns: i32 },
  psi_swiglu_ref: { args: [ptr, ptr, ptr, i64, i64, i64, i64], returns: i32 },
  psi_swiglu_oai: { args: [ptr, ptr, ptr, i64, i64, i64, i64, f32, f32], returns: i32 },
  psi_swiglu_oai_ref: { args: [ptr, ptr, ptr, i64, i64, i64, i64, f32, f32], returns: i32 },
  psi_add: { args: [ptr, ptr, ptr, i64], returns: i32 },
  psi_add_ref: { args: [ptr, ptr, ptr, i64], returns: i32 },
  psi_moe_route: { args: [ptr, ptr, ptr, i64, i64, i64, i32], returns: i32 },
  psi_moe_route_ref: { args: [ptr, ptr, ptr, i64, i64, i64, i32], returns: i32 },
  psi_moe_weighted_sum: { args: [ptr, ptr, ptr, i64, i64, i64], returns: i32 },
  psi_moe_weighted_sum_ref: { args: [ptr, ptr, ptr, i64, i64, i64], returns: i32 },
  psi_get_rows: { args: [i32, ptr, i64, i64, i64, ptr, i64, ptr], returns: i32 },
  psi_kv_store: { args: [ptr, ptr, i32, ptr, i64, i64, i64, i64], returns: i32 },
  psi_dequantize_row: { args: [i32, ptr, ptr, i64], returns: i32 },
  psi_quantize_row: { args: [i32, ptr, ptr, i64], returns: i32 },
  psi_matmul: { args: [i32, ptr, i64, i64, ptr, i64, ptr, i32], returns: i32 },
  psi_matmul_reference: { args: [i32, ptr, i64, i64, ptr, i64, ptr], returns: i32 },
  psi_matmul_quantize_activations: { args: [i32, ptr, i64, ptr], returns: i64 },
  psi_matmul_activation_type: { args: [i32], returns: i32 },
  psi_matmul_repack: { args: [i32, ptr, ptr, i64, i64], returns: i32 },
  // memory read bandwidth (kernels/cpu/membw.c); src/cli/bench.ts times it
  psi_read_memory: { args: [ptr, i64, i32, i32, ptr], returns: i32 },
  // training kernels (kernels/cpu/train_*.c); src/train/train-kernels.ts wraps them
  ...cpuTrainSymbols,
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
