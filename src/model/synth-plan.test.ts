// The tensor tables and hyper-parameters of every preset, checked without
// writing a file: the real-shaped presets against the published models.
import { describe, expect, it } from "bun:test";
import { GGMLType, typeLayout } from "../gguf/types.ts";
import { TensorRandom } from "./init.ts";
import { findPreset, PRESETS } from "./presets.ts";
import { describeFallbacks, planSynth, synthTensorBytes, type SynthPlan } from "./synth.ts";

const plan = (arch: string, name: string, type: GGMLType, tokenizer?: "bpe" | "spm") =>
  planSynth({ preset: { arch, name }, type, seed: 1, tokenizer });

const tensor = (p: SynthPlan, name: string) => {
  const t = p.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  return { dims: t.dims, type: typeLayout(t.type)!.name };
};

const hparam = (p: SynthPlan, key: string) => p.hyperParameters.find((h) => h.key === key)?.value;

const sum = (p: SynthPlan, pick: (name: string) => boolean) =>
  p.tensors.filter((t) => pick(t.name)).reduce((n, t) => n + t.elements, 0);

describe("gpt-oss-20b plan", () => {
  const p = plan("gpt-oss", "gpt-oss-20b", GGMLType.MXFP4);

  it("has the parameter counts of openai/gpt-oss-20b's model card", () => {
    // Model card: total 20.91B, of which MLP 19.12B, attention 0.64B, embed+unembed 1.16B; 3.61B active.
    expect(p.parameterCount).toBe(20_914_757_184);
    expect(sum(p, (n) => n.includes(".ffn_")) / 1e9).toBeCloseTo(19.12, 2);
    expect(sum(p, (n) => n.includes(".attn_")) / 1e9).toBeCloseTo(0.64, 2);
    expect(sum(p, (n) => n.startsWith("token_embd") || n.startsWith("output.")) / 1e9).toBeCloseTo(1.16, 2);
    expect(p.activeParameterCount / 1e9).toBeCloseTo(3.61, 2);
  });

  it("lays out one layer as llama.cpp's gpt-oss loader expects", () => {
    expect(p.tensors.length).toBe(3 + 24 * 19);
    expect(tensor(p, "token_embd.weight")).toEqual({ dims: [2880, 201088], type: "q8_0" });
    expect(tensor(p, "output.weight")).toEqual({ dims: [2880, 201088], type: "q8_0" });
    expect(tensor(p, "output_norm.weight")).toEqual({ dims: [2880], type: "f32" });
    const b = "blk.23";
    expect(tensor(p, `${b}.attn_norm.weight`)).toEqual({ dims: [2880], type: "f32" });
    expect(tensor(p, `${b}.post_attention_norm.weight`)).toEqual({ dims: [2880], type: "f32" });
    expect(tensor(p, `${b}.attn_q.weight`)).toEqual({ dims: [2880, 4096], type: "q8_0" });
    expect(tensor(p, `${b}.attn_q.bias`)).toEqual({ dims: [4096], type: "f32" });
    expect(tensor(p, `${b}.attn_k.weight`)).toEqual({ dims: [2880, 512], type: "q8_0" });
    expect(tensor(p, `${b}.attn_v.bias`)).toEqual({ dims: [512], type: "f32" });
    expect(tensor(p, `${b}.attn_output.weight`)).toEqual({ dims: [4096, 2880], type: "q8_0" });
    expect(tensor(p, `${b}.attn_output.bias`)).toEqual({ dims: [2880], type: "f32" });
    expect(tensor(p, `${b}.attn_sinks.weight`)).toEqual({ dims: [64], type: "f32" });
    expect(tensor(p, `${b}.ffn_gate_inp.weight`)).toEqual({ dims: [2880, 32], type: "f32" });
    expect(tensor(p, `${b}.ffn_gate_inp.bias`)).toEqual({ dims: [32], type: "f32" });
    expect(tensor(p, `${b}.ffn_gate_exps.weight`)).toEqual({ dims: [2880, 2880, 32], type: "mxfp4" });
    expect(tensor(p, `${b}.ffn_up_exps.weight`)).toEqual({ dims: [2880, 2880, 32], type: "mxfp4" });
    expect(tensor(p, `${b}.ffn_down_exps.weight`)).toEqual({ dims: [2880, 2880, 32], type: "mxfp4" });
    expect(tensor(p, `${b}.ffn_gate_exps.bias`)).toEqual({ dims: [2880, 32], type: "f32" });
    expect(tensor(p, `${b}.ffn_down_exps.bias`)).toEqual({ dims: [2880, 32], type: "f32" });
    expect(describeFallbacks(p)).toEqual([]);
  });

  it("carries the hyper-parameters of gpt-oss-20b's config.json", () => {
    expect(hparam(p, "gpt-oss.block_count")).toBe(24);
    expect(hparam(p, "gpt-oss.embedding_length")).toBe(2880);
    expect(hparam(p, "gpt-oss.expert_feed_forward_length")).toBe(2880);
    expect(hparam(p, "gpt-oss.attention.head_count")).toBe(64);
    expect(hparam(p, "gpt-oss.attention.head_count_kv")).toBe(8);
    expect(hparam(p, "gpt-oss.attention.key_length")).toBe(64);
    expect(hparam(p, "gpt-oss.expert_count")).toBe(32);
    expect(hparam(p, "gpt-oss.expert_used_count")).toBe(4);
    expect(hparam(p, "gpt-oss.attention.sliding_window")).toBe(128);
    expect(hparam(p, "gpt-oss.attention.sliding_window_pattern")).toBe(2);
    expect(hparam(p, "gpt-oss.rope.freq_base")).toBe(150000);
    expect(hparam(p, "gpt-oss.rope.scaling.type")).toBe("yarn");
    expect(hparam(p, "gpt-oss.rope.scaling.factor")).toBe(32);
    expect(hparam(p, "gpt-oss.rope.scaling.original_context_length")).toBe(4096);
    expect(hparam(p, "gpt-oss.context_length")).toBe(131072);
    expect(hparam(p, "gpt-oss.attention.layer_norm_rms_epsilon")).toBe(1e-5);
  });

  it("falls back from Q4_K to Q5_0 on its 2880-wide rows, as llama.cpp's quantizer does", () => {
    const q = plan("gpt-oss", "gpt-oss-20b", GGMLType.Q4_K);
    expect(tensor(q, "blk.0.ffn_up_exps.weight").type).toBe("q5_0");
    expect(tensor(q, "blk.0.attn_q.weight").type).toBe("q5_0");
    expect(tensor(q, "blk.0.ffn_gate_inp.weight").type).toBe("f32");
    expect(tensor(q, "blk.0.attn_output.weight").type).toBe("q4_K"); // its rows are 64 heads x 64 = 4096
    // token_embd and output, then q, k, v and the three expert stacks of every layer.
    expect(describeFallbacks(q).length).toBe(2 + 24 * 6);
    expect(describeFallbacks(q)[0]).toContain("stored as q5_0");
  });
});

