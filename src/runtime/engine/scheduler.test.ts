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
import { refTopKRows } from "../sampler-reference.ts";
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

  it("on a backend with topKRows, sampled and greedy streams pick from each row's top-k what they would from the logits; only rows that need logits come back whole", async () => {
    const path = join(dir, "tiny-topk.gguf");
    synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 11 }, path);
    const jobs: GenerateJob[] = [
      { ...job("sampled", [1, 2, 3], 24), sampling: { temperature: 0.9, topK: 40, seed: 3 } },
      { ...job("wide", [4, 5], 24), sampling: { temperature: 1.2, topK: 128, topP: 0.9, seed: 4 } },
      job("greedy", [6, 7, 8, 9], 24),
      { ...job("penalized", [10, 11], 24), sampling: { temperature: 0.8, repeatPenalty: 1.3, presencePenalty: 0.4, seed: 5 } },
      { ...job("logprobs", [12, 13], 24), sampling: { temperature: 0.8, seed: 6 }, logprobs: true, topLogprobs: 3 },
      { ...job("raising", [18, 19], 24), sampling: { temperature: 0.8, seed: 9, repeatPenalty: 0.9 } },
      { ...job("greedy-penalized", [14, 15], 24), sampling: { temperature: 0, repeatPenalty: 1.4 } },
      // JSON mode: the trial pick from the top-k; only a refused one reads the row to mask (it may end early).
      { ...job("json", [16, 17], 24), sampling: { temperature: 0.9, seed: 8 }, constraint: { kind: "json-object" } },
    ];
    const run = async (withTopK: boolean, ids: string[]) => {
      const backend = await createBackend("cpu", { threads: 1 });
      const counts = { topK: 0, rowsDownloaded: 0 };
      const download = backend.download.bind(backend);
      backend.download = (x, into) => ((counts.rowsDownloaded += x.rows), download(x, into));
      if (withTopK) backend.topKRows = (x, k) => (counts.topK++, refTopKRows(download(x), x.rows, k));
      const loaded = loadModel(path, { backend, contextLimit: 256 });
      const events: JobEvent[] = [];
      const s = new Scheduler(describeModel(loaded, "m", "cpu"), loaded, { parallel: 8, maxQueue: 8, cacheEntries: 8 }, (e) => events.push(e));
      for (const j of jobs.filter((j) => ids.includes(j.id))) s.submit(j);
      while (s.hasWork()) s.step();
      // Tokens, and for the logprobs stream each token's logprob and alternatives too.
      const tokens = Object.fromEntries(ids.map((id) => [id, events.flatMap((e) => (e.kind === "token" && e.id === id ? [id === "logprobs" ? { token: e.token, logprob: e.logprob, top: e.topLogprobs } : e.token] : []))]));
      for (const id of ids) if (id !== "json") expect(tokens[id]).toHaveLength(24);
      return { tokens, counts };
    };
    const onTheDevice = ["sampled", "wide", "greedy", "penalized", "greedy-penalized", "logprobs"];
    const onDevice = await run(true, onTheDevice);
    expect(onDevice.tokens).toEqual((await run(false, onTheDevice)).tokens);
    // The prompts' first picks come back whole (they go to the prompt cache); the other 23 steps each read a top-k.
    expect(onDevice.counts).toEqual({ topK: 23, rowsDownloaded: 6 });
    const json = await run(true, ["sampled", "json"]);
    expect(json.tokens).toEqual((await run(false, ["sampled", "json"])).tokens);
    expect(json.counts.topK).toBe(23);
    // Two first picks, then one row for each refused trial of the JSON stream: not one for every pick.
    expect(json.counts.rowsDownloaded).toBeLessThan(2 + json.tokens.json!.length - 1);
    // A stream with a penalty that can raise logits needs its whole row each step; the sampled stream beside it still gets its top-k.
    const mixed = await run(true, ["sampled", "raising"]);
    expect(mixed.tokens).toEqual((await run(false, ["sampled", "raising"])).tokens);
    expect(mixed.counts).toEqual({ topK: 23, rowsDownloaded: 2 + 23 });
  }, 60_000);
});
