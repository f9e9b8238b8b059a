import { afterEach, describe, expect, it } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { refusalOf } from "../util/refusal-of.ts";
import { seededRandom } from "../util/seeded-random.ts";
import { findResumePoint, listCheckpointSteps, loadCheckpoint, writeCheckpoint, type CheckpointContext, type TrainState } from "./checkpoint.ts";
import { fromHfTensors, toHfTensors } from "./hf-names.ts";
import { parameterCount, parameterTable } from "./parameters.ts";
import { parseSafetensors } from "./safetensors.ts";
import type { ModelShape } from "./train-model.ts";

const shape: ModelShape = { layers: 1, width: 8, heads: 2, kvHeads: 1, ffnWidth: 12, vocab: 16, context: 8, tiedEmbeddings: false, ropeBase: 10000, normEps: 1e-5 };
const table = parameterTable(shape);
const total = parameterCount(table);
const ctx: CheckpointContext = { table, shape, laneDigest: "a".repeat(64), dataDigest: "b".repeat(64), seed: 5, bosId: 14, eosId: 15 };

function randomState(step: number, seed: number): TrainState {
  const r = seededRandom(seed);
  const fill = () => Float32Array.from({ length: total }, () => r() - 0.5);
  return { step, params: fill(), m: fill(), v: fill() };
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "psionic-ckpt-"));
  dirs.push(d);
  return d;
}
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const cursor = { nextSample: 40, epoch: 0 };

describe("checkpoints", () => {
  it("round-trips weights and AdamW moments bit for bit", () => {
    const dir = tempDir();
    const state = randomState(10, 1);
    const path = writeCheckpoint(dir, state, cursor, 2.5, ctx, 3);
    const { state: back, manifest } = loadCheckpoint(path, ctx, total);
    expect(back.params).toEqual(state.params);
    expect(back.m).toEqual(state.m);
    expect(back.v).toEqual(state.v);
    expect(manifest.step).toBe(10);
    expect(manifest.dataCursor).toEqual(cursor);
    expect(JSON.parse(readFileSync(join(dir, "latest.json"), "utf8")).dir).toBe("step-10");
  });

  it("names weights as Hugging Face llama does, with q/k rows in HF's rotary order", () => {
    const state = randomState(1, 2);
    const file = parseSafetensors(readFileSync(join(writeCheckpoint(tempDir(), state, cursor, 1, ctx, 3), "model.safetensors")), "m");
    expect([...file.tensors.keys()].sort()).toEqual([
      "lm_head.weight", "model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.mlp.down_proj.weight",
      "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.0.post_attention_layernorm.weight",
      "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.o_proj.weight", "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.v_proj.weight", "model.norm.weight",
    ]);
    expect(file.tensors.get("model.layers.0.mlp.gate_proj.weight")!.shape).toEqual([12, 8]);
    // head dim 4: GGUF rows (0,1,2,3) of a head are HF rows (0,2,1,3).
    const q = table.find((p) => p.name === "blk.0.attn_q.weight")!;
    const hfQ = file.tensors.get("model.layers.0.self_attn.q_proj.weight")!.data;
    const ggufRow = (r: number) => state.params.subarray(q.offset + r * 8, q.offset + r * 8 + 8);
    expect(hfQ.subarray(2 * 8, 3 * 8)).toEqual(ggufRow(1));
    expect(hfQ.subarray(1 * 8, 2 * 8)).toEqual(ggufRow(2));
    const back = new Float32Array(total);
    fromHfTensors({ tensors: new Map(toHfTensors(state.params, table, shape).map((t) => [t.name, t])), metadata: {} }, table, shape, back, "x");
    expect(back).toEqual(new Float32Array(state.params));
  });

  it("refuses a tampered weight file by digest and falls back to the previous checkpoint", () => {
    const dir = tempDir();
    writeCheckpoint(dir, randomState(5, 3), cursor, 3, ctx, 3);
    writeCheckpoint(dir, randomState(10, 4), cursor, 2, ctx, 3);
    const path = join(dir, "step-10", "model.safetensors");
    const bytes = readFileSync(path);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(path, bytes);
    expect(refusalOf(() => loadCheckpoint(join(dir, "step-10"), ctx, total)).message).toContain("model.safetensors: SHA-256");
    const point = findResumePoint(dir, ctx, total);
    expect(point.loaded!.state.step).toBe(5);
    expect(point.refused.map((r) => r.dir)).toEqual([join(dir, "step-10")]);
    expect(point.refused[0]!.reason).toContain("does not match the manifest");
  });

  it("refuses an edited manifest (its own digest) and a checkpoint from another lane", () => {
    const dir = tempDir();
    const path = writeCheckpoint(dir, randomState(4, 5), cursor, 3, ctx, 3);
    const manifestPath = join(path, "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, loss: 0.1 }));
    expect(refusalOf(() => loadCheckpoint(path, ctx, total)).message).toContain("the manifest was edited");
    writeFileSync(manifestPath, JSON.stringify(manifest));
    expect(refusalOf(() => loadCheckpoint(path, { ...ctx, laneDigest: "c".repeat(64) }, total)).message).toContain("made for lane digest");
  });

  it("ignores a half-written checkpoint (no manifest) and resumes from the last complete one", () => {
    const dir = tempDir();
    writeCheckpoint(dir, randomState(3, 6), cursor, 3, ctx, 3);
    mkdirSync(join(dir, "step-6"));
    writeFileSync(join(dir, "step-6", "model.safetensors"), "partial");
    const point = findResumePoint(dir, ctx, total);
    expect(point.loaded!.state.step).toBe(3);
    expect(point.refused[0]!.reason).toContain("manifest.json: cannot read");
  });

  it("starts over when no checkpoint verifies", () => {
    expect(findResumePoint(join(tempDir(), "none"), ctx, total)).toEqual({ refused: [] });
  });

  it("keeps only the newest `keep` checkpoints", () => {
    const dir = tempDir();
    for (const step of [1, 2, 3, 4]) writeCheckpoint(dir, randomState(step, step), cursor, 1, ctx, 2);
    expect(listCheckpointSteps(dir)).toEqual([4, 3]);
    expect(existsSync(join(dir, "step-1"))).toBe(false);
  });
});
