/* MXFP4 weights repacked once, at load, into groups of 16 rows, and the
 * products that read them (AVX-512 VNNI builds only).
 *   plain:    rows x nb blocks of 17 bytes (e8m0 e, 16 bytes of nibbles), row-major
 *   repacked: each whole group of 16 rows (16 * nb * 17 bytes, the same span it
 *             had) holds, for block b = 0..nb-1, 256 bytes of nibbles at
 *             group + 256*b, then the 16 rows' e8m0 bytes of every block at
 *             group + 256*nb + 16*b. In the 256 bytes of block b, 64-byte
 *             chunk c (0-3) has byte 4*r + j = code(r, 8c + j) | code(r, 8c + 4 + j) << 4
 *             for row r (0-15) and j (0-3): its low nibbles are values 8c..8c+3
 *             of the 16 rows, its high nibbles values 8c+4..8c+7.
 *             Rows past the last whole group stay as they were (plain).
 * Same size, so the repacked bytes replace the file's in memory.
 *
 * Why: with the rows across the 16 int32 lanes, one 64-byte load gives two
 * vectors of 4 values for each of 16 rows; the token's 4 matching activation
 * bytes are broadcast against them (vpdpbusd), and lane r ends the block
 * holding row r's exact integer dot, with no horizontal sums and no gathers.
 * The arithmetic per (row, token) is matmul_rows16.c's and the panels': the
 * block dot started at the token's -12*sum(x) correction (codes read as
 * value + 12), one fma by d_w*d_x per block; so the bits equal the plain
 * layout's products (and llama.cpp's mxfp4_8x8 gemv). */
#include <stdlib.h>
#include "matmul.h"
#include "matmul_panel.h"

#define GROUP_ROWS 16
#define PACKED_BLOCK 256 /* nibble bytes of one block of a group */

/* Code of value v (0-31) of a plain block. */
static inline uint8_t code_of(const block_mxfp4 *b, int v) { return v < 16 ? b->qs[v] & 0xF : b->qs[v - 16] >> 4; }

int32_t PSI_IMPL(psi_repack_mxfp4_rows16)(const void *src, void *dst, int64_t rows, int64_t cols) {
  if (!PSI_MATMUL_PANELS) return PSI_MATMUL_UNSUPPORTED_TYPE; /* only builds with the products below take the layout */
  if (rows < 0 || cols <= 0 || cols % QK != 0) return PSI_MATMUL_BAD_SHAPE;
  const int64_t nb = cols / QK, row_bytes = nb * (int64_t)sizeof(block_mxfp4), group_bytes = GROUP_ROWS * row_bytes;
  const int64_t groups = rows / GROUP_ROWS;
  /* src == dst works: each group is read whole into scratch before it is written. */
  uint8_t *scratch = malloc((size_t)group_bytes);
  if (!scratch) return PSI_MATMUL_OUT_OF_MEMORY;
  for (int64_t g = 0; g < groups; g++) {
    const block_mxfp4 *in = (const block_mxfp4 *)((const uint8_t *)src + g * group_bytes);
    for (int64_t b = 0; b < nb; b++)
      for (int r = 0; r < GROUP_ROWS; r++) {
        const block_mxfp4 *block = in + r * nb + b;
        scratch[PACKED_BLOCK * nb + GROUP_ROWS * b + r] = block->e;
        for (int c = 0; c < 4; c++)
          for (int j = 0; j < 4; j++)
            scratch[PACKED_BLOCK * b + 64 * c + 4 * r + j] = (uint8_t)(code_of(block, 8 * c + j) | code_of(block, 8 * c + 4 + j) << 4);
      }
    memcpy((uint8_t *)dst + g * group_bytes, scratch, (size_t)group_bytes);
  }
  free(scratch);
  if (dst != src) memcpy((uint8_t *)dst + groups * group_bytes, (const uint8_t *)src + groups * group_bytes, (size_t)((rows - groups * GROUP_ROWS) * row_bytes));
  return PSI_MATMUL_OK;
}

#if PSI_MATMUL_PANELS
#include "matmul_simd.h"

static const uint8_t mxfp4_unsigned[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};
_Static_assert(PSI_MXFP4_OFFSET == 12, "mxfp4_unsigned holds the values + 12");

