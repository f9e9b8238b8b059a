// Pre-tokenizers: how llama.cpp cuts text into words before byte-level BPE.
//
// `tokenizer.ggml.pre` names a list of regexes. llama.cpp applies them one after
// another, each inside the pieces the previous one produced. For the GPT-2,
// Llama-3 and Qwen2 regexes it uses hand-written matchers (whose behaviour
// differs from the regex in corner cases); for the others it runs std::regex
// on a "collapsed" text where every non-ASCII code point is replaced by one
// byte standing for its category. Both are reproduced here, so words match
// llama.cpp's exactly, corner cases included.
import { refuse } from "../util/errors.ts";
import { codepointFlags, LETTER, MARK, NUMBER, PUNCTUATION, SYMBOL, WHITESPACE } from "./unicode.ts";

export type PreTokenizerKind = "default" | "gpt2" | "llama3" | "qwen2" | "gpt4o";

/** How each supported `tokenizer.ggml.pre` value behaves in llama.cpp. */
export interface PreTokenizerSpec {
  kind: PreTokenizerKind;
  regexes: string[];
  /** clean_up_tokenization_spaces on decode. */
  cleanSpaces: boolean;
  /** Look a whole word up in the vocabulary before merging (Llama 3). */
  ignoreMerges: boolean;
  /** The BOS default when metadata does not say. */
  addBos: boolean;
}

export const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
export const LLAMA3_REGEX =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const QWEN2_REGEX =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// llama.cpp's adaptation of o200k's regex (std::regex has no \p{Lu} etc.).
export const GPT4O_REGEX =
  "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DEFAULT_REGEXES = ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_REGEX, "\\p{N}+", "[0-9][0-9][0-9]"];

const SPECS: Record<PreTokenizerKind, PreTokenizerSpec> = {
  default: { kind: "default", regexes: DEFAULT_REGEXES, cleanSpaces: true, ignoreMerges: false, addBos: false },
  gpt2: { kind: "gpt2", regexes: [GPT2_REGEX], cleanSpaces: true, ignoreMerges: false, addBos: false },
  llama3: { kind: "llama3", regexes: [LLAMA3_REGEX], cleanSpaces: true, ignoreMerges: true, addBos: true },
  qwen2: { kind: "qwen2", regexes: [QWEN2_REGEX], cleanSpaces: false, ignoreMerges: false, addBos: false },
  gpt4o: { kind: "gpt4o", regexes: [GPT4O_REGEX], cleanSpaces: false, ignoreMerges: false, addBos: false },
};

// `tokenizer.ggml.pre` values llama.cpp maps to each kind (the subset whose
// other flags match the spec above exactly).
const PRE_NAMES: Record<string, PreTokenizerKind> = {
  default: "default",
  "gpt-2": "gpt2", "phi-2": "gpt2", "jina-es": "gpt2", "jina-de": "gpt2", gigachat: "gpt2", "jina-v2-es": "gpt2",
  "jina-v2-de": "gpt2", "a.x-4.0": "gpt2", mellum: "gpt2", "modern-bert": "gpt2", mpt: "gpt2", olmo: "gpt2",
  llama3: "llama3", "llama-v3": "llama3", "llama-bpe": "llama3", falcon3: "llama3", "falcon-h1": "llama3",
  pixtral: "llama3", "midm-2.0": "llama3", lfm2: "llama3", "jina-v5-nano": "llama3",
  qwen2: "qwen2", "deepseek-r1-qwen": "qwen2", kormo: "qwen2", f2llmv2: "qwen2",
  "gpt-4o": "gpt4o", llama4: "gpt4o", kanana2: "gpt4o", talkie: "gpt4o",
};

/** The pre-tokenizer for a `tokenizer.ggml.pre` value; missing means "default", as in llama.cpp. */
export function preTokenizerSpec(pre: string | undefined): PreTokenizerSpec {
  const kind = PRE_NAMES[pre ?? "default"];
  if (!kind) {
    refuse(
      "tokenizer.unknown-pre",
      `tokenizer.ggml.pre = ${JSON.stringify(pre)} is not supported; supported: ${Object.keys(PRE_NAMES).join(", ")}`,
    );
  }
  return SPECS[kind];
}

/** Splits code points into words; returns word lengths (in code points) that sum to cps.length. */
export function splitWords(cps: number[], regexes: string[]): number[] {
  let lengths = cps.length > 0 ? [cps.length] : [];
  let collapsed: string | undefined;
  for (const regex of regexes) {
    const custom = customSplitter(regex);
    if (custom) {
      lengths = custom(cps, lengths);
    } else if (usesCategories(regex)) {
      collapsed ??= collapseText(cps);
      lengths = splitByRegex(collapsed, collapsedRegex(regex), lengths);
    } else {
      lengths = splitByRegex(wideText(cps), compileRegex(regex), lengths);
    }
  }
  return lengths;
}

