// GGUF writer: header, metadata, tensor infos, then tensor data, each tensor at the next
// multiple of the alignment and zero-padded after (the layout ggml and gguf-py write, and
// the only one ggml reads). Files go to disk tensor by tensor through a temp file, fsync
// and rename, so a crash leaves either the old file or the complete new one.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { PsionicError, refuse } from "../util/errors.ts";
import { checkValue, GGUFValueType, isArray, SCALAR_SIZE, type GGUFEntry, type GGUFValue, kv } from "./metadata.ts";
import { typeLayout, type GGMLType, type TypeLayout } from "./types.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const ALIGNMENT_KEY = "general.alignment";
/** ggml stores tensor names in a 64-byte field including the terminating NUL. */
export const MAX_TENSOR_NAME_BYTES = 63;
export const MAX_TENSOR_DIMS = 4;

export interface GGUFTensorSource {
  name: string;
  /** ne0 first, as stored. */
  dims: number[];
  type: GGMLType;
  /** The tensor's bytes, or a thunk called once, when the writer reaches this tensor. */
  data: Uint8Array | (() => Uint8Array);
}

export interface GGUFContents {
  /** Default 3. v2 and v3 share one layout (v3 only allowed big-endian files, which we do not write). */
  version?: 2 | 3;
  metadata: GGUFEntry[];
  tensors: GGUFTensorSource[];
  /** Else `general.alignment` from metadata, else 32. A value other than 32 with no such key adds the key. */
  alignment?: number;
}

export interface TensorShape {
  layout: TypeLayout;
  elements: number;
  nbytes: number;
}

/**
 * Sizes a tensor the way ggml validates it: at most 4 dims, each a non-negative integer,
 * a known type, rows (ne0) a whole number of blocks. Counts must stay exact in a double.
 * `where` names the tensor (and its offset, from the reader) in the refusal.
 */
export function tensorShape(dims: readonly number[], typeId: number, where: string): TensorShape {
  if (dims.length > MAX_TENSOR_DIMS) refuse("gguf.bad-tensor", `${where}: ${dims.length} dimensions, ggml allows at most ${MAX_TENSOR_DIMS}`);
  let elements = 1;
  for (const [i, d] of dims.entries()) {
    if (!Number.isSafeInteger(d) || d < 0) refuse("gguf.bad-tensor", `${where}: dimension ${i} is ${d}, must be a non-negative integer below 2^53`);
    elements *= d;
    if (elements > Number.MAX_SAFE_INTEGER) refuse("gguf.bad-tensor", `${where}: shape [${dims.join(", ")}] overflows the element count`);
  }
  const layout = typeLayout(typeId);
  if (!layout) refuse("gguf.bad-tensor", `${where}: unknown ggml type id ${typeId}`);
  const rowLength = dims[0] ?? 1;
  if (rowLength % layout!.blockSize !== 0) {
    refuse("gguf.bad-tensor", `${where}: row of ${rowLength} elements is not a multiple of the ${layout!.name} block size ${layout!.blockSize}`);
  }
  const nbytes = (elements / layout!.blockSize) * layout!.typeSize;
  if (nbytes > Number.MAX_SAFE_INTEGER) refuse("gguf.bad-tensor", `${where}: ${nbytes} bytes is too large`);
  return { layout: layout!, elements, nbytes };
}

export function isValidAlignment(a: unknown): a is number {
  return typeof a === "number" && Number.isInteger(a) && a > 0 && a <= 0x80000000 && (a & (a - 1)) === 0;
}

export const alignUp = (n: number, alignment: number): number => Math.ceil(n / alignment) * alignment;

