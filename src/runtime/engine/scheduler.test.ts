// The scheduler step by step (no worker): chunked prefill shares steps with
// running streams instead of stalling them.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGMLType } from "../../gguf/types.ts";
import { synthesize } from "../../model/synth.ts";
import { createBackend } from "../backends.ts";
import { loadModel } from "../generator.ts";
import type { GenerateJob, JobEvent } from "./protocol.ts";
import { Scheduler } from "./scheduler.ts";
import { describeModel } from "./served-model.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-scheduler-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const job = (id: string, tokens: number[], maxTokens: number): GenerateJob => ({
  id, model: "m", prompt: { tokens }, maxTokens, sampling: { temperature: 0 }, stop: [], logprobs: false, topLogprobs: 0,
});

describe("Scheduler", () => {
  it("a long prompt is evaluated in chunks while a running stream gets a token every step", async () => {
    const path = join(dir, "tiny.gguf");
    synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 7 }, path);
    const loaded = loadModel(path, { backend: await createBackend("cpu", { threads: 1 }), contextLimit: 512 });
    const events: JobEvent[] = [];
    const s = new Scheduler(describeModel(loaded, "m", "cpu"), loaded, { parallel: 2, maxQueue: 4, cacheEntries: 4, prefillChunk: 100 }, (e) => events.push(e));
    s.submit(job("a", [1, 2, 3, 4], 50));
    s.step(); // a's prompt and first token
    expect(events.filter((e) => e.kind === "token")).toHaveLength(1);
    s.submit(job("b", Array.from({ length: 350 }, (_, i) => 5 + (i % 200)), 5));
    const tokensOf = (id: string) => events.filter((e) => e.kind === "token" && e.id === id).length;
    // b needs ceil(350 / 100) = 4 steps of prefill; a decodes one token in each.
    for (let step = 1; step <= 4; step++) {
      s.step();
      expect(tokensOf("a")).toBe(1 + step);
      expect(tokensOf("b")).toBe(step === 4 ? 1 : 0);
    }
    while (s.hasWork()) s.step();
    expect(events.filter((e) => e.kind === "done").map((e) => e.id).sort()).toEqual(["a", "b"]);
  }, 60_000);
});
