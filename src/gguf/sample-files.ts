// Seeded generators of valid GGUF contents, for the round-trip, fuzz and CLI tests.
// Every value type appears, with edge values (extremes, -0, Infinity, NaN, empty strings
// and arrays, non-ASCII keys, nested arrays), and tensors of several ggml types.
import { GGUFValueType, kv, MAX_ARRAY_DEPTH, type GGUFEntry, type GGUFValue } from "./metadata.ts";
import { GGMLType, typeLayout } from "./types.ts";
import type { GGUFContents, GGUFTensorSource } from "./writer.ts";
import { seededRandom as seededRng } from "../util/seeded-random.ts";
export { seededRng };

export type Rng = () => number;


export const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
export const randInt = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

const STRINGS = ["", "a", "llama", "héllo wörld", "日本語のテキスト", "emoji 🦙🔥", "\u0000nul inside", "\ufeffBOM first", "tab\tnew\nline"];
const FLOATS = [0, -0, 1.5, -2.25, 3.4028234663852886e38, -1e-45, Infinity, -Infinity, NaN];

function randomScalar(rng: Rng, type: GGUFValueType): GGUFValue {
  switch (type) {
    case GGUFValueType.UINT8: return pick(rng, [0, 255, randInt(rng, 0, 255)]);
    case GGUFValueType.INT8: return pick(rng, [-128, 127, randInt(rng, -128, 127)]);
    case GGUFValueType.UINT16: return pick(rng, [0, 65535, randInt(rng, 0, 65535)]);
    case GGUFValueType.INT16: return pick(rng, [-32768, 32767, randInt(rng, -32768, 32767)]);
    case GGUFValueType.UINT32: return pick(rng, [0, 4294967295, randInt(rng, 0, 4294967295)]);
    case GGUFValueType.INT32: return pick(rng, [-2147483648, 2147483647, randInt(rng, -2147483648, 2147483647)]);
    case GGUFValueType.FLOAT32: return rng() < 0.5 ? pick(rng, FLOATS) : Math.fround((rng() - 0.5) * 1e6);
    case GGUFValueType.FLOAT64: return rng() < 0.5 ? pick(rng, [...FLOATS, Number.MIN_VALUE, Number.MAX_VALUE]) : (rng() - 0.5) * 1e300;
    case GGUFValueType.BOOL: return rng() < 0.5;
    case GGUFValueType.STRING: return pick(rng, STRINGS) + (rng() < 0.3 ? String(randInt(rng, 0, 1e6)) : "");
    case GGUFValueType.UINT64: return pick(rng, [0n, 0xffffffffffffffffn, BigInt(randInt(rng, 0, 2 ** 31)) * 0x1_0000_0001n]);
    case GGUFValueType.INT64: return pick(rng, [-0x8000000000000000n, 0x7fffffffffffffffn, BigInt(randInt(rng, -(2 ** 31), 2 ** 31)) * 0x1_0000_0001n]);
  }
  throw new Error(`not a scalar type: ${type}`);
}

const SCALAR_TYPES = [
  GGUFValueType.UINT8, GGUFValueType.INT8, GGUFValueType.UINT16, GGUFValueType.INT16, GGUFValueType.UINT32, GGUFValueType.INT32,
  GGUFValueType.FLOAT32, GGUFValueType.BOOL, GGUFValueType.STRING, GGUFValueType.UINT64, GGUFValueType.INT64, GGUFValueType.FLOAT64,
];

function randomArray(rng: Rng, depth: number): { itemType: GGUFValueType; items: GGUFValue[] } {
  const nested = depth < MAX_ARRAY_DEPTH && rng() < 0.25;
  const itemType = nested ? GGUFValueType.ARRAY : pick(rng, SCALAR_TYPES);
  const n = pick(rng, [0, 1, randInt(rng, 2, 12)]);
  const items = Array.from({ length: n }, () => (nested ? randomArray(rng, depth + 1) : randomScalar(rng, itemType)));
  return { itemType, items };
}

const KEY_STEMS = ["general.name", "llama.block_count", "tokenizer.ggml.tokens", "ключ.юникод", "鍵.テスト", "x", "a.b.c.d.e.f"];

