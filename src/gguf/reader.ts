// GGUF reader. It accepts exactly the files the writer produces from their contents, so
// `writeGGUF(contentsOf(parseGGUF(x)))` reproduces `x` byte for byte. Beyond ggml's own
// checks (magic, version, counts, dims, types, block multiples, tensor data packed in info
// order at aligned offsets), that means it also refuses: padding that is not zero, bytes
// after the last tensor's padding, bool bytes other than 0/1, strings that are not UTF-8,
// NaNs with a payload or sign (JS cannot carry them), dims past 2^53, nesting past 8.
// Every length and count is checked against the bytes left before anything is allocated.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { PsionicError, refuse } from "../util/errors.ts";
import { GGUFValueType, isValueType, MAX_ARRAY_DEPTH, typeName, type GGUFEntry, type GGUFValue } from "./metadata.ts";
import type { GGMLType } from "./types.ts";
import {
  ALIGNMENT_KEY, alignUp, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, isValidAlignment, MAX_TENSOR_DIMS, MAX_TENSOR_NAME_BYTES,
  minimumValueBytes, tensorShape, type GGUFContents,
} from "./writer.ts";

export interface GGUFTensorInfo {
  name: string;
  /** ne0 first, as stored. */
  dims: number[];
  type: GGMLType;
  /** Bytes from the start of the data section. */
  offset: number;
  elements: number;
  nbytes: number;
}

export interface GGUFFile {
  version: number;
  metadata: GGUFEntry[];
  meta: Map<string, GGUFEntry>;
  tensors: GGUFTensorInfo[];
  tensorsByName: Map<string, GGUFTensorInfo>;
  alignment: number;
  /** File offset of the data section. */
  dataOffset: number;
  /**
   * The file's bytes: all of them when the file is under 4 GiB, else the first 4 GiB (a JS
   * typed array, and so one Bun.mmap, cannot be larger). Use `tensorData` for tensor bytes.
   */
  bytes: Uint8Array;
  /** File size in bytes. */
  size: number;
  /** The tensor's bytes: a view into the buffer or the file mapping, not a copy. */
  tensorData(t: GGUFTensorInfo): Uint8Array;
}

/**
 * Where the reader gets bytes: `head` (the file, or as much of its start as one typed array
 * holds) for the header; `slice` for anything, e.g. tensor data past the head.
 */
export interface FileBytes {
  size: number;
  head: Uint8Array;
  slice(offset: number, length: number): Uint8Array;
}

/** The largest typed array (and so mapping) JavaScriptCore allows. */
export const MAX_VIEW_BYTES = 2 ** 32;

export function memoryBytes(bytes: Uint8Array): FileBytes {
  return { size: bytes.length, head: bytes, slice: (offset, length) => bytes.subarray(offset, offset + length) };
}

/** Smallest possible encodings, for checking counts before looping over them. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1; // key length, a 1-byte key, value type, a 1-byte value
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8; // name length (empty name), n_dims (0), type, offset
const utf8 = new TextEncoder();
const CANONICAL_NAN_F32 = 0x7fc00000;
const CANONICAL_NAN_F64 = 0x7ff8000000000000n;

class Cursor {
  pos = 0;
  private readonly view: DataView;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  readonly bytes: Uint8Array;

  constructor(readonly file: FileBytes, private readonly source: string) {
    this.bytes = file.head;
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  /** Bytes left in the whole file (which may extend past the mapped head). */
  get remaining(): number { return this.file.size - this.pos; }

  fail(code: string, message: string): never {
    throw new PsionicError(code, `${this.source}: ${message}`);
  }

  /** Advances past `n` bytes of `what`, refusing if the file ends first. */
  take(n: number, what: Label): number {
    if (n > this.remaining) this.fail("gguf.truncated", `${what} at offset ${this.pos} needs ${n} bytes, the file ends ${this.remaining} bytes later`);
    const at = this.pos;
    if (at + n > this.bytes.length) this.fail("gguf.too-large", `${what} at offset ${at} lies past the first ${this.bytes.length} bytes, where the header must fit`);
    this.pos += n;
    return at;
  }

  u8(what: Label) { return this.view.getUint8(this.take(1, what)); }
  i8(what: Label) { return this.view.getInt8(this.take(1, what)); }
  u16(what: Label) { return this.view.getUint16(this.take(2, what), true); }
  i16(what: Label) { return this.view.getInt16(this.take(2, what), true); }
  u32(what: Label) { return this.view.getUint32(this.take(4, what), true); }
  i32(what: Label) { return this.view.getInt32(this.take(4, what), true); }
  u64(what: Label) { return this.view.getBigUint64(this.take(8, what), true); }
  i64(what: Label) { return this.view.getBigInt64(this.take(8, what), true); }

  f32(what: Label): number {
    const at = this.take(4, what);
    const value = this.view.getFloat32(at, true);
    if (Number.isNaN(value) && this.view.getUint32(at, true) !== CANONICAL_NAN_F32) this.fail("gguf.bad-value", `${what} at offset ${at} is a NaN with a payload or sign bit, which cannot be kept`);
    return value;
  }

  f64(what: Label): number {
    const at = this.take(8, what);
    const value = this.view.getFloat64(at, true);
    if (Number.isNaN(value) && this.view.getBigUint64(at, true) !== CANONICAL_NAN_F64) this.fail("gguf.bad-value", `${what} at offset ${at} is a NaN with a payload or sign bit, which cannot be kept`);
    return value;
  }

  /** A count field: `count` items of at least `itemBytes` each must fit in what is left. */
  count(raw: bigint, itemBytes: number, what: Label, at: number): number {
    if (raw < 0n || raw * BigInt(itemBytes) > BigInt(this.remaining)) {
      this.fail("gguf.bad-count", `${what} at offset ${at} is ${raw}, but ${this.remaining} bytes are left (each item takes at least ${itemBytes})`);
    }
    return Number(raw);
  }

  string(what: Label): string {
    const at = this.pos;
    const lengthLabel = new LengthLabel(what);
    const length = this.count(this.u64(lengthLabel), 1, lengthLabel, at);
    const start = this.take(length, what);
    try {
      return this.decoder.decode(this.bytes.subarray(start, start + length));
    } catch {
      return this.fail("gguf.bad-string", `${what} at offset ${start} is not valid UTF-8`);
    }
  }
}

