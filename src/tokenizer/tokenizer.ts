// The tokenizer a model's GGUF describes, matching llama.cpp token for token:
// special tokens are split out of the text first (longest first, as
// tokenizer_st_partition does), then each plain fragment goes through
// byte-level BPE or SentencePiece; BOS/EOS follow the vocabulary's rules.
import { refuse } from "../util/errors.ts";
import type { GGUFEntry } from "../gguf/metadata.ts";
import { BpeEncoder, mergeRanks } from "./bpe.ts";
import { binaryToString, detokenize, pieceFor, tokenPiece, type DetokenizeContext, type DetokenizeOptions } from "./detokenize.ts";
import { preTokenizerSpec } from "./pretokenize.ts";
import { SpmEncoder } from "./spm.ts";
import { ATTR, deriveTokenAttributes, type SpecialIds } from "./token-attributes.ts";
import { binaryToBytes, bytesToBinary, stringToBinary } from "./unicode.ts";
import { vocabFromMetadata, type Vocab } from "./vocab.ts";

export interface EncodeOptions {
  /** Add BOS/EOS where the vocabulary asks for them (default true). */
  addSpecial?: boolean;
  /** Recognise control tokens written in the text (default false; user-defined ones always are). */
  parseSpecial?: boolean;
}

type Fragment = { start: number; end: number } | { token: number };

const SPM_SPACE_BINARY = "\xe2\x96\x81";
const isCSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

export class Tokenizer {
  readonly special: SpecialIds;
  /** End-of-generation ids (EOS, EOT, and what llama.cpp adds by token text). */
  readonly eogIds: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  private readonly texts: string[];
  private readonly attrs: Uint16Array;
  /** Control, user-defined and unknown tokens: [id, text as binary], longest text first. */
  private readonly specialTokens: [number, string][];
  private readonly encodeFragment: (binary: string, out: number[]) => void;
  private readonly detok: DetokenizeContext;

  static fromMetadata(meta: Map<string, GGUFEntry>): Tokenizer {
    return new Tokenizer(vocabFromMetadata(meta));
  }

