/* Prefill products on AVX-512 VNNI for the K-quants (Q2_K, Q4_K..Q6_K; Q3_K keeps
 * ggml_vec_dot's lanes row by row, matmul_panel.c) against Q8_K activations,
 * the K-quant sibling of matmul_panel.c (read that first: same panels of 32
 * rows across the vector lanes, same token loop).
 *   w: rows of nb super-blocks; acts: the tokens' Q8_K blocks, interleaved by
 *   8-token tile (matmul.h); y[t*rows + r] = dot(w row r, token t)
 * A super-block is 8 sub-blocks of 32 unsigned values u (0..31) with a 6-bit
 * scale s_j and min m_j each:
 *   dot = d*dx*sum_j s_j*sum(u*x) - dmin*dx*sum_j m_j*sum(x over sub-block j)
 * Both sums over j are exact int32 per (row, token) before the float step, as
 * in ggml's vec_dot: sum(u*x) by vpdpbusd (u unsigned, x broadcast), times s_j
 * by vpmulld; the min term by vpdpwssd of (m_j, m_j) against the activation's
 * 16-value group sums (bsums), two groups per sub-block.
 * Q6_K has a signed 8-bit scale per 16 values and values u - 32 (u 0..63):
 *   dot = d*dx*(sum_g16 s_g16*sum(u*x) - 32*sum_g16 s_g16*bsum_g16)
 * the first sum by vpdpbusd per half sub-block times its scale, the second by
 * vpdpwssd of (-32*s, -32*s') pairs against the bsums pairs, both into one
 * exact int32 sum, as ggml sums q*x*s with q = u - 32. Q2_K has unsigned
 * 4-bit scales and mins per 16 values and a separate dmin term like Q4_K. */
#include "matmul.h"
#include "matmul_panel.h"

#if PSI_MATMUL_PANELS
#include "matmul_simd.h"

#define PANEL_ROWS 32
#define KERNEL_TOKENS 4
/* Super-blocks per pass over the tokens: ~11 KiB of panel each. */
#define CHUNK_BLOCKS 2

/* Per super-block and 32 rows: q[j][g][row][4] unsigned values; scale[j][row]
 * int32 (Q6_K: scale[i][row] per 16-value group i); min[j][row] the int16 pair
 * (m_j, m_j) (Q6_K: (-32*s_2j, -32*s_2j+1)); d[row], dmin[row]. */
typedef struct {
  uint8_t q[8][8][PANEL_ROWS][4];
  int32_t scale[16][PANEL_ROWS];
  int32_t min[8][PANEL_ROWS];
  float d[PANEL_ROWS];
  float dmin[PANEL_ROWS];
} kquant_panel;

int64_t PSI_IMPL(psi_panel_kquant_scratch_bytes)(int32_t type, int64_t nb) {
  if (type != PSI_Q2_K && type != PSI_Q4_K && type != PSI_Q5_K && type != PSI_Q6_K) return 0;
  return nb * (int64_t)sizeof(kquant_panel) + 64;
}

/* Q6_K: value 128*h + 32*k + l is ql[64*h + 32*(k%2) + l] nibble k/2, plus bits 2k, 2k+1 of qh[32*h + l] as bits 4, 5. */
static void unpack_row_q6_K(const block_q6_K *b, uint8_t u[QK_K], kquant_panel *p, int r) {
  for (int h = 0; h < 2; h++) {
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    for (int k = 0; k < 4; k++) {
      const __m256i ql = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (k % 2)));
      const __m256i low = _mm256_and_si256(k < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
      const __m256i high = _mm256_and_si256(2 * k <= 4 ? _mm256_slli_epi16(qh, 4 - 2 * k) : _mm256_srli_epi16(qh, 2 * k - 4),
                                            _mm256_set1_epi8(0x30));
      _mm256_storeu_si256((__m256i *)(u + 128 * h + 32 * k), _mm256_or_si256(low, high));
    }
  }
  for (int i = 0; i < 16; i++) p->scale[i][r] = b->scales[i];
  for (int j = 0; j < 8; j++)
    p->min[j][r] = (int32_t)(((uint32_t)(uint16_t)(int16_t)(-32 * b->scales[2 * j])) | ((uint32_t)(uint16_t)(int16_t)(-32 * b->scales[2 * j + 1]) << 16));
  p->d[r] = half_to_float(b->d);
  p->dmin[r] = 0;
}

