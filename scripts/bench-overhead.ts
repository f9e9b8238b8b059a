// How much of a decode step is TypeScript (DESIGN.md principle 1: under 5%).
//
//   npx bun scripts/bench-overhead.ts [--steps 200] [--threads N] [model.gguf ...]
//
// Without model files it synthesizes the two the overhead target is stated
// for, llama tiny and llama-180m in Q8_0, into a temporary folder.
//
// For each model: a short prompt is prefilled, then single-token decode steps
// alternate between two kinds: plain steps (model.forward timed whole) and
// timed steps, where every symbol of the CPU kernel library is wrapped in a
// timer that sums the time spent inside the kernels. The overhead of a step is
// (plain step time - kernel time): what the step costs beyond the C work.
// Medians over many steps. Part of the timers' own cost (~0.1 us a call) lands
// in the kernel sum, so that figure slightly underestimates; the timed steps'
// own (step - kernel time) is printed too, an upper bound. On a shared
// machine other processes stretch the kernels (the 2-thread pool most): run
// it more than once, and compare absolute overheads rather than fractions.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuKernels } from "../ffi/cpu.ts";
import { CpuBackend } from "../src/runtime/cpu/cpu-backend.ts";
import { loadModel } from "../src/runtime/generator.ts";

const args = process.argv.slice(2);
let steps = 200, threads: number | undefined;
const files: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "--steps") steps = Number(args[++i]);
  else if (a === "--threads") threads = Number(args[++i]);
  else files.push(a);
}
if (!(steps > 0)) {
  console.error("usage: bun scripts/bench-overhead.ts [--steps 200] [--threads N] [model.gguf ...]");
  process.exit(2);
}
let synthDir: string | undefined;
if (files.length === 0) {
  synthDir = mkdtempSync(join(tmpdir(), "psionic-overhead-"));
  for (const preset of ["tiny", "llama-180m"]) {
    const out = join(synthDir, `${preset}.gguf`);
    const cli = Bun.spawnSync([process.execPath, join(import.meta.dir, "../src/cli/main.ts"), "gguf", "synth", "--arch", "llama", "--preset", preset, "--type", "Q8_0", "-o", out], { stderr: "inherit" });
    if (cli.exitCode !== 0) throw new Error(`gguf synth --preset ${preset} failed`);
    files.push(out);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// Wrapping the shared symbol table: every caller (ops.ts, matmul.ts, ...) reads
// symbols from this object at call time, so replacing its entries times them all.
const lib = cpuKernels() as unknown as Record<string, (...a: unknown[]) => unknown>;
const original = { ...lib };
let kernelNs = 0, kernelCalls = 0;
function wrapKernels(on: boolean): void {
  for (const [name, fn] of Object.entries(original)) {
    lib[name] = on
      ? (...a: unknown[]) => {
        const t0 = Bun.nanoseconds();
        const r = fn(...a);
        kernelNs += Bun.nanoseconds() - t0;
        kernelCalls++;
        return r;
      }
      : fn;
  }
}

for (const file of files) {
  const backend = new CpuBackend({ threads });
  const { model } = loadModel(file, { backend, contextLimit: 2048 });
  const prompt = Int32Array.from({ length: 8 }, (_, i) => (i * 37 + 1) % model.vocabSize);
  const token = new Int32Array(1);
  let stepCount = 0;
  const run = (n: number, measure: (ms: number) => void) => {
    for (let i = 0; i < n; i++) {
      // Restart before the cache fills; keep the attention view short so steps are alike.
      if (model.cache.length >= 200) model.cache.truncate(prompt.length);
      token[0] = (stepCount++ * 101 + 7) % model.vocabSize;
      const t0 = Bun.nanoseconds();
      model.forward(token);
      measure((Bun.nanoseconds() - t0) / 1e6);
    }
  };
  model.forward(prompt);
  run(20, () => {}); // warm-up: JIT, arena slots, weight vectors

  // Plain and timed steps alternate, so both see the same load on a shared machine.
  const plain: number[] = [], kernel: number[] = [], wrapped: number[] = [], wrappedOutside: number[] = [];
  let calls = 0;
  for (let i = 0; i < steps; i++) {
    run(1, (ms) => plain.push(ms));
    wrapKernels(true);
    run(1, (ms) => {
      wrapped.push(ms);
      kernel.push(kernelNs / 1e6);
      wrappedOutside.push(ms - kernelNs / 1e6);
      calls = kernelCalls;
    });
    kernelNs = 0;
    kernelCalls = 0;
    wrapKernels(false);
  }

  const step = median(plain), inKernels = median(kernel), overhead = Math.max(0, step - inKernels);
  console.log(
    `${file}: threads ${backend.threads}, ${steps} steps, ${calls} kernel calls/step\n` +
    `  step ${step.toFixed(3)} ms (median), in kernels ${inKernels.toFixed(3)} ms, ` +
    `outside ${overhead.toFixed(3)} ms = ${(100 * overhead / step).toFixed(1)}% of the step ` +
    `(${(1000 * overhead / calls).toFixed(2)} us per kernel call)\n` +
    `  timed steps: ${median(wrapped).toFixed(3)} ms, of which outside the kernels ${median(wrappedOutside).toFixed(3)} ms ` +
    `(an upper bound: it includes part of the timers' own cost)`,
  );
}
if (synthDir) rmSync(synthDir, { recursive: true, force: true });
