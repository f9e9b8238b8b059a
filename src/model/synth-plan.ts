// What an architecture contributes to a synthetic GGUF: its hyper-parameter
// keys and its tensor table (names, ggml shapes, what each tensor is for and
// how its random values are drawn). Types and bytes are decided later
// (tensor-types.ts), values drawn later still (synth.ts), one tensor at a time.
import type { InitSpec } from "./init.ts";

/**
 * What a tensor does; decides its storage type and its init scale.
 * - embedding/output: token_embd, output (vocab x d)
 * - projection: a dense 2-D weight (attention, dense FFN)
 * - router: the MoE gate (kept F32, as llama.cpp's converter does)
 * - expert: a 3-D stack of expert weights
 * - vector: norms, biases and attention sinks, always F32
 */
export type TensorRole = "embedding" | "output" | "projection" | "router" | "expert" | "vector";

export interface PlannedTensor {
  name: string;
  /** ggml order: ne0 (the row length, contiguous) first. */
  dims: number[];
  role: TensorRole;
  init: InitSpec;
}

/** A metadata key and value, in a neutral form turned into GGUF entries by synth.ts. */
export type HyperParameter =
  | { key: string; type: "u32"; value: number }
  | { key: string; type: "f32"; value: number }
  | { key: string; type: "str"; value: string }
  | { key: string; type: "bool"; value: boolean };

export interface ArchitecturePlan {
  hyperParameters: HyperParameter[];
  tensors: PlannedTensor[];
}

export const u32 = (key: string, value: number): HyperParameter => ({ key, type: "u32", value });
export const f32 = (key: string, value: number): HyperParameter => ({ key, type: "f32", value });
export const str = (key: string, value: string): HyperParameter => ({ key, type: "str", value });

export function elementCount(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

// Init scales, chosen so the residual stream stays near unit scale through any
// depth: inputs to every projection are RMS-normalized (norm weights ~1), so a
// projection with std 1/sqrt(fan_in) gives outputs of std ~1; the two
// projections that write back into the residual (attention output, FFN down)
// are further divided by sqrt(2 * layers), as GPT-2 does, so the sum of all
// layers' contributions stays O(1). The output matrix at 1/sqrt(d) gives
// logits of std ~1: a soft, finite distribution. A separate embedding table
// has std 1 (the residual stream starts at unit scale); a tied one is also the
// output matrix and takes its 1/sqrt(d), else logits would have std sqrt(d)
// and every token would predict itself with certainty.

export const normInit: InitSpec = { mean: 1, std: 0.02 };
export const biasInit: InitSpec = { mean: 0, std: 0.02 };

export function embeddingInit(width: number, tiedToOutput: boolean): InitSpec {
  return { mean: 0, std: tiedToOutput ? 1 / Math.sqrt(width) : 1 };
}

export function projectionInit(fanIn: number): InitSpec {
  return { mean: 0, std: 1 / Math.sqrt(fanIn) };
}

export function residualInit(fanIn: number, layers: number): InitSpec {
  return { mean: 0, std: 1 / Math.sqrt(fanIn) / Math.sqrt(2 * layers) };
}
