// The CUDA backend: the op set on kernels/cuda, with weights in their GGUF
// types on the device, activations in a device arena reset at each forward
// step (embed starts a step, as on the CPU backend), and an F16 KV cache.
// Every launch goes to one stream in order, so an op never waits for the
// previous one on the host; only download(), argmaxRows() and topKRows() synchronize. A
// step of up to GRAPH_MAX_ROWS rows (decode) is recorded from its embed and
// runs as a few CUDA graphs, the first launched while the rest is recorded,
// the last when its result is read (kernels/cuda/graph.cu).
//
// Arithmetic follows the CPU backend where it decides rounding (activations
// quantized per 32 values for quantized weights, rounded to the weight's type
// for F16/BF16; the CPU's RoPE and SwiGLU formulas); sums run in another
// order, so results agree to float rounding, and greedy picks agree except
// at near-ties (cuda-parity.cuda-check.ts).
import { ptr, type Pointer } from "bun:ffi";
import { checkCuda, cudaDevices, cudaKernels } from "../../../ffi/cuda.ts";
import { GGMLType } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";
import { checkConcat, checkSameShape, downloadTarget, ownedActivation, PERSISTENT } from "../backend.ts";
import type {
  Activation, AttentionParams, AttentionSegment, Backend, KVPrecision, KVStorage, MoEParams, MoEWeights, Product, RopeParams, TopKRows, Weight,
} from "../backend.ts";
import { CudaActivation, CudaKV, CudaWeight, DeviceArena, deviceAlloc, dev, pinnedFloats, uploadWeight } from "./cuda-tensors.ts";

export interface CudaBackendOptions {
  /** Which GPU (default 0). */
  device?: number;
  /** Bytes per activation-arena chunk (default 256 MiB). */
  arenaBytes?: number;
  /** Called as weights are uploaded (bytes so far). */
  onUpload?: (bytes: number) => void;
}

const FLOAT_TYPES = new Set([GGMLType.F32, GGMLType.F16, GGMLType.BF16]);

/** Writes a non-negative integer (an address, a count) as the little-endian 64-bit entry i of a table of uint32 pairs (no BigInt). */
function setAddress(table: Uint32Array, i: number, address: number): void {
  table[2 * i] = address % 0x100000000;
  table[2 * i + 1] = Math.floor(address / 0x100000000);
}

/** Largest step recorded as a graph: decode and batched decode (kernels/cuda/matmul.cuh keeps these off cuBLAS). */
const GRAPH_MAX_ROWS = 64;

export class CudaBackend implements Backend {
  readonly name = "cuda";
  readonly deviceName: string;
  private readonly arena: DeviceArena;
  private readonly lib = cudaKernels();
  private uploaded = 0;
  private graphs = true;
  /**
   * The activation whose int8 rows are in the kernels' scratch: the input of
   * the last product with a quantized weight, or a whole-row RMSNorm's output
   * (which writes them as it normalizes). The next product of it (q, k and v;
   * the router and experts) skips quantizing it again.
   */
  private lastQuantizedInput: Activation | null = null;
  /** Nine 64-bit addresses for matmuls' pointer tables, reused call after call. */
  private readonly addressTable = new Uint32Array(18);
  private readonly onUpload?: (bytes: number) => void;

  constructor(options: CudaBackendOptions = {}) {
    const devices = cudaDevices();
    const index = options.device ?? 0;
    const device = devices[index];
    if (!device) throw new PsionicError("cuda.unavailable", `CUDA device ${index} does not exist (${devices.length} found)`);
    this.deviceName = device.name;
    checkCuda(this.lib.psi_cuda_init(index), `CUDA device ${index} (${device.name})`);
    this.arena = new DeviceArena(options.arenaBytes ?? 256 << 20);
    this.onUpload = options.onUpload;
    this.useGraphs(process.env.PSIONIC_CUDA_GRAPHS !== "0");
    // PSIONIC_CUDA_TOPK=0: no top-k on the device, so sampled steps download their logits (the A/B in scripts/device-check.sh).
    if (process.env.PSIONIC_CUDA_TOPK === "0") Object.assign(this, { topKRows: undefined });
  }

