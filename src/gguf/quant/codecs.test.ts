// The codec table's contract: what it supports, what it refuses and how, and
// that encoding then decoding stays within each format's rounding.
import { describe, expect, it } from "bun:test";
import { GGMLType, typeLayout } from "../types.ts";
import { decodeTensor, encodeTensor, isCodecSupported, referenceCodecs } from "./codecs.ts";
import { Random } from "./test-blocks.ts";
import { refusalOf as refusal } from "../../util/refusal-of.ts";

const SUPPORTED = [
  GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q8_0,
  GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.MXFP4,
];


describe("codec table", () => {
  it("supports exactly the fourteen types psionic reads and writes", () => {
    expect([...referenceCodecs.keys()].sort((a, b) => a - b)).toEqual([...SUPPORTED].sort((a, b) => a - b));
    for (const type of SUPPORTED) expect(isCodecSupported(type)).toBe(true);
    expect(isCodecSupported(GGMLType.IQ2_XXS)).toBe(false);
    expect(isCodecSupported(GGMLType.Q8_K)).toBe(false);
  });

  it("refuses an unsupported type, naming it", () => {
    const error = refusal(() => decodeTensor(GGMLType.IQ4_NL, new Uint8Array(18), 32));
    expect(error.code).toBe("quant.unsupported-type");
    expect(error.message).toContain("iq4_nl");
    expect(refusal(() => encodeTensor(GGMLType.TQ1_0, new Float32Array(256))).code).toBe("quant.unsupported-type");
    expect(refusal(() => decodeTensor(99 as GGMLType, new Uint8Array(4), 1)).message).toContain("type id 99");
  });

  it("refuses a length that is not a whole number of blocks, naming type and sizes", () => {
    const error = refusal(() => encodeTensor(GGMLType.Q4_K, new Float32Array(300)));
    expect(error.code).toBe("quant.partial-block");
    expect(error.message).toBe("300 elements is not a whole number of q4_K blocks of 256");
    expect(refusal(() => decodeTensor(GGMLType.Q8_0, new Uint8Array(34), 33)).code).toBe("quant.partial-block");
    expect(refusal(() => decodeTensor(GGMLType.Q8_0, new Uint8Array(34), -32)).code).toBe("quant.partial-block");
  });

  it("refuses a byte length that does not match the element count", () => {
    const error = refusal(() => decodeTensor(GGMLType.Q8_0, new Uint8Array(35), 32));
    expect(error.code).toBe("quant.size-mismatch");
    expect(error.message).toBe("32 q8_0 elements need 34 bytes, got 35");
  });

  it("refuses NaN and infinity in quantized encodes (C and reference), naming the element", () => {
    const values = new Float32Array(64);
    values[40] = Number.NaN;
    const error = refusal(() => encodeTensor(GGMLType.Q8_0, values));
    expect(error.code).toBe("quant.non-finite");
    expect(error.message).toContain("element 40 is NaN");
    values[40] = 0;
    values[3] = -Infinity;
    expect(refusal(() => encodeTensor(GGMLType.MXFP4, values)).message).toContain("element 3 is -Infinity");
    expect(refusal(() => referenceCodecs.get(GGMLType.Q4_K)!.encode(new Float32Array(256).fill(Infinity), new Uint8Array(144), 256)).code).toBe("quant.non-finite");
  });

  it("encodes NaN and infinity in the float types as ggml does", () => {
    const f16 = encodeTensor(GGMLType.F16, new Float32Array([Number.NaN, Infinity, -Infinity, 65520, -1e-8]));
    expect([...new Uint16Array(f16.buffer)]).toEqual([0x7e00, 0x7c00, 0xfc00, 0x7c00, 0x8000]);
    const bf16 = encodeTensor(GGMLType.BF16, new Float32Array([Infinity, 1 + 2 ** -8, 1 + 3 * 2 ** -8]));
    expect([...new Uint16Array(bf16.buffer)]).toEqual([0x7f80, 0x3f80, 0x3f82]);
  });

  it("handles empty tensors", () => {
    expect(decodeTensor(GGMLType.Q4_0, new Uint8Array(0), 0).length).toBe(0);
    expect(encodeTensor(GGMLType.Q6_K, new Float32Array(0)).length).toBe(0);
  });

  // Worst-case error of one encode/decode round trip, relative to the block's largest magnitude.
  const roundTripBound: Partial<Record<GGMLType, number>> = {
    [GGMLType.F32]: 0, [GGMLType.F16]: 2 ** -11, [GGMLType.BF16]: 2 ** -8,
    // Half a step, or a whole step where the opposite extreme is clamped (q4_0, q5_0); fp16 scale rounding on top.
    [GGMLType.Q8_0]: 1 / 200, [GGMLType.Q5_0]: 1 / 16, [GGMLType.Q5_1]: 1 / 30, [GGMLType.Q4_0]: 1 / 8, [GGMLType.Q4_1]: 1 / 14,
    // K-quants: about twice the worst case measured on normal data (their searches trade peak for RMS error).
    [GGMLType.Q6_K]: 1 / 32, [GGMLType.Q5_K]: 1 / 16, [GGMLType.Q4_K]: 1 / 8, [GGMLType.Q3_K]: 1 / 4, [GGMLType.Q2_K]: 1 / 2,
    [GGMLType.MXFP4]: 1 / 3,
  };
  for (const type of SUPPORTED) {
    const layout = typeLayout(type)!;
    it(`${layout.name}: encode then decode stays within ${roundTripBound[type]} of each block's largest magnitude`, () => {
      const rng = new Random(type + 3);
      const values = Float32Array.from({ length: 4096 }, () => rng.normal());
      const decoded = decodeTensor(type, encodeTensor(type, values), values.length);
      const block = Math.max(layout.blockSize, 32);
      let worst = 0;
      for (let b = 0; b < values.length; b += block) {
        let amax = 0;
        for (let i = b; i < b + block; i++) amax = Math.max(amax, Math.abs(values[i]!));
        for (let i = b; i < b + block; i++) worst = Math.max(worst, Math.abs(decoded[i]! - values[i]!) / amax);
      }
      expect(worst).toBeLessThanOrEqual(roundTripBound[type]!);
    });
  }
});
