// `psionic train bench`: the speed of one training step (forwardBackward plus
// the AdamW update) on random tokens, as tokens/s and achieved GFLOP/s
// (trainingFlops / step time: 6 x matmul parameters x tokens plus causal
// attention). Other work on the machine slows single steps down, so it
// reports the best and the median of the timed steps.
import { AdamW, DEFAULT_ADAMW } from "./adamw.ts";
import { CpuTrainModel } from "./cpu-train-model.ts";
import { parameterCount } from "./parameters.ts";
import type { ModelShape } from "./train-model.ts";
import { refuse } from "../util/errors.ts";
import { seededRandom } from "../util/seeded-random.ts";

export interface TrainBenchOptions {
  shape: ModelShape;
  batch: number;
  seqLen: number;
  /** Timed steps (one untimed warm-up step runs first). */
  steps: number;
  threads: number;
  /** Where progress lines go (default: stderr); pass () => {} for silence. */
  log?: (line: string) => void;
}

export interface TrainBenchResult {
  parameters: number;
  tokensPerStep: number;
  flopsPerStep: number;
  /** Seconds of each timed step. */
  stepSeconds: number[];
  best: { seconds: number; tokensPerSecond: number; gflops: number };
  median: { seconds: number; tokensPerSecond: number; gflops: number };
}

/** The default model shape (about 15M parameters) and a wider one (d_model 512) the bar is measured on. */
export const BENCH_SHAPES: Record<"default" | "wide", ModelShape> = {
  // The brown-default lane's shape (the embedded default model).
  default: { layers: 6, width: 384, heads: 6, kvHeads: 2, ffnWidth: 1024, vocab: 4096, context: 256, tiedEmbeddings: false, ropeBase: 10000, normEps: 1e-5 },
  wide: { layers: 8, width: 512, heads: 8, kvHeads: 8, ffnWidth: 1536, vocab: 4096, context: 256, tiedEmbeddings: true, ropeBase: 10000, normEps: 1e-5 },
};

export function runTrainBench(options: TrainBenchOptions): TrainBenchResult {
  const { shape, batch, seqLen, steps, threads } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!Number.isSafeInteger(steps) || steps < 1) refuse("train.bad-bench", `steps must be a positive integer, got ${steps}`);
  const model = new CpuTrainModel(shape, { threads });
  model.initialize(1);
  const optimizer = new AdamW(model.parameters, DEFAULT_ADAMW, threads);
  const random = seededRandom(2);
  const tokens = Int32Array.from({ length: batch * (seqLen + 1) }, () => Math.floor(random() * shape.vocab));
  const flopsPerStep = model.flopsPerStep(batch, seqLen);
  const tokensPerStep = batch * seqLen;
  const parameters = parameterCount(model.parameters);
  log(`train bench: ${(parameters / 1e6).toFixed(2)}M parameters, ${shape.layers} layers, width ${shape.width}, batch ${batch} x ${seqLen} tokens, ${threads} threads, ${(flopsPerStep / 1e9).toFixed(1)} GFLOP per step`);
  const step = () => {
    model.zeroGrads();
    const loss = model.forwardBackward(tokens, batch, seqLen);
    optimizer.update(model.params, model.grads, 1e-4, 1);
    return loss;
  };
  step(); // warm-up: allocates activations, starts the thread pool
  const stepSeconds: number[] = [];
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    const loss = step();
    const seconds = (performance.now() - start) / 1000;
    stepSeconds.push(seconds);
    log(`  step ${i + 1}/${steps}: ${seconds.toFixed(3)} s, loss ${loss.toFixed(4)}, ${(tokensPerStep / seconds).toFixed(0)} tokens/s, ${(flopsPerStep / seconds / 1e9).toFixed(1)} GFLOP/s`);
  }
  const sorted = [...stepSeconds].sort((a, b) => a - b);
  const rate = (seconds: number) => ({ seconds, tokensPerSecond: tokensPerStep / seconds, gflops: flopsPerStep / seconds / 1e9 });
  const result = { parameters, tokensPerStep, flopsPerStep, stepSeconds, best: rate(sorted[0]!), median: rate(sorted[Math.floor((sorted.length - 1) / 2)]!) };
  log(`  best ${result.best.tokensPerSecond.toFixed(0)} tokens/s, ${result.best.gflops.toFixed(1)} GFLOP/s; median ${result.median.tokensPerSecond.toFixed(0)} tokens/s, ${result.median.gflops.toFixed(1)} GFLOP/s`);
  return result;
}
