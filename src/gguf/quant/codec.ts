// The shape every tensor-type codec has; kept apart from codecs.ts so the
// per-format files can import it without importing the table.
import { PsionicError } from "../../util/errors.ts";

/** Decodes `n` values from ggml blocks, or encodes `n` values into them. `n` is a whole number of blocks. */
export interface Codec {
  decode(src: Uint8Array, dst: Float32Array, n: number): void;
  encode(src: Float32Array, dst: Uint8Array, n: number): void;
}

/**
 * Quantized blocks hold only finite values (ggml would write an arbitrary
 * block for NaN or infinity), so both the reference and the C encoder refuse them.
 */
export function assertFinite(src: Float32Array, n: number, typeName: string): void {
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(src[i]!)) {
      throw new PsionicError("quant.non-finite", `cannot encode ${typeName}: element ${i} is ${src[i]}; quantized blocks hold only finite values`);
    }
  }
}

/** Per-block functions from which `blockCodec` builds a Codec. `y` and `yBits` view the same output. */
export interface BlockFormat {
  name: string;
  blockSize: number;
  typeSize: number;
  decodeBlock(src: Uint8Array, offset: number, y: Float32Array, yBits: Uint32Array, k: number): void;
  encodeBlock(x: Float32Array, k: number, dst: Uint8Array, offset: number): void;
}

export function blockCodec(format: BlockFormat): Codec {
  return {
    decode(src, dst, n) {
      const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
      for (let b = 0; b < n / format.blockSize; b++) format.decodeBlock(src, b * format.typeSize, dst, bits, b * format.blockSize);
    },
    encode(src, dst, n) {
      assertFinite(src, n, format.name);
      for (let b = 0; b < n / format.blockSize; b++) format.encodeBlock(src, b * format.blockSize, dst, b * format.typeSize);
    },
  };
}
