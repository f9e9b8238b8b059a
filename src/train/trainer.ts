// The training loop of a run root: resume from the newest verified checkpoint
// (or initialise from the lane's seed), then per step: the step's micro-batches
// (batches.ts, a pure function of seed and step) through forwardBackward, the
// scheduled learning rate, clipping and AdamW, then status, log, and at their
// cadence held-out evaluation and a checkpoint. Everything a step reads is
// either in the checkpoint or recomputable from (seed, step), so N steps, a
// stop, and N more give the bits of 2N uninterrupted steps.
import { refuse } from "../util/errors.ts";
import { formatDuration } from "../util/progress.ts";
import { BatchSchedule, evalBatches } from "./batches.ts";
import { writeCheckpoint, findResumePoint, type TrainState } from "./checkpoint.ts";
import { evaluate, writeEvaluation, type EvalResult } from "./evaluate.ts";
import { totalSteps } from "./lane.ts";
import { writeFinalReport } from "./report.ts";
import type { RunSession } from "./run-session.ts";
import type { TrainModel } from "./train-model.ts";
import type { AdamW } from "./adamw.ts";
import { learningRate } from "./adamw.ts";
import { createTrainComponents } from "./train-components.ts";

export interface StepRecord {
  /** Steps completed (1-based: the record of the first step has step 1). */
  step: number;
  totalSteps: number;
  loss: number;
  learningRate: number;
  gradNorm: number;
  tokensPerSecond: number;
  gflopsPerSecond: number;
  etaSeconds: number;
}

export interface TrainOptions {
  /** Stop after this many steps in total (the run stays resumable), before the budget if smaller. */
  stopAtStep?: number;
  /** Where progress lines go (default stderr); null for none. */
  progress?: { write(text: string): unknown; isTTY?: boolean } | null;
  onStep?: (record: StepRecord) => void;
  /** The model and optimizer (default: the CPU kernels); tests may pass the reference. */
  components?: (run: RunSession) => { model: TrainModel; optimizer: AdamW };
}

export interface TrainResult {
  startStep: number;
  endStep: number;
  finished: boolean;
  lastEval?: EvalResult;
  refusedCheckpoints: { dir: string; reason: string }[];
}

/** Fault injection for the crash tests: SIGKILL ourselves at a named point of a checkpoint write. */
function crashPointHook(): ((point: string, step: number) => void) | undefined {
  const at = process.env.PSIONIC_TRAIN_KILL_AT; // e.g. "checkpoint-files:4"
  if (!at) return undefined;
  return (point, step) => {
    if (at === `${point}:${step}`) process.kill(process.pid, "SIGKILL");
  };
}

