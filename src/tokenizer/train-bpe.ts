// Deterministic BPE training with incremental pair counts.
//
// Words are counted once; each merge touches only the words that contain the
// chosen pair (found through a pair -> words index), and a lazy max-heap finds
// the most frequent pair. Ties go to the pair whose ids are smaller, so the
// same text always yields the same merges. Because training is greedy, the
// first k merges of a longer run equal a k-merge run: a cached list can be
// truncated to any smaller vocabulary.
import { refuse } from "../util/errors.ts";
import { splitWords, type PreTokenizerSpec } from "./pretokenize.ts";
import { BYTE_TO_CHAR, byteEncode, decodeUtf8Lenient, encodeUtf8Binary, stringToBinary } from "./unicode.ts";
import { Heap } from "./heap.ts";

export interface TrainedMerges {
  /** Base symbols first (ids 0..), then each new text a merge produced, in merge order (no duplicates). */
  symbols: string[];
  /** Number of base symbols at the front of `symbols`. */
  baseCount: number;
  /** merges[i] = [left, right] symbol texts, in rank order. */
  merges: [string, string][];
}

interface Word {
  ids: number[];
  count: number;
}

const PAIR_SHIFT = 2 ** 21; // symbol ids stay below 2^21, so a*2^21+b is an exact key

// Pair-count queue entries are [count, key]: most frequent first, ties to the
// smaller key (deterministic); stale entries are skipped by the caller.
const pairBefore = (a: [number, number], b: [number, number]) => a[0] > b[0] || (a[0] === b[0] && a[1] < b[1]);

/** The core loop: learns up to `numMerges` merges over counted words. */
export function learnMerges(words: Word[], baseSymbols: string[], numMerges: number): TrainedMerges {
  if (baseSymbols.length + numMerges >= PAIR_SHIFT) refuse("tokenizer.train", `too many symbols (${baseSymbols.length + numMerges})`);
  const symbols = [...baseSymbols];
  const symbolIds = new Map(symbols.map((t, i) => [t, i]));
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const heap = new Heap<[number, number]>(pairBefore);

  const addPairs = (w: number, sign: 1 | -1) => {
    const { ids, count } = words[w]!;
    for (let i = 0; i + 1 < ids.length; i++) {
      const key = ids[i]! * PAIR_SHIFT + ids[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * count);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(w);
      }
    }
  };
  words.forEach((_, w) => addPairs(w, 1));
  for (const [key, count] of pairCount) heap.push([count, key]);

  const merges: [string, string][] = [];
  while (merges.length < numMerges) {
    const top = heap.pop();
    if (!top) break;
    const [count, key] = top;
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      // Stale: the pair lost occurrences since this entry was pushed (counts of
      // untouched pairs only fall). Re-push its true count; the true maximum
      // is the first entry that pops with a current count.
      if (current > 0) heap.push([current, key]);
      continue;
    }
    const left = Math.floor(key / PAIR_SHIFT), right = key % PAIR_SHIFT;
    // Two different merges can spell the same string ("a"+"bc", "ab"+"c"); they
    // share one symbol, since a vocabulary holds each text once.
    const text = symbols[left]! + symbols[right]!;
    let merged = symbolIds.get(text);
    if (merged === undefined) {
      merged = symbols.length;
      symbols.push(text);
      symbolIds.set(text, merged);
    }
    merges.push([symbols[left]!, symbols[right]!]);

    const touched = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      const ids = words[w]!.ids;
      let has = false;
      for (let i = 0; i + 1 < ids.length; i++) if (ids[i] === left && ids[i + 1] === right) has = true;
      if (!has) continue;
      addPairs(w, -1);
      const next: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === left && ids[i + 1] === right) {
          next.push(merged);
          i++;
        } else next.push(ids[i]!);
      }
      words[w]!.ids = next;
      addPairs(w, 1);
      for (let i = 0; i + 1 < next.length; i++) {
        if (next[i] === merged || next[i + 1] === merged) touched.add(next[i]! * PAIR_SHIFT + next[i + 1]!);
      }
    }
    pairCount.delete(key);
    pairWords.delete(key);
    for (const k of touched) heap.push([pairCount.get(k)!, k]);
  }
  return { symbols, baseCount: baseSymbols.length, merges };
}

/** Counts words of `text` as split by the pre-tokenizer, byte-encoded the GPT-2 way. */
export function countByteLevelWords(text: string, pre: PreTokenizerSpec): Map<string, number> {
  const counts = new Map<string, number>();
  for (const doc of text.split("\n\n")) {
    const cps = decodeUtf8Lenient(stringToBinary(doc + "\n\n"));
    let start = 0;
    for (const len of splitWords(cps, pre.regexes)) {
      const word = byteEncode(encodeUtf8Binary(cps, start, start + len));
      counts.set(word, (counts.get(word) ?? 0) + 1);
      start += len;
    }
  }
  return counts;
}

/** Byte-level BPE: 256 byte symbols (in byte order), then up to `numMerges` merges. */
export function trainByteLevelBpe(text: string, pre: PreTokenizerSpec, numMerges: number): TrainedMerges {
  const base = [...BYTE_TO_CHAR];
  const index = new Map(base.map((c, i) => [c, i]));
  const words: Word[] = [];
  for (const [word, count] of countByteLevelWords(text, pre)) {
    words.push({ ids: [...word].map((c) => index.get(c)!), count });
  }
  return learnMerges(words, base, numMerges);
}

export const SPM_SPACE = "\u2581";

/**
 * SentencePiece-style pieces: each line gets a leading space, spaces become ▁,
 * and words start at each ▁. Characters seen fewer than `minCharCount` times
 * are left out of the base (they will fall back to byte tokens).
 */
export function trainSpmPieces(text: string, numMerges: number, minCharCount = 2): TrainedMerges {
  const wordCounts = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.length === 0) continue;
    const escaped = (" " + line).replaceAll(" ", SPM_SPACE);
    for (const word of escaped.split(new RegExp(`(?=${SPM_SPACE})`))) {
      wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
    }
  }
  const charCounts = new Map<string, number>();
  for (const [word, count] of wordCounts) for (const c of word) charCounts.set(c, (charCounts.get(c) ?? 0) + count);
  const base = [...charCounts.entries()]
    .filter(([, n]) => n >= minCharCount)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([c]) => c);
  const index = new Map(base.map((c, i) => [c, i]));
  const words: Word[] = [];
  for (const [word, count] of wordCounts) {
    // A word with an unknown character is cut there: merges never cross byte fallbacks.
    let ids: number[] = [];
    for (const c of word) {
      const id = index.get(c);
      if (id === undefined) {
        if (ids.length > 1) words.push({ ids, count });
        ids = [];
      } else ids.push(id);
    }
    if (ids.length > 1) words.push({ ids, count });
  }
  return learnMerges(words, base, numMerges);
}
