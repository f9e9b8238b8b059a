// `psionic train export`: the newest verified checkpoint of a run root as a
// llama GGUF that llama.cpp and psionic load. Training already keeps GGUF
// names and layout (train-model.ts), so export is metadata plus encoding:
// hyper-parameters under the llama.* keys llama.cpp reads, the run's trained
// tokenizer (with BOS/EOS and a plain chat template), matrices in the asked
// type (with llama.cpp's fallback when a row does not fill whole blocks) and
// norms in F32, as llama.cpp's converter writes every 1-D tensor.
import { kv, type GGUFEntry } from "../gguf/metadata.ts";
import { encodeTensor } from "../gguf/quant/codecs.ts";
import { GGMLType, typeLayout } from "../gguf/types.ts";
import { writeGGUF, type GGUFTensorSource } from "../gguf/writer.ts";
import { fileTypeOf, shapeCompatibleType } from "../model/tensor-types.ts";
import { vocabToMetadata, type Vocab } from "../tokenizer/vocab.ts";
import { refuse } from "../util/errors.ts";
import { findResumePoint } from "./checkpoint.ts";
import { headDim } from "./parameters.ts";
import { openRun } from "./run-session.ts";
import type { ModelShape, ParameterInfo } from "./train-model.ts";

export const EXPORT_TYPES = { F16: GGMLType.F16, Q8_0: GGMLType.Q8_0, Q4_K: GGMLType.Q4_K, F32: GGMLType.F32 } as const;
export type ExportTypeName = keyof typeof EXPORT_TYPES;

export function exportTypeOf(name: string): GGMLType {
  const type = (EXPORT_TYPES as Record<string, GGMLType>)[name.toUpperCase()];
  if (type === undefined) refuse("cli.bad-flag", `--type ${name} is not supported for export; use ${Object.keys(EXPORT_TYPES).join(", ")}`);
  return type!;
}

export interface ExportSource {
  name: string;
  description: string;
  shape: ModelShape;
  table: readonly ParameterInfo[];
  params: Float32Array;
  vocab: Vocab;
}

/** The llama.* hyper-parameters as llama.cpp (and src/model/hparams.ts) read them. */
function llamaHyperParameters(shape: ModelShape): GGUFEntry[] {
  const hd = headDim(shape);
  return [
    kv.u32("llama.vocab_size", shape.vocab),
    kv.u32("llama.context_length", shape.context),
    kv.u32("llama.embedding_length", shape.width),
    kv.u32("llama.block_count", shape.layers),
    kv.u32("llama.feed_forward_length", shape.ffnWidth),
    kv.u32("llama.attention.head_count", shape.heads),
    kv.u32("llama.attention.head_count_kv", shape.kvHeads),
    kv.u32("llama.attention.key_length", hd),
    kv.u32("llama.attention.value_length", hd),
    kv.u32("llama.rope.dimension_count", hd),
    kv.f32("llama.rope.freq_base", shape.ropeBase),
    kv.f32("llama.attention.layer_norm_rms_epsilon", shape.normEps),
  ];
}

/** Writes `source` to `path` (atomically) with matrices stored as `type`. */
export function writeTrainedGguf(source: ExportSource, type: GGMLType, path: string): void {
  const fileType = fileTypeOf(type);
  const metadata: GGUFEntry[] = [
    kv.str("general.architecture", "llama"),
    kv.str("general.type", "model"),
    kv.str("general.name", source.name),
    kv.str("general.description", source.description),
    kv.u32("general.quantization_version", 2),
    ...(fileType === undefined ? [] : [kv.u32("general.file_type", fileType)]),
    ...llamaHyperParameters(source.shape),
    ...vocabToMetadata(source.vocab),
  ];
  const tensors: GGUFTensorSource[] = source.table.map((p) => {
    const tensorType = p.dims.length === 1 ? GGMLType.F32 : shapeCompatibleType(type, p.dims[0]!, p.name).type;
    const values = source.params.subarray(p.offset, p.offset + p.size);
    return { name: p.name, dims: p.dims, type: tensorType, data: () => encodeTensor(tensorType, values) };
  });
  writeGGUF(path, { metadata, tensors });
}

export interface ExportResult {
  step: number;
  type: string;
  path: string;
  refused: { dir: string; reason: string }[];
}

/** Exports the newest checkpoint of the run at `runRoot` that verifies. */
export function exportRun(runRoot: string, type: GGMLType, path: string): ExportResult {
  const run = openRun(runRoot);
  const { loaded, refused } = findResumePoint(run.root.checkpointsDir, run.checkpointContext, run.parameterCount);
  if (!loaded) refuse("train.no-checkpoint", `${run.root.checkpointsDir}: no complete checkpoint verifies${refused.length ? ` (${refused.map((r) => r.reason).join("; ")})` : ""}; train first`);
  writeTrainedGguf({
    name: `psionic ${run.lane.name}`,
    description: `${run.lane.description} Step ${loaded!.state.step} of run ${run.config.laneDigest.slice(0, 12)}.`,
    shape: run.shape, table: run.table, params: loaded!.state.params, vocab: run.data.vocab,
  }, type, path);
  return { step: loaded!.state.step, type: typeLayout(type)!.name, path, refused };
}
