// Byte-level BPE as llama.cpp's llm_tokenizer_bpe_session runs it: pre-tokenize
// into words, map each word's bytes to GPT-2 characters, then repeatedly merge
// the adjacent pair with the lowest merge rank (ties: leftmost first).
import { Heap } from "./heap.ts";
import { splitWords, type PreTokenizerSpec } from "./pretokenize.ts";
import { byteEncode, decodeUtf8Lenient, encodeUtf8Binary } from "./unicode.ts";

interface Symbol {
  text: string;
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  text: string;
  rank: number;
}

const bigramBefore = (a: Bigram, b: Bigram) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

/** Merge ranks keyed by left + "\0" + right. A merge line splits at its first space after position 0. */
export function mergeRanks(merges: string[]): Map<string, number> {
  const ranks = new Map<string, number>();
  merges.forEach((line, rank) => {
    const space = line.indexOf(" ", 1);
    const key = space < 0 ? "\0" : line.slice(0, space) + "\0" + line.slice(space + 1);
    if (!ranks.has(key)) ranks.set(key, rank); // the first listing wins, as with std::map::emplace
  });
  return ranks;
}

export class BpeEncoder {
  constructor(
    private readonly tokenIds: Map<string, number>,
    private readonly ranks: Map<string, number>,
    private readonly pre: PreTokenizerSpec,
  ) {}

  /** Appends the tokens of one text fragment (a binary string of raw bytes). */
  encodeFragment(binary: string, out: number[]): void {
    const cps = decodeUtf8Lenient(binary);
    const finals: string[] = [];
    let start = 0;
    for (const len of splitWords(cps, this.pre.regexes)) {
      const word = byteEncode(encodeUtf8Binary(cps, start, start + len));
      start += len;
      if (this.pre.ignoreMerges && this.tokenIds.has(word)) finals.push(word);
      else this.mergeWord(word, finals);
    }
    for (const text of finals) {
      const id = this.tokenIds.get(text);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // No token: llama.cpp looks up each UTF-8 byte of the symbol as a one-byte
      // token; only ASCII bytes can name one, the rest are dropped.
      for (const c of text) {
        const code = c.codePointAt(0)!;
        if (code < 0x80) {
          const byteId = this.tokenIds.get(c);
          if (byteId !== undefined) out.push(byteId);
        }
      }
    }
  }

  private mergeWord(word: string, finals: string[]): void {
    const symbols: Symbol[] = [];
    for (let i = 0; i < word.length; i++) symbols.push({ text: word[i]!, prev: i - 1, next: i + 1 < word.length ? i + 1 : -1 });
    const queue = new Heap<Bigram>(bigramBefore);
    const addBigram = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const l = symbols[left]!.text, r = symbols[right]!.text;
      const rank = this.ranks.get(l + "\0" + r);
      if (rank !== undefined) queue.push({ left, right, text: l + r, rank });
    };
    for (let i = 1; i < symbols.length; i++) addBigram(i - 1, i);
    for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
      const left = symbols[bigram.left]!, right = symbols[bigram.right]!;
      if (left.text.length === 0 || right.text.length === 0) continue;
      if (left.text + right.text !== bigram.text) continue; // outdated
      left.text += right.text;
      right.text = "";
      left.next = right.next;
      if (right.next >= 0) symbols[right.next]!.prev = bigram.left;
      addBigram(left.prev, bigram.left);
      addBigram(bigram.left, left.next);
    }
    for (const s of symbols) if (s.text.length > 0) finals.push(s.text);
  }
}
