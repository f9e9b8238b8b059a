// Test helper: a prepared brown-tiny run root (tokenizer trained, corpus
// tokenized: the slow part) made once per test process, copied for each test
// so runs never share state. The lane is brown-tiny with a budget of a few
// steps and frequent evaluations and checkpoints.
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LANES_DIR, parseLane, type Lane } from "./lane.ts";
import { createRun } from "./run-session.ts";

let prepared: string | undefined;
const made: string[] = [];

export function tinyTestLane(overrides: { steps?: number; evalEvery?: number; checkpointEvery?: number } = {}): Lane {
  const lane = JSON.parse(readFileSync(join(LANES_DIR, "brown-tiny.json"), "utf8"));
  lane.name = "brown-tiny-test";
  lane.budget = { steps: overrides.steps ?? 40 };
  lane.optimizer.warmupSteps = 2;
  lane.eval = { every: overrides.evalEvery ?? 4, batches: 2 };
  lane.checkpoint = { every: overrides.checkpointEvery ?? 2, keep: 3 };
  return parseLane(lane, "test lane");
}

/** A fresh copy of the prepared run root of `tinyTestLane()` (no checkpoints yet). */
export function preparedRunRoot(): string {
  if (!prepared) {
    prepared = join(mkdtempSync(join(tmpdir(), "psionic-train-fixture-")), "run");
    createRun(tinyTestLane(), prepared);
  }
  const copy = join(mkdtempSync(join(tmpdir(), "psionic-train-")), "run");
  made.push(copy);
  cpSync(prepared, copy, { recursive: true });
  return copy;
}

/** Removes the copies; the prepared original stays for other test files of this process and goes at exit. */
export function removeTestRuns(): void {
  for (const dir of made.splice(0)) rmSync(join(dir, ".."), { recursive: true, force: true });
}

process.on("exit", () => {
  if (prepared) rmSync(join(prepared, ".."), { recursive: true, force: true });
});
