import { describe, expect, it } from "bun:test";
import { metaMap } from "../gguf/metadata.ts";
import { PsionicError } from "../util/errors.ts";
import { splitWords, preTokenizerSpec } from "./pretokenize.ts";
import { Tokenizer } from "./tokenizer.ts";
import { decodeUtf8Lenient, stringToBinary } from "./unicode.ts";
import { buildSynthVocab, vocabToMetadata } from "./vocab.ts";

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof PsionicError) return e.code;
    throw e;
  }
  return "no refusal";
};

const words = (text: string, pre: string) => {
  const cps = decodeUtf8Lenient(stringToBinary(text));
  let at = 0;
  return splitWords(cps, preTokenizerSpec(pre).regexes).map((n) => String.fromCodePoint(...cps.slice(at, (at += n))));
};

describe("pre-tokenizers", () => {
  it("split as llama.cpp's matchers do", () => {
    expect(words("Hello world 12345!!  ok\n\n", "llama-bpe")).toEqual(["Hello", " world", " ", "123", "45", "!!", " ", " ok", "\n\n"]);
    expect(words("Hello world 12345", "qwen2")).toEqual(["Hello", " world", " ", "1", "2", "3", "4", "5"]);
    expect(words("don't  stop", "gpt-2")).toEqual(["don", "'t", " ", " stop"]);
    // llama.cpp's adaptation of o200k: an uppercase letter after lowercase starts a word.
    expect(words("HelloWorld iPhone's", "gpt-4o")).toEqual(["Hello", "World", " i", "Phone's"]);
    // "default" chains four regexes: punctuation runs, GPT-2, digit runs, then digit triples.
    expect(words("a+b==c 1234", "default")).toEqual(["a", "+", "b", "==", "c", " ", "123", "4"]);
  });

  it("refuses an unknown pre-tokenizer by name", () => {
    expect(code(() => preTokenizerSpec("tekken"))).toBe("tokenizer.unknown-pre");
  });
});

describe("Tokenizer", () => {
  const gptoss = new Tokenizer(buildSynthVocab({ kind: "bpe", pre: "gpt-4o", vocabSize: 9800 }));
  const spm = new Tokenizer(buildSynthVocab({ kind: "spm", vocabSize: 4000 }));

  it("loads from GGUF metadata", () => {
    const tok = Tokenizer.fromMetadata(metaMap(vocabToMetadata(buildSynthVocab({ kind: "bpe", pre: "llama-bpe", vocabSize: 3000 }))));
    expect(tok.size).toBe(3000);
    expect(tok.encode("hi")[0]).toBe(tok.special.bos!); // llama-bpe adds BOS
    expect(tok.encode("hi", { addSpecial: false })[0]).not.toBe(tok.special.bos!);
  });

  it("round-trips valid text exactly where no space clean-up applies", () => {
    for (const text of ["Hello, world!  \n\tTabs and 12345 digits.", "日本語 ü é\u0301 👍🏽 العربية", "", " leading space"]) {
      expect(gptoss.decode(gptoss.encode(text))).toBe(text);
      // Without BOS, decoding drops the space SentencePiece put in front (as llama.cpp does).
      expect(spm.decode(spm.encode(text, { addSpecial: false }))).toBe(text);
    }
  });

  it("splits harmony tokens out of text; <|start|> and <|message|> even without parseSpecial", () => {
    const start = gptoss.encode("<|start|>", { addSpecial: false });
    expect(start.length).toBe(1);
    expect(gptoss.tokenText(start[0]!)).toBe("<|start|>");
    // <|return|> is a control token: plain text unless parseSpecial.
    expect(gptoss.encode("<|return|>", { addSpecial: false }).length).toBeGreaterThan(1);
    expect(gptoss.encode("<|return|>", { addSpecial: false, parseSpecial: true }).length).toBe(1);
    expect(gptoss.isEog(gptoss.encode("<|return|>", { parseSpecial: true })[0]!)).toBe(true);
    expect(gptoss.isEog(gptoss.encode("<|end|>", { parseSpecial: true })[0]!)).toBe(false);
  });

  it("streams: a character split across tokens comes out whole, once", () => {
    const ids = spm.encode("a😀b€", { addSpecial: false }); // the emoji falls back to byte tokens
    expect(ids.length).toBeGreaterThan(4);
    const d = spm.createDecoder();
    const parts = ids.map((id) => d.push(id));
    expect(parts.join("") + d.flush()).toBe("a😀b€");
    expect(parts.some((p) => p.includes("\ufffd"))).toBe(false);
    expect(parts.filter((p) => p.includes("😀")).length).toBe(1);
  });

  it("refuses bad ids, repeated token texts and unencodable input", () => {
    expect(code(() => gptoss.decode([gptoss.size]))).toBe("tokenizer.bad-token-id");
    expect(code(() => gptoss.tokenText(-1))).toBe("tokenizer.bad-token-id");
    expect(code(() => new Tokenizer({ model: "gpt2", pre: "gpt-2", tokens: ["a", "a"], merges: [] }))).toBe("tokenizer.bad-vocab");
    // F4 90 80 80 decodes (leniently, as llama.cpp does) past U+10FFFF.
    expect(code(() => gptoss.encode(new Uint8Array([0xf4, 0x90, 0x80, 0x80])))).toBe("tokenizer.invalid-codepoint");
  });
});
