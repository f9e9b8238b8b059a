// Host time of one sampled pick (temperature 0.8, top-k K, llama.cpp's default
// chain) over a gpt-oss-sized vocabulary, two ways, alternated: from the whole
// row of logits (what a backend without topKRows hands the sampler, after
// reading back 4 bytes per token) and from the row's K best (Backend.topKRows:
// 8 bytes per candidate read back). The device's own time for the top-k and the
// copy are not in it (that needs a GPU: scripts/device-check.sh).
//
//   npx bun scripts/bench-sampling.ts [--vocab 201088] [--top-k 40] [--picks 2000]
import { SeededRng } from "../src/runtime/rng.ts";
import { Sampler } from "../src/runtime/sampler.ts";
import { refTopCandidates } from "../src/runtime/sampler-reference.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) {
    console.error(`${name} takes a positive integer, got "${args[i + 1]}"\nusage: npx bun scripts/bench-sampling.ts [--vocab 201088] [--top-k 40] [--picks 2000]`);
    process.exit(2);
  }
  return v;
};
const vocab = opt("--vocab", 201_088), k = opt("--top-k", 40), picks = opt("--picks", 2000);

// A handful of rows shaped like a model's logits (a few strong tokens over a broad mass), reused.
const rng = new SeededRng(1);
const rows = Array.from({ length: 8 }, () => {
  const row = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) row[i] = (rng.nextDouble() + rng.nextDouble() + rng.nextDouble() - 1.5) * 3;
  for (let j = 0; j < 20; j++) row[Math.floor(rng.nextDouble() * vocab)] = 8 + rng.nextDouble() * 4;
  return { row, top: refTopCandidates(row, k) };
});
const whole = new Sampler({ vocabSize: vocab, topK: k, seed: 7 });
const fromTop = new Sampler({ vocabSize: vocab, topK: k, seed: 7 });
const times = { whole: [] as number[], top: [] as number[] };
for (let i = 0; i < picks; i++) {
  const { row, top } = rows[i % rows.length]!;
  let start = performance.now();
  const a = whole.sample(row).token;
  times.whole.push(performance.now() - start);
  start = performance.now();
  const b = fromTop.sampleTop(top).token;
  times.top.push(performance.now() - start);
  if (a !== b) throw new Error(`pick ${i}: ${a} from the row, ${b} from its top-${k}`);
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const us = (ms: number) => `${(ms * 1000).toFixed(1)} us`;
console.log(`vocabulary ${vocab}, top-k ${k}, ${picks} picks each (the same tokens both ways)`);
console.log(`from the whole row: ${us(median(times.whole))} a pick (median), ${(4 * vocab / 1024).toFixed(0)} KiB read back a sequence`);
console.log(`from its top-${k}:   ${us(median(times.top))} a pick (median), ${(8 * k / 1024).toFixed(2)} KiB read back a sequence`);
console.log(`host time ratio: ${(median(times.whole) / median(times.top)).toFixed(1)}x less from the top-${k}`);
