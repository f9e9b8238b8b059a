/* Q8_0 weights repacked once into groups of 16 rows, and the products that
 * read them (AVX-512 VNNI builds only).
 *   plain:    rows x nb blocks of 34 bytes (fp16 d, 32 int8 quants), row-major
 *   repacked: each whole group of 16 rows (16 * nb * 34 bytes, the same span it
 *             had) holds, for block b = 0..nb-1, 512 bytes of quants at
 *             group + 512*b, then the 16 rows' fp16 d of every block at
 *             group + 512*nb + 32*b. In the 512 bytes of block b, 64-byte
 *             chunk g (0-7) has byte 4*r + j = (uint8) (q(r, 4g + j) + 128)
 *             for row r (0-15) and j (0-3): values 4g..4g+3 of the 16 rows,
 *             already unsigned. Rows past the last whole group stay plain.
 * Same size, so the repacked bytes can stand in for the file's.
 *
 * Why: each 64-byte chunk is a vpdpbusd operand as it lies in memory (rows
 * across the 16 int32 lanes, the +128 bias applied), so a block of 16 rows is
 * eight loads and, per token, eight vpdpbusd against the token's 4-byte
 * groups broadcast, with no unpacking, no gathered scales and no horizontal
 * sums. Lane r ends the block holding row r's exact integer dot, started at
 * the token's -128*sum(x) correction; then one fma by d_w*d_x per block. That
 * is matmul_rows16.c's and the panels' arithmetic on the plain bytes, so the
 * bits equal theirs (llama.cpp's AMX order, docs/PARITY.md §3). */
#include <stdlib.h>
#include "matmul.h"
#include "matmul_panel.h"

#define GROUP_ROWS 16
#define PACKED_BLOCK 512 /* quant bytes of one block of a group */

int32_t PSI_IMPL(psi_repack_q8_0_rows16)(const void *src, void *dst, int64_t rows, int64_t cols) {
  if (!PSI_MATMUL_PANELS) return PSI_MATMUL_UNSUPPORTED_TYPE; /* only builds with the products below take the layout */
  if (rows < 0 || cols <= 0 || cols % QK != 0) return PSI_MATMUL_BAD_SHAPE;
  const int64_t nb = cols / QK, row_bytes = nb * (int64_t)sizeof(block_q8_0), group_bytes = GROUP_ROWS * row_bytes;
  const int64_t groups = rows / GROUP_ROWS;
  /* src == dst works: each group is read whole into scratch before it is written. */
  uint8_t *scratch = malloc((size_t)group_bytes);
  if (!scratch) return PSI_MATMUL_OUT_OF_MEMORY;
  for (int64_t g = 0; g < groups; g++) {
    const block_q8_0 *in = (const block_q8_0 *)((const uint8_t *)src + g * group_bytes);
    for (int64_t b = 0; b < nb; b++)
      for (int r = 0; r < GROUP_ROWS; r++) {
        const block_q8_0 *block = in + r * nb + b;
        memcpy(scratch + PACKED_BLOCK * nb + 2 * (GROUP_ROWS * b + r), &block->d, 2);
        for (int c = 0; c < QK / 4; c++) {
          uint32_t four;
          memcpy(&four, block->qs + 4 * c, 4);
          four ^= 0x80808080u; /* q + 128 in each byte */
          memcpy(scratch + PACKED_BLOCK * b + 64 * c + 4 * r, &four, 4);
        }
      }
    memcpy((uint8_t *)dst + g * group_bytes, scratch, (size_t)group_bytes);
  }
  free(scratch);
  if (dst != src) memcpy((uint8_t *)dst + groups * group_bytes, (const uint8_t *)src + groups * group_bytes, (size_t)((rows - groups * GROUP_ROWS) * row_bytes));
  return PSI_MATMUL_OK;
}

#if PSI_MATMUL_PANELS
#include "matmul_simd.h"

