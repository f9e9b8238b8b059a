// Element-wise and row ops of the CUDA backend, with the arithmetic of the
// CPU kernels (kernels/cpu/ops_*.c) where it decides rounding: RMSNorm,
// RoPE (normal/NeoX, YaRN, frequency factors, theta built by repeated
// multiplication as ggml builds it), add, SwiGLU, row gathers.
#include <algorithm>
#include "common.cuh"
#include "matmul.cuh"
#include "rope.cuh"

// 1 / RMS of group blockIdx.x (the block's threads all get it).
__device__ __forceinline__ float rms_scale(const float *src, int64_t group, float eps) {
  __shared__ float partial[32];
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < group; i += blockDim.x) sum += src[i] * src[i];
  sum = warp_sum(sum);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.f;
    v = warp_sum(v);
    if (threadIdx.x == 0) partial[0] = v;
  }
  __syncthreads();
  return 1.0f / sqrtf(partial[0] / (float)group + eps);
}

// Group blockIdx.x of x (plus `addend` when given: that sum is written to `sum`
// and normalized), RMS-normalized and scaled by w. With `mix` (whole rows), the
// addend of row g is its k rows of `addend` weighted by mix[g * k + j] and summed
// in that order (expert_mix: the MoE's weighted sum), added and normalized in one
// launch. Q (whole rows of 32-value blocks): the output's int8 rows are written
// too (matmul.cuh quantize_warp32), so the products that follow skip their
// quantize launch.
template <bool Q>
__global__ void rms_norm_kernel(const float *x, const float *addend, const float *mix, int k, float *sum, const float *w, float eps,
                                int64_t group, float *out, int8_t *xq, float *xd) {
  psi_grid_wait();
  const int64_t g = blockIdx.x;
  const float *src = x + g * group;
  if (addend) {
    for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
      sum[g * group + i] = src[i] + (mix ? expert_mix(addend, mix, k, g, group, i) : addend[g * group + i]);
    }
    __syncthreads();  // the block's own global writes, read back below
    src = sum + g * group;
  }
  const float scale = rms_scale(src, group, eps);
  if constexpr (Q) {
    // A warp a 32-value block, a value a lane: loads and stores of whole 128-byte lines.
    const int lane = threadIdx.x % 32;
    for (int64_t b = threadIdx.x / 32; b < group / 32; b += blockDim.x / 32) {
      const int64_t i = b * 32 + lane;
      const float n = src[i] * scale, v = w ? n * w[i] : n;
      out[g * group + i] = v;
      quantize_warp32(v, lane, xq + g * group + b * 32, xd + g * (group / 32) + b);
    }
  } else {
    for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
      const float v = src[i] * scale;
      out[g * group + i] = w ? v * w[i] : v;
    }
  }
}

// Threads for a block of rms_norm_kernel: about 3 values a thread, 4 to 32 warps.
// A decode step normalizes one row, so its one block's loops are the launch's
// latency: a 2880-value row takes 3 rounds of loads on 960 threads, not 23 on 128.
static int rms_threads(int64_t group) {
  return 32 * (int)std::min<int64_t>(32, std::max<int64_t>(4, ceil_div(group, 96)));
}

int psi_rms_norm(const float *x, const float *addend, const float *mix, int k, float *sum, const float *weight, float eps,
                 int64_t rows, int64_t width, int64_t group, float *out, bool quantize) {
  if (addend && !sum) { psi_set_error("rms_norm: an addend needs a sum buffer"); return -1; }
  if (mix && group != width) { psi_set_error("rms_norm: a weighted addend needs whole rows"); return -1; }
  if (quantize) {
    if (group != width || width % 32 != 0) { psi_set_error("rms_norm: quantizing needs whole rows of 32-value blocks"); return -1; }
    int8_t *xq;
    float *xd;
    if (psi_quantized_scratch(rows, width, &xq, &xd)) return -1;
    PSI_LAUNCH((unsigned)rows, rms_threads(width), rms_norm_kernel<true>)(x, addend, mix, k, sum, weight, eps, width, out, xq, xd);
    return PSI_LAUNCHED("rms_norm_q8");
  }
  PSI_LAUNCH((unsigned)(rows * (width / group)), rms_threads(group), rms_norm_kernel<false>)(x, addend, mix, k, sum, weight, eps, group, out,
                                                                                            (int8_t *)nullptr, (float *)nullptr);
  return PSI_LAUNCHED("rms_norm");
}

