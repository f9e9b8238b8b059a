// The fast CPU backend: every op on the C kernels (kernels/cpu), weights kept
// as their GGUF bytes (zero-copy views of the file mapping) and multiplied in
// their own type, activations in reused arena buffers (activation-arena.ts).
//
// It follows llama.cpp's CPU arithmetic where that decides the rounding, so
// greedy generation matches llama.cpp token for token:
// - products quantize each activation row to the weight's vec_dot type (matmul.ts);
// - biases are a separate float32 add after the product;
// - attention takes ggml's flash-attention path for the batch size
//   (ggmlAttentionPrecision: F16 Q and F16 running sum under 64 tokens, tiled
//   float32 from 64), over the cells llama.cpp's cache view would hold
//   (CpuKV.viewCells), split across the threads for one-token decode over 512+
//   cells exactly as ggml's split-KV path (ggmlDecodeChunks) — so give it the
//   thread count llama.cpp runs with to compare the two;
// - KV rows are stored F16 (round to nearest even) or F32 by the store kernel.
import { checkConcat, checkSameShape, downloadCopy, ownedActivation, PERSISTENT, type AttentionSegment } from "../backend.ts";
import { cpuKernels } from "../../../ffi/cpu.ts";
import { GGMLType } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";
import type {
  Activation, AttentionParams, Backend, KVPrecision, KVStorage, MoEParams, MoEWeights, RopeParams, Weight,
} from "../backend.ts";
import { ActivationArena, DEFAULT_ARENA_BYTES } from "./activation-arena.ts";
import { cpuMoE } from "./cpu-moe.ts";
import { projectPrepared } from "./cpu-products.ts";
import { CpuActivation, CpuKV, CpuWeight, checkWeight } from "./cpu-tensors.ts";
import { MAX_MATMUL_THREADS, repackRows16 } from "./matmul.ts";
import type { RopeParams as KernelRopeParams } from "./ops.ts";
import { add, attention, ggmlAttentionPrecision, ggmlDecodeChunks, getRows, rmsNorm, rope, storeKv, swiglu } from "./ops.ts";

export interface CpuBackendOptions {
  /** Threads for the products, RoPE and attention (default: every core). */
  threads?: number;
  /** Bytes of reusable activation buffers (default 64 MiB). */
  arenaBytes?: number;
}

const weight = (w: Weight) => w as CpuWeight;

export class CpuBackend implements Backend {
  readonly name = "cpu";
  readonly threads: number;
  readonly arena: ActivationArena;
  private readonly opThreads: { threads: number };
  /** Cell ids for a KV store, reused while the batch size stays the same (every decode step). */
  private storeCells = new Int32Array(1);

