import { describe, expect, it } from "bun:test";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync, ftruncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PsionicError } from "../util/errors.ts";
import { GGUFValueType, kv, type GGUFEntry } from "./metadata.ts";
import { contentsOf, openGGUF, parseGGUF } from "./reader.ts";
import { randomContents, seededRng } from "./sample-files.ts";
import { GGMLType } from "./types.ts";
import { layoutGGUF, serializeGGUF, writeGGUF, type GGUFContents } from "./writer.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof PsionicError) return error.code;
    throw error;
  }
  return "no error";
}

const f32Tensor = (name: string, dims: number[], fill = 1) =>
  ({ name, dims, type: GGMLType.F32, data: new Uint8Array(new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(fill).buffer) });

describe("GGUF writer and reader round trip", () => {
  it("reproduces 400 random files byte for byte (v2/v3, alignments 1/8/32/64/default, every value type, nested arrays, several tensor types)", () => {
    const rng = seededRng(1);
    const seen = { v2: 0, v3: 0, nested: 0, tensors: 0, alignments: new Set<number>() };
    for (let i = 0; i < 400; i++) {
      const contents = randomContents(rng);
      const bytes = serializeGGUF(contents);
      const file = parseGGUF(bytes);
      expect(file.version).toBe(contents.version ?? 3);
      expect(file.metadata.map((e) => e.key)).toEqual(contents.metadata.map((e) => e.key));
      expect(file.metadata.map((e) => e.type)).toEqual(contents.metadata.map((e) => e.type));
      expect(file.tensors.map((t) => t.name)).toEqual(contents.tensors.map((t) => t.name));
      for (const [j, t] of file.tensors.entries()) expect(file.tensorData(t)).toEqual(contents.tensors[j]!.data as Uint8Array);
      expect(serializeGGUF(contentsOf(file))).toEqual(bytes);
      seen[file.version === 2 ? "v2" : "v3"]++;
      seen.tensors += file.tensors.length;
      seen.alignments.add(file.alignment);
      if (file.metadata.some((e) => e.type === GGUFValueType.ARRAY && (e.value as { itemType: number }).itemType === GGUFValueType.ARRAY)) seen.nested++;
    }
    expect(seen.v2).toBeGreaterThan(100);
    expect(seen.v3).toBeGreaterThan(100);
    expect(seen.nested).toBeGreaterThan(20);
    expect(seen.tensors).toBeGreaterThan(500);
    expect([...seen.alignments].sort((a, b) => a - b)).toEqual([1, 8, 32, 64]);
  });

  it("reads back every value type exactly, including extremes, -0, NaN, empty strings and arrays, unicode keys", () => {
    const metadata: GGUFEntry[] = [
      kv.u8("u8", 255), kv.i8("i8", -128), kv.u16("u16", 65535), kv.i16("i16", -32768),
      kv.u32("u32", 4294967295), kv.i32("i32", -2147483648), kv.f32("f32", -0), kv.bool("yes", true), kv.bool("no", false),
      kv.str("empty", ""), kv.str("ключ 🦙", "значение 🦙"), kv.u64("u64", 0xffffffffffffffffn), kv.i64("i64", -0x8000000000000000n),
      kv.f64("f64", NaN), kv.f64("tiny", Number.MIN_VALUE), kv.f32("inf", -Infinity),
      kv.arr("no items", GGUFValueType.STRING, []),
      kv.arr("nested", GGUFValueType.ARRAY, [{ itemType: GGUFValueType.UINT64, items: [1n, 2n] }, { itemType: GGUFValueType.BOOL, items: [] }]),
    ];
    const file = parseGGUF(serializeGGUF({ metadata, tensors: [] }));
    expect(file.metadata).toEqual(metadata);
    expect(Object.is(file.meta.get("f32")!.value, -0)).toBe(true);
    expect(file.tensors).toEqual([]);
  });

  it("stores u64/i64 given as safe-integer numbers, reading them back as bigint", () => {
    const file = parseGGUF(serializeGGUF({ metadata: [kv.u64("n", 12), kv.i64("m", -5)], tensors: [] }));
    expect(file.meta.get("n")!.value).toBe(12n);
    expect(file.meta.get("m")!.value).toBe(-5n);
  });

  it("places each tensor at the running offset rounded up to the alignment, with zero padding", () => {
    const contents: GGUFContents = { metadata: [kv.u32("general.alignment", 64)], tensors: [(f32Tensor("a", [3])), (f32Tensor("b", [5], 2))] };
    const bytes = serializeGGUF(contents);
    const file = parseGGUF(bytes);
    expect(file.dataOffset % 64).toBe(0);
    expect(file.tensors.map((t) => t.offset)).toEqual([0, 64]);
    expect(bytes.length).toBe(file.dataOffset + 128);
    expect([...bytes.subarray(file.dataOffset + 12, file.dataOffset + 64)].every((b) => b === 0)).toBe(true);
  });

  it("records a non-default alignment given as an option in general.alignment, and refuses one that contradicts it", () => {
    const file = parseGGUF(serializeGGUF({ metadata: [], tensors: [(f32Tensor("a", [3]))], alignment: 8 }));
    expect(file.alignment).toBe(8);
    expect(file.meta.get("general.alignment")).toEqual(kv.u32("general.alignment", 8));
    expect(parseGGUF(serializeGGUF({ metadata: [], tensors: [], alignment: 32 })).metadata).toEqual([]);
    expect(codeOf(() => serializeGGUF({ metadata: [kv.u32("general.alignment", 64)], tensors: [], alignment: 8 }))).toBe("gguf.bad-alignment");
    expect(codeOf(() => serializeGGUF({ metadata: [], tensors: [], alignment: 48 }))).toBe("gguf.bad-alignment");
    expect(codeOf(() => serializeGGUF({ metadata: [kv.u64("general.alignment", 32n)], tensors: [] }))).toBe("gguf.bad-alignment");
  });
});