static inline int32_t load_i32(const void *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* One group's 16 rows against nt <= PSI_TILE_TOKENS tokens of one activation tile. */
PSI_ALWAYS_INLINE void group_n(const uint8_t *group, int64_t nb, const uint8_t *blocks, const float *scales,
                               const int32_t *corrections, const int nt, float *y, int64_t y_stride) {
  __m512 acc[PSI_TILE_TOKENS];
  for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
  const uint16_t *d_w = (const uint16_t *)(group + PACKED_BLOCK * nb);
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t *q = group + PACKED_BLOCK * b;
    prefetch_ahead(q, PACKED_BLOCK);
    __m512i w[QK / 4];
    for (int g = 0; g < QK / 4; g++) w[g] = _mm512_loadu_si512(q + 64 * g);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(d_w + GROUP_ROWS * b)));
    const block_q8_0 *xb = (const block_q8_0 *)blocks + b * PSI_TILE_TOKENS;
    for (int t = 0; t < nt; t++) {
      /* two dependency chains of four (integer adds: exact in any order) */
      __m512i s0 = _mm512_set1_epi32(corrections[b * PSI_TILE_TOKENS + t]), s1 = _mm512_setzero_si512();
      for (int g = 0; g < QK / 8; g++) {
        s0 = _mm512_dpbusd_epi32(s0, w[g], _mm512_set1_epi32(load_i32(xb[t].qs + 4 * g)));
        s1 = _mm512_dpbusd_epi32(s1, w[g + QK / 8], _mm512_set1_epi32(load_i32(xb[t].qs + 4 * (g + QK / 8))));
      }
      const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(scales[b * PSI_TILE_TOKENS + t]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), d, acc[t]);
    }
  }
  for (int t = 0; t < nt; t++) _mm512_storeu_ps(y + t * y_stride, acc[t]);
}

static void group_tile(const uint8_t *group, int64_t nb, const uint8_t *blocks, const float *scales,
                       const int32_t *corrections, int nt, float *y, int64_t y_stride) {
  switch (nt) {
    case 1: group_n(group, nb, blocks, scales, corrections, 1, y, y_stride); break;
    case 2: group_n(group, nb, blocks, scales, corrections, 2, y, y_stride); break;
    case 3: group_n(group, nb, blocks, scales, corrections, 3, y, y_stride); break;
    case 4: group_n(group, nb, blocks, scales, corrections, 4, y, y_stride); break;
    case 5: group_n(group, nb, blocks, scales, corrections, 5, y, y_stride); break;
    case 6: group_n(group, nb, blocks, scales, corrections, 6, y, y_stride); break;
    case 7: group_n(group, nb, blocks, scales, corrections, 7, y, y_stride); break;
    default: group_n(group, nb, blocks, scales, corrections, 8, y, y_stride); break;
  }
}

/* Whole groups [r0, r1) against n_tokens tokens: x is psi_matmul's first activation
 * tile, the others follow it (tile k's blocks at k*nb*PSI_TILE_TOKENS blocks on,
 * its scales and corrections at k*nb*PSI_TILE_TOKENS). Each group meets every
 * tile while it is in L2, so the weights stream from memory once per call. */
void PSI_IMPL(psi_rows16_q8_0_packed)(const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,
                                      const psi_tile_activations *x, int64_t n_tokens, float *y, int64_t y_stride) {
  const int64_t tile_blocks = nb * PSI_TILE_TOKENS;
  for (int64_t r = r0; r < r1; r += GROUP_ROWS)
    for (int64_t t = 0; t < n_tokens; t += PSI_TILE_TOKENS) {
      const int64_t tile = t / PSI_TILE_TOKENS;
      const int nt = n_tokens - t < PSI_TILE_TOKENS ? (int)(n_tokens - t) : PSI_TILE_TOKENS;
      group_tile(w + r * row_bytes, nb, x->blocks + tile * tile_blocks * (int64_t)sizeof(block_q8_0), x->scales + tile * tile_blocks,
                 x->corrections + tile * tile_blocks, nt, y + t * y_stride + r, y_stride);
    }
}

/* Blocks 0..nb-1 of the group at `group` into lanes [16*half, 16*half + 16) of a
 * 32-row panel (matmul_panel.c's layout: per block, [4-byte group g][row][4 bytes], then d):
 * the chunks are already in that layout, so this is a copy and a conversion of the scales. */
void PSI_IMPL(psi_panel_unpack_q8_0_packed)(const uint8_t *group, int64_t nb, int half, uint8_t *q, float *d, int panel_rows) {
  const uint16_t *d_w = (const uint16_t *)(group + PACKED_BLOCK * nb);
  for (int64_t b = 0; b < nb; b++) {
    uint8_t *qb = q + b * panel_rows * QK;
    for (int g = 0; g < QK / 4; g++)
      _mm512_storeu_si512(qb + (g * panel_rows + GROUP_ROWS * half) * 4, _mm512_loadu_si512(group + PACKED_BLOCK * b + 64 * g));
    _mm512_storeu_ps(d + b * panel_rows + GROUP_ROWS * half, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(d_w + GROUP_ROWS * b))));
  }
}

#endif
