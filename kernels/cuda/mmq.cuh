// Products of many rows with a quantized weight on the tensor cores (prefill,
// and MoE experts over many tokens): the same arithmetic as the decode
// kernels (int8 activation codes times the weight's int8 codes per 32-value
// sub-block, then the sub-block's scales), with the integer dot products
// taken by int8 mma.sync instead of dp4a. No fp16 copy of the weight is made,
// and expert rows come grouped by the device (RowMap offsets), so prefill
// never waits for the host.
//
// A block takes 64 weight rows (outputs) x 64 input rows. Per stage of 4
// sub-blocks (128 values of K) it decodes the weight rows into shared memory
// as int8 codes with their scales, copies the activation codes, and each of
// its 4 warps takes a 32 x 32 quarter: 2 x 4 mma tiles of 16 x 8 per
// sub-block (m16n8k32), whose integer sums are scaled into float accumulators
// once per sub-block (Q6_K, whose scales are per 16 values: m16n8k16 per half).
// The gate+up form (GLU) takes 32 rows of the gate and the same 32 rows of up
// as its 64: the warps holding up's sums hand them over through shared memory
// and the gate's warps write swiglu_oai(gate, up) once, so an expert's gate
// and up cost one pass over the tokens' activations and nothing in between.
#pragma once
#include "decode.cuh"
#include "matmul.cuh"
#include "mma.cuh"

namespace mmq {
const int BM = 64, BN = 64, SUBS = 4, THREADS = 128;
// Bytes per shared row: 128 codes + 16, so the 32 lanes' 4-byte fragment reads
// (row g, bytes 4t..) fall in 32 different banks.
const int STRIDE = SUBS * 32 + 16;
// Floats per row of the scale tables ([sub-block][weight row]) and of the GLU's
// up sums ([row][input row]): 8 more than the 64 rows, so the 8 rows x 4
// sub-blocks a warp stores, and the 8 rows x 4 float2 columns a half-warp
// reads or writes, fall in 32 different banks.
const int SCALES_STRIDE = BM + 8, UP_STRIDE = BN + 8;
}  // namespace mmq

// Q6_K scales each 16 values; the others one scale per 32.
template <int T> __host__ __device__ constexpr bool mmq_half_scales() { return T == T_Q6_K; }
// Types with an offset (value = a * code + b): the activation's code sum enters.
template <int T> __host__ __device__ constexpr bool mmq_has_min() { return T == T_Q4_1 || T == T_Q5_1 || T == T_Q4_K || T == T_Q5_K; }

// The gate+up form's up weight, up bias and SwiGLU constants (up.data null: a plain product).
struct Glu {
  MatDesc up;
  const float *upBias;
  float alpha, limit;
};

