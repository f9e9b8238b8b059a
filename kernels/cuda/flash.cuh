// Attention for prompt rows on the tensor cores (flash attention): a block
// takes 64 query rows of one segment and one head, each of its 4 warps 16
// rows. Keys and values come through shared memory 32 at a time (64 would
// take 151 registers for heads of 64, 3 blocks an SM instead of 4, and more
// than 48 KB of static shared memory for heads of 128); per tile a
// warp takes S = Q K^T with fp16 mma (fp32 sums), masks (causal, window),
// keeps each row's running max and sum, and adds P V with P rounded to fp16,
// as llama.cpp's CUDA flash attention does. S's accumulator layout is the
// layout of P as the next product's A operand (mma.cuh), so P never leaves
// registers. Sinks enter the sum at the end, as in attention.cu.
#pragma once
#include "attention.cuh"
#include "mma.cuh"

namespace flash {
const int BQ = 64, BK = 32, THREADS = 128;
// Rows of the K, V and Q tiles are padded by 8 halves (rows 144 or 272 bytes
// apart), so the 8 rows of 16 bytes an ldmatrix phase reads, and a warp's
// 32-bit reads of Q (row g, word t), fall in 32 different banks.
const int PAD = 8;
}  // namespace flash

template <int D>
__global__ void __launch_bounds__(128) flash_attend(const float *q, Segments s, AttendArgs a, const float *sinks, float *out) {
  psi_grid_wait();
  using namespace flash;
  constexpr int KS = D + PAD;
  // K and V tiles as the cache holds them, [key][dim]: ldmatrix reads K's rows as
  // they are and V's transposed (mma.cuh).
  __shared__ int4 ks4[BK * KS / 8], vs4[BK * KS / 8];
  const uint16_t *kh = reinterpret_cast<const uint16_t *>(ks4), *vh = reinterpret_cast<const uint16_t *>(vs4);

  const int seg = blockIdx.z, h = blockIdx.y, tile0 = blockIdx.x * BQ;
  if (seg >= s.count || tile0 >= s.rows[seg]) return;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int segRows = s.rows[seg], pos0 = s.pos0[seg], rowStart = s.rowStart[seg];
  const int kvh = h / (a.heads / a.kvHeads);
  const int64_t width = (int64_t)a.kvHeads * D;
  const __half *K = s.k[seg] + kvh * D, *V = s.v[seg] + kvh * D;

  // This lane's two rows (segment-relative): r[0] = warp row g, r[1] = g + 8.
  const int r[2] = {tile0 + warp * 16 + g, tile0 + warp * 16 + g + 8};
  // Q as fp16 A operands: in registers for D = 64; for D = 128 they would take
  // 32 more registers and spill, so the block's Q tile waits in shared memory.
  constexpr bool Q_IN_REGISTERS = D <= 64;
  constexpr int QS = D + PAD;
  __shared__ uint32_t qs[Q_IN_REGISTERS ? 1 : BQ * QS / 2];
  uint32_t qf[Q_IN_REGISTERS ? D / 16 : 1][4];
  if constexpr (Q_IN_REGISTERS) {
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int row = r[j % 2], dim = kk * 16 + 2 * t + 8 * (j / 2);
        const float *qr = q + ((int64_t)(rowStart + row) * a.heads + h) * D + dim;
        if (row < segRows) {
          const float2 pair = *reinterpret_cast<const float2 *>(qr);  // dim is even: 8-byte aligned
          qf[kk][j] = pack_half2(pair.x, pair.y);
        } else {
          qf[kk][j] = 0u;
        }
      }
  } else {
    for (int i = tid; i < BQ * D / 2; i += THREADS) {
      const int row = i / (D / 2), pair = i % (D / 2);
      const float *qr = q + ((int64_t)(rowStart + tile0 + row) * a.heads + h) * D + 2 * pair;
      if (tile0 + row < segRows) {
        const float2 v = *reinterpret_cast<const float2 *>(qr);
        qs[row * QS / 2 + pair] = pack_half2(v.x, v.y);
      } else {
        qs[row * QS / 2 + pair] = 0u;
      }
    }
  }

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; j++)
#pragma unroll
    for (int i = 0; i < 4; i++) o[j][i] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  const int lastRow = min(segRows, tile0 + BQ) - 1;
  const int first = a.window > 0 ? max(0, pos0 + tile0 - a.window + 1) : 0, last = pos0 + lastRow;
  for (int kt = first; kt <= last; kt += BK) {
    __syncthreads();  // the previous tile is used up
    for (int i = tid; i < BK * D / 8; i += THREADS) {
      const int key = i / (D / 8), c = (i % (D / 8)) * 8;
      const bool in = kt + key <= last;
      const int4 kv = in ? *reinterpret_cast<const int4 *>(K + (int64_t)(kt + key) * width + c) : make_int4(0, 0, 0, 0);
      const int4 vv = in ? *reinterpret_cast<const int4 *>(V + (int64_t)(kt + key) * width + c) : make_int4(0, 0, 0, 0);
      ks4[(key * KS + c) / 8] = kv;
      vs4[(key * KS + c) / 8] = vv;
    }
    __syncthreads();

    float sc[BK / 8][4];
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++)
#pragma unroll
      for (int i = 0; i < 4; i++) sc[nt][i] = 0.f;
    // Q's fragment for each 16 dims is read (from shared memory for D = 128) once for all 4 key columns.
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
      uint32_t qa[4];
      if constexpr (Q_IN_REGISTERS) {
#pragma unroll
        for (int j = 0; j < 4; j++) qa[j] = qf[kk][j];
      } else {
        const int base = (warp * 16 + g) * QS / 2 + kk * 8 + t, down = 8 * QS / 2;
        qa[0] = qs[base]; qa[1] = qs[base + down]; qa[2] = qs[base + 4]; qa[3] = qs[base + down + 4];
      }
      // K's fragments for two key columns per ldmatrix: matrices (keys, dims 0..7 and 8..15 of these 16).
