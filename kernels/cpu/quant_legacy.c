/* Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and MXFP4 rows: blocks of 32 values.
 * Decode: src is n/32 blocks, dst is n floats. Encode: the reverse.
 * The plain loops are the reference (they follow ggml's dequantize_row_* and
 * quantize_row_*_ref operation for operation); the AVX2/AVX-512 paths for the
 * hot types (Q8_0, Q4_0, MXFP4) perform the same float operations per lane,
 * so they give the same bits. */
#include <float.h>
#include <math.h>
#include "quant.h"
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- decode ---- */

#if defined(__AVX2__)
/* 8 int32 codes times the block scale; the scale is the second operand, as in ggml's `x * d`. */
static inline void store_scaled8(float *y, __m256i codes, __m256 d) {
  _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(codes), d));
}
#endif

void PSI_IMPL(psi_decode_q8_0)(const void *src, float *y, int64_t n) {
  const block_q8_0 *x = src;
  for (int64_t i = 0; i < n / QK; i++, y += QK) {
    const float d = psi_half_to_float(x[i].d);
#if defined(__AVX512F__)
    const __m512 d16 = _mm512_set1_ps(d);
    for (int j = 0; j < QK; j += 16) {
      __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(x[i].qs + j)));
      _mm512_storeu_ps(y + j, _mm512_mul_ps(_mm512_cvtepi32_ps(q), d16));
    }
#elif defined(__AVX2__)
    const __m256 d8 = _mm256_set1_ps(d);
    for (int j = 0; j < QK; j += 8) store_scaled8(y + j, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[i].qs + j))), d8);
#else
    for (int j = 0; j < QK; j++) y[j] = x[i].qs[j] * d;
#endif
  }
}

void PSI_IMPL(psi_decode_q4_0)(const void *src, float *y, int64_t n) {
  const block_q4_0 *x = src;
  for (int64_t i = 0; i < n / QK; i++, y += QK) {
    const float d = psi_half_to_float(x[i].d);
#if defined(__AVX2__)
    const __m256 d8 = _mm256_set1_ps(d);
    const __m128i bytes = _mm_loadu_si128((const __m128i *)x[i].qs), low4 = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(bytes, low4), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4), eight);
    store_scaled8(y + 0, _mm256_cvtepi8_epi32(lo), d8);
    store_scaled8(y + 8, _mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)), d8);
    store_scaled8(y + 16, _mm256_cvtepi8_epi32(hi), d8);
    store_scaled8(y + 24, _mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)), d8);
#else
    for (int j = 0; j < QK / 2; j++) {
      y[j] = ((x[i].qs[j] & 0x0f) - 8) * d;
      y[j + QK / 2] = ((x[i].qs[j] >> 4) - 8) * d;
    }
#endif
  }
}