  /**
   * Decode steps (up to GRAPH_MAX_ROWS rows) recorded and run as CUDA graphs
   * (kernels/cuda/graph.cu); on by default, PSIONIC_CUDA_GRAPHS=0 turns them off.
   */
  useGraphs(on: boolean): void {
    this.graphs = on;
    checkCuda(this.lib.psi_cuda_graphs(on ? 1 : 0), "CUDA graphs");
  }

  /** Graphs captured from decode steps (a step runs as a few, kernels/cuda/graph.cu), graph launches that replayed one, and host-to-device staging copies (token ids, positions). */
  graphStats(): { captured: number; replayed: number; stagingCopies: number } {
    const out = new Float64Array(3);
    this.lib.psi_cuda_graph_stats(ptr(out));
    return { captured: out[0]!, replayed: out[1]!, stagingCopies: out[2]! };
  }

  /** "loaded", or why prefill products run without cuBLAS. */
  cublasStatus(): string {
    return String(this.lib.psi_cuda_cublas_status());
  }

  private act(x: Activation, op: string): number {
    return ownedActivation(x, CudaActivation, "cuda", this.arena.step, op).address;
  }

  private output(rows: number, width: number): CudaActivation {
    return new CudaActivation(rows, width, this.arena.take(rows * width * 4), this.arena.step);
  }

  loadWeight(name: string, type: GGMLType, dims: readonly number[], bytes: Uint8Array): Weight {
    const w = uploadWeight(name, type, dims, bytes);
    this.uploaded += bytes.byteLength;
    this.onUpload?.(this.uploaded);
    return w;
  }

  upload(values: Float32Array, rows: number, width: number): Activation {
    if (values.length !== rows * width) throw new PsionicError("backend.shape", `upload: ${values.length} values for ${rows}x${width}`);
    const a = new CudaActivation(rows, width, 0, PERSISTENT);
    const address = deviceAlloc(values.byteLength, "upload", a);
    (a as { address: number }).address = address;
    checkCuda(this.lib.psi_cuda_upload(dev(address), ptr(values), values.byteLength), "upload");
    return a;
  }

  download(x: Activation, into?: Float32Array): Float32Array {
    const out = downloadTarget(x, into);
    checkCuda(this.lib.psi_cuda_download(ptr(out), dev(this.act(x, "download")), out.byteLength), "download");
    return out;
  }

  hostBuffer(floats: number): Float32Array {
    return pinnedFloats(floats);
  }

  beginStep(): void {
    this.arena.beginStep();
  }

  argmaxRows(x: Activation): Int32Array {
    const out = new Int32Array(x.rows);
    checkCuda(this.lib.psi_cuda_argmax_rows(dev(this.act(x, "argmaxRows")), x.rows, x.width, ptr(out)), "argmaxRows");
    const bad = out.indexOf(-1);
    if (bad >= 0) throw new PsionicError("sampler.bad-logits", `row ${bad} holds a non-finite logit; the forward pass produced a NaN or infinity`);
    return out;
  }

  topKRows(x: Activation, k: number): TopKRows | null {
    const n = x.rows * k;
    const out = new Int32Array(2 * n + 2 * x.rows); // ids, values, then a double per row
    checkCuda(this.lib.psi_cuda_topk_rows(dev(this.act(x, "topKRows")), x.rows, x.width, k, ptr(out)), "topKRows");
    for (let r = 0; r < x.rows; r++) if (out[r * k]! < 0) return null;
    return { k, ids: out.subarray(0, n), values: new Float32Array(out.buffer, 4 * n, n), logZ: new Float64Array(out.buffer, 8 * n, x.rows) };
  }

