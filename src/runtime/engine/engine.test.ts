// The engine worker end to end on a tiny synthesized llama: batched
// sequences give the tokens each gives alone, the prefix cache skips work it
// has done, cancellation frees the slot, and refusals carry their status.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGMLType } from "../../gguf/types.ts";
import { synthesize } from "../../model/synth.ts";
import { createBackend } from "../backends.ts";
import { generate, loadModel } from "../generator.ts";
import { compileJsonSchema } from "../constraint/json-schema.ts";
import { matchesSchema } from "../constraint/schema-validate.ts";
import { startEngine } from "./engine-client.ts";
import type { Engine } from "./engine.ts";
import type { GenerateJob, JobEvent } from "./protocol.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-engine-"));
const path = join(dir, "tiny.gguf");
let engine: Engine;
let jobs = 0;

function job(text: string, maxTokens: number, extra: Partial<GenerateJob> = {}): GenerateJob {
  return { id: `job-${jobs++}`, model: "tiny", prompt: { text }, maxTokens, sampling: { temperature: 0 }, stop: [], logprobs: false, topLogprobs: 0, ...extra };
}

async function collect(j: GenerateJob): Promise<{ events: JobEvent[]; tokens: number[]; text: string }> {
  const events: JobEvent[] = [];
  for await (const e of engine.generate(j)) events.push(e);
  const tokens = events.flatMap((e) => (e.kind === "token" ? [e.token] : []));
  const text = events.map((e) => (e.kind === "token" ? e.text : "")).join("");
  return { events, tokens, text };
}