void PSI_IMPL(psi_decode_q4_1)(const void *src, float *y, int64_t n) {
  const block_q4_1 *x = src;
  for (int64_t i = 0; i < n / QK; i++, y += QK) {
    const float d = psi_half_to_float(x[i].d), m = psi_half_to_float(x[i].m);
    for (int j = 0; j < QK / 2; j++) {
      y[j] = (x[i].qs[j] & 0x0f) * d + m;
      y[j + QK / 2] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

void PSI_IMPL(psi_decode_q5_0)(const void *src, float *y, int64_t n) {
  const block_q5_0 *x = src;
  for (int64_t i = 0; i < n / QK; i++, y += QK) {
    const float d = psi_half_to_float(x[i].d);
    uint32_t qh;
    memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < QK / 2; j++) {
      const int32_t x0 = ((x[i].qs[j] & 0x0f) | (((qh >> j) & 1) << 4)) - 16;
      const int32_t x1 = ((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      y[j] = x0 * d;
      y[j + QK / 2] = x1 * d;
    }
  }
}

void PSI_IMPL(psi_decode_q5_1)(const void *src, float *y, int64_t n) {
  const block_q5_1 *x = src;
  for (int64_t i = 0; i < n / QK; i++, y += QK) {
    const float d = psi_half_to_float(x[i].d), m = psi_half_to_float(x[i].m);
    uint32_t qh;
    memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < QK / 2; j++) {
      const int32_t x0 = (x[i].qs[j] & 0x0f) | (((qh >> j) & 1) << 4);
      const int32_t x1 = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      y[j] = x0 * d + m;
      y[j + QK / 2] = x1 * d + m;
    }
  }
}

void PSI_IMPL(psi_decode_mxfp4)(const void *src, float *y, int64_t n) {
  const block_mxfp4 *x = src;
#if defined(__AVX2__)
  const __m128i table = _mm_loadu_si128((const __m128i *)psi_mxfp4_values), low4 = _mm_set1_epi8(15);
#endif
  for (int64_t i = 0; i < n / QK; i++, y += QK) {
    const float d = psi_e8m0_half_to_float(x[i].e);
#if defined(__AVX2__)
    /* A byte shuffle looks up 16 codes at once. */
    const __m256 d8 = _mm256_set1_ps(d);
    const __m128i bytes = _mm_loadu_si128((const __m128i *)x[i].qs);
    const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(bytes, low4));
    const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(bytes, 4), low4));
    store_scaled8(y + 0, _mm256_cvtepi8_epi32(lo), d8);
    store_scaled8(y + 8, _mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)), d8);
    store_scaled8(y + 16, _mm256_cvtepi8_epi32(hi), d8);
    store_scaled8(y + 24, _mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)), d8);
#else
    for (int j = 0; j < QK / 2; j++) {
      y[j] = psi_mxfp4_values[x[i].qs[j] & 0x0f] * d;
      y[j + QK / 2] = psi_mxfp4_values[x[i].qs[j] >> 4] * d;
    }
#endif
  }
}

/* ---- encode ---- */

/* Signed value of largest magnitude (the first on ties). */
static inline float signed_abs_max(const float *x, int count) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < count; j++) {
    if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
  }
  return max;
}

/* x86 float -> int8 conversion as ggml's build does it: truncate to int32, keep the low byte. */
static inline int8_t to_int8(float v) { return (int8_t)(int32_t)v; }

void PSI_IMPL(psi_encode_q4_0)(const float *x, void *dst, int64_t n) {
  block_q4_0 *y = dst;
  for (int64_t i = 0; i < n / QK; i++, x += QK) {
    const float d = signed_abs_max(x, QK) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = psi_float_to_half(d);
    for (int j = 0; j < QK / 2; j++) {
      const uint8_t q0 = MIN(15, to_int8(x[j] * id + 8.5f));
      const uint8_t q1 = MIN(15, to_int8(x[j + QK / 2] * id + 8.5f));
      y[i].qs[j] = q0 | (uint8_t)(q1 << 4);
    }
  }
}

void PSI_IMPL(psi_encode_q4_1)(const float *x, void *dst, int64_t n) {
  block_q4_1 *y = dst;
  for (int64_t i = 0; i < n / QK; i++, x += QK) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK; j++) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = psi_float_to_half(d);
    y[i].m = psi_float_to_half(min);
    for (int j = 0; j < QK / 2; j++) {
      const uint8_t q0 = MIN(15, to_int8((x[j] - min) * id + 0.5f));
      const uint8_t q1 = MIN(15, to_int8((x[j + QK / 2] - min) * id + 0.5f));
      y[i].qs[j] = q0 | (uint8_t)(q1 << 4);
    }
  }
}

void PSI_IMPL(psi_encode_q5_0)(const float *x, void *dst, int64_t n) {
  block_q5_0 *y = dst;
  for (int64_t i = 0; i < n / QK; i++, x += QK) {
    const float d = signed_abs_max(x, QK) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = psi_float_to_half(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
      const uint8_t q0 = MIN(31, to_int8(x[j] * id + 16.5f));
      const uint8_t q1 = MIN(31, to_int8(x[j + QK / 2] * id + 16.5f));
      y[i].qs[j] = (q0 & 0x0f) | (uint8_t)((q1 & 0x0f) << 4);
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + QK / 2);
    }
    memcpy(y[i].qh, &qh, 4);
  }
}