export async function train(run: RunSession, options: TrainOptions = {}): Promise<TrainResult> {
  const { lane, root } = run;
  const total = totalSteps(lane);
  const stopAt = Math.min(total, options.stopAtStep ?? total);
  const { model, optimizer } = (options.components ?? createTrainComponents)(run);
  if (model.params.length !== run.parameterCount) refuse("train.bad-model", `the model has ${model.params.length} parameters, the lane's table ${run.parameterCount}`);
  const progress = options.progress === undefined ? process.stderr : options.progress;

  const { loaded, refused } = findResumePoint(root.checkpointsDir, run.checkpointContext, run.parameterCount);
  for (const r of refused) {
    root.log(`refused checkpoint ${r.dir}: ${r.reason}`);
    progress?.write(`psionic train: refused checkpoint ${r.dir}: ${r.reason}\n`);
  }
  let state: TrainState;
  if (loaded) {
    state = loaded.state;
    model.params.set(state.params);
    state.params = model.params;
    root.log(`resuming from ${loaded.dir} (step ${state.step})`);
  } else {
    model.initialize(lane.seed);
    state = { step: 0, params: model.params, m: new Float32Array(run.parameterCount), v: new Float32Array(run.parameterCount) };
    root.log(`starting from seeded initialisation (seed ${lane.seed})`);
  }
  optimizer.restore({ m: state.m, v: state.v, step: state.step });
  const startStep = state.step;

  const { sequences, seqLen, accumulation } = lane.batch;
  const batches = new BatchSchedule(run.data.train, lane.batch, lane.seed);
  const heldOut = evalBatches(run.data.heldOut, sequences, seqLen, lane.eval.batches);
  const flopsPerStep = model.flopsPerStep(sequences, seqLen) * accumulation;
  const tokensPerStep = sequences * seqLen * accumulation;
  const crash = crashPointHook();
  const { lr: peak, minLrRatio, warmupSteps } = lane.optimizer;
  const schedule = { peak, min: peak * minLrRatio, warmupSteps, totalSteps: total };
  let computeSeconds = 0;
  let lastEval: EvalResult | undefined;
  let lastCheckpointStep: number | null = loaded ? state.step : null;
  let lastLoss: number | null = loaded ? loaded.manifest.loss : null;
  let lastRecord: StepRecord | undefined;
  let lastDraw = -Infinity; // the first step always prints

  const status = (phase: "running" | "done" | "stopped", record?: StepRecord) =>
    root.writeStatus({
      format: 1, lane: lane.name, state: phase, step: state.step, totalSteps: total,
      loss: record?.loss ?? lastLoss, learningRate: record?.learningRate ?? null,
      tokensPerSecond: record?.tokensPerSecond ?? null, gflopsPerSecond: record?.gflopsPerSecond ?? null,
      etaSeconds: record?.etaSeconds ?? null, lastCheckpointStep,
      lastEval: lastEval ? { step: lastEval.step, loss: lastEval.loss, perplexity: lastEval.perplexity } : null,
      pid: process.pid, updatedAt: new Date().toISOString(),
    });
  const checkpoint = (loss: number) => {
    const cursor = { nextSample: batches.sampleIndex(state.step, 0), epoch: batches.epochOf(state.step) };
    writeCheckpoint(root.checkpointsDir, { ...state, m: optimizer.m, v: optimizer.v }, cursor, loss, run.checkpointContext, lane.checkpoint.keep, crash);
    lastCheckpointStep = state.step;
    root.log(`checkpoint step-${state.step} written`);
  };
  const runEval = () => {
    lastEval = evaluate(model, heldOut, sequences, seqLen, state.step);
    writeEvaluation(root.evalsDir, lastEval);
    root.log(`eval step=${state.step} heldout_loss=${lastEval.loss} perplexity=${lastEval.perplexity.toFixed(3)}`);
    progress?.write(`${progress.isTTY ? "\r\x1b[K" : ""}eval at step ${state.step}: held-out loss ${lastEval.loss.toFixed(4)}, perplexity ${lastEval.perplexity.toFixed(2)}\n`);
  };

  status("running");
  while (state.step < stopAt) {
    const started = performance.now();
    model.zeroGrads();
    let loss = 0;
    for (let micro = 0; micro < accumulation; micro++) {
      loss += model.forwardBackward(batches.microBatch(state.step, micro), sequences, seqLen, 1 / accumulation);
    }
    loss /= accumulation;
    if (!Number.isFinite(loss)) refuse("train.diverged", `step ${state.step + 1}: the loss is ${loss}; lower optimizer.lr in the lane`);
    const lr = learningRate(state.step, schedule);
    const { gradNorm } = optimizer.update(model.params, model.grads, lr, lane.optimizer.gradClip);
    state.step++;
    const seconds = (performance.now() - started) / 1000;
    computeSeconds += seconds;
    const done = state.step - startStep;
    const record: StepRecord = {
      step: state.step, totalSteps: total, loss, learningRate: lr, gradNorm,
      tokensPerSecond: (done * tokensPerStep) / computeSeconds,
      gflopsPerSecond: (done * flopsPerStep) / computeSeconds / 1e9,
      etaSeconds: (computeSeconds / done) * (stopAt - state.step),
    };
    lastLoss = loss;
    lastRecord = record;
    root.log(`step=${state.step} loss=${loss} lr=${lr} grad_norm=${gradNorm} tok_s=${record.tokensPerSecond.toFixed(0)} gflop_s=${record.gflopsPerSecond.toFixed(2)}`);
    options.onStep?.(record);
    status("running", record);
    if (progress && (progress.isTTY || performance.now() - lastDraw > 5000 || state.step === stopAt)) {
      lastDraw = performance.now();
      const line = `step ${state.step}/${total}  loss ${loss.toFixed(4)}  lr ${lr.toExponential(2)}  ${record.tokensPerSecond.toFixed(0)} tok/s  ${record.gflopsPerSecond.toFixed(1)} GFLOP/s  ETA ${formatDuration(record.etaSeconds)}`;
      progress.write(progress.isTTY ? `\r\x1b[K${line}` : `${line}\n`);
      await new Promise((resolve) => setImmediate(resolve)); // let the line reach the terminal
    }
    if (state.step % lane.eval.every === 0 || state.step === total) runEval();
    if (state.step % lane.checkpoint.every === 0 || state.step === stopAt) checkpoint(loss);
  }
  if (progress?.isTTY) progress.write("\n");
  const finished = state.step >= total;
  if (finished) {
    lastEval ??= evaluate(model, heldOut, sequences, seqLen, state.step);
    writeFinalReport(run, lastEval, lastLoss);
  }
  status(finished ? "done" : "stopped", lastRecord && { ...lastRecord, etaSeconds: 0 });
  root.log(finished ? `done: ${state.step} steps` : `stopped at step ${state.step} of ${total}; resume with psionic train resume`);
  return { startStep, endStep: state.step, finished, lastEval, refusedCheckpoints: refused };
}
