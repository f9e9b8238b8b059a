// Token ids back to bytes, as llama.cpp's token_to_piece and detokenize do:
// per-token pieces (GPT-2 characters mapped back to bytes, ▁ back to spaces,
// <0xXX> to its byte), control tokens rendered only on request, and the
// optional clean-up of spaces before punctuation that some vocabularies ask for.
import { ATTR } from "./token-attributes.ts";
import { binaryToString, CHAR_TO_BYTE, stringToBinary } from "./unicode.ts";

const SPM_SPACE_BINARY = "\xe2\x96\x81";

/** A token's piece with special tokens rendered (llama.cpp's cached piece), as a binary string. */
export function tokenPiece(text: string, attr: number, spm: boolean): string {
  if (attr & (ATTR.UNKNOWN | ATTR.CONTROL | ATTR.USER_DEFINED)) return stringToBinary(text);
  if (attr & ATTR.NORMAL) return spm ? stringToBinary(text).replaceAll(SPM_SPACE_BINARY, " ") : decodeByteLevel(text);
  if (attr & ATTR.BYTE) {
    const value = parseInt(text.slice(3, 5), 16);
    return String.fromCharCode(Number.isNaN(value) ? 0 : value & 0xff);
  }
  return "";
}

/** GPT-2 characters back to bytes; a character outside the table is written out as llama.cpp does. */
function decodeByteLevel(text: string): string {
  let out = "";
  for (const c of text) {
    const byte = CHAR_TO_BYTE.get(c);
    if (byte !== undefined) {
      out += String.fromCharCode(byte);
      continue;
    }
    const utf8 = stringToBinary(c);
    let hex = "";
    for (let i = 0; i < utf8.length; i++) hex += utf8.charCodeAt(i).toString(16).padStart(2, "0");
    out += "[UNK_BYTE_0x" + hex + stringToBinary(text) + "]";
  }
  return out;
}

export interface DetokenizeContext {
  pieces: string[];
  attrs: Uint16Array;
  addSpacePrefix: boolean;
  addBos: boolean;
  addEos: boolean;
  bos: number | undefined;
  eos: number | undefined;
  cleanSpaces: boolean;
}

export interface DetokenizeOptions {
  /** Drop a leading BOS / trailing EOS that the vocabulary adds itself. */
  removeSpecial?: boolean;
  /** Render control tokens as their text. */
  unparseSpecial?: boolean;
}

/** One token's piece for output: empty for control/unknown tokens unless `special`. */
export function pieceFor(ctx: DetokenizeContext, id: number, special: boolean): string {
  if (!special && ctx.attrs[id]! & (ATTR.UNKNOWN | ATTR.CONTROL)) return "";
  return ctx.pieces[id]!;
}

/** llama_detokenize, returning a binary string. */
export function detokenize(ctx: DetokenizeContext, ids: number[], opts: DetokenizeOptions = {}): string {
  let first = 0, last = ids.length;
  let removeSpace = ctx.addSpacePrefix;
  if (opts.removeSpecial && ctx.addBos && last > first && ids[first] === ctx.bos) {
    removeSpace = false;
    first++;
  }
  if (opts.removeSpecial && ctx.addEos && last > first && ids[last - 1] === ctx.eos) last--;
  let text = "";
  for (let i = first; i < last; i++) {
    let piece = pieceFor(ctx, ids[i]!, opts.unparseSpecial ?? false);
    if (removeSpace && piece.startsWith(" ")) piece = piece.slice(1);
    removeSpace = false;
    text += piece;
  }
  return ctx.cleanSpaces ? cleanUpSpaces(text) : text;
}

/**
 * clean_up_tokenization_spaces, pass for pass as llama.cpp does it in place
 * (including its habit of reading already-rewritten bytes).
 */
export function cleanUpSpaces(binary: string): string {
  const t: number[] = [];
  for (let i = 0; i < binary.length; i++) t.push(binary.charCodeAt(i));
  const SP = 0x20, APOS = 0x27;
  let total = t.length;
  // 1: " ?", " !", " .", " ,"
  const total1 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total1; i++) {
    const x = t[i]!;
    if (t[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    t[total++] = x;
  }
  // 2: a lone apostrophe between spaces
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; i++) {
    const x = t[i]!;
    if (x === APOS && i + 1 < total2 && t[i - 1] === SP && t[i + 1] === SP) {
      total--;
      t[++i] = 0;
    }
    t[total++] = x;
  }
  // 3: " 's", " 'm", " 're", " 've"
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; i++) {
    const x = t[i]!;
    if (t[i - 1] === SP && x === APOS && i + 1 < total3) {
      const x1 = t[i + 1]!;
      if (x1 === 0x73 || x1 === 0x6d) total--;
      else if (i + 2 < total3) {
        const x2 = t[i + 2]!;
        if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) total--;
      }
    }
    t[total++] = x;
  }
  let out = "";
  for (let i = 0; i < total; i++) out += String.fromCharCode(t[i]!);
  return out;
}

export { binaryToString };
