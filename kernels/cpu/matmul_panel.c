/* Prefill products on AVX-512 VNNI for the 32-value block types: Q8_0, Q4_0,
 * Q5_0, MXFP4 (and the repacked MXFP4 and Q8_0 layouts) against Q8_0
 * activations, Q4_1 and Q5_1 against Q8_1. Many tokens, so each weight row
 * is unpacked once per call and reused by every token.
 *   w: rows of nb blocks; acts: the tokens' Q8_0 activations, interleaved by
 *   8-token tile with per-block scales and VNNI corrections (matmul.h)
 *   y[t*rows + r] = dot(w row r, token t), for rows [r_begin, r_end)
 *
 * Rows go across the vector lanes. A panel of 32 rows is unpacked into
 * unsigned bytes (value + the type's offset) laid out block by block as
 * [4-byte group g][row][4 bytes], so one 64-byte load holds group g of 16
 * rows; a token's 4 activation bytes are broadcast against it (vpdpbusd).
 * The microkernel keeps 2 x 16 rows by up to 4 tokens of int32 block sums and
 * float accumulators in registers. Per block and (row, token) the order is
 * ggml's: the exact integer block dot (started at the token's -offset*sum(x)
 * correction), then one multiply-add by d_w*d_x into the running float sum;
 * Q4_1/Q5_1 (unsigned values, a minimum m per block) start the integer sum
 * at 0 and add m*s_x after the scaled sum, s_x = d_x*sum(x) from the Q8_1 block.
 * The fast tiles (matmul_legacy_simd.c) do the same, so results match them
 * up to float rounding, and the same instructions run for a (row, token)
 * whatever the split, so every thread count gives the same bits. */
#include "matmul.h"
#include "matmul_panel.h"

#if PSI_MATMUL_PANELS
#include "matmul_simd.h"

#define PANEL_ROWS 32
/* Blocks per pass over the tokens: the panel's part (CHUNK_BLOCKS KiB) stays
 * in L1 while every token streams past it. 2560x768 Q8_0 by 512 tokens, one
 * thread: 387 GFLOP/s with 6, 402 with 12, 458 with 24, 458 with 40. */
#define CHUNK_BLOCKS 24
/* Tokens per microkernel call; 2x4 int32 sums, 2x4 float sums, 2 weight vectors. */
#define KERNEL_TOKENS 4

/* One panel: q[b][g][row][4] unsigned bytes, d[b][row] float scales, m[b][row] minimums (Q4_1, Q5_1). */
typedef struct {
  uint8_t *q;
  float *d;
  float *m;
} weight_panel;

PSI_ALWAYS_INLINE int has_minimum(int32_t type) { return type == PSI_Q4_1 || type == PSI_Q5_1; }

int64_t PSI_IMPL(psi_panel_scratch_bytes)(int32_t type, int64_t nb) {
  /* Q5_1 and Q3_K keep the row-by-row path: their lane order equals ggml's
   * vec_dot, which is what llama.cpp uses for them here (docs/PARITY.md), and
   * cpu-parity*.test.ts hold that bit-exactness. The panels would change it. */
  if (type == PSI_Q5_1) return 0;
  if (type == PSI_Q2_K || type == PSI_Q4_K || type == PSI_Q5_K || type == PSI_Q6_K) return PSI_IMPL(psi_panel_kquant_scratch_bytes)(type, nb);
  if (type != PSI_Q8_0 && type != PSI_Q4_0 && type != PSI_Q5_0 && type != PSI_MXFP4 && type != PSI_MXFP4_ROWS16 && type != PSI_Q8_0_ROWS16 && !has_minimum(type)) return 0;
  return nb * PANEL_ROWS * (QK + 2 * (int64_t)sizeof(float)) + 64;
}

static const uint8_t mxfp4_unsigned[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};
_Static_assert(PSI_MXFP4_OFFSET == 12, "mxfp4_unsigned holds the values + 12");

/* One weight block as 32 unsigned bytes (value + PSI_<type>_OFFSET) and its
 * float scale (and minimum, Q4_1/Q5_1). */
