// The scale searches ggml's K-quant reference quantizers run per sub-block, in
// float32, in the same operation order, so encoded blocks match ggml byte for
// byte. `f` (Math.fround) after every operation is what makes double
// arithmetic behave as float32.

const f = Math.fround;
const scratchF32 = new Float32Array(1);
const scratchI32 = new Int32Array(scratchF32.buffer);

/** Round to nearest (ties to even) by ggml's trick: add 1.5 * 2^23 in float32 and read the mantissa. */
export function nearestInt(v: number): number {
  scratchF32[0] = v + 12582912;
  return (scratchI32[0]! & 0x007fffff) - 0x00400000;
}

const GROUP_MAX_EPS = f(1e-15);
const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

/** The element of largest magnitude (first on ties) and its magnitude. */
function signedAbsMax(x: Float32Array, k: number, n: number): { amax: number; max: number } {
  let amax = 0, max = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[k + i]!);
    if (ax > amax) { amax = ax; max = x[k + i]!; }
  }
  return { amax, max };
}

/**
 * Symmetric scale for `n` values x[k..] with codes in [-nmax, nmax-1], stored
 * in L as code + nmax; weights are x^2 (ggml's make_qx_quants, rmse_type 1,
 * no importance weights). Tries 19 scales around nmax / max and keeps the one
 * with the best weighted fit. Returns the scale.
 */
export function symmetricScaleSearch(n: number, nmax: number, x: Float32Array, k: number, L: Int8Array, lk: number): number {
  const { amax, max } = signedAbsMax(x, k, n);
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lk, lk + n);
    return 0;
  }
  let iscale = f(-nmax / max);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[k + i]!;
    const l = clamp(nearestInt(f(iscale * xi)), -nmax, nmax - 1);
    L[lk + i] = l + nmax;
    const w = f(xi * xi);
    sumlx = f(sumlx + f(f(w * xi) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  let scale = suml2 !== 0 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  const tenth = f(0.1);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(tenth * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[k + i]!;
      const l = clamp(nearestInt(f(iscale * xi)), -nmax, nmax - 1);
      const w = f(xi * xi);
      sumlx = f(sumlx + f(f(w * xi) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) L[lk + i] = nmax + clamp(nearestInt(f(iscale * x[k + i]!)), -nmax, nmax - 1);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/**
 * Q3_K's sub-block search (ggml's make_q3_quants with do_rmse): start from
 * nmax / max, then up to five passes that move single codes when that
 * improves the x^2-weighted fit. Codes stored as code + nmax. Returns the scale.
 */
export function q3ScaleSearch(n: number, nmax: number, x: Float32Array, k: number, L: Int8Array, lk: number): number {
  const { amax, max } = signedAbsMax(x, k, n);
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lk, lk + n);
    return 0;
  }
  const iscale = f(-nmax / max);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[k + i]!;
    const l = clamp(nearestInt(f(iscale * xi)), -nmax, nmax - 1);
    L[lk + i] = l;
    const w = f(xi * xi);
    sumlx = f(sumlx + f(f(w * xi) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let pass = 0; pass < 5; pass++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[k + i]!;
      const li = L[lk + i]!;
      const w = f(xi * xi);
      let slx = f(sumlx - f(f(w * xi) * li));
      if (slx > 0) {
        let sl2 = f(suml2 - f(f(w * li) * li));
        const newL = clamp(nearestInt(f(f(xi * sl2) / slx)), -nmax, nmax - 1);
        if (newL !== li) {
          slx = f(slx + f(f(w * xi) * newL));
          sl2 = f(sl2 + f(f(w * newL) * newL));
          if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[lk + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lk + i] = L[lk + i]! + nmax;
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

export interface ScaleMinSearch {
  /** First of the trial scales, relative to nmax (ggml's rmin). */
  rmin: number;
  /** Step between trial scales (ggml's rdelta). */
  rdelta: number;
  /** Number of steps after the first trial (ggml's nstep). */
  nstep: number;
  /** Weigh absolute rather than squared error (ggml's use_mad). */
  absoluteError: boolean;
}

/**
 * Scale and minimum for `n` values with codes in [0, nmax] (ggml's
 * make_qkx2_quants): value ~ scale * code - min. Tries nstep+1 scales and, for
 * each, the least-squares scale and minimum for its codes; keeps the one with
 * the lowest weighted error. Codes go to L[lk..]; returns [scale, min].
 */
export function scaleMinSearch(
  n: number, nmax: number, x: Float32Array, k: number, weights: Float32Array,
  L: Uint8Array, lk: number, search: ScaleMinSearch,
): [number, number] {
  const trial = new Uint8Array(n);
  let min = x[k]!, max = x[k]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[k]!);
  for (let i = 1; i < n; i++) {
    const xi = x[k + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lk, lk + n);
    return [0, -min];
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  const errorOf = (diff: number) => (search.absoluteError ? Math.abs(diff) : f(diff * diff));
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = clamp(nearestInt(f(iscale * f(x[k + i]! - min))), 0, nmax);
    L[lk + i] = l;
    bestError = f(bestError + f(weights[i]! * errorOf(f(f(f(scale * l) + min) - x[k + i]!))));
  }
  if (search.nstep < 1) return [scale, -min];
  for (let is = 0; is <= search.nstep; is++) {
    // ggml measures from the best minimum found so far, not the data minimum.
    iscale = f(f(f(search.rmin + f(search.rdelta * is)) + nmax) / f(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[k + i]!;
      const l = clamp(nearestInt(f(iscale * f(xi - min))), 0, nmax);
      trial[i] = l;
      const w = weights[i]!;
      sumL = f(sumL + f(w * l));
      sumL2 = f(sumL2 + f(f(w * l) * l));
      sumXL = f(sumXL + f(f(w * l) * xi));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
    let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = f(sumXL / sumL2);
    }
    let error = 0;
    for (let i = 0; i < n; i++) {
      error = f(error + f(weights[i]! * errorOf(f(f(f(thisScale * trial[i]!) + thisMin) - x[k + i]!))));
    }
    if (error < bestError) {
      L.set(trial, lk);
      bestError = error;
      scale = thisScale;
      min = thisMin;
    }
  }
  return [scale, -min];
}
