// The CUDA emulator's own checks (kernels/cuda/emulate.cpp) on probe kernels
// (emulator-probe.cu): a shuffle whose mask names a lane that has returned is
// undefined on a GPU (it can hang or read garbage), so the emulator stops there
// with an error naming the lane, where it could otherwise run the shuffle among
// the lanes left and pass every check; and shared memory starts each block as
// NaN, where it would otherwise hold the last block's values.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cudaEmulatorFlags } from "./access-trace.ts";

const gxx = Bun.which("g++");
const cuda = join(import.meta.dir, "../../../kernels/cuda");

describe.skipIf(!gxx || process.arch !== "x64")("the CUDA emulator's checks", () => {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "psionic-emulator-test-"));
    const run = Bun.spawnSync([gxx!, ...cudaEmulatorFlags, "-O1", "-shared", "-o", join(dir, "probe.so"), "-x", "c++", join(import.meta.dir, "emulator-probe.cu"),
      "-x", "none", join(cuda, "emulate.cpp")]);
    if (run.exitCode !== 0) throw new Error(`g++ failed: ${run.stderr.toString()}`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs a probe in its own process (a refused call aborts it). */
  function probe(name: string, args: number[], returns = "f32") {
    const script = `import { dlopen } from "bun:ffi";
      const lib = dlopen(${JSON.stringify(join(dir, "probe.so"))}, { ${name}: { args: ${JSON.stringify(args.map(() => "i32"))}, returns: "${returns}" } });
      console.log(lib.symbols.${name}(${args.join(", ")}));`;
    const run = Bun.spawnSync([process.execPath, "-e", script]);
    return { code: run.exitCode, out: run.stdout.toString().trim(), err: run.stderr.toString() };
  }

  it("a full-mask shuffle among all 32 lanes runs", () => {
    const { code, out, err } = probe("probe_warp_sum", [32]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(Number(out)).toBe((31 * 32) / 2);
  });

  it("a full-mask shuffle after lanes 16-31 returned stops with an error naming lane 16", () => {
    const { code, err } = probe("probe_warp_sum", [16]);
    expect(code).not.toBe(0);
    expect(err).toContain("psionic CUDA emulator: block (0,0,0): thread 0 makes a warp-synchronous call");
    expect(err).toContain("mask 0xffffffff names lane 16, which has exited");
  });

  it("shared memory no thread of a block wrote reads as NaN, not an earlier block's values", () => {
    const { code, out, err } = probe("probe_unwritten_shared", [], "i32");
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toBe("0");
  });
});
