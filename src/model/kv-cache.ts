// Per-layer K and V storage for one sequence, F16 by default as llama.cpp's
// (F32 on request), with a hard context limit (-c). Slot i holds position i.
import type { Backend, KVPrecision, KVStorage } from "../runtime/backend.ts";
import { refuse } from "../util/errors.ts";

export interface KVCacheShape {
  layers: number;
  /** Width of one K row (kvHeads * headDimK) and one V row. */
  kWidth: number;
  vWidth: number;
  contextLimit: number;
  precision?: KVPrecision;
}

export class KVCache {
  readonly contextLimit: number;
  readonly precision: KVPrecision;
  private readonly keys: KVStorage[] = [];
  private readonly values: KVStorage[] = [];
  /** Positions filled so far (the next token goes at this position). */
  private filled = 0;

  /** `backend`: one for every layer, or layer il's backend (-ngl splits layers between two). */
  constructor(backend: Backend | ((il: number) => Backend), shape: KVCacheShape) {
    if (!Number.isInteger(shape.contextLimit) || shape.contextLimit <= 0) refuse("kv.bad-context", `context limit must be a positive integer, got ${shape.contextLimit}`);
    this.contextLimit = shape.contextLimit;
    this.precision = shape.precision ?? "f16";
    const at = typeof backend === "function" ? backend : () => backend;
    for (let il = 0; il < shape.layers; il++) {
      this.keys.push(at(il).allocKV(shape.contextLimit, shape.kWidth, this.precision));
      this.values.push(at(il).allocKV(shape.contextLimit, shape.vWidth, this.precision));
    }
  }

  get length(): number {
    return this.filled;
  }

  /**
   * Claims positions length .. length + count - 1 for the next batch and returns them;
   * refuses (before anything is computed or written) when they do not fit.
   */
  reserve(count: number): Int32Array {
    if (!Number.isInteger(count) || count <= 0) refuse("kv.bad-batch", `a batch needs at least one token, got ${count}`);
    if (this.filled + count > this.contextLimit) {
      refuse("kv.context-full", `${this.filled} cached + ${count} new tokens exceed the context limit of ${this.contextLimit} (-c); raise -c or shorten the prompt`);
    }
    const positions = new Int32Array(count);
    for (let i = 0; i < count; i++) positions[i] = this.filled + i;
    this.filled += count;
    return positions;
  }

  layer(il: number): { k: KVStorage; v: KVStorage } {
    return { k: this.keys[il]!, v: this.values[il]! };
  }

  /** Forgets everything from `position` on (e.g. to reuse a shared prefix). */
  truncate(position: number): void {
    if (!Number.isInteger(position) || position < 0 || position > this.filled) refuse("kv.bad-truncate", `cannot truncate a cache of ${this.filled} to ${position}`);
    this.filled = position;
  }
}
