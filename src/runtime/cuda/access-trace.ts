// Reads the access trace of the emulator's trace build (kernels/cuda/emulate_trace.cpp):
// per kernel and per load/store instruction, warp requests against the 32-byte
// sectors (global memory) or bank wavefronts (shared memory) they take. The
// addresses are offsets into the library; addr2line (binutils) names them.
import { readFileSync } from "node:fs";

/** The emulator's base C++ flags, for build.ts's emulator libraries and the trace test's probe library. */
export const cudaEmulatorFlags = ["-std=c++17", "-fPIC", "-pthread", "-DPSI_EMULATE"];

/**
 * g++ flags for kernel sources in the trace build (build.ts --cuda-trace): a call
 * to __tsan_{read,write}N(address) before every load and store, and
 * __tsan_atomic* for atomics, which emulate_trace.cpp supplies (ThreadSanitizer's
 * instrumentation without its runtime: unlike AddressSanitizer's, it also checks
 * the accesses it can prove in bounds, such as s[0] of a __shared__ array); line
 * tables for the report; no tail calls (an access's site is the return address
 * of the hook's call, which a tail call would take from the caller's caller);
 * and neither the vectorizer nor the byte-load merging (the bswap pass), which
 * turn a lane's byte loads into one wide load that nvcc cannot make without
 * knowing the alignment (the requests would be undercounted).
 */
export const cudaTraceFlags = ["-g", "-fno-tree-vectorize", "-fdisable-tree-bswap", "-fsanitize=thread", "--param", "tsan-instrument-func-entry-exit=0",
  "-Wno-tsan", "-fno-optimize-sibling-calls"];

export interface KernelTotals { kernel: string; launches: number; blocks: number; readSectors: number }
export interface SiteTotals {
  kernel: string;
  /** file:line of the instruction (the innermost inlined function's line). */
  line: string;
  space: "global" | "shared";
  op: "load" | "store";
  requests: number;
  lanes: number;
  /** Distinct bytes the requests asked for. */
  bytes: number;
  /** Sectors fetched (global) or wavefronts taken (shared). */
  units: number;
  /** Shared: the fewest wavefronts the distinct words need. */
  ideal: number;
}
/**
 * A race (emulate_trace.cpp checkRaces): `first` writes bytes that `second`, in
 * another thread of the block, reads or writes with no barrier between them that
 * orders the two (__syncthreads; for two lanes of one warp, __syncwarp); or, in
 * another block of the launch, writes too (global memory, plain stores).
 */
export interface RaceTotals {
  kernel: string;
  /** file:line of the writing instruction. */
  first: string;
  /** file:line of the other instruction. */
  second: string;
  space: "global" | "shared";
  op: "read" | "write";
  /** The two threads: lanes of one warp, warps of one block, or of two blocks of one launch. */
  between: "warp" | "block" | "grid";
  /** (4-byte word, thread pair) conflicts found, and in how many blocks. */
  pairs: number;
  blocks: number;
  /** One conflicting pair, by thread index in its block. */
  threads: [number, number];
}
export interface AccessTrace { kernels: KernelTotals[]; sites: SiteTotals[]; races: RaceTotals[] }

/** What RaceTotals.between means, in words. */
export const RACE_BETWEEN: Record<RaceTotals["between"], string> = { warp: "lanes of one warp", block: "warps of one block", grid: "blocks of one launch" };

/** Parses a trace file and names its addresses with addr2line. */
export function readAccessTrace(path: string): AccessTrace {
  const rows = readFileSync(path, "utf8").split("\n").filter((l) => l).map((l) => l.split("\t"));
  const lib = rows.find((r) => r[0] === "lib")?.[1];
  if (!lib) throw new Error(`${path}: no "lib" line; not an access trace`);
  const addresses = new Set<string>();
  for (const r of rows) {
    if (r[0] === "kernel") addresses.add(r[1]!);
    if (r[0] === "site") addresses.add(r[1]!), addresses.add(r[2]!);
    if (r[0] === "race") addresses.add(r[1]!), addresses.add(r[2]!), addresses.add(r[3]!);
  }
  const names = symbolize(lib, [...addresses]);
  const name = (a: string) => names.get(a) ?? { func: `0x${a}`, line: "?", outer: `0x${a}` };
  const kernels = rows.filter((r) => r[0] === "kernel").map((r) => ({
    kernel: name(r[1]!).outer, launches: Number(r[2]), blocks: Number(r[3]), readSectors: Number(r[4]),
  }));
  const sites = rows.filter((r) => r[0] === "site").map((r) => ({
    kernel: name(r[1]!).outer, line: name(r[2]!).line, space: r[3] as "global" | "shared", op: r[4] as "load" | "store",
    requests: Number(r[5]), lanes: Number(r[6]), bytes: Number(r[7]), units: Number(r[8]), ideal: Number(r[9]),
  }));
  const races = rows.filter((r) => r[0] === "race").map((r) => ({
    kernel: name(r[1]!).outer, first: name(r[2]!).line, second: name(r[3]!).line, space: r[4] as "global" | "shared", op: r[5] as "read" | "write",
    between: r[6] as "warp" | "block" | "grid", pairs: Number(r[7]), blocks: Number(r[8]), threads: [Number(r[9]), Number(r[10])] as [number, number],
  }));
  return { kernels, sites, races };
}

interface Location { func: string; line: string; outer: string }

// One addr2line call for every address: its innermost function and line
// outside emulate.h (whose vector copies stand for the hardware's vector
// loads), and the outermost function it is inlined into (for a kernel, its own name).
function symbolize(lib: string, offsets: string[]): Map<string, Location> {
  const out = new Map<string, Location>();
  if (offsets.length === 0) return out;
  const run = Bun.spawnSync(["addr2line", "-e", lib, "-a", "-f", "-C", "-i", ...offsets.map((o) => `0x${o}`)]);
  if (run.exitCode !== 0) throw new Error(`addr2line -e ${lib} failed: ${run.stderr.toString()}`);
  const lines = run.stdout.toString().split("\n");
  let current: { key: string; frames: { func: string; line: string }[] } | undefined;
  const finish = () => {
    if (!current || current.frames.length === 0) return;
    const inner = current.frames.find((f) => !f.line.includes("emulate.h:")) ?? current.frames[0]!;
    const outer = current.frames[current.frames.length - 1]!;
    out.set(current.key, { func: shortName(inner.func), line: inner.line.replace(/^.*kernels\/cuda\//, "").replace(/ \(discriminator \d+\)$/, ""), outer: shortName(outer.func) });
  };
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^0x[0-9a-f]+$/.test(l)) {
      finish();
      current = { key: BigInt(l).toString(16), frames: [] };
    } else if (current && l) {
      current.frames.push({ func: l, line: lines[++i] ?? "?" });
    }
  }
  finish();
  return out;
}

/** A demangled C++ name without its return type and parameter list: `decode_matvec<18, 4>`. */
export function shortName(demangled: string): string {
  let depth = 0, start = 0;
  for (let i = 0; i < demangled.length; i++) {
    const c = demangled[i];
    if (c === "<") depth++;
    else if (c === ">") depth--;
    else if (c === " " && depth === 0) start = i + 1;  // a return type ends here
    else if (c === "(" && depth === 0) return demangled.slice(start, i);
  }
  return demangled.slice(start);
}

/** Distinct bytes asked per byte fetched: 1 when every 32-byte sector a request fetches is used whole. */
export const sectorUse = (s: { bytes: number; units: number }) => (s.units ? s.bytes / (s.units * 32) : 1);