#pragma unroll
      for (int pair = 0; pair < BK / 16; pair++) {
        int r[4];
        ldmatrix_x4(r, kh + (pair * 16 + (lane / 16) * 8 + lane % 8) * KS + kk * 16 + ((lane / 8) % 2) * 8);
        const uint32_t b0[2] = {(uint32_t)r[0], (uint32_t)r[1]}, b1[2] = {(uint32_t)r[2], (uint32_t)r[3]};
        mma_f16_16816(sc[2 * pair], qa, b0);
        mma_f16_16816(sc[2 * pair + 1], qa, b1);
      }
    }
    // Scale and mask; each row's tile max over its quad (the 4 lanes holding the row).
    float tileMax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int row = r[i / 2], pos = pos0 + row, key = kt + nt * 8 + 2 * t + i % 2;
        const bool valid = row < segRows && key <= pos && (a.window <= 0 || key > pos - a.window);
        sc[nt][i] = valid ? sc[nt][i] * a.scale : -INFINITY;
        tileMax[i / 2] = fmaxf(tileMax[i / 2], sc[nt][i]);
      }
    float ref[2];
#pragma unroll
    for (int x = 0; x < 2; x++) {
      tileMax[x] = fmaxf(tileMax[x], __shfl_xor_sync(0xffffffffu, tileMax[x], 1));
      tileMax[x] = fmaxf(tileMax[x], __shfl_xor_sync(0xffffffffu, tileMax[x], 2));
      const float mNew = fmaxf(m[x], tileMax[x]);
      // A row with no key yet keeps 0 as its reference, so exp() sees no -inf - -inf.
      ref[x] = mNew == -INFINITY ? 0.f : mNew;
      const float correction = expf(m[x] - ref[x]);
      l[x] *= correction;
#pragma unroll
      for (int j = 0; j < D / 8; j++) { o[j][2 * x] *= correction; o[j][2 * x + 1] *= correction; }
      m[x] = mNew;
    }
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        sc[nt][i] = expf(sc[nt][i] - ref[i / 2]);
        l[i / 2] += sc[nt][i];
      }
    // P (16 rows x 32 keys) as A operands, 16 keys per product, times V's columns: one
    // transposing ldmatrix gives two 8-dim columns (matrices: keys 0..7, 8..15 of the 16, per column).
#pragma unroll
    for (int kk = 0; kk < BK / 16; kk++) {
      const uint32_t p[4] = {pack_half2(sc[2 * kk][0], sc[2 * kk][1]), pack_half2(sc[2 * kk][2], sc[2 * kk][3]),
                             pack_half2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]), pack_half2(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
      for (int jp = 0; jp < D / 16; jp++) {
        int r[4];
        ldmatrix_x4<true>(r, vh + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * KS + (2 * jp + lane / 16) * 8);
        const uint32_t b0[2] = {(uint32_t)r[0], (uint32_t)r[1]}, b1[2] = {(uint32_t)r[2], (uint32_t)r[3]};
        mma_f16_16816(o[2 * jp], p, b0);
        mma_f16_16816(o[2 * jp + 1], p, b1);
      }
    }
  }

#pragma unroll
  for (int x = 0; x < 2; x++) {
    l[x] += __shfl_xor_sync(0xffffffffu, l[x], 1);
    l[x] += __shfl_xor_sync(0xffffffffu, l[x], 2);
    if (sinks) l[x] += expf(sinks[h] - m[x]);
  }
  // Each lane holds dims 2t and 2t + 1 of its rows side by side: one float2 store.
#pragma unroll
  for (int j = 0; j < D / 8; j++)
#pragma unroll
    for (int x = 0; x < 2; x++) {
      const int row = r[x];
      if (row >= segRows) continue;
      float2 v;
      v.x = o[j][2 * x] / l[x];
      v.y = o[j][2 * x + 1] / l[x];
      *reinterpret_cast<float2 *>(out + ((int64_t)(rowStart + row) * a.heads + h) * D + j * 8 + 2 * t) = v;
    }
}

// Whether a launch takes flash_attend: a segment of FLASH_MIN_ROWS rows or more
// (16; PSIONIC_CUDA_FLASH_MIN_ROWS moves it, for measurement, read at
// psi_cuda_init), and head dims of 64 (gpt-oss, small llamas) or 128 (llama 3
// 8B and most larger models).
extern int64_t FLASH_MIN_ROWS;
inline bool flash_fits(int headDim, int headDimV, int maxSegmentRows) {
  return headDim == headDimV && (headDim == 64 || headDim == 128) && maxSegmentRows >= FLASH_MIN_ROWS;
}

inline int launch_flash(const float *q, const Segments &s, const AttendArgs &a, int maxSegmentRows, const float *sinks, float *out) {
  const dim3 grid((unsigned)ceil_div(maxSegmentRows, flash::BQ), (unsigned)a.heads, (unsigned)s.count);
  if (a.headDim == 64) PSI_LAUNCH(grid, flash::THREADS, flash_attend<64>)(q, s, a, sinks, out);
  else PSI_LAUNCH(grid, flash::THREADS, flash_attend<128>)(q, s, a, sinks, out);
  return PSI_LAUNCHED("flash attention");
}