/** A growable little-endian byte buffer. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private static encoder = new TextEncoder();

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      const grown = new Uint8Array(Math.max(at + n, this.buf.length * 2));
      grown.set(this.buf.subarray(0, at));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length += n;
    return at;
  }
  // reserve() may replace buf/view, so it must run before they are read.
  u8(v: number) { const at = this.reserve(1); this.view.setUint8(at, v); }
  i8(v: number) { const at = this.reserve(1); this.view.setInt8(at, v); }
  u16(v: number) { const at = this.reserve(2); this.view.setUint16(at, v, true); }
  i16(v: number) { const at = this.reserve(2); this.view.setInt16(at, v, true); }
  u32(v: number) { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  i32(v: number) { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  f32(v: number) { const at = this.reserve(4); this.view.setFloat32(at, v, true); }
  f64(v: number) { const at = this.reserve(8); this.view.setFloat64(at, v, true); }
  u64(v: bigint | number) { const at = this.reserve(8); this.view.setBigUint64(at, BigInt(v), true); }
  i64(v: bigint | number) { const at = this.reserve(8); this.view.setBigInt64(at, BigInt(v), true); }
  bytes(b: Uint8Array) { const at = this.reserve(b.length); this.buf.set(b, at); }
  string(s: string) {
    const b = ByteSink.encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  padTo(alignment: number) { this.reserve(alignUp(this.length, alignment) - this.length); } // new bytes are zero
  result(): Uint8Array { return this.buf.slice(0, this.length); }
}

function writeValue(sink: ByteSink, type: GGUFValueType, value: GGUFValue): void {
  switch (type) {
    case GGUFValueType.UINT8: return sink.u8(value as number);
    case GGUFValueType.INT8: return sink.i8(value as number);
    case GGUFValueType.UINT16: return sink.u16(value as number);
    case GGUFValueType.INT16: return sink.i16(value as number);
    case GGUFValueType.UINT32: return sink.u32(value as number);
    case GGUFValueType.INT32: return sink.i32(value as number);
    case GGUFValueType.FLOAT32: return sink.f32(value as number);
    case GGUFValueType.BOOL: return sink.u8(value ? 1 : 0);
    case GGUFValueType.STRING: return sink.string(value as string);
    case GGUFValueType.UINT64: return sink.u64(value as bigint);
    case GGUFValueType.INT64: return sink.i64(value as bigint);
    case GGUFValueType.FLOAT64: return sink.f64(value as number);
    case GGUFValueType.ARRAY: {
      if (!isArray(value)) return;
      sink.u32(value.itemType);
      sink.u64(value.items.length);
      for (const item of value.items) writeValue(sink, value.itemType, item);
    }
  }
}

/** Where each tensor goes; `header` already ends with the padding up to `dataOffset`. */
export interface GGUFLayout {
  header: Uint8Array;
  alignment: number;
  dataOffset: number;
  totalBytes: number;
  tensors: { source: GGUFTensorSource; nbytes: number; offset: number }[];
}

/** Validates everything and encodes the header; tensor data is not touched. */
export function layoutGGUF(contents: GGUFContents): GGUFLayout {
  const version = contents.version ?? 3;
  if (version !== 2 && version !== 3) refuse("gguf.version", `cannot write GGUF version ${version}; versions 2 and 3 are supported`);
  const metadata = [...contents.metadata];
  const alignment = resolveAlignment(metadata, contents.alignment);

  const keys = new Set<string>();
  for (const entry of metadata) {
    if (typeof entry.key !== "string" || entry.key === "") refuse("gguf.bad-key", "metadata key is empty");
    if (!entry.key.isWellFormed()) refuse("gguf.bad-key", `metadata key ${JSON.stringify(entry.key)} holds a lone surrogate`);
    if (keys.has(entry.key)) refuse("gguf.duplicate-key", `metadata key ${entry.key} appears twice`);
    keys.add(entry.key);
    checkValue(entry.type, entry.value, `key ${entry.key}`);
  }

  const names = new Set<string>();
  const encoder = new TextEncoder();
  let offset = 0;
  const tensors = contents.tensors.map((source) => {
    const where = `tensor ${source.name}`;
    if (typeof source.name !== "string" || !source.name.isWellFormed()) refuse("gguf.bad-tensor", `${where}: name is not a well-formed string`);
    if (encoder.encode(source.name).length > MAX_TENSOR_NAME_BYTES) refuse("gguf.bad-tensor", `${where}: name is longer than ${MAX_TENSOR_NAME_BYTES} bytes`);
    if (names.has(source.name)) refuse("gguf.duplicate-tensor", `${where}: name appears twice`);
    names.add(source.name);
    const { nbytes } = tensorShape(source.dims, source.type, where);
    const placed = { source, nbytes, offset };
    offset += alignUp(nbytes, alignment);
    return placed;
  });

  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(version);
  sink.u64(tensors.length);
  sink.u64(metadata.length);
  for (const entry of metadata) {
    sink.string(entry.key);
    sink.u32(entry.type);
    writeValue(sink, entry.type, entry.value);
  }
  for (const t of tensors) {
    sink.string(t.source.name);
    sink.u32(t.source.dims.length);
    for (const d of t.source.dims) sink.u64(d);
    sink.u32(t.source.type);
    sink.u64(t.offset);
  }
  sink.padTo(alignment);
  const header = sink.result();
  return { header, alignment, dataOffset: header.length, totalBytes: header.length + offset, tensors };
}

