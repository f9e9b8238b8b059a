// The plain TypeScript float32 backend: the slow oracle the fast backends are
// tested against, not the engine. Weights are decoded to float32 once at load
// and every product is a float64-accumulated dot of float32 values.
//
// Like ggml, it rounds the activations of each product to the weight's
// "vec_dot" type first (activation-rounding.ts), and follows ggml's flash
// attention arithmetic for batches under 64 queries (Q in F16, the V sum in
// F16; attention.ts). With both, a one-token Q8_0 llama matches llama.cpp's
// logits to 2.4e-7 (without: 2.5e-2). What remains different is summation
// order inside sums, i.e. ulps; but an ulp can move a value across a Q8_0
// rounding boundary, which moves logits by ~0.02 (see parity-harness.ts).
import { attendSegmentsByCopy, checkConcat, checkSameShape, downloadCopy, type AttentionSegment } from "../backend.ts";
import { codecLayout, referenceCodecs } from "../../gguf/quant/codecs.ts";
import type { GGMLType } from "../../gguf/types.ts";
import { PsionicError } from "../../util/errors.ts";
import type {
  Activation, AttentionParams, Backend, KVPrecision, KVStorage, MoEParams, MoEWeights, RopeParams, Weight,
} from "../backend.ts";
import { referenceAttention } from "./attention.ts";
import { referenceMoE } from "./moe.ts";
import { activationRoundingFor, roundActivations } from "./activation-rounding.ts";
import { matmulRows } from "./matmul.ts";
import { ropeCache, rotateHead } from "./rope.ts";

export class RefActivation implements Activation {
  constructor(readonly rows: number, readonly width: number, readonly data: Float32Array) {}
}

export class RefWeight implements Weight {
  constructor(readonly name: string, readonly dims: readonly number[], readonly type: GGMLType, readonly values: Float32Array) {}
}

class RefKV implements KVStorage {
  readonly data: Float32Array | Float16Array;
  constructor(readonly capacity: number, readonly width: number, readonly precision: KVPrecision) {
    this.data = precision === "f16" ? new Float16Array(capacity * width) : new Float32Array(capacity * width);
  }
}

const act = (x: Activation) => x as RefActivation;
const weight = (w: Weight) => w as RefWeight;


export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

// ggml's CPU flash attention switches to its float32 tiled path from this many queries.
const GGML_FLASH_TILE_QUERIES = 64;

export interface ReferenceOptions {
  /** Round activations as ggml does: to each weight's vec_dot type before products, and F16 flash attention (default true). */
  roundActivations?: boolean;
}

export class ReferenceBackend implements Backend {
  readonly name = "reference";
  private readonly rounding: boolean;

  constructor(options: ReferenceOptions = {}) {
    this.rounding = options.roundActivations ?? true;
  }

  /** x as a product with `w` sees it. */
  private productInput(x: Float32Array, width: number, w: RefWeight): Float32Array {
    return this.rounding ? roundActivations(x, width, activationRoundingFor(w.type)) : x;
  }

  loadWeight(name: string, type: GGMLType, dims: readonly number[], bytes: Uint8Array): Weight {
    // The TypeScript codecs, not the C kernels: the reference depends on no native code.
    const elements = dims.reduce((a, b) => a * b, 1);
    let layout, expected;
    try {
      ({ layout, bytes: expected } = codecLayout(type, elements));
    } catch (error) {
      throw error instanceof PsionicError ? new PsionicError(error.code, `tensor ${name}: ${error.message}`) : error;
    }
    if (bytes.byteLength !== expected) throw new PsionicError("model.bad-tensor", `tensor ${name}: ${elements} ${layout.name} values need ${expected} bytes, got ${bytes.byteLength}`);
    const values = new Float32Array(elements);
    referenceCodecs.get(type)!.decode(bytes, values, elements);
    return new RefWeight(name, dims, type, values);
  }

  upload(values: Float32Array, rows: number, width: number): Activation {
    if (values.length !== rows * width) throw new PsionicError("backend.shape", `upload: ${values.length} values for ${rows}x${width}`);
    return new RefActivation(rows, width, values.slice());
  }

  download(x: Activation, into?: Float32Array): Float32Array {
    return downloadCopy(x, act(x).data, into);
  }

  /** Every activation is a fresh array: nothing to reuse. */
  beginStep(): void {}

  embed(table: Weight, tokens: Int32Array): Activation {
    const t = weight(table);
    const width = t.dims[0]!, vocab = t.dims[1]!;
    const out = new Float32Array(tokens.length * width);
    tokens.forEach((token, i) => {
      if (!(token >= 0 && token < vocab)) throw new PsionicError("model.bad-token", `token id ${token} is outside the vocabulary of ${vocab}`);
      out.set(t.values.subarray(token * width, (token + 1) * width), i * width);
    });
    return new RefActivation(tokens.length, width, out);
  }

  takeRows(x: Activation, rows: readonly number[]): Activation {
    const a = act(x);
    const out = new Float32Array(rows.length * a.width);
    rows.forEach((r, i) => out.set(a.data.subarray(r * a.width, (r + 1) * a.width), i * a.width));
    return new RefActivation(rows.length, a.width, out);
  }

