// Unicode facts the tokenizers need, matched to llama.cpp's own behaviour rather
// than to a textbook: its lenient UTF-8 decoder (invalid bytes become U+FFFD one
// byte at a time, overlong forms and surrogates pass through), its category
// flags (one general category per code point plus a fixed whitespace set), and
// GPT-2's byte-to-character table for byte-level BPE.
import { refuse } from "../util/errors.ts";
import { LLAMA_CATEGORY_OVERRIDES } from "./unicode-llama-overrides.ts";

// One bit per general-category group, the same grouping llama.cpp uses.
export const UNDEFINED = 0x0001; // Cn: unassigned
export const NUMBER = 0x0002; // \p{N}
export const LETTER = 0x0004; // \p{L}
export const SEPARATOR = 0x0008; // \p{Z}
export const MARK = 0x0010; // \p{M}
export const PUNCTUATION = 0x0020; // \p{P}
export const SYMBOL = 0x0040; // \p{S}
export const CONTROL = 0x0080; // \p{C} other than Cn
export const WHITESPACE = 0x0100; // the fixed set below, not \p{Z}

export const MAX_CODEPOINT = 0x10ffff;

// llama.cpp's whitespace: C0 \t..\r, space, NEL, NBSP, and the Z* spaces it lists.
const WHITESPACE_SET = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
  0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

const CATEGORY_TESTS: [RegExp, number][] = [
  [/^\p{L}$/u, LETTER], [/^\p{N}$/u, NUMBER], [/^\p{M}$/u, MARK], [/^\p{P}$/u, PUNCTUATION],
  [/^\p{S}$/u, SYMBOL], [/^\p{Z}$/u, SEPARATOR], [/^\p{Cn}$/u, UNDEFINED], [/^\p{C}$/u, CONTROL],
];

// Filled lazily: 0 means "not computed yet" (every real flag set is non-zero).
const flagCache = new Uint16Array(MAX_CODEPOINT + 1);

// JavaScriptCore's \p{..} tables are older than the Unicode version llama.cpp's
// tables come from; code points assigned or recategorised since then take their
// flags from ranges measured against llama.cpp (unicode-llama-overrides.ts).
for (const [first, last, flags] of LLAMA_CATEGORY_OVERRIDES) flagCache.fill(flags, first, last + 1);

/** Tooling only (measure-unicode-overrides.ts): force a code point's flags. */
export function overrideCodepointFlags(cp: number, flags: number): void {
  flagCache[cp] = flags;
}

/** Category flags of a code point; values past U+10FFFF are UNDEFINED, as in llama.cpp. */
export function codepointFlags(cp: number): number {
  if (cp > MAX_CODEPOINT || cp < 0) return UNDEFINED;
  const cached = flagCache[cp]!;
  if (cached !== 0) return cached;
  const s = String.fromCodePoint(cp);
  let flags = UNDEFINED;
  for (const [re, flag] of CATEGORY_TESTS) {
    if (re.test(s)) {
      flags = flag;
      break;
    }
  }
  if (WHITESPACE_SET.has(cp)) flags |= WHITESPACE;
  flagCache[cp] = flags;
  return flags;
}

/**
 * Decodes bytes to code points the way llama.cpp does: a lead byte claims its
 * sequence length only when enough continuation bytes follow; otherwise that
 * one byte becomes U+FFFD. No overlong or surrogate checks. `bytes` is a
 * binary string (one char per byte, codes 0..255).
 */
export function decodeUtf8Lenient(bytes: string): number[] {
  const out: number[] = [];
  const n = bytes.length;
  let i = 0;
  const cont = (k: number) => k < n && (bytes.charCodeAt(k) & 0xc0) === 0x80;
  while (i < n) {
    const b0 = bytes.charCodeAt(i);
    if (b0 < 0x80) {
      out.push(b0);
      i += 1;
    } else if (b0 < 0xc0) {
      out.push(0xfffd);
      i += 1;
    } else if (b0 < 0xe0) {
      if (cont(i + 1)) {
        out.push(((b0 & 0x1f) << 6) | (bytes.charCodeAt(i + 1) & 0x3f));
        i += 2;
      } else {
        out.push(0xfffd);
        i += 1;
      }
    } else if (b0 < 0xf0) {
      if (cont(i + 1) && cont(i + 2)) {
        out.push(((b0 & 0x0f) << 12) | ((bytes.charCodeAt(i + 1) & 0x3f) << 6) | (bytes.charCodeAt(i + 2) & 0x3f));
        i += 3;
      } else {
        out.push(0xfffd);
        i += 1;
      }
    } else if (b0 < 0xf8) {
      if (cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        out.push(
          ((b0 & 0x07) << 18) | ((bytes.charCodeAt(i + 1) & 0x3f) << 12) |
            ((bytes.charCodeAt(i + 2) & 0x3f) << 6) | (bytes.charCodeAt(i + 3) & 0x3f),
        );
        i += 4;
      } else {
        out.push(0xfffd);
        i += 1;
      }
    } else {
      out.push(0xfffd);
      i += 1;
    }
  }
  return out;
}

/**
 * UTF-8 bytes of code points, as a binary string. Surrogates are encoded like
 * any other value (llama.cpp does the same); values past U+10FFFF cannot be
 * encoded and are refused, where llama.cpp throws.
 */
export function encodeUtf8Binary(cps: ArrayLike<number>, start = 0, end = cps.length): string {
  let s = "";
  for (let i = start; i < end; i++) {
    const cp = cps[i]!;
    if (cp < 0x80) s += String.fromCharCode(cp);
    else if (cp < 0x800) s += String.fromCharCode(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) s += String.fromCharCode(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else if (cp <= MAX_CODEPOINT) {
      s += String.fromCharCode(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    } else {
      refuse("tokenizer.invalid-codepoint", `input decodes to code point 0x${cp.toString(16)}, past U+10FFFF; it has no UTF-8 form`);
    }
  }
  return s;
}

/** A binary string (one char per byte) from bytes. */
export function bytesToBinary(bytes: Uint8Array): string {
  let s = "";
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(bytes.length, i + CHUNK)));
  }
  return s;
}

export function binaryToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const utf8Encoder = new TextEncoder();

/** UTF-8 bytes of a JS string as a binary string (lone surrogates become U+FFFD, as TextEncoder does). */
export function stringToBinary(text: string): string {
  return bytesToBinary(utf8Encoder.encode(text));
}

/** Decodes a binary string holding valid UTF-8 (a token's text) to a JS string. */
export function binaryToString(s: string): string {
  return new TextDecoder().decode(binaryToBytes(s));
}

// GPT-2 byte-level BPE: every byte maps to one printable character. Printable
// Latin-1 bytes map to themselves; the other 68 take U+0100 upward, in byte order.
function buildByteTables(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const byteToChar: string[] = new Array(256);
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0;
  for (let b = 0; b < 256; b++) byteToChar[b] = String.fromCharCode(keep(b) ? b : 256 + next++);
  const charToByte = new Map<string, number>();
  byteToChar.forEach((c, b) => charToByte.set(c, b));
  return { byteToChar, charToByte };
}

export const { byteToChar: BYTE_TO_CHAR, charToByte: CHAR_TO_BYTE } = buildByteTables();

/** Maps each byte of a binary string to its GPT-2 character. */
export function byteEncode(binary: string): string {
  let s = "";
  for (let i = 0; i < binary.length; i++) s += BYTE_TO_CHAR[binary.charCodeAt(i)];
  return s;
}
