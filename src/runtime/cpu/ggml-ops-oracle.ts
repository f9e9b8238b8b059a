// Test-only: ggml's own CPU ops (node-llama-cpp's libggml-cpu build, the one
// llama.cpp picks on this machine) through the small shim kernels/oracle/ggml_ops_oracle.c,
// compiled here on first use. The ops tests hold psionic's kernels to these.
import { FFIType, dlopen, ptr } from "bun:ffi";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../../ffi/cpu.ts";
import { GGML_BASE_LIBRARY } from "../../../ffi/ggml-oracle.ts";
import { PsionicError } from "../../util/errors.ts";

const root = join(import.meta.dir, "..", "..", "..");
const source = join(root, "kernels/oracle/ggml_ops_oracle.c");
const bins = join(GGML_BASE_LIBRARY, "..");
const { ptr: p, i32, i64, f32 } = FFIType;

const symbols = {
  oracle_rms_norm: { args: [p, p, p, i64, i64, f32], returns: i32 },
  oracle_rope: { args: [p, p, p, i64, i64, i64, i32, i32, i32, f32, f32, f32, f32, f32, f32, p], returns: i32 },
  oracle_attention: { args: [p, p, p, p, p, i64, i64, i64, i64, i64, i32, p, f32, i32], returns: i32 },
  oracle_softmax: { args: [p, p, i64, i64], returns: i32 },
  oracle_swiglu: { args: [p, p, p, i64, i64, i32, f32, f32], returns: i32 },
} as const;

/** The ggml CPU build llama.cpp would load here: zen4 (AVX-512) when this CPU runs it, else haswell (AVX2). */
export function ggmlCpuBuild(): string {
  const lib = cpuKernels();
  const avx512 = selectCpuVariant(lib, "avx512");
  for (const variant of [...CPU_VARIANTS].reverse()) if (selectCpuVariant(lib, variant)) break;
  return avx512 ? "libggml-cpu-zen4.so" : "libggml-cpu-haswell.so";
}

let oracle: ReturnType<typeof dlopen<typeof symbols>>["symbols"] | undefined;

function load() {
  if (oracle) return oracle;
  const cpuBuild = ggmlCpuBuild();
  if (!existsSync(join(bins, cpuBuild))) throw new PsionicError("ffi.missing-library", `the ggml oracle ${join(bins, cpuBuild)} is missing: run \`npm install\``);
  const out = join(root, "build", `libggml_ops_oracle_${cpuBuild.replace(/^libggml-cpu-|\.so$/g, "")}.so`);
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(join(root, "build"), { recursive: true });
    const cc = process.env.CC || "cc";
    const result = Bun.spawnSync([cc, "-O2", "-shared", "-fPIC", "-o", out, source, `-L${bins}`, "-l:libggml-base.so", `-l:${cpuBuild}`, `-Wl,-rpath,${bins}`, "-lm"]);
    if (result.exitCode !== 0) throw new Error(`compiling the ggml ops oracle failed:\n${result.stderr.toString()}`);
  }
  oracle = dlopen(out, symbols).symbols;
  return oracle;
}

function check(op: string, status: number) {
  if (status !== 0) throw new Error(`ggml ${op} failed with status ${status}`);
}

export function ggmlRmsNorm(x: Float32Array, n: number, eps: number, weight: Float32Array | null): Float32Array {
  const y = new Float32Array(x.length);
  check("rms_norm", load().oracle_rms_norm(ptr(x), weight ? ptr(weight) : null, ptr(y), x.length / n, n, eps));
  return y;
}

export interface GgmlRope {
  nDims: number; mode: 0 | 2; nCtxOrig: number; freqBase: number; freqScale: number;
  extFactor: number; attnFactor: number; betaFast: number; betaSlow: number; freqFactors?: Float32Array;
}

export function ggmlRope(x: Float32Array, pos: Int32Array, nHead: number, headDim: number, r: GgmlRope): Float32Array {
  const y = new Float32Array(x.length);
  check("rope_ext", load().oracle_rope(ptr(x), ptr(y), ptr(pos), pos.length, nHead, headDim, r.nDims, r.mode, r.nCtxOrig, r.freqBase, r.freqScale,
    r.extFactor, r.attnFactor, r.betaFast, r.betaSlow, r.freqFactors ? ptr(r.freqFactors) : null));
  return y;
}

/** ggml_flash_attn_ext (F32 precision, as llama.cpp sets it) over an F16 cache whose cell j holds position j. */
export function ggmlAttention(q: Float32Array, k: Uint16Array, v: Uint16Array, qPos: Int32Array, nHead: number, nHeadKv: number, d: number, nKv: number,
  window: number, sinks: Float32Array | null, threads: number): Float32Array {
  const out = new Float32Array(qPos.length * nHead * d);
  check("flash_attn_ext", load().oracle_attention(ptr(q), ptr(k), ptr(v), ptr(out), ptr(qPos), qPos.length, nHead, nHeadKv, d, nKv, window,
    sinks ? ptr(sinks) : null, Math.fround(1 / Math.fround(Math.sqrt(d))), threads));
  return out;
}

export function ggmlSoftmax(x: Float32Array, n: number): Float32Array {
  const y = new Float32Array(x.length);
  check("soft_max", load().oracle_softmax(ptr(x), ptr(y), x.length / n, n));
  return y;
}

export function ggmlSwiglu(gate: Float32Array, up: Float32Array, n: number, oai?: { alpha: number; limit: number }): Float32Array {
  const y = new Float32Array(gate.length);
  check("swiglu", load().oracle_swiglu(ptr(gate), ptr(up), ptr(y), gate.length / n, n, oai ? 1 : 0, oai?.alpha ?? 0, oai?.limit ?? 0));
  return y;
}