/* Block b of a group as 8 vectors u[g] of unsigned bytes (value + 12): lane r, byte j = value 4g + j of row r. */
PSI_ALWAYS_INLINE void unpack_block(const uint8_t *group, int64_t b, __m512i u[8]) {
  const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)mxfp4_unsigned));
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int c = 0; c < 4; c++) {
    const __m512i packed = _mm512_loadu_si512(group + PACKED_BLOCK * b + 64 * c);
    u[2 * c] = _mm512_shuffle_epi8(table, _mm512_and_si512(packed, low));
    u[2 * c + 1] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(packed, 4), low));
  }
}

/* The 16 rows' d_w of block b: 2^(e-127)/2 from each e8m0 byte (psi_e8m0_half_to_float). */
PSI_ALWAYS_INLINE __m512 block_scales(const uint8_t *group, int64_t nb, int64_t b) {
  const __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(group + PACKED_BLOCK * nb + GROUP_ROWS * b)));
  const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(1)), 23);
  const __m512i small = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), e);
  return _mm512_castsi512_ps(_mm512_mask_blend_epi32(_mm512_cmplt_epi32_mask(e, _mm512_set1_epi32(2)), normal, small));
}

static inline int32_t load_i32(const void *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* One group's 16 rows against nt tokens (psi_matmul's first activation tile). */
PSI_ALWAYS_INLINE void group_n(const uint8_t *group, int64_t nb, const psi_tile_activations *x, const int nt,
                               float *y, int64_t y_stride) {
  __m512 acc[5];
  for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    /* the nibbles PSI_PREFETCH_BYTES ahead (gpt-oss-1b decode, 1 thread: 4 blocks
     * ahead ~80 tok/s, 8 ahead ~88, loaded machine); the scales are a short second stream */
    prefetch_ahead(group + PACKED_BLOCK * b, PACKED_BLOCK);
    __m512i u[8];
    unpack_block(group, b, u);
    const __m512 dw = block_scales(group, nb, b);
    const uint8_t *xb = x->blocks + b * PSI_TILE_TOKENS * (int64_t)sizeof(block_q8_0);
    for (int t = 0; t < nt; t++) {
      const uint8_t *qs = ((const block_q8_0 *)xb)[t].qs;
      __m512i s = _mm512_set1_epi32(x->corrections[b * PSI_TILE_TOKENS + t]);
      for (int g = 0; g < 8; g++) s = _mm512_dpbusd_epi32(s, u[g], _mm512_set1_epi32(load_i32(qs + 4 * g)));
      const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(x->scales[b * PSI_TILE_TOKENS + t]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc[t]);
    }
  }
  for (int t = 0; t < nt; t++) _mm512_storeu_ps(y + t * y_stride, acc[t]);
}

void PSI_IMPL(psi_rows16_mxfp4_packed)(const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,
                                       const psi_tile_activations *x, int nt, float *y, int64_t y_stride) {
  for (int64_t r = r0; r < r1; r += GROUP_ROWS) {
    const uint8_t *group = w + r * row_bytes;
    switch (nt) {
      case 1: group_n(group, nb, x, 1, y + r, y_stride); break;
      case 2: group_n(group, nb, x, 2, y + r, y_stride); break;
      case 3: group_n(group, nb, x, 3, y + r, y_stride); break;
      case 4: group_n(group, nb, x, 4, y + r, y_stride); break;
      default: group_n(group, nb, x, 5, y + r, y_stride); break;
    }
  }
}

/* Blocks [b0, b1) of the group at `group` into lanes [16*half, 16*half + 16) of a
 * 32-row panel (matmul_panel.c's layout: per block, [4-byte group g][row][4 bytes], then d). */
void PSI_IMPL(psi_panel_unpack_mxfp4_packed)(const uint8_t *group, int64_t nb, int half, uint8_t *q, float *d, int panel_rows) {
  for (int64_t b = 0; b < nb; b++) {
    __m512i u[8];
    unpack_block(group, b, u);
    uint8_t *qb = q + b * panel_rows * QK;
    for (int g = 0; g < 8; g++) _mm512_storeu_si512(qb + (g * panel_rows + GROUP_ROWS * half) * 4, u[g]);
    _mm512_storeu_ps(d + b * panel_rows + GROUP_ROWS * half, block_scales(group, nb, b));
  }
}

#endif