/**
 * "value of K[i]", built only when a message needs it: one label per array, its index updated
 * per item, because composing a string per item costs a third of the parse of a large vocab.
 */
class ItemLabel {
  index = 0;
  constructor(private readonly array: Label) {}
  toString(): string { return `${this.array}[${this.index}]`; }
}
class LengthLabel {
  constructor(private readonly of: Label) {}
  toString(): string { return `length of ${this.of}`; }
}
/** Names the field being read, for messages; only turned into a string when one is thrown. */
type Label = string | ItemLabel | LengthLabel;

function readValue(c: Cursor, type: GGUFValueType, what: Label, depth: number): GGUFValue {
  switch (type) {
    case GGUFValueType.UINT8: return c.u8(what);
    case GGUFValueType.INT8: return c.i8(what);
    case GGUFValueType.UINT16: return c.u16(what);
    case GGUFValueType.INT16: return c.i16(what);
    case GGUFValueType.UINT32: return c.u32(what);
    case GGUFValueType.INT32: return c.i32(what);
    case GGUFValueType.FLOAT32: return c.f32(what);
    case GGUFValueType.UINT64: return c.u64(what);
    case GGUFValueType.INT64: return c.i64(what);
    case GGUFValueType.FLOAT64: return c.f64(what);
    case GGUFValueType.STRING: return c.string(what);
    case GGUFValueType.BOOL: {
      const at = c.pos;
      const byte = c.u8(what);
      if (byte > 1) c.fail("gguf.bad-value", `${what} at offset ${at} is a bool stored as ${byte}; only 0 and 1 are valid`);
      return byte === 1;
    }
    case GGUFValueType.ARRAY: {
      if (depth >= MAX_ARRAY_DEPTH) c.fail("gguf.too-deep", `${what} at offset ${c.pos}: arrays nest deeper than ${MAX_ARRAY_DEPTH} levels`);
      const typeAt = c.pos;
      const itemType = c.u32(`item type of ${what}`);
      if (!isValueType(itemType)) c.fail("gguf.bad-type", `${what} at offset ${typeAt} has unknown item type ${itemType}`);
      const countAt = c.pos;
      const n = c.count(c.u64(`item count of ${what}`), minimumValueBytes(itemType), `item count of ${what}`, countAt);
      const items: GGUFValue[] = new Array(n);
      const label = new ItemLabel(what);
      for (let i = 0; i < n; i++) {
        label.index = i;
        items[i] = readValue(c, itemType, label, depth + 1);
      }
      return { itemType, items };
    }
  }
  return c.fail("gguf.bad-type", `${what} has unknown value type ${type}`);
}

/** Parses a whole GGUF file held in `bytes`; tensor data is only viewed, never copied. */
export function parseGGUF(bytes: Uint8Array, source = "GGUF"): GGUFFile {
  return parseGGUFBytes(memoryBytes(bytes), source);
}

