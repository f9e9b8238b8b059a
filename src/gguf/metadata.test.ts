import { describe, expect, it } from "bun:test";
import {
  GGUFValueType, kv, metaArray, metaArrayOptional, metaBool, metaInteger, metaIntegerOptional, metaMap, metaNumber,
  metaNumberArray, metaNumberOptional, metaString, metaStringArray, metaStringOptional,
} from "./metadata.ts";
import { refusalOf as refusal } from "../util/refusal-of.ts";


const meta = metaMap([
  kv.str("general.architecture", "llama"),
  kv.u32("llama.block_count", 32),
  kv.f32("llama.rope.freq_base", 10000),
  kv.u64("big", 2n ** 40n),
  kv.u64("huge", 2n ** 60n),
  kv.bool("flag", true),
  kv.str("llama.context_length", "4096"),
  kv.arr("tokens", GGUFValueType.STRING, ["a", "b"]),
  kv.arr("scores", GGUFValueType.FLOAT32, [0.5, -1]),
  kv.arr("ids", GGUFValueType.INT64, [1n, 2n]),
]);

describe("typed metadata getters", () => {
  it("return values of the expected kind", () => {
    expect(metaString(meta, "general.architecture")).toBe("llama");
    expect(metaNumber(meta, "llama.block_count")).toBe(32);
    expect(metaInteger(meta, "llama.block_count")).toBe(32);
    expect(metaNumber(meta, "llama.rope.freq_base")).toBe(10000);
    expect(metaNumber(meta, "big")).toBe(2 ** 40);
    expect(metaBool(meta, "flag")).toBe(true);
    expect(metaArray(meta, "tokens")).toEqual(["a", "b"]);
    expect(metaStringArray(meta, "tokens")).toEqual(["a", "b"]);
    expect(metaNumberArray(meta, "scores")).toEqual([0.5, -1]);
    expect(metaNumberArray(meta, "ids")).toEqual([1, 2]);
  });

  it("optional forms return undefined for an absent key, required forms refuse it with gguf.missing-key", () => {
    expect(metaStringOptional(meta, "absent")).toBeUndefined();
    expect(metaNumberOptional(meta, "absent")).toBeUndefined();
    expect(metaIntegerOptional(meta, "absent")).toBeUndefined();
    expect(metaArrayOptional(meta, "absent")).toBeUndefined();
    const e = refusal(() => metaString(meta, "general.name"));
    expect([e.code, e.message]).toEqual(["gguf.missing-key", "key general.name: required but not present"]);
  });

  it("refuse a value of the wrong kind, naming the key and both kinds", () => {
    const e = refusal(() => metaInteger(meta, "llama.context_length"));
    expect([e.code, e.message]).toEqual(["gguf.bad-metadata", "key llama.context_length: expected an integer, found string"]);
    expect(refusal(() => metaInteger(meta, "llama.rope.freq_base")).message).toBe("key llama.rope.freq_base: expected an integer, found float32");
    expect(refusal(() => metaString(meta, "llama.block_count")).message).toBe("key llama.block_count: expected a string, found uint32");
    expect(refusal(() => metaNumber(meta, "huge")).message).toContain("does not fit a safe integer");
    expect(refusal(() => metaStringArray(meta, "scores")).code).toBe("gguf.bad-metadata");
    expect(refusal(() => metaNumberArray(meta, "tokens")).code).toBe("gguf.bad-metadata");
    expect(refusal(() => metaArray(meta, "flag")).code).toBe("gguf.bad-metadata");
    expect(refusal(() => metaBool(meta, "llama.block_count")).code).toBe("gguf.bad-metadata");
  });
});
