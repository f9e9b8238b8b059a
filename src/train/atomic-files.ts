// Durable, atomic file writes and content digests for run roots. A write goes
// to a temp file beside the target, is fsynced, renamed over the target, and
// the directory is fsynced so the rename itself survives a power cut: a reader
// (or a process killed with SIGKILL mid-write) sees the old file or the new
// one, never a torn one. Digests are SHA-256 of file bytes or of canonical JSON
// (keys sorted at every level), so equal content has one digest.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** fsync a directory, so renames and creations inside it are on disk. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes every byte of `data` to a new file at `path` and fsyncs it (no rename). */
export function writeFileDurable(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const fd = openSync(path, "w");
  try {
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Temp file, fsync, rename over `path`, fsync the directory. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  try {
    writeFileDurable(tmp, data);
    renameSync(tmp, path);
  } catch (error) {
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file may not exist; the original error is what matters
    }
    throw error;
  }
  fsyncDirectory(dir);
}

/** JSON with object keys sorted at every level: one text per value, so one digest. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

export function sha256Hex(data: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

export const jsonDigest = (value: unknown): string => sha256Hex(canonicalJson(value));

export const fileDigest = (path: string): string => sha256Hex(readFileSync(path));

/** Pretty JSON plus a final newline, written atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}
