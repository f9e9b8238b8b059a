import { describe, expect, it } from "bun:test";
import { GGUFValueType, kv, metaMap } from "../gguf/metadata.ts";
import { parseGGUF } from "../gguf/reader.ts";
import { serializeGGUF } from "../gguf/writer.ts";
import { HARMONY_FIRST_ID, HARMONY_VOCAB_SIZE } from "./synth-vocab.ts";
import { buildSynthVocab, TokenType, vocabFromMetadata, vocabToMetadata, type Vocab } from "./vocab.ts";
import { refusalText as refusal } from "../util/refusal-of.ts";


describe("Vocab <-> GGUF metadata", () => {
  it("round-trips through a serialized GGUF file", () => {
    for (const vocab of [
      buildSynthVocab({ kind: "bpe", pre: "llama-bpe", vocabSize: 2000 }),
      buildSynthVocab({ kind: "spm", vocabSize: 1500 }),
    ]) {
      const bytes = serializeGGUF({ metadata: [kv.str("general.architecture", "llama"), ...vocabToMetadata(vocab)], tensors: [] });
      const back = vocabFromMetadata(parseGGUF(bytes).meta);
      // Scores pass through float32.
      expect({ ...back, scores: undefined }).toEqual({ ...vocab, scores: undefined });
      if (vocab.scores) expect(back.scores).toEqual(vocab.scores.map((s) => Math.fround(s)));
    }
  });

  it("writes the value types llama.cpp expects", () => {
    const entries = metaMap(vocabToMetadata(buildSynthVocab({ kind: "spm", vocabSize: 1000 })));
    expect(entries.get("tokenizer.ggml.bos_token_id")!.type).toBe(GGUFValueType.UINT32);
    expect((entries.get("tokenizer.ggml.scores")!.value as { itemType: number }).itemType).toBe(GGUFValueType.FLOAT32);
    expect((entries.get("tokenizer.ggml.token_type")!.value as { itemType: number }).itemType).toBe(GGUFValueType.INT32);
  });

  it("refuses broken tokenizer metadata, naming the key", () => {
    const base: Vocab = { model: "gpt2", pre: "gpt-2", tokens: ["a", "b", "ab"], merges: ["a b"] };
    const meta = (v: Partial<Vocab>, extra: ReturnType<typeof kv.str>[] = []) => metaMap([...vocabToMetadata({ ...base, ...v }), ...extra]);
    expect(refusal(() => vocabFromMetadata(new Map()))).toContain("tokenizer.ggml.model");
    expect(refusal(() => vocabFromMetadata(meta({}, [kv.str("tokenizer.ggml.model", "t5")])))).toContain("tokenizer.unsupported-model");
    expect(refusal(() => vocabFromMetadata(meta({ merges: undefined })))).toContain("tokenizer.ggml.merges");
    const badId = metaMap([...vocabToMetadata(base), kv.u32("tokenizer.ggml.eos_token_id", 7)]);
    expect(refusal(() => vocabFromMetadata(badId))).toContain("tokenizer.ggml.eos_token_id: token id 7 is outside");
    const shortScores = metaMap([...vocabToMetadata(base), kv.arr("tokenizer.ggml.scores", GGUFValueType.FLOAT32, [0])]);
    expect(refusal(() => vocabFromMetadata(shortScores))).toContain("1 scores for 3 tokens");
    expect(refusal(() => vocabToMetadata({ ...base, tokenTypes: [1] }))).toContain("token types: 1 entries for 3 tokens");
  });
});

describe("synthesized vocabularies", () => {
  it("gives a 201088-token gpt-4o vocabulary gpt-oss's own special-token ids", () => {
    const v = buildSynthVocab({ kind: "bpe", pre: "gpt-4o", vocabSize: HARMONY_VOCAB_SIZE });
    expect(v.tokens.length).toBe(201088);
    const id = (t: string) => v.tokens.indexOf(t);
    expect(id("<|startoftext|>")).toBe(HARMONY_FIRST_ID);
    expect(id("<|endoftext|>")).toBe(199999);
    expect(id("<|return|>")).toBe(200002);
    expect(id("<|constrain|>")).toBe(200003);
    expect(id("<|channel|>")).toBe(200005);
    expect(id("<|start|>")).toBe(200006);
    expect(id("<|end|>")).toBe(200007);
    expect(id("<|message|>")).toBe(200008);
    expect(id("<|call|>")).toBe(200012);
    expect(v.tokens[201087]).toBe("<|reserved_201087|>");
    expect(v.tokenTypes![200006]).toBe(TokenType.CONTROL);
    // Between the learned tokens and the harmony block: unreachable filler.
    expect(v.tokens[150000]).toBe("<|unused_150000|>");
    expect(v.tokenTypes![150000]).toBe(TokenType.UNUSED);
    expect([v.bosId, v.eosId, v.paddingId]).toEqual([199998, 200002, 199999]);
    expect(new Set(v.tokens).size).toBe(v.tokens.length);
  });

  it("builds every size exactly, deterministically, and refuses sizes that cannot hold the fixed tokens", () => {
    for (const [kind, pre, size] of [["bpe", "gpt-2", 300], ["bpe", "qwen2", 9000], ["spm", undefined, 400], ["bpe", "gpt-4o", 1346]] as const) {
      const a = buildSynthVocab({ kind, pre, vocabSize: size });
      expect(a.tokens.length).toBe(size);
      expect(buildSynthVocab({ kind, pre, vocabSize: size })).toEqual(a);
    }
    expect(refusal(() => buildSynthVocab({ kind: "bpe", pre: "gpt-4o", vocabSize: 1000 }))).toContain("too small");
    expect(refusal(() => buildSynthVocab({ kind: "bpe", pre: "nonsense", vocabSize: 1000 }))).toContain("tokenizer.unknown-pre");
  });

  it("lays out SentencePiece like llama: <unk> <s> </s>, 256 byte tokens, scored pieces", () => {
    const v = buildSynthVocab({ kind: "spm", vocabSize: 3000, specialTokens: ["<|im_start|>"] });
    expect(v.tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
    expect(v.tokens[258]).toBe("<0xFF>");
    expect(v.tokenTypes!.slice(0, 4)).toEqual([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, TokenType.BYTE]);
    expect(v.tokens.at(-1)).toBe("<|im_start|>");
    expect(v.tokens).toContain("▁the");
    const the = v.tokens.indexOf("▁the"), t = v.tokens.indexOf("▁t");
    expect(v.scores![t]!).toBeGreaterThan(v.scores![the]!); // earlier merges score higher
  });
});