static inline int32_t int16_pair(int first, int second) {
  return (int32_t)((uint32_t)(uint16_t)(int16_t)first | ((uint32_t)(uint16_t)(int16_t)second << 16));
}

/* Q2_K: sub-block j's 2-bit fields are bits 2*(j%4) of qs[32*(j/4) + l]. */
static void unpack_row_q2_K(const block_q2_K *b, uint8_t u[QK_K], kquant_panel *p, int r) {
  for (int j = 0; j < 8; j++) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * (j / 4)));
    _mm256_storeu_si256((__m256i *)(u + 32 * j), _mm256_and_si256(_mm256_srli_epi16(q, 2 * (j % 4)), _mm256_set1_epi8(3)));
  }
  for (int i = 0; i < 16; i++) p->scale[i][r] = b->scales[i] & 0xF;
  for (int j = 0; j < 8; j++) p->min[j][r] = int16_pair(b->scales[2 * j] >> 4, b->scales[2 * j + 1] >> 4);
  p->d[r] = half_to_float(b->d);
  p->dmin[r] = half_to_float(b->dmin);
}

/* One super-block of one row: 256 unsigned values in order, and its scales into panel row r. */
static void unpack_row(int32_t type, const uint8_t *block, uint8_t u[QK_K], kquant_panel *p, int r) {
  if (type == PSI_Q6_K) return unpack_row_q6_K((const block_q6_K *)block, u, p, r);
  if (type == PSI_Q2_K) return unpack_row_q2_K((const block_q2_K *)block, u, p, r);
  const uint8_t *scales, *qs, *qh = NULL;
  uint16_t d, dmin;
  if (type == PSI_Q4_K) {
    const block_q4_K *b = (const block_q4_K *)block;
    scales = b->scales, qs = b->qs, d = b->d, dmin = b->dmin;
  } else {
    const block_q5_K *b = (const block_q5_K *)block;
    scales = b->scales, qs = b->qs, qh = b->qh, d = b->d, dmin = b->dmin;
  }
  const __m256i high = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
  for (int j = 0; j < 8; j++) {
    /* sub-block j: nibble j%2 of qs[32*(j/2) ...], fifth bit j of qh */
    const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
    __m256i v = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0F));
    const __m256i bit = _mm256_and_si256(j <= 4 ? _mm256_slli_epi16(high, 4 - j) : _mm256_srli_epi16(high, j - 4), _mm256_set1_epi8(0x10));
    v = _mm256_or_si256(v, bit);
    _mm256_storeu_si256((__m256i *)(u + 32 * j), v);
    uint8_t s, m;
    psi_kquant_scale_min(j, scales, &s, &m);
    p->scale[j][r] = s;
    p->min[j][r] = m | (m << 16);
  }
  p->d[r] = half_to_float(d);
  p->dmin[r] = half_to_float(dmin);
}

static void unpack_panel(int32_t type, const uint8_t *w, int64_t row_bytes, int64_t block_bytes, int64_t nb,
                         int64_t r0, int n, kquant_panel *panels) {
  const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(QK_K / 4));
  for (int64_t b = 0; b < nb; b++) {
    kquant_panel *p = &panels[b];
    uint32_t rows[PANEL_ROWS][QK_K / 4];
    for (int r = 0; r < PANEL_ROWS; r++) {
      if (r < n) unpack_row(type, w + (r0 + r) * row_bytes + b * block_bytes, (uint8_t *)rows[r], p, r);
      else {
        memset(rows[r], 0, sizeof(rows[r]));
        for (int i = 0; i < 16; i++) p->scale[i][r] = 0;
        for (int j = 0; j < 8; j++) p->min[j][r] = 0;
        p->d[r] = p->dmin[r] = 0;
      }
    }
    for (int j = 0; j < 8; j++)
      for (int g = 0; g < 8; g++)
        for (int half = 0; half < 2; half++)
          _mm512_storeu_si512(p->q[j][g][16 * half], _mm512_i32gather_epi32(index, &rows[16 * half][8 * j + g], 4));
  }
}

