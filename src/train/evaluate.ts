// Held-out evaluation: mean cross-entropy over the fixed held-out windows
// (batches.ts evalBatches: the same windows every time) and its perplexity,
// written to evals/step-N.json.
import { join } from "node:path";
import { writeJsonAtomic } from "./atomic-files.ts";
import type { TrainModel } from "./train-model.ts";

export interface EvalResult {
  step: number;
  /** Mean cross-entropy per token, in nats. */
  loss: number;
  perplexity: number;
  tokens: number;
}

export function evaluate(model: TrainModel, batches: readonly Int32Array[], sequences: number, seqLen: number, step: number): EvalResult {
  let sum = 0;
  // Every batch has the same token count, so the mean of batch means is the token mean.
  for (const batch of batches) sum += model.loss(batch, sequences, seqLen);
  const loss = sum / batches.length;
  return { step, loss, perplexity: Math.exp(loss), tokens: batches.length * sequences * seqLen };
}

export function writeEvaluation(evalsDir: string, result: EvalResult): void {
  writeJsonAtomic(join(evalsDir, `step-${result.step}.json`), result);
}