describe("GGUF writer refusals", () => {
  const t = f32Tensor("t", [4]);
  const cases: [string, GGUFContents, string][] = [
    ["version 1", { version: 1 as 2, metadata: [], tensors: [] }, "gguf.version"],
    ["an empty key", { metadata: [kv.u8("", 1)], tensors: [] }, "gguf.bad-key"],
    ["a duplicate key", { metadata: [kv.u8("k", 1), kv.str("k", "x")], tensors: [] }, "gguf.duplicate-key"],
    ["u8 out of range", { metadata: [kv.u8("k", 256)], tensors: [] }, "gguf.bad-value"],
    ["i32 not an integer", { metadata: [kv.i32("k", 1.5)], tensors: [] }, "gguf.bad-value"],
    ["u64 negative", { metadata: [kv.u64("k", -1n)], tensors: [] }, "gguf.bad-value"],
    ["a string holding a lone surrogate", { metadata: [kv.str("k", "\ud800")], tensors: [] }, "gguf.bad-value"],
    ["a string where a bool belongs", { metadata: [{ key: "k", type: GGUFValueType.BOOL, value: "yes" }], tensors: [] }, "gguf.bad-value"],
    ["an array item of the wrong type", { metadata: [kv.arr("k", GGUFValueType.UINT8, [1, "2"])], tensors: [] }, "gguf.bad-value"],
    ["an unknown value type", { metadata: [{ key: "k", type: 13 as GGUFValueType, value: 1 }], tensors: [] }, "gguf.bad-value"],
    ["arrays nested 9 deep", { metadata: [kv.arr("k", GGUFValueType.ARRAY, [nest(8)])], tensors: [] }, "gguf.bad-value"],
    ["a duplicate tensor", { metadata: [], tensors: [t, t] }, "gguf.duplicate-tensor"],
    ["a 64-byte tensor name", { metadata: [], tensors: [{ ...t, name: "x".repeat(64) }] }, "gguf.bad-tensor"],
    ["5 dims", { metadata: [], tensors: [{ ...t, dims: [1, 1, 1, 1, 4] }] }, "gguf.bad-tensor"],
    ["a negative dim", { metadata: [], tensors: [{ ...t, dims: [-4] }] }, "gguf.bad-tensor"],
    ["an unknown type id", { metadata: [], tensors: [{ ...t, type: 4 as GGMLType }] }, "gguf.bad-tensor"],
    ["a q8_0 row of 16", { metadata: [], tensors: [{ name: "q", dims: [16], type: GGMLType.Q8_0, data: new Uint8Array(17) }] }, "gguf.bad-tensor"],
    ["data shorter than the shape", { metadata: [], tensors: [{ ...t, data: new Uint8Array(15) }] }, "gguf.bad-tensor"],
  ];
  for (const [what, contents, code] of cases) {
    it(`refuses ${what} with ${code}`, () => expect(codeOf(() => serializeGGUF(contents))).toBe(code));
  }
});

function nest(depth: number): { itemType: GGUFValueType; items: any[] } {
  return depth === 1 ? { itemType: GGUFValueType.UINT8, items: [1] } : { itemType: GGUFValueType.ARRAY, items: [nest(depth - 1)] };
}