describe("llama plans", () => {
  it("llama-1b has the shapes and parameter count of Llama 3.2 1B", () => {
    const p = plan("llama", "llama-1b", GGMLType.Q4_K);
    expect(p.parameterCount).toBe(1_235_814_400);
    expect(p.tensors.some((t) => t.name === "output.weight")).toBe(false); // tied
    expect(tensor(p, "token_embd.weight")).toEqual({ dims: [2048, 128256], type: "q4_K" });
    expect(tensor(p, "blk.15.attn_k.weight")).toEqual({ dims: [2048, 512], type: "q4_K" });
    expect(tensor(p, "blk.15.ffn_down.weight")).toEqual({ dims: [8192, 2048], type: "q4_K" });
    expect(tensor(p, "blk.15.ffn_norm.weight")).toEqual({ dims: [2048], type: "f32" });
    expect(hparam(p, "llama.rope.freq_base")).toBe(500000);
    expect(hparam(p, "llama.rope.dimension_count")).toBe(64);
    expect(hparam(p, "llama.vocab_size")).toBe(128256);
  });

  it("tiny has a separate output matrix and tiny-tied has none", () => {
    const untied = plan("llama", "tiny", GGMLType.F16);
    const tied = plan("llama", "tiny-tied", GGMLType.F16);
    expect(tensor(untied, "output.weight")).toEqual({ dims: [256, 1024], type: "f16" });
    expect(untied.tensors.length).toBe(tied.tensors.length + 1);
    expect(untied.parameterCount - tied.parameterCount).toBe(256 * 1024);
  });

  it("uses the requested type for every matrix and F32 for every vector, with no fallback on 256-multiple rows", () => {
    for (const type of [GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K]) {
      const p = plan("llama", "llama-180m", type);
      for (const t of p.tensors) expect(t.type).toBe(t.dims.length === 1 ? GGMLType.F32 : type);
      expect(describeFallbacks(p)).toEqual([]);
    }
  });
});

