// Parity on files psionic did not shape itself: the tiny llama rewritten with
// the RoPE variants real llama files carry (Llama 3's rope_freqs.weight
// frequency factors, linear scaling, another frequency base), each run by
// llama.cpp and by the CPU backend on the same tokens.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kv, type GGUFEntry } from "../gguf/metadata.ts";
import { contentsOf, openGGUF } from "../gguf/reader.ts";
import { GGMLType } from "../gguf/types.ts";
import { writeGGUF } from "../gguf/writer.ts";
import { CpuBackend } from "../runtime/cpu/cpu-backend.ts";
import { QUANTIZED_WEIGHTS_TOLERANCE, describeNearTies, greedyDisagreement, runParityOnFile } from "./parity-harness.ts";
import { synthesize } from "./synth.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-rope-variants-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const base = join(dir, "tiny.gguf");
synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 11 }, base);

/** The base file with metadata keys set (replacing any of the same key) and an optional rope_freqs.weight. */
function variant(name: string, keys: GGUFEntry[], freqFactors?: (i: number) => number): string {
  const file = openGGUF(base);
  const contents = contentsOf(file);
  const replaced = new Set(keys.map((e) => e.key));
  contents.metadata = [...contents.metadata.filter((e) => !replaced.has(e.key)), ...keys];
  if (freqFactors) {
    const dims = Number(file.meta.get("llama.rope.dimension_count")?.value ?? 0) || Number(file.meta.get("llama.embedding_length")!.value) / Number(file.meta.get("llama.attention.head_count")!.value);
    const values = Float32Array.from({ length: dims / 2 }, (_, i) => freqFactors(i));
    contents.tensors.push({ name: "rope_freqs.weight", dims: [dims / 2], type: GGMLType.F32, data: new Uint8Array(values.buffer) });
  }
  const path = join(dir, `${name}.gguf`);
  writeGGUF(path, contents);
  return path;
}

const cases: { name: string; keys: GGUFEntry[]; freqFactors?: (i: number) => number }[] = [
  { name: "rope_freqs.weight (Llama 3 frequency factors)", keys: [], freqFactors: (i) => (i < 4 ? 1 : 1 + (i - 3) * 1.5) },
  { name: "linear scaling x4 and freq_base 500000", keys: [kv.str("llama.rope.scaling.type", "linear"), kv.f32("llama.rope.scaling.factor", 4), kv.f32("llama.rope.freq_base", 500000)] },
  { name: "frequency factors with linear scaling x2", keys: [kv.str("llama.rope.scaling.type", "linear"), kv.f32("llama.rope.scaling.factor", 2)], freqFactors: (i) => 1 + i * 0.25 },
];

describe("RoPE variants against llama.cpp", () => {
  for (const c of cases) {
    it(`tiny llama Q8_0, ${c.name}: first-token logits within ${QUANTIZED_WEIGHTS_TOLERANCE}; 48 greedy picks identical except near-ties`, () => {
      const path = variant(c.name.replace(/\W+/g, "-"), c.keys, c.freqFactors);
      const r = runParityOnFile(path, { prompt: "The quick brown fox jumps over the lazy dog, then runs far away", generate: 48, backend: new CpuBackend({ threads: 2 }) });
      console.log(`rope variant | ${c.name} | first-token max |diff| ${r.firstLogitsMaxAbsDiff.toExponential(2)} | all steps ${r.allStepsMaxAbsDiff.toExponential(2)} | ${describeNearTies(r)}`);
      expect(r.firstLogitsMaxAbsDiff).toBeLessThan(QUANTIZED_WEIGHTS_TOLERANCE);
      expect(greedyDisagreement(r, QUANTIZED_WEIGHTS_TOLERANCE)).toBeNull();
    }, 60_000);
  }

  it("changes the model's output: the variants are not ignored", () => {
    const plain = runParityOnFile(base, { prompt: "The quick brown fox", generate: 1, backend: new CpuBackend({ threads: 2 }) });
    const scaled = runParityOnFile(variant("check", cases[1]!.keys), { prompt: "The quick brown fox", generate: 1, backend: new CpuBackend({ threads: 2 }) });
    expect(Math.abs(plain.firstLogitsMaxAbs - scaled.firstLogitsMaxAbs)).toBeGreaterThan(1e-4);
  }, 60_000);
});