static inline int32_t load_i32(const void *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* per16: a scale per 16 values (Q2_K, Q6_K), else per 32 (Q4_K, Q5_K);
 * separate_min: the min pairs times bsums scaled by -dmin (Q2_K, Q4_K, Q5_K),
 * else they are the offset term of the main sum (Q6_K). */
PSI_ALWAYS_INLINE void kquant_kernel_n(const int per16, const int separate_min, const kquant_panel *panels, int64_t b0, int64_t b1, const block_q8_K *xs,
                                       const int nt, float *y, int64_t y_stride, __mmask16 m0, __mmask16 m1) {
  __m512 acc[KERNEL_TOKENS][2];
  for (int t = 0; t < nt; t++) {
    acc[t][0] = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m0, y + t * y_stride);
    acc[t][1] = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m1, y + t * y_stride + 16);
  }
  for (int64_t b = b0; b < b1; b++) {
    const kquant_panel *p = &panels[b];
    const block_q8_K *xb = xs + b * PSI_TILE_TOKENS;
    __m512i sum[KERNEL_TOKENS][2], mins[KERNEL_TOKENS][2];
    for (int t = 0; t < nt; t++) sum[t][0] = sum[t][1] = mins[t][0] = mins[t][1] = _mm512_setzero_si512();
    for (int j = 0; j < 8; j++) {
      /* halves: one scale per 32 values, or (per16) one per 16 (groups g 0-3 and 4-7) */
      for (int half = 0; half < (per16 ? 2 : 1); half++) {
        __m512i part[KERNEL_TOKENS][2];
        for (int t = 0; t < nt; t++) part[t][0] = part[t][1] = _mm512_setzero_si512();
        for (int g = per16 ? 4 * half : 0; g < (per16 ? 4 * half + 4 : 8); g++) {
          const __m512i w0 = _mm512_loadu_si512(p->q[j][g][0]), w1 = _mm512_loadu_si512(p->q[j][g][16]);
          for (int t = 0; t < nt; t++) {
            const __m512i xv = _mm512_set1_epi32(load_i32(xb[t].qs + 32 * j + 4 * g));
            part[t][0] = _mm512_dpbusd_epi32(part[t][0], w0, xv);
            part[t][1] = _mm512_dpbusd_epi32(part[t][1], w1, xv);
          }
        }
        const int32_t *scale = p->scale[per16 ? 2 * j + half : j];
        const __m512i s0 = _mm512_loadu_si512(scale), s1 = _mm512_loadu_si512(scale + 16);
        for (int t = 0; t < nt; t++) {
          sum[t][0] = _mm512_add_epi32(sum[t][0], _mm512_mullo_epi32(part[t][0], s0));
          sum[t][1] = _mm512_add_epi32(sum[t][1], _mm512_mullo_epi32(part[t][1], s1));
        }
      }
      const __m512i n0 = _mm512_loadu_si512(p->min[j]), n1 = _mm512_loadu_si512(p->min[j] + 16);
      for (int t = 0; t < nt; t++) {
        const __m512i bsums = _mm512_set1_epi32(load_i32(xb[t].bsums + 2 * j));
        if (!separate_min) {
          sum[t][0] = _mm512_dpwssd_epi32(sum[t][0], n0, bsums);
          sum[t][1] = _mm512_dpwssd_epi32(sum[t][1], n1, bsums);
        } else {
          mins[t][0] = _mm512_dpwssd_epi32(mins[t][0], n0, bsums);
          mins[t][1] = _mm512_dpwssd_epi32(mins[t][1], n1, bsums);
        }
      }
    }
    const __m512 d0 = _mm512_loadu_ps(p->d), d1 = _mm512_loadu_ps(p->d + 16);
    const __m512 dmin0 = _mm512_loadu_ps(p->dmin), dmin1 = _mm512_loadu_ps(p->dmin + 16);
    for (int t = 0; t < nt; t++) {
      const __m512 dx = _mm512_set1_ps(xb[t].d), minus_dx = _mm512_set1_ps(-xb[t].d);
      acc[t][0] = _mm512_fmadd_ps(_mm512_mul_ps(d0, dx), _mm512_cvtepi32_ps(sum[t][0]), acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(_mm512_mul_ps(d1, dx), _mm512_cvtepi32_ps(sum[t][1]), acc[t][1]);
      if (separate_min) {
        acc[t][0] = _mm512_fmadd_ps(_mm512_mul_ps(dmin0, minus_dx), _mm512_cvtepi32_ps(mins[t][0]), acc[t][0]);
        acc[t][1] = _mm512_fmadd_ps(_mm512_mul_ps(dmin1, minus_dx), _mm512_cvtepi32_ps(mins[t][1]), acc[t][1]);
      }
    }
  }
  for (int t = 0; t < nt; t++) {
    _mm512_mask_storeu_ps(y + t * y_stride, m0, acc[t][0]);
    _mm512_mask_storeu_ps(y + t * y_stride + 16, m1, acc[t][1]);
  }
}