type Splitter = (cps: number[], lengths: number[]) => number[];

function customSplitter(regex: string): Splitter | undefined {
  if (regex === GPT2_REGEX) return splitGpt2;
  if (regex === LLAMA3_REGEX) return (cps, lengths) => splitLlama3Like(cps, lengths, 3);
  if (regex === QWEN2_REGEX) return (cps, lengths) => splitLlama3Like(cps, lengths, 1);
  return undefined;
}

/** Runs a hand-written matcher over each existing piece; `match` returns the end of the word at `pos`. */
function splitEach(cps: number[], lengths: number[], match: (pos: number, end: number) => number): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of lengths) {
    const end = start + len;
    let pos = start;
    while (pos < end) {
      const next = match(pos, end);
      out.push(next - pos);
      pos = next;
    }
    start = end;
  }
  return out;
}

const OUT = -1; // "no code point here": past the piece
const APOS = 0x27, SPACE = 0x20, CR = 0x0d, LF = 0x0a;

/** Contraction at pos ('s 't 'm 'd 're 've 'll), or -1. Case-insensitive when `anyCase`. */
function contractionEnd(cps: number[], pos: number, end: number, anyCase: boolean): number {
  if (cps[pos] !== APOS || pos + 1 >= end) return -1;
  const lower = (c: number) => (anyCase && c >= 0x41 && c <= 0x5a ? c + 32 : c);
  const c1 = lower(cps[pos + 1]!);
  if (c1 === 0x73 || c1 === 0x74 || c1 === 0x6d || c1 === 0x64) return pos + 2; // s t m d
  if (pos + 2 < end) {
    const c2 = lower(cps[pos + 2]!);
    if ((c1 === 0x72 && c2 === 0x65) || (c1 === 0x76 && c2 === 0x65) || (c1 === 0x6c && c2 === 0x6c)) return pos + 3; // re ve ll
  }
  return -1;
}

// llama.cpp's GPT-2 matcher. Note \s+(?!\S) keeps the last whitespace for the
// next word only when something follows inside the piece.
function splitGpt2(cps: number[], lengths: number[]): number[] {
  return splitEach(cps, lengths, (pos, end) => {
    const flagsAt = (p: number) => (p < end ? codepointFlags(cps[p]!) : 0);
    const contraction = contractionEnd(cps, pos, end, false);
    if (contraction >= 0) return contraction;
    const cp = cps[pos]!;
    const lead = cp === SPACE ? 1 : 0;
    const f2 = flagsAt(pos + lead);
    if (f2 & LETTER) {
      let p = pos + lead;
      while (flagsAt(p) & LETTER) p++;
      return p;
    }
    if (f2 & NUMBER) {
      let p = pos + lead;
      while (flagsAt(p) & NUMBER) p++;
      return p;
    }
    const other = (f: number) => f !== 0 && !(f & (WHITESPACE | LETTER | NUMBER));
    if (other(f2)) {
      let p = pos + lead;
      while (other(flagsAt(p))) p++;
      return p;
    }
    let ws = 0;
    while (flagsAt(pos + ws) & WHITESPACE) ws++;
    if (ws > 1 && pos + ws < end) return pos + ws - 1;
    if (ws > 0) return pos + ws;
    return pos + 1;
  });
}

// llama.cpp's Llama-3 matcher; Qwen2 is the same with single digits.
function splitLlama3Like(cps: number[], lengths: number[], maxDigits: number): number[] {
  return splitEach(cps, lengths, (pos, end) => {
    const flagsAt = (p: number) => (p < end ? codepointFlags(cps[p]!) : 0);
    const cpAt = (p: number) => (p < end ? cps[p]! : OUT);
    const contraction = contractionEnd(cps, pos, end, true);
    if (contraction >= 0) return contraction;
    const cp = cps[pos]!;
    const flags = flagsAt(pos);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(cp === CR || cp === LF || flags & NUMBER)) {
      if (flags & LETTER || flagsAt(pos + 1) & LETTER) {
        let p = pos + 1;
        while (flagsAt(p) & LETTER) p++;
        return p;
      }
    }
    // \p{N}{1,maxDigits}
    if (flags & NUMBER) {
      let p = pos;
      while (flagsAt(p) & NUMBER && p - pos < maxDigits) p++;
      return p;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*' (the first test looks at the original flags, as llama.cpp does)
    const lead = cp === SPACE ? 1 : 0;
    const f2 = flagsAt(pos + lead);
    if (!(f2 & (WHITESPACE | LETTER | NUMBER)) && flags !== 0) {
      let p = pos + lead;
      let f = f2;
      while (!(f & (WHITESPACE | LETTER | NUMBER)) && f !== 0) f = flagsAt(++p);
      while (cpAt(p) === CR || cpAt(p) === LF) p++;
      return p;
    }
    let ws = 0;
    let lastNewlineEnd = 0;
    while (flagsAt(pos + ws) & WHITESPACE) {
      const c = cps[pos + ws];
      if (c === CR || c === LF) lastNewlineEnd = pos + ws + 1;
      ws++;
    }
    if (lastNewlineEnd > 0) return lastNewlineEnd; // \s*[\r\n]+
    if (ws > 1 && pos + ws < end) return pos + ws - 1; // \s+(?!\S)
    if (ws > 0) return pos + ws; // \s+
    return pos + 1;
  });
}

