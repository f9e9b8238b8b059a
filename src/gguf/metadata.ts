// GGUF metadata: the value types a key can hold, builders for entries, and typed
// getters that refuse with the key's name when a file holds something unexpected.
// The reader and the writer share `checkValue`, so anything one accepts the other does.
import { PsionicError, refuse } from "../util/errors.ts";

export enum GGUFValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/** An array value; items all have `itemType`, which may itself be ARRAY (nested arrays). */
export interface GGUFArray {
  itemType: GGUFValueType;
  items: GGUFValue[];
}

/** 64-bit integers are bigint (read side always; the writer also takes safe-integer numbers). */
export type GGUFValue = number | bigint | boolean | string | GGUFArray;

export interface GGUFEntry {
  key: string;
  type: GGUFValueType;
  value: GGUFValue;
}

/** Arrays nest at most this deep (an array of arrays of scalars is depth 2). ggml itself refuses any nesting. */
export const MAX_ARRAY_DEPTH = 8;

/** Bytes a scalar of each fixed-size type takes on disk; STRING and ARRAY are variable. */
export const SCALAR_SIZE: Partial<Record<GGUFValueType, number>> = {
  [GGUFValueType.UINT8]: 1, [GGUFValueType.INT8]: 1, [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT16]: 2, [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4, [GGUFValueType.INT32]: 4, [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.UINT64]: 8, [GGUFValueType.INT64]: 8, [GGUFValueType.FLOAT64]: 8,
};

const INT_RANGES: Partial<Record<GGUFValueType, [number, number]>> = {
  [GGUFValueType.UINT8]: [0, 0xff], [GGUFValueType.INT8]: [-0x80, 0x7f],
  [GGUFValueType.UINT16]: [0, 0xffff], [GGUFValueType.INT16]: [-0x8000, 0x7fff],
  [GGUFValueType.UINT32]: [0, 0xffffffff], [GGUFValueType.INT32]: [-0x80000000, 0x7fffffff],
};

const BIG_RANGES: Partial<Record<GGUFValueType, [bigint, bigint]>> = {
  [GGUFValueType.UINT64]: [0n, 0xffffffffffffffffn],
  [GGUFValueType.INT64]: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

export function typeName(type: number): string {
  return GGUFValueType[type]?.toLowerCase() ?? `unknown type ${type}`;
}

export function isValueType(type: number): type is GGUFValueType {
  return Number.isInteger(type) && type >= 0 && type <= GGUFValueType.FLOAT64;
}

/**
 * Throws `gguf.bad-value` unless `value` can be stored as `type` and read back identically.
 * `where` names the key (and array index) for the message.
 */
export function checkValue(type: GGUFValueType, value: GGUFValue, where: string, depth = 0): void {
  const bad = (detail: string): never => refuse("gguf.bad-value", `${where}: ${detail}`);
  if (!isValueType(type)) bad(`unknown value type ${type}`);
  const intRange = INT_RANGES[type];
  if (intRange) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < intRange[0] || value > intRange[1]) {
      bad(`expected a ${typeName(type)} in [${intRange[0]}, ${intRange[1]}], found ${describe(value)}`);
    }
    return;
  }
  const bigRange = BIG_RANGES[type];
  if (bigRange) {
    const big = typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : value;
    if (typeof big !== "bigint" || big < bigRange[0] || big > bigRange[1]) bad(`expected a ${typeName(type)}, found ${describe(value)}`);
    return;
  }
  switch (type) {
    case GGUFValueType.FLOAT32:
    case GGUFValueType.FLOAT64:
      if (typeof value !== "number") bad(`expected a ${typeName(type)}, found ${describe(value)}`);
      return;
    case GGUFValueType.BOOL:
      if (typeof value !== "boolean") bad(`expected a bool, found ${describe(value)}`);
      return;
    case GGUFValueType.STRING:
      if (typeof value !== "string") bad(`expected a string, found ${describe(value)}`);
      if (!(value as string).isWellFormed()) bad("string holds a lone surrogate, which UTF-8 cannot encode");
      return;
    case GGUFValueType.ARRAY: {
      if (!isArray(value)) return bad(`expected an array, found ${describe(value)}`);
      if (depth + 1 > MAX_ARRAY_DEPTH) bad(`arrays nest deeper than ${MAX_ARRAY_DEPTH} levels`);
      if (!isValueType(value.itemType)) bad(`unknown array item type ${value.itemType}`);
      value.items.forEach((item, i) => checkValue(value.itemType, item, `${where}[${i}]`, depth + 1));
      return;
    }
  }
}

export function isArray(value: GGUFValue | undefined): value is GGUFArray {
  return typeof value === "object" && value !== null && Array.isArray((value as GGUFArray).items);
}

