// SentencePiece (BPE by scores) as llama.cpp's llm_tokenizer_spm_session runs
// it, on raw bytes: symbols start as UTF-8 characters (by lead byte, even when
// the bytes are invalid), the adjacent pair whose concatenation is the token
// with the highest score merges first (ties: leftmost), and any symbol left
// that is not a token is split back along its merges or, failing that, emitted
// as <0xXX> byte tokens.
import { refuse } from "../util/errors.ts";
import { Heap } from "./heap.ts";

interface Symbol {
  start: number;
  n: number;
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

const bigramBefore = (a: Bigram, b: Bigram) => a.score > b.score || (a.score === b.score && a.left < b.left);

/** Bytes a UTF-8 character takes, judged from its first byte only (as llama.cpp does). */
export function utf8LengthFromLead(byte: number): number {
  const high = byte >> 4;
  return high < 12 ? 1 : high < 14 ? 2 : high === 14 ? 3 : 4;
}

export class SpmEncoder {
  constructor(
    /** Token ids by their text's UTF-8 bytes as a binary string. */
    private readonly tokenIds: Map<string, number>,
    private readonly scores: Float32Array,
    /** Id of the token for each byte (<0xXX>, else the one-byte token), or -1. */
    private readonly byteTokens: Int32Array,
  ) {}

  /** Appends the tokens of one escaped fragment (binary string; spaces already ▁). */
  encodeFragment(text: string, out: number[]): void {
    const symbols: Symbol[] = [];
    for (let offs = 0, index = 0; offs < text.length; index++) {
      const n = Math.min(utf8LengthFromLead(text.charCodeAt(offs)), text.length - offs);
      symbols.push({ start: offs, n, prev: index - 1, next: offs + n === text.length ? -1 : index + 1 });
      offs += n;
    }
    const queue = new Heap<Bigram>(bigramBefore);
    const revMerge = new Map<string, [number, number]>();
    const symbolText = (s: Symbol) => text.slice(s.start, s.start + s.n);
    const tryAddBigram = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const l = symbols[left]!, r = symbols[right]!;
      const merged = text.slice(l.start, l.start + l.n + r.n);
      const id = this.tokenIds.get(merged);
      if (id === undefined) return;
      queue.push({ left, right, score: this.scores[id]!, size: merged.length });
      revMerge.set(merged, [left, right]);
    };
    for (let i = 1; i < symbols.length; i++) tryAddBigram(i - 1, i);
    for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
      const left = symbols[bigram.left]!, right = symbols[bigram.right]!;
      if (left.n === 0 || right.n === 0 || left.n + right.n !== bigram.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next]!.prev = bigram.left;
      tryAddBigram(left.prev, bigram.left);
      tryAddBigram(bigram.left, left.next);
    }
    const resegment = (s: Symbol) => {
      const piece = symbolText(s);
      const id = this.tokenIds.get(piece);
      if (id !== undefined) {
        out.push(id);
        return;
      }
      const parts = revMerge.get(piece);
      if (!parts) {
        for (let j = 0; j < piece.length; j++) out.push(this.byteToken(piece.charCodeAt(j)));
        return;
      }
      resegment(symbols[parts[0]]!);
      resegment(symbols[parts[1]]!);
    };
    for (let i = symbols.length > 0 ? 0 : -1; i !== -1; i = symbols[i]!.next) resegment(symbols[i]!);
  }

  private byteToken(byte: number): number {
    const id = this.byteTokens[byte]!;
    if (id < 0) {
      refuse("tokenizer.no-byte-token", `the vocabulary has no token for byte 0x${byte.toString(16).padStart(2, "0")} (<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>)`);
    }
    return id;
  }
}