// ---- the general path: std::regex over collapsed text ----

const CATEGORY_PATTERNS: Record<string, number> = {
  "\\p{N}": NUMBER, "\\p{L}": LETTER, "\\p{P}": PUNCTUATION, "\\p{M}": MARK, "\\p{S}": SYMBOL,
  "\\p{Lu}": LETTER, "\\p{Ll}": LETTER, "\\p{Lt}": LETTER, "\\p{Lm}": LETTER, "\\p{Lo}": LETTER,
};
// The byte each category collapses to, and the ASCII members that keep their own value.
const COLLAPSED_CHAR: Record<number, number> = { [NUMBER]: 0xd1, [LETTER]: 0xd2, [PUNCTUATION]: 0xd3, [MARK]: 0xd4, [SYMBOL]: 0xd5 };
const ASCII_MEMBERS: Record<number, string> = {
  [NUMBER]: "0-9",
  [LETTER]: "A-Za-z",
  [PUNCTUATION]: "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}",
  [MARK]: "",
  [SYMBOL]: "\\$\\+<->\\^`\\|~",
};
const CATEGORY_MASK = 0xff;

function usesCategories(regex: string): boolean {
  return Object.keys(CATEGORY_PATTERNS).some((p) => regex.includes(p));
}

/** One char per code point: ASCII as is, other whitespace as \v, other code points as their category byte. */
function collapseText(cps: number[]): string {
  let s = "";
  for (const cp of cps) {
    if (cp < 128) {
      s += String.fromCharCode(cp);
      continue;
    }
    const flags = codepointFlags(cp);
    if (flags & WHITESPACE) s += "\x0b";
    else s += String.fromCharCode(COLLAPSED_CHAR[flags & CATEGORY_MASK] ?? 0xd0);
  }
  return s;
}

/** One char per code point for category-free regexes; non-ASCII whitespace becomes \v, as in llama.cpp. */
function wideText(cps: number[]): string {
  let s = "";
  for (const cp of cps) {
    if (cp > 0x7f && codepointFlags(cp) & WHITESPACE) s += "\x0b";
    else s += String.fromCharCode(cp > 0xffff ? 0xffff : cp); // only ASCII-level patterns take this path
  }
  return s;
}

const regexCache = new Map<string, RegExp>();

function compileRegex(source: string): RegExp {
  let re = regexCache.get(source);
  if (!re) {
    re = new RegExp(source, "g");
    regexCache.set(source, re);
  }
  return re;
}

/** Rewrites \p{..} to bracket expressions over the collapsed alphabet, as llama.cpp does. */
function collapsedRegex(regex: string): RegExp {
  let out = "";
  let inside = false;
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i]!;
    if (c === "[" && (i === 0 || regex[i - 1] !== "\\")) {
      out += "[";
      inside = true;
      continue;
    }
    if (inside && c === "]" && regex[i - 1] !== "\\") {
      out += "]";
      inside = false;
      continue;
    }
    if (c === "\\" && i + 3 < regex.length && regex[i + 1] === "p" && regex[i + 2] === "{") {
      const close = regex.indexOf("}", i + 3);
      if (close !== -1 && close <= i + 10) {
        const category = CATEGORY_PATTERNS[regex.slice(i, close + 1)];
        if (category !== undefined) {
          const body = String.fromCharCode(COLLAPSED_CHAR[category]!) + ASCII_MEMBERS[category];
          out += inside ? body : `[${body}]`;
          i = close;
          continue;
        }
      }
    }
    out += c;
  }
  return compileRegex(out);
}

/** Splits each piece into regex matches and the gaps between them (gaps stay words of their own). */
function splitByRegex(text: string, re: RegExp, lengths: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of lengths) {
    const piece = text.slice(start, start + len);
    let done = 0;
    re.lastIndex = 0;
    for (let m = re.exec(piece); m !== null; m = re.exec(piece)) {
      if (m[0].length === 0) {
        re.lastIndex++; // std::regex_iterator also steps past empty matches
        continue;
      }
      if (m.index > done) out.push(m.index - done);
      out.push(m[0].length);
      done = m.index + m[0].length;
    }
    if (done < len) out.push(len - done);
    start += len;
  }
  return out;
}
