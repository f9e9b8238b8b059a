// What /v1/models says about a loaded model, and how many KV caches its
// prefix-cache byte budget allows.
import { basename } from "node:path";
import { GGMLType } from "../../gguf/types.ts";
import { headDims } from "../../model/attention-block.ts";
import type { LoadedModel } from "../generator.ts";
import type { ServedModel } from "./protocol.ts";

/** The weight type most of the 2-D matrices use (by bytes), as llama.cpp names a file's quantization. */
function dominantType(loaded: LoadedModel): string {
  const bytes = new Map<number, number>();
  for (const t of loaded.file.tensors) {
    if (t.dims.length < 2) continue;
    bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.nbytes);
  }
  let best = GGMLType.F32, most = -1;
  for (const [type, n] of bytes) if (n > most) [best, most] = [type, n];
  return GGMLType[best] ?? `type ${best}`;
}

export function describeModel(loaded: LoadedModel, id: string | undefined, backend: string): ServedModel {
  const { file, tokenizer, model } = loaded;
  // Header and tensor table identify the model without hashing gigabytes of weights.
  const digest = new Bun.CryptoHasher("sha256").update(file.bytes.subarray(0, file.dataOffset)).digest("hex");
  const vocab = tokenizer.vocab;
  const text = (tokenId: number | undefined) => (tokenId !== undefined && tokenId >= 0 && tokenId < tokenizer.size ? tokenizer.tokenText(tokenId) : undefined);
  return {
    id: id ?? basename(loaded.path).replace(/\.gguf$/i, ""),
    path: loaded.path,
    architecture: model.hparams.arch,
    quant: dominantType(loaded),
    context: model.cache.contextLimit,
    backend,
    digest,
    created: Math.floor(Date.now() / 1000),
    ...(vocab.chatTemplate !== undefined ? { chatTemplate: vocab.chatTemplate } : {}),
    ...(text(tokenizer.special.bos) !== undefined ? { bosText: text(tokenizer.special.bos) } : {}),
    ...(text(tokenizer.special.eos) !== undefined ? { eosText: text(tokenizer.special.eos) } : {}),
    vocabSize: model.vocabSize,
    embeddingLength: model.hparams.embeddingLength,
  };
}

/** Bytes one sequence's KV cache takes (all layers, K and V, every position). */
export function kvBytesPerSequence(loaded: LoadedModel): number {
  const { model } = loaded;
  const probe = model.cache;
  const hp = model.hparams;
  const elementBytes = probe.precision === "f16" ? 2 : 4;
  const head = headDims(hp);
  return hp.layers * probe.contextLimit * hp.kvHeads * (head.k + head.v) * elementBytes;
}
