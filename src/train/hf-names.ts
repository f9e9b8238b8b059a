// Checkpoint tensors under Hugging Face llama names and layout, so tools that
// read HF llama checkpoints (transformers' LlamaForCausalLM) can load them.
// Training keeps GGUF names and layout (train-model.ts); the two differ in the
// names and in one thing more: GGUF rotates RoPE pairs (2i, 2i+1) while HF
// rotates halves (i, i + head/2), so llama.cpp's converter permutes the rows of
// q_proj and k_proj within each head. We apply the inverse when writing and the
// permutation itself when reading; every other tensor is the same bytes (a
// GGUF [in, out] weight is HF's row-major [out, in]).
import { refuse } from "../util/errors.ts";
import type { NamedTensor, SafetensorsFile } from "./safetensors.ts";
import type { ModelShape, ParameterInfo } from "./train-model.ts";

const LAYER_NAMES: Record<string, string> = {
  attn_norm: "input_layernorm",
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  ffn_norm: "post_attention_layernorm",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};

const GLOBAL_NAMES: Record<string, string> = {
  "token_embd.weight": "model.embed_tokens.weight",
  "output_norm.weight": "model.norm.weight",
  "output.weight": "lm_head.weight",
};

/** The HF llama name of a GGUF tensor name. */
export function hfName(ggufName: string): string {
  const global = GLOBAL_NAMES[ggufName];
  if (global) return global;
  const m = /^blk\.(\d+)\.([a-z_]+)\.weight$/.exec(ggufName);
  const part = m ? LAYER_NAMES[m[2]!] : undefined;
  if (!m || !part) return refuse("train.bad-tensor-name", `no Hugging Face name for tensor ${ggufName}`);
  return `model.layers.${m[1]}.${part}.weight`;
}

/** Heads whose rows the RoPE layouts order differently (q: all heads, k: KV heads), or 0. */
function ropeHeads(ggufName: string, shape: ModelShape): number {
  if (/\.attn_q\.weight$/.test(ggufName)) return shape.heads;
  if (/\.attn_k\.weight$/.test(ggufName)) return shape.kvHeads;
  return 0;
}

/**
 * Reorders the rows of a q/k weight between layouts. Within a head of `headDim`
 * rows, GGUF row 2j+t is HF row t*headDim/2+j (t in {0,1}).
 */
function permuteRows(src: Float32Array, rowLength: number, heads: number, toHf: boolean): Float32Array {
  const rows = src.length / rowLength;
  const headDim = rows / heads, half = headDim / 2;
  const out = new Float32Array(src.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let t = 0; t < 2; t++) {
        const gguf = h * headDim + 2 * j + t, hf = h * headDim + t * half + j;
        const [from, to] = toHf ? [gguf, hf] : [hf, gguf];
        out.set(src.subarray(from * rowLength, (from + 1) * rowLength), to * rowLength);
      }
    }
  }
  return out;
}

/** The HF row-major shape of a GGUF-ordered tensor (dims reversed). */
const hfShape = (dims: readonly number[]) => [...dims].reverse();

/** `buffer` (laid out as `table`) as HF-named tensors. */
export function toHfTensors(buffer: Float32Array, table: readonly ParameterInfo[], shape: ModelShape): NamedTensor[] {
  return table.map((p) => {
    const view = buffer.subarray(p.offset, p.offset + p.size);
    const heads = ropeHeads(p.name, shape);
    const data = heads > 0 ? permuteRows(view, p.dims[0]!, heads, true) : view;
    return { name: hfName(p.name), shape: hfShape(p.dims), data };
  });
}

/** Fills `buffer` (laid out as `table`) from HF-named tensors; refuses a missing, extra or misshapen tensor. */
export function fromHfTensors(file: SafetensorsFile, table: readonly ParameterInfo[], shape: ModelShape, buffer: Float32Array, where: string): void {
  const expected = new Set<string>();
  for (const p of table) {
    const name = hfName(p.name);
    expected.add(name);
    const t = file.tensors.get(name);
    if (!t) refuse("train.bad-checkpoint", `${where}: tensor ${name} is missing`);
    const want = hfShape(p.dims);
    if (t!.shape.length !== want.length || t!.shape.some((d, i) => d !== want[i])) {
      refuse("train.bad-checkpoint", `${where}: tensor ${name} has shape [${t!.shape}], the lane's model needs [${want}]`);
    }
    const heads = ropeHeads(p.name, shape);
    buffer.set(heads > 0 ? permuteRows(t!.data, p.dims[0]!, heads, false) : t!.data, p.offset);
  }
  for (const name of file.tensors.keys()) {
    if (!expected.has(name)) refuse("train.bad-checkpoint", `${where}: unexpected tensor ${name}`);
  }
}

/** A transformers-style config.json for the checkpoint directory. */
export function hfConfig(shape: ModelShape, bosId: number, eosId: number): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: shape.width,
    intermediate_size: shape.ffnWidth,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads,
    num_key_value_heads: shape.kvHeads,
    vocab_size: shape.vocab,
    max_position_embeddings: shape.context,
    rms_norm_eps: shape.normEps,
    rope_theta: shape.ropeBase,
    tie_word_embeddings: shape.tiedEmbeddings,
    hidden_act: "silu",
    bos_token_id: bosId,
    eos_token_id: eosId,
    torch_dtype: "float32",
  };
}
