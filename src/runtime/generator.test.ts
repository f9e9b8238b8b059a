// The generation engine on a tiny synthesized llama: greedy output equals
// running model.forward by hand, whatever the prefill chunking; seeded sampling
// repeats; stop strings cut the stream; the context limit refuses or stops
// with its numbers. Runs on the reference backend, and on "cpu" when it loads.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGMLType } from "../gguf/types.ts";
import { greedyDisagreement, QUANTIZED_WEIGHTS_TOLERANCE, runParityOnFile } from "../model/parity-harness.ts";
import { synthesize } from "../model/synth.ts";
import { PsionicError } from "../util/errors.ts";
import type { Backend } from "./backend.ts";
import { createBackend } from "./backends.ts";
import { refTopKRows } from "./sampler-reference.ts";
import { generate, loadModel, type FinishReason, type GenerationRequest, type GenerationTimings, type LoadedModel } from "./generator.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-generator-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const modelPath = join(dir, "tiny-q8_0.gguf");
synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 11 }, modelPath);

const PROMPT = "The jury said it did find that the court had been handled with fairness";

interface Outcome { text: string; pieces: string[]; tokens: number[]; reason: FinishReason; timings: GenerationTimings }

async function run(loaded: LoadedModel, request: Partial<GenerationRequest>): Promise<Outcome> {
  const pieces: string[] = [];
  for await (const event of generate(loaded, { prompt: PROMPT, maxTokens: 24, ignoreEos: true, sampling: { temperature: 0 }, ...request })) {
    if (event.kind === "text") pieces.push(event.text);
    else return { text: pieces.join(""), pieces, tokens: event.tokens, reason: event.reason, timings: event.timings };
  }
  throw new Error("generate ended without a done event");
}

/** Greedy decoding written out with model.forward one token at a time (EOG masked, as --ignore-eos does). */
function greedyByHand(loaded: LoadedModel, count: number): number[] {
  const { model, tokenizer } = loaded;
  const argmax = (logits: Float32Array) => {
    for (const id of tokenizer.eogIds) if (id < logits.length) logits[id] = -Infinity;
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  };
  model.cache.truncate(0);
  let logits!: Float32Array;
  for (const id of tokenizer.encode(PROMPT)) logits = model.backend.download(model.forward(Int32Array.of(id)));
  const out: number[] = [];
  for (;;) {
    out.push(argmax(logits));
    if (out.length === count) return out;
    logits = model.backend.download(model.forward(Int32Array.of(out.at(-1)!)));
  }
}

async function tryBackend(name: string): Promise<Backend | null> {
  try {
    return await createBackend(name, { threads: 2 });
  } catch (error) {
    if (error instanceof PsionicError && error.code === "backend.unavailable") return null;
    throw error;
  }
}

const backends: [string, Backend | null][] = [["reference", await tryBackend("reference")], ["cpu", await tryBackend("cpu")]];

for (const [name, backend] of backends) {
  describe.skipIf(backend === null)(`generate on the ${name} backend`, () => {
    const loaded = () => loadModel(modelPath, { backend: backend!, contextLimit: 64 });

    it("greedy output is deterministic and equals model.forward run by hand, for prefill batches of 1, 7 and 512", async () => {
      const model = loaded();
      const byHand = greedyByHand(model, 24);
      for (const batchSize of [1, 7, 512]) {
        const out = await run(model, { batchSize });
        expect({ batchSize, tokens: out.tokens }).toEqual({ batchSize, tokens: byHand });
        expect(out.reason).toBe("max-tokens");
      }
      expect((await run(model, {})).tokens).toEqual(byHand);
    }, 60_000);

    it("streams the decoded text of its tokens, piece by piece, and reports prompt and decode counts", async () => {
      const model = loaded();
      const out = await run(model, {});
      const decoder = model.tokenizer.createDecoder();
      expect(out.text).toBe(out.tokens.map((t) => decoder.push(t)).join("") + decoder.flush());
      expect(out.pieces.length).toBeGreaterThan(1);
      expect(out.timings.promptTokens).toBe(model.tokenizer.encode(PROMPT).length);
      // The last sampled token is never run through the model.
      expect(out.timings.decodeTokens).toBe(out.tokens.length - 1);
      expect(out.timings.prefillMs).toBeGreaterThan(0);
      expect(out.timings.decodeMs).toBeGreaterThan(0);
    }, 60_000);

    it("seeded sampling repeats exactly, and another seed gives another sequence", async () => {
      const model = loaded();
      const sampling = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 42 };
      const a = await run(model, { sampling });
      const b = await run(model, { sampling });
      const c = await run(model, { sampling: { ...sampling, seed: 43 } });
      expect(b.tokens).toEqual(a.tokens);
      expect(c.tokens).not.toEqual(a.tokens);
    }, 60_000);

    it("stops at a stop string spanning a piece boundary, emitting only the text before it", async () => {
      const model = loaded();
      const free = await run(model, {});
      // Two characters either side of the boundary between the 4th and 5th streamed piece.
      const boundary = free.pieces.slice(0, 4).join("").length;
      const stop = free.text.slice(boundary - 2, boundary + 2);
      expect(stop.length).toBe(4);
      const cut = await run(model, { stopStrings: [stop] });
      expect(cut.reason).toBe("stop-string");
      expect(cut.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
      expect(cut.tokens).toEqual(free.tokens.slice(0, cut.tokens.length));
    }, 60_000);

    it("refuses a prompt longer than the context, naming both numbers", async () => {
      const model = loaded();
      const long = Array.from({ length: 65 }, (_, i) => 5 + (i % 50));
      const error = await run(model, { prompt: long }).catch((e) => e);
      expect(error).toBeInstanceOf(PsionicError);
      expect(error.code).toBe("generate.prompt-too-long");
      expect(error.message).toContain("the prompt is 65 tokens but the context holds 64 (-c 64)");
    });

    it("stops at the context end with reason context-full, after limit - prompt + 1 tokens", async () => {
      const model = loaded();
      const prompt = Array.from({ length: 60 }, (_, i) => 5 + i);
      const out = await run(model, { prompt, maxTokens: -1 });
      expect(out.reason).toBe("context-full");
      expect(out.tokens.length).toBe(5);
      expect(model.model.cache.length).toBe(64);
    });

    it("generates nothing with maxTokens 0 and refuses a bad batch size", async () => {
      const model = loaded();
      const out = await run(model, { maxTokens: 0 });
      expect(out).toMatchObject({ tokens: [], reason: "max-tokens", text: "" });
      const error = await run(model, { batchSize: 0 }).catch((e) => e);
      expect(error.code).toBe("generate.bad-batch-size");
    });
  });
}