function describe(value: unknown): string {
  if (isArray(value as GGUFValue)) return `an array of ${(value as GGUFArray).items.length}`;
  if (typeof value === "string") return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "..." : value)}`;
  return `${typeof value} ${String(value)}`;
}

// Builders: `kv.u32("general.alignment", 64)`.
const scalar = (type: GGUFValueType) => (key: string, value: GGUFValue): GGUFEntry => ({ key, type, value });
export const kv = {
  u8: scalar(GGUFValueType.UINT8) as (key: string, value: number) => GGUFEntry,
  i8: scalar(GGUFValueType.INT8) as (key: string, value: number) => GGUFEntry,
  u16: scalar(GGUFValueType.UINT16) as (key: string, value: number) => GGUFEntry,
  i16: scalar(GGUFValueType.INT16) as (key: string, value: number) => GGUFEntry,
  u32: scalar(GGUFValueType.UINT32) as (key: string, value: number) => GGUFEntry,
  i32: scalar(GGUFValueType.INT32) as (key: string, value: number) => GGUFEntry,
  f32: scalar(GGUFValueType.FLOAT32) as (key: string, value: number) => GGUFEntry,
  bool: scalar(GGUFValueType.BOOL) as (key: string, value: boolean) => GGUFEntry,
  str: scalar(GGUFValueType.STRING) as (key: string, value: string) => GGUFEntry,
  u64: scalar(GGUFValueType.UINT64) as (key: string, value: bigint | number) => GGUFEntry,
  i64: scalar(GGUFValueType.INT64) as (key: string, value: bigint | number) => GGUFEntry,
  f64: scalar(GGUFValueType.FLOAT64) as (key: string, value: number) => GGUFEntry,
  arr: (key: string, itemType: GGUFValueType, items: GGUFValue[]): GGUFEntry => ({ key, type: GGUFValueType.ARRAY, value: { itemType, items } }),
};

/** Metadata as a map by key, in file order (the reader builds this as `GGUFFile.meta`). */
export function metaMap(entries: GGUFEntry[]): Map<string, GGUFEntry> {
  return new Map(entries.map((e) => [e.key, e]));
}

// Typed getters. A missing key or a value of the wrong kind is `gguf.bad-metadata`.
type Meta = Map<string, GGUFEntry>;

const wrongKind = (key: string, expected: string, entry: GGUFEntry): never =>
  refuse("gguf.bad-metadata", `key ${key}: expected ${expected}, found ${typeName(entry.type)}`);

function required<T>(meta: Meta, key: string, get: (meta: Meta, key: string) => T | undefined): T {
  const value = get(meta, key);
  if (value === undefined) throw new PsionicError("gguf.missing-key", `key ${key}: required but not present`);
  return value;
}

export function metaStringOptional(meta: Meta, key: string): string | undefined {
  const entry = meta.get(key);
  if (!entry) return undefined;
  if (entry.type !== GGUFValueType.STRING) wrongKind(key, "a string", entry);
  return entry.value as string;
}

/** Any integer or float type, as a number; 64-bit values must fit a safe integer. */
export function metaNumberOptional(meta: Meta, key: string): number | undefined {
  const entry = meta.get(key);
  if (!entry) return undefined;
  if (typeof entry.value === "number") return entry.value;
  if (typeof entry.value === "bigint") {
    if (entry.value > BigInt(Number.MAX_SAFE_INTEGER) || entry.value < BigInt(Number.MIN_SAFE_INTEGER)) {
      refuse("gguf.bad-metadata", `key ${key}: ${entry.value} does not fit a safe integer`);
    }
    return Number(entry.value);
  }
  return wrongKind(key, "a number", entry);
}

/** Like metaNumberOptional but refuses floats and non-integral values. */
export function metaIntegerOptional(meta: Meta, key: string): number | undefined {
  const entry = meta.get(key);
  if (!entry) return undefined;
  if (entry.type === GGUFValueType.FLOAT32 || entry.type === GGUFValueType.FLOAT64 || (typeof entry.value !== "number" && typeof entry.value !== "bigint")) {
    wrongKind(key, "an integer", entry);
  }
  return metaNumberOptional(meta, key);
}

export function metaBoolOptional(meta: Meta, key: string): boolean | undefined {
  const entry = meta.get(key);
  if (!entry) return undefined;
  if (entry.type !== GGUFValueType.BOOL) wrongKind(key, "a bool", entry);
  return entry.value as boolean;
}

export function metaArrayOptional(meta: Meta, key: string): GGUFValue[] | undefined {
  const entry = meta.get(key);
  if (!entry) return undefined;
  if (!isArray(entry.value)) wrongKind(key, "an array", entry);
  return (entry.value as GGUFArray).items;
}

/** An array whose items are strings (e.g. tokenizer.ggml.tokens). */
export function metaStringArrayOptional(meta: Meta, key: string): string[] | undefined {
  const entry = meta.get(key);
  if (!entry) return undefined;
  if (!isArray(entry.value) || entry.value.itemType !== GGUFValueType.STRING) wrongKind(key, "an array of strings", entry);
  return (entry.value as GGUFArray).items as string[];
}

/** An array whose items are numbers of any numeric type (e.g. tokenizer.ggml.scores). */
export function metaNumberArrayOptional(meta: Meta, key: string): number[] | undefined {
  const entry = meta.get(key);
  if (!entry) return undefined;
  if (!isArray(entry.value) || SCALAR_SIZE[entry.value.itemType] === undefined || entry.value.itemType === GGUFValueType.BOOL) {
    wrongKind(key, "an array of numbers", entry);
  }
  return (entry.value as GGUFArray).items.map((v) => Number(v));
}

export const metaString = (meta: Meta, key: string): string => required(meta, key, metaStringOptional);
export const metaNumber = (meta: Meta, key: string): number => required(meta, key, metaNumberOptional);
export const metaInteger = (meta: Meta, key: string): number => required(meta, key, metaIntegerOptional);
export const metaBool = (meta: Meta, key: string): boolean => required(meta, key, metaBoolOptional);
export const metaArray = (meta: Meta, key: string): GGUFValue[] => required(meta, key, metaArrayOptional);
export const metaStringArray = (meta: Meta, key: string): string[] => required(meta, key, metaStringArrayOptional);
export const metaNumberArray = (meta: Meta, key: string): number[] => required(meta, key, metaNumberArrayOptional);
