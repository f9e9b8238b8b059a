// llama.cpp is the oracle: ggml's own GGUF parser (gguf_init_from_buffer in the libggml-base
// that node-llama-cpp ships) must accept what we write, lay it out identically and encode the
// header to the same bytes; and it must never refuse a file our reader accepts (we are
// stricter in documented ways: padding, trailing bytes, bool bytes, UTF-8, NaN payloads).
import { describe, expect, it } from "bun:test";
import { dlopen, JSCallback, ptr, type Pointer } from "bun:ffi";
import { GGML_BASE_LIBRARY } from "../../ffi/ggml-oracle.ts";
import { PsionicError } from "../util/errors.ts";
import { GGUFValueType } from "./metadata.ts";
import { parseGGUF } from "./reader.ts";
import { randInt, randomContents, seededRng } from "./sample-files.ts";
import { serializeGGUF, type GGUFContents } from "./writer.ts";

const lib = dlopen(GGML_BASE_LIBRARY, {
  // struct gguf_init_params { bool no_alloc; ggml_context ** ctx; } is passed by value in two
  // integer registers on x86-64 SysV, so it is declared here as two u64 arguments.
  gguf_init_from_buffer: { args: ["ptr", "u64", "u64", "u64"], returns: "ptr" },
  gguf_free: { args: ["ptr"], returns: "void" },
  gguf_get_version: { args: ["ptr"], returns: "u32" },
  gguf_get_alignment: { args: ["ptr"], returns: "u64" },
  gguf_get_data_offset: { args: ["ptr"], returns: "u64" },
  gguf_get_n_kv: { args: ["ptr"], returns: "i64" },
  gguf_get_n_tensors: { args: ["ptr"], returns: "i64" },
  gguf_get_tensor_offset: { args: ["ptr", "i64"], returns: "u64" },
  gguf_get_tensor_size: { args: ["ptr", "i64"], returns: "u64" },
  gguf_get_meta_size: { args: ["ptr"], returns: "u64" },
  gguf_get_meta_data: { args: ["ptr", "ptr"], returns: "void" },
  ggml_log_set: { args: ["function", "ptr"], returns: "void" },
});
// ggml logs every refusal to stderr; the fuzz below makes thousands on purpose.
const quiet = new JSCallback(() => {}, { args: ["i32", "ptr", "ptr"], returns: "void" });
lib.symbols.ggml_log_set(quiet.ptr, null);

interface GgmlView { version: number; alignment: number; dataOffset: number; nKv: number; offsets: number[]; sizes: number[]; meta: Uint8Array }

/**
 * What ggml makes of `bytes`, or null when it refuses the file. `withHeader` also asks ggml to
 * re-encode the header; skipped for mutated files, where ggml accepts a zero-tensor file
 * declaring a 2^31 alignment and would then build 2 GiB of padding.
 */
function ggmlParse(bytes: Uint8Array, withHeader = true): GgmlView | null {
  const buf = bytes.length > 0 ? bytes : new Uint8Array(1);
  const ctx = lib.symbols.gguf_init_from_buffer(ptr(buf), bytes.length, 1, 0) as Pointer | null;
  if (!ctx) return null;
  try {
    const s = lib.symbols;
    const n = Number(s.gguf_get_n_tensors(ctx));
    const meta = new Uint8Array(withHeader ? Number(s.gguf_get_meta_size(ctx)) : 0);
    if (meta.length > 0) s.gguf_get_meta_data(ctx, ptr(meta));
    return {
      version: s.gguf_get_version(ctx), alignment: Number(s.gguf_get_alignment(ctx)), dataOffset: Number(s.gguf_get_data_offset(ctx)),
      nKv: Number(s.gguf_get_n_kv(ctx)),
      offsets: Array.from({ length: n }, (_, i) => Number(s.gguf_get_tensor_offset(ctx, i))),
      sizes: Array.from({ length: n }, (_, i) => Number(s.gguf_get_tensor_size(ctx, i))),
      meta,
    };
  } finally {
    lib.symbols.gguf_free(ctx);
  }
}

/**
 * Random contents in the subset ggml can express: no nested arrays (ggml refuses them), and
 * dims without trailing 1s (ggml rewrites a tensor's dims to its minimal count when it writes).
 */
function ggmlShaped(contents: GGUFContents): GGUFContents {
  const metadata = contents.metadata.filter((e) => !(e.type === GGUFValueType.ARRAY && (e.value as { itemType: number }).itemType === GGUFValueType.ARRAY));
  const tensors = contents.tensors.map((t) => {
    const dims = [...t.dims];
    while (dims.length > 1 && dims.at(-1) === 1) dims.pop();
    return { ...t, dims: dims.length === 0 ? [1] : dims };
  });
  return { ...contents, metadata, tensors };
}

