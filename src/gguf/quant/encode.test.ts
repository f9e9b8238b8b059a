// Encoding writes the same bytes as ggml's quantize_row_*_ref (and its
// fp16/bf16 row converters), for the TypeScript reference and for the C kernels
// in every instruction-set variant, across value distributions chosen to hit
// rounding ties, zero and constant blocks, subnormals, overflow to fp16 infinity
// and MXFP4's power-of-two exponent boundaries. The K-quants included: their
// iterative scale searches are reproduced float operation for float operation.
import { describe, expect, it } from "bun:test";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../../ffi/cpu.ts";
import { ggmlQuantizeRef } from "../../../ffi/ggml-oracle.ts";
import { GGMLType, typeLayout } from "../types.ts";
import { encodeTensor, referenceCodecs } from "./codecs.ts";
import { EDGE_FLOAT_BITS, encodeInputs, Random } from "./test-blocks.ts";

/** Index and both bytes of the first difference, or null when identical. */
function firstByteDifference(ours: Uint8Array, theirs: Uint8Array, typeSize: number): string | null {
  if (ours.length !== theirs.length) return `length ${ours.length} vs ${theirs.length}`;
  for (let i = 0; i < ours.length; i++) {
    if (ours[i] !== theirs[i]) return `byte ${i} (block ${Math.floor(i / typeSize)}, offset ${i % typeSize}): ${ours[i]} vs ggml ${theirs[i]}`;
  }
  return null;
}

function referenceEncode(type: GGMLType, values: Float32Array): Uint8Array {
  const layout = typeLayout(type)!;
  const out = new Uint8Array((values.length / layout.blockSize) * layout.typeSize);
  referenceCodecs.get(type)!.encode(values, out, values.length);
  return out;
}

const lib = cpuKernels();
const variants = CPU_VARIANTS.filter((v) => selectCpuVariant(lib, v));
selectCpuVariant(lib, variants[variants.length - 1]!);

/** Float32 values from raw bit patterns: random words plus the edge list (NaN payloads included). */
function floatPatterns(count: number, seed: number): Float32Array {
  const rng = new Random(seed);
  const words = new Uint32Array(count);
  for (let i = 0; i < count; i++) words[i] = i < EDGE_FLOAT_BITS.length ? EDGE_FLOAT_BITS[i]! : rng.nextU32();
  return new Float32Array(words.buffer);
}

describe("encoding matches ggml byte for byte", () => {
  for (const type of referenceCodecs.keys()) {
    const layout = typeLayout(type)!;
    const elements = layout.blockSize === 1 ? 4096 : Math.max(1024, 8 * layout.blockSize);
    const inputs = encodeInputs(elements, type + 11);
    if (layout.blockSize === 1) inputs.push(["raw float32 bit patterns (NaN payloads, subnormals, rounding boundaries)", floatPatterns(1 << 16, type)]);
    it(`${layout.name}: TypeScript reference on ${inputs.length} distributions`, () => {
      for (const [label, values] of inputs) {
        const difference = firstByteDifference(referenceEncode(type, values), ggmlQuantizeRef(type, values), layout.typeSize);
        expect(difference === null ? null : `${label}: ${difference}`).toBeNull();
      }
    });
    it(`${layout.name}: C kernels (${variants.join(", ")}) on ${inputs.length} distributions`, () => {
      try {
        for (const variant of variants) {
          selectCpuVariant(lib, variant);
          for (const [label, values] of inputs) {
            const difference = firstByteDifference(encodeTensor(type, values), ggmlQuantizeRef(type, values), layout.typeSize);
            expect(difference === null ? null : `${variant}, ${label}: ${difference}`).toBeNull();
          }
        }
      } finally {
        selectCpuVariant(lib, variants[variants.length - 1]!);
      }
    });
  }
});

describe("MXFP4 shared exponent", () => {
  it("matches ggml's floor(log2f(amax)) just below, at and above every power of two, subnormals included", () => {
    const maxima: number[] = [];
    for (let k = -148; k <= 127; k++) {
      for (const m of [1 - 2 ** -24, 1, 1 + 2 ** -23, 1.5, 2 - 2 ** -23]) {
        const v = Math.fround(m * 2 ** k);
        if (v > 0 && Number.isFinite(v)) maxima.push(v);
      }
    }
    const values = new Float32Array(maxima.length * 32);
    maxima.forEach((v, b) => {
      values[b * 32 + (b % 32)] = b % 2 ? -v : v;
      values[b * 32 + ((b + 7) % 32)] = Math.fround(v / 3);
    });
    const expected = ggmlQuantizeRef(GGMLType.MXFP4, values);
    expect(firstByteDifference(referenceEncode(GGMLType.MXFP4, values), expected, 17)).toBeNull();
    expect(firstByteDifference(encodeTensor(GGMLType.MXFP4, values), expected, 17)).toBeNull();
  });
});
