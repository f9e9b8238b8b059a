/* Few-token products (decode) on AVX-512 VNNI for Q8_0, Q4_0, MXFP4 (Q8_0
 * activations) and Q4_1 (Q8_1), 16 weight rows at a time.
 *   w: rows of nb blocks (row-major, as in the file); acts: the tokens' blocks,
 *   scales (and VNNI corrections) in psi_matmul's interleaved layout, one
 *   tile of them (nt <= PSI_TILE_TOKENS; psi_matmul calls once per tile)
 *   y[t*y_stride + r] = dot(w row r, token t), for rows [r0, r1), tokens t < nt
 *
 * The order is llama.cpp's on AMX machines (matmul_reference.c): per output
 * one float accumulator, per block one fma of the exact integer block dot by
 * d_w*d_x (Q4_1: then one fma of m_w*s_x). To keep 16 rows' accumulators in
 * one zmm without a horizontal sum per row and block, each block goes:
 *   - rows R and R+4 (R in 0-3, 8-11) share a zmm: 32 unsigned weight bytes
 *     each (value + the type's offset), against the token's 32 activation
 *     bytes in both halves, by vpdpbusd: 8 zmm of int32 partial sums;
 *   - a transpose-and-add tree folds the 8 zmm into one, lane r = row r's
 *     exact block sum (started at the token's -offset*sum(x) correction);
 *   - one convert and one fma by (16 rows' d_w, gathered) * d_x.
 * A partial group (fewer than 16 rows) repeats its last row and stores only
 * the rows it has. */
#include "matmul.h"
#include "matmul_panel.h"

#if PSI_MATMUL_PANELS
#include "matmul_simd.h"

static const uint8_t mxfp4_unsigned[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};
_Static_assert(PSI_MXFP4_OFFSET == 12, "mxfp4_unsigned holds the values + 12");

/* The row in the low half of zmm i; the high half holds row + 4. */
static const int pair_row[8] = {0, 1, 2, 3, 8, 9, 10, 11};

PSI_ALWAYS_INLINE int block_bytes(const int32_t type) {
  return type == PSI_Q8_0 ? (int)sizeof(block_q8_0) : type == PSI_Q4_0 ? (int)sizeof(block_q4_0)
       : type == PSI_Q4_1 ? (int)sizeof(block_q4_1) : (int)sizeof(block_mxfp4);
}

/* Block b of rows lo and hi as 64 unsigned bytes: lo's 32 values, then hi's. */
PSI_ALWAYS_INLINE __m512i unpack_rows(const int32_t type, const uint8_t *lo, const uint8_t *hi) {
  if (type == PSI_Q8_0) {
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(lo + 2))),
                                            _mm256_loadu_si256((const __m256i *)(hi + 2)), 1);
    return _mm512_xor_si512(both, _mm512_set1_epi8((char)0x80));
  }
  /* nibble types: qs at byte 2 (Q4_0), 4 (Q4_1), 1 (MXFP4); low nibbles are values 0-15, high 16-31 */
  const int at = type == PSI_Q4_0 ? 2 : type == PSI_Q4_1 ? 4 : 1;
  const __m256i packed = _mm256_setr_m128i(_mm_loadu_si128((const __m128i *)(lo + at)), _mm_loadu_si128((const __m128i *)(hi + at)));
  const __m512i split = _mm512_inserti64x4(_mm512_castsi256_si512(packed), _mm256_srli_epi16(packed, 4), 1); /* lo, hi, lo>>4, hi>>4 */
  const __m512i nibbles = _mm512_and_si512(_mm512_shuffle_i64x2(split, split, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(0x0F));
  if (type != PSI_MXFP4) return nibbles;
  return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)mxfp4_unsigned)), nibbles);
}

/* Lane r = the sum of row r's eight int32 partials, from the 8 pair vectors. */
PSI_ALWAYS_INLINE __m512i row_sums(const __m512i p[8]) {
  __m512i u[4];
  for (int i = 0; i < 4; i++) u[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2 * i], p[2 * i + 1]), _mm512_unpackhi_epi32(p[2 * i], p[2 * i + 1]));
  /* per 128-bit lane: the lane's sums for 4 pair vectors */
  const __m512i v0 = _mm512_add_epi32(_mm512_unpacklo_epi64(u[0], u[1]), _mm512_unpackhi_epi64(u[0], u[1]));
  const __m512i v1 = _mm512_add_epi32(_mm512_unpacklo_epi64(u[2], u[3]), _mm512_unpackhi_epi64(u[2], u[3]));
  /* v0: rows 0-3 (lanes 0, 1), rows 4-7 (2, 3); v1: rows 8-11, 12-15 */
  return _mm512_add_epi32(_mm512_shuffle_i64x2(v0, v1, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_i64x2(v0, v1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* The 16 rows' block scales (and Q4_1 minimums) from the 4 bytes at each block's start. */
PSI_ALWAYS_INLINE __m512 weight_scales(const int32_t type, __m512i head) {
  if (type != PSI_MXFP4) return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(head));
  /* 2^(e-127)/2 from the e8m0 byte: (e-1) << 23, or a subnormal for e < 2 (psi_e8m0_half_to_float) */
  const __m512i e = _mm512_and_si512(head, _mm512_set1_epi32(0xFF));
  const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(1)), 23);
  const __m512i small = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), e);
  return _mm512_castsi512_ps(_mm512_mask_blend_epi32(_mm512_cmplt_epi32_mask(e, _mm512_set1_epi32(2)), normal, small));
}