beforeAll(async () => {
  synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 7 }, path);
  engine = await startEngine({ models: [{ path }], backend: "cpu", threads: 2, contextLimit: 128, parallel: 4, maxQueue: 2 });
}, 60_000); // synthesizing and loading models is slow on a loaded 2-core machine
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("engine worker", () => {
  it("lists the model with its architecture, quantization, context and digest", () => {
    expect(engine.models).toHaveLength(1);
    const m = engine.models[0]!;
    expect(m).toMatchObject({ id: "tiny", architecture: "llama", quant: "Q8_0", context: 128, backend: "cpu" });
    expect(m.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it("generates the same greedy tokens as the single-sequence generator", async () => {
    const loaded = loadModel(path, { backend: await createBackend("cpu", { threads: 2 }), contextLimit: 128 });
    let expected: number[] = [];
    for await (const e of generate(loaded, { prompt: "The quick brown fox", maxTokens: 16, sampling: { temperature: 0 } })) if (e.kind === "done") expected = e.tokens;
    const got = await collect(job("The quick brown fox", 16));
    expect(got.events[0]).toMatchObject({ kind: "started", promptTokens: expect.any(Number) });
    expect(got.tokens).toEqual(expected);
    expect(got.events.at(-1)).toMatchObject({ kind: "done", finishReason: "length", completionTokens: 16 });
  });

  it("four concurrent sequences share steps and each gets the tokens it gets alone", async () => {
    const prompts = ["Once upon a time", "Hello there, friend", "It was the best of times", "A B C D E F G"];
    const alone = [];
    for (const p of prompts) alone.push((await collect(job(p, 12))).tokens);
    const together = await Promise.all(prompts.map((p) => collect(job(p, 12))));
    expect(together.map((r) => r.tokens)).toEqual(alone);
  });

  it("reuses a cached prompt: an identical prompt skips evaluation, a longer one evaluates only its new tokens", async () => {
    const prompt = "Prefix caching keeps the keys and values of earlier prompts around";
    const first = await collect(job(prompt, 4));
    // A new text shares at most the BOS token with what is cached.
    expect((first.events[0] as Extract<JobEvent, { kind: "started" }>).cachedTokens).toBeLessThanOrEqual(1);
    const again = await collect(job(prompt, 4));
    const started = again.events[0] as Extract<JobEvent, { kind: "started" }>;
    expect(started).toMatchObject({ prefixCache: "hit", cachedTokens: started.promptTokens });
    expect(again.tokens).toEqual(first.tokens);
    const longer = await collect(job(`${prompt} for the next request`, 4));
    const s = longer.events[0] as Extract<JobEvent, { kind: "started" }>;
    expect(s.prefixCache).toBe("partial");
    expect(s.cachedTokens).toBeGreaterThan(5);
    expect(s.cachedTokens).toBeLessThan(s.promptTokens);
  });

  it("a cancelled job ends within a step and frees its slot", async () => {
    const stream = engine.generate(job("Cancel me", 100));
    const events: JobEvent[] = [];
    for await (const e of stream) {
      events.push(e);
      if (events.filter((x) => x.kind === "token").length === 3) stream.cancel();
    }
    const done = events.at(-1)!;
    expect(done).toMatchObject({ kind: "done", finishReason: "cancelled" });
    // Tokens already in flight when the cancel arrived still come; the budget of 100 is never reached.
    expect((done as Extract<JobEvent, { kind: "done" }>).completionTokens).toBeLessThan(100);
    expect((await engine.stats()).active).toBe(0);
  });

  it("refuses a prompt longer than the context (400, with the numbers), an unknown model (404) and a full queue (429)", async () => {
    const long = await collect(job("word ".repeat(200), 4));
    expect(long.events).toHaveLength(1);
    expect(long.events[0]).toMatchObject({ kind: "error", status: 400, code: "context_length_exceeded" });
    expect((long.events[0] as { message: string }).message).toContain("context holds 128");
    const unknown = await collect(job("hi", 4, { model: "nope" }));
    expect(unknown.events[0]).toMatchObject({ kind: "error", status: 404 });
    // 4 slots busy, 2 waiting: the seventh is refused.
    const runs = Array.from({ length: 7 }, (_, i) => collect(job(`Queue test ${i}`, 24)));
    const results = await Promise.all(runs);
    const refused = results.filter((r) => r.events[0]?.kind === "error");
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused[0]!.events[0]).toMatchObject({ status: 429, code: "queue-full" });
    expect(results.filter((r) => r.events.at(-1)?.kind === "done")).toHaveLength(7 - refused.length);
  });

  it("embeds text as unit vectors, the same text giving the same vector", async () => {
    const r = await engine.embed({ id: "e1", model: "tiny", inputs: [{ text: "hello world" }, { text: "something else entirely" }, { text: "hello world" }] });
    expect(r.vectors).toHaveLength(3);
    for (const v of r.vectors) {
      expect(v).toHaveLength(engine.models[0]!.embeddingLength);
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    }
    expect(r.vectors[2]).toEqual(r.vectors[0]!);
    expect(r.vectors[1]).not.toEqual(r.vectors[0]!);
    const refusal = (inputs: { tokens: number[] }[]) => engine.embed({ id: `e-${jobs++}`, model: "tiny", inputs }).then(() => "embedded", (e) => e);
    expect(await refusal([{ tokens: [] }])).toMatchObject({ status: 400, code: "embed.empty-input" });
    expect(await refusal([{ tokens: [1, 99999] }])).toMatchObject({ status: 400, code: "model.bad-token" });
  });

  it("json-schema output parses and validates, greedy and sampled, on a random-weight model", async () => {
    const schema = { type: "object", properties: { name: { type: "string", maxLength: 12 }, age: { type: "integer" }, tags: { type: "array", items: { enum: ["a", "b"] }, maxItems: 3 } }, required: ["name", "age", "tags"] };
    const node = compileJsonSchema(schema);
    for (const temperature of [0, 1]) {
      for (const seed of [1, 2, 3]) {
        const r = await collect(job(`Describe person ${seed}`, 48, { constraint: { kind: "json-schema", schema }, sampling: { temperature, seed } }));
        expect(r.events.at(-1)).toMatchObject({ kind: "done", finishReason: "stop" });
        expect(matchesSchema(JSON.parse(r.text), node)).toBe(true);
      }
    }
    const bad = await collect(job("x", 8, { constraint: { kind: "json-schema", schema: { type: "string", pattern: "a+" } } }));
    expect(bad.events[0]).toMatchObject({ kind: "error", status: 400, code: "constraint.unsupported-schema" });
  });

  it("reports logprobs and alternatives when asked", async () => {
    const r = await collect(job("Logprobs please", 3, { logprobs: true, topLogprobs: 2 }));
    const tokens = r.events.filter((e) => e.kind === "token") as Extract<JobEvent, { kind: "token" }>[];
    expect(tokens).toHaveLength(3);
    for (const t of tokens) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.topLogprobs).toHaveLength(2);
      // Greedy: the chosen token is the most likely one.
      expect(t.topLogprobs![0]!.token).toBe(t.token);
    }
  });
});
