// Hyper-parameters, weight binding and the KV cache limit: what llama.cpp's
// defaults give, and the refusals a bad or unsupported file meets.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kv, type GGUFEntry } from "../gguf/metadata.ts";
import { contentsOf, openGGUF } from "../gguf/reader.ts";
import { GGMLType } from "../gguf/types.ts";
import { writeGGUF } from "../gguf/writer.ts";
import { ReferenceBackend } from "../runtime/reference/reference-backend.ts";
import { PsionicError } from "../util/errors.ts";
import { readHyperParameters, yarnAttnFactor } from "./hparams.ts";
import { Model } from "./model.ts";
import { synthesize } from "./synth.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-model-load-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function synth(arch: "llama" | "gpt-oss", name: string): string {
  const path = join(dir, `${arch}-${name}.gguf`);
  synthesize({ preset: { arch, name }, type: GGMLType.F32, seed: 3 }, path);
  return path;
}
const llamaPath = synth("llama", "tiny");
const gptOssPath = synth("gpt-oss", "tiny");

/** A copy of `path` with its metadata and tensor list edited. */
function variant(path: string, edit: { metadata?: (m: GGUFEntry[]) => GGUFEntry[]; dropTensor?: string; reshape?: string }): string {
  const c = contentsOf(openGGUF(path));
  let tensors = c.tensors.filter((t) => t.name !== edit.dropTensor);
  if (edit.reshape) tensors = tensors.map((t) => (t.name === edit.reshape ? { ...t, dims: [...t.dims].reverse() } : t));
  const out = join(dir, `variant-${Math.random().toString(36).slice(2)}.gguf`);
  writeGGUF(out, { metadata: edit.metadata ? edit.metadata(c.metadata) : c.metadata, tensors });
  return out;
}

function refusal(fn: () => unknown): PsionicError {
  try { fn(); } catch (error) { if (error instanceof PsionicError) return error; throw error; }
  throw new Error("expected a PsionicError");
}

const load = (path: string, contextLimit = 64) => Model.load(openGGUF(path), new ReferenceBackend(), { contextLimit });

describe("hyper-parameters as llama.cpp reads them", () => {
  it("gpt-oss: window on even layers (pattern 2), YaRN from metadata, NeoX rope, attn factor cancelling to 1", () => {
    const hp = readHyperParameters(openGGUF(gptOssPath));
    expect(hp.swaLayers).toEqual([true, false]);
    expect(hp.slidingWindow).toBe(16);
    expect(hp.rope).toMatchObject({ mode: "neox", scaling: "yarn", freqScale: 0.25, extFactor: 1, originalContext: 1024, betaFast: 32, betaSlow: 1 });
    expect(hp.rope.attnFactor).toBeCloseTo(1, 6);
    expect(hp.expertsUsed).toBe(2);
  });

  it("gpt-oss: a sliding_window_pattern of 3 windows layers with il % 3 < 2", () => {
    const path = variant(gptOssPath, { metadata: (m) => m.map((e) => (e.key === "gpt-oss.attention.sliding_window_pattern" ? kv.u32(e.key, 3) : e)) });
    expect(readHyperParameters(openGGUF(path)).swaLayers).toEqual([true, true]);
  });

  it("llama: normal rope, no scaling, default freq base when the key is absent", () => {
    const path = variant(llamaPath, { metadata: (m) => m.filter((e) => e.key !== "llama.rope.freq_base") });
    const hp = readHyperParameters(openGGUF(path));
    expect(hp.rope).toMatchObject({ mode: "normal", scaling: "linear", freqScale: 1, extFactor: 0, attnFactor: 1, freqBase: 10000 });
    expect(hp.swaLayers).toEqual([false, false]);
  });

  it("YaRN's magnitude: llama.cpp's mscale times its own cancellation", () => {
    expect(yarnAttnFactor(1 / 32, 1)).toBeCloseTo(1, 6);
    expect(yarnAttnFactor(1, 1.5)).toBeCloseTo(1.5, 6);
  });
});

