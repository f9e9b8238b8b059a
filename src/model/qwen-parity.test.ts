// qwen2 (Q/K/V biases, NeoX rope) and qwen3 (per-head Q/K RMS norm, NeoX rope)
// against llama.cpp. `psionic gguf synth` has no qwen presets, so each file is
// the tiny llama synth relabelled: keys moved to the qwen2./qwen3. prefix and
// the architecture's extra tensors added with seeded values.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GGUFEntry } from "../gguf/metadata.ts";
import { kv } from "../gguf/metadata.ts";
import { contentsOf, openGGUF } from "../gguf/reader.ts";
import { GGMLType } from "../gguf/types.ts";
import { writeGGUF } from "../gguf/writer.ts";
import { TensorRandom } from "./init.ts";
import { FLOAT_WEIGHTS_TOLERANCE, QUANTIZED_WEIGHTS_TOLERANCE, describeNearTies, greedyDisagreement, runParityOnFile } from "./parity-harness.ts";
import { synthesize } from "./synth.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-qwen-parity-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function f32Tensor(name: string, length: number, mean: number, std: number) {
  const values = new Float32Array(length);
  new TensorRandom(11, name).fill(values, { mean, std });
  return { name, dims: [length], type: GGMLType.F32, data: new Uint8Array(values.buffer) };
}

/** The tiny llama of `type`, relabelled as `arch` with that architecture's extra tensors. */
function qwenFile(arch: "qwen2" | "qwen3", type: GGMLType): string {
  const llamaPath = join(dir, `llama-${type}.gguf`);
  synthesize({ preset: { arch: "llama", name: "tiny" }, type, seed: 7 }, llamaPath);
  const source = contentsOf(openGGUF(llamaPath));
  const metadata: GGUFEntry[] = source.metadata.map((e) =>
    e.key === "general.architecture" ? kv.str(e.key, arch) : e.key.startsWith("llama.") ? { ...e, key: `${arch}.${e.key.slice(6)}` } : e);
  const tensors = [...source.tensors];
  const layers = source.tensors.filter((t) => t.name.endsWith(".attn_norm.weight")).length;
  const widthOf = (name: string) => source.tensors.find((t) => t.name === name)!.dims[1]!;
  for (let il = 0; il < layers; il++) {
    const blk = `blk.${il}`;
    if (arch === "qwen2") {
      for (const p of ["attn_q", "attn_k", "attn_v"]) tensors.push(f32Tensor(`${blk}.${p}.bias`, widthOf(`${blk}.${p}.weight`), 0, 0.1));
    } else {
      tensors.push(f32Tensor(`${blk}.attn_q_norm.weight`, 64, 1, 0.1), f32Tensor(`${blk}.attn_k_norm.weight`, 64, 1, 0.1));
    }
  }
  const path = join(dir, `${arch}-${type}.gguf`);
  writeGGUF(path, { metadata, tensors });
  return path;
}

const cases = [
  { arch: "qwen2" as const, type: GGMLType.F32, name: "F32", tolerance: FLOAT_WEIGHTS_TOLERANCE },
  { arch: "qwen2" as const, type: GGMLType.Q8_0, name: "Q8_0", tolerance: QUANTIZED_WEIGHTS_TOLERANCE },
  { arch: "qwen3" as const, type: GGMLType.F32, name: "F32", tolerance: FLOAT_WEIGHTS_TOLERANCE },
  { arch: "qwen3" as const, type: GGMLType.Q4_K, name: "Q4_K", tolerance: QUANTIZED_WEIGHTS_TOLERANCE },
];

describe("qwen2 and qwen3 reference paths against llama.cpp", () => {
  for (const c of cases) {
    it(`${c.arch} ${c.name}: first-token logits within ${c.tolerance}; 32 greedy picks identical except near-ties under it`, () => {
      const r = runParityOnFile(qwenFile(c.arch, c.type), { prompt: "The quick brown fox jumps over the lazy dog", generate: 32 });
      console.log(`${c.arch} ${c.name}: ${r.promptTokens} prompt tokens, first-token max |diff| ${r.firstLogitsMaxAbsDiff.toExponential(2)} (max |logit| ${r.firstLogitsMaxAbs.toFixed(2)}), over all steps ${r.allStepsMaxAbsDiff.toExponential(2)}; ${describeNearTies(r)}`);
      expect(r.firstLogitsMaxAbsDiff).toBeLessThan(c.tolerance);
      expect(greedyDisagreement(r, c.tolerance)).toBeNull();
    }, 60_000);
  }
});
