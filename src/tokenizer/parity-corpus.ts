// Test helper: a deterministic corpus of byte strings for tokenizer parity with
// llama.cpp: Brown sentences and paragraphs, source code, digit runs,
// whitespace runs, many scripts and emoji, invalid UTF-8, special-token text,
// the empty string. Everything comes from a seeded generator over the Brown
// corpus and this checkout's source files, so a failure reproduces exactly on
// the same checkout.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { brownFileSentences, brownFiles } from "./corpus.ts";
import { decodeUtf8Lenient, MAX_CODEPOINT, bytesToBinary } from "./unicode.ts";

/** xorshift32: small, seeded, deterministic. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const enc = new TextEncoder();

const SCRIPTS = [
  "日本語のテキストです。東京は大きい都市です。", "中文测试：你好，世界！我们在这里。", "한국어 문장입니다. 안녕하세요!",
  "العربية: مرحبا بالعالم، كيف حالك؟", "हिन्दी: नमस्ते दुनिया, आप कैसे हैं?", "עברית: שלום עולם", "ไทย: สวัสดีชาวโลก",
  "Русский текст: Привет, мир! ЁЖИК ёжик", "Ελληνικά: Γειά σου Κόσμε ΑΒΓ", "Türkçe: İstanbul ılık ŞİŞLİ", "ǅemal ǈubljana ǋ",
  "naïve café résumé ÉCOLE Ångström", "e\u0301 a\u0308 n\u0303 o\u0302\u0323 Z\u0351\u0352\u0353", "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
  "😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇺🇸🇯🇵 ❤️ ✨🚀", "math: ∑ ∫ √2 ≈ 1.414 ≠ π ∞ ±½ ¾ ² ³ ①②③ Ⅻ", "currency: $5 €10 £3 ¥200 ₹50 ₿",
  "punct: «quotes» „low“ ‘single’ — – … ¡Hola! ¿Qué? 「括弧」【】", "zero\u200bwidth\u200cjoiner\u200d\ufeffbom", "tab\tsep\u00a0nbsp\u3000ideo\u2028ls\u2029ps\u0085nel",
  "ﬁ ﬂ ＡＢＣ ａｂｃ １２３ ｶﾀｶﾅ", "𝐀𝐁𝐂 𝔸𝔹ℂ 𐍈 𓀀 𝄞", "\u0000\u0001\u001f\u007f control chars", "mixedCASEWords iPhone XMLHttpRequest ABCdef HELLOworld",
  "don't I'M they'RE we've she'll he'd it's ''quoted'' ' s 'S 'T 'Ll", "a'b'c' 'twas rock'n'roll O'Neil",
];

const CODE = [
  "function add(a, b) {\n  return a + b;\n}\n", "for (int i = 0; i < n; ++i) {\n\tsum += x[i] * y[i];\n}",
  "def f(x):\n    if x > 0:\n        return x ** 2\n    return -x\n", "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;",
  '{"key": [1, 2.5, -3e10, true, null], "nested": {"a": "b"}}', "<div class=\"x\"><p>Hello &amp; bye</p></div>",
  "x = y // comment\n/* block */ a->b; c::d; e => f; g !== h; i ?? j;", "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }",
  "    indented\n\t\ttabs\n  \n\n\n   trailing   \n", "https://example.com/path?q=1&r=2#frag  user@example.org",
  "C:\\Windows\\System32\\drivers\\etc\\hosts", "$ npm install --save-exact foo@1.2.3 && bun test ./src",
];

const SPECIAL_CONTEXTS = (specials: string[]) =>
  specials.flatMap((s) => [s, `a${s}b`, ` ${s} `, `${s}${s}`, `x ${s}\n${s}y`, s.slice(0, Math.max(1, s.length - 2)), `${s.slice(0, 3)} ${s.slice(3)}`]);

function sourceSnippets(repoRoot: string, rand: () => number, count: number): string[] {
  const files: string[] = [];
  for (const dir of ["src/tokenizer", "src/gguf", "kernels/cpu"]) {
    try {
      for (const f of readdirSync(join(repoRoot, dir)).sort()) if (/\.(ts|c|h)$/.test(f)) files.push(join(repoRoot, dir, f));
    } catch {
      // a folder missing in this checkout just contributes nothing
    }
  }
  const out: string[] = [];
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n");
    for (let i = 0; i < count / Math.max(1, files.length) && lines.length > 0; i++) {
      const at = Math.floor(rand() * lines.length);
      out.push(lines.slice(at, at + 1 + Math.floor(rand() * 8)).join("\n"));
    }
  }
  return out;
}

