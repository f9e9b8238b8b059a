// `psionic serve` as a user runs it: a real process that prints where it
// listens, answers HTTP, and stops cleanly on SIGTERM; flag problems are
// usage errors (exit 2).
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGMLType } from "../gguf/types.ts";
import { synthesize } from "../model/synth.ts";
import { cudaDevices } from "../../ffi/cuda.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-serve-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const modelPath = join(dir, "tiny.gguf");
synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 5 }, modelPath);
const mainPath = join(import.meta.dir, "main.ts");

function hasUsableGpu(): boolean {
  try {
    return cudaDevices().length > 0;
  } catch {
    return false;
  }
}

async function psionic(args: string[], env: Record<string, string> = { PSIONIC_DEFAULT_MODEL: "" }) {
  const child = Bun.spawn([process.execPath, mainPath, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, out, err };
}

describe("psionic serve", () => {
  it("refuses to start without -m, with a GPU backend this build lacks, or with a bad flag value (exit 2)", async () => {
    for (const [args, message] of [
      [["serve"], "no model given (-m FILE), and this build embeds no default model"],
      [["serve", "-m", modelPath, "--backend", "metal"], "the metal backend is not available in this build"],
      [["serve", "-m", modelPath, "--reasoning-budget", "max"], "--reasoning-budget must be low, medium or high"],
      [["serve", "-m", modelPath, "--port", "70000"], "--port must be an integer in [0, 65535]"],
    ] as [string[], string][]) {
      const { code, err } = await psionic(args);
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(err).toContain(message);
    }
  }, 30_000);

  it.skipIf(hasUsableGpu())("--backend cuda on a machine without a usable GPU (or without the CUDA library) refuses with the reason", async () => {
    const { code, err } = await psionic(["serve", "-m", modelPath, "--backend", "cuda", "--port", "0"]);
    expect(code).not.toBe(0);
    expect(err).toMatch(/CUDA|libpsionic_cuda/);
    expect(err).not.toMatch(/panic|segmentation|SIGSEGV/i);
  }, 30_000);

  it("serves the default model as psionic-default when -m is not given", async () => {
    const child = Bun.spawn([process.execPath, mainPath, "serve", "--port", "0", "-c", "128", "-t", "1"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, PSIONIC_DEFAULT_MODEL: modelPath } });
    try {
      let out = "";
      const reader = child.stdout.getReader();
      while (!out.includes("listening on")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      const url = out.match(/listening on (http:\/\/\S+)/)![1]!;
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toEqual(["psionic-default"]);
    } finally {
      child.kill("SIGTERM");
      await child.exited;
    }
  }, 30_000);

  it("names a model file that does not exist (exit 1)", async () => {
    const { code, err } = await psionic(["serve", "-m", join(dir, "missing.gguf"), "--port", "0"]);
    expect(code).toBe(1);
    expect(err).toContain("missing.gguf");
  }, 30_000);

  it("prints where it listens, serves the model with -ngl recorded, and stops cleanly on SIGTERM", async () => {
    const child = Bun.spawn([process.execPath, mainPath, "serve", "-m", modelPath, "--port", "0", "-c", "128", "-t", "1", "-ngl", "3"], { stdout: "pipe", stderr: "pipe" });
    const reader = child.stdout.getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const match = /^psionic serve: listening on (http:\/\/127\.0\.0\.1:\d+) \(models: tiny\)$/m.exec(out);
    expect(match).not.toBeNull();
    const url = match![1]!;
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string; context: number; gpu_layers: number }[] };
    expect(models.data.map((m) => [m.id, m.context, m.gpu_layers])).toEqual([["tiny", 128, 3]]);
    const completion = await fetch(`${url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "tiny", prompt: "hi", max_tokens: 2 }) });
    expect(completion.status).toBe(200);
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
    expect(await fetch(`${url}/health`).then(() => "answered", () => "closed")).toBe("closed");
  }, 30_000);
});