  constructor(options: CpuBackendOptions = {}) {
    const threads = options.threads ?? Math.max(1, Math.min(MAX_MATMUL_THREADS, navigator.hardwareConcurrency || 1));
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_MATMUL_THREADS) {
      throw new PsionicError("backend.bad-threads", `cpu backend threads must be an integer in [1, ${MAX_MATMUL_THREADS}], got ${threads}`);
    }
    this.threads = threads;
    this.opThreads = { threads };
    this.arena = new ActivationArena(options.arenaBytes ?? DEFAULT_ARENA_BYTES);
    cpuKernels(); // load (or refuse) now, not in the middle of a forward pass
  }

  /** x's numbers, refused when a later step has reused its buffer. */
  private data(x: Activation, op: string): Float32Array {
    return ownedActivation(x, CpuActivation, "cpu", this.arena.step, op).data;
  }

  private output(rows: number, width: number): CpuActivation {
    const { data, step } = this.arena.take(rows * width);
    return new CpuActivation(rows, width, data, step);
  }

  loadWeight(name: string, type: GGMLType, dims: readonly number[], bytes: Uint8Array): Weight {
    checkWeight(name, type, dims, bytes);
    // MXFP4 expert stacks (only ever multiplied) are repacked into 16-row groups,
    // whose one-token products need no unpack shuffles or gathers (same bits;
    // docs/PERFORMANCE.md has the numbers). The copy replaces the file's
    // bytes in the weight; the mapping's pages are clean file cache the kernel
    // can drop, so gpt-oss-20b holds one copy of its 11 GB of experts, not two.
    if (type === GGMLType.MXFP4 && dims.length === 3) {
      const packed = repackRows16(type, bytes, dims[1]!, dims[0]!, dims[2]!);
      if (packed) return new CpuWeight(name, [...dims], type, packed.bytes, packed.kernelType);
    }
    return new CpuWeight(name, [...dims], type, bytes);
  }

  upload(values: Float32Array, rows: number, width: number): Activation {
    if (values.length !== rows * width) throw new PsionicError("backend.shape", `upload: ${values.length} values for ${rows}x${width}`);
    return new CpuActivation(rows, width, values.slice(), PERSISTENT);
  }

  download(x: Activation, into?: Float32Array): Float32Array {
    return downloadCopy(x, this.data(x, "download"), into);
  }

  beginStep(): void {
    this.arena.beginStep();
  }

  /** Every forward pass starts here, so it begins a new arena step. */
  embed(table: Weight, tokens: Int32Array): Activation {
    const t = weight(table);
    if (t.dims.length !== 2) throw new PsionicError("backend.shape", `embed: ${t.name} is not a 2-D table`);
    const width = t.dims[0]!, vocab = t.dims[1]!;
    const bad = tokens.findIndex((id) => !(id >= 0 && id < vocab));
    if (bad >= 0) throw new PsionicError("model.bad-token", `token id ${tokens[bad]} is outside the vocabulary of ${vocab}`);
    this.arena.beginStep();
    const out = this.output(tokens.length, width);
    getRows(t.type, t.bytes, vocab, width, tokens, out.data);
    return out;
  }

  takeRows(x: Activation, rows: readonly number[]): Activation {
    const src = this.data(x, "takeRows");
    const bad = rows.findIndex((r) => !(Number.isInteger(r) && r >= 0 && r < x.rows));
    if (bad >= 0) throw new PsionicError("backend.shape", `takeRows: row ${rows[bad]} is not in ${x.rows} rows`);
    // A decode step keeps its only row: nothing to copy.
    if (rows.length === x.rows && rows.every((r, i) => r === i)) return x;
    const out = this.output(rows.length, x.width);
    rows.forEach((r, i) => out.data.set(src.subarray(r * x.width, (r + 1) * x.width), i * x.width));
    return out;
  }

  concatRows(parts: readonly Activation[]): Activation {
    const width = checkConcat(parts);
    const out = this.output(parts.reduce((n, p) => n + p.rows, 0), width);
    let at = 0;
    for (const p of parts) {
      out.data.set(this.data(p, "concatRows"), at);
      at += p.rows * width;
    }
    return out;
  }

  rmsNorm(x: Activation, w: Weight | null, eps: number, groupWidth = x.width): Activation {
    const src = this.data(x, "rmsNorm");
    if (!(Number.isInteger(groupWidth) && groupWidth > 0 && x.width % groupWidth === 0)) throw new PsionicError("backend.shape", `rmsNorm: groups of ${groupWidth} do not divide rows of ${x.width}`);
    const scale = w ? weight(w).vector() : null;
    if (scale && scale.length !== groupWidth) throw new PsionicError("backend.shape", `rmsNorm: ${weight(w!).name} has ${scale.length} values for groups of ${groupWidth}`);
    const out = this.output(x.rows, x.width);
    rmsNorm(src, groupWidth, eps, scale, out.data);
    return out;
  }

  matmul(x: Activation, w: Weight, bias?: Weight): Activation {
    const src = this.data(x, "matmul");
    const m = weight(w);
    const matrix = m.matrix();
    const inWidth = matrix.cols, outWidth = matrix.rows;
    if (x.width !== inWidth) throw new PsionicError("backend.shape", `matmul ${m.name}: input width ${x.width}, weight rows of ${inWidth}`);
    const b = bias ? weight(bias).vector() : null;
    if (b && b.length !== outWidth) throw new PsionicError("backend.shape", `matmul ${m.name}: bias ${weight(bias!).name} has ${b.length} values for ${outWidth} outputs`);
    const out = this.output(x.rows, outWidth);
    projectPrepared(matrix, src, x.rows, out.data, this.threads, b);
    return out;
  }

  // A model passes the same RopeParams object to every layer of a step: translate it once.
  private readonly ropeTranslations = new WeakMap<RopeParams, KernelRopeParams>();
  private kernelRope(p: RopeParams): KernelRopeParams {
    let k = this.ropeTranslations.get(p);
    if (!k) {
      k = {
        nDims: p.dims, mode: p.mode, freqBase: p.freqBase, freqScale: p.freqScale, nCtxOrig: p.originalContext,
        extFactor: p.extFactor, attnFactor: p.attnFactor, betaFast: p.betaFast, betaSlow: p.betaSlow,
        freqFactors: p.freqFactors ? weight(p.freqFactors).vector() : null,
      };
      this.ropeTranslations.set(p, k);
    }
    return k;
  }

  rope(x: Activation, positions: Int32Array, headDim: number, p: RopeParams): Activation {
    const src = this.data(x, "rope");
    if (positions.length !== x.rows) throw new PsionicError("backend.shape", `rope: ${positions.length} positions for ${x.rows} rows`);
    if (!(Number.isInteger(headDim) && headDim > 0 && x.width % headDim === 0)) throw new PsionicError("backend.shape", `rope: heads of ${headDim} do not divide rows of ${x.width}`);
    const out = this.output(x.rows, x.width);
    rope(src, positions, x.width / headDim, headDim, this.kernelRope(p), out.data, this.opThreads);
    return out;
  }

  add(a: Activation, b: Activation): Activation {
    checkSameShape(a, b, "add");
    const out = this.output(a.rows, a.width);
    add(this.data(a, "add"), this.data(b, "add"), out.data);
    return out;
  }

  swiglu(gate: Activation, up: Activation): Activation {
    checkSameShape(gate, up, "swiglu");
    const out = this.output(gate.rows, gate.width);
    swiglu(this.data(gate, "swiglu"), this.data(up, "swiglu"), { rows: gate.rows, cols: gate.width }, out.data);
    return out;
  }

  moe(x: Activation, w: MoEWeights, p: MoEParams): Activation {
    const src = this.data(x, "moe");
    const router = weight(w.router);
    if (router.dims[0] !== x.width) throw new PsionicError("backend.shape", `moe: input width ${x.width}, router ${router.name} rows of ${router.dims[0]}`);
    if (p.activation.kind !== "swiglu-oai") throw new PsionicError("backend.unsupported", `moe: activation ${p.activation.kind} is not supported`);
    const out = this.output(x.rows, x.width);
    const opt = (t?: Weight) => (t ? weight(t) : undefined);
    cpuMoE(src, x.rows, {
      router, routerBias: opt(w.routerBias), gate: weight(w.gate), gateBias: opt(w.gateBias),
      up: weight(w.up), upBias: opt(w.upBias), down: weight(w.down), downBias: opt(w.downBias),
    }, p, { threads: this.threads, scratch: (n) => this.arena.take(n).data }, out.data);
    return out;
  }

  allocKV(capacity: number, width: number, precision: KVPrecision): KVStorage {
    return new CpuKV(capacity, width, precision);
  }

  storeKV(cache: KVStorage, x: Activation, firstSlot: number): void {
    this.storeRows(cache, this.data(x, "storeKV"), x.rows, x.width, firstSlot);
  }

  private storeRows(cache: KVStorage, src: Float32Array, rows: number, width: number, firstSlot: number): void {
    const c = cache as CpuKV;
    if (!(c instanceof CpuKV)) throw new PsionicError("backend.foreign", "storeKV: the cache does not belong to the cpu backend");
    if (width !== c.width) throw new PsionicError("backend.shape", `storeKV: rows of ${width} into a cache of ${c.width}`);
    if (!Number.isInteger(firstSlot) || firstSlot < 0 || firstSlot + rows > c.capacity) {
      throw new PsionicError("kv.overflow", `storeKV: slots ${firstSlot}..${firstSlot + rows - 1} outside a cache of ${c.capacity}`);
    }
    if (this.storeCells.length !== rows) this.storeCells = new Int32Array(rows);
    const cells = this.storeCells;
    for (let i = 0; i < rows; i++) cells[i] = firstSlot + i;
    storeKv(src, c.data, cells, c.width);
  }

  attention(q: Activation, k: KVStorage, v: KVStorage, positions: Int32Array, p: AttentionParams): Activation {
    const out = this.output(q.rows, p.heads * p.headDimV);
    this.attendRows(this.data(q, "attention"), q.rows, q.width, k, v, positions, p, out.data);
    return out;
  }

  attendSegments(q: Activation, k: Activation, v: Activation, segments: readonly AttentionSegment[], p: AttentionParams): Activation {
    const qs = this.data(q, "attendSegments"), ks = this.data(k, "attendSegments"), vs = this.data(v, "attendSegments");
    if (k.rows !== q.rows || v.rows !== q.rows) throw new PsionicError("backend.shape", `attendSegments: ${q.rows} queries, ${k.rows} keys, ${v.rows} values`);
    const out = this.output(q.rows, p.heads * p.headDimV);
    for (const s of segments) {
      const n = s.positions.length;
      if (!(Number.isInteger(s.rowStart) && s.rowStart >= 0 && s.rowStart + n <= q.rows)) throw new PsionicError("backend.shape", `attendSegments: rows ${s.rowStart}..${s.rowStart + n - 1} outside a batch of ${q.rows}`);
      // Views of the segment's rows: nothing is copied.
      const rows = <T extends Float32Array>(a: T, width: number) => a.subarray(s.rowStart * width, (s.rowStart + n) * width);
      this.storeRows(s.kCache, rows(ks, k.width), n, k.width, s.positions[0]!);
      this.storeRows(s.vCache, rows(vs, v.width), n, v.width, s.positions[0]!);
      this.attendRows(rows(qs, q.width), n, q.width, s.kCache, s.vCache, s.positions, p, rows(out.data, out.width));
    }
    return out;
  }

  private attendRows(src: Float32Array, rows: number, width: number, k: KVStorage, v: KVStorage, positions: Int32Array, p: AttentionParams, out: Float32Array): void {
    const kc = k as CpuKV, vc = v as CpuKV;
    if (!(kc instanceof CpuKV) || !(vc instanceof CpuKV)) throw new PsionicError("backend.foreign", "attention: the caches do not belong to the cpu backend");
    if (kc.precision !== vc.precision) throw new PsionicError("backend.shape", `attention: K cache ${kc.precision}, V cache ${vc.precision}`);
    if (positions.length !== rows) throw new PsionicError("backend.shape", `attention: ${positions.length} positions for ${rows} queries`);
    if (width !== p.heads * p.headDimK || kc.width !== p.kvHeads * p.headDimK || vc.width !== p.kvHeads * p.headDimV) {
      throw new PsionicError("backend.shape", `attention: q ${width}, K ${kc.width}, V ${vc.width} wide do not fit ${p.heads}/${p.kvHeads} heads of ${p.headDimK}/${p.headDimV}`);
    }
    let last = -1;
    for (let i = 0; i < positions.length; i++) last = Math.max(last, positions[i]!);
    if (last >= kc.capacity) throw new PsionicError("kv.overflow", `attention: position ${last} outside a cache of ${kc.capacity}`);
    const nKv = kc.viewCells(last);
    attention({
      q: src, k: kc.data, v: vc.data, qPositions: positions, nHead: p.heads, nHeadKv: p.kvHeads,
      headDim: p.headDimK, headDimV: p.headDimV, nKv, scale: p.scale, window: p.window,
      sinks: p.sinks ? weight(p.sinks).vector() : null,
      precision: ggmlAttentionPrecision(rows, p.headDimV), kvChunks: ggmlDecodeChunks(rows, nKv, this.threads), out,
    }, this.opThreads);
  }
}
