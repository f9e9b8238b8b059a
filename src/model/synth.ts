// `psionic gguf synth`: a complete GGUF of a real architecture with seeded
// random weights and a real (synthetic-corpus) tokenizer, that llama.cpp loads
// and generates from. planSynth decides every tensor's name, shape and type
// without drawing a number; synthesize then writes the file, drawing and
// encoding each tensor only when the writer reaches it.
import { statSync } from "node:fs";
import { kv, type GGUFEntry } from "../gguf/metadata.ts";
import { encodeTensor, isCodecSupported } from "../gguf/quant/codecs.ts";
import { GGMLType, typeLayout } from "../gguf/types.ts";
import { writeGGUF } from "../gguf/writer.ts";
import { PsionicError } from "../util/errors.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { TensorRandom } from "./init.ts";
import { findPreset, type ModelPreset } from "./presets.ts";
import { gptOssPlan } from "./synth-gpt-oss.ts";
import { llamaPlan } from "./synth-llama.ts";
import { type ArchitecturePlan, type HyperParameter, type PlannedTensor, elementCount } from "./synth-plan.ts";
import { checkRequestedType, chooseTensorType, fileTypeOf } from "./tensor-types.ts";
import { synthVocabMetadata, type TokenizerKind } from "./synth-vocab.ts";

export interface SynthOptions {
  /** A preset row, or its architecture and name. */
  preset: ModelPreset | { arch: string; name: string };
  type: GGMLType;
  /** Any integer in [0, 2^32). */
  seed: number;
  /** llama only; gpt-oss always uses its byte-level BPE with the harmony special tokens. */
  tokenizer?: TokenizerKind;
  /**
   * Zero the output-head rows of every token that is not complete text on its
   * own (byte fragments of a character, control and end-of-generation tokens),
   * so greedy output is readable text that never ends early: what serving
   * benchmarks against peers that choke on broken UTF-8 need. With a tied
   * head this also zeroes those tokens' embeddings.
   */
  textOutput?: boolean;
}

export interface SynthTensor extends PlannedTensor {
  type: GGMLType;
  /** The type the rules wanted when the row length forced another (llama.cpp's fallback). */
  fellBackFrom?: GGMLType;
  elements: number;
  bytes: number;
}

export interface SynthPlan {
  preset: ModelPreset;
  requestedType: GGMLType;
  seed: number;
  tokenizer: TokenizerKind;
  hyperParameters: HyperParameter[];
  tensors: SynthTensor[];
  parameterCount: number;
  /**
   * Parameters one token's forward pass multiplies with: everything but the
   * embedding table (a lookup, unless tied to the output) and the experts the
   * router does not pick. gpt-oss-20b's model card gives 3.61B.
   */
  activeParameterCount: number;
  /** Bytes of tensor data (the file adds metadata and alignment padding). */
  tensorBytes: number;
  textOutput: boolean;
}

function resolvePreset(preset: SynthOptions["preset"]): ModelPreset {
  return "description" in preset ? preset : findPreset(preset.arch, preset.name);
}

function architecturePlan(preset: ModelPreset): ArchitecturePlan {
  return preset.arch === "llama" ? llamaPlan(preset) : gptOssPlan(preset);
}

/** Everything about the file except the numbers: cheap even for gpt-oss-20b. */
export function planSynth(options: SynthOptions): SynthPlan {
  const preset = resolvePreset(options.preset);
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed >= 2 ** 32) {
    throw new PsionicError("synth.bad-seed", `seed must be an integer in [0, 2^32), got ${options.seed}`);
  }
  const tokenizer = options.tokenizer ?? "bpe";
  if (preset.arch === "gpt-oss" && tokenizer !== "bpe") {
    throw new PsionicError("synth.bad-tokenizer", `gpt-oss uses a byte-level BPE tokenizer (o200k-style, with harmony tokens); --tokenizer ${tokenizer} applies to llama only`);
  }
  checkRequestedType(options.type);
  const { hyperParameters, tensors: planned } = architecturePlan(preset);
  if (options.type === GGMLType.MXFP4 && !planned.some((t) => t.role === "expert")) {
    throw new PsionicError("synth.bad-type", `--type mxfp4 applies to expert tensors (llama.cpp's MXFP4_MOE mix), and ${preset.arch} has none; use Q8_0, Q4_0, Q4_K, ...`);
  }
  const tensors = planned.map((t): SynthTensor => {
    const choice = chooseTensorType(t, options.type);
    const layout = typeLayout(choice.type)!;
    if (choice.type !== GGMLType.F32 && !isCodecSupported(choice.type)) {
      const why = choice.fellBackFrom !== undefined ? ` (the fallback for ${typeLayout(choice.fellBackFrom)!.name}, whose blocks do not fit its rows of ${t.dims[0]})` : "";
      throw new PsionicError("synth.unsupported-type", `${t.name} needs type ${layout.name}${why}, which psionic cannot encode yet`);
    }
    const elements = elementCount(t.dims);
    return { ...t, type: choice.type, fellBackFrom: choice.fellBackFrom, elements, bytes: (elements / layout.blockSize) * layout.typeSize };
  });
  const parameterCount = tensors.reduce((n, t) => n + t.elements, 0);
  const hasOutput = tensors.some((t) => t.role === "output");
  const unusedExpertShare = preset.arch === "gpt-oss" ? 1 - preset.expertsUsed / preset.experts : 0;
  const inactive = tensors.reduce((n, t) => n + (t.role === "embedding" && hasOutput ? t.elements : t.role === "expert" ? t.elements * unusedExpertShare : 0), 0);
  return {
    preset, requestedType: options.type, seed: options.seed, tokenizer, hyperParameters, tensors,
    parameterCount,
    activeParameterCount: Math.round(parameterCount - inactive),
    tensorBytes: tensors.reduce((n, t) => n + t.bytes, 0),
    textOutput: options.textOutput === true,
  };
}

