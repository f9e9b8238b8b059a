// The default model (fixtures/default-model.gguf: the brown-default lane,
// trained and exported by psionic itself) writes recognisable English: most
// words of its greedy continuations are words of the Brown corpus.
import { describe, expect, it } from "bun:test";
import { brownFiles, brownFileSentences } from "../tokenizer/corpus.ts";
import { createBackend } from "../runtime/backends.ts";
import { generate, loadModel } from "../runtime/generator.ts";
import { DEFAULT_MODEL_FILE } from "../util/default-model.ts";
import { join } from "node:path";
import { CpuBackend } from "../runtime/cpu/cpu-backend.ts";
import { QUANTIZED_WEIGHTS_TOLERANCE, greedyDisagreement, runParityOnFile } from "./parity-harness.ts";

const path = join(import.meta.dir, "../..", DEFAULT_MODEL_FILE);

describe("the default model", () => {
  it("continues prompts with words of the Brown corpus (at least 85% of them), greedy and sampled", async () => {
    const vocabulary = new Set<string>();
    for (const file of brownFiles()) for (const s of brownFileSentences(file)) for (const w of s.toLowerCase().match(/[a-z]+/g) ?? []) vocabulary.add(w);
    const loaded = loadModel(path, { backend: await createBackend("cpu", { threads: 2 }), contextLimit: 256 });
    expect(loaded.model.hparams.arch).toBe("llama");
    let known = 0, total = 0;
    const samples: string[] = [];
    for (const [prompt, temperature] of [["The man said that", 0], ["In the morning the", 0], ["It was a", 0.7], ["The government of the United States", 0.7]] as const) {
      let text = "";
      for await (const e of generate(loaded, { prompt, maxTokens: 48, sampling: { temperature, seed: 1 } })) if (e.kind === "text") text += e.text;
      samples.push(`${prompt}|${text}`);
      for (const w of text.toLowerCase().match(/[a-z]+/g) ?? []) {
        total++;
        if (vocabulary.has(w)) known++;
      }
    }
    console.log(`default model: ${known}/${total} words are Brown-corpus words\n${samples.join("\n")}`);
    expect(total).toBeGreaterThan(60);
    expect(known / total).toBeGreaterThanOrEqual(0.85);
  }, 60_000);

  it("runs in llama.cpp as in psionic: first-token logits within tolerance and 64 greedy tokens identical", () => {
    const r = runParityOnFile(path, { prompt: "The man said that", generate: 64, backend: new CpuBackend({ threads: 2 }) });
    console.log(`default model vs llama.cpp: first-token max |diff| ${r.firstLogitsMaxAbsDiff.toExponential(2)}, all steps ${r.allStepsMaxAbsDiff.toExponential(2)}, ${r.ours.filter((t, i) => t === r.theirs[i]).length}/64 identical`);
    expect(r.firstLogitsMaxAbsDiff).toBeLessThan(QUANTIZED_WEIGHTS_TOLERANCE);
    expect(greedyDisagreement(r, QUANTIZED_WEIGHTS_TOLERANCE)).toBeNull();
  }, 60_000);
});