  embed(table: Weight, tokens: Int32Array): Activation {
    const t = table as CudaWeight;
    if (t.dims.length !== 2) throw new PsionicError("backend.shape", `embed: ${t.name} is not a 2-D table`);
    const vocab = t.rows;
    const bad = tokens.findIndex((id) => !(id >= 0 && id < vocab));
    if (bad >= 0) throw new PsionicError("model.bad-token", `token id ${tokens[bad]} is outside the vocabulary of ${vocab}`);
    if (tokens.length === 0) throw new PsionicError("backend.shape", "embed: no tokens");
    this.arena.beginStep();
    // A decode step is recorded from here and runs as a few graphs (kernels/cuda/graph.cu).
    if (this.graphs && tokens.length <= GRAPH_MAX_ROWS) checkCuda(this.lib.psi_cuda_record_begin(), "step start");
    const out = this.output(tokens.length, t.cols);
    checkCuda(this.lib.psi_cuda_get_rows(t.descPointer, ptr(tokens), tokens.length, dev(out.address)), "embed");
    return out;
  }

  takeRows(x: Activation, rows: readonly number[]): Activation {
    const src = this.act(x, "takeRows");
    const bad = rows.findIndex((r) => !(Number.isInteger(r) && r >= 0 && r < x.rows));
    if (bad >= 0) throw new PsionicError("backend.shape", `takeRows: row ${rows[bad]} is not in ${x.rows} rows`);
    if (rows.length === x.rows && rows.every((r, i) => r === i)) return x;
    if (rows.length === 0) throw new PsionicError("backend.shape", "takeRows: no rows");
    const out = this.output(rows.length, x.width);
    checkCuda(this.lib.psi_cuda_take_rows(dev(src), ptr(Int32Array.from(rows)), rows.length, x.width, dev(out.address)), "takeRows");
    return out;
  }

  concatRows(parts: readonly Activation[]): Activation {
    const width = checkConcat(parts);
    const out = this.output(parts.reduce((n, p) => n + p.rows, 0), width);
    let at = out.address;
    for (const p of parts) {
      const bytes = p.rows * width * 4;
      checkCuda(this.lib.psi_cuda_copy(dev(at), dev(this.act(p, "concatRows")), bytes), "concatRows");
      at += bytes;
    }
    return out;
  }

  rmsNorm(x: Activation, w: Weight | null, eps: number, groupWidth = x.width): Activation {
    return this.norm(x, null, w, eps, groupWidth).normed;
  }

  addRmsNorm(a: Activation, b: Activation, w: Weight | null, eps: number): { sum: Activation; normed: Activation } {
    checkSameShape(a, b, "addRmsNorm");
    return this.norm(a, b, w, eps, a.width) as { sum: Activation; normed: Activation };
  }

  /** (x + addend when given), RMS-normalized per group; a whole-row norm also writes its int8 rows. */
  private norm(x: Activation, addend: Activation | null, w: Weight | null, eps: number, groupWidth: number): { sum: Activation | null; normed: Activation } {
    const src = this.act(x, "rmsNorm");
    if (!(Number.isInteger(groupWidth) && groupWidth > 0 && x.width % groupWidth === 0)) throw new PsionicError("backend.shape", `rmsNorm: groups of ${groupWidth} do not divide rows of ${x.width}`);
    const weight = w as CudaWeight | null;
    if (weight && weight.dims.reduce((a, b) => a * b, 1) !== groupWidth) throw new PsionicError("backend.shape", `rmsNorm: ${weight.name} does not have ${groupWidth} values`);
    const sum = addend ? this.output(x.rows, x.width) : null;
    const out = this.output(x.rows, x.width);
    // A whole-row norm feeds products (q/k/v, the router, the head): it writes their int8 rows too.
    const quantize = groupWidth === x.width && x.width % 32 === 0;
    checkCuda(this.lib.psi_cuda_rms_norm(dev(src), addend ? dev(this.act(addend, "addRmsNorm")) : null, sum ? dev(sum.address) : null,
      weight ? dev(weight.vector()) : null, eps, x.rows, x.width, groupWidth, dev(out.address), quantize ? 1 : 0), "rmsNorm");
    if (quantize) this.lastQuantizedInput = out;
    return { sum, normed: out };
  }