describe("generate on a backend that answers top-k where the logits are (Backend.topKRows)", () => {
  it("picks each step from the row's best what it picks from the logits, penalties included, and reads back no row whole", async () => {
    const sampling = { temperature: 0.9, topK: 40, seed: 3, repeatPenalty: 1.5, presencePenalty: 0.5 };
    const plain = await run(loadModel(modelPath, { backend: (await tryBackend("cpu"))!, contextLimit: 64 }), { sampling, ignoreEos: false });
    const backend = (await tryBackend("cpu"))!;
    const download = backend.download.bind(backend);
    const asked: number[] = [];
    backend.download = () => {
      throw new Error("a row came back whole");
    };
    backend.topKRows = (x, k) => (asked.push(k), refTopKRows(download(x), x.rows, k));
    const fromTop = await run(loadModel(modelPath, { backend, contextLimit: 64 }), { sampling, ignoreEos: false });
    expect(fromTop.tokens).toEqual(plain.tokens);
    expect(asked).toHaveLength(fromTop.tokens.length);
    // The penalty window fills with the prompt and each pick: k grows past 40, up to a power of two.
    expect(asked.every((k) => k === 64 || k === 128)).toBe(true);
  });
});

describe("against llama.cpp", () => {
  it("greedy generation (reference backend, our tokenizer) picks llama.cpp's tokens, except near-ties", async () => {
    const theirs = runParityOnFile(modelPath, { prompt: PROMPT, generate: 24 });
    expect(greedyDisagreement(theirs, QUANTIZED_WEIGHTS_TOLERANCE)).toBeNull();
    // Where llama.cpp and the reference agree at every step, generate must give exactly those tokens.
    if (theirs.disagreements.length === 0) {
      const out = await run(loadModel(modelPath, { backend: backends[0]![1]!, contextLimit: 64 }), {});
      expect(out.tokens).toEqual(theirs.theirs);
    }
  }, 60_000);
});

describe("createBackend", () => {
  it("refuses an unknown backend and an impossible thread count by name", async () => {
    expect(await createBackend("metal").catch((e) => e.message)).toContain('unknown backend "metal"; choose one of cpu, reference');
    expect(await createBackend("reference", { threads: 0 }).catch((e) => e.code)).toBe("backend.bad-threads");
    expect(await createBackend("reference", { threads: 65 }).catch((e) => e.code)).toBe("backend.bad-threads");
  });

  it("gives a cpu backend, or (before it lands) a refusal that points at --backend reference", async () => {
    const outcome = await createBackend("cpu", { threads: 1 }).then((b) => b.name, (e) => e.message);
    if (outcome !== "cpu") expect(outcome).toContain("use --backend reference");
  });
});

describe("loading", () => {
  it("prefixes the file path to a refusal from the reader", () => {
    const missing = join(dir, "absent.gguf");
    expect(() => loadModel(missing, { backend: backends[0]![1]! })).toThrow(missing);
  });
});
