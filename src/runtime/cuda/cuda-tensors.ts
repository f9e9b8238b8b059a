// What the CUDA backend's handles hold: activations are float32 rows in a
// device arena reset at each forward step; weights are their GGUF bytes on the
// device (Q8_0, Q4_0, MXFP4 and K-quant matrices regrouped into the split
// layouts of kernels/cuda/decode.cuh), described to the kernels by a MatDesc; KV storage
// is F16 rows, one slot per position.
import { ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { checkCuda, cudaKernels } from "../../../ffi/cuda.ts";
import { cpuKernels } from "../../../ffi/cpu.ts";
import { GGMLType, typeLayout } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";
import { checkWeightBytes, type Activation, type KVPrecision, type KVStorage, type Weight } from "../backend.ts";

/**
 * Types with CUDA kernels, and the ones repacked into the split layout (code
 * bytes per block before the slab's scales start; the K-quants' own splits
 * keep each block's low code nibbles, 128 bytes, first: kernels/cuda/decode.cuh).
 */
export const CUDA_TYPES: readonly GGMLType[] = [
  GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0,
  GGMLType.Q5_1, GGMLType.MXFP4, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K,
];
const SPLIT_CODE_BYTES = new Map<GGMLType, number>([[GGMLType.Q8_0, 32], [GGMLType.Q4_0, 16], [GGMLType.MXFP4, 16], [GGMLType.Q4_K, 128],
  [GGMLType.Q5_K, 128], [GGMLType.Q6_K, 128]]);

/** Frees device memory of handles the program drops (uploads, KV caches, weights of closed models). */
const freeOnCollect = new FinalizationRegistry<number>((address) => { cudaKernels().psi_cuda_free(address as unknown as Pointer); });

export function deviceAlloc(bytes: number, what: string, owner?: object): number {
  const address = cudaKernels().psi_cuda_malloc(bytes) as unknown as number;
  if (!address) {
    throw new PsionicError("cuda.out-of-memory",
      `${what}: ${cudaKernels().psi_cuda_last_error()}; put fewer layers on the GPU (-ngl N, the rest run on the CPU) or shorten the context (-c)`);
  }
  if (owner) freeOnCollect.register(owner, address);
  return address;
}

/** Frees page-locked host memory once no array views it (its ArrayBuffer is collected). */
const freeHostOnCollect = new FinalizationRegistry<number>((address) => { cudaKernels().psi_cuda_host_free(address as unknown as Pointer); });

/** `floats` values of page-locked host memory, which downloads fill by DMA; freed when unreferenced. */
export function pinnedFloats(floats: number): Float32Array {
  const bytes = floats * 4;
  const address = cudaKernels().psi_cuda_host_alloc(bytes) as unknown as number;
  if (!address) throw new PsionicError("cuda.out-of-memory", `${bytes} bytes of page-locked host memory: ${cudaKernels().psi_cuda_last_error()}`);
  const buffer = toArrayBuffer(address as unknown as Pointer, 0, bytes);
  freeHostOnCollect.register(buffer, address);
  return new Float32Array(buffer);
}

export const dev = (address: number) => address as unknown as Pointer;

export class CudaActivation implements Activation {
  constructor(readonly rows: number, readonly width: number, readonly address: number, readonly step: number) {}
}

export class CudaWeight implements Weight {
  private values: number | undefined;
  /** type, data, scalesOffset, rows, cols, slabStride (kernels/cuda/matmul.cuh MatDesc). */
  readonly desc: BigInt64Array;

  constructor(readonly name: string, readonly dims: readonly number[], readonly type: GGMLType,
              readonly address: number, scalesOffset: number, slabStride: number, private readonly hostBytes: Uint8Array) {
    this.desc = BigInt64Array.of(BigInt(type), BigInt(address), BigInt(scalesOffset), BigInt(dims[1] ?? 1), BigInt(dims[0]!), BigInt(slabStride));
  }

  get descPointer(): Pointer { return ptr(this.desc); }
  get rows(): number { return this.dims[1] ?? 1; }
  get cols(): number { return this.dims[0]!; }

  /** The values as float32 on the device, for norms, biases, sinks and rope factors. */
  vector(): number {
    if (this.values !== undefined) return this.values;
    if (this.type === GGMLType.F32) return (this.values = this.address);
    const n = this.dims.reduce((a, b) => a * b, 1);
    const host = new Float32Array(n);
    const status = cpuKernels().psi_dequantize_row(this.type, ptr(this.hostBytes), ptr(host), n);
    if (status !== 0) throw new PsionicError("backend.unsupported-type", `tensor ${this.name}: cannot decode ${typeLayout(this.type)?.name} values (status ${status})`);
    const address = deviceAlloc(n * 4, `tensor ${this.name}`, this);
    checkCuda(cudaKernels().psi_cuda_upload(dev(address), ptr(host), n * 4), `upload ${this.name}`);
    return (this.values = address);
  }
}

/** Uploads one tensor (regrouping split-layout matrices on the device); refuses types without kernels. */
export function uploadWeight(name: string, type: GGMLType, dims: readonly number[], bytes: Uint8Array): CudaWeight {
  const { layout, total } = checkWeightBytes("cuda", CUDA_TYPES, name, type, dims, bytes);
  const lib = cudaKernels();
  const slabs = dims.slice(2).reduce((a, b) => a * b, 1);
  const slabBytes = total / slabs;
  const codeBytes = SPLIT_CODE_BYTES.get(type);
  if (codeBytes === undefined || dims.length < 2) {
    const address = deviceAlloc(total, `tensor ${name}`);
    checkCuda(lib.psi_cuda_upload(dev(address), ptr(bytes), total), `upload ${name}`);
    const w = new CudaWeight(name, dims, type, address, 0, slabBytes, bytes);
    freeOnCollect.register(w, address);
    return w;
  }
  const blocksPerSlab = slabBytes / layout.typeSize;
  const stride = Math.ceil(slabBytes / 256) * 256;
  const address = deviceAlloc(stride * slabs, `tensor ${name}`);
  const staging = deviceAlloc(total, `tensor ${name} (staging)`);
  try {
    checkCuda(lib.psi_cuda_upload(dev(staging), ptr(bytes), total), `upload ${name}`);
    checkCuda(lib.psi_cuda_repack(type, dev(staging), dev(address), blocksPerSlab, slabs, stride), `repack ${name}`);
    checkCuda(lib.psi_cuda_sync(), `repack ${name}`);
  } finally {
    lib.psi_cuda_free(dev(staging));
  }
  const w = new CudaWeight(name, dims, type, address, blocksPerSlab * codeBytes, stride, bytes);
  freeOnCollect.register(w, address);
  return w;
}

export class CudaKV implements KVStorage {
  readonly address: number;
  constructor(readonly capacity: number, readonly width: number, readonly precision: KVPrecision) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0 || !Number.isSafeInteger(width) || width <= 0) {
      throw new PsionicError("backend.shape", `allocKV: capacity ${capacity} and width ${width} must be positive integers`);
    }
    if (precision !== "f16") throw new PsionicError("backend.unsupported", `allocKV: the cuda backend keeps its KV cache in f16, not ${precision}`);
    this.address = deviceAlloc(capacity * width * 2, "KV cache", this);
  }
}

