// A run root: the directory a training run owns. Everything a person or a
// machine needs to follow, resume, audit or export the run is here:
//   manifests/lane.json     the lane as validated (defaults filled in)
//   manifests/config.json   lane digest, data digest, model size, budget
//   manifests/data.json     the data manifest (files, split rule, shard digests)
//   data/                   tokenizer.json and token shards
//   status/status.json      the current state, rewritten atomically every step
//   checkpoints/step-N/     complete, verified checkpoints; latest.json points to the newest
//   evals/step-N.json       held-out loss and perplexity; report.json + report.txt at the end
//   logs/train.log          one line per step, eval, checkpoint and refusal
import * as v from "valibot";
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeJsonAtomic } from "./atomic-files.ts";
import { parseWithSchema, readJsonFile } from "./schema-check.ts";

export class RunRoot {
  constructor(readonly dir: string) {}

  get manifestsDir() { return join(this.dir, "manifests"); }
  get laneManifest() { return join(this.dir, "manifests", "lane.json"); }
  get configManifest() { return join(this.dir, "manifests", "config.json"); }
  get dataManifest() { return join(this.dir, "manifests", "data.json"); }
  get dataDir() { return join(this.dir, "data"); }
  get statusPath() { return join(this.dir, "status", "status.json"); }
  get checkpointsDir() { return join(this.dir, "checkpoints"); }
  get evalsDir() { return join(this.dir, "evals"); }
  get logPath() { return join(this.dir, "logs", "train.log"); }

  createLayout(): void {
    for (const d of ["manifests", "data", "status", "checkpoints", "evals", "logs"]) mkdirSync(join(this.dir, d), { recursive: true });
  }

  /** Appends one line (whole-line appends stay intact under concurrent readers). */
  log(line: string): void {
    appendFileSync(this.logPath, `${new Date().toISOString()} ${line}\n`);
  }

  writeStatus(status: TrainStatus): void {
    writeJsonAtomic(this.statusPath, status);
  }

  readStatus(): TrainStatus {
    return parseWithSchema(TrainStatusSchema, readJsonFile(this.statusPath, "train.no-status"), this.statusPath, "train.bad-status");
  }
}

const digest = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));

export const ConfigManifestSchema = v.strictObject({
  format: v.literal(1),
  lane: v.string(),
  laneDigest: digest,
  dataDigest: digest,
  parameterCount: v.number(),
  totalSteps: v.number(),
  tokensPerStep: v.number(),
});
export type ConfigManifest = v.InferOutput<typeof ConfigManifestSchema>;

export const TrainStatusSchema = v.strictObject({
  format: v.literal(1),
  lane: v.string(),
  /** running (or killed while running); done: budget reached; stopped: the --steps limit came first. */
  state: v.picklist(["running", "done", "stopped"]),
  step: v.number(),
  totalSteps: v.number(),
  loss: v.nullable(v.number()),
  learningRate: v.nullable(v.number()),
  tokensPerSecond: v.nullable(v.number()),
  gflopsPerSecond: v.nullable(v.number()),
  etaSeconds: v.nullable(v.number()),
  lastCheckpointStep: v.nullable(v.number()),
  lastEval: v.nullable(v.strictObject({ step: v.number(), loss: v.number(), perplexity: v.number() })),
  pid: v.number(),
  updatedAt: v.string(),
});
export type TrainStatus = v.InferOutput<typeof TrainStatusSchema>;
