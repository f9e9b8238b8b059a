// --text-output: a synthesized model whose greedy output is whole text (no
// byte fragments, no end token), as serving benchmarks against llama-server need.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../gguf/reader.ts";
import { GGMLType } from "../gguf/types.ts";
import { createBackend } from "../runtime/backends.ts";
import { generate, loadModel } from "../runtime/generator.ts";
import { synthesize } from "./synth.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-text-output-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("gguf synth --text-output", () => {
  it("generates 96 greedy tokens of valid UTF-8 text without ending early, and marks the file", async () => {
    const path = join(dir, "text.gguf");
    synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 3, textOutput: true }, path);
    expect(openGGUF(path).meta.get("psionic.synth.text_output")?.value).toBe(true);
    const loaded = loadModel(path, { backend: await createBackend("cpu", { threads: 2 }), contextLimit: 256 });
    for (const prompt of ["The quick brown fox", "It was", "Numbers: 1 2 3"]) {
      let text = "", tokens: number[] = [];
      for await (const e of generate(loaded, { prompt, maxTokens: 96, sampling: { temperature: 0 } })) {
        if (e.kind === "text") text += e.text;
        else tokens = e.tokens;
      }
      expect(tokens).toHaveLength(96);
      expect(text).not.toContain("\uFFFD");
      // Each token decodes to complete text by itself.
      for (const id of tokens) expect(() => new TextDecoder("utf-8", { fatal: true }).decode(loaded.tokenizer.tokenPieceBytes(id, false))).not.toThrow();
    }
  });

  it("leaves a model without the flag unchanged", () => {
    const a = join(dir, "plain-a.gguf"), b = join(dir, "plain-b.gguf");
    synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 3 }, a);
    synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 3, textOutput: false }, b);
    expect(Bun.hash(Bun.file(a).size + ":" + openGGUF(a).bytes.length)).toBe(Bun.hash(Bun.file(b).size + ":" + openGGUF(b).bytes.length));
    expect(Buffer.compare(openGGUF(a).bytes, openGGUF(b).bytes)).toBe(0);
    expect(openGGUF(a).meta.has("psionic.synth.text_output")).toBe(false);
  });
});
