// `psionic train status`: what a run root says about itself, without loading
// data or weights: the status file, the config manifest, the checkpoints on
// disk and the final report if there is one.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { refuse } from "../util/errors.ts";
import { formatDuration } from "../util/progress.ts";
import { listCheckpointSteps } from "./checkpoint.ts";
import { ConfigManifestSchema, RunRoot, type TrainStatus } from "./run-root.ts";
import { parseWithSchema, readJsonFile } from "./schema-check.ts";

export function describeRun(dir: string): { json: Record<string, unknown>; text: string } {
  const root = new RunRoot(dir);
  if (!existsSync(root.laneManifest)) refuse("train.no-run", `${dir} holds no run (no ${root.laneManifest})`);
  const config = existsSync(root.configManifest)
    ? parseWithSchema(ConfigManifestSchema, readJsonFile(root.configManifest, "train.bad-run"), root.configManifest, "train.bad-run")
    : null;
  const status: TrainStatus | null = existsSync(root.statusPath) ? root.readStatus() : null;
  const checkpoints = listCheckpointSteps(root.checkpointsDir);
  const reportPath = join(root.evalsDir, "report.json");
  const report = existsSync(reportPath) ? (JSON.parse(readFileSync(reportPath, "utf8")) as Record<string, unknown>) : null;
  const json = { runRoot: dir, config, status, checkpoints, report };

  const lines = [`run root ${dir}`];
  if (!config) lines.push("state: preparing data (no config manifest yet)");
  else lines.push(`lane ${config.lane}: ${(config.parameterCount / 1e6).toFixed(2)}M parameters, ${config.totalSteps} steps of ${config.tokensPerStep} tokens`);
  if (status) {
    lines.push(`state: ${status.state}, step ${status.step}/${status.totalSteps}${status.loss !== null ? `, loss ${status.loss.toFixed(4)}` : ""} (updated ${status.updatedAt}, pid ${status.pid})`);
    if (status.tokensPerSecond !== null) {
      lines.push(`speed: ${status.tokensPerSecond.toFixed(0)} tokens/s, ${status.gflopsPerSecond?.toFixed(1)} GFLOP/s${status.state === "running" && status.etaSeconds !== null ? `, ETA ${formatDuration(status.etaSeconds)}` : ""}`);
    }
    if (status.lastEval) lines.push(`last eval: step ${status.lastEval.step}, held-out loss ${status.lastEval.loss.toFixed(4)}, perplexity ${status.lastEval.perplexity.toFixed(2)}`);
  } else lines.push("state: not started");
  lines.push(`checkpoints: ${checkpoints.length ? checkpoints.map((s) => `step-${s}`).join(", ") : "none"}`);
  if (existsSync(join(root.evalsDir, "report.txt"))) lines.push("final report:", readFileSync(join(root.evalsDir, "report.txt"), "utf8").trimEnd());
  return { json, text: lines.join("\n") };
}
