// Real tokenizers for synthesized models (`psionic gguf synth`): merges learned
// on the Brown corpus, special tokens laid out the way the model family does,
// and the rest of the requested vocabulary size filled so llama.cpp accepts the
// file and never produces the filler.
//
// Layout (ids ascending):
//   learned part  - BPE: 256 byte tokens then merged tokens, in merge order;
//                   SPM: <unk> <s> </s>, 256 <0xXX> byte tokens, base characters, merged pieces
//   filler        - `<|unused_N|>` tokens of type UNUSED: not special (llama.cpp does
//                   not scan text for them), not reachable by merges, decode to nothing
//   special block - the family's control tokens at the very end; for gpt-oss the
//                   exact o200k_harmony block (1090 tokens from <|startoftext|>), so a
//                   201088-token vocabulary has gpt-oss's own ids (200006 = <|start|>)
// Learned merges are capped at `maxMerges` (default: what the cache holds); a
// huge vocabulary like gpt-oss's is mostly filler, which only affects sizes.
// EOT is always written explicitly: without it llama.cpp picks among lookalike
// tokens (<|end|>, <|endoftext|>, ...) in hash-table order.
import { refuse } from "../util/errors.ts";
import { byteLevelMerges, DEFAULT_CACHED_MERGES, spmPieces } from "./merge-cache.ts";
import { preTokenizerSpec } from "./pretokenize.ts";
import { BYTE_TO_CHAR } from "./unicode.ts";
import { TokenType, type Vocab } from "./vocab.ts";

export interface SynthVocabOptions {
  kind: "bpe" | "spm";
  /** BPE pre-tokenizer (`tokenizer.ggml.pre`); default "gpt-2". "gpt-4o" gives the gpt-oss (harmony) layout. */
  pre?: string;
  vocabSize: number;
  /** Control tokens for the special block; default depends on `pre` (see FAMILY_SPECIALS). */
  specialTokens?: string[];
  /** At most this many learned merges (default 8192, the cached amount). */
  maxMerges?: number;
}

/** gpt-oss's special block, ids 199998..201087 in the real vocabulary. */
export const HARMONY_FIRST_ID = 199998;
export const HARMONY_VOCAB_SIZE = 201088;
const HARMONY_NAMED: Record<number, string> = {
  199998: "<|startoftext|>", 199999: "<|endoftext|>", 200002: "<|return|>", 200003: "<|constrain|>",
  200005: "<|channel|>", 200006: "<|start|>", 200007: "<|end|>", 200008: "<|message|>", 200012: "<|call|>",
  200018: "<|endofprompt|>",
};

function harmonyBlock(): string[] {
  const out: string[] = [];
  for (let id = HARMONY_FIRST_ID; id < HARMONY_VOCAB_SIZE; id++) out.push(HARMONY_NAMED[id] ?? `<|reserved_${id}|>`);
  return out;
}

const FAMILY_SPECIALS: Record<string, string[]> = {
  "llama-bpe": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
  qwen2: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
};

export function buildSynthVocab(options: SynthVocabOptions): Vocab {
  const { vocabSize } = options;
  if (!Number.isInteger(vocabSize) || vocabSize <= 0) refuse("tokenizer.synth", `vocabSize ${vocabSize} must be a positive integer`);
  const maxMerges = options.maxMerges ?? DEFAULT_CACHED_MERGES;
  return options.kind === "spm" ? synthSpm(options, maxMerges) : synthBpe(options, maxMerges);
}

/** Tokens between the learned part and the special block. */
function filler(count: number, firstId: number): string[] {
  return Array.from({ length: count }, (_, i) => `<|unused_${firstId + i}|>`);
}

function tooSmall(vocabSize: number, needed: number, what: string): never {
  return refuse("tokenizer.synth", `vocabSize ${vocabSize} is too small: ${what} alone take ${needed} tokens`);
}