  /** x times w's rows (a 2-D weight of x's width) plus a bias of one value per output: refused otherwise. */
  private checkProduct(x: Activation, w: Weight, bias?: Weight): { m: CudaWeight; b: CudaWeight | undefined } {
    const m = w as CudaWeight, b = bias as CudaWeight | undefined;
    if (m.dims.length !== 2) throw new PsionicError("backend.shape", `matmul ${m.name}: a ${m.dims.length}-D weight is not a matrix`);
    if (x.width !== m.cols) throw new PsionicError("backend.shape", `matmul ${m.name}: input width ${x.width}, weight rows of ${m.cols}`);
    if (b && b.dims.reduce((a, c) => a * c, 1) !== m.rows) throw new PsionicError("backend.shape", `matmul ${m.name}: bias ${b.name} does not have ${m.rows} values`);
    return { m, b };
  }

  matmul(x: Activation, w: Weight, bias?: Weight): Activation {
    const src = this.act(x, "matmul");
    const { m, b } = this.checkProduct(x, w, bias);
    const out = this.output(x.rows, m.rows);
    const quantized = !FLOAT_TYPES.has(m.type);
    const reuse = quantized && this.lastQuantizedInput === x ? 1 : 0;
    checkCuda(this.lib.psi_cuda_matmul(m.descPointer, dev(src), x.rows, b ? dev(b.vector()) : null, dev(out.address), reuse), `matmul ${m.name}`);
    if (quantized) this.lastQuantizedInput = x;
    return out;
  }

  matmuls(x: Activation, list: readonly Product[]): Activation[] {
    const first = list[0]?.w as CudaWeight | undefined;
    // One launch for weights of one type and width (kernels/cuda/matmul.cu psi_cuda_matmul_many).
    const together = first !== undefined && list.length <= 3 &&
      list.every(({ w }) => (w as CudaWeight).type === first.type && (w as CudaWeight).cols === first.cols);
    if (!together) return list.map(({ w, bias }) => this.matmul(x, w, bias));
    const src = this.act(x, "matmul");
    const outs = list.map(({ w, bias }) => this.output(x.rows, this.checkProduct(x, w, bias).m.rows));
    const quantized = !FLOAT_TYPES.has(first.type);
    const reuse = quantized && this.lastQuantizedInput === x ? 1 : 0;
    // Three tables of up to three addresses (descriptors, biases, outputs) as the C side's pointer arrays.
    const table = this.addressTable;
    list.forEach(({ w, bias }, i) => {
      setAddress(table, i, (w as CudaWeight).descPointer as unknown as number);
      setAddress(table, 3 + i, bias ? (bias as CudaWeight).vector() : 0);
      setAddress(table, 6 + i, outs[i]!.address);
    });
    const at = ptr(table) as unknown as number;
    checkCuda(this.lib.psi_cuda_matmul_many(dev(at), dev(at + 24), dev(at + 48), list.length, dev(src), x.rows, reuse), "matmul (q, k, v / gate, up)");
    if (quantized) this.lastQuantizedInput = x;
    return outs;
  }

  // RopeArgs (kernels/cuda/ops.cu): eight floats, then mode and dims as int32.
  private readonly ropeArgs = new WeakMap<RopeParams, Uint8Array>();
  private ropeBytes(p: RopeParams): Uint8Array {
    let bytes = this.ropeArgs.get(p);
    if (!bytes) {
      const buffer = new ArrayBuffer(40);
      new Float32Array(buffer, 0, 8).set([p.freqBase, p.freqScale, p.extFactor, p.attnFactor, p.betaFast, p.betaSlow, p.originalContext, 0]);
      new Int32Array(buffer, 32, 2).set([p.mode === "neox" ? 2 : 0, p.dims]);
      bytes = new Uint8Array(buffer);
      this.ropeArgs.set(p, bytes);
    }
    return bytes;
  }

  /** The per-pair frequency divisors (llama 3's rope_freqs) on the device, or null. */
  private ropeFactors(p: RopeParams): Pointer | null {
    return p.freqFactors ? dev((p.freqFactors as CudaWeight).vector()) : null;
  }

  rope(x: Activation, positions: Int32Array, headDim: number, p: RopeParams): Activation {
    return this.rotate(x, null, positions, headDim, p).q;
  }

  ropeQK(q: Activation, k: Activation, positions: Int32Array, headDim: number, p: RopeParams): { q: Activation; k: Activation } {
    const out = this.rotate(q, k, positions, headDim, p);
    return { q: out.q, k: out.k! };
  }

