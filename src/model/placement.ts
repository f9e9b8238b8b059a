// Which backend runs each part of a model: `-ngl N` puts the first N
// transformer layers (with the token embedding) on the GPU backend and the
// rest on the CPU backend; the output head counts as layer `layers` (as in
// llama.cpp, where -ngl must exceed the layer count to offload it too).
// Activations cross from one backend to the next by a host copy where
// consecutive layers live on different backends.
import type { Activation, Backend } from "../runtime/backend.ts";
import { refuse } from "../util/errors.ts";

export class LayerPlacement {
  private constructor(private readonly first: Backend, private readonly offloaded: number, private readonly rest: Backend) {}

  /** Every layer and the head on one backend. */
  static single(backend: Backend): LayerPlacement {
    return new LayerPlacement(backend, Number.MAX_SAFE_INTEGER, backend);
  }

  /** Layers 0 .. firstLayers-1 (and the embedding, when firstLayers > 0) on `first`, the rest on `rest`. */
  static split(first: Backend, firstLayers: number, rest: Backend): LayerPlacement {
    if (!Number.isInteger(firstLayers) || firstLayers < 0) refuse("model.bad-placement", `-ngl must be a non-negative integer, got ${firstLayers}`);
    return new LayerPlacement(first, firstLayers, rest);
  }

  /** Backend of layer `il`; `il` = the layer count is the output head. */
  at(il: number): Backend {
    return il < this.offloaded ? this.first : this.rest;
  }

  /** The distinct backends, in layer order. */
  get backends(): Backend[] {
    return this.first === this.rest || this.offloaded === 0 ? [this.at(0)] : [this.first, this.rest];
  }

  /** `x` (on `from`) as an activation of `to`: itself when they are one backend. */
  static move(x: Activation, from: Backend, to: Backend): Activation {
    return from === to ? x : to.upload(from.download(x), x.rows, x.width);
  }
}

/**
 * Layer il + 1, when the backend of layer il runs it too: layer il's last
 * residual add can then RMS-normalize its sum for that layer in the same op.
 */
export function sameBackendNext<L>(placement: LayerPlacement, layers: readonly L[], il: number): L | undefined {
  return il + 1 < layers.length && placement.at(il + 1) === placement.at(il) ? layers[il + 1] : undefined;
}
