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
});