describe("refusals name the key or tensor", () => {
  it("a missing required key", () => {
    const path = variant(llamaPath, { metadata: (m) => m.filter((e) => e.key !== "llama.attention.layer_norm_rms_epsilon") });
    const e = refusal(() => load(path));
    expect(e.code).toBe("gguf.missing-key");
    expect(e.message).toContain("llama.attention.layer_norm_rms_epsilon");
  });

  it("an unsupported architecture", () => {
    const path = variant(llamaPath, { metadata: (m) => m.map((e) => (e.key === "general.architecture" ? kv.str(e.key, "mamba") : e)) });
    const e = refusal(() => load(path));
    expect(e.code).toBe("model.unsupported-arch");
    expect(e.message).toContain("mamba");
  });

  it("a missing required tensor", () => {
    const e = refusal(() => load(variant(llamaPath, { dropTensor: "blk.1.ffn_up.weight" })));
    expect(e.code).toBe("model.missing-tensor");
    expect(e.message).toContain("blk.1.ffn_up.weight");
  });

  it("a tensor of the wrong shape", () => {
    const e = refusal(() => load(variant(llamaPath, { reshape: "blk.0.attn_k.weight" })));
    expect(e.code).toBe("model.bad-shape");
    expect(e.message).toContain("blk.0.attn_k.weight");
  });

  it("a weight type the reference cannot decode", () => {
    // q4_0 blocks relabelled iq4_nl (same 18-byte blocks of 32): a valid file, an unsupported type.
    const q4 = join(dir, "llama-q4_0.gguf");
    synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q4_0, seed: 3 }, q4);
    const c = contentsOf(openGGUF(q4));
    const out = join(dir, "llama-iq4_nl.gguf");
    writeGGUF(out, { metadata: c.metadata, tensors: c.tensors.map((t) => (t.name === "blk.1.ffn_gate.weight" ? { ...t, type: GGMLType.IQ4_NL } : t)) });
    const e = refusal(() => load(out));
    expect(e.code).toBe("quant.unsupported-type");
    expect(e.message).toContain("blk.1.ffn_gate.weight");
    expect(e.message).toContain("iq4_nl");
  });

  it("gpt-oss without its sinks", () => {
    const e = refusal(() => load(variant(gptOssPath, { dropTensor: "blk.0.attn_sinks.weight" })));
    expect(e.code).toBe("model.missing-tensor");
    expect(e.message).toContain("blk.0.attn_sinks.weight");
  });

  it("a token id outside the vocabulary, leaving the cache untouched", () => {
    const model = load(llamaPath);
    const e = refusal(() => model.forward(Int32Array.of(1, 5000)));
    expect(e.code).toBe("model.bad-token");
    expect(e.message).toContain("5000");
    expect(model.cache.length).toBe(0);
  });
});

describe("KV cache and the context limit", () => {
  it("refuses a prompt that does not fit, before touching the cache", () => {
    const model = load(llamaPath, 8);
    const e = refusal(() => model.forward(new Int32Array(9).fill(3)));
    expect(e.code).toBe("kv.context-full");
    expect(e.message).toContain("8");
    expect(model.cache.length).toBe(0);
  });

  it("fills exactly to the limit across prefill and decode, then refuses the next token", () => {
    const model = load(llamaPath, 8);
    model.forward(new Int32Array(6).fill(3));
    model.forward(Int32Array.of(4));
    model.forward(Int32Array.of(5));
    expect(model.cache.length).toBe(8);
    expect(refusal(() => model.forward(Int32Array.of(6))).code).toBe("kv.context-full");
  });

  it("an F32 cache gives logits within F16 rounding of the default F16 cache", () => {
    const tokens = Int32Array.of(1, 17, 300, 42, 999, 5);
    const f16 = load(llamaPath);
    const f32 = Model.load(openGGUF(llamaPath), new ReferenceBackend(), { contextLimit: 64, kvPrecision: "f32" });
    expect(f32.cache.precision).toBe("f32");
    const a = f16.backend.download(f16.forward(tokens)), b = f32.backend.download(f32.forward(tokens));
    let max = 0;
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
    expect(max).toBeGreaterThan(0);
    expect(max).toBeLessThan(1e-2);
  });

  it("a prompt in chunks gives the logits of the prompt in one batch", () => {
    const tokens = Int32Array.of(1, 17, 300, 42, 999, 5, 64, 128, 7);
    const whole = load(llamaPath);
    const all = whole.backend.download(whole.forward(tokens));
    const chunked = load(llamaPath);
    chunked.forward(tokens.subarray(0, 4));
    chunked.forward(tokens.subarray(4, 8));
    const last = chunked.backend.download(chunked.forward(tokens.subarray(8)));
    let max = 0;
    for (let i = 0; i < all.length; i++) max = Math.max(max, Math.abs(all[i]! - last[i]!));
    expect(max).toBeLessThan(1e-4);
  });
});
