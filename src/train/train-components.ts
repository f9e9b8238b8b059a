// What the training loop trains with: the CPU model (cpu-train-model.ts) and
// AdamW (adamw.ts) configured from the lane, both on all cores (their results
// do not depend on the thread count).
import { AdamW } from "./adamw.ts";
import { CpuTrainModel } from "./cpu-train-model.ts";
import { modelShapeOf, type Lane } from "./lane.ts";
import type { RunSession } from "./run-session.ts";
import type { TrainModel } from "./train-model.ts";

export function createTrainComponents(run: RunSession): { model: TrainModel; optimizer: AdamW } {
  const model = new CpuTrainModel(run.shape);
  const { beta1, beta2, eps, weightDecay } = run.lane.optimizer;
  return { model, optimizer: new AdamW(model.parameters, { beta1, beta2, eps, weightDecay }, model.threads) };
}

/** Seconds per optimizer step of `lane` on this machine: one warm-up step, then the mean of two, on fixed pseudo-random tokens. */
export function estimateStepSeconds(lane: Lane): number {
  const shape = modelShapeOf(lane);
  const model = new CpuTrainModel(shape);
  model.initialize(lane.seed);
  const { sequences, seqLen, accumulation } = lane.batch;
  const tokens = Int32Array.from({ length: sequences * (seqLen + 1) }, (_, i) => (i * 7919) % shape.vocab);
  const once = () => {
    model.zeroGrads();
    for (let micro = 0; micro < accumulation; micro++) model.forwardBackward(tokens, sequences, seqLen, 1 / accumulation);
  };
  once();
  const start = performance.now();
  once();
  once();
  return (performance.now() - start) / 2000;
}