describe("refusals", () => {
  it("names what is wrong", () => {
    expect(() => plan("llama", "tiny", GGMLType.MXFP4)).toThrow(/expert tensors/);
    expect(() => plan("llama", "huge", GGMLType.F16)).toThrow(/no llama preset "huge"; known: tiny/);
    expect(() => plan("mamba", "tiny", GGMLType.F16)).toThrow(/unknown architecture "mamba"/);
    expect(() => plan("gpt-oss", "tiny", GGMLType.F16, "spm")).toThrow(/llama only/);
    expect(() => plan("llama", "tiny", GGMLType.I32)).toThrow(/does not store model weights/);
    expect(() => planSynth({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.F16, seed: -1 })).toThrow(/seed/);
    expect(() => planSynth({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.F16, seed: 2 ** 32 })).toThrow(/seed/);
  });
});

describe("seeded weights", () => {
  const p = plan("gpt-oss", "tiny", GGMLType.F32);
  const t = p.tensors.find((x) => x.name === "blk.1.ffn_down_exps.weight")!;

  it("are the same for the same seed and differ for another", () => {
    const a = synthTensorBytes(t, 7);
    expect(synthTensorBytes(t, 7)).toEqual(a);
    const b = synthTensorBytes(t, 8);
    let same = 0;
    for (let i = 0; i < a.length; i += 4) if (a[i] === b[i] && a[i + 1] === b[i + 1] && a[i + 2] === b[i + 2] && a[i + 3] === b[i + 3]) same++;
    expect(same).toBeLessThan(a.length / 4 / 1000);
  });

  it("do not depend on how the generator chunks a tensor", () => {
    const whole = new Float32Array(t.elements);
    new TensorRandom(7, t.name).fill(whole, t.init);
    expect(new Float32Array(synthTensorBytes(t, 7).buffer)).toEqual(whole);
    const halves = new Float32Array(t.elements);
    const r = new TensorRandom(7, t.name);
    r.fill(halves.subarray(0, 1000), t.init);
    r.fill(halves.subarray(1000), t.init);
    expect(halves).toEqual(whole);
  });

  it("have the mean and standard deviation their init asks for", () => {
    for (const x of p.tensors.filter((x) => ["blk.0.attn_norm.weight", "blk.0.ffn_up_exps.weight", "token_embd.weight"].includes(x.name))) {
      const v = new Float32Array(synthTensorBytes(x, 3).buffer);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
      expect(Math.abs(mean - x.init.mean)).toBeLessThan(0.05 * x.init.std + 1e-3);
      expect(std / x.init.std).toBeCloseTo(1, 1);
    }
  });

  it("keep every preset's scales bounded: residual writers shrink with depth", () => {
    for (const preset of PRESETS) {
      const q = planSynth({ preset, type: GGMLType.F16, seed: 0 });
      for (const x of q.tensors) {
        if (x.role === "projection" || x.role === "expert" || x.role === "output") {
          // std <= 1/sqrt(fan_in): each projection maps unit-RMS input to at most unit-RMS output.
          expect(x.init.std * Math.sqrt(x.dims[0]!)).toBeLessThanOrEqual(1 + 1e-9);
        }
      }
      expect(findPreset(preset.arch, preset.name)).toBe(preset);
    }
  });
});
