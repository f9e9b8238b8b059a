// Test helper: llama.cpp's own samplers (libllama from node-llama-cpp 3.21.1)
// as the oracle for the filter chain. The sampler API needs no model: each
// filter is a `llama_sampler` applied to a `llama_token_data_array` we lay out
// in memory ourselves, so no C shim is needed. Samplers are applied one after
// another rather than through a chain object, because llama_sampler_chain_init
// takes its params struct by value, which bun:ffi cannot pass.
import { dlopen, FFIType, ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { join } from "node:path";
import { refuse } from "../util/errors.ts";

const LLAMA_LIB = join(import.meta.dir, "../../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.4.0.so");

function open() {
  return dlopen(LLAMA_LIB, {
    llama_sampler_init_top_k: { args: [FFIType.i32], returns: FFIType.ptr },
    llama_sampler_init_top_p: { args: [FFIType.f32, FFIType.u64], returns: FFIType.ptr },
    llama_sampler_init_min_p: { args: [FFIType.f32, FFIType.u64], returns: FFIType.ptr },
    llama_sampler_init_typical: { args: [FFIType.f32, FFIType.u64], returns: FFIType.ptr },
    llama_sampler_init_temp: { args: [FFIType.f32], returns: FFIType.ptr },
    llama_sampler_init_penalties: { args: [FFIType.i32, FFIType.i32, FFIType.f32, FFIType.f32, FFIType.f32], returns: FFIType.ptr },
    llama_sampler_accept: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.void },
    llama_sampler_apply: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.void },
    llama_sampler_free: { args: [FFIType.ptr], returns: FFIType.void },
  });
}

let lib: ReturnType<typeof open> | null = null;

export interface LlamaChainSpec {
  /** Penalty window contents, oldest first (fed with llama_sampler_accept). */
  history: readonly number[];
  penaltyLastN: number;
  repeatPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  topK: number;
  typicalP: number;
  topP: number;
  minP: number;
  minKeep: number;
  temperature: number;
}

/** The candidates left by llama.cpp's default chain (penalties -> top-k -> typical -> top-p -> min-p -> temp). */
export function llamaFilteredCandidates(logits: Float32Array, spec: LlamaChainSpec): { id: number; logit: number }[] {
  lib ??= open();
  const f = lib.symbols;
  const n = logits.length;
  // llama_token_data: { int32 id; float logit; float p; } = 12 bytes.
  const data = new ArrayBuffer(12 * n);
  const view = new DataView(data);
  for (let i = 0; i < n; i++) {
    view.setInt32(12 * i, i, true);
    view.setFloat32(12 * i + 4, logits[i]!, true);
  }
  // llama_token_data_array: { data*; size_t size; int64 selected; bool sorted; } = 32 bytes.
  const array = new BigUint64Array(4);
  array[0] = BigInt(ptr(data));
  array[1] = BigInt(n);
  array[2] = 0xffffffffffffffffn; // selected = -1
  array[3] = 0n;

  const penalties = f.llama_sampler_init_penalties(n, spec.penaltyLastN, spec.repeatPenalty, spec.frequencyPenalty, spec.presencePenalty);
  for (const t of spec.history) f.llama_sampler_accept(penalties, t);
  // bun:ffi types a returned pointer as Pointer | bigint | null; these are plain pointers.
  const samplers = [
    penalties,
    f.llama_sampler_init_top_k(spec.topK),
    f.llama_sampler_init_typical(spec.typicalP, spec.minKeep),
    f.llama_sampler_init_top_p(spec.topP, spec.minKeep),
    f.llama_sampler_init_min_p(spec.minP, spec.minKeep),
    f.llama_sampler_init_temp(spec.temperature),
  ] as (Pointer | null)[];
  try {
    for (const s of samplers) {
      if (s === null) refuse("oracle.sampler", "libllama failed to create a sampler");
      f.llama_sampler_apply(s, ptr(array));
    }
    const size = Number(array[1]);
    // Samplers may repoint `data` (llama.h says so); read wherever it points now.
    const now = Number(array[0]);
    const out = now === ptr(data) ? view : new DataView(toArrayBuffer(now as Pointer, 0, 12 * size));
    return Array.from({ length: size }, (_, i) => ({ id: out.getInt32(12 * i, true), logit: out.getFloat32(12 * i + 4, true) }));
  } finally {
    for (const s of samplers) if (s !== null) f.llama_sampler_free(s);
  }
}
