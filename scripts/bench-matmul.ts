// Quantized matmul throughput on the CPU kernels: weight GB/s and GFLOP/s per
// type, 1 token (decode: memory-bound) and 512 tokens (prefill: compute-bound),
// 1 and 2 threads; GFLOP/cpu-s divides by the CPU time of all threads (spinning pool
// workers included), which stays steady when other processes share the cores. Not a test.
// Shapes (rows x cols):
//   --shapes 180m (default): llama-180m's matrices (presets.ts): attention q/o 768x768,
//     k/v 256x768, FFN gate/up 2560x768, FFN down 768x2560; a summary line per
//     type gives the whole layer's GFLOP/s (total flops / total time)
//   --shapes big: 2048x2048 and 5632x2048
//   --from-memory MB: decode (1 token) only, each call on the next of enough copies
//     of the weights to fill MB megabytes (far above the caches), next to the
//     machine's read bandwidth (psi_read_memory over the same bytes)
//   --shapes gpt-oss-1b: its Q8_0 matrices (attention q/o 1024x1024, k/v 256x1024, output 32000x1024)
//   --shapes gpt-oss-20b: its Q8_0 attention matrices (q 4096x2880, k/v 512x2880, o 2880x4096)
//   --rows16: also each type in its 16-row layout (MXFP4, Q8_0: CpuBackend's), rows named TYPE/r16,
//     where the loaded library multiplies it (PSIONIC_CPU_LIB=old.so for an A/B)
//   npx bun scripts/bench-matmul.ts [--types q8_0,q4_0,q4_K,mxfp4 | --all] [--shapes 180m|big|gpt-oss-1b|gpt-oss-20b]
//     [--tokens 1,512] [--threads 1,2] [--seconds 0.5] [--from-memory 2048] [--rows16]
import { ptr } from "bun:ffi";
import { cpuKernels } from "../ffi/cpu.ts";
import { encodeTensor } from "../src/gguf/quant/codecs.ts";
import { GGMLType, typeByName, typeLayout } from "../src/gguf/types.ts";
import { matmul, MATMUL_TYPES, repackRows16 } from "../src/runtime/cpu/matmul.ts";
import { sampleValues } from "../src/runtime/cpu/matmul-test-data.ts";

const args = process.argv.slice(2);
const flag = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const types = args.includes("--all")
  ? [...MATMUL_TYPES]
  : (flag("--types") ?? "q8_0,q4_0,q4_K,mxfp4").split(",").map((name) => {
      const layout = typeByName(name);
      if (!layout || !MATMUL_TYPES.includes(layout.type)) throw new Error(`--types: ${name} is not a matmul weight type`);
      return layout.type;
    });
const seconds = Number(flag("--seconds") ?? 0.5);
const shapeSets: Record<string, [number, number][]> = {
  "180m": [[768, 768], [256, 768], [2560, 768], [768, 2560]],
  big: [[2048, 2048], [5632, 2048]],
  "gpt-oss-1b": [[1024, 1024], [256, 1024], [32000, 1024]],
  "gpt-oss-20b": [[4096, 2880], [512, 2880], [2880, 4096]],
};
const chosenShapes = shapeSets[flag("--shapes") ?? "180m"];
if (!chosenShapes) throw new Error(`--shapes: one of ${Object.keys(shapeSets).join(", ")}`);
const shapes = chosenShapes;
const list = (name: string, fallback: string) => (flag(name) ?? fallback).split(",").map(Number);
const tokenCounts = list("--tokens", "1,512");
const threadCounts = list("--threads", "1,2");
const withRows16 = args.includes("--rows16");

/** The weights as the products read them: the plain type, and with --rows16 its 16-row layout. */
function layouts(type: GGMLType, weights: Uint8Array, rows: number, cols: number): { label: string; bytes: Uint8Array; kernelType?: number }[] {
  const name = typeLayout(type)!.name;
  const start = performance.now();
  const packed = withRows16 ? repackRows16(type, weights, rows, cols) : null;
  if (packed) console.log(`repack ${name} ${rows}x${cols}: ${(performance.now() - start).toFixed(2)} ms, ${(weights.byteLength / (performance.now() - start) / 1e6).toFixed(2)} GB/s`);
  return packed ? [{ label: name, bytes: weights }, { label: `${name}/r16`, ...packed }] : [{ label: name, bytes: weights }];
}

/** Median wall seconds per call, over as many calls as fit in `seconds` (at least 3), after one
 * warm-up; and the mean CPU seconds per call of this process (all its threads), which other
 * processes sharing the cores do not inflate. */