#define KQUANT_KERNEL_TOKENS(per16, separate_min)                                                 \
  switch (nt) {                                                                                    \
    case 1: kquant_kernel_n(per16, separate_min, p, b0, b1, xs, 1, y, y_stride, m0, m1); break;    \
    case 2: kquant_kernel_n(per16, separate_min, p, b0, b1, xs, 2, y, y_stride, m0, m1); break;    \
    case 3: kquant_kernel_n(per16, separate_min, p, b0, b1, xs, 3, y, y_stride, m0, m1); break;    \
    default: kquant_kernel_n(per16, separate_min, p, b0, b1, xs, 4, y, y_stride, m0, m1); break;   \
  }

static void kquant_kernel(int32_t type, const kquant_panel *p, int64_t b0, int64_t b1, const block_q8_K *xs, int nt,
                          float *y, int64_t y_stride, __mmask16 m0, __mmask16 m1) {
  if (type == PSI_Q4_K || type == PSI_Q5_K) {
    KQUANT_KERNEL_TOKENS(0, 1)
  } else if (type == PSI_Q2_K) {
    KQUANT_KERNEL_TOKENS(1, 1)
  } else {
    KQUANT_KERNEL_TOKENS(1, 0)
  }
}

void PSI_IMPL(psi_panel_kquant_multiply)(const psi_panel_args *a, int64_t r_begin, int64_t r_end, void *scratch) {
  kquant_panel *panels = (kquant_panel *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
  for (int64_t r0 = r_begin; r0 < r_end; r0 += PANEL_ROWS) {
    const int n = r_end - r0 < PANEL_ROWS ? (int)(r_end - r0) : PANEL_ROWS;
    unpack_panel(a->type, a->w, a->row_bytes, a->block_bytes, a->nb, r0, n, panels);
    const __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
    const __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
    for (int64_t b0 = 0; b0 < a->nb; b0 += CHUNK_BLOCKS) {
      const int64_t b1 = b0 + CHUNK_BLOCKS < a->nb ? b0 + CHUNK_BLOCKS : a->nb;
      for (int64_t t = 0; t < a->n_tokens; t += KERNEL_TOKENS) {
        const int64_t tile = t / PSI_TILE_TOKENS, slot = t % PSI_TILE_TOKENS;
        const int nt = a->n_tokens - t < KERNEL_TOKENS ? (int)(a->n_tokens - t) : KERNEL_TOKENS;
        const block_q8_K *xs = (const block_q8_K *)(a->acts + tile * a->act_tile_bytes) + slot;
        kquant_kernel(a->type, panels, b0, b1, xs, nt, a->y + t * a->rows + r0, a->rows, m0, m1);
      }
    }
  }
}

#endif
