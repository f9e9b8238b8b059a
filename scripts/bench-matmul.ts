// Quantized matmul throughput on the CPU kernels: weight GB/s and GFLOP/s per
// type for 2048x2048 and 5632x2048 weights, 1 token (decode: memory-bound) and
// 512 tokens (prefill: compute-bound), 1 and 2 threads. Not a test.
//   npx bun scripts/bench-matmul.ts [--types q8_0,q4_0,q4_K,mxfp4 | --all] [--seconds 0.5]
import { cpuKernels } from "../ffi/cpu.ts";
import { encodeTensor } from "../src/gguf/quant/codecs.ts";
import { GGMLType, typeByName, typeLayout } from "../src/gguf/types.ts";
import { matmul, MATMUL_TYPES } from "../src/runtime/cpu/matmul.ts";
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
const shapes = [[2048, 2048], [5632, 2048]] as const;

/** Median seconds per call, over as many calls as fit in `seconds` (at least 3), after one warm-up. */
function time(run: () => void): number {
  run();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 3 || performance.now() - start < seconds * 1000) {
    const t0 = performance.now();
    run();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

console.log(`kernel variant: ${cpuKernels().psi_cpu_variant()}; ${navigator.hardwareConcurrency} cores`);
console.log("type   rows x cols   tokens threads   ms/call   weight GB/s   GFLOP/s");
for (const type of types) {
  const name = typeLayout(type)!.name;
  for (const [rows, cols] of shapes) {
    const weights = encodeTensor(type, sampleValues(rows * cols, 1, 0.05));
    for (const nTokens of [1, 512]) {
      const x = sampleValues(nTokens * cols, 2);
      const out = new Float32Array(nTokens * rows);
      for (const threads of [1, 2]) {
        const s = time(() => matmul({ type, rows, cols, nTokens }, weights, x, { threads, out }));
        const gbs = weights.byteLength / s / 1e9;
        const gflops = (2 * rows * cols * nTokens) / s / 1e9;
        console.log(`${name.padEnd(6)} ${`${rows}x${cols}`.padEnd(13)} ${String(nTokens).padStart(6)} ${String(threads).padStart(7)} ${(s * 1000).toFixed(3).padStart(9)} ${gbs.toFixed(1).padStart(13)} ${gflops.toFixed(1).padStart(9)}`);
      }
    }
  }
}
