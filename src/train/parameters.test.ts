import { describe, expect, it } from "bun:test";
import { PsionicError } from "../util/errors.ts";
import { checkShape, parameterCount, parameterTable, trainingFlops } from "./parameters.ts";
import type { ModelShape } from "./train-model.ts";

const shape: ModelShape = { layers: 2, width: 64, heads: 4, kvHeads: 2, ffnWidth: 96, vocab: 100, context: 32, tiedEmbeddings: false, ropeBase: 10000, normEps: 1e-5 };

describe("parameterTable", () => {
  it("lists llama's GGUF tensors with ggml dims, back to back in one buffer, decay only on matrices", () => {
    const table = parameterTable(shape);
    expect(table.map((p) => p.name)).toEqual([
      "token_embd.weight",
      ...[0, 1].flatMap((l) => ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"].map((n) => `blk.${l}.${n}.weight`)),
      "output_norm.weight", "output.weight",
    ]);
    const dims = Object.fromEntries(table.map((p) => [p.name, p.dims]));
    expect(dims["token_embd.weight"]).toEqual([64, 100]);
    expect(dims["blk.1.attn_q.weight"]).toEqual([64, 64]);
    expect(dims["blk.1.attn_k.weight"]).toEqual([64, 32]); // 2 kv heads x head dim 16
    expect(dims["blk.1.attn_v.weight"]).toEqual([64, 32]);
    expect(dims["blk.1.attn_output.weight"]).toEqual([64, 64]);
    expect(dims["blk.0.ffn_gate.weight"]).toEqual([64, 96]);
    expect(dims["blk.0.ffn_down.weight"]).toEqual([96, 64]);
    expect(dims["output.weight"]).toEqual([64, 100]);
    let offset = 0;
    for (const p of table) {
      expect(p.offset).toBe(offset);
      expect(p.size).toBe(p.dims.reduce((a, b) => a * b, 1));
      offset += p.size;
      expect(p.decay).toBe(p.dims.length === 2 && p.name !== "token_embd.weight");
    }
    expect(parameterCount(table)).toBe(offset);
  });

  it("drops output.weight when embeddings are tied", () => {
    const table = parameterTable({ ...shape, tiedEmbeddings: true });
    expect(table.some((p) => p.name === "output.weight")).toBe(false);
    expect(parameterCount(table)).toBe(parameterCount(parameterTable(shape)) - 64 * 100);
  });

  it.each([
    ["width not a multiple of heads", { width: 66 }],
    ["heads not a multiple of kvHeads", { kvHeads: 3 }],
    ["odd head dim", { width: 36, heads: 4, kvHeads: 2 }],
    ["zero layers", { layers: 0 }],
    ["fractional vocab", { vocab: 10.5 }],
    ["negative ffn", { ffnWidth: -1 }],
    ["non-positive rope base", { ropeBase: 0 }],
  ])("refuses a shape with %s (train.bad-shape)", (_, change) => {
    const error = (() => { try { checkShape({ ...shape, ...change }); } catch (e) { return e; } })();
    expect(error instanceof PsionicError && error.code).toBe("train.bad-shape");
  });

  it("counts 6 FLOPs per matmul parameter per token plus causal attention", () => {
    // matmul parameters: 2 x (64 x (4 + 2 x 2) x 16 + 64 x 64 + 3 x 64 x 96) + 64 x 100
    const matmul = 2 * (64 * 128 + 64 * 64 + 3 * 64 * 96) + 6400;
    const attention = 12 * 16 * 4 * 2 * (3 * 32 * 33 / 2);
    expect(trainingFlops(shape, 3, 32)).toBe(6 * matmul * 96 + attention);
  });
});
