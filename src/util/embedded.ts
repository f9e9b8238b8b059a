// Files embedded in the compiled executable (kernel libraries, later the
// default model). The generated build/entry.ts registers them; from source
// nothing is registered and callers fall back to build/ paths.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";

const embedded = new Map<string, string>();

export function registerEmbeddedFiles(files: Record<string, string>) {
  for (const [name, path] of Object.entries(files)) embedded.set(name, path);
}

let engineWorker: string | undefined;

/** The compiled executable's engine worker entry (it registers these same files in the worker). */
export function registerEngineWorker(path: string) {
  engineWorker = path;
}

/** Where to start the engine worker from, when the executable embeds one. */
export function embeddedEngineWorker(): string | undefined {
  return engineWorker;
}

/** Readable path of an embedded data file (inside the executable), or undefined when running from source. */
export function embeddedFilePath(name: string): string | undefined {
  return embedded.get(name);
}

/** Where extracted files live: $PSIONIC_CACHE, else $XDG_CACHE_HOME/psionic, else ~/.cache/psionic. */
export function cacheDir(): string {
  return process.env.PSIONIC_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "psionic");
}

/**
 * Path on disk of an embedded file, extracting it on first use into a cache
 * directory named by its SHA-256 (so two versions of psionic never clash and a
 * half-written file is never used: it is written to a temporary name, then renamed).
 * Returns undefined when the file is not embedded (running from source).
 */
export function extractEmbedded(name: string): string | undefined {
  const source = embedded.get(name);
  if (!source) return undefined;
  const bytes = readFileSync(source);
  const digest = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  const dir = join(cacheDir(), digest);
  const target = join(dir, basename(name));
  if (!existsSync(target)) {
    mkdirSync(dir, { recursive: true });
    const temporary = `${target}.${process.pid}.tmp`;
    writeFileSync(temporary, bytes, { mode: 0o755 });
    renameSync(temporary, target);
  }
  return target;
}