function synthBpe(options: SynthVocabOptions, maxMerges: number): Vocab {
  const pre = options.pre ?? "gpt-2";
  const spec = preTokenizerSpec(pre); // refuses unknown names
  const harmony = spec.kind === "gpt4o" && !options.specialTokens;
  const specials = harmony ? harmonyBlock() : (options.specialTokens ?? FAMILY_SPECIALS[pre] ?? ["<|endoftext|>"]);
  const fixed = 256 + specials.length;
  if (options.vocabSize < fixed) tooSmall(options.vocabSize, fixed, "byte tokens and special tokens");
  const merges = byteLevelMerges(spec.kind, Math.min(maxMerges, options.vocabSize - fixed));

  const tokens = [...new Set([...BYTE_TO_CHAR, ...merges.map(([a, b]) => a + b)])];
  const learned = tokens.length;
  tokens.push(...filler(options.vocabSize - specials.length - learned, learned));
  const specialStart = tokens.length;
  tokens.push(...specials);
  const tokenTypes = tokens.map((_, id) =>
    id < learned ? TokenType.NORMAL : id < specialStart ? TokenType.UNUSED : TokenType.CONTROL,
  );
  const idOf = (text: string) => {
    const i = specials.indexOf(text);
    return i < 0 ? undefined : specialStart + i;
  };
  const vocab: Vocab = { model: "gpt2", pre, tokens, tokenTypes, merges: merges.map(([a, b]) => `${a} ${b}`) };
  if (harmony) {
    // As gpt-oss's own GGUF: BOS <|startoftext|>, EOS <|return|>, PAD <|endoftext|>.
    vocab.bosId = idOf("<|startoftext|>");
    vocab.eosId = idOf("<|return|>");
    vocab.paddingId = idOf("<|endoftext|>");
    vocab.eotId = idOf("<|return|>");
    vocab.addBos = false;
  } else if (pre === "llama-bpe" && !options.specialTokens) {
    vocab.bosId = idOf("<|begin_of_text|>");
    vocab.eosId = idOf("<|end_of_text|>");
    vocab.eotId = idOf("<|eot_id|>");
    vocab.addBos = true;
  } else if (pre === "qwen2" && !options.specialTokens) {
    vocab.bosId = idOf("<|endoftext|>");
    vocab.eosId = idOf("<|im_end|>");
    vocab.eotId = idOf("<|im_end|>");
    vocab.addBos = false;
  } else {
    // The first special token serves as BOS, EOS and EOT (GPT-2's <|endoftext|>).
    vocab.bosId = specialStart;
    vocab.eosId = specialStart;
    vocab.eotId = specialStart;
    vocab.addBos = false;
  }
  return vocab;
}

function synthSpm(options: SynthVocabOptions, maxMerges: number): Vocab {
  const specials = options.specialTokens ?? [];
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const { base: allBase, merges: allMerges } = spmPieces(maxMerges);
  const fixed = 3 + 256 + specials.length;
  if (options.vocabSize < fixed) tooSmall(options.vocabSize, fixed, "<unk> <s> </s>, byte tokens and special tokens");
  const base = allBase.slice(0, options.vocabSize - fixed);
  const merges = allMerges.slice(0, Math.max(0, options.vocabSize - fixed - base.length));
  // A merge whose parts are not both in the vocabulary could never apply; drop it and
  // everything after (later merges may build on it).
  const known = new Set(base);
  let usable = 0;
  for (const [a, b] of merges) {
    if (!known.has(a) || !known.has(b)) break;
    known.add(a + b);
    usable++;
  }
  const pieces = [...new Set(merges.slice(0, usable).map(([a, b]) => a + b))].filter((p) => !base.includes(p));

  const tokens = ["<unk>", "<s>", "</s>", ...bytes, ...base, ...pieces];
  const types: TokenType[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, ...bytes.map(() => TokenType.BYTE)];
  const scores: number[] = [0, 0, 0, ...bytes.map(() => 0)];
  // Higher score merges first: merged pieces by merge order, base characters below them all.
  base.forEach((_, i) => {
    types.push(TokenType.NORMAL);
    scores.push(-(pieces.length + i));
  });
  pieces.forEach((_, i) => {
    types.push(TokenType.NORMAL);
    scores.push(-i);
  });
  const fill = filler(options.vocabSize - tokens.length - specials.length, tokens.length);
  tokens.push(...fill, ...specials);
  fill.forEach(() => (types.push(TokenType.UNUSED), scores.push(0)));
  specials.forEach(() => (types.push(TokenType.CONTROL), scores.push(0)));
  return {
    model: "llama", tokens, scores, tokenTypes: types,
    bosId: 1, eosId: 2, unknownId: 0, addBos: true, addEos: false, addSpacePrefix: true,
  };
}
