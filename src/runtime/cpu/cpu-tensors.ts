// What the CPU backend's handles hold: activations are float32 rows (usually
// arena buffers), weights are the GGUF bytes themselves (a view of the file
// mapping, never decoded), KV storage is F16 bits or float32 values in cells
// padded as llama.cpp pads its cache.
import { ptr, type Pointer } from "bun:ffi";
import { cpuKernels } from "../../../ffi/cpu.ts";
import { GGMLType, typeLayout } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";
import { checkWeightBytes, type Activation, type KVPrecision, type KVStorage, type Weight } from "../backend.ts";
import { MATMUL_TYPES, repackRows16 } from "./matmul.ts";

export class CpuActivation implements Activation {
  constructor(readonly rows: number, readonly width: number, readonly data: Float32Array, readonly step: number) {}
}

/** A 2-D weight as psi_matmul takes it, prepared once: its (aligned) bytes and their address. */
export interface PreparedMatrix {
  type: GGMLType;
  /** The bytes the pointer points into, held so they stay alive. */
  bytes: Uint8Array;
  pointer: Pointer;
  /** Output rows (dims[1]) of `cols` (dims[0]) values. */
  rows: number;
  cols: number;
}

export class CpuWeight implements Weight {
  private values: Float32Array | undefined;
  private prepared: PreparedMatrix | undefined;

  /**
   * `kernelType`: the id psi_matmul multiplies `bytes` as when they are not
   * plain `type` but a psionic layout of it (matmul.ts MXFP4_ROWS16; Q8_0
   * matrices get theirs in matrix(), with `bytes` left plain).
   */
  constructor(readonly name: string, readonly dims: readonly number[], readonly type: GGMLType, readonly bytes: Uint8Array,
              readonly kernelType?: number) {}

  /**
   * The values as float32, for weights used as vectors (norm scales, biases,
   * sinks, rope factors): a view of the file bytes when they are aligned F32,
   * else decoded once (such tensors are tiny).
   */
  vector(): Float32Array {
    if (this.values) return this.values;
    if (this.kernelType !== undefined) throw new PsionicError("backend.unsupported", `tensor ${this.name}: its bytes are repacked for products and cannot be read as values`);
    const n = this.dims.reduce((a, b) => a * b, 1);
    if (this.type === GGMLType.F32) {
      this.values = this.bytes.byteOffset % 4 === 0
        ? new Float32Array(this.bytes.buffer, this.bytes.byteOffset, n)
        : new Float32Array(this.bytes.slice().buffer, 0, n);
    } else {
      const out = new Float32Array(n);
      const status = cpuKernels().psi_dequantize_row(this.type, ptr(this.bytes), ptr(out), n);
      if (status !== 0) throw new PsionicError("backend.unsupported-type", `tensor ${this.name}: cannot decode ${typeLayout(this.type)?.name ?? this.type} values (status ${status})`);
      this.values = out;
    }
    return this.values;
  }

  /**
   * The matrix for psi_matmul. Its type and byte size were checked when it was
   * loaded (checkWeight), so a product re-checks only the activations' sizes.
   * The kernels read fp16 fields and floats in place: misaligned bytes are copied once.
   *
   * Q8_0 matrices are repacked here, on their first product, into 16-row
   * groups (Q8_0_ROWS16: same bits, faster decode and prefill) where the
   * kernel variant multiplies that layout. Here rather than at load because
   * only a product tells a matrix from a lookup table: token_embd is both when
   * it is a tied output head, and only a table otherwise (gpt-oss-20b's is
   * 615 MB). `bytes` stay the file's, for the embedding lookup and vector().
   */
  matrix(): PreparedMatrix {
    if (this.prepared) return this.prepared;
    if (this.dims.length !== 2) throw new PsionicError("backend.shape", `matmul ${this.name}: a ${this.dims.length}-D weight is not a matrix`);
    const rows = this.dims[1]!, cols = this.dims[0]!;
    const packed = this.kernelType === undefined && this.type === GGMLType.Q8_0 ? repackRows16(this.type, this.bytes, rows, cols) : null;
    if (packed) {
      this.prepared = { type: packed.kernelType, bytes: packed.bytes, pointer: ptr(packed.bytes), rows, cols };
      return this.prepared;
    }
    const bytes = this.bytes.byteOffset % 4 === 0 ? this.bytes : this.bytes.slice();
    this.prepared = { type: this.kernelType ?? this.type, bytes, pointer: ptr(bytes), rows, cols };
    return this.prepared;
  }
}

/** Checks a tensor's type and byte size against its dims, naming it on refusal. */
export function checkWeight(name: string, type: GGMLType, dims: readonly number[], bytes: Uint8Array): void {
  checkWeightBytes("cpu", MATMUL_TYPES, name, type, dims, bytes);
}

/** llama.cpp's KV cache pads its cell count (and its attention view of the cells) to 256. */
export const KV_PAD = 256;

export const padTo = (n: number, multiple: number) => Math.ceil(n / multiple) * multiple;

export class CpuKV implements KVStorage {
  /** Cells allocated: capacity padded to KV_PAD, as llama.cpp sizes n_ctx. */
  readonly cells: number;
  readonly data: Uint16Array | Float32Array;

  constructor(readonly capacity: number, readonly width: number, readonly precision: KVPrecision) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0 || !Number.isSafeInteger(width) || width <= 0) {
      throw new PsionicError("backend.shape", `allocKV: capacity ${capacity} and width ${width} must be positive integers`);
    }
    if (precision !== "f16" && precision !== "f32") throw new PsionicError("backend.unsupported", `allocKV: precision ${precision} is not f16 or f32`);
    this.cells = padTo(capacity, KV_PAD);
    const elements = this.cells * width;
    if (elements > 2 ** 32) throw new PsionicError("kv.too-large", `allocKV: ${this.cells} cells of ${width} values is too large for one buffer`);
    this.data = precision === "f16" ? new Uint16Array(elements) : new Float32Array(elements);
  }

  /**
   * The cells llama.cpp's attention reads once positions up to `lastPosition`
   * are filled (llama_kv_cache::get_n_kv): the filled cells padded to 256, at
   * least 256, at most the cache. Its split-KV decode divides exactly these.
   */
  viewCells(lastPosition: number): number {
    return Math.min(this.cells, Math.max(KV_PAD, padTo(lastPosition + 1, KV_PAD)));
  }
}
