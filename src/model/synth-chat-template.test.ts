import { describe, expect, it } from "bun:test";
import type { GGUFEntry } from "../gguf/metadata.ts";
import { renderChatTemplate } from "../tokenizer/chat-template.ts";
import type { ChatMessage } from "../tokenizer/chat-types.ts";
import { buildSynthVocab } from "../tokenizer/vocab.ts";
import { findPreset } from "./presets.ts";
import { CHATML_TEMPLATE, PLAIN_TEMPLATE, synthChatTemplate } from "./synth-chat-template.ts";
import { synthVocabMetadata } from "./synth-vocab.ts";

const chatTemplateOf = (entries: GGUFEntry[]) => entries.find((e) => e.key === "tokenizer.chat_template")?.value;
const conversation: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi!" },
  { role: "assistant", content: "Hello." },
  { role: "user", content: null },
];
const tokens = { bosToken: "<s>", eosToken: "</s>" };

describe("synthesized chat templates", () => {
  it("gives synthesized llama files a plain-text template (their vocabularies have no ChatML tokens)", () => {
    const tiny = findPreset("llama", "tiny");
    for (const kind of ["bpe", "spm"] as const) {
      expect(chatTemplateOf(synthVocabMetadata(tiny, kind))).toBe(PLAIN_TEMPLATE);
    }
    expect(renderChatTemplate(PLAIN_TEMPLATE, { ...tokens, messages: conversation })).toBe(
      "### System:\nBe brief.\n### User:\nHi!\n### Assistant:\nHello.\n### User:\n\n### Assistant:\n",
    );
  });

  it("uses ChatML when <|im_start|> and <|im_end|> are special tokens of the vocabulary", () => {
    const qwen = buildSynthVocab({ kind: "bpe", pre: "qwen2", vocabSize: 1024, maxMerges: 200 });
    expect(synthChatTemplate(qwen)).toBe(CHATML_TEMPLATE);
    const named = buildSynthVocab({ kind: "bpe", vocabSize: 1024, maxMerges: 200, specialTokens: ["<|im_start|>"] });
    expect(synthChatTemplate(named)).toBe(PLAIN_TEMPLATE);
    expect(renderChatTemplate(CHATML_TEMPLATE, { ...tokens, messages: conversation.slice(0, 2) })).toBe(
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("leaves gpt-oss files without a template (harmony is rendered in code)", () => {
    expect(chatTemplateOf(synthVocabMetadata(findPreset("gpt-oss", "tiny"), "bpe"))).toBeUndefined();
  });
});
