import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openRun } from "./run-session.ts";
import { preparedRunRoot, removeTestRuns } from "./test-run-fixture.ts";
import { train } from "./trainer.ts";

afterAll(removeTestRuns);

describe("training loop", () => {
  it("reports step, loss, tokens/s, GFLOP/s and ETA while training, and rewrites status every step", async () => {
    const dir = preparedRunRoot();
    const lines: string[] = [];
    const statuses: number[] = [];
    await train(openRun(dir), {
      stopAtStep: 3,
      progress: { isTTY: false, write: (t: string) => void lines.push(t) },
      onStep: () => statuses.push(JSON.parse(readFileSync(join(dir, "status", "status.json"), "utf8")).step),
    });
    // The status a step's callback sees is the previous step's; after the run it is the last one.
    expect(statuses).toEqual([0, 1, 2]);
    expect(lines[0]).toMatch(/^step 1\/40 {2}loss \d+\.\d{4} {2}lr \S+ {2}\d+ tok\/s {2}\d+\.\d GFLOP\/s {2}ETA \S+\n$/);
    expect(lines.at(-1)).toMatch(/^step 3\/40 /);
    const status = JSON.parse(readFileSync(join(dir, "status", "status.json"), "utf8"));
    expect(status).toMatchObject({ state: "stopped", step: 3, totalSteps: 40, lastCheckpointStep: 3 });
    expect(status.tokensPerSecond).toBeGreaterThan(0);
    expect(status.gflopsPerSecond).toBeGreaterThan(0);
  }, 60_000);

  it("evaluates on held-out data at the cadence and writes a final report when the budget is reached", async () => {
    const dir = preparedRunRoot();
    const result = await train(openRun(dir), { progress: null });
    expect(result.finished).toBe(true);
    for (const step of [4, 8, 36, 40]) expect(existsSync(join(dir, "evals", `step-${step}.json`))).toBe(true);
    expect(existsSync(join(dir, "evals", "step-6.json"))).toBe(false);
    const report = JSON.parse(readFileSync(join(dir, "evals", "report.json"), "utf8"));
    expect(report).toMatchObject({ lane: "brown-tiny-test", steps: 40, tokensTrained: 40 * 512, parameterCount: 164160 });
    expect(report.evaluations.map((e: { step: number }) => e.step)).toEqual([4, 8, 12, 16, 20, 24, 28, 32, 36, 40]);
    // 40 steps take the held-out loss well below the uniform guess, ln 512 = 6.24.
    expect(report.heldOut.loss).toBeLessThan(report.evaluations[0].loss);
    expect(report.heldOut.loss).toBeLessThan(6);
    expect(report.heldOut.perplexity).toBeCloseTo(Math.exp(report.heldOut.loss), 6);
    expect(readFileSync(join(dir, "evals", "report.txt"), "utf8")).toContain("held-out loss");
    expect(JSON.parse(readFileSync(join(dir, "status", "status.json"), "utf8")).state).toBe("done");
  }, 60_000);
});
