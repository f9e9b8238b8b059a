// Decoding is bit-exact with ggml's dequantize_row_* (and its fp16/bf16 row
// converters): the TypeScript reference and the C kernels in every instruction-set
// variant this CPU runs, on random blocks and on edge cases (signed zeros,
// infinities, NaN payloads, subnormal and extreme scales, every code pattern).
import { describe, expect, it } from "bun:test";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../../ffi/cpu.ts";
import { ggmlDequantize } from "../../../ffi/ggml-oracle.ts";
import { GGMLType, typeLayout } from "../types.ts";
import { decodeTensor, referenceCodecs } from "./codecs.ts";
import { edgeBlocks, Random, randomBytes } from "./test-blocks.ts";

/** Index and both bit patterns of the first difference, or null when the outputs are bit-identical. */
function firstBitDifference(ours: Float32Array, theirs: Float32Array): string | null {
  const a = new Uint32Array(ours.buffer, ours.byteOffset, ours.length);
  const b = new Uint32Array(theirs.buffer, theirs.byteOffset, theirs.length);
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return `element ${i}: 0x${a[i]!.toString(16)} vs ggml 0x${b[i]!.toString(16)}`;
  }
  return null;
}

function referenceDecode(type: GGMLType, bytes: Uint8Array, elements: number): Float32Array {
  const out = new Float32Array(elements);
  referenceCodecs.get(type)!.decode(bytes, out, elements);
  return out;
}

const lib = cpuKernels();
const variants = CPU_VARIANTS.filter((v) => selectCpuVariant(lib, v));
selectCpuVariant(lib, variants[variants.length - 1]!);

function inputsFor(type: GGMLType): [string, Uint8Array, number][] {
  const layout = typeLayout(type)!;
  const rng = new Random(type * 7919 + 1);
  const blocks = Math.max(64, Math.ceil(4096 / layout.blockSize));
  const edge = edgeBlocks(type);
  return [
    ["random blocks", randomBytes(rng, blocks * layout.typeSize), blocks * layout.blockSize],
    ["edge-case blocks", edge.bytes, edge.elements],
  ];
}

describe("decoding matches ggml bit for bit", () => {
  it(`runs the C kernels in variants: ${variants.join(", ")}`, () => {
    expect(variants).toContain("portable");
  });
  for (const type of referenceCodecs.keys()) {
    const name = typeLayout(type)!.name;
    for (const [label, bytes, elements] of inputsFor(type)) {
      it(`${name}: TypeScript reference on ${label} (${elements} values)`, () => {
        const expected = ggmlDequantize(type, bytes, elements);
        expect(firstBitDifference(referenceDecode(type, bytes, elements), expected)).toBeNull();
      });
      it(`${name}: C kernels on ${label}`, () => {
        const expected = ggmlDequantize(type, bytes, elements);
        try {
          for (const variant of variants) {
            selectCpuVariant(lib, variant);
            const difference = firstBitDifference(decodeTensor(type, bytes, elements), expected);
            expect(difference === null ? null : `${variant}: ${difference}`).toBeNull();
          }
        } finally {
          selectCpuVariant(lib, variants[variants.length - 1]!);
        }
      });
    }
  }

  it("reproduces ggml's NaN bits: payloads kept and quieted, 0 * inf gives the default NaN", () => {
    // q4_1 block: d = signaling NaN 0x7d55, m = NaN 0x7e01; q8_0 block: d = +inf, codes 0 and 1.
    const q41 = new Uint8Array(20);
    q41.set([0x55, 0x7d, 0x01, 0x7e]);
    const q80 = new Uint8Array(34);
    q80.set([0x00, 0x7c, 0, 1]);
    const q41Bits = new Uint32Array(decodeTensor(GGMLType.Q4_1, q41, 32).buffer);
    const q80Bits = new Uint32Array(decodeTensor(GGMLType.Q8_0, q80, 32).buffer);
    expect(q41Bits[0]).toBe(0x7feaa000); // the scale's payload, quiet bit set; the first NaN operand wins
    expect(q80Bits[0]).toBe(0xffc00000); // 0 * inf
    expect(q80Bits[1]).toBe(0x7f800000); // 1 * inf
  });

  it("decodes from a buffer at an odd byte offset", () => {
    const rng = new Random(5);
    const bytes = randomBytes(rng, 1 + 34 * 8);
    const view = bytes.subarray(1);
    expect(firstBitDifference(decodeTensor(GGMLType.Q8_0, view, 256), ggmlDequantize(GGMLType.Q8_0, view.slice(), 256))).toBeNull();
  });
});