  /** Refuses rows, positions or dims rope cannot rotate, naming them. */
  private checkRope(rows: readonly Activation[], positions: Int32Array, headDim: number, p: RopeParams): void {
    for (const x of rows) {
      if (positions.length !== x.rows) throw new PsionicError("backend.shape", `rope: ${positions.length} positions for ${x.rows} rows`);
      if (!(Number.isInteger(headDim) && headDim > 0 && x.width % headDim === 0)) throw new PsionicError("backend.shape", `rope: heads of ${headDim} do not divide rows of ${x.width}`);
    }
    if (!(p.dims > 0 && p.dims % 2 === 0 && p.dims <= headDim)) throw new PsionicError("backend.shape", `rope: ${p.dims} rotated dims in heads of ${headDim}`);
  }

  /** q (and k, when given: rows of the same tokens) rotated in one launch. */
  private rotate(q: Activation, k: Activation | null, positions: Int32Array, headDim: number, p: RopeParams): { q: Activation; k: Activation | null } {
    this.checkRope(k ? [q, k] : [q], positions, headDim, p);
    const qOut = this.output(q.rows, q.width), kOut = k ? this.output(k.rows, k.width) : null;
    checkCuda(this.lib.psi_cuda_rope(dev(this.act(q, "rope")), dev(qOut.address), q.width / headDim,
      k ? dev(this.act(k, "rope")) : null, kOut ? dev(kOut.address) : null, k ? k.width / headDim : 0,
      ptr(positions), q.rows, headDim, ptr(this.ropeBytes(p)), this.ropeFactors(p)), "rope");
    return { q: qOut, k: kOut };
  }

  add(a: Activation, b: Activation): Activation {
    checkSameShape(a, b, "add");
    const out = this.output(a.rows, a.width);
    checkCuda(this.lib.psi_cuda_add(dev(this.act(a, "add")), dev(this.act(b, "add")), dev(out.address), a.rows * a.width), "add");
    return out;
  }

  swiglu(gate: Activation, up: Activation): Activation {
    checkSameShape(gate, up, "swiglu");
    const out = this.output(gate.rows, gate.width);
    checkCuda(this.lib.psi_cuda_swiglu(dev(this.act(gate, "swiglu")), dev(this.act(up, "swiglu")), dev(out.address), gate.rows * gate.width), "swiglu");
    return out;
  }

  moe(x: Activation, w: MoEWeights, p: MoEParams): Activation {
    return this.experts(null, x, w, p);
  }

  moeAdd(residual: Activation, x: Activation, w: MoEWeights, p: MoEParams): Activation {
    checkSameShape(residual, x, "moeAdd");
    return this.experts(residual, x, w, p);
  }

  moeAddRmsNorm(residual: Activation, x: Activation, w: MoEWeights, p: MoEParams, normWeight: Weight | null, eps: number): { sum: Activation; normed: Activation } {
    checkSameShape(residual, x, "moeAddRmsNorm");
    const weight = normWeight as CudaWeight | null;
    if (weight && weight.dims.reduce((a, b) => a * b, 1) !== x.width) throw new PsionicError("backend.shape", `moeAddRmsNorm: ${weight.name} does not have ${x.width} values`);
    const normed = this.output(x.rows, x.width);
    const sum = this.experts(residual, x, w, p, { weight, eps, out: normed });
    // The launch wrote the normed rows' int8 codes where the next products look for them.
    if (x.width % 32 === 0) this.lastQuantizedInput = normed;
    return { sum, normed };
  }