export function randomMetadata(rng: Rng, count: number): GGUFEntry[] {
  const entries: GGUFEntry[] = [];
  for (let i = 0; i < count; i++) {
    const key = `${pick(rng, KEY_STEMS)}.${i}`;
    if (rng() < 0.25) {
      const { itemType, items } = randomArray(rng, 1);
      entries.push(kv.arr(key, itemType, items));
    } else {
      const type = pick(rng, SCALAR_TYPES);
      entries.push({ key, type, value: randomScalar(rng, type) });
    }
  }
  return entries;
}

const TENSOR_TYPES = [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.I8, GGMLType.IQ4_NL];

export function randomTensor(rng: Rng, name: string): GGUFTensorSource {
  const type = pick(rng, TENSOR_TYPES);
  const layout = typeLayout(type)!;
  const nDims = randInt(rng, 0, 4);
  const dims = Array.from({ length: nDims }, (_, i) => (i === 0 ? layout.blockSize * randInt(rng, 1, 3) : randInt(rng, 1, 3)));
  if (nDims === 0 && layout.blockSize !== 1) dims.push(layout.blockSize); // a scalar is one element, not a whole block
  const elements = dims.reduce((a, b) => a * b, 1);
  const data = new Uint8Array((elements / layout.blockSize) * layout.typeSize);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng() * 256);
  return { name, dims, type, data };
}

/** A valid file's contents: random version, alignment (1/8/32/64, stated or default), metadata and tensors. */
export function randomContents(rng: Rng, options: { maxKeys?: number; maxTensors?: number } = {}): GGUFContents {
  const metadata = randomMetadata(rng, randInt(rng, 0, options.maxKeys ?? 12));
  const alignment = pick(rng, [1, 8, 32, 64, undefined]);
  if (alignment !== undefined) metadata.splice(randInt(rng, 0, metadata.length), 0, kv.u32("general.alignment", alignment));
  const tensors = Array.from({ length: randInt(rng, 0, options.maxTensors ?? 5) }, (_, i) => randomTensor(rng, pick(rng, ["blk.0.attn_q.weight", "token_embd", "δ", ""]) + `.${i}`));
  return { version: pick(rng, [2, 3] as const), metadata, tensors };
}

/** A small llama-shaped model's contents, with a tokenizer, for the inspect command's tests. */
export function tinyLlamaContents(): GGUFContents {
  const rng = seededRng(7);
  const tokens = ["<unk>", "<s>", "</s>", ...Array.from({ length: 61 }, (_, i) => `tok${i}`)];
  const tensor = (name: string, dims: number[], type: GGMLType): GGUFTensorSource => {
    const layout = typeLayout(type)!;
    const data = new Uint8Array((dims.reduce((a, b) => a * b, 1) / layout.blockSize) * layout.typeSize);
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng() * 256);
    return { name, dims, type, data };
  };
  return {
    metadata: [
      kv.str("general.architecture", "llama"),
      kv.str("general.name", "tiny-llama-test"),
      kv.u32("llama.block_count", 1),
      kv.u32("llama.context_length", 256),
      kv.u32("llama.embedding_length", 64),
      kv.u32("llama.feed_forward_length", 128),
      kv.u32("llama.attention.head_count", 4),
      kv.f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
      kv.f32("llama.rope.freq_base", 10000),
      kv.str("tokenizer.ggml.model", "llama"),
      kv.str("tokenizer.ggml.pre", "default"),
      kv.arr("tokenizer.ggml.tokens", GGUFValueType.STRING, tokens),
      kv.arr("tokenizer.ggml.scores", GGUFValueType.FLOAT32, tokens.map((_, i) => -i)),
      kv.arr("tokenizer.ggml.merges", GGUFValueType.STRING, ["t o", "to k"]),
      kv.u32("tokenizer.ggml.bos_token_id", 1),
      kv.u32("tokenizer.ggml.eos_token_id", 2),
      kv.u32("tokenizer.ggml.unknown_token_id", 0),
      kv.bool("tokenizer.ggml.add_bos_token", true),
      kv.u32("general.file_type", 7),
    ],
    tensors: [
      tensor("token_embd.weight", [64, 64], GGMLType.Q8_0),
      tensor("blk.0.attn_norm.weight", [64], GGMLType.F32),
      tensor("blk.0.attn_q.weight", [64, 64], GGMLType.F16),
      tensor("output_norm.weight", [64], GGMLType.F32),
    ],
  };
}