static float unpack_block(int32_t type, const uint8_t *block, uint8_t out[QK], float *minimum) {
  switch (type) {
    case PSI_Q4_1: {
      const block_q4_1 *b = (const block_q4_1 *)block;
      _mm256_storeu_si256((__m256i *)out, nibbles_32(b->qs));
      *minimum = half_to_float(b->m);
      return half_to_float(b->d);
    }
    case PSI_Q5_1: {
      const block_q5_1 *b = (const block_q5_1 *)block;
      uint32_t qh;
      memcpy(&qh, b->qh, 4);
      _mm256_storeu_si256((__m256i *)out, _mm256_or_si256(nibbles_32(b->qs), _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10))));
      *minimum = half_to_float(b->m);
      return half_to_float(b->d);
    }
    case PSI_Q8_0: {
      const block_q8_0 *b = (const block_q8_0 *)block;
      _mm256_storeu_si256((__m256i *)out, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b->qs), _mm256_set1_epi8((char)0x80)));
      return half_to_float(b->d);
    }
    case PSI_Q4_0: {
      const block_q4_0 *b = (const block_q4_0 *)block;
      _mm256_storeu_si256((__m256i *)out, nibbles_32(b->qs));
      return half_to_float(b->d);
    }
    case PSI_Q5_0: {
      const block_q5_0 *b = (const block_q5_0 *)block;
      uint32_t qh;
      memcpy(&qh, b->qh, 4);
      _mm256_storeu_si256((__m256i *)out, _mm256_or_si256(nibbles_32(b->qs), _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10))));
      return half_to_float(b->d);
    }
    default: { /* PSI_MXFP4 */
      const block_mxfp4 *b = (const block_mxfp4 *)block;
      const __m128i table = _mm_loadu_si128((const __m128i *)mxfp4_unsigned);
      _mm256_storeu_si256((__m256i *)out, _mm256_shuffle_epi8(_mm256_setr_m128i(table, table), nibbles_32(b->qs)));
      return psi_e8m0_half_to_float(b->e);
    }
  }
}

/* Unpacks blocks [b0, b1) of rows [r0, r0 + n) (n <= PANEL_ROWS) into the panel; missing rows are zero.
 * Repacked MXFP4 and Q8_0 (r0 a multiple of 32, every block: b0 = 0, b1 = nb)
 * unpack their whole 16-row groups directly; a partial group is the matrix's plain tail. */
static void unpack_panel(int32_t type, const uint8_t *w, int64_t row_bytes, int64_t block_bytes, int64_t b0,
                         int64_t b1, int64_t r0, int n, weight_panel *p) {
  if (type == PSI_MXFP4_ROWS16 || type == PSI_Q8_0_ROWS16) {
    void (*const unpack_group)(const uint8_t *, int64_t, int, uint8_t *, float *, int) =
        type == PSI_Q8_0_ROWS16 ? PSI_IMPL(psi_panel_unpack_q8_0_packed) : PSI_IMPL(psi_panel_unpack_mxfp4_packed);
    const int32_t plain = type == PSI_Q8_0_ROWS16 ? PSI_Q8_0 : PSI_MXFP4;
    if (n >= 16) unpack_group(w + r0 * row_bytes, b1, 0, p->q, p->d, PANEL_ROWS);
    if (n == PANEL_ROWS) unpack_group(w + (r0 + 16) * row_bytes, b1, 1, p->q, p->d, PANEL_ROWS);
    if (n == PANEL_ROWS) return;
    /* the plain rows after the groups, into a scratch panel's rows 16..31 or 0..15 */
    const int whole = n >= 16 ? 16 : 0;
    uint32_t rows[PANEL_ROWS][QK / 4];
    for (int64_t b = b0; b < b1; b++) {
      for (int r = 0; r < PANEL_ROWS; r++) {
        float minimum = 0;
        if (r < whole) continue;
        if (r < n) p->d[b * PANEL_ROWS + r] = unpack_block(plain, w + (r0 + r) * row_bytes + b * block_bytes, (uint8_t *)rows[r], &minimum);
        else {
          memset(rows[r], 0, sizeof(rows[r]));
          p->d[b * PANEL_ROWS + r] = 0;
        }
      }
      uint32_t *q = (uint32_t *)(p->q + b * PANEL_ROWS * QK);
      for (int g = 0; g < QK / 4; g++)
        for (int r = whole; r < PANEL_ROWS; r++) q[g * PANEL_ROWS + r] = rows[r][g];
    }
    return;
  }
  for (int64_t b = b0; b < b1; b++) {
    uint32_t rows[PANEL_ROWS][QK / 4];
    for (int r = 0; r < PANEL_ROWS; r++) {
      float minimum = 0;
      if (r < n) p->d[b * PANEL_ROWS + r] = unpack_block(type, w + (r0 + r) * row_bytes + b * block_bytes, (uint8_t *)rows[r], &minimum);
      else {
        memset(rows[r], 0, sizeof(rows[r]));
        p->d[b * PANEL_ROWS + r] = 0;
      }
      p->m[b * PANEL_ROWS + r] = minimum;
    }
    /* [row][g] -> [g][row]: 16 rows of group g are one gather of stride 32 bytes. */
    uint32_t *q = (uint32_t *)(p->q + b * PANEL_ROWS * QK);
    const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(QK / 4));
    for (int g = 0; g < QK / 4; g++)
      for (int half = 0; half < 2; half++)
        _mm512_storeu_si512(q + (g * PANEL_ROWS + 16 * half), _mm512_i32gather_epi32(index, &rows[16 * half][g], 4));
  }
}