/** One line per tensor whose row length forced another type than the rules asked for. */
export function describeFallbacks(plan: SynthPlan): string[] {
  return plan.tensors
    .filter((t) => t.fellBackFrom !== undefined)
    .map((t) => `${t.name}: rows of ${t.dims[0]} do not fill ${typeLayout(t.fellBackFrom!)!.name} blocks of ${typeLayout(t.fellBackFrom!)!.blockSize}, stored as ${typeLayout(t.type)!.name}`);
}

// Values are drawn and encoded in chunks of whole rows, so a 2.3 GB float32
// embedding never exists at once; only the encoded tensor does.
const CHUNK_ELEMENTS = 1 << 22;

/** A tensor's stored bytes: its seeded values, encoded in its type. */
export function synthTensorBytes(tensor: SynthTensor, seed: number, zeroRows?: ReadonlySet<number>): Uint8Array {
  const random = new TensorRandom(seed, tensor.name);
  const out = new Uint8Array(tensor.bytes);
  const rowLength = tensor.dims[0]!;
  const rows = tensor.elements / rowLength;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / rowLength));
  const rowBytes = tensor.bytes / rows;
  const values = new Float32Array(Math.min(rows, rowsPerChunk) * rowLength);
  for (let row = 0; row < rows; row += rowsPerChunk) {
    const count = Math.min(rowsPerChunk, rows - row);
    const chunk = values.subarray(0, count * rowLength);
    random.fill(chunk, tensor.init);
    if (zeroRows) for (let r = 0; r < count; r++) if (zeroRows.has(row + r)) chunk.fill(0, r * rowLength, (r + 1) * rowLength);
    const encoded = tensor.type === GGMLType.F32 ? new Uint8Array(chunk.buffer, 0, chunk.byteLength) : encodeTensor(tensor.type, chunk);
    out.set(encoded, row * rowBytes);
  }
  return out;
}

function hyperParameterEntry(h: HyperParameter): GGUFEntry {
  switch (h.type) {
    case "u32": return kv.u32(h.key, h.value);
    case "f32": return kv.f32(h.key, h.value);
    case "str": return kv.str(h.key, h.value);
    case "bool": return kv.bool(h.key, h.value);
  }
}

/** The general.* keys, the architecture's hyper-parameters and the tokenizer, in that order. */
export function synthMetadata(plan: SynthPlan): GGUFEntry[] {
  const { preset } = plan;
  const general: GGUFEntry[] = [
    kv.str("general.architecture", preset.arch),
    kv.str("general.type", "model"),
    kv.str("general.name", `psionic synthetic ${preset.arch} ${preset.name}`),
    kv.str("general.description", `random weights (seed ${plan.seed}) in the shapes of preset ${preset.name}: ${preset.description}`),
    kv.u32("general.quantization_version", 2),
  ];
  const fileType = fileTypeOf(plan.requestedType);
  if (fileType !== undefined) general.push(kv.u32("general.file_type", fileType));
  general.push(kv.u32("psionic.synth.seed", plan.seed));
  if (plan.textOutput) general.push(kv.bool("psionic.synth.text_output", true));
  return [...general, ...plan.hyperParameters.map(hyperParameterEntry), ...synthVocabMetadata(preset, plan.tokenizer)];
}

export interface SynthResult {
  path: string;
  plan: SynthPlan;
  /** Size of the written file. */
  fileBytes: number;
}

/** Writes the model to `path` atomically; holds one tensor in memory at a time. */
export function synthesize(options: SynthOptions, path: string, onProgress?: (doneBytes: number, totalBytes: number) => void): SynthResult {
  const plan = planSynth(options);
  const metadata = synthMetadata(plan);
  const head = plan.tensors.find((t) => t.role === "output") ?? plan.tensors.find((t) => t.role === "embedding");
  const zeroRows = plan.textOutput ? nonTextTokens(metadata) : undefined;
  writeGGUF(path, {
    metadata,
    tensors: plan.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: () => synthTensorBytes(t, plan.seed, t === head ? zeroRows : undefined) })),
  }, onProgress);
  return { path, plan, fileBytes: statSync(path).size };
}

/** Tokens that are not whole text by themselves: control and end-of-generation tokens, and pieces that are not complete UTF-8. */
function nonTextTokens(metadata: GGUFEntry[]): Set<number> {
  const tokenizer = Tokenizer.fromMetadata(new Map(metadata.map((e) => [e.key, e])));
  const strict = new TextDecoder("utf-8", { fatal: true });
  const out = new Set<number>();
  for (let id = 0; id < tokenizer.size; id++) {
    const piece = tokenizer.tokenPieceBytes(id, false);
    let text = true;
    try {
      strict.decode(piece);
    } catch {
      text = false;
    }
    if (!text || piece.length === 0 || tokenizer.isEog(id)) out.add(id);
  }
  return out;
}