export function parseGGUFBytes(file: FileBytes, source: string): GGUFFile {
  const c = new Cursor(file, source);
  const bytes = file.head;

  if (file.size < 4 || c.u32("magic") !== GGUF_MAGIC) {
    const shown = [...bytes.subarray(0, 4)].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "?")).join("");
    c.fail("gguf.bad-magic", `not a GGUF file: starts with "${shown}", expected "GGUF"`);
  }
  const version = c.u32("version");
  if ((version & 0xffff) === 0 && version !== 0) c.fail("gguf.version", `version field reads ${version}: a big-endian GGUF file, which is not supported`);
  if (version === 1) c.fail("gguf.version", "GGUF version 1 is no longer supported (versions 2 and 3 are); re-convert the model");
  if (version !== 2 && version !== 3) c.fail("gguf.version", `GGUF version ${version} is not supported (versions 2 and 3 are)`);

  const rawTensorCount = c.i64("tensor count");
  const rawKvCount = c.i64("metadata count");
  const tensorCount = c.count(rawTensorCount, MIN_TENSOR_INFO_BYTES, "tensor count", 8);
  const kvCount = c.count(rawKvCount, MIN_KV_BYTES, "metadata count", 16);

  const metadata: GGUFEntry[] = [];
  const meta = new Map<string, GGUFEntry>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = c.pos;
    const key = c.string(`key ${i}`);
    if (key === "") c.fail("gguf.bad-key", `key ${i} at offset ${keyAt} is empty`);
    if (meta.has(key)) c.fail("gguf.duplicate-key", `key ${key} at offset ${keyAt} appears twice`);
    const typeAt = c.pos;
    const type = c.u32(`value type of ${key}`);
    if (!isValueType(type)) c.fail("gguf.bad-type", `key ${key} at offset ${typeAt} has unknown value type ${type}`);
    const entry: GGUFEntry = { key, type, value: readValue(c, type, `value of ${key}`, 0) };
    metadata.push(entry);
    meta.set(key, entry);
  }

  const alignment = readAlignment(c, meta);

  const tensors: GGUFTensorInfo[] = [];
  const tensorsByName = new Map<string, GGUFTensorInfo>();
  const rawOffsets: bigint[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const infoAt = c.pos;
    const name = c.string(`name of tensor ${i}`);
    const where = `tensor ${name} (info at offset ${infoAt})`;
    if (utf8.encode(name).length > MAX_TENSOR_NAME_BYTES) c.fail("gguf.bad-tensor", `${where}: name is longer than ${MAX_TENSOR_NAME_BYTES} bytes`);
    if (tensorsByName.has(name)) c.fail("gguf.duplicate-tensor", `${where}: name appears twice`);
    const nDims = c.u32(`dimension count of tensor ${name}`);
    if (nDims > MAX_TENSOR_DIMS) c.fail("gguf.bad-tensor", `${where}: ${nDims} dimensions, ggml allows at most ${MAX_TENSOR_DIMS}`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const ne = c.i64(`dimension ${d} of tensor ${name}`);
      if (ne < 0n || ne > BigInt(Number.MAX_SAFE_INTEGER)) c.fail("gguf.bad-tensor", `${where}: dimension ${d} is ${ne}, must be a non-negative integer below 2^53`);
      dims.push(Number(ne));
    }
    const type = c.i32(`type of tensor ${name}`);
    const shape = withSource(source, () => tensorShape(dims, type, where));
    rawOffsets.push(c.u64(`data offset of tensor ${name}`));
    const info: GGUFTensorInfo = { name, dims, type, offset: 0, elements: shape.elements, nbytes: shape.nbytes };
    tensors.push(info);
    tensorsByName.set(name, info);
  }

  const dataOffset = alignUp(c.pos, alignment);
  expectZeros(c, dataOffset - c.pos, "padding before the data section");
  placeTensors(c, tensors, rawOffsets, alignment);
  if (c.remaining > 0) c.fail("gguf.trailing-bytes", `${c.remaining} bytes follow the data section at offset ${c.pos}; the file ends after the last tensor's padding`);

  return {
    version, metadata, meta, tensors, tensorsByName, alignment, dataOffset, bytes, size: file.size,
    tensorData: (t) => file.slice(dataOffset + t.offset, t.nbytes),
  };
}

function readAlignment(c: Cursor, meta: Map<string, GGUFEntry>): number {
  const entry = meta.get(ALIGNMENT_KEY);
  if (!entry) return GGUF_DEFAULT_ALIGNMENT;
  if (entry.type !== GGUFValueType.UINT32) c.fail("gguf.bad-alignment", `${ALIGNMENT_KEY} must be a uint32, found ${typeName(entry.type)}`);
  if (!isValidAlignment(entry.value)) c.fail("gguf.bad-alignment", `${ALIGNMENT_KEY} is ${entry.value}, not a non-zero power of two`);
  return entry.value as number;
}

