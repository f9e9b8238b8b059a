// The single executable: kernel libraries embedded, extracted once into a
// cache directory named by their digest. Runs where `npx bun run build` made dist/psionic (CI does).
import { describe, expect, it } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "../..");
const executable = join(root, "dist/psionic");

describe.skipIf(!existsSync(executable))("dist/psionic", () => {
  it("extracts its embedded CPU kernel library into a digest-named cache directory and uses it", () => {
    const cache = mkdtempSync(join(tmpdir(), "psionic-cache-"));
    try {
      const env = { ...process.env, PSIONIC_CACHE: cache, PSIONIC_CPU_LIB: "" };
      const first = Bun.spawnSync([executable, "--version"], { env });
      expect(first.exitCode).toBe(0);
      expect(first.stdout.toString()).toMatch(/cpu kernels: (avx512|avx2|portable)/);
      const extractedDirs = readdirSync(cache).sort();
      const digestDir = extractedDirs.find((dir) => existsSync(join(cache, dir, "libpsionic_cpu.so")));
      expect(digestDir).toBeDefined();
      const extracted = readFileSync(join(cache, digestDir!, "libpsionic_cpu.so"));
      expect(createHash("sha256").update(extracted).digest("hex").slice(0, 16)).toBe(digestDir!);
      // A second run reuses the extracted file rather than writing another.
      expect(Bun.spawnSync([executable, "--version"], { env }).exitCode).toBe(0);
      expect(readdirSync(cache).sort()).toEqual(extractedDirs);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it("synthesizes a model and inspects it with nothing but the executable", () => {
    const dir = mkdtempSync(join(tmpdir(), "psionic-exe-"));
    try {
      const file = join(dir, "tiny.gguf");
      // Run from an empty directory with no node_modules: the tokenizer merges come from inside the executable.
      const synth = Bun.spawnSync([executable, "gguf", "synth", "--arch", "gpt-oss", "--preset", "tiny", "--type", "MXFP4", "-o", file, "--quiet"], { cwd: dir, env: { ...process.env, PSIONIC_CACHE: dir } });
      expect(synth.stderr.toString()).toBe("");
      expect(synth.exitCode).toBe(0);
      const inspect = Bun.spawnSync([executable, "gguf", "inspect", file], { cwd: dir });
      expect(inspect.exitCode).toBe(0);
      const text = inspect.stdout.toString();
      expect(text).toContain("architecture  gpt-oss");
      expect(text).toMatch(/blk\.0\.ffn_up_exps\.weight\s+mxfp4/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Starts `dist/psionic serve ARGS` and returns its URL (from the listening line) and the process. */
  async function startServe(args: string[], cwd: string, env: Record<string, string | undefined>) {
    const server = Bun.spawn([executable, "serve", "--port", "0", "-t", "1", ...args], { cwd, env, stdout: "pipe", stderr: "pipe" });
    let out = "";
    const reader = server.stdout.getReader();
    while (!/listening on (http:\/\/\S+)/.test(out)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve exited: ${out}${await new Response(server.stderr).text()}`);
      out += new TextDecoder().decode(value);
    }
    return { server, url: out.match(/listening on (http:\/\/\S+)/)![1]! };
  }

  async function complete(url: string, model: string): Promise<{ status: number; tokens: number }> {
    const r = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model, prompt: "Hello", max_tokens: 3 }) });
    return { status: r.status, tokens: r.ok ? ((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens : 0 };
  }

  it("serves a model from an empty directory: the engine worker runs inside the executable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "psionic-exe-serve-"));
    const env = { ...process.env, PSIONIC_CACHE: dir, PSIONIC_CPU_LIB: "" };
    const file = join(dir, "tiny.gguf");
    expect(Bun.spawnSync([executable, "gguf", "synth", "--arch", "llama", "--preset", "tiny", "--type", "Q8_0", "-o", file, "--quiet"], { cwd: dir, env }).exitCode).toBe(0);
    const { server, url } = await startServe(["-m", file], dir, env);
    try {
      expect(await complete(url, "tiny")).toEqual({ status: 200, tokens: 3 });
    } finally {
      server.kill();
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("serves its embedded default model with no -m", async () => {
    const dir = mkdtempSync(join(tmpdir(), "psionic-exe-default-"));
    const env = { ...process.env, PSIONIC_CACHE: dir, PSIONIC_CPU_LIB: "", PSIONIC_DEFAULT_MODEL: undefined };
    const { server, url } = await startServe([], dir, env);
    try {
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string; architecture: string }[] };
      expect(models.data.map((m) => [m.id, m.architecture])).toEqual([["psionic-default", "llama"]]);
      expect(await complete(url, "psionic-default")).toEqual({ status: 200, tokens: 3 });
    } finally {
      server.kill();
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("trains the brown-tiny lane from an empty directory: lanes and the Brown corpus are embedded", () => {
    const dir = mkdtempSync(join(tmpdir(), "psionic-exe-train-"));
    try {
      const run = join(dir, "run");
      const train = Bun.spawnSync([executable, "train", "--lane", "brown-tiny", "--run-root", run, "--steps", "2"], { cwd: dir, env: { ...process.env, PSIONIC_CACHE: dir } });
      expect(train.exitCode).toBe(0);
      expect(train.stderr.toString()).toContain("step 2/");
      expect(readdirSync(join(run, "checkpoints"))).toContain("latest.json");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
