// The CUDA checks (*.cuda-check.ts) on the CPU build of the kernels
// (build/libpsionic_cuda_emu.so, kernels/cuda/emulate.h), so the kernels'
// indexing, layouts and arithmetic are tested on every machine, GPU or not:
// every op against the CPU backend, greedy generation of a legacy-quant and a
// K-quant llama and an MXFP4 gpt-oss (the parity subset), -ngl and batches,
// and the server streaming; and no kernel races, inside a block or between two
// blocks' stores (the ops checks on the access-trace build). Each file runs in its own process with
// PSIONIC_CUDA_LIB pointing at the emulator, as a user would run it on a GPU
// with the real library. Speed is measured only on a GPU (scripts/device-check.sh).
import { describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RACE_BETWEEN, readAccessTrace } from "./access-trace.ts";

const root = join(import.meta.dir, "../../..");
const emulator = join(root, "build/libpsionic_cuda_emu.so");
const cxx = ["c++", "g++", "clang++"].some((c) => Bun.which(c));
// The AddressSanitizer build (build.ts) and the runtime it needs preloaded into Bun.
const sanitized = join(root, "build/libpsionic_cuda_emu_asan.so");
const asanRuntime = existsSync(`${sanitized}.preload`) ? readFileSync(`${sanitized}.preload`, "utf8").trim() : "";

async function runCheck(file: string, env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  const child = Bun.spawn([process.execPath, "test", "--timeout", "600000", `./src/runtime/cuda/${file}`], {
    cwd: root, stdout: "pipe", stderr: "pipe",
    env: { ...process.env, PSIONIC_CUDA_LIB: emulator, PSIONIC_CUDA_CHECK_SUBSET: "ci", ...env },
  });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, output: out + err };
}

describe.skipIf(!cxx || process.arch !== "x64")("the CUDA kernels on the CPU emulator", () => {
  it("the emulator library was built (a C++ compiler is here)", () => {
    expect(existsSync(emulator)).toBe(true);
  });
  it("the AddressSanitizer build was made where g++ has libasan", () => {
    const gxx = Bun.which("g++");
    const hasAsan = gxx !== null && existsSync(Bun.spawnSync([gxx, "-print-file-name=libasan.so"]).stdout.toString().trim());
    expect(existsSync(sanitized) && asanRuntime !== "").toBe(hasAsan);
  });
  // The last run takes the ops with each block's threads run last to first (emulate.cpp),
  // so a shared-memory read that lacks its barrier shows in one order or the other; it moves
  // the prefill thresholds (matmul.cuh, flash.cuh) so 65-512 rows take the matrix-vector
  // kernels and prompts the one-row attention kernel too. (The race check below runs the ops
  // in that order with the default thresholds.)
  // The ops and parity checks run on the AddressSanitizer build where there is one: device
  // buffers and each activation are fenced (memory.cu psi_cuda_poison, cuda-tensors.ts
  // DeviceArena) and start as NaN, so a kernel that reads or writes past its rows, or reads
  // rows nothing has written, fails them.
  const checked: Record<string, string> = asanRuntime
    ? { PSIONIC_CUDA_LIB: sanitized, LD_PRELOAD: asanRuntime, ASAN_OPTIONS: "detect_leaks=0:allocator_may_return_null=1" }
    : {};
  const reverse = { PSIONIC_CUDA_EMU_ORDER: "reverse" };
  const runs: [string, Record<string, string>][] = [
    ["cuda-ops.cuda-check.ts", checked], ["cuda-parity.cuda-check.ts", checked], ["cuda-serve.cuda-check.ts", {}],
    ["cuda-ops.cuda-check.ts", { ...reverse, PSIONIC_CUDA_MOE_DEVICE_TOKENS: "512", PSIONIC_CUDA_GEMM_MIN_ROWS: "513", PSIONIC_CUDA_FLASH_MIN_ROWS: "100000" }],
  ];
  for (const [file, env] of runs) {
    const knobs = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ");
    const label = env.LD_PRELOAD ? `${file} under AddressSanitizer` : `${file}${knobs ? ` with ${knobs}` : ""}`;
    it(`${label} passes`, async () => {
      const { code, output } = await runCheck(file, env);
      const summary = output.split("\n").filter((l) => /^\s*\d+ (pass|fail)$|^\(fail\)|psionic CUDA emulator/.test(l));
      console.log(`${label} on the emulator: ${summary.join("; ")}`);
      // A sanitizer report starts with its error line and the kernel's stack; its shadow-byte legend follows.
      const report = output.indexOf("ERROR: AddressSanitizer");
      if (code !== 0) console.log(report >= 0 ? output.slice(report, report + 4000) : output.slice(-6000));
      expect(output).toMatch(/^\s*[1-9]\d* pass$/m);
      expect(output).toMatch(/^\s*0 fail$/m);
      expect(code).toBe(0);
    }, 900_000);
  }

  // A race passes the checks above whenever the emulator's turn order happens to give
  // the right value (a missing __syncwarp in topk_insert does), and fails on a GPU only
  // sometimes. The access-trace build (emulate_trace.cpp) records every access with the
  // barriers its thread had passed, and lists two threads touching the same bytes, one
  // writing, with no barrier between them, and two blocks of a launch writing one word.
  it.skipIf(!Bun.which("g++"))("no kernel races (the ops checks on the access-trace build, threads in reverse order)", async () => {
    const build = Bun.spawnSync([process.execPath, join(root, "build.ts"), "--cuda-trace", "--quiet"], { cwd: root, stdout: "pipe", stderr: "pipe" });
    if (build.exitCode !== 0) console.log(build.stderr.toString() + build.stdout.toString());
    expect(build.exitCode).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), "psionic-races-"));
    try {
      const trace = join(dir, "trace.tsv");
      const { code, output } = await runCheck("cuda-ops.cuda-check.ts", {
        PSIONIC_CUDA_LIB: join(root, "build/libpsionic_cuda_emu_trace.so"), PSIONIC_CUDA_TRACE: trace, ...reverse,
      });
      if (code !== 0) console.log(output.slice(-6000));
      expect(output).toMatch(/^\s*0 fail$/m);
      expect(code).toBe(0);
      const { kernels, races } = readAccessTrace(trace);
      console.log(`races checked in ${kernels.length} kernels (${kernels.reduce((n, k) => n + k.blocks, 0)} blocks): ${races.length} found`);
      for (const r of races) console.log(`  ${r.kernel}: ${r.first} writes, ${r.second} ${r.op}s (${r.space}, between ${RACE_BETWEEN[r.between]}; threads ${r.threads.join(", ")})`);
      expect(kernels.length).toBeGreaterThan(20);
      expect(races).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 900_000);
});
