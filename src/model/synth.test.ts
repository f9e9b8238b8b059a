// Synthetic models are real models: llama.cpp (through node-llama-cpp) loads
// every small preset in several weight types and generates from it greedily,
// with finite, non-degenerate next-token probabilities at every step.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { supportedTypeNames } from "../gguf/quant/codecs.ts";
import { GGMLType, typeByName, typeLayout } from "../gguf/types.ts";
import { openGGUF } from "../gguf/reader.ts";
import { findPreset, type GptOssPreset } from "./presets.ts";
import { planSynth, synthesize, type SynthOptions } from "./synth.ts";

let dir: string;
// node-llama-cpp's types are heavy and vary by build; the oracle is used through a narrow surface.
let llama: any;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "psionic-synth-"));
  const { getLlama } = await import("node-llama-cpp");
  llama = await getLlama({ gpu: false, build: "never", logLevel: "error" } as any);
}, 60_000); // synthesizing and loading models is slow on a loaded 2-core machine

afterAll(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

interface Generation {
  promptTokens: number;
  tokens: number[];
  /** Per step: the greedy token's probability and the sum of all reported probabilities. */
  steps: { top: number; total: number; allFinite: boolean }[];
}

/** Loads `path` in llama.cpp and greedily generates `count` tokens after `prompt`. */
async function generateWithLlamaCpp(path: string, prompt: string, count: number): Promise<Generation> {
  const model = await llama.loadModel({ modelPath: path });
  try {
    const context = await model.createContext({ contextSize: 256, batchSize: 256, threads: 2 });
    try {
      const sequence = context.getSequence();
      const input = model.tokenize(prompt);
      const tokens: number[] = [];
      const steps: Generation["steps"] = [];
      // Random weights may well pick an end-of-generation token; keep going past it.
      const options = { temperature: 0, yieldEogToken: true };
      for await (const out of sequence.evaluateWithMetadata(input, { probabilities: true }, options)) {
        const probabilities = [...(out.probabilities as Map<number, number>).values()];
        steps.push({
          top: (out.probabilities as Map<number, number>).get(out.token) ?? NaN,
          total: probabilities.reduce((a, b) => a + b, 0),
          allFinite: probabilities.length > 0 && probabilities.every((p) => Number.isFinite(p)),
        });
        tokens.push(out.token);
        if (tokens.length >= count) break;
      }
      return { promptTokens: input.length, tokens, steps };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

const PROMPT = "The jury said it did find that the court had been handled with fairness, and the city";

function expectHealthyGeneration(g: Generation, count: number) {
  expect(g.tokens.length).toBe(count);
  for (const step of g.steps) {
    expect(step.allFinite).toBe(true);
    expect(step.total).toBeGreaterThan(0.99);
    expect(step.total).toBeLessThan(1.01);
    // Not saturated: bounded activations give soft distributions, never a certain token.
    expect(step.top).toBeGreaterThan(0);
    expect(step.top).toBeLessThan(0.99);
  }
}

function synth(name: string, options: SynthOptions): string {
  const path = join(dir, name);
  synthesize(options, path);
  return path;
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("llama presets in llama.cpp", () => {
  for (const type of [GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K]) {
    it(`tiny ${typeLayout(type)!.name}: loads and generates 16 tokens with finite probabilities`, async () => {
      const path = synth(`llama-tiny-${type}.gguf`, { preset: { arch: "llama", name: "tiny" }, type, seed: 1 });
      expectHealthyGeneration(await generateWithLlamaCpp(path, PROMPT, 16), 16);
    }, 30_000);
  }

  it("llama-180m q4_0 (104 MB; the other benchmark presets exceed 150 MB): loads and generates 8 tokens", async () => {
    const path = synth("llama-180m-q4_0.gguf", { preset: { arch: "llama", name: "llama-180m" }, type: GGMLType.Q4_0, seed: 1 });
    expectHealthyGeneration(await generateWithLlamaCpp(path, PROMPT, 8), 8);
    rmSync(path);
  }, 60_000);

  it("tiny-tied with a SentencePiece vocabulary: loads without output.weight and generates", async () => {
    const path = synth("llama-tiny-tied-spm.gguf", { preset: { arch: "llama", name: "tiny-tied" }, type: GGMLType.Q8_0, seed: 2, tokenizer: "spm" });
    expectHealthyGeneration(await generateWithLlamaCpp(path, PROMPT, 12), 12);
  }, 30_000);
});

describe("gpt-oss presets in llama.cpp", () => {
  for (const type of [GGMLType.MXFP4, GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K]) {
    it(`tiny ${typeLayout(type)!.name}: generates past its 16-token sliding window with finite probabilities`, async () => {
      const path = synth(`gpt-oss-tiny-${type}.gguf`, { preset: { arch: "gpt-oss", name: "tiny" }, type, seed: 1 });
      // The prompt alone is longer than the window, so layer 0 masks its start while layer 1 sees all of it.
      const g = await generateWithLlamaCpp(path, PROMPT, 16);
      expect(g.promptTokens).toBeGreaterThan(16);
      expectHealthyGeneration(g, 16);
    }, 30_000);
  }
});

describe("every other type psionic can encode", () => {
  const covered = new Set([GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.MXFP4]);
  for (const name of supportedTypeNames()) {
    const type = typeByName(name)!.type;
    if (covered.has(type)) continue;
    it(`${name}: both tiny presets load in llama.cpp and generate 4 tokens`, async () => {
      for (const arch of ["llama", "gpt-oss"]) {
        const path = synth(`${arch}-tiny-${name}.gguf`, { preset: { arch, name: "tiny" }, type, seed: 1 });
        expectHealthyGeneration(await generateWithLlamaCpp(path, PROMPT, 4), 4);
      }
    }, 30_000);
  }
});

describe("gpt-oss sliding window", () => {
  /** The next-token distribution llama.cpp gives after `prompt`. */
  async function firstStep(path: string, prompt: string): Promise<{ promptTokens: number; probabilities: Map<number, number> }> {
    const model = await llama.loadModel({ modelPath: path });
    try {
      const context = await model.createContext({ contextSize: 256, threads: 2 });
      try {
        const input = model.tokenize(prompt);
        for await (const out of context.getSequence().evaluateWithMetadata(input, { probabilities: true }, { temperature: 0, yieldEogToken: true })) {
          return { promptTokens: input.length, probabilities: out.probabilities as Map<number, number> };
        }
        throw new Error("llama.cpp produced no token");
      } finally {
        await context.dispose();
      }
    } finally {
      await model.dispose();
    }
  }

  /** Total variation distance between two next-token distributions: 0 same, 1 disjoint. */
  const distance = (a: Map<number, number>, b: Map<number, number>) => {
    let sum = 0;
    for (const token of new Set([...a.keys(), ...b.keys()])) sum += Math.abs((a.get(token) ?? 0) - (b.get(token) ?? 0));
    return sum / 2;
  };

  it("is read by llama.cpp: same weights, a 16-token window changes the output only once the prompt exceeds it", async () => {
    const windowed = findPreset("gpt-oss", "tiny") as GptOssPreset;
    const unwindowed: GptOssPreset = { ...windowed, slidingWindow: 4096 };
    // Weights are keyed by seed and tensor name, so both files hold the same numbers.
    const a = synth("window-16.gguf", { preset: windowed, type: GGMLType.F16, seed: 4 });
    const b = synth("window-4096.gguf", { preset: unwindowed, type: GGMLType.F16, seed: 4 });
    const short = "The jury said it did";
    const [shortA, shortB] = [await firstStep(a, short), await firstStep(b, short)];
    expect(shortA.promptTokens).toBeLessThan(16);
    expect(distance(shortA.probabilities, shortB.probabilities)).toBeLessThan(1e-4);
    const [longA, longB] = [await firstStep(a, PROMPT), await firstStep(b, PROMPT)];
    expect(longA.promptTokens).toBeGreaterThan(16);
    // Measured: 0 for the short prompt, 0.05 for the long one (layer 0 sees 16 of its 26 tokens).
    expect(distance(longA.probabilities, longB.probabilities)).toBeGreaterThan(0.01);
  }, 30_000);
});

describe("determinism", () => {
  it("writes byte-identical files for the same seed and different weights in every tensor for another", () => {
    const options = (seed: number): SynthOptions => ({ preset: { arch: "gpt-oss", name: "tiny" }, type: GGMLType.MXFP4, seed });
    const a = synth("seed-a.gguf", options(5));
    const b = synth("seed-b.gguf", options(5));
    const c = synth("seed-c.gguf", options(6));
    expect(sha256(b)).toBe(sha256(a));
    const fileA = openGGUF(a);
    const fileC = openGGUF(c);
    expect(fileC.tensors.map((t) => [t.name, t.dims, t.type])).toEqual(fileA.tensors.map((t) => [t.name, t.dims, t.type]));
    for (const t of fileA.tensors) {
      const other = fileC.tensorsByName.get(t.name)!;
      expect(Buffer.compare(fileA.tensorData(t), fileC.tensorData(other))).not.toBe(0);
    }
  }, 30_000);

  it("writes the planned tensor table and hyper-parameters, readable by psionic's own reader", () => {
    const options: SynthOptions = { preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q4_K, seed: 9 };
    const file = openGGUF(synth("read-back.gguf", options));
    const plan = planSynth(options);
    expect(file.tensors.map((t) => [t.name, t.dims, t.type])).toEqual(plan.tensors.map((t) => [t.name, t.dims, t.type]));
    expect(file.meta.get("general.architecture")?.value).toBe("llama");
    expect(file.meta.get("general.file_type")?.value).toBe(15); // LLAMA_FTYPE_MOSTLY_Q4_K_M, as llama.cpp names a mostly-q4_K file
    for (const h of plan.hyperParameters) expect(file.meta.get(h.key)?.value).toBe(h.type === "f32" ? Math.fround(h.value) : h.value);
    const tokens = file.meta.get("tokenizer.ggml.tokens")?.value as { items: string[] };
    expect(tokens.items.length).toBe(1024);
  }, 30_000);
});
