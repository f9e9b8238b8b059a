import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../gguf/reader.ts";
import { GGMLType } from "../gguf/types.ts";
import { FLOAT_WEIGHTS_TOLERANCE, QUANTIZED_WEIGHTS_TOLERANCE, greedyDisagreement, runParityOnFile } from "../model/parity-harness.ts";
import { readHyperParameters } from "../model/hparams.ts";
import { createBackend } from "../runtime/backends.ts";
import { generate, loadModel } from "../runtime/generator.ts";
import { refusalOf } from "../util/refusal-of.ts";
import { exportRun } from "./export-gguf.ts";
import { openRun } from "./run-session.ts";
import { preparedRunRoot, removeTestRuns } from "./test-run-fixture.ts";
import { train } from "./trainer.ts";

let runRoot = "";
const outDir = mkdtempSync(join(tmpdir(), "psionic-export-"));

beforeAll(async () => {
  runRoot = preparedRunRoot();
  const result = await train(openRun(runRoot), { progress: null });
  expect(result.finished).toBe(true);
}, 60_000);

afterAll(() => {
  removeTestRuns();
  rmSync(outDir, { recursive: true, force: true });
});

const PROMPT = "The jury said that the city";

async function greedyTokens(path: string, n: number): Promise<number[]> {
  const loaded = loadModel(path, { backend: await createBackend("cpu", { threads: 2 }) });
  for await (const event of generate(loaded, { prompt: PROMPT, maxTokens: n, sampling: { temperature: 0 }, ignoreEos: true })) {
    if (event.kind === "done") return event.tokens;
  }
  throw new Error("generation ended without a done event");
}

describe("export to GGUF", () => {
  for (const [name, type, tolerance] of [["F16", GGMLType.F16, FLOAT_WEIGHTS_TOLERANCE], ["Q8_0", GGMLType.Q8_0, QUANTIZED_WEIGHTS_TOLERANCE]] as const) {
    it(`writes a ${name} llama GGUF that llama.cpp and psionic run alike: same greedy tokens, matching first-token logits`, async () => {
      const path = join(outDir, `tiny-${name}.gguf`);
      const exported = exportRun(runRoot, type, path);
      expect(exported.step).toBe(40);
      const parity = runParityOnFile(path, { prompt: PROMPT, generate: 12, contextSize: 64 });
      expect(parity.firstLogitsMaxAbsDiff).toBeLessThan(tolerance);
      expect(greedyDisagreement(parity, tolerance)).toBeNull();
      // psionic's own loader and generator (CPU engine) pick the same tokens as llama.cpp.
      expect(await greedyTokens(path, 12)).toEqual(parity.theirs);
    }, 60_000);
  }

  it("carries the lane's shape, trained tokenizer, BOS/EOS and a chat template; norms stay F32", () => {
    const path = join(outDir, "tiny-q4k.gguf");
    exportRun(runRoot, GGMLType.Q4_K, path);
    const file = openGGUF(path);
    const hp = readHyperParameters(file);
    expect(hp).toMatchObject({ arch: "llama", layers: 2, embeddingLength: 64, heads: 4, kvHeads: 2, feedForwardLength: 192, contextLength: 64 });
    const run = openRun(runRoot);
    expect(file.meta.get("tokenizer.ggml.bos_token_id")!.value).toBe(run.data.manifest.bosId);
    expect(file.meta.get("tokenizer.ggml.eos_token_id")!.value).toBe(run.data.manifest.eosId);
    expect(String(file.meta.get("tokenizer.chat_template")!.value)).toContain("### Assistant");
    const types = new Map(file.tensors.map((t) => [t.name, t.type]));
    expect(types.get("blk.0.attn_norm.weight")).toBe(GGMLType.F32);
    // Rows of 64 do not fill Q4_K's 256-value blocks: llama.cpp's fallback (Q5_0) applies.
    expect(types.get("blk.0.attn_q.weight")).toBe(GGMLType.Q5_0);
    expect(types.get("blk.0.ffn_down.weight")).toBe(GGMLType.Q5_0);
  });

  it("refuses a run root with no verified checkpoint", () => {
    const fresh = preparedRunRoot();
    expect(refusalOf(() => exportRun(fresh, GGMLType.F16, join(outDir, "none.gguf"))).code).toBe("train.no-checkpoint");
  });
});
