// The full 201088-token gpt-oss-shaped vocabulary that `gguf synth` writes: llama.cpp
// loads it, agrees on every token's attributes and end-of-generation status, and
// tokenizes the reference harmony prompt identically, with gpt-oss's own ids.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LlamaVocabOracle, writeVocabOnlyGGUF } from "./llama-oracle.ts";
import { HARMONY_VOCAB_SIZE } from "./synth-vocab.ts";
import { Tokenizer } from "./tokenizer.ts";
import { buildSynthVocab } from "./vocab.ts";

// From /work/shared/reference/harmony.md: system prompt + one user turn, reasoning low.
const HARMONY_PROMPT =
  "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\n\nReasoning: low\n\n" +
  "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>" +
  "<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant";

describe("gpt-oss-sized vocabulary (201088 tokens) in llama.cpp", () => {
  let dir: string;
  let oracle: LlamaVocabOracle;
  let tok: Tokenizer;
  beforeAll(() => {
    const vocab = buildSynthVocab({ kind: "bpe", pre: "gpt-4o", vocabSize: HARMONY_VOCAB_SIZE });
    dir = mkdtempSync(join(tmpdir(), "psionic-gptoss-"));
    writeVocabOnlyGGUF(join(dir, "gpt-oss-vocab.gguf"), vocab);
    oracle = LlamaVocabOracle.load(join(dir, "gpt-oss-vocab.gguf"));
    tok = new Tokenizer(vocab);
  }, 60_000); // synthesizing and loading models is slow on a loaded 2-core machine
  afterAll(() => {
    oracle?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("tokenizes the harmony prompt identically, starting <|start|> ... <|message|> = 200006 ... 200008", () => {
    const bytes = new TextEncoder().encode(HARMONY_PROMPT);
    for (const parseSpecial of [true, false]) {
      const ours = tok.encode(HARMONY_PROMPT, { parseSpecial });
      expect(ours).toEqual(oracle.tokenize(bytes, true, parseSpecial));
      expect(ours[0]).toBe(200006);
      expect(ours).toContain(200008);
      expect(ours).toContain(200007);
      expect(tok.decode(ours)).toBe(HARMONY_PROMPT);
    }
  });

  it("agrees on every token's attributes, end-of-generation status and piece", () => {
    expect(oracle.size).toBe(HARMONY_VOCAB_SIZE);
    let differ = 0;
    for (let id = 0; id < tok.size; id++) {
      if (oracle.attr(id) !== tok.tokenAttributes(id) || oracle.isEog(id) !== tok.isEog(id)) differ++;
      const a = oracle.piece(id, true), b = tok.tokenPieceBytes(id, true);
      if (a.length !== b.length || a.some((x, i) => x !== b[i])) differ++;
    }
    expect(differ).toBe(0);
    expect([...tok.eogIds].map((id) => tok.tokenText(id))).toEqual(["<|endoftext|>", "<|return|>", "<|call|>"]);
  }, 30_000);
});
