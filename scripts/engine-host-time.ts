// Host time of the serving engine's decode steps (Scheduler.step, in process,
// greedy), split into the forward pass (TypeScript, FFI and, on CUDA, graph
// recording), the picks' readback, and the rest (admission, batch building,
// sampling, detokenizing, events). Meant for the CUDA emulator with kernel
// bodies skipped, where nothing but the host runs:
//
//   PSIONIC_CUDA_EMU_NO_KERNELS=1 PSIONIC_CUDA_LIB=build/libpsionic_cuda_emu.so \
//     npx bun scripts/engine-host-time.ts -m model.gguf [--counts 1,8,32] [-n 256] [--backend cuda]
//
// With kernels skipped the logits are whatever memory held, so every argmax the
// device answers is replaced by one plain token (id 300), keeping sequences from
// ending early. A sequence's first pick reads its whole row (kept for the prompt
// cache) and is sampled from those bytes as they are; the steps are what is timed.
import { createBackend } from "../src/runtime/backends.ts";
import { loadModel } from "../src/runtime/generator.ts";
import { Scheduler } from "../src/runtime/engine/scheduler.ts";
import { describeModel } from "../src/runtime/engine/served-model.ts";
import type { GenerateJob } from "../src/runtime/engine/protocol.ts";
import { parseFlags, type FlagValues } from "../src/cli/flags.ts";

const usage = "npx bun scripts/engine-host-time.ts -m model.gguf [--counts 1,8,32] [-n 256] [--backend cuda]";
const fail: (message: string) => never = (message) => {
  console.error(message);
  process.exit(2);
};
let flags: FlagValues = {};
try {
  flags = parseFlags(process.argv.slice(2), {
    model: { type: "string", short: "m", help: "GGUF file" },
    counts: { type: "string", help: "concurrent sequences per run, comma-separated", default: "1,8,32" },
    tokens: { type: "number", short: "n", help: "tokens generated per sequence", default: 256 },
    backend: { type: "string", help: "cuda or cpu", default: "cuda" },
  }, usage).flags;
} catch (e) {
  fail((e as Error).message);
}
const path = flags.model as string | undefined;
const counts = (flags.counts as string).split(",").map(Number);
const tokens = flags.tokens as number;
if (!path || counts.some((c) => !Number.isInteger(c) || c < 1) || !(Number.isInteger(tokens) && tokens > 0)) fail(`usage: ${usage}`);
const parallel = Math.max(...counts);
const backendName = flags.backend as Parameters<typeof createBackend>[0];
const backend = await createBackend(backendName, { threads: 2 });
const loaded = loadModel(path, { backend, contextLimit: tokens + 64 });
const PLAIN_TOKEN = 300;
if (backend.argmaxRows) {
  const argmaxRows = backend.argmaxRows.bind(backend);
  backend.argmaxRows = (x) => argmaxRows(x).fill(PLAIN_TOKEN);
}
const timed = { forward: [] as number[], read: 0 };
const forwardBatch = loaded.model.forwardBatch.bind(loaded.model);
loaded.model.forwardBatch = (...a: Parameters<typeof forwardBatch>) => {
  const start = performance.now();
  const out = forwardBatch(...a);
  timed.forward.push(performance.now() - start);
  return out;
};
const scheduler = new Scheduler(describeModel(loaded, "m", backendName), loaded, { parallel, maxQueue: 2 * parallel, cacheEntries: 0 }, () => {});
// The scheduler's reader of each step's picks (private), timed the same way.
const rows = (scheduler as unknown as { rows: { read: (...a: unknown[]) => unknown } }).rows;
const read = rows.read.bind(rows);
rows.read = (...a: unknown[]) => {
  const start = performance.now();
  const out = read(...a);
  timed.read += performance.now() - start;
  return out;
};
let jobs = 0;
function run(sequences: number, maxTokens: number): { ms: number; steps: number } {
  for (let i = 0; i < sequences; i++) {
    const job: GenerateJob = { id: `j${jobs++}`, model: "m", prompt: { text: `Stream ${i} says` }, maxTokens, sampling: { temperature: 0 }, stop: [], logprobs: false, topLogprobs: 0 };
    scheduler.submit(job);
  }
  let steps = 0;
  const start = performance.now();
  for (; scheduler.hasWork(); steps++) scheduler.step();
  return { ms: performance.now() - start, steps };
}
const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;
run(1, 8);
console.log(`${path}, backend ${backendName}, ${tokens} tokens per sequence; per step:`);
for (const sequences of counts) {
  timed.forward.length = 0;
  timed.read = 0;
  const { ms, steps } = run(sequences, tokens);
  const f = [...timed.forward].sort((a, b) => a - b);
  const forward = f.reduce((a, b) => a + b, 0);
  console.log(
    `${String(sequences).padStart(2)} sequences: ${us(ms / steps)} (${steps} steps); forward mean ${us(forward / steps)}, median ${us(f[f.length >> 1]!)}, ` +
      `p90 ${us(f[Math.floor(f.length * 0.9)]!)}; readback ${us(timed.read / steps)}; the rest ${us((ms - forward - timed.read) / steps)}`,
  );
}
process.exit(0);