void PSI_IMPL(psi_encode_q5_1)(const float *x, void *dst, int64_t n) {
  block_q5_1 *y = dst;
  for (int64_t i = 0; i < n / QK; i++, x += QK) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK; j++) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = psi_float_to_half(d);
    y[i].m = psi_float_to_half(min);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
      const uint8_t q0 = (uint8_t)to_int8((x[j] - min) * id + 0.5f);
      const uint8_t q1 = (uint8_t)to_int8((x[j + QK / 2] - min) * id + 0.5f);
      y[i].qs[j] = (q0 & 0x0f) | (uint8_t)((q1 & 0x0f) << 4);
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + QK / 2);
    }
    memcpy(y[i].qh, &qh, 4);
  }
}

#if defined(__AVX512F__)
/* Largest |x| of a 32-value block. max is exact, so the order does not matter (inputs are finite). */
static inline float abs_max32(const float *x) {
  const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x)), b = _mm512_abs_ps(_mm512_loadu_ps(x + 16));
  return _mm512_reduce_max_ps(_mm512_max_ps(a, b));
}

/* to_int8(roundf(v)) for 16 lanes: roundf is trunc plus one away from zero when the
 * (exact) remainder is at least a half; vpmovdb keeps the low byte as the scalar cast does. */
static inline __m128i round_away_to_int8_x16(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 remainder = _mm512_abs_ps(_mm512_sub_ps(v, t));
  const __mmask16 up = _mm512_cmp_ps_mask(remainder, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
  return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one)));
}
#elif defined(__AVX2__)
static inline float abs_max32(const float *x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
  for (int j = 8; j < QK; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}

/* The int32 of roundf(v) for 8 lanes, masked to its low byte (what the scalar int8 cast keeps). */
static inline __m256i round_away_low_byte_x8(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 remainder = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
  const __m256 up = _mm256_cmp_ps(remainder, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));
  const __m256i i = _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
  return _mm256_and_si256(i, _mm256_set1_epi32(0xff));
}

/* Packs four vectors of 8 byte-valued int32 into 32 bytes, in element order. */
static inline void store_bytes32(void *out, __m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i packed = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d));
  _mm256_storeu_si256(out, _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}
#endif

void PSI_IMPL(psi_encode_q8_0)(const float *x, void *dst, int64_t n) {
  block_q8_0 *y = dst;
  for (int64_t i = 0; i < n / QK; i++, x += QK) {
#if defined(__AVX2__)
    const float amax = abs_max32(x);
#else
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = MAX(amax, fabsf(x[j]));
#endif
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = psi_float_to_half(d);
#if defined(__AVX512F__)
    /* Only when x * id stays finite: an infinite id (tiny d) takes the scalar path and its x86 conversion rules. */
    if (id <= 3.0e38f) {
      const __m512 idv = _mm512_set1_ps(id);
      _mm_storeu_si128((__m128i *)y[i].qs, round_away_to_int8_x16(_mm512_mul_ps(_mm512_loadu_ps(x), idv)));
      _mm_storeu_si128((__m128i *)(y[i].qs + 16), round_away_to_int8_x16(_mm512_mul_ps(_mm512_loadu_ps(x + 16), idv)));
      continue;
    }
#elif defined(__AVX2__)
    if (id <= 3.0e38f) {
      const __m256 idv = _mm256_set1_ps(id);
      store_bytes32(y[i].qs, round_away_low_byte_x8(_mm256_mul_ps(_mm256_loadu_ps(x), idv)),
                    round_away_low_byte_x8(_mm256_mul_ps(_mm256_loadu_ps(x + 8), idv)),
                    round_away_low_byte_x8(_mm256_mul_ps(_mm256_loadu_ps(x + 16), idv)),
                    round_away_low_byte_x8(_mm256_mul_ps(_mm256_loadu_ps(x + 24), idv)));
      continue;
    }
#endif
    for (int j = 0; j < QK; j++) y[i].qs[j] = to_int8(roundf(x[j] * id));
  }
}

