// `psionic train`: start, resume, inspect, export and benchmark training runs.
// Wiring only; the work is in src/train/.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PsionicError } from "../util/errors.ts";
import { formatDuration } from "../util/progress.ts";
import type { Command } from "./command.ts";
import { describeFlags, parseFlags, type FlagTable } from "./flags.ts";
import { integerFlag, withUsage } from "./generate.ts";

const usage = "psionic train --lane NAME|FILE [--run-root DIR] [--dry-run] [--steps N] | resume --run-root DIR [--steps N] | status --run-root DIR [--json] | export --run-root DIR --type F16|Q8_0|Q4_K -o FILE | bench";
const summary = "Train a model from a lane definition (lanes/*.json), resume it, report on it, export it to GGUF.";

const startFlags: FlagTable = {
  lane: { type: "string", help: "lane name (lanes/NAME.json) or path to a lane file" },
  "run-root": { type: "string", help: "directory the run owns (default runs/LANE)" },
  "dry-run": { type: "boolean", help: "validate the lane, print the model, budget and estimated time; write nothing" },
  steps: { type: "number", help: "stop after this many steps in total (resumable); default: the lane's budget" },
  help: { type: "boolean", short: "h", help: "show this help" },
};
const resumeFlags: FlagTable = {
  "run-root": { type: "string", help: "the run's directory" },
  steps: { type: "number", help: "stop after this many steps in total; default: the lane's budget" },
  help: { type: "boolean", short: "h", help: "show this help" },
};
const statusFlags: FlagTable = {
  "run-root": { type: "string", help: "the run's directory" },
  json: { type: "boolean", help: "print the status as JSON" },
  help: { type: "boolean", short: "h", help: "show this help" },
};
const exportFlags: FlagTable = {
  "run-root": { type: "string", help: "the run's directory" },
  type: { type: "string", help: "F16, Q8_0 or Q4_K (norms stay F32)", default: "Q8_0" },
  output: { type: "string", short: "o", help: "GGUF file to write" },
  help: { type: "boolean", short: "h", help: "show this help" },
};
const benchFlags: FlagTable = {
  shape: { type: "string", help: "default, wide or both", default: "both" },
  batch: { type: "number", help: "sequences per step", default: 8 },
  "seq-len": { type: "number", help: "tokens per sequence", default: 256 },
  steps: { type: "number", help: "timed steps per shape (after one warm-up step)", default: 3 },
  threads: { type: "number", short: "t", help: "CPU threads (default: all cores)" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

const help = [
  summary,
  "",
  "psionic train --lane NAME|FILE:",
  describeFlags(startFlags),
  "psionic train resume:",
  describeFlags(resumeFlags),
  "psionic train status:",
  describeFlags(statusFlags),
  "psionic train export:",
  describeFlags(exportFlags),
  "psionic train bench: tokens/s and GFLOP/s of a training step, default and wide shapes.",
  describeFlags(benchFlags),
].join("\n");

function requireRunRoot(value: unknown): string {
  if (typeof value !== "string") throw new PsionicError("cli.bad-flag", "missing --run-root DIR");
  return value;
}

async function start(argv: string[]): Promise<number> {
  const { flags, positionals } = parseFlags(argv, startFlags, usage);
  if (positionals.length > 0) throw new PsionicError("cli.bad-flag", `unexpected argument "${positionals[0]}"`);
  if (typeof flags.lane !== "string") throw new PsionicError("cli.bad-flag", "missing --lane NAME|FILE");
  const steps = integerFlag(flags, "steps", 1);
  const { loadLane, totalSteps, tokensPerStep, modelShapeOf } = await import("../train/lane.ts");
  const lane = loadLane(flags.lane);
  if (flags["dry-run"]) {
    const { estimateStepSeconds } = await import("../train/train-components.ts");
    const { parameterCount, parameterTable } = await import("../train/parameters.ts");
    const shape = modelShapeOf(lane);
    const total = Math.min(totalSteps(lane), steps ?? Infinity);
    const m = shape;
    console.log(`lane ${lane.name}: ${lane.description}`);
    console.log(`model: llama, ${m.layers} layers, width ${m.width}, ${m.heads} heads (${m.kvHeads} KV), ffn ${m.ffnWidth}, vocab ${m.vocab}, context ${m.context}${m.tiedEmbeddings ? ", tied embeddings" : ""}`);
    console.log(`parameters: ${parameterCount(parameterTable(shape)).toLocaleString("en-US")}`);
    console.log(`budget: ${total} steps x ${tokensPerStep(lane)} tokens = ${(total * tokensPerStep(lane)).toLocaleString("en-US")} tokens`);
    const seconds = estimateStepSeconds(lane);
    console.log(`estimated time: ${formatDuration(seconds * total)} (${seconds.toFixed(3)} s per step, measured on this machine with random tokens)`);
    return 0;
  }
  const { createRun } = await import("../train/run-session.ts");
  const { train } = await import("../train/trainer.ts");
  const dir = typeof flags["run-root"] === "string" ? flags["run-root"] : join("runs", lane.name);
  console.error(`psionic train: lane ${lane.name}, run root ${dir}`);
  const run = createRun(lane, dir, (what) => console.error(`psionic train: ${what}`));
  return report(await train(run, { stopAtStep: steps }), dir);
}

function report(result: Awaited<ReturnType<typeof import("../train/trainer.ts").train>>, dir: string): number {
  if (result.finished) {
    const text = join(dir, "evals", "report.txt");
    console.error(`psionic train: done at step ${result.endStep}`);
    if (existsSync(text)) console.log(readFileSync(text, "utf8").trimEnd());
  } else {
    console.error(`psionic train: stopped at step ${result.endStep}; continue with psionic train resume --run-root ${dir}`);
  }
  return 0;
}

async function resume(argv: string[]): Promise<number> {
  const { flags } = parseFlags(argv, resumeFlags, usage);
  const dir = requireRunRoot(flags["run-root"]);
  const steps = integerFlag(flags, "steps", 1);
  const { openRun } = await import("../train/run-session.ts");
  const { train } = await import("../train/trainer.ts");
  return report(await train(openRun(dir), { stopAtStep: steps }), dir);
}

async function status(argv: string[]): Promise<number> {
  const { flags } = parseFlags(argv, statusFlags, usage);
  const dir = requireRunRoot(flags["run-root"]);
  const { describeRun } = await import("../train/run-status.ts");
  const info = describeRun(dir);
  console.log(flags.json ? JSON.stringify(info.json, null, 2) : info.text);
  return 0;
}

async function exportCommand(argv: string[]): Promise<number> {
  const { flags } = parseFlags(argv, exportFlags, usage);
  const dir = requireRunRoot(flags["run-root"]);
  if (typeof flags.output !== "string") throw new PsionicError("cli.bad-flag", "missing -o FILE");
  const { exportRun, exportTypeOf } = await import("../train/export-gguf.ts");
  const result = exportRun(dir, exportTypeOf(String(flags.type)), flags.output);
  for (const r of result.refused) console.error(`psionic train export: refused ${r.dir}: ${r.reason}`);
  console.error(`psionic train export: wrote ${result.path} (${result.type}) from checkpoint step ${result.step}`);
  return 0;
}

async function bench(argv: string[]): Promise<number> {
  const { flags } = parseFlags(argv, benchFlags, usage);
  const { BENCH_SHAPES, runTrainBench } = await import("../train/train-bench.ts");
  const { availableParallelism } = await import("node:os");
  const which = String(flags.shape);
  if (which !== "both" && !(which in BENCH_SHAPES)) throw new PsionicError("cli.bad-flag", `--shape must be default, wide or both, got ${which}`);
  const names = (which === "both" ? ["default", "wide"] : [which]) as (keyof typeof BENCH_SHAPES)[];
  const batch = integerFlag(flags, "batch", 1)!, seqLen = integerFlag(flags, "seq-len", 1)!, steps = integerFlag(flags, "steps", 1)!;
  const threads = integerFlag(flags, "threads", 1, 64) ?? availableParallelism();
  for (const name of names) {
    const r = runTrainBench({ shape: BENCH_SHAPES[name], batch, seqLen, steps, threads });
    console.log(`${name}: ${(r.parameters / 1e6).toFixed(2)}M parameters, ${r.tokensPerStep} tokens/step: best ${r.best.tokensPerSecond.toFixed(0)} tok/s, ${r.best.gflops.toFixed(1)} GFLOP/s; median ${r.median.tokensPerSecond.toFixed(0)} tok/s, ${r.median.gflops.toFixed(1)} GFLOP/s`);
  }
  return 0;
}

const subcommands: Record<string, (argv: string[]) => Promise<number>> = { resume, status, export: exportCommand, bench };

export const trainCommand: Command = {
  name: "train",
  summary,
  usage,
  help,
  run(argv) {
    return withUsage("train", usage, async () => {
      if (argv.length === 0 || argv.includes("--help") || argv.includes("-h")) {
        console.log(`usage: ${usage}\n\n${help}`);
        return argv.length === 0 ? 2 : 0;
      }
      const sub = subcommands[argv[0]!];
      return sub ? sub(argv.slice(1)) : start(argv);
    });
  },
};
