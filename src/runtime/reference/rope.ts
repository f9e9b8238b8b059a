// Rotary position embedding the way ggml's CPU rope computes it (ggml-cpu
// ops.cpp, rope_yarn and ggml_rope_cache_init): the angle of pair i is
// p * base^(-2i/dims), accumulated in float32 by repeated multiplication as
// ggml does, blended between interpolated and extrapolated by YaRN's ramp, and
// cos/sin scaled by the magnitude factor.
import type { RopeParams } from "../backend.ts";

const f = Math.fround;

/** YaRN's correction dimension for `rotations` full turns over the original context. */
function correctionDim(dims: number, originalContext: number, rotations: number, base: number): number {
  return f((dims * Math.log(originalContext / (rotations * 2 * Math.PI))) / (2 * Math.log(base)));
}

/** The [low, high] pair range over which YaRN ramps from extrapolation to interpolation. */
export function yarnCorrectionDims(p: RopeParams): [number, number] {
  const start = Math.floor(correctionDim(p.dims, p.originalContext, p.betaFast, p.freqBase));
  const end = Math.ceil(correctionDim(p.dims, p.originalContext, p.betaSlow, p.freqBase));
  return [Math.max(0, start), Math.min(p.dims - 1, end)];
}

/**
 * cos and sin (times the magnitude) for every pair of one position:
 * out[2i] = cos, out[2i+1] = sin. `freqFactors` divides each pair's angle.
 */
export function ropeCache(position: number, p: RopeParams, freqFactors: Float32Array | null, out: Float32Array): void {
  const [low, high] = yarnCorrectionDims(p);
  const thetaScale = f(Math.pow(p.freqBase, -2 / p.dims));
  let theta = f(position);
  for (let i0 = 0; i0 < p.dims; i0 += 2) {
    const ff = freqFactors ? freqFactors[i0 / 2]! : 1;
    const extrap = f(theta / ff);
    const interp = f(p.freqScale * extrap);
    let angle = interp;
    let mscale = p.attnFactor;
    if (p.extFactor !== 0) {
      const y = f((Math.floor(i0 / 2) - low) / Math.max(0.001, high - low));
      const rampMix = f((1 - Math.min(1, Math.max(0, y))) * p.extFactor);
      angle = f(f(interp * f(1 - rampMix)) + f(extrap * rampMix));
      mscale = f(mscale * f(1 + f(0.1 * Math.log(1 / p.freqScale))));
    }
    out[i0] = f(Math.cos(angle) * mscale);
    out[i0 + 1] = f(Math.sin(angle) * mscale);
    theta = f(theta * thetaScale);
  }
}

/** Rotates one head (`head` holds headDim values, rotated in place) with a cache from ropeCache. */
export function rotateHead(head: Float32Array, offset: number, cache: Float32Array, p: RopeParams): void {
  const half = p.dims / 2;
  for (let i0 = 0; i0 < p.dims; i0 += 2) {
    const a = p.mode === "neox" ? offset + i0 / 2 : offset + i0;
    const b = p.mode === "neox" ? a + half : a + 1;
    const cos = cache[i0]!, sin = cache[i0 + 1]!;
    const x0 = head[a]!, x1 = head[b]!;
    head[a] = x0 * cos - x1 * sin;
    head[b] = x0 * sin + x1 * cos;
  }
}
