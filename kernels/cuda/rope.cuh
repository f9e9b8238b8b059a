// RoPE as the CPU kernels (and ggml) compute it: normal or NeoX pairs, YaRN's
// ramp between the correction dims, frequency factors, theta built by repeated
// multiplication. Shared by ops.cu's rope launch and attention.cu's fused
// rope + KV store, so both rotate bit for bit alike.
#pragma once
#include "common.cuh"

// RoPE parameters as TypeScript passes them (eight floats, then the mode and dims).
struct RopeArgs {
  float freqBase, freqScale, extFactor, attnFactor, betaFast, betaSlow, nCtxOrig, unused;
  int32_t mode, nDims;
};

// Largest rotated pair count per head (head dims up to 512).
static const int ROPE_MAX_PAIRS = 256;

// What every row's angles share, computed once on the host: YaRN's correction dims and theta's ratio per pair.
struct RopeRamp {
  float corr0, corr1, thetaScale;
};

// Refuses dims the kernels cannot rotate; 0 when they can.
inline int rope_check(const RopeArgs &p, int64_t headDim) {
  if (p.nDims / 2 > ROPE_MAX_PAIRS) { psi_set_error("rope: %d rotated dims (at most %d)", p.nDims, 2 * ROPE_MAX_PAIRS); return -1; }
  if (headDim % 2 || p.nDims % 2 || p.nDims > headDim) {
    psi_set_error("rope: head dim %lld and rotated dims %d must be even, rotated at most the head", (long long)headDim, p.nDims);
    return -1;
  }
  return 0;
}

inline RopeRamp rope_ramp(const RopeArgs &p) {
  const float pi = 3.14159265358979323846f;
  const float start = floorf(p.nDims * logf(p.nCtxOrig / (p.betaFast * 2 * pi)) / (2 * logf(p.freqBase)));
  const float end = ceilf(p.nDims * logf(p.nCtxOrig / (p.betaSlow * 2 * pi)) / (2 * logf(p.freqBase)));
  return {start > 0 ? start : 0, end < p.nDims - 1 ? end : (float)(p.nDims - 1), powf(p.freqBase, -2.0f / p.nDims)};
}

// The block fills cs/sn (shared) with the cos/sin of each rotated pair at position `pos`;
// the caller syncs before reading them.
__device__ __forceinline__ void rope_angles(int pos, const RopeArgs &p, const float *factors, const RopeRamp &r, float *cs, float *sn) {
  for (int64_t pair = threadIdx.x; pair < p.nDims / 2; pair += blockDim.x) {
    float theta = (float)pos;
    for (int64_t k = 0; k < pair; k++) theta *= r.thetaScale;
    const float extrap = theta / (factors ? factors[pair] : 1.0f);
    const float interp = p.freqScale * extrap;
    float th = interp, mscale = p.attnFactor;
    if (p.extFactor != 0.0f) {
      const float span = r.corr1 - r.corr0 > 0.001f ? r.corr1 - r.corr0 : 0.001f;
      const float rampY = ((float)pair - r.corr0) / span;
      const float ramp = 1 - (rampY < 0 ? 0 : rampY > 1 ? 1 : rampY);
      const float mix = ramp * p.extFactor;
      th = fmaf(interp, 1 - mix, extrap * mix);
      mscale *= fmaf(0.1f, logf(1.0f / p.freqScale), 1.0f);
    }
    cs[pair] = cosf(th) * mscale;
    sn[pair] = sinf(th) * mscale;
  }
}

// Values i and i + 1 of a row (i even): one 8-byte store of floats, or one 4-byte store
// of halves rounded as the KV cache keeps them.
__device__ __forceinline__ void store_pair(float *dst, int64_t i, float a, float b) {
  float2 r;
  r.x = a;
  r.y = b;
  *reinterpret_cast<float2 *>(dst + i) = r;
}
__device__ __forceinline__ void store_pair(__half *dst, int64_t i, float a, float b) {
  __half2 h;
  h.x = __float2half_rn(a);
  h.y = __float2half_rn(b);
  *reinterpret_cast<__half2 *>(dst + i) = h;
}
__device__ __forceinline__ void store_one(float *dst, int64_t i, float a) { dst[i] = a; }
__device__ __forceinline__ void store_one(__half *dst, int64_t i, float a) { dst[i] = __float2half_rn(a); }

// The n heads of one row, src to dst (floats, or halves for a cache), rotated by the block's angles.
// A thread per pair of values, so every lane has work: rotated pair j (normal: dims 2j, 2j + 1;
// NeoX: j and j + half), or, past the rotated dims, two values copied as they are.
template <class Out>
__device__ __forceinline__ void rope_heads(const float *src, Out *dst, int64_t n, int64_t headDim, const RopeArgs &p, const float *cs, const float *sn) {
  const int64_t slots = headDim / 2, half = p.nDims / 2;
  for (int64_t i = threadIdx.x; i < n * slots; i += blockDim.x) {
    const int64_t h = i / slots, j = i % slots;
    const float *hs = src + h * headDim;
    Out *hd = dst + h * headDim;
    if (j >= half) {
      const int64_t v = p.nDims + 2 * (j - half);
      const float2 in = *reinterpret_cast<const float2 *>(hs + v);
      store_pair(hd, v, in.x, in.y);
      continue;
    }
    const float c = cs[j], s = sn[j];
    if (p.mode == 2) {
      const float x0 = hs[j], x1 = hs[j + half];
      store_one(hd, j, fmaf(x0, c, -(x1 * s)));
      store_one(hd, j + half, fmaf(x0, s, x1 * c));
    } else {
      const float2 in = *reinterpret_cast<const float2 *>(hs + 2 * j);
      store_pair(hd, 2 * j, fmaf(in.x, c, -(in.y * s)), fmaf(in.x, s, in.y * c));
    }
  }
}