describe("writeGGUF", () => {
  const dir = mkdtempSync(join(tmpdir(), "psionic-gguf-writer-"));

  it("writes the same bytes as serializeGGUF, calling lazy tensors one at a time in order, reporting progress to the total", () => {
    const rng = seededRng(5);
    const contents = randomContents(rng, { maxTensors: 0 });
    const calls: string[] = [];
    const progress: [number, number][] = [];
    const datas = [3, 4, 5].map((n, i) => new Uint8Array(4 * n).fill(i + 1));
    // Each thunk runs only after everything before it is on disk (one progress report per earlier tensor, plus the header).
    const tensors = ["a", "b", "c"].map((name, i) => ({
      name, dims: [i + 3], type: GGMLType.F32,
      data: () => { calls.push(name); expect(progress.length).toBe(i + 1); return datas[i]!; },
    }));
    const path = join(dir, "lazy.gguf");
    writeGGUF(path, { ...contents, tensors }, (done, total) => progress.push([done, total]));
    expect(calls).toEqual(["a", "b", "c"]);
    const eager = serializeGGUF({ ...contents, tensors: tensors.map((t, i) => ({ ...t, data: datas[i]! })) });
    expect(Buffer.compare(readFileSync(path), eager)).toBe(0);
    expect(progress.at(-1)).toEqual([eager.length, eager.length]);
    expect(progress.map(([d]) => d)).toEqual([...progress.map(([d]) => d)].sort((x, y) => x - y));
  });

  it("leaves the old file intact and no temp file behind when a tensor fails mid-write", () => {
    const path = join(dir, "atomic.gguf");
    writeFileSync(path, "old contents");
    const failing = { name: "boom", dims: [4], type: GGMLType.F32, data: (): Uint8Array => { throw new PsionicError("test.boom", "tensor source failed"); } };
    expect(codeOf(() => writeGGUF(path, { metadata: [kv.str("k", "v")], tensors: [(f32Tensor("ok", [4])), failing] }))).toBe("test.boom");
    expect(readFileSync(path, "utf8")).toBe("old contents");
    expect(readdirSync(dir).filter((f) => f.includes("atomic"))).toEqual(["atomic.gguf"]);
  });

  it("rewrites a file in place from its own mapping (the old inode stays mapped until the rename)", () => {
    const path = join(dir, "in-place.gguf");
    const contents = randomContents(seededRng(9), { maxTensors: 4 });
    writeGGUF(path, contents);
    const before = readFileSync(path);
    writeGGUF(path, contentsOf(openGGUF(path)));
    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
    expect(Buffer.compare(before, serializeGGUF(contents))).toBe(0);
  });

  it("refuses a path in a missing directory with gguf.write-failed", () => {
    expect(codeOf(() => writeGGUF(join(dir, "no", "such", "x.gguf"), { metadata: [], tensors: [] }))).toBe("gguf.write-failed");
  });

  it("opens a 6.5 GB sparse file through windowed mappings without reading it", () => {
    // Tensor b sits past the first 4 GiB, the most one typed array can view.
    const big = 2.5 * 2 ** 30;
    const contents: GGUFContents = {
      metadata: [kv.str("general.architecture", "llama")],
      tensors: [
        { name: "a", dims: [big], type: GGMLType.I8, data: () => { throw new Error("not read"); } },
        { name: "b", dims: [big + 64], type: GGMLType.I8, data: () => { throw new Error("not read"); } },
        { name: "c", dims: [2 ** 30 + 8], type: GGMLType.I8, data: () => { throw new Error("not read"); } },
      ],
    };
    const layout = layoutGGUF(contents);
    const path = join(dir, "sparse.gguf");
    const fd = openSync(path, "w");
    writeSync(fd, layout.header);
    ftruncateSync(fd, layout.totalBytes);
    const mark = layout.dataOffset + layout.tensors[2]!.offset + 5;
    writeSync(fd, new Uint8Array([42]), 0, 1, mark);
    closeSync(fd);
    const start = performance.now();
    const file = openGGUF(path);
    expect(performance.now() - start).toBeLessThan(2000);
    expect(file.size).toBe(layout.totalBytes);
    expect(file.bytes.length).toBe(2 ** 32);
    const b = file.tensorData(file.tensorsByName.get("b")!);
    expect(b.length).toBe(big + 64);
    expect(b[b.length - 1]).toBe(0);
    expect(file.tensorData(file.tensorsByName.get("c")!)[5]).toBe(42);
    rmSync(path);
  });

  it("refuses a missing file with gguf.open-failed", () => {
    expect(codeOf(() => openGGUF(join(dir, "absent.gguf")))).toBe("gguf.open-failed");
    expect(() => openGGUF(join(dir, "absent.gguf"))).toThrow(/absent\.gguf: no such file$/);
    expect(() => openGGUF(dir)).toThrow(/is a directory, not a GGUF file$/);
    expect(existsSync(join(dir, "absent.gguf"))).toBe(false);
  });
});