function time(run: () => void): { wall: number; cpu: number } {
  run();
  const samples: number[] = [];
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  while (samples.length < 3 || performance.now() - start < seconds * 1000) {
    const t0 = performance.now();
    run();
    samples.push((performance.now() - t0) / 1000);
  }
  const cpu = process.cpuUsage(cpuStart);
  samples.sort((a, b) => a - b);
  return { wall: samples[samples.length >> 1]!, cpu: (cpu.user + cpu.system) / 1e6 / samples.length };
}

console.log(`kernel variant: ${cpuKernels().psi_cpu_variant()}; ${navigator.hardwareConcurrency} cores`);
const fromMemory = flag("--from-memory");
if (fromMemory !== undefined) {
  benchFromMemory(Number(fromMemory) * 1e6);
  process.exit(0);
}
console.log("type       rows x cols   tokens threads   ms/call   weight GB/s   GFLOP/s   GFLOP/cpu-s");
for (const type of types) {
  // per (layout, tokens, threads): total seconds and flops over the shapes, for the layer summary
  const totals = new Map<string, { seconds: number; cpu: number; flops: number; bytes: number }>();
  for (const [rows, cols] of shapes) {
    const weights = encodeTensor(type, sampleValues(rows * cols, 1, 0.05));
    for (const nTokens of tokenCounts) {
      const x = sampleValues(nTokens * cols, 2);
      const out = new Float32Array(nTokens * rows);
      for (const threads of threadCounts) {
        for (const { label, bytes, kernelType } of layouts(type, weights, rows, cols)) {
          const { wall, cpu } = time(() => matmul({ type, rows, cols, nTokens, kernelType }, bytes, x, { threads, out }));
          const flops = 2 * rows * cols * nTokens;
          const key = `${label} ${nTokens} ${threads}`;
          const total = totals.get(key) ?? { seconds: 0, cpu: 0, flops: 0, bytes: 0 };
          totals.set(key, { seconds: total.seconds + wall, cpu: total.cpu + cpu, flops: total.flops + flops, bytes: total.bytes + weights.byteLength });
          console.log(row(label, `${rows}x${cols}`, nTokens, threads, wall, cpu, weights.byteLength, flops));
        }
      }
    }
  }
  if (shapes.length > 1) {
    for (const [key, total] of totals) {
      const [label = "", nTokens = 0, threads = 0] = key.split(" ").map((v, i) => (i === 0 ? v : Number(v))) as [string, number, number];
      console.log(row(label, "all shapes", nTokens, threads, total.seconds, total.cpu, total.bytes, total.flops));
    }
  }
}

function row(name: string, shape: string, nTokens: number, threads: number, s: number, cpu: number, bytes: number, flops: number): string {
  return `${name.padEnd(10)} ${shape.padEnd(13)} ${String(nTokens).padStart(6)} ${String(threads).padStart(7)} ${(s * 1000).toFixed(3).padStart(9)} ${(bytes / s / 1e9).toFixed(1).padStart(13)} ${(flops / s / 1e9).toFixed(1).padStart(9)} ${(flops / cpu / 1e9).toFixed(1).padStart(13)}`;
}

/** Decode GB/s with the weights coming from memory: each call takes the next of many copies. */
function benchFromMemory(totalBytes: number) {
  console.log("type       rows x cols   copies threads   weight GB/s   read bandwidth GB/s (psi_read_memory)");
  for (const type of types) {
    for (const [rows, cols] of shapes) {
      const weights = encodeTensor(type, sampleValues(rows * cols, 1, 0.05));
      for (const { label: name, bytes: one, kernelType } of layouts(type, weights, rows, cols)) {
        const copies = Math.max(2, Math.ceil(totalBytes / one.byteLength));
        const arena = new Uint8Array(copies * one.byteLength);
        for (let i = 0; i < copies; i++) arena.set(one, i * one.byteLength);
        const x = sampleValues(cols, 2);
        const out = new Float32Array(rows);
        for (const threads of threadCounts) {
          let next = 0;
          const { wall } = time(() => {
            for (let i = 0; i < copies; i++, next = (next + 1) % copies) {
              matmul({ type, rows, cols, nTokens: 1, kernelType }, arena.subarray(next * one.byteLength, (next + 1) * one.byteLength), x, { threads, out });
            }
          });
          const checksum = new BigUint64Array(1);
          const bytes = arena.byteLength - (arena.byteLength % 64);
          const t0 = performance.now();
          cpuKernels().psi_read_memory(ptr(arena), bytes, threads, 1, ptr(checksum));
          const readGBs = bytes / ((performance.now() - t0) / 1000) / 1e9;
          console.log(`${name.padEnd(10)} ${`${rows}x${cols}`.padEnd(13)} ${String(copies).padStart(6)} ${String(threads).padStart(7)} ${(arena.byteLength / wall / 1e9).toFixed(1).padStart(13)} ${readGBs.toFixed(1).padStart(10)}`);
        }
      }
    }
  }
}