  constructor(readonly vocab: Vocab) {
    const spm = vocab.model === "llama";
    const derived = deriveTokenAttributes(vocab);
    this.texts = derived.texts;
    this.attrs = derived.attrs;
    this.special = derived.special;
    this.eogIds = new Set(derived.eog);

    const binaryTexts = this.texts.map(stringToBinary);
    const byText = new Map<string, number>();
    this.texts.forEach((t, id) => {
      // llama.cpp aborts on a repeated token text; we refuse the vocabulary.
      if (byText.has(t)) refuse("tokenizer.bad-vocab", `token ${id} repeats the text of token ${byText.get(t)}: ${JSON.stringify(t)}`);
      byText.set(t, id);
    });

    let cleanSpaces = false;
    if (spm) {
      this.addBos = vocab.addBos ?? true;
      this.addEos = vocab.addEos ?? false;
      this.addSpacePrefix = vocab.addSpacePrefix ?? true;
      const byBinary = new Map(binaryTexts.map((t, id) => [t, id]));
      const byteTokens = new Int32Array(256).fill(-1);
      for (let b = 0; b < 256; b++) {
        byteTokens[b] = byBinary.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`) ?? byBinary.get(String.fromCharCode(b)) ?? -1;
      }
      const scores = new Float32Array(vocab.scores ?? new Array(this.texts.length).fill(0));
      const encoder = new SpmEncoder(byBinary, scores, byteTokens);
      this.encodeFragment = (binary, out) => encoder.encodeFragment(binary, out);
    } else {
      const pre = preTokenizerSpec(vocab.pre);
      cleanSpaces = pre.cleanSpaces;
      this.addBos = vocab.addBos ?? pre.addBos;
      this.addEos = vocab.addEos ?? false;
      this.addSpacePrefix = vocab.addSpacePrefix ?? false;
      const encoder = new BpeEncoder(byText, mergeRanks(vocab.merges ?? []), pre);
      this.encodeFragment = (binary, out) => encoder.encodeFragment(binary, out);
    }

    const specialMask = ATTR.CONTROL | ATTR.USER_DEFINED | ATTR.UNKNOWN;
    this.specialTokens = [];
    this.attrs.forEach((attr, id) => {
      if (attr & specialMask) this.specialTokens.push([id, binaryTexts[id]!]);
    });
    this.specialTokens.sort((a, b) => b[1].length - a[1].length || a[0] - b[0]);

    this.detok = {
      pieces: this.texts.map((t, id) => tokenPiece(t, this.attrs[id]!, spm)),
      attrs: this.attrs,
      addSpacePrefix: this.addSpacePrefix,
      addBos: this.addBos,
      addEos: this.addEos,
      bos: this.special.bos,
      eos: this.special.eos,
      cleanSpaces,
    };
  }

  get size(): number {
    return this.texts.length;
  }

  /** The token's text as stored in the vocabulary. */
  tokenText(id: number): string {
    this.checkId(id);
    return this.texts[id]!;
  }

  /** llama_token_attr bits of a token (after llama.cpp's load-time adjustments). */
  tokenAttributes(id: number): number {
    this.checkId(id);
    return this.attrs[id]!;
  }

  isEog(id: number): boolean {
    return this.eogIds.has(id);
  }

  encode(text: string | Uint8Array, opts: EncodeOptions = {}): number[] {
    const addSpecial = opts.addSpecial ?? true;
    const raw = typeof text === "string" ? stringToBinary(text) : bytesToBinary(text);
    const fragments = this.partition(raw, opts.parseSpecial ?? false);
    const out: number[] = [];
    const need = (id: number | undefined, what: string): number =>
      id ?? refuse("tokenizer.no-special-token", `the vocabulary asks for a ${what} token but defines none`);
    if (addSpecial && this.addBos) out.push(need(this.special.bos, "BOS"));
    let prevSpecial = true; // SentencePiece: a space prefix goes before text that starts the input or follows a special token
    for (const f of fragments) {
      if ("token" in f) {
        out.push(f.token);
        prevSpecial = true;
        continue;
      }
      let piece = raw.slice(f.start, f.end);
      if (this.vocab.model === "llama") {
        if (this.addSpacePrefix && prevSpecial) piece = " " + piece;
        piece = piece.replaceAll(" ", SPM_SPACE_BINARY);
      }
      this.encodeFragment(piece, out);
      prevSpecial = false;
    }
    if (addSpecial && this.addEos) out.push(need(this.special.eos, "EOS"));
    return out;
  }

  /** Text of `ids` (invalid UTF-8 becomes U+FFFD). Control tokens are left out unless `unparseSpecial`. */
  decode(ids: number[], opts: DetokenizeOptions = {}): string {
    return binaryToString(this.decodeBinary(ids, opts));
  }

  /** Exact bytes of `ids`, as llama_detokenize writes them. */
  decodeBytes(ids: number[], opts: DetokenizeOptions = {}): Uint8Array {
    return binaryToBytes(this.decodeBinary(ids, opts));
  }

  /** One token's bytes, as llama_token_to_piece writes them (lstrip 0). */
  tokenPieceBytes(id: number, special = true): Uint8Array {
    this.checkId(id);
    return binaryToBytes(pieceFor(this.detok, id, special));
  }

  /**
   * Streaming decoder: push ids as they are generated, get text as soon as it is
   * complete UTF-8 (a character split across tokens is held back). Pieces are
   * joined as-is, as llama-server streams them: no space clean-up.
   */
  createDecoder(opts: { unparseSpecial?: boolean } = {}): { push(id: number): string; flush(): string } {
    const decoder = new TextDecoder("utf-8");
    let first = true;
    return {
      push: (id: number) => {
        this.checkId(id);
        let piece = pieceFor(this.detok, id, opts.unparseSpecial ?? false);
        if (first && this.addSpacePrefix && piece.startsWith(" ")) piece = piece.slice(1);
        first = false;
        return decoder.decode(binaryToBytes(piece), { stream: true });
      },
      flush: () => decoder.decode(),
    };
  }

  private decodeBinary(ids: number[], opts: DetokenizeOptions): string {
    for (const id of ids) this.checkId(id);
    return detokenize(this.detok, ids, opts);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.texts.length) {
      refuse("tokenizer.bad-token-id", `token id ${id} is outside the vocabulary (size ${this.texts.length})`);
    }
  }

  /** tokenizer_st_partition: split special-token text out of the raw bytes, longest tokens first. */
  private partition(raw: string, parseSpecial: boolean): Fragment[] {
    let fragments: Fragment[] = raw.length > 0 ? [{ start: 0, end: raw.length }] : [];
    for (const [id, text] of this.specialTokens) {
      const attr = this.attrs[id]!;
      if (!parseSpecial && attr & (ATTR.CONTROL | ATTR.UNKNOWN)) continue;
      if (!raw.includes(text)) continue;
      const next: Fragment[] = [];
      for (const f of fragments) {
        if ("token" in f) {
          next.push(f);
          continue;
        }
        let from = f.start;
        for (;;) {
          const at = raw.indexOf(text, from);
          if (at < 0 || at + text.length > f.end) break;
          let leftEnd = at;
          if (attr & ATTR.LSTRIP) while (leftEnd > from && isCSpace(raw.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > from) next.push({ start: from, end: leftEnd });
          next.push({ token: id });
          from = at + text.length;
          if (attr & ATTR.RSTRIP) while (from < f.end && isCSpace(raw.charCodeAt(from))) from++;
        }
        if (from < f.end) next.push({ start: from, end: f.end });
      }
      fragments = next;
    }
    return fragments;
  }
}