/** Device buffers for one forward step's activations, handed out in order and all reused by the next step. */
export class DeviceArena {
  private chunks: { address: number; bytes: number; used: number }[] = [];
  private chunk = 0;
  private offset = 0;
  step = 0;
  /**
   * The emulator built with AddressSanitizer (psi_cuda_poison): every byte of the
   * arena but the live activations is off limits, with a gap after each, so a
   * kernel that reads or writes past its rows, or rows of an earlier step, is reported.
   */
  private readonly guarded = cudaKernels().psi_cuda_poison(null, 0, 0) === 1;

  constructor(private readonly chunkBytes: number) {}

  beginStep(): void {
    this.step++;
    this.chunk = 0;
    this.offset = 0;
    for (const c of this.guarded ? this.chunks : []) this.poison(c.address, c.used, true);
  }

  take(bytes: number): number {
    const size = Math.ceil(Math.max(bytes, 1) / 256) * 256 + (this.guarded ? 256 : 0);
    for (;;) {
      const c = this.chunks[this.chunk];
      if (!c) {
        const chunkBytes = Math.max(this.chunkBytes, size);
        const address = deviceAlloc(chunkBytes, "activation arena");
        if (this.guarded) this.poison(address, chunkBytes, true);
        this.chunks.push({ address, bytes: chunkBytes, used: 0 });
        continue;
      }
      if (this.offset + size <= c.bytes) {
        const address = c.address + this.offset;
        this.offset += size;
        c.used = Math.max(c.used, this.offset);
        if (this.guarded) this.poison(address, bytes, false);
        return address;
      }
      this.chunk++;
      this.offset = 0;
    }
  }

  private poison(address: number, bytes: number, poisoned: boolean): void {
    if (cudaKernels().psi_cuda_poison(dev(address), bytes, poisoned ? 1 : 0) < 0) checkCuda(-1, "arena step");
  }
}
