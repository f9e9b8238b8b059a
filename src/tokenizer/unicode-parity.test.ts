// Our Unicode category flags against llama.cpp's tables, for every code point,
// observed through tokenization (see measure-unicode-overrides.ts for the
// probes). A failure here after a library upgrade means the overrides need
// re-measuring: npx bun src/tokenizer/measure-unicode-overrides.ts
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LlamaVocabOracle, writeVocabOnlyGGUF } from "./llama-oracle.ts";
import { probeBytes, probeVocab } from "./measure-unicode-overrides.ts";
import { Tokenizer } from "./tokenizer.ts";
import { MAX_CODEPOINT } from "./unicode.ts";

describe("Unicode categories agree with llama.cpp's tables", () => {
  let dir: string;
  let oracle: LlamaVocabOracle;
  let tok: Tokenizer;
  beforeAll(() => {
    const vocab = probeVocab();
    dir = mkdtempSync(join(tmpdir(), "psionic-uni-"));
    writeVocabOnlyGGUF(join(dir, "probe.gguf"), vocab);
    oracle = LlamaVocabOracle.load(join(dir, "probe.gguf"));
    tok = new Tokenizer(vocab);
  }, 60_000); // synthesizing and loading models is slow on a loaded 2-core machine
  afterAll(() => {
    oracle?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("splits letter, number, punctuation and space probes identically for all 1,114,112 code points", () => {
    const BATCH = 2048;
    const bad: string[] = [];
    for (let start = 0; start <= MAX_CODEPOINT; start += BATCH) {
      const cps: number[] = [];
      for (let cp = start; cp < Math.min(start + BATCH, MAX_CODEPOINT + 1); cp++) cps.push(cp);
      const bytes = probeBytes(cps);
      const want = oracle.tokenize(bytes, false, false);
      const got = tok.encode(bytes, { addSpecial: false });
      if (want.length !== got.length || want.some((x, i) => x !== got[i])) {
        bad.push(`U+${start.toString(16).toUpperCase()}..U+${(start + BATCH - 1).toString(16).toUpperCase()}`);
      }
    }
    expect(bad.length, `blocks with a code point classified differently: ${bad.slice(0, 10).join(" ")}`).toBe(0);
  }, 60_000);
});
