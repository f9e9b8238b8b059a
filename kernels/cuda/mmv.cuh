// The matrix-vector kernels (decode and batched decode: up to MMV_ROWS input
// rows at a time): a warp per output, or per two from 4 rows (with_warp_rows,
// matmul_types.cuh), reading each weight byte once per MMV_ROWS rows. Quantized
// weights take the int8 rows of x with dp4a; float weights multiply float rows
// (rounded to the weight's type first, as ggml's vec_dot does). Dense rows,
// rows grouped by expert (MoE), up to MANY_MAX weights of one input in one
// launch, and the experts' gate+up with the SwiGLU in one pass.
#pragma once
#include <algorithm>
#include <type_traits>
#include "decode.cuh"
#include "matmul.cuh"

static const int MMV_WARPS = 4;
// Blocks an SM must hold: 4 (at most 128 registers) for one output a warp, which
// the largest row counts' kernels reach with no spill on sm_90 (R = 8: 131-146
// registers before, 3 blocks; sm_80's Q4_1 and Q5_0 gate+up spill 4 and 12 bytes).
// Two outputs a warp are left to the compiler, as forcing 128 there spills
// (PSIONIC_CUDA_MMV_WARP_ROWS=1 picks one output a warp to compare).
__host__ __device__ constexpr int mmv_min_blocks(int W) { return W == 1 ? 4 : 1; }
// Blocks enough to fill the GPU (about two per multiprocessor of an H100).
static const int64_t TARGET_BLOCKS = 264;

// Dense rows: as few row blocks as fill the GPU, each taking map.blockRows rows (set
// here, a multiple of R): a wide weight (many outputs) takes every row in each
// block, a narrow one (the router) splits the rows. Returns the row blocks.
inline int64_t dense_row_blocks(int64_t across, int64_t rows, int R, RowMap &map) {
  const int64_t chunks = ceil_div(rows, R);
  const int64_t down = std::min(chunks, std::max<int64_t>(1, ceil_div(TARGET_BLOCKS, across)));
  map.blockRows = (int)(ceil_div(chunks, down) * R);
  return ceil_div(rows, map.blockRows);
}

// Calls f(Rows<R>{}) with the fewest rows of 1, 2, 4 and MMV_ROWS that cover `most`
// (the rows a matrix-vector pass may take at once: dense rows, or the largest
// group an expert can have), so a decode token's products hold no registers
// for rows that never come.
template <int R>
using Rows = std::integral_constant<int, R>;
template <class F>
inline int with_rows(int64_t most, F &&f) {
  if (most <= 1) return f(Rows<1>{});
  if (most == 2) return f(Rows<2>{});
  if (most <= 4) return f(Rows<4>{});
  return f(Rows<MMV_ROWS>{});
}

// The activation as ggml's vec_dot for the weight's type sees it.
template <int T>
__device__ __forceinline__ float float_input(float x) {
  if (T == T_F16) return __half2float(__float2half_rn(x));
  if (T == T_BF16) return __bfloat162float(__float2bfloat16_rn(x));
  return x;
}

