import { describe, expect, it } from "bun:test";
import { refusalOf } from "../util/refusal-of.ts";
import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";

const tensors = [
  { name: "a.weight", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, -6.5) },
  { name: "b", shape: [1], data: Float32Array.of(Math.fround(0.1)) },
];

function withHeader(header: unknown, data = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe("safetensors", () => {
  it("round-trips float32 tensors and metadata bit for bit", () => {
    const bytes = serializeSafetensors(tensors, { format: "pt" });
    const file = parseSafetensors(bytes, "x");
    expect(file.metadata).toEqual({ format: "pt" });
    expect([...file.tensors.keys()]).toEqual(["a.weight", "b"]);
    expect(file.tensors.get("a.weight")!.shape).toEqual([2, 3]);
    expect(file.tensors.get("a.weight")!.data).toEqual(tensors[0]!.data);
    expect(file.tensors.get("b")!.data[0]).toBe(Math.fround(0.1));
  });

  it("writes the documented layout: u64 header length, space-padded JSON to 8 bytes, little-endian data", () => {
    const bytes = serializeSafetensors(tensors);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    expect(header["a.weight"]).toEqual({ dtype: "F32", shape: [2, 3], data_offsets: [0, 24] });
    expect(header.b).toEqual({ dtype: "F32", shape: [1], data_offsets: [24, 28] });
    expect(new DataView(bytes.buffer).getFloat32(8 + headerLength + 20, true)).toBe(-6.5);
  });

  it("refuses a header length beyond the file", () => {
    const bytes = serializeSafetensors(tensors);
    new DataView(bytes.buffer).setBigUint64(0, 1n << 40n, true);
    expect(refusalOf(() => parseSafetensors(bytes, "f.safetensors")).message).toContain("f.safetensors: header length");
  });

  it("refuses data offsets outside the data section", () => {
    const e = refusalOf(() => parseSafetensors(withHeader({ t: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)), "f"));
    expect(e.message).toContain("tensor t: data_offsets [0, 16] fall outside the 8 data bytes");
  });

  it("refuses a shape that does not match its byte span", () => {
    const e = refusalOf(() => parseSafetensors(withHeader({ t: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), "f"));
    expect(e.message).toContain("shape [3] needs 12 bytes");
  });

  it("refuses dtypes other than F32, naming the tensor", () => {
    const e = refusalOf(() => parseSafetensors(withHeader({ t: { dtype: "BF16", shape: [4], data_offsets: [0, 8] } }, new Uint8Array(8)), "f"));
    expect(e.message).toContain('tensor t: dtype "BF16" is not supported');
  });

  it("refuses overlapping tensors", () => {
    const e = refusalOf(() => parseSafetensors(withHeader({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    }, new Uint8Array(12)), "f"));
    expect(e.message).toContain("overlap");
  });

  it("refuses a truncated file and a non-JSON header", () => {
    expect(refusalOf(() => parseSafetensors(new Uint8Array(5), "f")).message).toContain("too short");
    const bad = withHeader({});
    bad[8] = 0x7b + 1;
    expect(refusalOf(() => parseSafetensors(bad, "f")).message).toContain("not valid UTF-8 JSON");
  });
});
