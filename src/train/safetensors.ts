// The safetensors format (Hugging Face), float32 only: an 8-byte little-endian
// header length, a JSON header mapping each tensor name to its dtype, shape
// (row-major, outermost first) and [begin, end) byte offsets into the data
// section, then the raw little-endian data. The header is padded with spaces
// to a multiple of 8 bytes, as the reference writer does, so data is aligned.
// The reader checks every offset and size against the bytes it has before it
// trusts them: a hostile file is refused, never read out of bounds.
import { readFileSync } from "node:fs";
import { refuse } from "../util/errors.ts";

export interface NamedTensor {
  name: string;
  /** Row-major, outermost dimension first (the safetensors / PyTorch order). */
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** A header over this size is refused (real ones are a few KB per hundred tensors). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const elementCount = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

export function serializeSafetensors(tensors: readonly NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === "__metadata__" || seen.has(t.name)) refuse("safetensors.bad-tensor", `tensor name "${t.name}" is reserved or repeated`);
    seen.add(t.name);
    if (elementCount(t.shape) !== t.data.length) refuse("safetensors.bad-tensor", `${t.name}: shape [${t.shape}] does not hold ${t.data.length} values`);
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    // Float32Array is little-endian on every platform Bun runs on.
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/** Parses safetensors bytes; `where` (a file name) prefixes every refusal. */
export function parseSafetensors(bytes: Uint8Array, where: string): SafetensorsFile {
  const bad = (why: string): never => refuse("safetensors.bad-file", `${where}: ${why}`);
  if (bytes.length < 8) bad(`${bytes.length} bytes is too short for the 8-byte header length`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8))) bad(`header length ${headerLength} exceeds the file (${bytes.length} bytes) or the ${MAX_HEADER_BYTES}-byte limit`);
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    bad(`the header is not valid UTF-8 JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) bad("the header is not a JSON object");
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (entry === null || typeof entry !== "object" || Object.values(entry).some((x) => typeof x !== "string")) bad("__metadata__ must map names to strings");
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== "object") bad(`tensor ${name}: entry is not an object`);
    if (e.dtype !== "F32") bad(`tensor ${name}: dtype ${JSON.stringify(e.dtype)} is not supported (psionic checkpoints are F32)`);
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) bad(`tensor ${name}: shape must be an array of non-negative integers`);
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0)) bad(`tensor ${name}: data_offsets must be two non-negative integers`);
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLength) bad(`tensor ${name}: data_offsets [${begin}, ${end}] fall outside the ${dataLength} data bytes`);
    const count = elementCount(shape as number[]);
    if (count * 4 !== end - begin) bad(`tensor ${name}: shape [${shape}] needs ${count * 4} bytes, data_offsets give ${end - begin}`);
    spans.push([begin, end, name]);
    // Copy into a fresh (aligned) buffer: the data section need not be 4-byte aligned in a foreign file.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { name, shape: shape as number[], data });
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) bad(`tensors ${spans[i - 1]![2]} and ${spans[i]![2]} overlap`);
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    return refuse("safetensors.bad-file", `${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parseSafetensors(bytes, path);
}