describe("agreement with ggml's GGUF parser", () => {
  it("ggml reads 300 written files with the same version, alignment, data offset, tensor offsets and sizes, and the same header bytes", () => {
    const rng = seededRng(3);
    for (let i = 0; i < 300; i++) {
      const bytes = serializeGGUF(ggmlShaped(randomContents(rng)));
      const ours = parseGGUF(bytes);
      const theirs = ggmlParse(bytes);
      expect(theirs).not.toBeNull();
      expect(theirs!.version).toBe(ours.version);
      expect(theirs!.alignment).toBe(ours.alignment);
      expect(theirs!.nKv).toBe(ours.metadata.length);
      expect(theirs!.offsets).toEqual(ours.tensors.map((t) => t.offset));
      expect(theirs!.sizes).toEqual(ours.tensors.map((t) => t.nbytes));
      // ggml re-encodes the whole header (magic to padding) from what it parsed.
      expect(theirs!.meta).toEqual(bytes.subarray(0, ours.dataOffset));
      if (ours.tensors.length > 0) expect(theirs!.dataOffset).toBe(ours.dataOffset);
    }
  });

  it("ggml accepts every mutated file our reader accepts (20,000 seeded mutations), and the count it alone accepts is reported", () => {
    const rng = seededRng(99);
    const onlyGgml = new Map<string, number>();
    let bothAccept = 0;
    let bothRefuse = 0;
    for (let f = 0; f < 20; f++) {
      const original = serializeGGUF(ggmlShaped(randomContents(rng, { maxKeys: 8, maxTensors: 3 })));
      const headerEnd = parseGGUF(original).dataOffset;
      for (let m = 0; m < 1000; m++) {
        const mutated = new Uint8Array(original);
        const p = randInt(rng, 0, headerEnd - 1);
        if (rng() < 0.5) mutated[p] = randInt(rng, 0, 255);
        else if (p + 8 <= mutated.length) new DataView(mutated.buffer).setBigUint64(p, BigInt(randInt(rng, 0, 2 ** 31)) << BigInt(randInt(rng, 0, 33)), true);
        let ours: string = "accepted";
        try {
          parseGGUF(mutated);
        } catch (error) {
          if (!(error instanceof PsionicError)) throw error;
          ours = error.code;
        }
        const theirs = ggmlParse(mutated, false) !== null;
        if (ours === "accepted") {
          if (!theirs) throw new Error(`file ${f} mutation ${m}: we accept, ggml refuses`);
          bothAccept++;
        } else if (theirs) onlyGgml.set(ours, (onlyGgml.get(ours) ?? 0) + 1);
        else bothRefuse++;
      }
    }
    console.log(`ggml agreement: both accept ${bothAccept}, both refuse ${bothRefuse}, only ggml accepts (by our refusal): ${JSON.stringify(Object.fromEntries(onlyGgml))}`);
    expect(bothAccept).toBeGreaterThan(500);
    expect(bothRefuse).toBeGreaterThan(5000);
  }, 60_000);

  it("ggml also refuses the hostile files our reader refuses for reasons ggml shares", () => {
    const good = serializeGGUF({ metadata: [], tensors: [{ name: "a", dims: [4], type: 0, data: new Uint8Array(16) }] });
    const patched = (at: number, write: (v: DataView) => void) => { const b = new Uint8Array(good); write(new DataView(b.buffer, at)); return b; };
    const hostile = [
      patched(0, (v) => v.setUint8(0, 0x58)), // magic
      patched(4, (v) => v.setUint32(0, 1, true)), // version 1
      patched(8, (v) => v.setBigUint64(0, 2n ** 60n, true)), // tensor count
      patched(16, (v) => v.setBigUint64(0, 2n ** 60n, true)), // kv count
      patched(24, (v) => v.setBigUint64(0, 2n ** 60n, true)), // name length
      patched(33, (v) => v.setUint32(0, 5, true)), // n_dims
      patched(37, (v) => v.setBigInt64(0, -4n, true)), // dim
      patched(45, (v) => v.setInt32(0, 4, true)), // type id
      patched(49, (v) => v.setBigUint64(0, 32n, true)), // offset
      good.subarray(0, 40),
    ];
    for (const bytes of hostile) {
      expect(() => parseGGUF(bytes)).toThrow(PsionicError);
      expect(ggmlParse(bytes)).toBeNull();
    }
    expect(ggmlParse(good)).not.toBeNull();
  });
});

