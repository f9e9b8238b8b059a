// The emulator's access trace (kernels/cuda/emulate_trace.cpp, read by
// access-trace.ts for scripts/cuda-access-report.ts) on kernels whose memory
// use is known exactly (access-trace-probe.cu): coalescing, distinct sectors
// per launch, shared-memory bank wavefronts and races, and the lines they come from.
import { describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cudaEmulatorFlags, cudaTraceFlags, readAccessTrace, sectorUse, shortName, type RaceTotals, type SiteTotals } from "./access-trace.ts";

const root = join(import.meta.dir, "../../..");
const gxx = Bun.which("g++");
const cuda = join(root, "kernels/cuda");

function compile(args: string[]) {
  const run = Bun.spawnSync([gxx!, ...args]);
  if (run.exitCode !== 0) throw new Error(`g++ ${args.join(" ")}\n${run.stderr.toString()}`);
}

describe("shortName", () => {
  it("drops the return type and parameters, keeps template arguments", () => {
    expect(shortName("void mmv<8, 1>(MatDesc, signed char const*, float const*)")).toBe("mmv<8, 1>");
    expect(shortName("banks(float*)")).toBe("banks");
    expect(shortName("rms_norm_kernel<true>")).toBe("rms_norm_kernel<true>");
  });
});

describe.skipIf(!gxx || process.arch !== "x64")("the CUDA emulator's access trace", () => {
  it("reports the sectors, distinct bytes, bank wavefronts and races of known kernels", () => {
    const dir = mkdtempSync(join(tmpdir(), "psionic-trace-test-"));
    try {
      const flags = [...cudaEmulatorFlags, "-DPSI_EMU_TRACE", "-O2"];
      compile([...flags, ...cudaTraceFlags, "-x", "c++", "-c", join(import.meta.dir, "access-trace-probe.cu"), "-o", join(dir, "probe.o")]);
      compile([...flags, "-shared", "-o", join(dir, "probe.so"), join(dir, "probe.o"), join(cuda, "emulate.cpp"), join(cuda, "emulate_trace.cpp"), "-ldl", "-Wl,-z,defs"]);
      const trace = join(dir, "trace.tsv");
      const script = `import { dlopen } from "bun:ffi";
        const lib = dlopen(${JSON.stringify(join(dir, "probe.so"))}, { probe_run: { args: [], returns: "i32" }, psi_emu_trace_write: { args: [], returns: "void" } });
        if (lib.symbols.probe_run() !== 0) process.exit(3);
        lib.symbols.psi_emu_trace_write();`;
      const run = Bun.spawnSync([process.execPath, "-e", script], { env: { ...process.env, PSIONIC_CUDA_TRACE: trace } });
      expect(run.stderr.toString()).toBe("");
      expect(run.exitCode).toBe(0);

      const { kernels, sites, races } = readAccessTrace(trace);
      const one = (kernel: string, space: string, op: string): SiteTotals[] => sites.filter((s) => s.kernel === kernel && s.space === space && s.op === op);
      expect(kernels.map((k) => k.kernel).sort()).toEqual(["across", "banks", "coalesced", "halves", "neighbour<0>", "neighbour<1>", "neighbour<2>", "overlap", "shared_input", "strided"]);
      for (const s of sites) expect(s.line).toMatch(/access-trace-probe\.cu:\d+$/);

      const [cl] = one("coalesced", "global", "load"), [cs] = one("coalesced", "global", "store");
      expect([cl!.requests, cl!.lanes, cl!.bytes, cl!.units, sectorUse(cl!)]).toEqual([1, 32, 128, 4, 1]);
      expect([cs!.bytes, cs!.units]).toEqual([128, 4]);

      const [sl] = one("strided", "global", "load");
      expect([sl!.bytes, sl!.units, sectorUse(sl!)]).toEqual([128, 32, 0.125]);

      const halves = one("halves", "global", "load");
      expect(halves).toHaveLength(2);
      for (const h of halves) expect([h.requests, h.bytes, h.units, sectorUse(h)]).toEqual([1, 512, 32, 0.5]);
      expect(kernels.find((k) => k.kernel === "halves")!.readSectors).toBe(32);

      const [si] = one("shared_input", "global", "load");
      expect([si!.requests, si!.units]).toEqual([4, 16]);
      expect(kernels.find((k) => k.kernel === "shared_input")!.readSectors).toBe(4);
      expect(kernels.find((k) => k.kernel === "shared_input")!.blocks).toBe(1);

      const stores = one("banks", "shared", "store"), loads = one("banks", "shared", "load");
      expect(stores).toHaveLength(1);
      expect([stores[0]!.requests, stores[0]!.units, stores[0]!.ideal]).toEqual([32, 32, 32]);
      const byWavefronts = loads.map((s) => [s.requests, s.units, s.ideal]).sort((a, b) => a[1]! - b[1]!);
      expect(byWavefronts).toEqual([[1, 1, 1], [1, 2, 2], [1, 4, 4], [1, 32, 1]]);

      // Races: the probe marks each instruction of one with a comment ("// read: neighbour").
      const source = readFileSync(join(import.meta.dir, "access-trace-probe.cu"), "utf8").split("\n");
      const at = (mark: string) => `access-trace-probe.cu:${source.findIndex((l) => l.includes(`// ${mark}`)) + 1}`;
      const file = (line: string) => line.replace(/^.*\//, "");
      const race = (r: RaceTotals) => [r.kernel, file(r.second), r.space, r.op, r.between, r.pairs, r.blocks];
      const neighbourWrite = `access-trace-probe.cu:${source.findIndex((l) => l.includes("s[threadIdx.x] = (float)threadIdx.x;")) + 1}`;
      const acrossWrite = `access-trace-probe.cu:${source.findIndex((l) => l.includes("s[threadIdx.x] = 1.f;")) + 1}`;
      expect(races.map(race).sort()).toEqual([
        ["across", at("read: early"), "shared", "read", "block", 32, 1],  // the other warp's 32 adds against thread 0's read
        ["across", at("read: early"), "shared", "read", "warp", 31, 1],   // its own warp's 31
        ["across", at("read: other warp"), "shared", "read", "block", 64, 1],
        ["across", at("write: global"), "global", "write", "warp", 1, 1],
        ["neighbour<0>", at("read: neighbour"), "shared", "read", "warp", 32, 1],
        ["neighbour<2>", at("read: neighbour"), "shared", "read", "warp", 32, 1],
        ["overlap", at("write: overlap"), "global", "write", "grid", 16, 1],  // y[16..31], found by the block that runs second
      ].sort());
      const firsts = new Map(races.map((r) => [`${r.kernel} ${file(r.second)}`, file(r.first)]));
      expect(firsts.get(`neighbour<0> ${at("read: neighbour")}`)).toBe(neighbourWrite);
      expect(firsts.get(`across ${at("read: other warp")}`)).toBe(acrossWrite);
      expect(firsts.get(`across ${at("read: early")}`)).toBe(at("write: atomic"));
      const global = races.find((r) => r.space === "global")!;
      expect([file(global.first), global.threads]).toEqual([at("write: global"), [0, 1]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