  attendSegments(q: Activation, k: Activation, v: Activation, segments: readonly AttentionSegment[], params: AttentionParams): Activation {
    return attendSegmentsByCopy(this, q, k, v, segments, params);
  }

  concatRows(parts: readonly Activation[]): Activation {
    const width = checkConcat(parts);
    const out = new Float32Array(parts.reduce((n, p) => n + p.rows, 0) * width);
    let at = 0;
    for (const p of parts) {
      out.set(act(p).data, at);
      at += p.rows * width;
    }
    return new RefActivation(out.length / width, width, out);
  }

  rmsNorm(x: Activation, w: Weight | null, eps: number, groupWidth = x.width): Activation {
    const a = act(x);
    const scale = w ? weight(w).values : null;
    const out = new Float32Array(a.data.length);
    for (let g = 0; g < a.data.length; g += groupWidth) {
      let sum = 0;
      for (let i = 0; i < groupWidth; i++) sum += Math.fround(a.data[g + i]! * a.data[g + i]!);
      // As ggml: float squares summed in double, the scale in float, the weight a separate multiply.
      const f = Math.fround;
      const s = f(1 / f(Math.sqrt(f(f(sum / groupWidth) + f(eps)))));
      for (let i = 0; i < groupWidth; i++) {
        const y = Math.fround(a.data[g + i]! * s);
        out[g + i] = scale ? y * scale[i]! : y;
      }
    }
    return new RefActivation(a.rows, a.width, out);
  }

  matmul(x: Activation, w: Weight, bias?: Weight): Activation {
    const a = act(x), m = weight(w);
    const inWidth = m.dims[0]!, outWidth = m.dims[1]!;
    if (a.width !== inWidth) throw new PsionicError("backend.shape", `matmul ${m.name}: input width ${a.width}, weight rows of ${inWidth}`);
    const input = this.productInput(a.data, inWidth, m);
    return new RefActivation(a.rows, outWidth, matmulRows(input, a.rows, m.values, inWidth, outWidth, bias ? weight(bias).values : null));
  }

  rope(x: Activation, positions: Int32Array, headDim: number, p: RopeParams): Activation {
    const a = act(x);
    const out = a.data.slice();
    const cache = new Float32Array(p.dims);
    const factors = p.freqFactors ? weight(p.freqFactors).values : null;
    for (let r = 0; r < a.rows; r++) {
      ropeCache(positions[r]!, p, factors, cache);
      for (let off = r * a.width; off < (r + 1) * a.width; off += headDim) rotateHead(out, off, cache, p);
    }
    return new RefActivation(a.rows, a.width, out);
  }

  add(x: Activation, y: Activation): Activation {
    checkSameShape(x, y, "add");
    const a = act(x).data, b = act(y).data;
    const out = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i]!;
    return new RefActivation(x.rows, x.width, out);
  }

  swiglu(gate: Activation, up: Activation): Activation {
    checkSameShape(gate, up, "swiglu");
    const g = act(gate).data, u = act(up).data;
    const out = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) out[i] = Math.fround(silu(g[i]!)) * u[i]!;
    return new RefActivation(gate.rows, gate.width, out);
  }

  moe(x: Activation, w: MoEWeights, p: MoEParams): Activation {
    const a = act(x);
    const v = (t: Weight | undefined) => (t ? weight(t).values : null);
    const out = referenceMoE(a.data, a.rows, {
      router: weight(w.router), routerBias: v(w.routerBias),
      gate: weight(w.gate), gateBias: v(w.gateBias),
      up: weight(w.up), upBias: v(w.upBias),
      down: weight(w.down), downBias: v(w.downBias),
    }, p, (values, width, w) => this.productInput(values, width, w));
    return new RefActivation(a.rows, weight(w.down).dims[1]!, out);
  }

  allocKV(capacity: number, width: number, precision: KVPrecision): KVStorage {
    return new RefKV(capacity, width, precision);
  }

  storeKV(cache: KVStorage, x: Activation, firstSlot: number): void {
    const c = cache as RefKV, a = act(x);
    if (a.width !== c.width) throw new PsionicError("backend.shape", `storeKV: rows of ${a.width} into a cache of ${c.width}`);
    if (firstSlot < 0 || firstSlot + a.rows > c.capacity) {
      throw new PsionicError("kv.overflow", `storeKV: slots ${firstSlot}..${firstSlot + a.rows - 1} outside a cache of ${c.capacity}`);
    }
    c.data.set(a.data, firstSlot * c.width);
  }

  attention(q: Activation, k: KVStorage, v: KVStorage, positions: Int32Array, p: AttentionParams): Activation {
    const out = referenceAttention({
      q: act(q).data, k: (k as RefKV).data, v: (v as RefKV).data, positions,
      sinks: p.sinks ? weight(p.sinks).values : null,
      f16Online: this.rounding && k.precision === "f16" && v.precision === "f16" && q.rows < GGML_FLASH_TILE_QUERIES,
    }, p);
    return new RefActivation(q.rows, p.heads * p.headDimV, out);
  }
}