function resolveAlignment(metadata: GGUFEntry[], requested: number | undefined): number {
  const entry = metadata.find((e) => e.key === ALIGNMENT_KEY);
  if (entry && (entry.type !== GGUFValueType.UINT32 || !isValidAlignment(entry.value))) {
    refuse("gguf.bad-alignment", `${ALIGNMENT_KEY} must be a uint32 power of two, found ${GGUFValueType[entry.type]?.toLowerCase()} ${String(entry.value)}`);
  }
  if (requested === undefined) return entry ? (entry.value as number) : GGUF_DEFAULT_ALIGNMENT;
  if (!isValidAlignment(requested)) refuse("gguf.bad-alignment", `alignment ${requested} is not a power of two in [1, 2^31]`);
  if (entry && entry.value !== requested) refuse("gguf.bad-alignment", `alignment ${requested} contradicts ${ALIGNMENT_KEY} = ${entry.value}`);
  // Without the key, readers assume 32; record any other alignment so the file reads back.
  if (!entry && requested !== GGUF_DEFAULT_ALIGNMENT) metadata.push(kv.u32(ALIGNMENT_KEY, requested));
  return requested;
}

function tensorBytesOf(t: GGUFLayout["tensors"][number]): Uint8Array {
  const data = typeof t.source.data === "function" ? t.source.data() : t.source.data;
  if (!(data instanceof Uint8Array)) refuse("gguf.bad-tensor", `tensor ${t.source.name}: data is not a Uint8Array`);
  if (data.length !== t.nbytes) refuse("gguf.bad-tensor", `tensor ${t.source.name}: has ${data.length} bytes of data, its shape and type need ${t.nbytes}`);
  return data;
}

/** The whole file in memory: for tests and small files. */
export function serializeGGUF(contents: GGUFContents): Uint8Array {
  const layout = layoutGGUF(contents);
  const out = new Uint8Array(layout.totalBytes);
  out.set(layout.header, 0);
  for (const t of layout.tensors) out.set(tensorBytesOf(t), layout.dataOffset + t.offset);
  return out;
}

/**
 * Writes `path` atomically, tensor by tensor: each lazy `data` thunk is called only when its
 * tensor is written, and its bytes are dropped before the next, so memory stays at one tensor.
 */
export function writeGGUF(path: string, contents: GGUFContents, onProgress?: (doneBytes: number, totalBytes: number) => void): void {
  const layout = layoutGGUF(contents);
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.partial`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, "w", 0o644);
    writeAll(fd, layout.header);
    let done = layout.header.length;
    onProgress?.(done, layout.totalBytes);
    for (const t of layout.tensors) {
      writeAll(fd, tensorBytesOf(t));
      const padding = alignUp(t.nbytes, layout.alignment) - t.nbytes;
      if (padding > 0) writeAll(fd, new Uint8Array(padding));
      done += t.nbytes + padding;
      onProgress?.(done, layout.totalBytes);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    try { unlinkSync(temp); } catch { /* the temp file may never have been created */ }
    if (error instanceof PsionicError) throw error;
    throw new PsionicError("gguf.write-failed", `writing ${path}: ${(error as Error).message}`);
  }
  syncDirectory(dirname(path));
}

function writeAll(fd: number, bytes: Uint8Array): void {
  const chunk = 1 << 30; // a single write(2) moves at most ~2 GiB
  for (let at = 0; at < bytes.length;) {
    at += writeSync(fd, bytes, at, Math.min(chunk, bytes.length - at));
  }
}

/** Makes the rename itself durable. Some filesystems refuse fsync on a directory; the file is already complete then. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch { /* see above */ } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Bytes one metadata value takes on disk (used by the reader's count checks). */
export function minimumValueBytes(type: GGUFValueType): number {
  return SCALAR_SIZE[type] ?? (type === GGUFValueType.STRING ? 8 : 12); // string: length; array: item type + count
}
