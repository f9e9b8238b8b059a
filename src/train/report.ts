// The final report of a finished run: evals/report.json for machines and
// evals/report.txt for people, from the run's manifests, its evaluations and
// the step lines of its log.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "./atomic-files.ts";
import type { EvalResult } from "./evaluate.ts";
import type { RunSession } from "./run-session.ts";

export interface FinalReport {
  lane: string;
  laneDigest: string;
  dataDigest: string;
  parameterCount: number;
  steps: number;
  tokensTrained: number;
  finalTrainLoss: number | null;
  heldOut: { loss: number; perplexity: number; tokens: number };
  evaluations: { step: number; loss: number; perplexity: number }[];
  /** From the log's step lines of the last process that trained (tokens/s of its steps). */
  tokensPerSecond: number | null;
  gflopsPerSecond: number | null;
}

function evaluations(evalsDir: string): FinalReport["evaluations"] {
  if (!existsSync(evalsDir)) return [];
  return readdirSync(evalsDir)
    .filter((f) => /^step-\d+\.json$/.test(f))
    .map((f) => JSON.parse(readFileSync(join(evalsDir, f), "utf8")) as EvalResult)
    .map(({ step, loss, perplexity }) => ({ step, loss, perplexity }))
    .sort((a, b) => a.step - b.step);
}

function lastRate(logPath: string, key: string): number | null {
  if (!existsSync(logPath)) return null;
  const matches = [...readFileSync(logPath, "utf8").matchAll(new RegExp(`${key}=([0-9.]+)`, "g"))];
  return matches.length ? Number(matches[matches.length - 1]![1]) : null;
}

export function writeFinalReport(run: RunSession, final: EvalResult, finalTrainLoss: number | null): FinalReport {
  const report: FinalReport = {
    lane: run.lane.name,
    laneDigest: run.config.laneDigest,
    dataDigest: run.config.dataDigest,
    parameterCount: run.parameterCount,
    steps: final.step,
    tokensTrained: final.step * run.config.tokensPerStep,
    finalTrainLoss,
    heldOut: { loss: final.loss, perplexity: final.perplexity, tokens: final.tokens },
    evaluations: evaluations(run.root.evalsDir),
    tokensPerSecond: lastRate(run.root.logPath, "tok_s"),
    gflopsPerSecond: lastRate(run.root.logPath, "gflop_s"),
  };
  writeJsonAtomic(join(run.root.evalsDir, "report.json"), report);
  writeFileAtomic(join(run.root.evalsDir, "report.txt"), formatReport(report));
  return report;
}

export function formatReport(r: FinalReport): string {
  const lines = [
    `lane ${r.lane}: ${(r.parameterCount / 1e6).toFixed(2)}M parameters, ${r.steps} steps, ${(r.tokensTrained / 1e6).toFixed(2)}M tokens`,
    `final training loss ${r.finalTrainLoss?.toFixed(4) ?? "n/a"}`,
    `held-out loss ${r.heldOut.loss.toFixed(4)} (perplexity ${r.heldOut.perplexity.toFixed(2)}) over ${r.heldOut.tokens} tokens`,
    `speed ${r.tokensPerSecond ?? "n/a"} tokens/s, ${r.gflopsPerSecond ?? "n/a"} GFLOP/s`,
    "evaluations:",
    ...r.evaluations.map((e) => `  step ${String(e.step).padStart(6)}  loss ${e.loss.toFixed(4)}  perplexity ${e.perplexity.toFixed(2)}`),
  ];
  return lines.join("\n") + "\n";
}
