import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyLlamaContents } from "../gguf/sample-files.ts";
import { serializeGGUF, writeGGUF } from "../gguf/writer.ts";
import { runCli as run } from "./run-in-process.ts";


describe("psionic gguf inspect", () => {
  const dir = mkdtempSync(join(tmpdir(), "psionic-inspect-"));
  const path = join(dir, "tiny.gguf");
  writeGGUF(path, tinyLlamaContents());
  const fileBytes = serializeGGUF(tinyLlamaContents()).length;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("prints architecture, hyper-parameters, tokenizer with special tokens, the tensor table, totals and other metadata", async () => {
    const { code, out, err } = await run(["gguf", "inspect", path]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toContain("architecture  llama");
    expect(out).toContain("name          tiny-llama-test");
    expect(out).toContain(`format        GGUF v3, alignment 32, ${fileBytes.toLocaleString("en-US")} bytes`);
    expect(out).toMatch(/hyper-parameters \(llama\.\*\)\n  block_count\s+1\n/);
    expect(out).toMatch(/  attention\.layer_norm_rms_epsilon\s+0\.00001\n/);
    expect(out).toMatch(/  vocab size\s+64\n  merges\s+2\n/);
    expect(out).toMatch(/  bos token\s+1 "<s>"\n  eos token\s+2 "<\/s>"\n  unknown token\s+0 "<unk>"/);
    expect(out).toMatch(/  token_embd\.weight\s+q8_0\s+\[64, 64\]\s+4,352\n/); // 4096 elements / 32 per block * 34 bytes
    expect(out).toMatch(/  blk\.0\.attn_q\.weight\s+f16\s+\[64, 64\]\s+8,192\n/);
    expect(out).toMatch(/  parameters\s+8,320\n  tensor bytes\s+13,056\n/);
    expect(out).toMatch(/  tokenizer\.ggml\.scores\s+\[64 items\]/);
    expect(out).toMatch(/  tokenizer\.ggml\.add_bos_token\s+true/);
    expect(out).toMatch(/  general\.file_type\s+7/);
  });

  it("prints the same facts as JSON with --json", async () => {
    const { code, out } = await run(["gguf", "inspect", "--json", path]);
    expect(code).toBe(0);
    const x = JSON.parse(out);
    expect(x.architecture).toBe("llama");
    expect(x.hyperParameters.context_length).toBe(256);
    expect(x.tokenizer).toEqual({ model: "llama", pre: "default", vocabSize: 64, merges: 2, specialTokens: { bos: { id: 1, text: "<s>" }, eos: { id: 2, text: "</s>" }, unknown: { id: 0, text: "<unk>" } } });
    expect(x.tensors.map((t: { name: string; bytes: number }) => [t.name, t.bytes])).toEqual([["token_embd.weight", 4352], ["blk.0.attn_norm.weight", 256], ["blk.0.attn_q.weight", 8192], ["output_norm.weight", 256]]);
    expect(x.totals).toEqual({ tensors: 4, parameters: 8320, tensorBytes: 13056, fileBytes });
    expect(x.metadata["tokenizer.ggml.scores"]).toBe("[64 items]");
  });

  it("exits 1 with the reader's message for a bad file", async () => {
    const bad = join(dir, "bad.gguf");
    writeFileSync(bad, "GGML and then some");
    const { code, err } = await run(["gguf", "inspect", bad]);
    expect(code).toBe(1);
    expect(err).toBe(`psionic gguf: ${bad}: not a GGUF file: starts with "GGML", expected "GGUF"`);
    const missing = await run(["gguf", "inspect", join(dir, "absent.gguf")]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("absent.gguf");
  });

  it("exits 2 with the usage line for a missing FILE, an unknown flag, or two files", async () => {
    for (const argv of [["gguf", "inspect"], ["gguf", "inspect", "--bogus", path], ["gguf", "inspect", path, path]]) {
      const { code, err } = await run(argv);
      expect(code).toBe(2);
      expect(err).toContain("usage: psionic gguf inspect FILE [--json]");
    }
    expect((await run(["gguf", "inspect", "--bogus", path])).err).toContain("unknown flag --bogus");
  });
});