static inline int32_t load_i32(const void *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* y rows [0, 32) (masks m0, m1) of tokens 0..nt-1 at y + t*y_stride, over blocks [b0, b1):
 * acc = (b0 == 0 ? 0 : y) + sum over blocks. */
/* with_minimum: Q4_1/Q5_1 (xs are Q8_1 blocks, no corrections). */
PSI_ALWAYS_INLINE void panel_kernel_n(const int with_minimum, const weight_panel *p, int64_t b0, int64_t b1, const uint8_t *xs,
                                      const float *xd, const int32_t *xc, const int nt, float *y, int64_t y_stride,
                                      __mmask16 m0, __mmask16 m1) {
  const int64_t x_bytes = with_minimum ? (int64_t)sizeof(block_q8_1) : (int64_t)sizeof(block_q8_0);
  const int64_t qs_at = with_minimum ? 4 : 2; /* offset of qs in the block */
  __m512 acc[KERNEL_TOKENS][2];
  for (int t = 0; t < nt; t++) {
    acc[t][0] = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m0, y + t * y_stride);
    acc[t][1] = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m1, y + t * y_stride + 16);
  }
  for (int64_t b = b0; b < b1; b++) {
    const uint8_t *q = p->q + b * PANEL_ROWS * QK;
    const uint8_t *xb = xs + b * PSI_TILE_TOKENS * x_bytes;
    /* the tokens' blocks two blocks ahead: 272 bytes apart, a stride the hardware prefetcher misses */
    for (int line = 0; line < nt * x_bytes; line += 64) _mm_prefetch((const char *)(xb + 2 * PSI_TILE_TOKENS * x_bytes) + line, _MM_HINT_T0);
    __m512i sum[KERNEL_TOKENS][2];
    for (int t = 0; t < nt; t++)
      sum[t][0] = sum[t][1] = with_minimum ? _mm512_setzero_si512() : _mm512_set1_epi32(xc[b * PSI_TILE_TOKENS + t]);
    for (int g = 0; g < QK / 4; g++) {
      const __m512i w0 = _mm512_loadu_si512(q + g * PANEL_ROWS * 4);
      const __m512i w1 = _mm512_loadu_si512(q + g * PANEL_ROWS * 4 + 64);
      for (int t = 0; t < nt; t++) {
        const __m512i xv = _mm512_set1_epi32(load_i32(xb + t * x_bytes + qs_at + 4 * g));
        sum[t][0] = _mm512_dpbusd_epi32(sum[t][0], w0, xv);
        sum[t][1] = _mm512_dpbusd_epi32(sum[t][1], w1, xv);
      }
    }
    const __m512 d0 = _mm512_loadu_ps(p->d + b * PANEL_ROWS), d1 = _mm512_loadu_ps(p->d + b * PANEL_ROWS + 16);
    for (int t = 0; t < nt; t++) {
      const __m512 dx = _mm512_set1_ps(xd[b * PSI_TILE_TOKENS + t]);
      acc[t][0] = _mm512_fmadd_ps(_mm512_mul_ps(d0, dx), _mm512_cvtepi32_ps(sum[t][0]), acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(_mm512_mul_ps(d1, dx), _mm512_cvtepi32_ps(sum[t][1]), acc[t][1]);
    }
    if (with_minimum) {
      const __m512 n0 = _mm512_loadu_ps(p->m + b * PANEL_ROWS), n1 = _mm512_loadu_ps(p->m + b * PANEL_ROWS + 16);
      for (int t = 0; t < nt; t++) {
        const __m512 sx = _mm512_set1_ps(half_to_float(((const block_q8_1 *)(xb + t * x_bytes))->s));
        acc[t][0] = _mm512_fmadd_ps(n0, sx, acc[t][0]);
        acc[t][1] = _mm512_fmadd_ps(n1, sx, acc[t][1]);
      }
    }
  }
  for (int t = 0; t < nt; t++) {
    _mm512_mask_storeu_ps(y + t * y_stride, m0, acc[t][0]);
    _mm512_mask_storeu_ps(y + t * y_stride + 16, m1, acc[t][1]);
  }
}