/** Valid-or-not byte strings; none decodes (llama.cpp's way) to a code point past U+10FFFF. */
function invalidUtf8(rand: () => number, count: number): Uint8Array[] {
  const fixed = [
    [0x80], [0xbf, 0x41], [0xc0, 0x80], [0xc3], [0xc3, 0x28], [0xe2, 0x82], [0xe2, 0x28, 0xa1], [0xed, 0xa0, 0x80],
    [0xf0, 0x9f, 0x98], [0xf0, 0x28, 0x8c, 0x28], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfe], [0xff, 0xfe, 0x41],
    [0x61, 0xe2, 0x96, 0x20, 0x62], [0x20, 0xc3, 0xa9, 0xc3], [0xe2, 0x96, 0x81, 0xe2, 0x96],
  ].map((b) => new Uint8Array(b));
  const out = [...fixed];
  while (out.length < count) {
    const len = 1 + Math.floor(rand() * 12);
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = rand() < 0.5 ? 0x20 + Math.floor(rand() * 0x5f) : 0x80 + Math.floor(rand() * 0x80);
    if (decodeUtf8Lenient(bytesToBinary(b)).every((cp) => cp <= MAX_CODEPOINT)) out.push(b);
  }
  return out;
}

export interface ParityCorpus {
  /** Each case: the bytes, and a short label for failure messages. */
  cases: { label: string; bytes: Uint8Array }[];
}

export function parityCorpus(repoRoot: string, specials: string[], seed = 20260426): ParityCorpus {
  const rand = rng(seed);
  const cases: { label: string; bytes: Uint8Array }[] = [];
  const add = (label: string, s: string | Uint8Array) => cases.push({ label, bytes: typeof s === "string" ? enc.encode(s) : s });

  add("empty", "");
  for (const s of [" ", "  ", "\n", "\t", "a", " a", "a ", "\n\n", " \n ", "'", "''", "'s", "123", "1234567"]) add("tiny", s);

  const files = brownFiles();
  for (let i = 0; i < 1200; i++) {
    const sentences = brownFileSentences(files[Math.floor(rand() * files.length)]!);
    const at = Math.floor(rand() * sentences.length);
    const n = rand() < 0.8 ? 1 : 2 + Math.floor(rand() * 4);
    add("brown", sentences.slice(at, at + n).join(rand() < 0.5 ? " " : "\n"));
  }
  for (const s of sourceSnippets(repoRoot, rand, 400)) add("code", s);
  for (const s of CODE) add("code", s);

  for (let i = 0; i < 300; i++) {
    const len = 1 + Math.floor(rand() * 40);
    let digits = "";
    for (let j = 0; j < len; j++) digits += String(Math.floor(rand() * 10));
    const forms = [digits, `x${digits}y`, ` ${digits} `, `${digits}.${digits.slice(0, 3)}`, digits.replace(/\B(?=(\d{3})+(?!\d))/g, ","), `v${digits.slice(0, 2)}.${digits.slice(2, 4)}`];
    add("numbers", forms[i % forms.length]!);
  }

  const WS = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2009", "\u000b", "\u000c", "\u0085", "\u1680"];
  for (let i = 0; i < 400; i++) {
    let s = rand() < 0.3 ? WS[Math.floor(rand() * WS.length)]! : "";
    const words = 1 + Math.floor(rand() * 5);
    for (let w = 0; w < words; w++) {
      s += ["word", "x", "Hello", "42", ".", "日本", "é", "'s", "!!"][Math.floor(rand() * 9)];
      const run = 1 + Math.floor(rand() * 6);
      for (let k = 0; k < run; k++) s += WS[Math.floor(rand() * WS.length)];
    }
    if (rand() < 0.3) s = s.trimEnd();
    add("whitespace", s);
  }

  for (const s of SCRIPTS) add("scripts", s);
  const all = SCRIPTS.join(" ");
  const cps = [...all];
  for (let i = 0; i < 400; i++) {
    const at = Math.floor(rand() * cps.length);
    add("scripts", cps.slice(at, at + 1 + Math.floor(rand() * 24)).join(""));
  }

  for (const b of invalidUtf8(rand, 300)) add("invalid-utf8", b);

  for (const s of SPECIAL_CONTEXTS(specials)) add("special-text", s);
  for (let i = 0; i < 100 && specials.length > 0; i++) {
    const parts: string[] = [];
    for (let k = 0; k < 4; k++) parts.push(rand() < 0.5 ? specials[Math.floor(rand() * specials.length)]! : ["user", " hello", "\n", "ok."][k]!);
    add("special-text", parts.join(""));
  }
  return { cases };
}