// One warp: dot products of row ns[i] of slab i, for NW slabs of one type and
// shape (gate and up of one row, or two rows of one weight: each lane has NW
// times the weight loads in flight, and each activation load serves NW rows),
// with up to R input rows (inRow[]), into this lane's partial sums acc[i][r]
// (warp_totals gives the totals). Quantized types read
// the int8 rows xq/xd; float types x. Each row's sums keep the order a lone
// pass over it has.
template <int T, int R, int NW = 1>
__device__ __forceinline__ void mmv_dot(const MatDesc &w, const uint8_t *const *slabs, const int64_t *ns, int lane,
                                        const int8_t *xq, const float *xd, const float *x,
                                        const int64_t *inRow, int nr, float (*acc)[R]) {
  const int64_t K = w.cols;
#pragma unroll
  for (int i = 0; i < NW; i++)
#pragma unroll
    for (int r = 0; r < R; r++) acc[i][r] = 0.f;
  if constexpr (is_float_type(T)) {
    // 16 bytes of the row a load (4 F32 or 8 F16/BF16 values) where the rows allow it,
    // unrolled so each lane has several loads in flight: a decode row is one warp's
    // (the router's 32 rows are all of a launch), so latency, not bandwidth, bounds it.
    constexpr int BYTES = T == T_F32 ? 4 : 2, V = 16 / BYTES;
    int64_t c = lane * V;
    if (K % V == 0) {
#pragma unroll 4
      for (; c < K; c += 32 * V) {
        int4 raw[NW];
#pragma unroll
        for (int i = 0; i < NW; i++) raw[i] = *reinterpret_cast<const int4 *>(slabs[i] + (ns[i] * K + c) * BYTES);
#pragma unroll
        for (int r = 0; r < R; r++) {
          if (r >= nr) break;
          float xv[V];
#pragma unroll
          for (int j = 0; j < V; j += 4) {
            const float4 f = *reinterpret_cast<const float4 *>(x + inRow[r] * K + c + j);
            xv[j] = f.x; xv[j + 1] = f.y; xv[j + 2] = f.z; xv[j + 3] = f.w;
          }
#pragma unroll
          for (int i = 0; i < NW; i++)
#pragma unroll
            for (int j = 0; j < V; j++) {
              acc[i][r] += float_weight<T>(reinterpret_cast<const uint8_t *>(&raw[i]), j) * float_input<T>(xv[j]);
            }
        }
      }
    } else {
      for (c = lane; c < K; c += 32) {
#pragma unroll
        for (int i = 0; i < NW; i++) {
          const float wv = float_weight<T>(slabs[i] + ns[i] * K * BYTES, c);
#pragma unroll
          for (int r = 0; r < R; r++) {
            if (r >= nr) break;
            acc[i][r] += wv * float_input<T>(x[inRow[r] * K + c]);
          }
        }
      }
    }
  } else {
    const int64_t subs = K / 32;
    // Sub-block sb of the NW rows (s[i]) times each input row: the input's
    // codes and scale are loaded once for all NW.
    const auto accumulate = [&](const Sub32 *s, int64_t sb) {
#pragma unroll
      for (int r = 0; r < R; r++) {
        if (r >= nr) break;
        const int4 *xp = reinterpret_cast<const int4 *>(xq + inRow[r] * K + sb * 32);
        const int4 x0 = xp[0], x1 = xp[1];
        const float d = xd[inRow[r] * subs + sb];
        bool mins = false;
#pragma unroll
        for (int i = 0; i < NW; i++) mins |= s[i].b0 != 0.f || s[i].b1 != 0.f;
        int c0 = SUM_BIAS, c1 = SUM_BIAS;
        if (mins) {
          const int ones = 0x01010101;
          c0 = __dp4a(ones, x0.x, SUM_BIAS); c0 = __dp4a(ones, x0.y, c0); c0 = __dp4a(ones, x0.z, c0); c0 = __dp4a(ones, x0.w, c0);
          c1 = __dp4a(ones, x1.x, SUM_BIAS); c1 = __dp4a(ones, x1.y, c1); c1 = __dp4a(ones, x1.z, c1); c1 = __dp4a(ones, x1.w, c1);
        }
#pragma unroll
        for (int i = 0; i < NW; i++) {
          const Sub32 &q = s[i];
          int s0 = __dp4a(q.q[0], x0.x, SUM_BIAS); s0 = __dp4a(q.q[1], x0.y, s0); s0 = __dp4a(q.q[2], x0.z, s0); s0 = __dp4a(q.q[3], x0.w, s0);
          int s1 = __dp4a(q.q[4], x1.x, SUM_BIAS); s1 = __dp4a(q.q[5], x1.y, s1); s1 = __dp4a(q.q[6], x1.z, s1); s1 = __dp4a(q.q[7], x1.w, s1);
          float v = q.a0 * biased_sum(s0) + q.a1 * biased_sum(s1), offset = 0.f;
          if (q.b0 != 0.f || q.b1 != 0.f) {
            if constexpr (T == T_Q4_1 || T == T_Q5_1) {
              // ggml's q8_1 keeps d * sum(q) as fp16, and these types multiply their min by it.
              offset = q.b0 * __half2float(__float2half_rn(d * (biased_sum(c0) + biased_sum(c1))));
            } else {
              v += q.b0 * biased_sum(c0) + q.b1 * biased_sum(c1);
            }
          }
          acc[i][r] += d * v + offset;
        }
      }
    };
    // Two sub-blocks of each slab a step (one where NW > 2, for the
    // registers), all loaded before any is used: a decode row is 2-4
    // sub-blocks per lane, so each lane has 2 * NW weight loads in flight.
    const auto pass = [&](int64_t sb, auto count) {
      constexpr int C = decltype(count)::value;
      Sub32 s[C][NW];
#pragma unroll
      for (int k = 0; k < C; k++)
#pragma unroll
        for (int i = 0; i < NW; i++) load_sub<T>(slabs[i], slabs[i] + w.scalesOffset, ns[i], K, sb + 32 * k, s[k][i]);
#pragma unroll
      for (int k = 0; k < C; k++) accumulate(s[k], sb + 32 * k);
    };
    int64_t sb = lane;
    if constexpr (NW <= 2) {
      for (; sb + 32 < subs; sb += 64) pass(sb, std::integral_constant<int, 2>{});
      if (sb < subs) pass(sb, std::integral_constant<int, 1>{});
    } else {
      for (; sb < subs; sb += 32) pass(sb, std::integral_constant<int, 1>{});
    }
  }
}

