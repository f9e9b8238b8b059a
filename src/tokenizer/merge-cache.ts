// Trained merges are cached as small JSON files in fixtures/tokenizer/, so tests
// and `gguf synth` do not retrain each time. Training is deterministic and
// greedy, so a cached list of N merges serves any request for fewer.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { embeddedFilePath } from "../util/embedded.ts";
import { brownText } from "./corpus.ts";
import { preTokenizerSpec, type PreTokenizerKind } from "./pretokenize.ts";
import { trainByteLevelBpe, trainSpmPieces } from "./train-bpe.ts";

/** Merges trained when nothing is cached (enough for every vocabulary the tests build). */
export const DEFAULT_CACHED_MERGES = 8192;
const FORMAT = 1;

export const CACHE_DIR = join(import.meta.dir, "../../fixtures/tokenizer");

interface CacheFile {
  format: number;
  corpus: "brown";
  /** SentencePiece only: the base characters, most frequent first. */
  base?: string[];
  merges: string[];
}

// A pre-tokenizer name per kind, so training splits text the way the vocabulary will.
const PRE_FOR_KIND: Record<PreTokenizerKind, string> = {
  default: "default", gpt2: "gpt-2", llama3: "llama-bpe", qwen2: "qwen2", gpt4o: "gpt-4o",
};

function readCache(path: string): CacheFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const data = JSON.parse(readFileSync(path, "utf8")) as CacheFile;
    return data.format === FORMAT && Array.isArray(data.merges) ? data : undefined;
  } catch {
    return undefined; // a damaged cache is retrained, never trusted
  }
}

function writeCache(path: string, data: CacheFile): void {
  try {
    mkdirSync(CACHE_DIR, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(data));
    renameSync(tmp, path);
  } catch {
    // Read-only install (e.g. inside the compiled executable): keep the result in memory only.
  }
}

const memory = new Map<string, CacheFile>();

function cached(name: string, count: number, train: (n: number) => CacheFile): CacheFile {
  const hit = memory.get(name);
  if (hit && hit.merges.length >= count) return hit;
  const path = join(CACHE_DIR, `${name}.json`);
  // The compiled executable carries the cache files (build.ts embeds fixtures/tokenizer/*.json).
  let data = readCache(embeddedFilePath(`fixtures/tokenizer/${name}.json`) ?? path);
  if (!data || data.merges.length < count) {
    data = train(Math.max(count, DEFAULT_CACHED_MERGES));
    writeCache(path, data);
  }
  memory.set(name, data);
  return data;
}

const split = (merge: string): [string, string] => {
  const space = merge.indexOf(" ", 1);
  return [merge.slice(0, space), merge.slice(space + 1)];
};

/** The first `count` byte-level BPE merges learned on Brown with this pre-tokenizer. */
export function byteLevelMerges(kind: PreTokenizerKind, count: number): [string, string][] {
  const data = cached(`bpe-merges-${kind}`, count, (n) => ({
    format: FORMAT,
    corpus: "brown",
    merges: trainByteLevelBpe(brownText(), preTokenizerSpec(PRE_FOR_KIND[kind]), n).merges.map(([a, b]) => `${a} ${b}`),
  }));
  return data.merges.slice(0, count).map(split);
}

/** SentencePiece base characters and the first `count` merges learned on Brown. */
export function spmPieces(count: number): { base: string[]; merges: [string, string][] } {
  const data = cached("spm-pieces", count, (n) => {
    const trained = trainSpmPieces(brownText(), n);
    return {
      format: FORMAT,
      corpus: "brown",
      base: trained.symbols.slice(0, trained.baseCount),
      merges: trained.merges.map(([a, b]) => `${a} ${b}`),
    };
  });
  return { base: data.base ?? [], merges: data.merges.slice(0, count).map(split) };
}
