import { afterAll, describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex } from "./atomic-files.ts";
import { openRun } from "./run-session.ts";
import { preparedRunRoot, removeTestRuns } from "./test-run-fixture.ts";
import { train, type StepRecord } from "./trainer.ts";

afterAll(removeTestRuns);

// The first test to run also tokenizes the corpus for the shared fixture (several seconds on a busy machine).
const TIMEOUT = 60_000;

const MAIN = join(import.meta.dir, "../cli/main.ts");

/** Digests of the final checkpoint's weights and moments, and the losses the log recorded per step (last write wins). */
function outcome(dir: string, step: number) {
  const ckpt = join(dir, "checkpoints", `step-${step}`);
  const losses = new Map<number, string>();
  for (const m of readFileSync(join(dir, "logs", "train.log"), "utf8").matchAll(/step=(\d+) loss=(\S+)/g)) losses.set(Number(m[1]), m[2]!);
  return {
    model: sha256Hex(readFileSync(join(ckpt, "model.safetensors"))),
    optimizer: sha256Hex(readFileSync(join(ckpt, "optimizer.safetensors"))),
    losses: [...losses.entries()].sort((a, b) => a[0] - b[0]),
  };
}

// The fixture lane's budget is 40 steps; these tests train its first 8.
async function trainQuietly(dir: string, stopAtStep = 8, onStep?: (r: StepRecord) => void) {
  return train(openRun(dir), { stopAtStep, progress: null, onStep });
}

/** Runs `psionic train resume` in a child process; returns how it ended. */
async function child(dir: string, env: Record<string, string> = {}, killWhen?: (dir: string) => boolean) {
  const proc = Bun.spawn([process.execPath, MAIN, "train", "resume", "--run-root", dir, "--steps", "8"], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  if (killWhen) {
    while (proc.exitCode === null && !killWhen(dir)) await Bun.sleep(5);
    proc.kill("SIGKILL");
  }
  await proc.exited;
  return { code: proc.exitCode, signal: proc.signalCode, err: await new Response(proc.stderr).text() };
}

let reference: ReturnType<typeof outcome> | undefined;
async function uninterrupted() {
  if (!reference) {
    const dir = preparedRunRoot();
    const result = await trainQuietly(dir);
    expect(result).toMatchObject({ startStep: 0, endStep: 8, finished: false });
    reference = outcome(dir, 8);
  }
  return reference;
}

describe("exact resume", () => {
  it("4 steps, stop, resume, 4 more gives the losses, weights and moments of 8 uninterrupted steps, bit for bit", async () => {
    const whole = await uninterrupted();
    const dir = preparedRunRoot();
    const first = await trainQuietly(dir, 4);
    expect(first).toMatchObject({ startStep: 0, endStep: 4, finished: false });
    const resumed: StepRecord[] = [];
    const second = await trainQuietly(dir, 8, (r) => resumed.push(r));
    expect(second).toMatchObject({ startStep: 4, endStep: 8 });
    expect(resumed.map((r) => String(r.loss))).toEqual(whole.losses.slice(4).map(([, loss]) => loss));
    const split = outcome(dir, 8);
    expect(split.losses).toEqual(whole.losses);
    expect(split.model).toBe(whole.model);
    expect(split.optimizer).toBe(whole.optimizer);
    expect(whole.losses.length).toBe(8);
  }, TIMEOUT);

  it("resumes bit-identically after kill -9 mid-checkpoint (files written, no manifest yet)", async () => {
    const whole = await uninterrupted();
    const dir = preparedRunRoot();
    const killed = await child(dir, { PSIONIC_TRAIN_KILL_AT: "checkpoint-files:4" });
    expect(killed.signal).toBe("SIGKILL");
    const status = JSON.parse(readFileSync(join(dir, "status", "status.json"), "utf8"));
    expect(status.step).toBe(4);
    const resumed = await trainQuietly(dir);
    expect(resumed.startStep).toBe(2);
    expect(resumed.refusedCheckpoints.map((r) => r.dir)).toEqual([]);
    expect(outcome(dir, 8)).toEqual(whole);
  }, TIMEOUT);

  it("resumes bit-identically after kill -9 between the checkpoint's rename and the latest.json pointer", async () => {
    const whole = await uninterrupted();
    const dir = preparedRunRoot();
    expect((await child(dir, { PSIONIC_TRAIN_KILL_AT: "checkpoint-renamed:6" })).signal).toBe("SIGKILL");
    expect(JSON.parse(readFileSync(join(dir, "checkpoints", "latest.json"), "utf8")).step).toBe(4);
    const resumed = await trainQuietly(dir);
    expect(resumed.startStep).toBe(6);
    expect(outcome(dir, 8)).toEqual(whole);
  }, TIMEOUT);

  it("resumes bit-identically after kill -9 from outside at an arbitrary moment", async () => {
    const whole = await uninterrupted();
    const dir = preparedRunRoot();
    const stepOf = (d: string) => {
      try {
        return JSON.parse(readFileSync(join(d, "status", "status.json"), "utf8")).step as number;
      } catch {
        return 0;
      }
    };
    const killed = await child(dir, {}, (d) => stepOf(d) >= 3);
    expect(killed.signal === "SIGKILL" || killed.code === 0).toBe(true);
    await trainQuietly(dir);
    expect(outcome(dir, 8)).toEqual(whole);
  }, TIMEOUT);

  it("refuses a tampered checkpoint by digest, falls back to the previous one, and still ends bit-identical", async () => {
    const whole = await uninterrupted();
    const dir = preparedRunRoot();
    await trainQuietly(dir, 6);
    const weights = join(dir, "checkpoints", "step-6", "model.safetensors");
    const bytes = readFileSync(weights);
    bytes[bytes.length - 100]! ^= 0x40;
    writeFileSync(weights, bytes);
    const resumed = await trainQuietly(dir);
    expect(resumed.startStep).toBe(4);
    expect(resumed.refusedCheckpoints).toHaveLength(1);
    expect(resumed.refusedCheckpoints[0]!.reason).toContain("step-6/model.safetensors: SHA-256");
    expect(readFileSync(join(dir, "logs", "train.log"), "utf8")).toContain("refused checkpoint");
    expect(outcome(dir, 8)).toEqual(whole);
  }, TIMEOUT);
});