static void panel_kernel(const int with_minimum, const weight_panel *p, int64_t b0, int64_t b1, const uint8_t *xs,
                         const float *xd, const int32_t *xc, int nt, float *y, int64_t y_stride, __mmask16 m0, __mmask16 m1) {
  if (with_minimum) {
    switch (nt) {
      case 1: panel_kernel_n(1, p, b0, b1, xs, xd, xc, 1, y, y_stride, m0, m1); break;
      case 2: panel_kernel_n(1, p, b0, b1, xs, xd, xc, 2, y, y_stride, m0, m1); break;
      case 3: panel_kernel_n(1, p, b0, b1, xs, xd, xc, 3, y, y_stride, m0, m1); break;
      default: panel_kernel_n(1, p, b0, b1, xs, xd, xc, 4, y, y_stride, m0, m1); break;
    }
    return;
  }
  switch (nt) {
    case 1: panel_kernel_n(0, p, b0, b1, xs, xd, xc, 1, y, y_stride, m0, m1); break;
    case 2: panel_kernel_n(0, p, b0, b1, xs, xd, xc, 2, y, y_stride, m0, m1); break;
    case 3: panel_kernel_n(0, p, b0, b1, xs, xd, xc, 3, y, y_stride, m0, m1); break;
    default: panel_kernel_n(0, p, b0, b1, xs, xd, xc, 4, y, y_stride, m0, m1); break;
  }
}

void PSI_IMPL(psi_panel_multiply)(const psi_panel_args *a, int64_t r_begin, int64_t r_end, void *scratch) {
  if (a->type == PSI_Q2_K || a->type == PSI_Q4_K || a->type == PSI_Q5_K || a->type == PSI_Q6_K) return PSI_IMPL(psi_panel_kquant_multiply)(a, r_begin, r_end, scratch);
  uint8_t *aligned = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
  weight_panel p = {aligned, (float *)(aligned + a->nb * PANEL_ROWS * QK), (float *)(aligned + a->nb * PANEL_ROWS * (QK + 4))};
  const int with_minimum = has_minimum(a->type);
  const int64_t x_bytes = with_minimum ? (int64_t)sizeof(block_q8_1) : (int64_t)sizeof(block_q8_0);
  for (int64_t r0 = r_begin; r0 < r_end; r0 += PANEL_ROWS) {
    const int n = r_end - r0 < PANEL_ROWS ? (int)(r_end - r0) : PANEL_ROWS;
    unpack_panel(a->type, a->w, a->row_bytes, a->block_bytes, 0, a->nb, r0, n, &p);
    const __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
    const __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
    for (int64_t b0 = 0; b0 < a->nb; b0 += CHUNK_BLOCKS) {
      const int64_t b1 = b0 + CHUNK_BLOCKS < a->nb ? b0 + CHUNK_BLOCKS : a->nb;
      for (int64_t t = 0; t < a->n_tokens; t += KERNEL_TOKENS) {
        const int64_t tile = t / PSI_TILE_TOKENS, slot = t % PSI_TILE_TOKENS;
        const int nt = a->n_tokens - t < KERNEL_TOKENS ? (int)(a->n_tokens - t) : KERNEL_TOKENS;
        const uint8_t *xs = a->acts + tile * a->act_tile_bytes + slot * x_bytes;
        const int64_t first = tile * a->nb * PSI_TILE_TOKENS + slot;
        panel_kernel(with_minimum, &p, b0, b1, xs, a->act_scales + first, with_minimum ? NULL : a->act_corrections + first, nt,
                     a->y + t * a->rows + r0, a->rows, m0, m1);
      }
    }
  }
}

#endif
