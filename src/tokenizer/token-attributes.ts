// Token attributes and special ids exactly as llama.cpp derives them at load.
//
// GGUF stores a token type per token, but llama.cpp then adjusts attributes by
// token text: end-of-turn lookalikes become CONTROL, gpt-oss's <|channel|>
// <|message|> <|start|> <|constrain|> become USER_DEFINED (so they are always
// split out of text and always rendered), and with <|return|> and <|call|>
// present, <|end|> stops being end-of-generation. Tokenization and decoding
// depend on these attributes, so they are reproduced rule for rule.
import { TokenType, type Vocab } from "./vocab.ts";

// llama_token_attr bits.
export const ATTR = {
  UNDEFINED: 0, UNKNOWN: 1 << 0, UNUSED: 1 << 1, NORMAL: 1 << 2, CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4, BYTE: 1 << 5, NORMALIZED: 1 << 6, LSTRIP: 1 << 7, RSTRIP: 1 << 8,
} as const;

const TYPE_TO_ATTR: Record<number, number> = {
  [TokenType.UNKNOWN]: ATTR.UNKNOWN, [TokenType.UNUSED]: ATTR.UNUSED, [TokenType.NORMAL]: ATTR.NORMAL,
  [TokenType.CONTROL]: ATTR.CONTROL, [TokenType.USER_DEFINED]: ATTR.USER_DEFINED, [TokenType.BYTE]: ATTR.BYTE,
  [TokenType.UNDEFINED]: ATTR.UNDEFINED,
};

const EOT_TEXTS = new Set([
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
  "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
]);
const EOG_TEXTS = new Set([
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
  "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
  "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
]);
// FIM tokens found by text; pad, repo and file-separator ones also end generation.
const FIM_TEXTS: { texts: string[]; eog: boolean }[] = [
  { texts: ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"], eog: false },
  { texts: ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"], eog: false },
  { texts: ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"], eog: false },
  { texts: ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"], eog: true },
  { texts: ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"], eog: true },
  { texts: ["<|file_sep|>"], eog: true },
];
const ALWAYS_RENDERED = new Set(["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]);

export interface SpecialIds {
  bos: number | undefined;
  eos: number | undefined;
  eot: number | undefined;
  eom: number | undefined;
  unk: number | undefined;
  pad: number | undefined;
  sep: number | undefined;
}

export interface TokenAttributes {
  /** Token texts; empty ones renamed "[EMPTY_i]" as llama.cpp does. */
  texts: string[];
  attrs: Uint16Array;
  special: SpecialIds;
  /** End-of-generation token ids, ascending. */
  eog: number[];
}

/** Derives attributes and special ids as llama_vocab::impl::load does. */
export function deriveTokenAttributes(vocab: Vocab): TokenAttributes {
  const n = vocab.tokens.length;
  const texts = vocab.tokens.map((t, i) => (t.length === 0 ? `[EMPTY_${i}]` : t));
  const attrs = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    attrs[i] = vocab.tokenTypes ? (TYPE_TO_ATTR[vocab.tokenTypes[i]!] ?? ATTR.UNDEFINED) : ATTR.NORMAL;
  }
  const spm = vocab.model === "llama";
  const inRange = (id: number | undefined) => (id !== undefined && id >= 0 && id < n ? id : undefined);
  const special: SpecialIds = {
    bos: vocab.bosId ?? inRange(spm ? 1 : 11),
    eos: vocab.eosId ?? inRange(spm ? 2 : 11),
    eot: vocab.eotId,
    eom: vocab.eomId,
    unk: vocab.unknownId ?? (spm ? inRange(0) : undefined),
    pad: vocab.paddingId,
    sep: vocab.sepId,
  };
  // Where several tokens match a lookalike list, llama.cpp's pick depends on hash
  // order; we take the lowest id.
  const makeControl = (id: number) => (attrs[id] = attrs[id]! | ATTR.CONTROL);
  const eog = new Set<number>();
  if (special.eot === undefined) {
    const id = texts.findIndex((t) => EOT_TEXTS.has(t));
    if (id >= 0) (special.eot = id), makeControl(id);
  }
  if (special.eom === undefined) {
    const id = texts.indexOf("<|eom_id|>");
    if (id >= 0) (special.eom = id), makeControl(id);
  }
  for (const fim of FIM_TEXTS) {
    const id = texts.findIndex((t) => fim.texts.includes(t));
    if (id < 0) continue;
    makeControl(id);
    if (fim.eog) eog.add(id);
  }
  for (let id = 0; id < n; id++) {
    if (attrs[id]! & ATTR.CONTROL && !(attrs[id]! & ATTR.UNUSED) && texts[id]!.includes("unused")) attrs[id] = attrs[id]! | ATTR.UNUSED;
  }
  texts.forEach((t, id) => {
    if (EOG_TEXTS.has(t)) eog.add(id), makeControl(id);
  });
  texts.forEach((t, id) => {
    if (ALWAYS_RENDERED.has(t)) attrs[id] = ATTR.USER_DEFINED;
  });
  for (const id of [special.eos, special.eot, special.eom]) if (id !== undefined) eog.add(id);

  const eogText = (text: string) => [...eog].find((id) => texts[id] === text);
  const end = eogText("<|end|>");
  if (end !== undefined && ((eogText("<|return|>") !== undefined && (eogText("<|call|>") ?? eogText("<|calls|>")) !== undefined) ||
    ((eogText("<|call|>") ?? eogText("<|calls|>")) !== undefined && eogText("<|flush|>") !== undefined))) {
    eog.delete(end);
    attrs[end] = ATTR.USER_DEFINED;
  }
  const closeS = eogText("</s>");
  if (closeS !== undefined && eogText("<|tool_response>") !== undefined) {
    eog.delete(closeS);
    attrs[closeS] = ATTR.NORMAL;
  }
  return { texts, attrs, special, eog: [...eog].sort((a, b) => a - b) };
}
