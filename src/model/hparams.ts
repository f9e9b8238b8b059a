// Hyper-parameters from GGUF metadata, read and defaulted exactly as llama.cpp
// does (llama-model.cpp load_hparams, src/models/{llama,qwen2,qwen3,openai-moe}.cpp,
// llama-context.cpp for the rope/YaRN values a default context derives).
// Only gpt-oss reads a sliding window: llama.cpp's llama loader (this version)
// ignores <arch>.attention.sliding_window, so psionic does too, to match it.
import type { GGUFFile } from "../gguf/reader.ts";
import {
  isArray, metaInteger, metaIntegerOptional, metaNumber, metaNumberArrayOptional, metaNumberOptional, metaString, metaStringOptional,
} from "../gguf/metadata.ts";
import { PsionicError, refuse } from "../util/errors.ts";

export type Architecture = "llama" | "qwen2" | "qwen3" | "gpt-oss";
export const ARCHITECTURES: readonly Architecture[] = ["llama", "qwen2", "qwen3", "gpt-oss"];

export interface RopeConfig {
  /** Rotated values per head. */
  dims: number;
  mode: "normal" | "neox";
  scaling: "none" | "linear" | "yarn";
  freqBase: number;
  /** Base for sliding-window layers (gpt-oss: rope.freq_base_swa, else freqBase). */
  freqBaseSwa: number;
  /** 1 / rope.scaling.factor (1 when absent). */
  freqScale: number;
  /** YaRN's original training context (rope.scaling.original_context_length, else context_length). */
  originalContext: number;
  /** 1 for YaRN, else 0 (llama.cpp's default context). */
  extFactor: number;
  /** The cos/sin magnitude factor llama.cpp's context derives (see yarnAttnFactor). */
  attnFactor: number;
  betaFast: number;
  betaSlow: number;
}

export interface HyperParameters {
  arch: Architecture;
  /** context_length: the training context, the default -c. */
  contextLength: number;
  embeddingLength: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDimK: number;
  headDimV: number;
  rmsEps: number;
  /** Dense FFN hidden size (0 for gpt-oss). */
  feedForwardLength: number;
  experts: number;
  expertsUsed: number;
  expertFeedForwardLength: number;
  rope: RopeConfig;
  /** Tokens a sliding-window layer sees (0: none). */
  slidingWindow: number;
  /** Per layer: does it use the sliding window? */
  swaLayers: boolean[];
}

const ROPE_MODE: Record<Architecture, "normal" | "neox"> = { llama: "normal", qwen2: "neox", qwen3: "neox", "gpt-oss": "neox" };

type Meta = GGUFFile["meta"];

/** A count that llama.cpp reads with get_key_or_arr: a scalar, or one value per layer (which must agree here). */
function perLayerCount(meta: Meta, key: string, layers: number): number | undefined {
  const entry = meta.get(key);
  if (!entry) return undefined;
  if (isArray(entry.value)) {
    const values = metaNumberArrayOptional(meta, key)!;
    if (values.length !== layers) refuse("model.bad-hparam", `key ${key}: ${values.length} values for ${layers} layers`);
    if (values.some((v) => v !== values[0])) refuse("model.unsupported", `key ${key}: per-layer values differ (${values.join(", ")}); psionic supports uniform layers only`);
    return values[0];
  }
  return metaIntegerOptional(meta, key);
}

/** A per-layer count this code needs even where llama.cpp would default it to 0 (and then fail on tensor shapes). */
function requiredCount(meta: Meta, key: string, layers: number): number {
  return positive(key, perLayerCount(meta, key, layers) ?? refuse("gguf.missing-key", `key ${key}: required but not present`));
}

function positive(key: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) refuse("model.bad-hparam", `key ${key}: expected a positive integer, got ${value}`);
  return value;
}

/** llama.cpp's context: YaRN's mscale 0.1 ln(s) + 1, cancelled by the 1/(1 + 0.1 ln s) it applies because ggml's rope multiplies it in again. */
export function yarnAttnFactor(freqScale: number, ropeAttnFactor: number): number {
  const f = Math.fround;
  const factor = f(1 / freqScale);
  const mscale = factor <= 1 ? 1 : f(f(0.1 * Math.log(factor)) + 1);
  return f(f(mscale * f(1 / f(1 + f(0.1 * Math.log(factor))))) * ropeAttnFactor);
}

