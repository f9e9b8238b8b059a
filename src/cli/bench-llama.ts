// The peer side of `psionic bench --against llama-bench`: finds llama.cpp's
// own llama-bench (built natively by ../shared/scripts/build-llama-peer.sh),
// runs it on the same file with the same threads, prompt, generation length
// and repetitions, and reads its `-o json` results.
import { existsSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { refuse } from "../util/errors.ts";

/** One llama-bench result row: a pp or tg test with its per-repetition throughput. */
export interface PeerResult {
  test: string;
  nPrompt: number;
  nGen: number;
  /** llama-bench's own statistic: mean and sample standard deviation of per-run tok/s. */
  meanTokensPerSecond: number;
  stddevTokensPerSecond: number;
  samplesTokensPerSecond: number[];
}

/**
 * llama-bench's path: --llama-bench, else $PSIONIC_LLAMA_BENCH, else the
 * most recently built CPU build under ~/.cache/psionic-peers (*-cpu/build/bin).
 * Undefined when none exists.
 */
export function findLlamaBench(explicit?: string): string | undefined {
  if (explicit !== undefined) {
    if (!existsSync(explicit)) refuse("bench.peer-missing", `--llama-bench ${explicit}: no such file`);
    return explicit;
  }
  const fromEnv = process.env.PSIONIC_LLAMA_BENCH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) refuse("bench.peer-missing", `PSIONIC_LLAMA_BENCH=${fromEnv}: no such file`);
    return fromEnv;
  }
  const cache = join(homedir(), ".cache", "psionic-peers");
  if (!existsSync(cache)) return undefined;
  // CPU builds only (a CUDA llama-bench would be a different comparison); the most recently built wins.
  const built = readdirSync(cache)
    .filter((d) => d.endsWith("-cpu"))
    .map((d) => join(cache, d, "build", "bin", "llama-bench"))
    .filter((path) => existsSync(path))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return built[0];
}

export interface PeerRun {
  model: string;
  threads: number;
  nPrompt: number;
  nGen: number;
  /** Physical batch (-ub); the logical batch (-b, 2048 by default) is raised to it when smaller. */
  ubatch: number;
  repetitions: number;
}

/** Runs llama-bench once (it runs the pp and the tg test itself) and returns its rows. */
export async function runLlamaBench(binary: string, run: PeerRun): Promise<PeerResult[]> {
  const args = [
    binary, "-m", run.model, "-t", String(run.threads), "-p", String(run.nPrompt), "-n", String(run.nGen),
    "-ub", String(run.ubatch), "-b", String(Math.max(2048, run.ubatch)), "-r", String(run.repetitions), "-o", "json",
  ];
  const child = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) {
    const tail = stderr.trim().split("\n").slice(-3).join(" | ");
    refuse("bench.peer-failed", `${args.join(" ")} exited with ${code}: ${tail}`);
  }
  return parseLlamaBenchJson(stdout);
}

/** llama-bench's `-o json`: an array of test objects with n_prompt, n_gen, avg_ts, stddev_ts and samples_ts. */
export function parseLlamaBenchJson(text: string): PeerResult[] {
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch {
    return refuse("bench.peer-output", `llama-bench printed no JSON (starts: ${JSON.stringify(text.slice(0, 80))})`);
  }
  if (!Array.isArray(rows)) refuse("bench.peer-output", "llama-bench JSON is not an array of tests");
  return (rows as Record<string, unknown>[]).map((row, i) => {
    const number = (key: string): number => {
      const v = row[key];
      if (typeof v !== "number" || !Number.isFinite(v)) refuse("bench.peer-output", `llama-bench test ${i}: ${key} is ${JSON.stringify(v)}, not a number`);
      return v as number;
    };
    const nPrompt = number("n_prompt"), nGen = number("n_gen");
    const samples = row.samples_ts;
    if (!Array.isArray(samples) || !samples.every((s) => typeof s === "number")) refuse("bench.peer-output", `llama-bench test ${i}: samples_ts is not a list of numbers`);
    return {
      test: testName(nPrompt, nGen),
      nPrompt, nGen,
      meanTokensPerSecond: number("avg_ts"),
      stddevTokensPerSecond: number("stddev_ts"),
      samplesTokensPerSecond: samples as number[],
    };
  });
}

/** llama-bench's test names: pp512, tg128, pp512+tg128. */
export function testName(nPrompt: number, nGen: number): string {
  if (nPrompt > 0 && nGen === 0) return `pp${nPrompt}`;
  if (nGen > 0 && nPrompt === 0) return `tg${nGen}`;
  return `pp${nPrompt}+tg${nGen}`;
}
