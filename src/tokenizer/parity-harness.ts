// Test helper: runs one vocabulary through our Tokenizer and llama.cpp's and
// counts every disagreement (token ids, per-token pieces, whole-sequence
// detokenization, attributes, end-of-generation). Each parity test file calls
// this with one vocabulary.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LlamaVocabOracle, writeVocabOnlyGGUF } from "./llama-oracle.ts";
import { parityCorpus } from "./parity-corpus.ts";
import { ATTR } from "./token-attributes.ts";
import { Tokenizer } from "./tokenizer.ts";
import type { Vocab } from "./vocab.ts";

const REPO_ROOT = join(import.meta.dir, "../..");
const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((x, i) => x === b[i]);
const show = (b: Uint8Array) => JSON.stringify(new TextDecoder().decode(b));

/** Mismatches, with the first few spelled out for the failure message. */
class Tally {
  count = 0;
  checked = 0;
  examples: string[] = [];
  check(ok: boolean, describe: () => string): void {
    this.checked++;
    if (ok) return;
    this.count++;
    if (this.examples.length < 8) this.examples.push(describe());
  }
  report(): string {
    return `${this.count} of ${this.checked} differ\n${this.examples.join("\n")}`;
  }
}

export function describeParity(name: string, makeVocab: () => Vocab, timeoutMs = 55_000): void {
  describe(`tokenizer parity with llama.cpp: ${name}`, () => {
    let dir: string;
    let oracle: LlamaVocabOracle;
    let tok: Tokenizer;
    let cases: ReturnType<typeof parityCorpus>["cases"];

    beforeAll(() => {
      const vocab = makeVocab();
      dir = mkdtempSync(join(tmpdir(), "psionic-tok-"));
      const path = join(dir, `${name}.gguf`);
      writeVocabOnlyGGUF(path, vocab);
      oracle = LlamaVocabOracle.load(path);
      tok = new Tokenizer(vocab);
      const specialTexts: string[] = [];
      for (let id = 0; id < tok.size && specialTexts.length < 40; id++) {
        const attr = tok.tokenAttributes(id);
        if (attr & (ATTR.CONTROL | ATTR.USER_DEFINED | ATTR.UNKNOWN) && !tok.tokenText(id).includes("reserved")) specialTexts.push(tok.tokenText(id));
      }
      cases = parityCorpus(REPO_ROOT, specialTexts).cases;
    });

    afterAll(() => {
      oracle?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("has the same size, special ids, attributes and end-of-generation set", () => {
      expect(oracle.size).toBe(tok.size);
      const ids = oracle.specialIds();
      expect(ids.bos).toBe(tok.special.bos ?? -1);
      expect(ids.eos).toBe(tok.special.eos ?? -1);
      expect(ids.eot).toBe(tok.special.eot ?? -1);
      const tally = new Tally();
      for (let id = 0; id < tok.size; id++) {
        tally.check(oracle.attr(id) === tok.tokenAttributes(id), () => `attr of ${id} ${tok.tokenText(id)}: llama ${oracle.attr(id)}, ours ${tok.tokenAttributes(id)}`);
        tally.check(oracle.isEog(id) === tok.isEog(id), () => `eog of ${id} ${tok.tokenText(id)}: llama ${oracle.isEog(id)}`);
      }
      expect(tally.count, tally.report()).toBe(0);
    });

    it("encodes the parity corpus to the same ids (addSpecial x parseSpecial)", () => {
      expect(cases.length).toBeGreaterThan(3000);
      const tally = new Tally();
      for (const { label, bytes } of cases) {
        // Every case plain and with both flags; the mixed flag pairs where they can matter.
        const mixed = label === "special-text" || label === "tiny" || label === "empty";
        const combos = mixed ? [[false, false], [true, false], [false, true], [true, true]] as const : [[false, false], [true, true]] as const;
        for (const [addSpecial, parseSpecial] of combos) {
          const want = oracle.tokenize(bytes, addSpecial, parseSpecial);
          const got = tok.encode(bytes, { addSpecial, parseSpecial });
          tally.check(same(want, got), () => `${label} ${show(bytes)} add=${addSpecial} parse=${parseSpecial}\n  llama ${want.join(",")}\n  ours  ${got.join(",")}`);
        }
      }
      console.log(`${name}: ${tally.checked} encodings compared, ${tally.count} differ`);
      expect(tally.count, tally.report()).toBe(0);
    }, timeoutMs);

    it("renders every token like llama_token_to_piece (special on and off)", () => {
      const tally = new Tally();
      for (let id = 0; id < tok.size; id++) {
        for (const special of [true, false]) {
          const want = oracle.piece(id, special);
          const got = tok.tokenPieceBytes(id, special);
          tally.check(same(want, got), () => `piece ${id} special=${special}: llama ${show(want)}, ours ${show(got)}`);
        }
      }
      expect(tally.count, tally.report()).toBe(0);
    }, timeoutMs);

    it("detokenizes whole sequences like llama_detokenize", () => {
      const tally = new Tally();
      for (const { label, bytes } of cases) {
        const ids = oracle.tokenize(bytes, true, true);
        for (const [removeSpecial, unparseSpecial] of [[false, false], [true, false], [false, true], [true, true]] as const) {
          const want = oracle.detokenize(ids, removeSpecial, unparseSpecial);
          const got = tok.decodeBytes(ids, { removeSpecial, unparseSpecial });
          tally.check(same(want, got), () => `${label} ${show(bytes)} remove=${removeSpecial} unparse=${unparseSpecial}: llama ${show(want)}, ours ${show(got)}`);
        }
      }
      console.log(`${name}: ${tally.checked} detokenizations compared, ${tally.count} differ`);
      expect(tally.count, tally.report()).toBe(0);
    }, timeoutMs);
  });
}
