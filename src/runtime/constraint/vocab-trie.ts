// What constrained decoding needs to know about a vocabulary, built once per
// tokenizer: each token's bytes, which tokens may appear inside JSON output at
// all, the single-byte tokens, and a byte trie of every eligible token's bytes
// (so one walk with the recognizer decides the whole vocabulary).
import type { Tokenizer } from "../../tokenizer/tokenizer.ts";
import { ATTR } from "../../tokenizer/token-attributes.ts";

export interface VocabTrie {
  /** Node 0 is the root (no byte). Children of a node form a list: firstChild, then nextSibling; -1 ends it. */
  firstChild: Int32Array;
  nextSibling: Int32Array;
  /** The byte on the edge into each node. */
  byte: Uint8Array;
  /** Longest path below each node, in bytes. */
  height: Int32Array;
  /** Tokens whose bytes end at each node: tokens[tokenStart .. tokenStart + tokenCount). */
  tokenStart: Int32Array;
  tokenCount: Int32Array;
  tokens: Int32Array;
}

export interface VocabIndex {
  size: number;
  /** Token t's bytes are pieceBytes[pieceStart[t] .. pieceStart[t + 1]). */
  pieceStart: Int32Array;
  pieceBytes: Uint8Array;
  /** 1 for tokens that may appear in JSON output: not control, user-defined, unknown or unused, not empty. */
  eligible: Uint8Array;
  /** An eligible token whose bytes are exactly byte b, or -1. */
  singleByte: Int32Array;
  /** Some eligible token ends inside a UTF-8 character (then continuation bytes may be needed on their own). */
  splitsCharacters: boolean;
  trie: VocabTrie;
}

const NOT_IN_OUTPUT = ATTR.CONTROL | ATTR.USER_DEFINED | ATTR.UNKNOWN | ATTR.UNUSED;

export function buildVocabIndex(tokenizer: Tokenizer): VocabIndex {
  const size = tokenizer.size;
  const pieces: Uint8Array[] = new Array(size);
  let total = 0;
  for (let t = 0; t < size; t++) {
    pieces[t] = tokenizer.tokenPieceBytes(t, false);
    total += pieces[t]!.length;
  }
  const pieceStart = new Int32Array(size + 1);
  const pieceBytes = new Uint8Array(total);
  const eligible = new Uint8Array(size);
  const singleByte = new Int32Array(256).fill(-1);
  let splitsCharacters = false;
  for (let t = 0, at = 0; t < size; t++) {
    const piece = pieces[t]!;
    pieceStart[t] = at;
    pieceBytes.set(piece, at);
    at += piece.length;
    pieceStart[t + 1] = at;
    if (piece.length === 0 || tokenizer.tokenAttributes(t) & NOT_IN_OUTPUT || tokenizer.isEog(t)) continue;
    eligible[t] = 1;
    if (piece.length === 1 && singleByte[piece[0]!]! < 0) singleByte[piece[0]!] = t;
    if (!splitsCharacters && endsInsideCharacter(piece)) splitsCharacters = true;
  }
  return { size, pieceStart, pieceBytes, eligible, singleByte, splitsCharacters, trie: buildTrie(pieces, eligible) };
}

/** True when the last character of `piece` is missing continuation bytes. */
function endsInsideCharacter(piece: Uint8Array): boolean {
  for (let back = 1; back <= 4 && back <= piece.length; back++) {
    const b = piece[piece.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: keep looking for its lead
    const want = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return want > back;
  }
  return false;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Inserts the eligible pieces in byte order, so shared prefixes are consecutive and each node is made once. */
function buildTrie(pieces: Uint8Array[], eligible: Uint8Array): VocabTrie {
  const ids: number[] = [];
  let bytes = 0;
  for (let t = 0; t < pieces.length; t++) {
    if (!eligible[t]) continue;
    ids.push(t);
    bytes += pieces[t]!.length;
  }
  ids.sort((a, b) => compareBytes(pieces[a]!, pieces[b]!) || a - b);
  const capacity = bytes + 1;
  const firstChild = new Int32Array(capacity).fill(-1);
  const nextSibling = new Int32Array(capacity).fill(-1);
  const lastChild = new Int32Array(capacity).fill(-1);
  const parent = new Int32Array(capacity).fill(-1);
  const byte = new Uint8Array(capacity);
  const tokenStart = new Int32Array(capacity);
  const tokenCount = new Int32Array(capacity);
  let nodes = 1;
  const path: number[] = [0]; // path[d] = node at depth d for the previous piece
  let previous: Uint8Array = new Uint8Array(0);
  ids.forEach((id, k) => {
    const piece = pieces[id]!;
    let common = 0;
    while (common < piece.length && common < previous.length && piece[common] === previous[common]) common++;
    path.length = common + 1;
    for (let d = common; d < piece.length; d++) {
      const node = nodes++;
      const up = path[d]!;
      byte[node] = piece[d]!;
      parent[node] = up;
      if (lastChild[up]! < 0) firstChild[up] = node;
      else nextSibling[lastChild[up]!] = node;
      lastChild[up] = node;
      path.push(node);
    }
    const end = path[piece.length]!;
    if (tokenCount[end] === 0) tokenStart[end] = k;
    tokenCount[end]!++;
    previous = piece;
  });
  const height = new Int32Array(nodes);
  // Children are made after their parents, so one backward pass sees every child first.
  for (let n = nodes - 1; n > 0; n--) height[parent[n]!] = Math.max(height[parent[n]!]!, height[n]! + 1);
  return {
    firstChild: firstChild.subarray(0, nodes),
    nextSibling: nextSibling.subarray(0, nodes),
    byte: byte.subarray(0, nodes),
    height,
    tokenStart: tokenStart.subarray(0, nodes),
    tokenCount: tokenCount.subarray(0, nodes),
    tokens: Int32Array.from(ids),
  };
}
