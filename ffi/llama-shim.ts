// Test-only: compiles a small C shim against node-llama-cpp's prebuilt libllama,
// for oracles that need calls bun:ffi cannot make directly (llama.cpp passes its
// params structs by value). The shim is cached in the temp dir by a hash of its source.
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { refuse } from "../src/util/errors.ts";

export const LLAMA_LIB_DIR = join(import.meta.dir, "../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
export const LLAMA_LIB = "libllama.v0.4.0.so";

/** Path of the compiled shim; `libraries` are linked from LLAMA_LIB_DIR (libllama always). */
export function compileLlamaShim(tag: string, source: string, libraries: string[] = []): string {
  if (process.platform !== "linux" || process.arch !== "x64") refuse("oracle.unavailable", "the llama.cpp oracle runs on linux-x64 only");
  if (!existsSync(join(LLAMA_LIB_DIR, LLAMA_LIB))) refuse("oracle.unavailable", `${LLAMA_LIB} not found in ${LLAMA_LIB_DIR} (npm install)`);
  const hash = Bun.hash(source + LLAMA_LIB_DIR).toString(16);
  const dir = join(tmpdir(), `psionic-${tag}-${hash}`);
  const lib = join(dir, "oracle.so");
  if (existsSync(lib)) return lib;
  mkdirSync(dir, { recursive: true });
  const src = join(dir, "oracle.c");
  writeFileSync(src, source);
  const tmpLib = `${lib}.${process.pid}.tmp`;
  const links = [LLAMA_LIB, ...libraries].map((name) => `-l:${name}`);
  const cc = Bun.spawnSync(["cc", "-O1", "-shared", "-fPIC", "-o", tmpLib, src, `-L${LLAMA_LIB_DIR}`, ...links, `-Wl,-rpath,${LLAMA_LIB_DIR}`]);
  if (cc.exitCode !== 0) refuse("oracle.build", `compiling the llama.cpp ${tag} shim failed: ${cc.stderr.toString()}`);
  renameSync(tmpLib, lib);
  return lib;
}
