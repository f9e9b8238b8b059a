import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli as run } from "./run-in-process.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-synth-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe("psionic gguf synth", () => {
  it("writes the file and prints its path, parameter count and size", async () => {
    const path = join(dir, "tiny.gguf");
    const { code, out } = await run(["gguf", "synth", "--arch", "gpt-oss", "--preset", "tiny", "--type", "MXFP4", "--seed", "3", "-o", path, "--quiet"]);
    expect(code).toBe(0);
    expect(out).toContain(`wrote ${path}`);
    expect(out).toContain("5,395,224 parameters");
    expect(out).toContain(`${statSync(path).size.toLocaleString("en-US")} bytes`);
  }, 30_000);

  it("lists presets with their parameter counts", async () => {
    const { code, out } = await run(["gguf", "synth", "--list"]);
    expect(code).toBe(0);
    expect(out).toMatch(/gpt-oss\s+gpt-oss-20b\s+20\.91B params/);
    expect(out).toMatch(/llama\s+llama-1b\s+1\.24B params/);
  });

  it("says which tensors fall back to another type", async () => {
    // gpt-oss tiny's experts are 320 wide, so Q4_K's 256-blocks do not fit ffn_down_exps rows.
    const { code, err } = await run(["gguf", "synth", "--arch", "gpt-oss", "--type", "Q4_K", "-o", join(dir, "fallback.gguf"), "-q"]);
    expect(code).toBe(0);
    expect(err).toContain("2 tensor(s) fall back to another type");
    expect(err).toContain("blk.0.ffn_down_exps.weight: rows of 320 do not fill q4_K blocks of 256, stored as q5_0");
  }, 30_000);

  it("refuses bad flags with a message and writes nothing", async () => {
    const path = join(dir, "refused.gguf");
    const cases: [string[], RegExp][] = [
      [["--preset", "tiny", "-o", path], /--arch is required/],
      [["--arch", "llama", "--preset", "tiny"], /-o FILE is required/],
      [["--arch", "llama", "--type", "Q9_9", "-o", path], /--type Q9_9 is not a ggml type/],
      [["--arch", "llama", "--type", "MXFP4", "-o", path], /expert tensors/],
      [["--arch", "gpt-oss", "--tokenizer", "spm", "-o", path], /llama only/],
      [["--arch", "llama", "--tokenizer", "wordpiece", "-o", path], /--tokenizer must be bpe or spm/],
      [["--arch", "llama", "--preset", "giant", "-o", path], /no llama preset "giant"/],
      [["--arch", "llama", "--seed", "-1", "-o", path], /seed must be an integer/],
    ];
    for (const [args, message] of cases) {
      const { code, err } = await run(["gguf", "synth", ...args]);
      expect(code).toBe(1);
      expect(err).toMatch(message);
    }
    expect(existsSync(path)).toBe(false);
  });
});