template <int T, bool GLU>
__global__ void __launch_bounds__(128) mmq_kernel(MatDesc w, const int8_t *xq, const float *xd, int64_t rows, RowMap map,
                                                  const float *bias, int64_t biasStride, float *y, Glu glu) {
  psi_grid_wait();
  using namespace mmq;
  __shared__ int4 wq4[BM * STRIDE / 16];
  __shared__ int4 xq4[BN * STRIDE / 16];
  __shared__ float wa[2][SUBS][SCALES_STRIDE], wb[SUBS][SCALES_STRIDE];  // a0/a1 and b per (sub-block, weight row)
  __shared__ float xds[BN][SUBS], xms[BN][SUBS];
  __shared__ int64_t inRow[BN], outRow[BN];
  int8_t *wqs = reinterpret_cast<int8_t *>(wq4), *xqs = reinterpret_cast<int8_t *>(xq4);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  // Weight rows (outputs) n0.. : BM of one weight, or BM / 2 of the gate then the same of up.
  const int64_t n0 = (int64_t)blockIdx.x * (GLU ? BM / 2 : BM);
  // This block's input rows: a tile of the dense rows, or of the group of the expert blockIdx.z stands for.
  int e = 0;
  int64_t first, count;
  if (map.offsets) {
    const int tile = map.tiles[blockIdx.z];
    if (tile < 0) return;
    e = tile & 1023;
    first = map.offsets[e] + (int64_t)(tile >> 10) * BN;
    count = map.offsets[e + 1] - first;
  } else {
    first = (int64_t)blockIdx.y * BN;
    count = rows - first;
  }
  if (count <= 0) return;
  count = min(count, (int64_t)BN);
  if (tid < BN) {
    const int64_t slot = tid >= count ? -1 : map.offsets ? map.sorted[first + tid] : first + tid;
    inRow[tid] = slot < 0 ? -1 : slot / map.inputDiv;
    outRow[tid] = slot;
  }
  __syncthreads();

  const int64_t K = w.cols, subs = K / 32;
  const uint8_t *slab = w.data + e * w.slabStride, *upSlab = GLU ? glu.up.data + e * glu.up.slabStride : nullptr;
  const int wm = (warp & 1) * 32, wn = (warp >> 1) * 32;
  // Element i of this lane's accumulator tile (mt, nt), as mma.cuh's m16n8 layout places
  // it: weight row accRow(mt, i) of the block's, input row (column) accCol(nt, i % 2).
  const auto accRow = [&](int mt, int i) { return wm + mt * 16 + g + 8 * (i / 2); };
  const auto accCol = [&](int nt, int j) { return wn + nt * 8 + 2 * t + j; };
  // A tile of at most 32 input rows (the last of a group, or the output head's
  // rows in batched decode) leaves the warps of columns 32..63 without products:
  // they only help load the stages. Not for Q6_K, which it tipped into a spill on
  // sm_90 (skipping each empty 8-column tile did the same to sm_80's gate+up kernels).
  const bool busy = mmq_half_scales<T>() || count > wn;
  float acc[2][4][4] = {};

  for (int64_t sb0 = 0; sb0 < subs; sb0 += SUBS) {
    for (int i = tid; i < BM * SUBS; i += THREADS) {
      const int r = i / SUBS, s = i % SUBS;
      const int64_t n = n0 + (GLU ? r % (BM / 2) : r), sb = sb0 + s;
      const uint8_t *from = GLU && r >= BM / 2 ? upSlab : slab;
      int4 *dst = reinterpret_cast<int4 *>(wqs + r * STRIDE + s * 32);
      if (n < w.rows && sb < subs) {
        Sub32 q;
        load_sub<T>(from, from + w.scalesOffset, n, K, sb, q);
        dst[0] = make_int4(q.q[0], q.q[1], q.q[2], q.q[3]);
        dst[1] = make_int4(q.q[4], q.q[5], q.q[6], q.q[7]);
        wa[0][s][r] = q.a0; wa[1][s][r] = q.a1; wb[s][r] = q.b0;
      } else {
        dst[0] = dst[1] = make_int4(0, 0, 0, 0);
        wa[0][s][r] = wa[1][s][r] = wb[s][r] = 0.f;
      }
    }
    for (int i = tid; i < BN * SUBS * 2; i += THREADS) {
      const int r = i / (SUBS * 2), h = i % (SUBS * 2);
      const int64_t row = inRow[r], sb = sb0 + h / 2;
      *reinterpret_cast<int4 *>(xqs + r * STRIDE + h * 16) =
          row >= 0 && sb < subs ? *reinterpret_cast<const int4 *>(xq + row * K + sb * 32 + (h % 2) * 16) : make_int4(0, 0, 0, 0);
    }
    for (int i = tid; i < BN * SUBS; i += THREADS) {
      const int r = i / SUBS, s = i % SUBS;
      const int64_t row = inRow[r], sb = sb0 + s;
      float d = 0.f, m = 0.f;
      if (row >= 0 && sb < subs) {
        d = xd[row * subs + sb];
        if constexpr (mmq_has_min<T>()) {
          const int4 *xp = reinterpret_cast<const int4 *>(xq + row * K + sb * 32);
          int sum = SUM_BIAS;
#pragma unroll
          for (int j = 0; j < 2; j++) {
            const int4 v = xp[j];
            sum = __dp4a(0x01010101, v.x, sum); sum = __dp4a(0x01010101, v.y, sum);
            sum = __dp4a(0x01010101, v.z, sum); sum = __dp4a(0x01010101, v.w, sum);
          }
          // ggml's q8_1 keeps d * sum(q) as fp16 for Q4_1/Q5_1 (as the decode kernels do).
          m = T == T_Q4_1 || T == T_Q5_1 ? __half2float(__float2half_rn(d * biased_sum(sum))) : d * biased_sum(sum);
        }
      }
      xds[r][s] = d; xms[r][s] = m;
    }
    __syncthreads();

    const int stageSubs = busy ? (int)min((int64_t)SUBS, subs - sb0) : 0;
    for (int s = 0; s < stageSubs; s++) {
      // One k32 product per tile for a sub-block with one scale; Q6_K takes each
      // half (its own scale) as a k16 product. The integer sums then scale into acc.
      constexpr int PASSES = mmq_half_scales<T>() ? 2 : 1;
#pragma unroll
      for (int h = 0; h < PASSES; h++) {
        // Fragments by ldmatrix (mma.cuh): lane l gives row l % 8 of matrix l / 8. The B
        // fragments (input rows) serve both tile rows: k32 takes two matrices per 8 input
        // rows (bytes 0..15, 16..31 of the sub-block), Q6_K's k16 one (its half h).
        const int8_t *sub = xqs + s * 32 + h * 16;
        int b[4][2];
        if constexpr (PASSES == 2) {
          int r[4];
          ldmatrix_x4(r, sub + (wn + lane) * STRIDE);
#pragma unroll
          for (int nt = 0; nt < 4; nt++) { b[nt][0] = r[nt]; b[nt][1] = 0; }
        } else {
#pragma unroll
          for (int pair = 0; pair < 2; pair++) {
            int r[4];
            ldmatrix_x4(r, sub + (wn + pair * 16 + (lane / 16) * 8 + lane % 8) * STRIDE + ((lane / 8) % 2) * 16);
            b[2 * pair][0] = r[0]; b[2 * pair][1] = r[1]; b[2 * pair + 1][0] = r[2]; b[2 * pair + 1][1] = r[3];
          }
        }
        // Q6_K's A fragments for both tile rows are one ldmatrix (rows 0..31 of the warp's, half h).
        int a2[4] = {};
        if constexpr (PASSES == 2) ldmatrix_x4(a2, wqs + (wm + lane) * STRIDE + s * 32 + h * 16);
        // The input rows' scales for this lane's 8 columns, read once for both tile rows.
        float xs[4][2];
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
          for (int j = 0; j < 2; j++) xs[nt][j] = xds[accCol(nt, j)][s];
        // One tile row (16 weight rows) at a time, its sums scaled into acc before the next
        // row's products: 16 integer sums live instead of 32.
#pragma unroll
        for (int mt = 0; mt < 2; mt++) {
          int c[4][4];
#pragma unroll
          for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) c[nt][i] = SUM_BIAS;
          if constexpr (PASSES == 2) {
#pragma unroll
            for (int nt = 0; nt < 4; nt++) mma_s8_16816(c[nt], a2[2 * mt], a2[2 * mt + 1], b[nt][0]);
          } else {
            // Matrices: rows 0..7 and 8..15 of the tile row, bytes 0..15, then 16..31.
            int a[4];
            ldmatrix_x4(a, wqs + (wm + mt * 16 + ((lane / 8) % 2) * 8 + lane % 8) * STRIDE + s * 32 + (lane / 16) * 16);
#pragma unroll
            for (int nt = 0; nt < 4; nt++) mma_s8_16832(c[nt], a, b[nt]);
          }
#pragma unroll
          for (int i = 0; i < 4; i++) {
            const float scale = wa[h][s][accRow(mt, i)];
#pragma unroll
            for (int nt = 0; nt < 4; nt++) acc[mt][nt][i] += scale * xs[nt][i % 2] * biased_sum(c[nt][i]);
          }
        }
      }
    }
    // The offsets' terms (types with a minimum: offset x the input's code sum) after
    // the stage's products, so their operands are not live beside the integer sums:
    // inside that loop they took Q4_K, Q4_1 and Q5_1 to 141-144 registers (3 blocks
    // an SM) and Q5_K to a spill; here each stays at or under 128.
    if constexpr (mmq_has_min<T>()) {
      for (int s = 0; s < stageSubs; s++)
#pragma unroll
        for (int mt = 0; mt < 2; mt++)
#pragma unroll
          for (int i = 0; i < 4; i++) {
            const float offset = wb[s][accRow(mt, i)];
#pragma unroll
            for (int nt = 0; nt < 4; nt++) acc[mt][nt][i] += offset * xms[accCol(nt, i % 2)][s];
          }
    }
    __syncthreads();
  }

  // GLU: warps 1 and 3 (tile rows 32..63) hold up's sums for the rows warps 0 and 2
  // hold the gate's: up (+ its bias) goes through shared memory (the weight tile's, free now).
  // Each lane holds input rows (columns) 2t and 2t + 1 of its weight rows side by side: one float2.
  static_assert((BM / 2) * UP_STRIDE * sizeof(float) <= sizeof(wq4), "the up sums fit in the weight tile");
  float2 *upSums = reinterpret_cast<float2 *>(wq4);  // [BM / 2][UP_STRIDE / 2]
  if constexpr (GLU) {
    if (wm != 0) {
#pragma unroll
      for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
          const int r = accRow(mt, 2 * half) - wm;  // the gate's row, held by warp wm - 32
          const int64_t n = n0 + r;
          const float bv = glu.upBias && n < w.rows ? glu.upBias[e * biasStride + n] : 0.f;
#pragma unroll
          for (int nt = 0; nt < 4; nt++) {
            float2 sums;
            sums.x = acc[mt][nt][2 * half] + bv;
            sums.y = acc[mt][nt][2 * half + 1] + bv;
            upSums[(r * UP_STRIDE + accCol(nt, 0)) / 2] = sums;
          }
        }
    }
    __syncthreads();
    if (wm != 0) return;
  }
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int half = 0; half < 2; half++) {
      const int r = accRow(mt, 2 * half);
      const int64_t n = n0 + r;
      if (n >= w.rows) continue;
      const float bv = bias ? bias[e * biasStride + n] : 0.f;
#pragma unroll
      for (int nt = 0; nt < 4; nt++) {
        const int col0 = accCol(nt, 0);
        float2 up{};
        if constexpr (GLU) up = upSums[(r * UP_STRIDE + col0) / 2];
#pragma unroll
        for (int j = 0; j < 2; j++) {
          if (col0 + j >= count) continue;
          const float v = acc[mt][nt][2 * half + j] + bv;
          y[outRow[col0 + j] * w.rows + n] = GLU ? swiglu_oai_value(v, j ? up.y : up.x, glu.alpha, glu.limit) : v;
        }
      }
    }
}