  /** moe(x), plus the residual in the same pass when given, and that sum normalized into `norm.out` when given. */
  private experts(residual: Activation | null, x: Activation, w: MoEWeights, p: MoEParams,
    norm?: { weight: CudaWeight | null; eps: number; out: CudaActivation }): Activation {
    const src = this.act(x, "moe");
    const router = w.router as CudaWeight, gate = w.gate as CudaWeight, up = w.up as CudaWeight, down = w.down as CudaWeight;
    if (router.cols !== x.width) throw new PsionicError("backend.shape", `moe: input width ${x.width}, router ${router.name} rows of ${router.cols}`);
    if (p.activation.kind !== "swiglu-oai") throw new PsionicError("backend.unsupported", `moe: activation ${p.activation.kind} is not supported`);
    const experts = router.rows, ff = gate.rows;
    const same = (t: CudaWeight, dims: number[]) => t.dims.length === dims.length && t.dims.every((v, i) => v === dims[i]);
    if (!same(gate, [x.width, ff, experts]) || !same(up, [x.width, ff, experts]) || !same(down, [ff, x.width, experts])) {
      throw new PsionicError("backend.shape", `moe: experts ${gate.name} [${gate.dims}], ${up.name} [${up.dims}], ${down.name} [${down.dims}] do not fit d=${x.width}, ${experts} experts`);
    }
    const vec = (t?: Weight) => (t ? dev((t as CudaWeight).vector()) : null);
    const reuse = this.lastQuantizedInput === x ? 1 : 0;
    this.lastQuantizedInput = null; // the expert products reuse the int8 scratch
    const out = this.output(x.rows, x.width);
    checkCuda(this.lib.psi_cuda_moe(dev(src), x.rows, router.descPointer, vec(w.routerBias), gate.descPointer, vec(w.gateBias), up.descPointer, vec(w.upBias),
      down.descPointer, vec(w.downBias), p.expertsUsed, p.activation.alpha, p.activation.limit,
      residual ? dev(this.act(residual, "moeAdd")) : null, dev(out.address), reuse,
      norm?.weight ? dev(norm.weight.vector()) : null, norm?.eps ?? 0, norm ? dev(norm.out.address) : null), "moe");
    return out;
  }

  allocKV(capacity: number, width: number, precision: KVPrecision): KVStorage {
    return new CudaKV(capacity, width, precision);
  }

  private cache(c: KVStorage, op: string): CudaKV {
    if (!(c instanceof CudaKV)) throw new PsionicError("backend.foreign", `${op}: the cache does not belong to the cuda backend`);
    return c;
  }

  storeKV(cache: KVStorage, x: Activation, firstSlot: number): void {
    const c = this.cache(cache, "storeKV");
    if (x.width !== c.width) throw new PsionicError("backend.shape", `storeKV: rows of ${x.width} into a cache of ${c.width}`);
    if (!Number.isInteger(firstSlot) || firstSlot < 0 || firstSlot + x.rows > c.capacity) {
      throw new PsionicError("kv.overflow", `storeKV: slots ${firstSlot}..${firstSlot + x.rows - 1} outside a cache of ${c.capacity}`);
    }
    checkCuda(this.lib.psi_cuda_store_rows(dev(this.act(x, "storeKV")), x.rows, x.width, dev(c.address), firstSlot), "storeKV");
  }

  attention(q: Activation, k: KVStorage, v: KVStorage, positions: Int32Array, p: AttentionParams): Activation {
    const out = this.output(q.rows, p.heads * p.headDimV);
    this.attend(this.act(q, "attention"), null, null, q, [{ kCache: k, vCache: v, positions, rowStart: 0 }], p, out);
    return out;
  }

  attendSegments(q: Activation, k: Activation, v: Activation, segments: readonly AttentionSegment[], p: AttentionParams): Activation {
    return this.attendRows("attendSegments", q, k, v, segments, p);
  }

  ropeAttendSegments(q: Activation, k: Activation, v: Activation, positions: Int32Array, headDim: number, rope: RopeParams,
    segments: readonly AttentionSegment[], p: AttentionParams): Activation {
    this.checkRope([q, k], positions, headDim, rope);
    if (headDim !== p.headDimK) throw new PsionicError("backend.shape", `ropeAttendSegments: rope heads of ${headDim}, attention heads of ${p.headDimK}`);
    // The kernel takes each row's position from its segment: they must be the positions given.
    for (const s of segments) {
      s.positions.forEach((pos, j) => {
        if (positions[s.rowStart + j] !== pos) throw new PsionicError("backend.shape", `ropeAttendSegments: row ${s.rowStart + j} is at ${positions[s.rowStart + j]} for rope, ${pos} in its segment`);
      });
    }
    return this.attendRows("ropeAttendSegments", q, k, v, segments, p, { args: this.ropeBytes(rope), factors: this.ropeFactors(rope), rotated: this.output(q.rows, q.width) });
  }

