// `psionic generate` as a user runs it: a real process streaming to stdout,
// timing lines on stderr, usage errors for bad flags (exit 2), and a one-line
// error naming the file and the tensor or key for a broken model (exit 1).
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { contentsOf, openGGUF } from "../gguf/reader.ts";
import { GGMLType } from "../gguf/types.ts";
import { writeGGUF } from "../gguf/writer.ts";
import { synthesize } from "../model/synth.ts";
import { ReferenceBackend } from "../runtime/reference/reference-backend.ts";
import { generate, loadModel } from "../runtime/generator.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-generate-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const modelPath = join(dir, "tiny.gguf");
synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 5 }, modelPath);
const mainPath = join(import.meta.dir, "main.ts");

async function psionic(args: string[], env: Record<string, string> = { PSIONIC_DEFAULT_MODEL: "" }): Promise<{ code: number; out: string; err: string }> {
  const child = Bun.spawn([process.execPath, mainPath, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, out, err };
}

const PROMPT = "It was a bright cold day in April";

describe("psionic generate", () => {
  it("prints the same text the engine generates, then prompt tokens, prefill and decode tok/s on stderr", async () => {
    const { code, out, err } = await psionic(["generate", "-m", modelPath, "-p", PROMPT, "-n", "12", "--temp", "0", "--ignore-eos", "--backend", "reference", "-c", "128"]);
    expect(err).not.toContain("error");
    expect(code).toBe(0);
    const loaded = loadModel(modelPath, { backend: new ReferenceBackend(), contextLimit: 128 });
    let expected = "";
    for await (const e of generate(loaded, { prompt: PROMPT, maxTokens: 12, ignoreEos: true, sampling: { temperature: 0 } })) if (e.kind === "text") expected += e.text;
    expect(out).toBe(`${expected}\n`);
    expect(err).toContain("stopped (max-tokens) after 12 tokens");
    expect(err).toMatch(/prompt eval time = +[\d.]+ ms \/ +\d+ tokens/);
    expect(err).toMatch(/eval time = +[\d.]+ ms \/ +11 runs/);
    expect(err).toMatch(/prompt tokens \d+, prefill [\d.]+ tok\/s, decode [\d.]+ tok\/s/);
  }, 30_000);

  it("gives the same sampled text for the same --seed", async () => {
    const args = ["generate", "-m", modelPath, "-p", PROMPT, "-n", "10", "--seed", "7", "--temp", "1.5", "--ignore-eos", "--backend", "reference", "-c", "64"];
    const [a, b] = [await psionic(args), await psionic(args)];
    expect(a.code).toBe(0);
    expect(b.out).toBe(a.out);
    expect(a.err).toContain("seed 7");
  }, 30_000);

  it("answers an unknown flag, a missing -m and a bad --kv-type with the usage line and exit 2", async () => {
    for (const [args, message] of [
      [["generate", "-m", modelPath, "-p", "x", "--bogus"], "unknown flag --bogus"],
      [["generate", "-p", "x"], "missing -m FILE"],
      [["generate", "-m", modelPath], "missing -p TEXT"],
      [["generate", "-m", modelPath, "-p", "x", "--kv-type", "q8"], "--kv-type must be f16 or f32"],
      [["generate", "-m", modelPath, "-p", "x", "-n", "1.5"], "--n-predict must be an integer"],
    ] as [string[], string][]) {
      const { code, out, err } = await psionic(args);
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(out).toBe("");
      expect(err).toContain(message);
      expect(err).toContain("usage: psionic generate -m FILE -p TEXT");
    }
  }, 30_000);

  it("uses the default model when -m is not given", async () => {
    const { code, err } = await psionic(["generate", "-p", PROMPT, "-n", "3", "--backend", "reference", "-c", "64"], { PSIONIC_DEFAULT_MODEL: modelPath });
    expect(code).toBe(0);
    expect(err).toContain(modelPath);
  }, 30_000);

  it("refuses a prompt longer than -c with both numbers, exit 1", async () => {
    const { code, err } = await psionic(["generate", "-m", modelPath, "-p", PROMPT, "-c", "4", "--backend", "reference"]);
    expect(code).toBe(1);
    expect(err).toMatch(/the prompt is \d+ tokens but the context holds 4 \(-c 4\)/);
  }, 30_000);

  it("names the missing tensor of a broken model in one line, exit 1", async () => {
    const c = contentsOf(openGGUF(modelPath));
    const broken = join(dir, "no-ffn-up.gguf");
    writeGGUF(broken, { ...c, tensors: c.tensors.filter((t) => t.name !== "blk.1.ffn_up.weight") });
    const { code, out, err } = await psionic(["generate", "-m", broken, "-p", "x", "--backend", "reference"]);
    expect(code).toBe(1);
    expect(out).toBe("");
    expect(err.trim()).toBe(`psionic generate: ${broken}: tensor blk.1.ffn_up.weight is required but not in the file`);
  }, 30_000);

  it("names the file of a corrupt (non-GGUF) model in one line, exit 1", async () => {
    const junk = join(dir, "junk.gguf");
    writeFileSync(junk, "this is not a GGUF file at all, just some text");
    const { code, err } = await psionic(["generate", "-m", junk, "-p", "x", "--backend", "reference"]);
    expect(code).toBe(1);
    expect(err.trim().split("\n")).toHaveLength(1);
    expect(err).toStartWith(`psionic generate: ${junk}: `);
  }, 30_000);
});