PSI_EXPORT int psi_cuda_rms_norm(const float *x, const float *addend, float *sum, const float *weight, float eps,
                                 int64_t rows, int64_t width, int64_t group, float *out, int quantize) {
  return psi_rms_norm(x, addend, nullptr, 0, sum, weight, eps, rows, width, group, out, quantize != 0);
}

// One block per row: the row's angles (rope.cuh), then every head of x (and of x2,
// when given: q and k of one row take the same angles) rotated.
__global__ void rope_kernel(const float *x, float *out, int64_t heads, const float *x2, float *out2, int64_t heads2,
                            const int *pos, int64_t headDim, RopeArgs p, const float *factors, RopeRamp ramp) {
  psi_grid_wait();
  __shared__ float cs[ROPE_MAX_PAIRS], sn[ROPE_MAX_PAIRS];
  const int64_t t = blockIdx.x;
  rope_angles(pos[t], p, factors, ramp, cs, sn);
  __syncthreads();
  rope_heads(x + t * heads * headDim, out + t * heads * headDim, heads, headDim, p, cs, sn);
  if (x2) rope_heads(x2 + t * heads2 * headDim, out2 + t * heads2 * headDim, heads2, headDim, p, cs, sn);
}

// mode: 0 normal, 2 NeoX (ggml's ids). x2/out2 (heads2 heads of the same rows), when
// given, are rotated by the same angles in the same launch (q and k).
PSI_EXPORT int psi_cuda_rope(const float *x, float *out, int64_t heads, const float *x2, float *out2, int64_t heads2,
                             const int32_t *hostPositions, int64_t rows, int64_t headDim, const RopeArgs *p, const float *factors) {
  if (rope_check(*p, headDim)) return -1;
  const int *pos = (const int *)psi_stage(hostPositions, rows * sizeof(int32_t));
  if (!pos) return -1;
  PSI_LAUNCH((unsigned)rows, 256, rope_kernel)(x, out, heads, x2, out2, heads2, pos, headDim, *p, factors, rope_ramp(*p));
  return PSI_LAUNCHED("rope");
}

__global__ void add_kernel(const float *a, const float *b, float *out, int64_t n) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

PSI_EXPORT int psi_cuda_add(const float *a, const float *b, float *out, int64_t n) {
  PSI_LAUNCH((unsigned)ceil_div(n, 256), 256, add_kernel)(a, b, out, n);
  return PSI_LAUNCHED("add");
}

__global__ void swiglu_kernel(const float *gate, const float *up, float *out, int64_t n) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) { const float g = gate[i]; out[i] = g / (1.0f + expf(-g)) * up[i]; }
}

PSI_EXPORT int psi_cuda_swiglu(const float *gate, const float *up, float *out, int64_t n) {
  PSI_LAUNCH((unsigned)ceil_div(n, 256), 256, swiglu_kernel)(gate, up, out, n);
  return PSI_LAUNCHED("swiglu");
}

// out[i] = src[index[i] / divisor] (rows of `width`); index staged from the host or already on the device.
__global__ void gather_kernel(const float *src, const int *index, int divisor, int64_t count, int64_t width, float *out) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= count * width) return;
  const int64_t r = i / width;
  out[i] = src[(int64_t)(index[r] / divisor) * width + i % width];
}

int psi_gather(const float *src, const int *deviceIndex, int divisor, int64_t count, int64_t width, float *out) {
  PSI_LAUNCH((unsigned)ceil_div(count * width, 256), 256, gather_kernel)(src, deviceIndex, divisor, count, width, out);
  return PSI_LAUNCHED("gather");
}

PSI_EXPORT int psi_cuda_take_rows(const float *src, const int32_t *hostRows, int64_t count, int64_t width, float *out) {
  const int *index = (const int *)psi_stage(hostRows, count * sizeof(int32_t));
  return index ? psi_gather(src, index, 1, count, width, out) : -1;
}

