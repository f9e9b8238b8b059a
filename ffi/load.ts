// Finds and opens a kernel library: $PSIONIC_<NAME>_LIB, else the copy embedded
// in the executable (extracted to the cache), else build/ beside the sources.
import { dlopen, type FFIFunction } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PsionicError } from "../src/util/errors.ts";
import { extractEmbedded } from "../src/util/embedded.ts";

export function locateLibrary(file: string, envVar: string): string {
  const fromEnv = process.env[envVar] || undefined;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new PsionicError("ffi.missing-library", `${envVar}=${fromEnv}: no such file`);
    return fromEnv;
  }
  const extracted = extractEmbedded(file);
  if (extracted) return extracted;
  const built = join(import.meta.dir, "..", "build", file);
  if (existsSync(built)) return built;
  throw new PsionicError("ffi.missing-library", `${file} not found in ${join(import.meta.dir, "..", "build")}: run \`npx bun run build\` first`);
}

export function openLibrary<Fns extends Record<string, FFIFunction>>(path: string, symbols: Fns) {
  try {
    return dlopen(path, symbols);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new PsionicError("ffi.load-failed", `cannot load ${path}: ${reason}`);
  }
}