// The rows a block takes, R at a time: f(slab index, inRow[], outRow[], count).
// Dense: all rows, slab 0. Grouped (map.offsets): every row of the expert
// blockIdx.y stands for (group_expert), so the expert's weights are read once for all its rows.
template <int R, class F>
__device__ __forceinline__ void each_chunk(const RowMap &map, int64_t rows, F &&f) {
  int64_t inRow[R], outRow[R];
  if (map.offsets) {
    const int e = group_expert(map, blockIdx.y);
    if (e < 0) return;
    const int start = map.offsets[e], count = map.offsets[e + 1] - start;
    for (int c = 0; c < count; c += R) {
      const int nr = min(R, count - c);
#pragma unroll
      for (int r = 0; r < R; r++) {
        const int64_t slot = r < nr ? map.sorted[start + c + r] : 0;
        inRow[r] = slot / map.inputDiv;
        outRow[r] = slot;
      }
      f(e, inRow, outRow, nr);
    }
  } else {
    // Dense: the block takes map.blockRows rows, R at a time, so its weight
    // rows come from memory once and from L1 for the later chunks.
    const int64_t end = min(rows, (int64_t)(blockIdx.y + 1) * map.blockRows);
    for (int64_t r0 = (int64_t)blockIdx.y * map.blockRows; r0 < end; r0 += R) {
      const int nr = (int)min((int64_t)R, end - r0);
#pragma unroll
      for (int r = 0; r < R; r++) inRow[r] = outRow[r] = r0 + r;
      f(0, inRow, outRow, nr);
    }
  }
}

// a[r] for a lane's own r, from registers (an indexed register array would go to local memory).
template <int R>
__device__ __forceinline__ int64_t pick(const int64_t *a, int r) {
  int64_t v = a[0];
#pragma unroll
  for (int k = 1; k < R; k++) if (r == k) v = a[k];
  return v;
}

// The warp's totals of acc[W * G][R] (W weight rows, G slabs each: gate and up,
// for R input rows), reduce-scattered so that one lane per (weight row, input
// row) calls put(i, r, totals of its G slabs) for each r < nr: W * R lanes
// store at once instead of lane 0 W * R times, for a fifth of warp_sum's shuffles.
template <int W, int G, int R, class F>
__device__ __forceinline__ void warp_totals(float (*acc)[R], int lane, int nr, F &&put) {
  constexpr int N = W * G * R, SPREAD = 32 / (W * R);
  float v[N];
#pragma unroll
  for (int i = 0; i < W; i++)
#pragma unroll
    for (int g = 0; g < G; g++)
#pragma unroll
      for (int r = 0; r < R; r++) v[(i * R + r) * G + g] = acc[i * G + g][r];
  warp_reduce_scatter<N, G>(v, lane);
  const int unit = lane / SPREAD;
  if (lane % SPREAD == 0 && unit % R < nr) put(unit / R, unit % R, v);
}

// The W weight rows a warp takes from row n0 (rows past the last repeat the
// last, computed and not stored), each in G slabs.
template <int W, int G>
__device__ __forceinline__ void warp_rows(int64_t n0, int64_t rows, int64_t *ns) {
#pragma unroll
  for (int i = 0; i < W * G; i++) ns[i] = min(n0 + i / G, rows - 1);
}

