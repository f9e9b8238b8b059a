// AdamW (Loshchilov & Hutter: weight decay decoupled from the gradient),
// global gradient-norm clipping, and the warmup + cosine learning-rate
// schedule. The update itself is a C kernel (kernels/cpu/train_adamw.c); the
// state is the two moment buffers and the step count, which is all a
// checkpoint needs for the next update to come out bit-identical.
import { refuse } from "../util/errors.ts";
import type { ParameterInfo } from "./train-model.ts";
import { TrainKernels } from "./train-kernels.ts";

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled decay per step is lr * weightDecay * param, on parameters whose `decay` is true. */
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

export interface LearningRateSchedule {
  peak: number;
  min: number;
  warmupSteps: number;
  totalSteps: number;
}

/**
 * The learning rate of update number `step` (0-based): linear warmup to
 * `peak` over the first warmupSteps updates (step 0 already moves, at
 * peak / warmupSteps), then a half cosine from peak down to `min` at
 * totalSteps, and `min` after that.
 */
export function learningRate(step: number, s: LearningRateSchedule): number {
  if (step < s.warmupSteps) return s.peak * (step + 1) / s.warmupSteps;
  const span = s.totalSteps - s.warmupSteps;
  if (span <= 0 || step >= s.totalSteps) return s.min;
  const progress = (step - s.warmupSteps) / span;
  return s.min + 0.5 * (s.peak - s.min) * (1 + Math.cos(Math.PI * progress));
}

export interface AdamWState {
  m: Float32Array;
  v: Float32Array;
  /** Updates applied so far (bias correction uses step + 1 for the next one). */
  step: number;
}

export interface AdamWStepResult {
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** The factor the gradients were multiplied by (1 when not clipped). */
  clipScale: number;
}

export class AdamW {
  readonly m: Float32Array;
  readonly v: Float32Array;
  private steps = 0;
  private readonly kernels: TrainKernels;

  constructor(private readonly parameters: readonly ParameterInfo[], readonly config: AdamWConfig = DEFAULT_ADAMW, threads = 1) {
    const { beta1, beta2, eps, weightDecay } = config;
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) refuse("train.bad-optimizer", `AdamW betas must be in [0, 1), got ${beta1}, ${beta2}`);
    if (!(eps > 0) || !(weightDecay >= 0)) refuse("train.bad-optimizer", `AdamW needs eps > 0 and weightDecay >= 0, got ${eps}, ${weightDecay}`);
    const last = parameters[parameters.length - 1];
    const size = last ? last.offset + last.size : 0;
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
    this.kernels = new TrainKernels(threads);
  }

  get step(): number { return this.steps; }

  /** The live state (the pipeline copies or writes it out). */
  state(): AdamWState {
    return { m: this.m, v: this.v, step: this.steps };
  }

  /** Takes over a saved state; the next update is then bit-identical to the one the saver would have made. */
  restore(state: AdamWState): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length) {
      refuse("train.bad-optimizer-state", `optimizer state holds ${state.m.length} / ${state.v.length} moments, the model has ${this.m.length} parameters`);
    }
    if (!Number.isSafeInteger(state.step) || state.step < 0) refuse("train.bad-optimizer-state", `optimizer step must be a non-negative integer, got ${state.step}`);
    this.m.set(state.m);
    this.v.set(state.v);
    this.steps = state.step;
  }

  /** Global L2 norm of `grads` (sum of squares in double, in a fixed order). */
  gradientNorm(grads: Float32Array): number {
    return Math.sqrt(this.kernels.sumOfSquares(grads));
  }

  /**
   * One update of `params` from `grads` at learning rate `lr`. With
   * maxGradNorm > 0, gradients whose global norm exceeds it are scaled down
   * to that norm (inside the kernel; `grads` itself is left as it is).
   */
  update(params: Float32Array, grads: Float32Array, lr: number, maxGradNorm = 0): AdamWStepResult {
    if (params.length !== this.m.length || grads.length !== this.m.length) {
      refuse("train.bad-optimizer", `AdamW was built for ${this.m.length} parameters, got ${params.length} parameters and ${grads.length} gradients`);
    }
    if (!(lr >= 0) || !Number.isFinite(lr)) refuse("train.bad-optimizer", `learning rate must be finite and >= 0, got ${lr}`);
    const gradNorm = this.gradientNorm(grads);
    // Checked before anything moves: a NaN or infinite gradient would poison the parameters and both moments.
    if (!Number.isFinite(gradNorm)) refuse("train.diverged", `the gradient norm is ${gradNorm}; nothing was updated (lower optimizer.lr in the lane)`);
    const clipScale = maxGradNorm > 0 && gradNorm > maxGradNorm ? maxGradNorm / gradNorm : 1;
    const t = this.steps + 1;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const hyper = { lr, beta1, beta2, eps, correction1: 1 - beta1 ** t, correction2: 1 - beta2 ** t, gradScale: clipScale };
    for (const p of this.parameters) {
      const end = p.offset + p.size;
      this.kernels.adamw(params.subarray(p.offset, end), grads.subarray(p.offset, end), this.m.subarray(p.offset, end), this.v.subarray(p.offset, end),
        { ...hyper, weightDecay: p.decay ? weightDecay : 0 });
    }
    this.steps = t;
    return { gradNorm, clipScale };
  }
}