  /** Each segment's k and v rows stored (rotated first with `rope`), then q attends: attendSegments' checks and launch. */
  private attendRows(op: string, q: Activation, k: Activation, v: Activation, segments: readonly AttentionSegment[], p: AttentionParams,
    rope?: { args: Uint8Array; factors: Pointer | null; rotated: CudaActivation }): Activation {
    if (k.rows !== q.rows || v.rows !== q.rows) throw new PsionicError("backend.shape", `${op}: ${q.rows} queries, ${k.rows} keys, ${v.rows} values`);
    const out = this.output(q.rows, p.heads * p.headDimV);
    const ordered = [...segments].sort((a, b) => a.rowStart - b.rowStart);
    this.attend(this.act(q, op), this.act(k, op), this.act(v, op), q, ordered, p, out, rope);
    return out;
  }

  /**
   * One launch per run of contiguous segments; k and v rows (when given) are
   * stored first. Heads of whole 32-value blocks also leave the output's int8
   * rows for the output projection.
   */
  private attend(q: number, k: number | null, v: number | null, qa: Activation, segments: readonly AttentionSegment[], p: AttentionParams, out: CudaActivation,
    rope?: { args: Uint8Array; factors: Pointer | null; rotated: CudaActivation }): void {
    if (qa.width !== p.heads * p.headDimK) throw new PsionicError("backend.shape", `attention: q rows of ${qa.width} do not fit ${p.heads} heads of ${p.headDimK}`);
    if (p.heads % p.kvHeads !== 0) throw new PsionicError("backend.shape", `attention: ${p.heads} heads do not share ${p.kvHeads} KV heads evenly`);
    // HostSegment (kernels/cuda/attention.cu): five int64 fields per segment, as uint32 pairs.
    const table = new Uint32Array(segments.length * 10);
    let covered = 0;
    segments.forEach((s, i) => {
      const kc = this.cache(s.kCache, "attention"), vc = this.cache(s.vCache, "attention");
      const n = s.positions.length, first = s.positions[0]!;
      if (kc.width !== p.kvHeads * p.headDimK || vc.width !== p.kvHeads * p.headDimV) {
        throw new PsionicError("backend.shape", `attention: K ${kc.width}, V ${vc.width} wide do not fit ${p.kvHeads} KV heads of ${p.headDimK}/${p.headDimV}`);
      }
      for (let j = 1; j < n; j++) if (s.positions[j] !== first + j) throw new PsionicError("backend.shape", "attention: the cuda backend needs consecutive positions within a sequence");
      if (first < 0 || first + n > kc.capacity) throw new PsionicError("kv.overflow", `attention: positions ${first}..${first + n - 1} outside a cache of ${kc.capacity}`);
      if (s.rowStart !== covered) throw new PsionicError("backend.shape", `attention: segment rows start at ${s.rowStart}, expected ${covered}`);
      covered += n;
      [s.rowStart, n, first, kc.address, vc.address].forEach((value, field) => setAddress(table, i * 5 + field, value));
    });
    if (covered !== qa.rows) throw new PsionicError("backend.shape", `attention: segments cover ${covered} of ${qa.rows} rows`);
    const sinks = p.sinks ? dev((p.sinks as CudaWeight).vector()) : null;
    const quantize = p.headDimV % 32 === 0;
    checkCuda(this.lib.psi_cuda_attend(dev(q), k === null ? null : dev(k), v === null ? null : dev(v), ptr(table), segments.length,
      p.heads, p.kvHeads, p.headDimK, p.headDimV, p.window, p.scale, sinks, dev(out.address), quantize ? 1 : 0,
      rope ? ptr(rope.args) : null, rope?.factors ?? null, rope ? dev(rope.rotated.address) : null), "attention");
    if (quantize) this.lastQuantizedInput = out;
  }
}
