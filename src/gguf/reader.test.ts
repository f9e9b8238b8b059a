// Hostile files: each one is built byte by byte, so the test shows exactly what is wrong in it.
import { describe, expect, it } from "bun:test";
import { PsionicError } from "../util/errors.ts";
import { GGUFValueType, kv } from "./metadata.ts";
import { parseGGUF } from "./reader.ts";
import { randomContents, seededRng } from "./sample-files.ts";
import { GGMLType } from "./types.ts";
import { serializeGGUF } from "./writer.ts";

function refusal(bytes: Uint8Array, source?: string): PsionicError {
  try {
    parseGGUF(bytes, source);
  } catch (error) {
    if (error instanceof PsionicError) return error;
    throw error;
  }
  throw new Error("parsed without a refusal");
}
const codeOf = (bytes: Uint8Array) => refusal(bytes).code;

// Little-endian encoders for hand-built files.
const u32 = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0, true); return b; };
const i32 = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setInt32(0, v, true); return b; };
const u64 = (v: bigint | number) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true); return b; };
const raw = (s: string) => new TextEncoder().encode(s);
const str = (s: string | Uint8Array) => { const b = typeof s === "string" ? raw(s) : s; return cat(u64(b.length), b); };
const cat = (...parts: Uint8Array[]) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let at = 0; for (const p of parts) { out.set(p, at); at += p.length; } return out; };
const zeros = (n: number) => new Uint8Array(n);
const padTo = (b: Uint8Array, a = 32) => cat(b, zeros((a - (b.length % a)) % a));

const MAGIC = raw("GGUF");
const header = (nTensors: bigint | number, nKv: bigint | number, version = 3) => cat(MAGIC, u32(version), u64(nTensors), u64(nKv));
const entry = (key: string, type: number, value: Uint8Array) => cat(str(key), u32(type), value);
const info = (name: string, dims: (number | bigint)[], type: number, offset: bigint | number) => cat(str(name), u32(dims.length), ...dims.map(u64), i32(type), u64(offset));
/** A complete file: header, entries, tensor infos, padding, data. */
const file = (entries: Uint8Array[], infos: Uint8Array[], data: Uint8Array = zeros(0), align = 32) =>
  cat(padTo(cat(header(infos.length, entries.length), ...entries, ...infos), align), data);

describe("GGUF reader accepts hand-built files", () => {
  it("parses a minimal file with two tensors and reports their offsets", () => {
    const f = parseGGUF(file([entry("general.architecture", GGUFValueType.STRING, str("llama"))], [info("a", [4], GGMLType.F32, 0), info("b", [32], GGMLType.Q8_0, 32)], zeros(32 + 64)));
    expect(f.tensors.map((t) => [t.name, t.offset, t.nbytes])).toEqual([["a", 0, 16], ["b", 32, 34]]);
    expect(f.meta.get("general.architecture")!.value).toBe("llama");
  });

  it("accepts zero-element tensors and dimension-less (scalar) tensors, as ggml does", () => {
    const f = parseGGUF(file([], [info("empty", [0, 7], GGMLType.F32, 0), info("scalar", [], GGMLType.F32, 0)], zeros(32)));
    expect(f.tensors.map((t) => [t.elements, t.nbytes])).toEqual([[0, 0], [1, 4]]);
  });
});