PSI_ALWAYS_INLINE void rows16_n(const int32_t type, const uint8_t *w, int64_t row_bytes, const int n_rows, int64_t nb,
                                const psi_tile_activations *x, const int nt, float *y, int64_t y_stride) {
  const int bytes = block_bytes(type);
  const uint8_t *row[16];
  for (int r = 0; r < 16; r++) row[r] = w + (r < n_rows ? r : n_rows - 1) * row_bytes;
  const __m512i offsets = _mm512_setr_epi32((int)(row[0] - w), (int)(row[1] - w), (int)(row[2] - w), (int)(row[3] - w),
                                            (int)(row[4] - w), (int)(row[5] - w), (int)(row[6] - w), (int)(row[7] - w),
                                            (int)(row[8] - w), (int)(row[9] - w), (int)(row[10] - w), (int)(row[11] - w),
                                            (int)(row[12] - w), (int)(row[13] - w), (int)(row[14] - w), (int)(row[15] - w));
  const int act_bytes = type == PSI_Q4_1 ? (int)sizeof(block_q8_1) : (int)sizeof(block_q8_0);
  const int qs_at = type == PSI_Q4_1 ? 4 : 2;
  __m512 acc[PSI_TILE_TOKENS];
  for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const int64_t at = b * bytes;
    /* one prefetch per row per 64 bytes: the block that starts a new line of the row */
    if (at % 64 < bytes)
      for (int r = 0; r < 16; r++) _mm_prefetch((const char *)row[r] + at + PSI_PREFETCH_BYTES, _MM_HINT_T0);
    __m512i wv[8];
    for (int i = 0; i < 8; i++) wv[i] = unpack_rows(type, row[pair_row[i]] + at, row[pair_row[i] + 4] + at);
    const __m512i head = _mm512_i32gather_epi32(offsets, w + at, 1);
    const __m512 dw = weight_scales(type, head);
    const __m512 mw = type == PSI_Q4_1 ? _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(head, 16))) : _mm512_setzero_ps();
    const uint8_t *xb = x->blocks + b * PSI_TILE_TOKENS * act_bytes;
    for (int t = 0; t < nt; t++) {
      const __m512i xv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(xb + t * act_bytes + qs_at)));
      const __m512i start = type == PSI_Q4_1 ? _mm512_setzero_si512() : _mm512_maskz_set1_epi32(0x0101, x->corrections[b * PSI_TILE_TOKENS + t]);
      __m512i p[8];
      for (int i = 0; i < 8; i++) p[i] = _mm512_dpbusd_epi32(start, wv[i], xv);
      const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(x->scales[b * PSI_TILE_TOKENS + t]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(row_sums(p)), d, acc[t]);
      if (type == PSI_Q4_1) acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(half_to_float(((const block_q8_1 *)(xb + t * act_bytes))->s)), acc[t]);
    }
  }
  const __mmask16 live = n_rows >= 16 ? 0xFFFF : (__mmask16)((1u << n_rows) - 1);
  for (int t = 0; t < nt; t++) _mm512_mask_storeu_ps(y + t * y_stride, live, acc[t]);
}

#define ROWS16_TYPE(name, type)                                                                               \
  static void rows16_##name(const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,           \
                            const psi_tile_activations *x, int nt, float *y, int64_t y_stride) {              \
    for (int64_t r = r0; r < r1; r += 16) {                                                                   \
      const int n = r1 - r < 16 ? (int)(r1 - r) : 16;                                                         \
      const uint8_t *wr = w + r * row_bytes;                                                                  \
      switch (nt) {                                                                                           \
        case 1: rows16_n(type, wr, row_bytes, n, nb, x, 1, y + r, y_stride); break;                           \
        case 2: rows16_n(type, wr, row_bytes, n, nb, x, 2, y + r, y_stride); break;                           \
        case 3: rows16_n(type, wr, row_bytes, n, nb, x, 3, y + r, y_stride); break;                           \
        case 4: rows16_n(type, wr, row_bytes, n, nb, x, 4, y + r, y_stride); break;                           \
        case 5: rows16_n(type, wr, row_bytes, n, nb, x, 5, y + r, y_stride); break;                           \
        case 6: rows16_n(type, wr, row_bytes, n, nb, x, 6, y + r, y_stride); break;                           \
        case 7: rows16_n(type, wr, row_bytes, n, nb, x, 7, y + r, y_stride); break;                           \
        default: rows16_n(type, wr, row_bytes, n, nb, x, 8, y + r, y_stride); break;                          \
      }                                                                                                       \
    }                                                                                                         \
  }
ROWS16_TYPE(q8_0, PSI_Q8_0)
ROWS16_TYPE(q4_0, PSI_Q4_0)
ROWS16_TYPE(q4_1, PSI_Q4_1)
ROWS16_TYPE(mxfp4, PSI_MXFP4)

int PSI_IMPL(psi_rows16)(int32_t type, const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,
                         const psi_tile_activations *x, int nt, float *y, int64_t y_stride) {
  if (nt < 1 || nt > PSI_TILE_TOKENS || row_bytes * 16 > INT32_MAX) return 0;
  switch (type) {
    case PSI_Q8_0: rows16_q8_0(w, row_bytes, r0, r1, nb, x, nt, y, y_stride); return 1;
    case PSI_Q4_0: rows16_q4_0(w, row_bytes, r0, r1, nb, x, nt, y, y_stride); return 1;
    case PSI_Q4_1: rows16_q4_1(w, row_bytes, r0, r1, nb, x, nt, y, y_stride); return 1;
    case PSI_MXFP4: rows16_mxfp4(w, row_bytes, r0, r1, nb, x, nt, y, y_stride); return 1;
    default: return 0;
  }
}

#endif
