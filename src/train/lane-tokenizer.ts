// The tokenizer a lane trains: byte-level BPE learned on the lane's training
// split only (never the held-out documents), laid out the way llama.cpp reads a
// gpt2-model vocabulary:
//   ids 0..255      the 256 byte tokens (GPT-2 byte-to-character mapping)
//   then            merged tokens in merge order
//   then            `<|unused_N|>` filler (type UNUSED) when two merges spell the
//                   same text, so the vocabulary still has exactly vocabSize ids
//   last two ids    <|begin_of_text|> (BOS) and <|end_of_text|> (EOS, also EOT)
// Training is deterministic (ties broken by id), so the same split and size
// always give the same vocabulary.
import { preTokenizerSpec } from "../tokenizer/pretokenize.ts";
import { trainByteLevelBpe } from "../tokenizer/train-bpe.ts";
import { BYTE_TO_CHAR } from "../tokenizer/unicode.ts";
import { TokenType, type Vocab } from "../tokenizer/vocab.ts";
import { synthChatTemplate } from "../model/synth-chat-template.ts";
import { refuse } from "../util/errors.ts";

export const BOS_TEXT = "<|begin_of_text|>";
export const EOS_TEXT = "<|end_of_text|>";

/** A byte-level BPE vocabulary of exactly `vocabSize` tokens learned on `trainText` (documents separated by blank lines). */
export function trainLaneVocab(trainText: string, vocabSize: number, pre = "llama-bpe"): Vocab {
  const specials = [BOS_TEXT, EOS_TEXT];
  const merges = vocabSize - 256 - specials.length;
  if (merges < 1) refuse("train.bad-lane", `vocabulary size ${vocabSize} leaves no room for merges after 256 byte tokens and BOS/EOS`);
  const trained = trainByteLevelBpe(trainText, preTokenizerSpec(pre), merges);
  const tokens = [...new Set([...BYTE_TO_CHAR, ...trained.merges.map(([a, b]) => a + b)])];
  const learned = tokens.length;
  while (tokens.length < vocabSize - specials.length) tokens.push(`<|unused_${tokens.length}|>`);
  const bosId = tokens.length;
  tokens.push(...specials);
  const tokenTypes = tokens.map((_, id) => (id < learned ? TokenType.NORMAL : id < bosId ? TokenType.UNUSED : TokenType.CONTROL));
  const vocab: Vocab = {
    model: "gpt2",
    pre,
    tokens,
    tokenTypes,
    merges: trained.merges.map(([a, b]) => `${a} ${b}`),
    bosId,
    eosId: bosId + 1,
    eotId: bosId + 1,
    // Training windows start documents with BOS, so prompts should too.
    addBos: true,
    addEos: false,
  };
  vocab.chatTemplate = synthChatTemplate(vocab);
  return vocab;
}
