// Test helper: runs one synthesized model through psionic's reference backend
// and through llama.cpp (llama-logits-oracle.ts) on the same token ids (llama.cpp's
// tokenization), and reports how far the first-token logits differ and whether
// greedy generation agrees token for token.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../gguf/reader.ts";
import type { GGMLType } from "../gguf/types.ts";
import type { Backend } from "../runtime/backend.ts";
import { ReferenceBackend } from "../runtime/reference/reference-backend.ts";
import { LlamaLogitsOracle } from "./llama-logits-oracle.ts";
import { Model } from "./model.ts";
import { synthesize } from "./synth.ts";

export interface ParityCase {
  arch: "llama" | "gpt-oss";
  preset: string;
  type: GGMLType;
  prompt: string;
  /** Greedy tokens to generate after the prompt. */
  generate: number;
  seed?: number;
  contextSize?: number;
  /** The backend under test (default: a new ReferenceBackend). */
  backend?: Backend;
}

export interface ParityResult {
  promptTokens: number;
  /** max |psionic - llama.cpp| over the vocabulary, for the prompt's last token. */
  firstLogitsMaxAbsDiff: number;
  /** The largest |logit| llama.cpp produced there, for scale. */
  firstLogitsMaxAbs: number;
  /** max abs logit difference over every step. */
  allStepsMaxAbsDiff: number;
  /** Greedy picks per step; both sides are fed llama.cpp's pick, so one parting does not hide later steps. */
  ours: number[];
  theirs: number[];
  /** Steps where the picks differ, with llama.cpp's logit margin between its pick and ours. */
  disagreements: { step: number; theirMargin: number }[];
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function runParity(c: ParityCase): ParityResult {
  const dir = mkdtempSync(join(tmpdir(), "psionic-parity-"));
  try {
    const path = join(dir, `${c.arch}-${c.preset}.gguf`);
    synthesize({ preset: { arch: c.arch, name: c.preset }, type: c.type, seed: c.seed ?? 7 }, path);
    return runParityOnFile(path, c);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The comparison on any GGUF file llama.cpp and psionic both load. Keep prompt
 * plus generated tokens under 256: llama.cpp attends over cells padded to 256,
 * and from 512 cells its one-token attention takes a split-KV path whose
 * arithmetic the reference does not follow.
 */
export function runParityOnFile(path: string, c: { prompt: string; generate: number; contextSize?: number; backend?: Backend }): ParityResult {
  const contextSize = c.contextSize ?? 512;
  let oracle: LlamaLogitsOracle | undefined;
  try {
    oracle = LlamaLogitsOracle.open(path, { contextSize });
    const model = Model.load(openGGUF(path), c.backend ?? new ReferenceBackend(), { contextLimit: contextSize });
    const prompt = oracle.tokenize(c.prompt);

    let theirLogits = oracle.decode(prompt);
    // In batches of llama.cpp's n_ubatch (512), which it splits a longer prompt into.
    let last;
    for (let start = 0; start < prompt.length; start += 512) last = model.forward(prompt.subarray(start, start + 512));
    let ourLogits = model.backend.download(last!);
    const firstLogitsMaxAbsDiff = maxAbsDiff(ourLogits, theirLogits);
    const firstLogitsMaxAbs = theirLogits.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    let allStepsMaxAbsDiff = firstLogitsMaxAbsDiff;
    const ours: number[] = [], theirs: number[] = [];
    const disagreements: ParityResult["disagreements"] = [];
    for (let step = 0; step < c.generate; step++) {
      const mine = argmax(ourLogits), next = argmax(theirLogits);
      ours.push(mine);
      theirs.push(next);
      if (mine !== next) disagreements.push({ step, theirMargin: theirLogits[next]! - theirLogits[mine]! });
      if (step + 1 === c.generate) break;
      theirLogits = oracle.decode(Int32Array.of(next));
      ourLogits = model.backend.download(model.forward(Int32Array.of(next)));
      allStepsMaxAbsDiff = Math.max(allStepsMaxAbsDiff, maxAbsDiff(ourLogits, theirLogits));
    }
    return { promptTokens: prompt.length, firstLogitsMaxAbsDiff, firstLogitsMaxAbs, allStepsMaxAbsDiff, ours, theirs, disagreements };
  } finally {
    oracle?.close();
  }
}

// Tolerances on first-token logits (|logit| up to ~4 on these models). Float
// weights land within 1e-3 of llama.cpp. With quantized weights the reference
// rounds activations exactly as ggml does, so most runs agree to 1e-6; but a
// value within an ulp of a rounding boundary (ulps differ with summation
// order) quantizes one step apart, which moves logits by ~0.01-0.03.
export const FLOAT_WEIGHTS_TOLERANCE = 1e-3;
export const QUANTIZED_WEIGHTS_TOLERANCE = 0.05;

/**
 * Greedy picks must agree at every step, except where llama.cpp's own margin
 * between its pick and ours is below the logit tolerance: a near-tie that no
 * implementation short of ggml's exact summation order can call the same way.
 * Returns a description of any other disagreement.
 */
export function greedyDisagreement(r: ParityResult, tolerance: number): string | null {
  const real = r.disagreements.filter((d) => d.theirMargin >= tolerance);
  if (real.length === 0) return null;
  return real.map((d) => `step ${d.step}: ours ${r.ours[d.step]}, llama.cpp ${r.theirs[d.step]} with margin ${d.theirMargin}`).join("; ");
}

/** "none", or the near-tie steps, for the test log. */
export function describeNearTies(r: ParityResult): string {
  if (r.disagreements.length === 0) return "all greedy picks identical";
  return `picks differ at ${r.disagreements.length} step(s), all near-ties: ${r.disagreements.map((d) => `step ${d.step} (llama.cpp margin ${d.theirMargin.toExponential(2)})`).join(", ")}`;
}
