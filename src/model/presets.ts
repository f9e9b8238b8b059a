// Shapes of the synthetic models `psionic gguf synth` can write, one row per
// preset. Small ones are for tests, mid-size ones for CPU benchmarks, and the
// real-shaped ones (llama-1b = Llama 3.2 1B, gpt-oss-20b) for GPU benchmarks.
import { PsionicError } from "../util/errors.ts";

export interface LlamaPreset {
  arch: "llama";
  name: string;
  description: string;
  vocabSize: number;
  contextLength: number;
  embeddingLength: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  feedForwardLength: number;
  ropeFreqBase: number;
  rmsEpsilon: number;
  /** True: no output.weight; llama.cpp reuses token_embd for the output projection. */
  tiedEmbeddings: boolean;
}

export interface GptOssPreset {
  arch: "gpt-oss";
  name: string;
  description: string;
  vocabSize: number;
  contextLength: number;
  embeddingLength: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  experts: number;
  expertsUsed: number;
  /** Hidden size of each expert's SwiGLU FFN. */
  expertFeedForwardLength: number;
  /** Tokens a sliding-window layer attends to. */
  slidingWindow: number;
  /** Layers il with il % pattern < pattern - 1 use the window (2: even layers, as gpt-oss does). */
  slidingWindowPattern: number;
  ropeFreqBase: number;
  /** YaRN context extension: factor times the original training context. */
  yarn: { factor: number; originalContextLength: number; betaFast: number; betaSlow: number };
  rmsEpsilon: number;
}

export type ModelPreset = LlamaPreset | GptOssPreset;
export type Architecture = ModelPreset["arch"];
export const ARCHITECTURES: Architecture[] = ["llama", "gpt-oss"];

const llama = (row: Omit<LlamaPreset, "arch">): LlamaPreset => ({ arch: "llama", ...row });
const gptOss = (row: Omit<GptOssPreset, "arch">): GptOssPreset => ({ arch: "gpt-oss", ...row });

// Row lengths (embedding, FFN, head sizes) are multiples of 256 wherever the
// size allows, so K-quants (256-value blocks) apply without falling back.
export const PRESETS: ModelPreset[] = [
  llama({
    name: "tiny", description: "2 layers, d=256, separate output matrix: a few MB, for tests",
    vocabSize: 1024, contextLength: 2048, embeddingLength: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64,
    feedForwardLength: 768, ropeFreqBase: 10000, rmsEpsilon: 1e-5, tiedEmbeddings: false,
  }),
  llama({
    name: "tiny-tied", description: "tiny with the output projection tied to token_embd (no output.weight)",
    vocabSize: 1024, contextLength: 2048, embeddingLength: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64,
    feedForwardLength: 768, ropeFreqBase: 10000, rmsEpsilon: 1e-5, tiedEmbeddings: true,
  }),
  llama({
    name: "llama-180m", description: "18 layers, d=768, GQA 12/4: a small CPU benchmark model",
    vocabSize: 32000, contextLength: 4096, embeddingLength: 768, layers: 18, heads: 12, kvHeads: 4, headDim: 64,
    feedForwardLength: 2560, ropeFreqBase: 10000, rmsEpsilon: 1e-5, tiedEmbeddings: false,
  }),
  llama({
    name: "llama-1b", description: "the shapes of Llama 3.2 1B: 16 layers, d=2048, GQA 32/8, tied, 128256 tokens",
    vocabSize: 128256, contextLength: 8192, embeddingLength: 2048, layers: 16, heads: 32, kvHeads: 8, headDim: 64,
    feedForwardLength: 8192, ropeFreqBase: 500000, rmsEpsilon: 1e-5, tiedEmbeddings: true,
  }),
  // 2048 tokens: gpt-oss's harmony block alone is 1090 special tokens (vocab.ts).
  // Expert FFN 320 is, like gpt-oss-20b's 2880, not a multiple of 256: with a
  // K-quant the down projection falls back to a 32-block type, as in real files.
  gptOss({
    name: "tiny", description: "2 layers (sliding window 16, then full), 8 experts top-2, d=256: a few MB, for tests",
    vocabSize: 2048, contextLength: 4096, embeddingLength: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64,
    experts: 8, expertsUsed: 2, expertFeedForwardLength: 320, slidingWindow: 16, slidingWindowPattern: 2,
    ropeFreqBase: 150000, yarn: { factor: 4, originalContextLength: 1024, betaFast: 32, betaSlow: 1 }, rmsEpsilon: 1e-5,
  }),
  gptOss({
    name: "gpt-oss-1b", description: "12 layers, d=1024, 64 experts top-4: a CPU benchmark for many small experts",
    vocabSize: 32000, contextLength: 32768, embeddingLength: 1024, layers: 12, heads: 16, kvHeads: 4, headDim: 64,
    experts: 64, expertsUsed: 4, expertFeedForwardLength: 512, slidingWindow: 128, slidingWindowPattern: 2,
    ropeFreqBase: 150000, yarn: { factor: 8, originalContextLength: 4096, betaFast: 32, betaSlow: 1 }, rmsEpsilon: 1e-5,
  }),
  // openai/gpt-oss-20b config.json: hidden 2880, 24 layers, 64/8 heads of 64, 32 experts
  // (4 per token) of intermediate 2880, vocab 201088, sliding window 128 on every
  // other layer starting with layer 0, rope_theta 150000, YaRN x32 from 4096.
  gptOss({
    name: "gpt-oss-20b", description: "the shapes of openai/gpt-oss-20b (20.9B parameters, 3.6B active)",
    vocabSize: 201088, contextLength: 131072, embeddingLength: 2880, layers: 24, heads: 64, kvHeads: 8, headDim: 64,
    experts: 32, expertsUsed: 4, expertFeedForwardLength: 2880, slidingWindow: 128, slidingWindowPattern: 2,
    ropeFreqBase: 150000, yarn: { factor: 32, originalContextLength: 4096, betaFast: 32, betaSlow: 1 }, rmsEpsilon: 1e-5,
  }),
];

export function presetsFor(arch: Architecture): ModelPreset[] {
  return PRESETS.filter((p) => p.arch === arch);
}

export function findPreset(arch: string, name: string): ModelPreset {
  if (!ARCHITECTURES.includes(arch as Architecture)) {
    throw new PsionicError("synth.unknown-arch", `unknown architecture "${arch}"; known: ${ARCHITECTURES.join(", ")}`);
  }
  const preset = PRESETS.find((p) => p.arch === arch && p.name === name);
  if (!preset) {
    const known = presetsFor(arch as Architecture).map((p) => p.name).join(", ");
    throw new PsionicError("synth.unknown-preset", `no ${arch} preset "${name}"; known: ${known}`);
  }
  return preset;
}