// Grid: weight-row tiles x input-row tiles, or, grouped, weight-row tiles x the
// groups' tiles (RowMap::tiles; blocks past the last return at once).
// With glu.up.data set, y = swiglu_oai(x w^T + bias, x up^T + upBias) (w the gate; one type and shape).
template <int T>
int launch_mmq(const MatDesc &w, const int8_t *xq, const float *xd, int64_t rows, const RowMap &map,
               const float *bias, int64_t biasStride, float *y, const Glu &glu = Glu{}) {
  static_assert(mmq::BN == GROUP_TILE_ROWS, "a grouped tile is one block's input rows");
  if (map.offsets && !map.tiles) { psi_set_error("mmq: a grouped product needs its tile list"); return -1; }
  const int64_t rowsPerTile = glu.up.data ? mmq::BM / 2 : mmq::BM;
  const dim3 grid((unsigned)ceil_div(w.rows, rowsPerTile), map.offsets ? 1u : (unsigned)ceil_div(rows, mmq::BN),
                  map.offsets ? (unsigned)group_tiles(rows, map.experts) : 1u);
  if (glu.up.data) {
    PSI_LAUNCH(grid, mmq::THREADS, mmq_kernel<T, true>)(w, xq, xd, rows, map, bias, biasStride, y, glu);
  } else {
    PSI_LAUNCH(grid, mmq::THREADS, mmq_kernel<T, false>)(w, xq, xd, rows, map, bias, biasStride, y, glu);
  }
  return PSI_LAUNCHED("mmq");
}
