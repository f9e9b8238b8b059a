// A tokenizer vocabulary as GGUF stores it (`tokenizer.ggml.*`), and the
// conversion both ways. The Tokenizer (tokenizer.ts) derives everything else
// (attributes, lookup tables, end-of-generation set) from this.
import { refuse } from "../util/errors.ts";
import {
  GGUFValueType,
  kv,
  metaBoolOptional,
  metaIntegerOptional,
  metaNumberArrayOptional,
  metaStringArrayOptional,
  metaStringOptional,
  type GGUFEntry,
} from "../gguf/metadata.ts";

export { buildSynthVocab, type SynthVocabOptions } from "./synth-vocab.ts";

/** `tokenizer.ggml.token_type` values (llama.h's llama_token_type). */
export enum TokenType {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export type VocabModel = "gpt2" | "llama";

export interface Vocab {
  /** `tokenizer.ggml.model`: gpt2 = byte-level BPE, llama = SentencePiece. */
  model: VocabModel;
  /** `tokenizer.ggml.pre` (BPE pre-tokenizer name); absent means llama.cpp's "default". */
  pre?: string;
  tokens: string[];
  /** SentencePiece merge priorities (higher merges first); optional for BPE. */
  scores?: number[];
  tokenTypes?: TokenType[];
  /** BPE merges in rank order, each "left right". */
  merges?: string[];
  bosId?: number;
  eosId?: number;
  eotId?: number;
  eomId?: number;
  unknownId?: number;
  paddingId?: number;
  sepId?: number;
  addBos?: boolean;
  addEos?: boolean;
  addSpacePrefix?: boolean;
  chatTemplate?: string;
}

const KEY = {
  model: "tokenizer.ggml.model",
  pre: "tokenizer.ggml.pre",
  tokens: "tokenizer.ggml.tokens",
  scores: "tokenizer.ggml.scores",
  tokenTypes: "tokenizer.ggml.token_type",
  merges: "tokenizer.ggml.merges",
  bosId: "tokenizer.ggml.bos_token_id",
  eosId: "tokenizer.ggml.eos_token_id",
  eotId: "tokenizer.ggml.eot_token_id",
  eomId: "tokenizer.ggml.eom_token_id",
  unknownId: "tokenizer.ggml.unknown_token_id",
  paddingId: "tokenizer.ggml.padding_token_id",
  sepId: "tokenizer.ggml.seperator_token_id", // sic: llama.cpp's spelling
  addBos: "tokenizer.ggml.add_bos_token",
  addEos: "tokenizer.ggml.add_eos_token",
  addSpacePrefix: "tokenizer.ggml.add_space_prefix",
  chatTemplate: "tokenizer.chat_template",
} as const;

const ID_FIELDS = ["bosId", "eosId", "eotId", "eomId", "unknownId", "paddingId", "sepId"] as const;
const BOOL_FIELDS = ["addBos", "addEos", "addSpacePrefix"] as const;

/** Reads `tokenizer.*` metadata; refuses (naming the key) what llama.cpp would refuse or misread. */
export function vocabFromMetadata(meta: Map<string, GGUFEntry>): Vocab {
  const model = metaStringOptional(meta, KEY.model);
  if (model === undefined) refuse("tokenizer.missing", `key ${KEY.model}: required but not present`);
  if (model !== "gpt2" && model !== "llama") {
    refuse("tokenizer.unsupported-model", `key ${KEY.model}: "${model}" is not supported (gpt2 or llama)`);
  }
  const tokens = metaStringArrayOptional(meta, KEY.tokens);
  if (!tokens) refuse("tokenizer.missing", `key ${KEY.tokens}: required but not present`);
  if (tokens.length === 0) refuse("tokenizer.bad-vocab", `key ${KEY.tokens}: the vocabulary is empty`);
  const n = tokens.length;

  const vocab: Vocab = { model, tokens };
  const pre = metaStringOptional(meta, KEY.pre);
  if (pre !== undefined) vocab.pre = pre;

  const scores = metaNumberArrayOptional(meta, KEY.scores);
  if (scores) {
    const type = (meta.get(KEY.scores)!.value as { itemType: GGUFValueType }).itemType;
    if (type !== GGUFValueType.FLOAT32 && type !== GGUFValueType.INT32) {
      refuse("tokenizer.bad-vocab", `key ${KEY.scores}: expected float32 or int32 items`);
    }
    if (scores.length < n) refuse("tokenizer.bad-vocab", `key ${KEY.scores}: ${scores.length} scores for ${n} tokens`);
    vocab.scores = scores.slice(0, n);
  }
  const types = metaNumberArrayOptional(meta, KEY.tokenTypes);
  if (types) {
    if ((meta.get(KEY.tokenTypes)!.value as { itemType: GGUFValueType }).itemType !== GGUFValueType.INT32) {
      refuse("tokenizer.bad-vocab", `key ${KEY.tokenTypes}: expected int32 items`);
    }
    if (types.length < n) refuse("tokenizer.bad-vocab", `key ${KEY.tokenTypes}: ${types.length} types for ${n} tokens`);
    vocab.tokenTypes = types.slice(0, n);
  }
  const merges = metaStringArrayOptional(meta, KEY.merges);
  if (merges) vocab.merges = merges;
  if (model === "gpt2" && !merges) refuse("tokenizer.missing", `key ${KEY.merges}: a gpt2 (BPE) vocabulary needs merges`);

  for (const field of ID_FIELDS) {
    const id = metaIntegerOptional(meta, KEY[field]);
    if (id === undefined) continue;
    if (id < 0 || id >= n) refuse("tokenizer.bad-vocab", `key ${KEY[field]}: token id ${id} is outside the vocabulary (size ${n})`);
    vocab[field] = id;
  }
  for (const field of BOOL_FIELDS) {
    const value = metaBoolOptional(meta, KEY[field]);
    if (value !== undefined) vocab[field] = value;
  }
  const template = metaStringOptional(meta, KEY.chatTemplate);
  if (template !== undefined) vocab.chatTemplate = template;
  return vocab;
}

/** The `tokenizer.*` entries for a GGUF file, with the value types llama.cpp expects. */
export function vocabToMetadata(vocab: Vocab): GGUFEntry[] {
  const n = vocab.tokens.length;
  const check = (what: string, len: number | undefined) => {
    if (len !== undefined && len !== n) refuse("tokenizer.bad-vocab", `${what}: ${len} entries for ${n} tokens`);
  };
  check("scores", vocab.scores?.length);
  check("token types", vocab.tokenTypes?.length);
  const out: GGUFEntry[] = [kv.str(KEY.model, vocab.model)];
  if (vocab.pre !== undefined) out.push(kv.str(KEY.pre, vocab.pre));
  out.push(kv.arr(KEY.tokens, GGUFValueType.STRING, vocab.tokens));
  if (vocab.scores) out.push(kv.arr(KEY.scores, GGUFValueType.FLOAT32, vocab.scores));
  if (vocab.tokenTypes) out.push(kv.arr(KEY.tokenTypes, GGUFValueType.INT32, vocab.tokenTypes));
  if (vocab.merges) out.push(kv.arr(KEY.merges, GGUFValueType.STRING, vocab.merges));
  for (const field of ID_FIELDS) {
    const id = vocab[field];
    if (id === undefined) continue;
    if (!Number.isInteger(id) || id < 0 || id >= n) refuse("tokenizer.bad-vocab", `${field}: token id ${id} is outside the vocabulary (size ${n})`);
    out.push(kv.u32(KEY[field], id));
  }
  for (const field of BOOL_FIELDS) {
    const value = vocab[field];
    if (value !== undefined) out.push(kv.bool(KEY[field], value));
  }
  if (vocab.chatTemplate !== undefined) out.push(kv.str(KEY.chatTemplate, vocab.chatTemplate));
  return out;
}