// Outputs n0 .. n0 + W - 1 of y = x W^T + bias for every row each_chunk gives
// this block (slab e of w, its bias biasStride floats after slab e - 1's).
template <int T, int R, int W>
__device__ __forceinline__ void mmv_outputs(const MatDesc &w, int64_t n0, int lane, const int8_t *xq, const float *xd, const float *x,
                                            int64_t rows, const RowMap &map, const float *bias, int64_t biasStride, float *y) {
  int64_t ns[W];
  warp_rows<W, 1>(n0, w.rows, ns);
  each_chunk<R>(map, rows, [&](int e, const int64_t *inRow, const int64_t *outRow, int nr) {
    const uint8_t *slabs[W];
#pragma unroll
    for (int i = 0; i < W; i++) slabs[i] = w.data + e * w.slabStride;
    float acc[W][R];
    mmv_dot<T, R, W>(w, slabs, ns, lane, xq, xd, x, inRow, nr, acc);
    warp_totals<W, 1, R>(acc, lane, nr, [&](int i, int r, const float *total) {
      const int64_t n = n0 + i;
      if (n < w.rows) y[pick<R>(outRow, r) * w.rows + n] = total[0] + (bias ? bias[e * biasStride + n] : 0.f);
    });
  });
}

// y = x W^T + bias, W consecutive outputs per warp.
template <int T, int R, int W>
__global__ void __launch_bounds__(32 * MMV_WARPS, mmv_min_blocks(W)) mmv(MatDesc w, const int8_t *xq, const float *xd, const float *x, int64_t rows, RowMap map,
                    const float *bias, int64_t biasStride, float *y) {
  psi_grid_wait();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n0 = (blockIdx.x * (int64_t)MMV_WARPS + warp) * W;
  if (n0 < w.rows) mmv_outputs<T, R, W>(w, n0, lane, xq, xd, x, rows, map, bias, biasStride, y);
}

// Up to MANY_MAX (matmul.cuh) weights of one type and width multiplied by the same rows in one
// launch (q, k and v; gate and up): the blocks of weight i are blocks[i] .. blocks[i+1]-1.
// Passed by value and hashed byte for byte (common.cuh): no padding.
struct Many {
  MatDesc w[MANY_MAX];
  const float *bias[MANY_MAX];
  float *y[MANY_MAX];
  int blocks[MANY_MAX + 1];
  int count, unused;
};

template <int T, int R, int W>
__global__ void __launch_bounds__(32 * MMV_WARPS, mmv_min_blocks(W)) mmv_many(Many m, const int8_t *xq, const float *xd, const float *x, int64_t rows, RowMap map) {
  psi_grid_wait();
  int i = 0;
  while (i + 1 < m.count && (int)blockIdx.x >= m.blocks[i + 1]) i++;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n0 = ((int64_t)(blockIdx.x - m.blocks[i]) * MMV_WARPS + warp) * W;
  if (n0 < m.w[i].rows) mmv_outputs<T, R, W>(m.w[i], n0, lane, xq, xd, x, rows, map, m.bias[i], 0, m.y[i]);
}

// hidden = swiglu_oai(x gate^T + gateBias, x up^T + upBias): both products in one pass over the rows.
template <int T, int R, int W>
__global__ void __launch_bounds__(32 * MMV_WARPS, mmv_min_blocks(W)) mmv_glu(MatDesc gate, MatDesc up, const int8_t *xq, const float *xd, const float *x, int64_t rows, RowMap map,
                        const float *gateBias, const float *upBias, int64_t biasStride, float alpha, float limit, float *hidden) {
  psi_grid_wait();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n0 = (blockIdx.x * (int64_t)MMV_WARPS + warp) * W;
  if (n0 >= gate.rows) return;
  int64_t ns[2 * W];
  warp_rows<W, 2>(n0, gate.rows, ns);
  each_chunk<R>(map, rows, [&](int e, const int64_t *inRow, const int64_t *outRow, int nr) {
    // gate and up share type and shape (psi_matmul_glu checks), so one pass reads both rows.
    const uint8_t *slabs[2 * W];
#pragma unroll
    for (int i = 0; i < W; i++) {
      slabs[2 * i] = gate.data + e * gate.slabStride;
      slabs[2 * i + 1] = up.data + e * up.slabStride;
    }
    float gu[2 * W][R];
    mmv_dot<T, R, 2 * W>(gate, slabs, ns, lane, xq, xd, x, inRow, nr, gu);
    warp_totals<W, 2, R>(gu, lane, nr, [&](int i, int r, const float *total) {
      const int64_t n = n0 + i;
      if (n >= gate.rows) return;
      const float gb = gateBias ? gateBias[e * biasStride + n] : 0.f, ub = upBias ? upBias[e * biasStride + n] : 0.f;
      hidden[pick<R>(outRow, r) * gate.rows + n] = swiglu_oai_value(total[0] + gb, total[1] + ub, alpha, limit);
    });
  });
}
