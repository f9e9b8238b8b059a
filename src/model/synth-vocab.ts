// The tokenizer half of a synthetic model: a real vocabulary built by
// src/tokenizer/vocab.ts (a byte-level BPE trained on the Brown corpus, or a
// SentencePiece-style one), sized to the preset's vocab so the embedding and
// output shapes match it, and stored as the tokenizer.ggml.* keys.
import type { GGUFEntry } from "../gguf/metadata.ts";
import { buildSynthVocab, vocabToMetadata } from "../tokenizer/vocab.ts";
import { PsionicError } from "../util/errors.ts";
import type { ModelPreset } from "./presets.ts";
import { synthChatTemplate } from "./synth-chat-template.ts";

export type TokenizerKind = "bpe" | "spm";
export const TOKENIZER_KINDS: TokenizerKind[] = ["bpe", "spm"];

/**
 * llama.cpp's pre-tokenizer name for each architecture and tokenizer kind:
 * Llama 3's regex for byte-level BPE llama files, o200k's ("gpt-4o") for
 * gpt-oss, and none for SentencePiece, which splits on nothing but spaces.
 */
export function preTokenizerFor(arch: ModelPreset["arch"], kind: TokenizerKind): string {
  if (arch === "gpt-oss") return "gpt-4o";
  return kind === "bpe" ? "llama-bpe" : "default";
}

export function synthVocabMetadata(preset: ModelPreset, kind: TokenizerKind): GGUFEntry[] {
  const vocab = buildSynthVocab({ kind, pre: preTokenizerFor(preset.arch, kind), vocabSize: preset.vocabSize });
  if (preset.arch === "llama") vocab.chatTemplate = synthChatTemplate(vocab);
  const entries = vocabToMetadata(vocab);
  const tokens = entries.find((e) => e.key === "tokenizer.ggml.tokens");
  const count = tokens && typeof tokens.value === "object" && "items" in tokens.value ? tokens.value.items.length : undefined;
  if (count !== preset.vocabSize) {
    throw new PsionicError("synth.vocab-size", `the ${kind} vocabulary for ${preset.arch} ${preset.name} has ${count ?? "no"} tokens, the model's embedding needs exactly ${preset.vocabSize}`);
  }
  return entries;
}