/**
 * ggml requires tensor data packed in info order, each tensor at the running offset rounded up
 * to the alignment. A gap, an overlap or another order is refused here too, not preserved:
 * that layout is what lets the writer reproduce the file from names, shapes and bytes alone.
 */
function placeTensors(c: Cursor, tensors: GGUFTensorInfo[], rawOffsets: bigint[], alignment: number): void {
  let expected = 0;
  for (const [i, t] of tensors.entries()) {
    const raw = rawOffsets[i]!;
    const where = `tensor ${t.name}`;
    if (raw % BigInt(alignment) !== 0n) c.fail("gguf.misaligned", `${where}: data offset ${raw} is not a multiple of the alignment ${alignment}`);
    if (raw < BigInt(expected)) {
      c.fail("gguf.overlap", `${where}: data offset ${raw} overlaps ${i > 0 ? `tensor ${tensors[i - 1]!.name}, which ends at ${tensors[i - 1]!.offset + tensors[i - 1]!.nbytes}` : "the start"}`);
    }
    if (raw > BigInt(expected)) {
      c.fail("gguf.bad-offset", `${where}: data offset ${raw}, expected ${expected}; tensor data must be packed in the order of the tensor infos`);
    }
    t.offset = expected;
    if (t.nbytes > c.remaining) c.fail("gguf.truncated", `${where}: ${t.nbytes} bytes of data at file offset ${c.pos} run past the end of the file (${c.file.size} bytes)`);
    c.pos += t.nbytes;
    const padded = alignUp(t.nbytes, alignment);
    expectZeros(c, padded - t.nbytes, `padding after tensor ${t.name}`);
    expected += padded;
  }
}

function expectZeros(c: Cursor, n: number, what: string): void {
  if (n > c.remaining) c.fail("gguf.truncated", `${what} at offset ${c.pos} needs ${n} bytes, the file ends ${c.remaining} bytes later`);
  const bytes = c.file.slice(c.pos, n);
  const nonZero = bytes.findIndex((b) => b !== 0);
  if (nonZero >= 0) c.fail("gguf.bad-padding", `${what}: byte at offset ${c.pos + nonZero} is ${bytes[nonZero]}, padding must be zero`);
  c.pos += n;
}

/** Prefixes a refusal from shared validation with the file name. */
function withSource<T>(source: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof PsionicError) throw new PsionicError(error.code, `${source}: ${error.message}`);
    throw error;
  }
}

/**
 * Maps the file instead of reading it, so a file larger than memory opens at once. Files over
 * 4 GiB are mapped in windows: the head for parsing, one mapping per tensor read past it.
 */
export function openGGUF(path: string): GGUFFile {
  let file: FileBytes;
  try {
    file = mappedBytes(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory, not a GGUF file" : (error as Error).message;
    return refuse("gguf.open-failed", `${path}: ${reason}`);
  }
  return parseGGUFBytes(file, path);
}

const PAGE = 4096;
const SMALL_READ = 1 << 16;

function mappedBytes(path: string): FileBytes {
  const size = statSync(path).size;
  if (size === 0) return memoryBytes(new Uint8Array(0));
  const map = (offset: number, length: number) => Bun.mmap(path, { shared: false, offset, size: length } as Parameters<typeof Bun.mmap>[1]);
  const head = map(0, Math.min(size, MAX_VIEW_BYTES));
  if (size <= MAX_VIEW_BYTES) return memoryBytes(head);
  return {
    size,
    head,
    slice(offset, length) {
      if (offset + length <= head.length) return head.subarray(offset, offset + length);
      if (length <= SMALL_READ) return readAt(path, offset, length);
      const start = Math.floor(offset / PAGE) * PAGE;
      if (offset + length - start > MAX_VIEW_BYTES) refuse("gguf.too-large", `${path}: ${length} bytes at offset ${offset} exceed the ${MAX_VIEW_BYTES}-byte limit of one view`);
      return map(start, offset + length - start).subarray(offset - start);
    },
  };
}

function readAt(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const out = new Uint8Array(length);
    for (let done = 0; done < length;) {
      const n = readSync(fd, out, done, length - done, offset + done);
      if (n === 0) refuse("gguf.truncated", `${path}: file shrank while reading offset ${offset + done}`);
      done += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** The file's contents in writer form; tensor data stays lazy (views into the file). */
export function contentsOf(file: GGUFFile): GGUFContents {
  return {
    version: file.version as 2 | 3,
    metadata: file.metadata,
    tensors: file.tensors.map((t) => ({ name: t.name, dims: [...t.dims], type: t.type, data: () => file.tensorData(t) })),
    alignment: file.alignment,
  };
}

