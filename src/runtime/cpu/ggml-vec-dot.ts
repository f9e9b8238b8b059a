// Test-only bindings to ggml's own CPU dot products and activation quantizers
// (node-llama-cpp@3.21.1's libggml-cpu-zen4.so, the build llama.cpp picks on
// Zen 4, or its AVX2/baseline builds on CPUs without AVX-512): the oracle the
// psionic matmul kernels are held to.
import { dlopen, FFIType } from "bun:ffi";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { GGMLType, typeLayout } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";

const { ptr, i32, i64, u64, void: none } = FFIType;

/** The ggml CPU build this CPU can run (calling into the AVX-512 build elsewhere would fault). */
function ggmlCpuBuild(): string {
  const flags = existsSync("/proc/cpuinfo") ? new Set(readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1]?.trim().split(/\s+/)) : new Set<string>();
  if (["avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"].every((f) => flags.has(f))) return "zen4";
  if (["avx2", "fma", "f16c"].every((f) => flags.has(f))) return "haswell";
  return "x64";
}

export const GGML_CPU_LIBRARY = join(import.meta.dir, "../../..", `node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-cpu-${ggmlCpuBuild()}.so`);

/** ggml's vec_dot function per weight type, and the from-float function of its activation type. */
const functions: Partial<Record<GGMLType, [dot: string, quantize: string]>> = {
  [GGMLType.F32]: ["ggml_vec_dot_f32", ""],
  [GGMLType.F16]: ["ggml_vec_dot_f16", "ggml_cpu_fp32_to_fp16"],
  [GGMLType.BF16]: ["ggml_vec_dot_bf16", "ggml_cpu_fp32_to_bf16"],
  [GGMLType.Q4_0]: ["ggml_vec_dot_q4_0_q8_0", "quantize_row_q8_0"],
  [GGMLType.Q4_1]: ["ggml_vec_dot_q4_1_q8_1", "quantize_row_q8_1"],
  [GGMLType.Q5_0]: ["ggml_vec_dot_q5_0_q8_0", "quantize_row_q8_0"],
  [GGMLType.Q5_1]: ["ggml_vec_dot_q5_1_q8_1", "quantize_row_q8_1"],
  [GGMLType.Q8_0]: ["ggml_vec_dot_q8_0_q8_0", "quantize_row_q8_0"],
  [GGMLType.MXFP4]: ["ggml_vec_dot_mxfp4_q8_0", "quantize_row_q8_0"],
  [GGMLType.Q2_K]: ["ggml_vec_dot_q2_K_q8_K", "quantize_row_q8_K"],
  [GGMLType.Q3_K]: ["ggml_vec_dot_q3_K_q8_K", "quantize_row_q8_K"],
  [GGMLType.Q4_K]: ["ggml_vec_dot_q4_K_q8_K", "quantize_row_q8_K"],
  [GGMLType.Q5_K]: ["ggml_vec_dot_q5_K_q8_K", "quantize_row_q8_K"],
  [GGMLType.Q6_K]: ["ggml_vec_dot_q6_K_q8_K", "quantize_row_q8_K"],
};

type Dot = (n: number, s: Float32Array, bs: number, vx: Uint8Array, bx: number, vy: Uint8Array, by: number, nrc: number) => void;
type Quantize = (x: Float32Array, y: Uint8Array, n: number) => void;
let symbols: Record<string, unknown> | undefined;

function oracle(): Record<string, unknown> {
  if (symbols) return symbols;
  if (!existsSync(GGML_CPU_LIBRARY)) {
    throw new PsionicError("ffi.missing-library", `the ggml oracle ${GGML_CPU_LIBRARY} is missing: run \`npm install\` (node-llama-cpp@3.21.1 with @node-llama-cpp/linux-x64)`);
  }
  const table: Record<string, { args: FFIType[]; returns: FFIType }> = { ggml_cpu_init: { args: [], returns: none } };
  for (const [dot, quantize] of Object.values(functions)) {
    table[dot] = { args: [i32, ptr, u64, ptr, u64, ptr, u64, i32], returns: none };
    if (quantize) table[quantize] = { args: [ptr, ptr, i64], returns: none };
  }
  const lib = dlopen(GGML_CPU_LIBRARY, table);
  (lib.symbols.ggml_cpu_init as () => void)();
  symbols = lib.symbols;
  return symbols;
}

function entry(type: GGMLType): [string, string] {
  const names = functions[type];
  if (!names) throw new PsionicError("matmul.unsupported-type", `the ggml oracle binding has no dot product for ${typeLayout(type)?.name ?? type}`);
  return names;
}

/** ggml's quantization of one activation row for weights of `type` (F32 weights: the floats themselves). */
export function ggmlQuantizeActivations(type: GGMLType, actType: GGMLType, x: Float32Array): Uint8Array {
  const act = typeLayout(actType)!;
  const out = new Uint8Array((x.length / act.blockSize) * act.typeSize);
  const name = entry(type)[1];
  if (!name) out.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  else (oracle()[name] as Quantize)(x, out, x.length);
  return out;
}

/** ggml_vec_dot_<type>: one weight row (n values) against one activation row in ggml's activation type. */
export function ggmlVecDot(type: GGMLType, n: number, weightRow: Uint8Array, activationRow: Uint8Array): number {
  const s = new Float32Array(1);
  (oracle()[entry(type)[0]] as Dot)(n, s, 0, weightRow, 0, activationRow, 0, 1);
  return s[0]!;
}
