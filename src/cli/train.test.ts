import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LANES_DIR } from "../train/lane.ts";
import { openRun } from "../train/run-session.ts";
import { preparedRunRoot, removeTestRuns } from "../train/test-run-fixture.ts";
import { train } from "../train/trainer.ts";
import { runCli as run } from "./run-in-process.ts";

const scratch = mkdtempSync(join(tmpdir(), "psionic-train-cli-"));
afterAll(() => {
  removeTestRuns();
  rmSync(scratch, { recursive: true, force: true });
});

describe("psionic train", () => {
  it("--dry-run prints the model, budget and estimated time and writes nothing", async () => {
    const root = join(scratch, "dry");
    const { code, out } = await run(["train", "--lane", "brown-tiny", "--run-root", root, "--dry-run"]);
    expect(code).toBe(0);
    // 2 x 512 x 64 (embedding, output) + 64 + 2 x (2 x 64 + 64x64 x 2 + 64x32 x 2 + 3 x 64x192)
    expect(out).toContain("parameters: 164,160");
    expect(out).toContain("budget: 200 steps x 512 tokens");
    expect(out).toMatch(/estimated time: \S+ \(\d+\.\d+ s per step/);
    expect(existsSync(root)).toBe(false);
  });

  it("refuses a bad lane file, naming the file and the field", async () => {
    const lane = JSON.parse(readFileSync(join(LANES_DIR, "brown-tiny.json"), "utf8"));
    lane.optimizer.beta2 = 1.5;
    const path = join(scratch, "bad-lane.json");
    writeFileSync(path, JSON.stringify(lane));
    const { code, err } = await run(["train", "--lane", path, "--dry-run"]);
    expect(code).toBe(1);
    expect(err).toContain(`${path}: field optimizer.beta2`);
  });

  it("asks for --run-root where a subcommand needs one (usage error, exit 2)", async () => {
    const { code, err } = await run(["train", "status"]);
    expect(code).toBe(2);
    expect(err).toContain("missing --run-root DIR");
  });

  it("reports a run's status for people and as JSON, and exports it", async () => {
    const root = preparedRunRoot();
    await train(openRun(root), { stopAtStep: 4, progress: null });
    const human = await run(["train", "status", "--run-root", root]);
    expect(human.code).toBe(0);
    expect(human.out).toContain("state: stopped, step 4/40");
    expect(human.out).toContain("checkpoints: step-4, step-2");
    const json = JSON.parse((await run(["train", "status", "--run-root", root, "--json"])).out);
    expect(json.status).toMatchObject({ state: "stopped", step: 4, totalSteps: 40, lastCheckpointStep: 4 });
    expect(json.config.lane).toBe("brown-tiny-test");
    const out = join(scratch, "cli.gguf");
    const exported = await run(["train", "export", "--run-root", root, "--type", "F16", "-o", out]);
    expect(exported.code).toBe(0);
    expect(exported.err).toContain("from checkpoint step 4");
    expect(existsSync(out)).toBe(true);
    const badType = await run(["train", "export", "--run-root", root, "--type", "Q3_K", "-o", out]);
    expect(badType.code).toBe(2);
    expect(badType.err).toContain("--type Q3_K is not supported for export");
  }, 60_000);

  it("refuses to start a second run in a run root that holds one", async () => {
    const root = preparedRunRoot();
    const { code, err } = await run(["train", "--lane", "brown-tiny", "--run-root", root]);
    expect(code).toBe(1);
    expect(err).toContain("already holds a run");
  }, 60_000);
});