export function readHyperParameters(file: GGUFFile): HyperParameters {
  const meta = file.meta;
  const archName = metaString(meta, "general.architecture");
  if (!ARCHITECTURES.includes(archName as Architecture)) {
    throw new PsionicError("model.unsupported-arch", `general.architecture "${archName}" is not supported; psionic runs ${ARCHITECTURES.join(", ")}`);
  }
  const arch = archName as Architecture;
  const k = (name: string) => `${arch}.${name}`;

  const contextLength = positive(k("context_length"), metaInteger(meta, k("context_length")));
  const embeddingLength = positive(k("embedding_length"), metaInteger(meta, k("embedding_length")));
  const layers = positive(k("block_count"), metaInteger(meta, k("block_count")));
  const experts = metaIntegerOptional(meta, k("expert_count")) ?? 0;
  const expertsUsed = perLayerCount(meta, k("expert_used_count"), layers) ?? 0;
  const heads = requiredCount(meta, k("attention.head_count"), layers);
  const kvHeads = positive(k("attention.head_count_kv"), perLayerCount(meta, k("attention.head_count_kv"), layers) ?? heads);
  if (heads % kvHeads !== 0) refuse("model.bad-hparam", `${k("attention.head_count")} ${heads} is not a multiple of ${k("attention.head_count_kv")} ${kvHeads}`);
  const headDimK = positive(k("attention.key_length"), metaIntegerOptional(meta, k("attention.key_length")) ?? Math.floor(embeddingLength / heads));
  const headDimV = positive(k("attention.value_length"), metaIntegerOptional(meta, k("attention.value_length")) ?? Math.floor(embeddingLength / heads));
  const ropeDims = positive(k("rope.dimension_count"), metaIntegerOptional(meta, k("rope.dimension_count")) ?? headDimK);
  if (arch === "llama" && ropeDims !== headDimK) refuse("model.bad-hparam", `${k("rope.dimension_count")} ${ropeDims} must equal the head size ${headDimK} for llama`);
  if (arch !== "gpt-oss" && (ropeDims !== headDimK || headDimK !== headDimV)) {
    refuse("model.bad-hparam", `${arch} needs rope dims = key length = value length, got ${ropeDims}, ${headDimK}, ${headDimV}`);
  }
  if (ropeDims % 2 !== 0 || ropeDims > headDimK) refuse("model.bad-hparam", `${k("rope.dimension_count")} ${ropeDims} must be even and at most the head size ${headDimK}`);
  const rmsEps = metaNumber(meta, k("attention.layer_norm_rms_epsilon"));
  if (!(rmsEps > 0)) refuse("model.bad-hparam", `${k("attention.layer_norm_rms_epsilon")} must be positive, got ${rmsEps}`);

  const rope = readRope(meta, arch, ropeDims, contextLength);

  let feedForwardLength = 0, expertFeedForwardLength = 0, slidingWindow = 0;
  let swaLayers = new Array<boolean>(layers).fill(false);
  if (arch === "gpt-oss") {
    if (experts <= 0 || expertsUsed <= 0 || expertsUsed > experts) {
      refuse("model.bad-hparam", `gpt-oss needs ${k("expert_count")} > 0 and 0 < ${k("expert_used_count")} <= it, got ${experts} and ${expertsUsed}`);
    }
    expertFeedForwardLength = requiredCount(meta, k("expert_feed_forward_length"), layers);
    slidingWindow = positive(k("attention.sliding_window"), metaInteger(meta, k("attention.sliding_window")));
    // openai-moe.cpp: pattern 2 unless the file says otherwise; layer il is a
    // window layer when il % pattern < pattern - 1 (pattern 0: every layer).
    const pattern = metaIntegerOptional(meta, k("attention.sliding_window_pattern")) ?? 2;
    swaLayers = swaLayers.map((_, il) => pattern === 0 || il % pattern < pattern - 1);
  } else {
    if (experts > 0) refuse("model.unsupported", `${arch} with ${experts} experts (a mixture-of-experts variant) is not supported yet`);
    feedForwardLength = requiredCount(meta, k("feed_forward_length"), layers);
  }

  return {
    arch, contextLength, embeddingLength, layers, heads, kvHeads, headDimK, headDimV, rmsEps,
    feedForwardLength, experts, expertsUsed, expertFeedForwardLength, rope, slidingWindow, swaLayers,
  };
}

function readRope(meta: Meta, arch: Architecture, dims: number, contextLength: number): RopeConfig {
  const k = (name: string) => `${arch}.${name}`;
  const scaling = metaStringOptional(meta, k("rope.scaling.type")) ?? "linear";
  if (scaling !== "none" && scaling !== "linear" && scaling !== "yarn") {
    throw new PsionicError("model.unsupported", `${k("rope.scaling.type")} "${scaling}" is not supported (none, linear, yarn)`);
  }
  const freqBase = metaNumberOptional(meta, k("rope.freq_base")) ?? 10000;
  // gpt-oss reads a separate base for window layers, defaulting to the full one.
  const freqBaseSwa = arch === "gpt-oss" ? metaNumberOptional(meta, k("rope.freq_base_swa")) ?? freqBase : freqBase;
  const factor = metaNumberOptional(meta, k("rope.scaling.factor")) ?? metaNumberOptional(meta, k("rope.scale_linear")) ?? 0;
  // "none" never scales (llama-context.cpp), whatever the factor says.
  const freqScale = scaling === "none" || factor === 0 ? 1 : Math.fround(1 / factor);
  const originalContext = metaIntegerOptional(meta, k("rope.scaling.original_context_length")) ?? contextLength;
  const ropeAttnFactor = metaNumberOptional(meta, k("rope.scaling.attn_factor")) ?? 1;
  if (metaNumberOptional(meta, k("rope.scaling.yarn_log_multiplier"))) {
    refuse("model.unsupported", `${k("rope.scaling.yarn_log_multiplier")} (DeepSeek-style YaRN) is not supported`);
  }
  const extFactor = scaling === "yarn" ? 1 : 0;
  return {
    dims, mode: ROPE_MODE[arch], scaling, freqBase, freqBaseSwa, freqScale, originalContext, extFactor,
    attnFactor: extFactor !== 0 ? yarnAttnFactor(freqScale, ropeAttnFactor) : ropeAttnFactor,
    // llama.cpp reads no beta keys for these architectures: its defaults apply.
    betaFast: 32, betaSlow: 1,
  };
}
