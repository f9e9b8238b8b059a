// Aggregate decode tok/s of the engine alone (no HTTP) at 1, 8 and 16
// concurrent sequences (or --counts), alternating them so load from other
// processes hits them alike; prints each round and the ratio of medians.
//
//   npx bun scripts/bench-engine.ts -m model.gguf [-t 2] [-n 48] [-c 512] [--rounds 3]
//                                   [--backend cpu] [--counts 1,8,16] [--parallel N] [--sample K]
// --parallel (the engine's decode slots) defaults to the largest count and may not be smaller.
// --sample K: each stream samples (temperature 0.8, top-k K, its own seed) instead of greedy.
import { startEngine } from "../src/runtime/engine/engine-client.ts";
import type { EngineOptions } from "../src/runtime/engine/engine.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback?: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const usage = "usage: npx bun scripts/bench-engine.ts -m model.gguf [-t 2] [-n 48] [-c 512] [--rounds 3] [--backend cpu] [--counts 1,8,16] [--parallel N] [--sample K]";
const fail = (message: string): never => {
  console.error(`${message}\n${usage}`);
  process.exit(2);
};
const path = opt("-m");
if (!path) fail("missing -m model.gguf");
const threads = Number(opt("-t", "2")), tokens = Number(opt("-n", "48")), rounds = Number(opt("--rounds", "3"));
// Passed through as given: the engine refuses a backend it does not have.
const backend = opt("--backend", "cpu") as EngineOptions["backend"];
const COUNTS = opt("--counts", "1,8,16")!.split(",").map(Number);
if (COUNTS.some((c) => !Number.isInteger(c) || c < 1)) fail(`--counts takes positive integers separated by commas, got "${opt("--counts")}"`);
const parallel = Number(opt("--parallel", String(Math.max(...COUNTS))));
if (!Number.isInteger(parallel) || parallel < Math.max(...COUNTS)) fail(`--parallel must be an integer of at least the largest count (${Math.max(...COUNTS)}), got "${opt("--parallel")}"`);
const sampleTopK = opt("--sample") === undefined ? 0 : Number(opt("--sample"));
if (!Number.isInteger(sampleTopK) || sampleTopK < 0) fail(`--sample takes a top-k (a non-negative integer), got "${opt("--sample")}"`);
const engine = await startEngine({ models: [{ path: path!, id: "m" }], backend, threads, contextLimit: Number(opt("-c", "512")), parallel });
console.log(`backend ${backend}, ${parallel} slots, ${tokens} tokens per sequence, ${rounds} rounds, ${sampleTopK > 0 ? `sampling (temperature 0.8, top-k ${sampleTopK})` : "greedy"}`);
let jobs = 0;
async function stream(text: string, maxTokens: number): Promise<number> {
  let n = 0;
  const id = jobs++;
  const sampling = sampleTopK > 0 ? { temperature: 0.8, topK: sampleTopK, seed: id } : { temperature: 0 };
  const job = { id: `j${id}`, model: "m", prompt: { text }, maxTokens, sampling, stop: [], logprobs: false, topLogprobs: 0 };
  for await (const e of engine.generate(job)) if (e.kind === "token") n++;
  return n;
}
await stream("Warm up", 8);
const results = new Map<number, number[]>(COUNTS.map((c) => [c, []]));
for (let round = 0; round < rounds; round++) {
  for (const c of COUNTS) {
    const start = performance.now();
    const counts = await Promise.all(Array.from({ length: c }, (_, i) => stream(`Stream ${round}-${c}-${i} says`, tokens)));
    const rate = counts.reduce((a, b) => a + b, 0) / ((performance.now() - start) / 1000);
    results.get(c)!.push(rate);
    console.log(`round ${round + 1}: ${String(c).padStart(2)} sequences ${rate.toFixed(1)} tok/s`);
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const one = median(results.get(COUNTS[0]!)!);
for (const c of COUNTS) console.log(`${String(c).padStart(2)} sequences: median ${median(results.get(c)!).toFixed(1)} tok/s, ${(median(results.get(c)!) / one).toFixed(2)}x ${COUNTS[0] === 1 ? "one" : `${COUNTS[0]} sequences`}`);
await engine.close();
process.exit(0);
