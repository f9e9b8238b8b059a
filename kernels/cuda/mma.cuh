// Warp-wide tensor-core products (mma.sync, sm_80+) with the fragment layouts
// of the PTX ISA ("Matrix Fragments for mma.m16n8k16"), written out here
// because the kernels index fragments directly. In a warp, lane = 4g + t.
//
// int8, D (16x8, s32) += A (16x16, s8, row-major) B (16x8, s8, by column):
//   a0: A row g,   k 4t..4t+3 (four int8, low byte first)
//   a1: A row g+8, k 4t..4t+3
//   b:  B column g, k 4t..4t+3
// int8 with k = 32 (twice the work per instruction): the k = 16 layout for k
// 0..15 (a[0], a[1], b[0]) and again for k 16..31 (a[2], a[3], b[1]).
// fp16, D (16x8, f32) += A (16x16, f16) B (16x8, f16):
//   a[0]: A row g, k 2t..2t+1   a[1]: row g+8, k 2t..2t+1
//   a[2]: A row g, k 2t+8..2t+9 a[3]: row g+8, k 2t+8..2t+9 (two f16, low half first)
//   b[0]: B column g, k 2t..2t+1  b[1]: column g, k 2t+8..2t+9
// Both: c[i] is D row g + 8*(i/2), column 2t + i%2.
//
// The CPU build (emulate.h) gathers the warp's fragments and computes each
// lane's four results from the whole matrices laid out as above: the emulated
// checks test the kernels' use of these layouts, and the GPU checks
// (cuda-ops.cuda-check.ts) that the hardware's are the same.
#pragma once
#include "common.cuh"

#ifdef PSI_EMULATE
__device__ __forceinline__ void mma_s8_16832(int c[4], const int a[4], const int b[2]) {
  const uint32_t mine[6] = {(uint32_t)a[0], (uint32_t)a[1], (uint32_t)a[2], (uint32_t)a[3], (uint32_t)b[0], (uint32_t)b[1]};
  uint32_t all[32][8];
  psi_emu_warp_gather(mine, 6, all);
  const int lane = psi_emu_lane(), g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; i++) {
    const int row = g + 8 * (i / 2), col = 2 * t + i % 2;
    for (int k = 0; k < 32; k++) {
      const int8_t av = (int8_t)(all[(row % 8) * 4 + (k % 16) / 4][row / 8 + 2 * (k / 16)] >> (8 * (k % 4)));
      const int8_t bv = (int8_t)(all[col * 4 + (k % 16) / 4][4 + k / 16] >> (8 * (k % 4)));
      c[i] += (int)av * (int)bv;
    }
  }
}
// k = 16 is k = 32's first half (the layouts above), the second half zero.
__device__ __forceinline__ void mma_s8_16816(int c[4], int a0, int a1, int b) {
  const int a[4] = {a0, a1, 0, 0}, bk[2] = {b, 0};
  mma_s8_16832(c, a, bk);
}
__device__ __forceinline__ void mma_f16_16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
  const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
  uint32_t all[32][8];
  psi_emu_warp_gather(mine, 6, all);
  const int lane = psi_emu_lane(), g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; i++) {
    const int row = g + 8 * (i / 2), col = 2 * t + i % 2;
    float sum = c[i];
    for (int k = 0; k < 16; k++) {
      const uint32_t aw = all[(row % 8) * 4 + (k % 8) / 2][row / 8 + 2 * (k / 8)];
      const uint32_t bw = all[col * 4 + (k % 8) / 2][4 + k / 8];
      sum += __half2float(__ushort_as_half((uint16_t)(aw >> (16 * (k % 2))))) *
             __half2float(__ushort_as_half((uint16_t)(bw >> (16 * (k % 2)))));
    }
    c[i] = sum;
  }
}
#else
__device__ __forceinline__ void mma_s8_16816(int c[4], int a0, int a1, int b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
               : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
               : "r"(a0), "r"(a1), "r"(b));
}
__device__ __forceinline__ void mma_s8_16832(int c[4], const int a[4], const int b[2]) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void mma_f16_16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

// Four 8x8 matrices of 16-bit values (8 rows of 16 bytes each) from shared
// memory, the warp's lanes 8m..8m+7 giving the (16-byte aligned) rows of matrix
// m: lane l gets word l % 4 of row l / 4 of each matrix, which is the int8
// fragment layout above (row g, bytes 4t..4t+3). One instruction for what
// takes four 4-byte loads. TRANS (ldmatrix .trans) gives lane l the values in
// column l / 4 of rows 2 (l % 4) and 2 (l % 4) + 1 instead (the first in the low
// half): an fp16 B fragment read from a row-major [k][n] tile (column g, k 2t..).
template <bool TRANS = false>
__device__ __forceinline__ void ldmatrix_x4(int r[4], const void *row) {
#ifdef PSI_EMULATE
  psi_emu_aligned<16>(row, "ldmatrix row");
  const uintptr_t p = (uintptr_t)row;
  const uint32_t mine[2] = {(uint32_t)p, (uint32_t)(p >> 32)};
  uint32_t all[32][8];
  psi_emu_warp_gather(mine, 2, all);
  const int lane = psi_emu_lane();
  const auto rowOf = [&](int m, int i) { return reinterpret_cast<const uint16_t *>(((uintptr_t)all[8 * m + i][1] << 32) | all[8 * m + i][0]); };
  for (int m = 0; m < 4; m++) {
    if (TRANS) {
      r[m] = (int)(rowOf(m, 2 * (lane % 4))[lane / 4] | ((uint32_t)rowOf(m, 2 * (lane % 4) + 1)[lane / 4] << 16));
    } else {
      r[m] = reinterpret_cast<const int *>(rowOf(m, lane / 4))[lane % 4];
    }
  }
#else
  const unsigned a = (unsigned)__cvta_generic_to_shared(row);
  if (TRANS) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  }
#endif
}

// Two floats as one f16x2 word (the first in the low half), as the fp16 fragments hold them.
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  return (uint32_t)__half_as_ushort(__float2half_rn(lo)) | ((uint32_t)__half_as_ushort(__float2half_rn(hi)) << 16);
}