// Per row: the index of the largest value (ties to the lowest index), or -1
// when the row holds a NaN or +inf (a broken forward pass), for greedy
// decoding that reads back one int per row instead of the logits. Two passes,
// so a 201,088-wide row is read by many blocks at once (one block alone would
// walk it 256 values at a time): ARGMAX_PARTS blocks per row each take a
// contiguous part, then one warp per row merges the parts.
static const int ARGMAX_PARTS = 64;

// Part blockIdx.x of row blockIdx.y: its best value and index, or index -2 when it holds a NaN or +inf.
__global__ void argmax_parts(const float *x, int64_t width, float *partValue, int *partIndex) {
  psi_grid_wait();
  __shared__ float best[256];
  __shared__ int at[256];
  __shared__ int broken;
  const int64_t per = (width + gridDim.x - 1) / gridDim.x, first = blockIdx.x * per, end = min(width, first + per);
  const float *row = x + blockIdx.y * width;
  if (threadIdx.x == 0) broken = 0;
  __syncthreads();
  float v = -INFINITY;
  int i = -1;
  for (int64_t j = first + threadIdx.x; j < end; j += blockDim.x) {
    const float value = row[j];
    if (!(value < INFINITY)) broken = 1;
    if (argmax_better(value, (int)j, v, i)) { v = value; i = (int)j; }
  }
  best[threadIdx.x] = v;
  at[threadIdx.x] = i;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride && argmax_better(best[threadIdx.x + stride], at[threadIdx.x + stride], best[threadIdx.x], at[threadIdx.x])) {
      best[threadIdx.x] = best[threadIdx.x + stride];
      at[threadIdx.x] = at[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    partValue[blockIdx.y * gridDim.x + blockIdx.x] = best[0];
    partIndex[blockIdx.y * gridDim.x + blockIdx.x] = broken ? -2 : at[0];
  }
}

// One warp per row (blockIdx.x) merges its `parts` parts.
__global__ void argmax_merge(const float *partValue, const int *partIndex, int parts, int *out) {
  psi_grid_wait();
  const int lane = threadIdx.x;
  float v = -INFINITY;
  int i = -1;
  bool broken = false;
  for (int p = lane; p < parts; p += 32) {
    const float pv = partValue[blockIdx.x * parts + p];
    const int pi = partIndex[blockIdx.x * parts + p];
    broken |= pi == -2;
    if (argmax_better(pv, pi, v, i)) { v = pv; i = pi; }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (argmax_better(ov, oi, v, i)) { v = ov; i = oi; }
  }
  for (int o = 16; o > 0; o >>= 1) broken |= __shfl_xor_sync(0xffffffffu, (int)broken, o) != 0;
  if (lane == 0) out[blockIdx.x] = broken ? -1 : i;
}

// Writes each row's argmax to hostOut (rows ints); synchronizes.
PSI_EXPORT int psi_cuda_argmax_rows(const float *x, int64_t rows, int64_t width, int32_t *hostOut) {
  const int parts = (int)std::min<int64_t>(ARGMAX_PARTS, ceil_div(width, 256));
  int *ids = (int *)psi_scratch(14, rows * sizeof(int));
  float *partValue = (float *)psi_scratch(18, rows * parts * sizeof(float));
  int *partIndex = (int *)psi_scratch(19, rows * parts * sizeof(int));
  if (!ids || !partValue || !partIndex) return -1;
  PSI_LAUNCH(dim3((unsigned)parts, (unsigned)rows), 256, argmax_parts)(x, width, partValue, partIndex);
  if (PSI_LAUNCHED("argmax_parts")) return -1;
  PSI_LAUNCH((unsigned)rows, 32, argmax_merge)(partValue, partIndex, parts, ids);
  if (PSI_LAUNCHED("argmax_merge")) return -1;
  if (psi_flush_recording()) return -1;
  if (psi_failed(cudaMemcpyAsync(hostOut, ids, rows * sizeof(int), cudaMemcpyDeviceToHost, psi_stream()), "argmax download")) return -1;
  return psi_failed(cudaStreamSynchronize(psi_stream()), "argmax (sync): an earlier kernel failed") ? -1 : 0;
}