describe("GGUF reader refuses hostile files", () => {
  const good = file([entry("k", GGUFValueType.UINT32, u32(1))], [info("a", [4], GGMLType.F32, 0)], zeros(32));

  it("bad magic", () => {
    expect(codeOf(cat(raw("GGML"), good.subarray(4)))).toBe("gguf.bad-magic");
    expect(codeOf(zeros(0))).toBe("gguf.bad-magic");
    expect(codeOf(raw("GG"))).toBe("gguf.bad-magic");
  });

  it("names the file in the message", () => {
    expect(refusal(raw("nope"), "model.gguf").message).toStartWith("model.gguf: not a GGUF file");
  });

  it("version 1, version 0, version 4, and a big-endian file", () => {
    const withVersion = (v: number) => cat(MAGIC, u32(v), good.subarray(8));
    expect(refusal(withVersion(1)).message).toContain("version 1 is no longer supported");
    expect(codeOf(withVersion(0))).toBe("gguf.version");
    expect(codeOf(withVersion(4))).toBe("gguf.version");
    expect(refusal(withVersion(0x03000000)).message).toContain("big-endian");
  });

  it("a file cut at any byte: header fields give gguf.truncated, counts that no longer fit give gguf.bad-count", () => {
    const rng = seededRng(11);
    for (let f = 0; f < 6; f++) {
      const bytes = serializeGGUF(randomContents(rng));
      for (let cut = 0; cut < bytes.length; cut++) {
        const code = codeOf(bytes.subarray(0, cut));
        if (cut < 4) expect(code).toBe("gguf.bad-magic");
        else if (cut < 24) expect(code).toBe("gguf.truncated");
        else expect(["gguf.truncated", "gguf.bad-count"]).toContain(code);
      }
    }
  });

  it("tensor data cut short", () => {
    expect(refusal(good.subarray(0, good.length - 20)).message).toMatch(/tensor a: 16 bytes of data .* run past the end/);
    expect(codeOf(good.subarray(0, good.length - 1))).toBe("gguf.truncated"); // padding after the last tensor is part of the file
  });

  it("counts far past the end of the file, before allocating anything", () => {
    const start = performance.now();
    expect(codeOf(cat(header(0, 2n ** 60n)))).toBe("gguf.bad-count");
    expect(codeOf(cat(header(2n ** 60n, 0)))).toBe("gguf.bad-count");
    expect(codeOf(cat(header(-1n, 0)))).toBe("gguf.bad-count");
    expect(codeOf(cat(header(0, 1), str("k"), u32(GGUFValueType.ARRAY), u32(GGUFValueType.UINT8), u64(2n ** 60n)))).toBe("gguf.bad-count");
    expect(codeOf(cat(header(0, 1), str("k"), u32(GGUFValueType.ARRAY), u32(GGUFValueType.STRING), u64(2n ** 62n), zeros(64)))).toBe("gguf.bad-count");
    expect(codeOf(cat(header(0, 1), u64(2n ** 60n), raw("key")))).toBe("gguf.bad-count");
    expect(codeOf(cat(header(0, 1), str("k"), u32(GGUFValueType.STRING), u64(0xffffffffffffffffn)))).toBe("gguf.bad-count");
    expect(codeOf(cat(header(1, 0), u64(2n ** 40n), zeros(30)))).toBe("gguf.bad-count");
    expect(performance.now() - start).toBeLessThan(100);
  });

  it("an unknown value type, an unknown array item type", () => {
    expect(refusal(file([entry("k", 13, u32(1))], [])).message).toContain("key k at offset 33 has unknown value type 13");
    expect(codeOf(file([entry("k", GGUFValueType.ARRAY, cat(u32(99), u64(0)))], []))).toBe("gguf.bad-type");
  });

  it("an empty key, a duplicate key", () => {
    expect(codeOf(file([entry("", GGUFValueType.UINT8, zeros(1))], []))).toBe("gguf.bad-key");
    expect(refusal(file([entry("k", GGUFValueType.UINT8, zeros(1)), entry("k", GGUFValueType.UINT8, zeros(1))], [])).code).toBe("gguf.duplicate-key");
  });

  it("values that would not survive a rewrite: bool 2, invalid UTF-8, NaN with a payload", () => {
    expect(codeOf(file([entry("b", GGUFValueType.BOOL, new Uint8Array([2]))], []))).toBe("gguf.bad-value");
    expect(codeOf(file([entry("s", GGUFValueType.STRING, str(new Uint8Array([0x61, 0xff])))], []))).toBe("gguf.bad-string");
    expect(codeOf(file([entry("f", GGUFValueType.FLOAT32, u32(0x7fc00001))], []))).toBe("gguf.bad-value");
    expect(codeOf(file([entry("f", GGUFValueType.FLOAT64, u64(0xfff8000000000000n))], []))).toBe("gguf.bad-value");
    expect(parseGGUF(file([entry("f", GGUFValueType.FLOAT32, u32(0x7fc00000))], [])).meta.get("f")!.value).toBeNaN();
  });

  it("arrays nested past 8 levels, even 100,000 deep, without a stack overflow", () => {
    const nested = (depth: number) => cat(...Array.from({ length: depth - 1 }, () => cat(u32(GGUFValueType.ARRAY), u64(1))), u32(GGUFValueType.UINT8), u64(0));
    expect(parseGGUF(file([entry("k", GGUFValueType.ARRAY, nested(8))], [])).metadata.length).toBe(1);
    expect(codeOf(file([entry("k", GGUFValueType.ARRAY, nested(9))], []))).toBe("gguf.too-deep");
    expect(codeOf(file([entry("k", GGUFValueType.ARRAY, nested(100_000))], []))).toBe("gguf.too-deep");
  });

  it("general.alignment of the wrong type, zero, or not a power of two", () => {
    expect(codeOf(file([entry("general.alignment", GGUFValueType.UINT64, u64(32))], []))).toBe("gguf.bad-alignment");
    expect(codeOf(file([entry("general.alignment", GGUFValueType.UINT32, u32(0))], []))).toBe("gguf.bad-alignment");
    expect(codeOf(file([entry("general.alignment", GGUFValueType.UINT32, u32(48))], []))).toBe("gguf.bad-alignment");
  });

  it("a duplicate tensor name, a name of 64 bytes", () => {
    expect(codeOf(file([], [info("a", [4], GGMLType.F32, 0), info("a", [4], GGMLType.F32, 32)], zeros(64)))).toBe("gguf.duplicate-tensor");
    expect(codeOf(file([], [info("n".repeat(64), [4], GGMLType.F32, 0)], zeros(32)))).toBe("gguf.bad-tensor");
    expect(parseGGUF(file([], [info("n".repeat(63), [4], GGMLType.F32, 0)], zeros(32))).tensors.length).toBe(1);
  });

  it("more than 4 dims, a negative dim, dims whose product overflows, a dim past 2^53", () => {
    expect(refusal(file([], [info("t", [1, 1, 1, 1, 4], GGMLType.F32, 0)], zeros(32))).message).toContain("tensor t (info at offset 24): 5 dimensions");
    expect(codeOf(file([], [info("t", [-4n], GGMLType.F32, 0)], zeros(32)))).toBe("gguf.bad-tensor");
    expect(codeOf(file([], [info("t", [2n ** 40n, 2n ** 40n], GGMLType.F32, 0)], zeros(32)))).toBe("gguf.bad-tensor");
    expect(codeOf(file([], [info("t", [0, 2n ** 62n], GGMLType.F32, 0)], zeros(32)))).toBe("gguf.bad-tensor");
  });

  it("unknown tensor type ids", () => {
    for (const id of [4, 5, 31, 36, 99, -1]) {
      expect(refusal(file([], [info("t", [32], id, 0)], zeros(160))).message).toContain(`unknown ggml type id ${id}`);
    }
  });

  it("a row that is not a whole number of blocks", () => {
    expect(refusal(file([], [info("q", [16, 2], GGMLType.Q8_0, 0)], zeros(64))).message).toContain("row of 16 elements is not a multiple of the q8_0 block size 32");
    expect(codeOf(file([], [info("k", [128], GGMLType.Q4_K, 0)], zeros(160)))).toBe("gguf.bad-tensor");
  });

  it("tensor data misaligned, overlapping, with a gap, in another order than the infos, or past the end", () => {
    const two = (offA: number, offB: number) => file([], [info("a", [4], GGMLType.F32, offA), info("b", [4], GGMLType.F32, offB)], zeros(64));
    expect(codeOf(two(0, 16))).toBe("gguf.misaligned");
    expect(refusal(two(0, 0)).message).toContain("tensor b: data offset 0 overlaps tensor a");
    expect(codeOf(two(0, 64))).toBe("gguf.bad-offset");
    expect(codeOf(two(32, 0))).toBe("gguf.bad-offset");
    expect(codeOf(file([], [info("a", [4], GGMLType.F32, 2n ** 63n)], zeros(32)))).toBe("gguf.bad-offset");
    expect(codeOf(file([], [info("a", [1024], GGMLType.F32, 0)], zeros(64)))).toBe("gguf.truncated");
  });

  it("non-zero padding and bytes after the data section", () => {
    const padded = new Uint8Array(good);
    padded[padded.length - 1] = 7;
    expect(refusal(padded).message).toContain(`padding after tensor a: byte at offset ${padded.length - 1} is 7`);
    const beforeData = new Uint8Array(good);
    beforeData[good.length - 33] = 1;
    expect(codeOf(beforeData)).toBe("gguf.bad-padding");
    expect(codeOf(cat(good, zeros(1)))).toBe("gguf.trailing-bytes");
    expect(codeOf(cat(serializeGGUF({ metadata: [kv.str("a", "b")], tensors: [] }), zeros(32)))).toBe("gguf.trailing-bytes");
  });
});