/* Index of the MXFP4 code nearest to x at scale e, the first on ties, measured as ggml does: |value * e - x|. */
static inline int nearest_mxfp4(float x, float e) {
  int best = 0;
  float best_error = fabsf(psi_mxfp4_values[0] * e - x);
  for (int i = 1; i < 16; i++) {
    const float error = fabsf(psi_mxfp4_values[i] * e - x);
    if (error < best_error) { best = i; best_error = error; }
  }
  return best;
}

#if defined(__AVX512F__)
/* nearest_mxfp4 for 16 lanes: the same float operations, the same strict-less tie rule. */
static inline __m512i nearest_mxfp4_x16(__m512 x, const float *scaled) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  __m512 best_error = _mm512_andnot_ps(sign, _mm512_sub_ps(_mm512_set1_ps(scaled[0]), x));
  __m512i best = _mm512_setzero_si512();
  for (int i = 1; i < 16; i++) {
    const __m512 error = _mm512_andnot_ps(sign, _mm512_sub_ps(_mm512_set1_ps(scaled[i]), x));
    const __mmask16 better = _mm512_cmp_ps_mask(error, best_error, _CMP_LT_OQ);
    best_error = _mm512_mask_blend_ps(better, best_error, error);
    best = _mm512_mask_blend_epi32(better, best, _mm512_set1_epi32(i));
  }
  return best;
}
#elif defined(__AVX2__)
static inline __m256i nearest_mxfp4_x8(__m256 x, const float *scaled) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 best_error = _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_set1_ps(scaled[0]), x));
  __m256i best = _mm256_setzero_si256();
  for (int i = 1; i < 16; i++) {
    const __m256 error = _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_set1_ps(scaled[i]), x));
    const __m256 better = _mm256_cmp_ps(error, best_error, _CMP_LT_OQ);
    best_error = _mm256_blendv_ps(best_error, error, better);
    best = _mm256_blendv_epi8(best, _mm256_set1_epi32(i), _mm256_castps_si256(better));
  }
  return best;
}
#endif

void PSI_IMPL(psi_encode_mxfp4)(const float *x, void *dst, int64_t n) {
  block_mxfp4 *y = dst;
  for (int64_t i = 0; i < n / QK; i++, x += QK) {
#if defined(__AVX2__)
    const float amax = abs_max32(x);
#else
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) {
      if (amax < fabsf(x[j])) amax = fabsf(x[j]);
    }
#endif
    /* floor(log2(amax)) - 2 + 127: the largest magnitude lands near the top code. */
    const uint8_t e = amax > 0.0f ? (uint8_t)(int32_t)(floorf(log2f(amax)) - 2 + 127) : 0;
    const float d = psi_e8m0_half_to_float(e);
    y[i].e = e;
#if defined(__AVX512F__)
    float scaled[16];
    for (int c = 0; c < 16; c++) scaled[c] = psi_mxfp4_values[c] * d;
    const __m512i lo = nearest_mxfp4_x16(_mm512_loadu_ps(x), scaled);
    const __m512i hi = nearest_mxfp4_x16(_mm512_loadu_ps(x + 16), scaled);
    _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtepi32_epi8(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4))));
#elif defined(__AVX2__)
    float scaled[16];
    for (int c = 0; c < 16; c++) scaled[c] = psi_mxfp4_values[c] * d;
    __m256i codes[2];
    for (int j = 0; j < 2; j++) {
      const __m256i lo = nearest_mxfp4_x8(_mm256_loadu_ps(x + 8 * j), scaled);
      const __m256i hi = nearest_mxfp4_x8(_mm256_loadu_ps(x + 16 + 8 * j), scaled);
      codes[j] = _mm256_or_si256(lo, _mm256_slli_epi32(hi, 4));
    }
    uint8_t packed[32];
    store_bytes32(packed, codes[0], codes[1], _mm256_setzero_si256(), _mm256_setzero_si256());
    memcpy(y[i].qs, packed, 16);
#else
    for (int j = 0; j < QK / 2; j++) {
      y[i].qs[j] = (uint8_t)(nearest_mxfp4(x[j], d) | (nearest_mxfp4(x[j + QK / 2], d) << 4));
    }
#endif
  }
}
