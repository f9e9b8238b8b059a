// The activation quantizers psi_matmul uses are bit-identical to what ggml's
// CPU backend (its x86 build) feeds its own dot products, for every variant.
import { describe, expect, it } from "bun:test";
import { CPU_VARIANTS, cpuKernels, selectCpuVariant } from "../../../ffi/cpu.ts";
import { GGMLType, typeLayout } from "../../gguf/types.ts";
import { ggmlQuantizeActivations } from "./ggml-vec-dot.ts";
import { activationType, quantizeActivations } from "./matmul.ts";
import { sampleValues } from "./matmul-test-data.ts";

/** Inputs that stress rounding: ties at .5 (ggml's x86 path rounds them to even), zeros, a lone outlier, tiny values. */
function trickyInputs(): Float32Array {
  const n = 2048;
  const x = sampleValues(n, 7);
  for (let i = 0; i < 32; i++) x[i] = i === 0 ? 127 : (i % 8) + 0.5; // amax 127: x*127/amax = x, all ties
  for (let i = 32; i < 64; i++) x[i] = 0; // an all-zero block
  for (let i = 256; i < 512; i++) x[i] = i === 300 ? -1e4 : 1e-3 * (i - 400); // negative max picks the Q8_K sign
  for (let i = 512; i < 544; i++) x[i] = 1e-30 * (i - 530); // scales that underflow fp16
  return x;
}

// F16 weights take their activations unrounded (F32), as ggml's AMX F16 kernel does.
const weightTypes = [GGMLType.Q8_0, GGMLType.Q4_1, GGMLType.Q4_K, GGMLType.BF16];

describe("activation quantizers", () => {
  const lib = cpuKernels();
  for (const variant of CPU_VARIANTS) {
    it(`match ggml's CPU backend bit for bit (Q8_0, Q8_1, Q8_K, BF16) on the ${variant} variant`, () => {
      if (!selectCpuVariant(lib, variant)) return;
      try {
        for (const input of [trickyInputs(), sampleValues(4096, 11, 30)]) {
          for (const type of weightTypes) {
            const actType = activationType(type);
            const ours = quantizeActivations(type, input);
            const theirs = ggmlQuantizeActivations(type, actType, input);
            const firstDifference = ours.findIndex((b, i) => b !== theirs[i]);
            expect({ activations: typeLayout(actType)!.name, firstDifference }).toEqual({ activations: typeLayout(actType)!.name, firstDifference: -1 });
          }
        }
      } finally {
        selectCpuVariant(lib, "avx512") || selectCpuVariant(lib, "avx2");
      }
    });
  }

  it("round ties to even like ggml's x86 path, not away from zero like quantize_row_q8_0_ref", () => {
    const x = new Float32Array(32);
    x[0] = 127;
    x[1] = 2.5;
    x[2] = -3.5;
    const q = new Int8Array(quantizeActivations(GGMLType.Q8_0, x).buffer, 2, 32);
    expect([q[0], q[1], q[2]]).toEqual([127, 2, -4]);
  });
});
