/* Decoding Q2_K..Q6_K rows: src is n/256 super-blocks, dst is n floats.
 * Each sub-block value is (d * scale) * q - (dmin * min), in that order, as in
 * ggml's dequantize_row_*; the AVX2/AVX-512 paths do the same per lane. */
#include "quant.h"
#if defined(__AVX2__)
#include <immintrin.h>
#endif

/* Q4_K/Q5_K: the 6-bit scale and min of sub-block j from the 12 packed bytes. */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *scale, uint8_t *min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

#if defined(__AVX2__)
/* y[0..7] = dl * q - ml for 8 byte codes. */
static inline void store_affine8(float *y, __m128i codes, __m256 dl, __m256 ml) {
  const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes));
  _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(dl, q), ml));
}
#endif

void PSI_IMPL(psi_decode_q2_K)(const void *src, float *y, int64_t n) {
  const block_q2_K *x = src;
  for (int64_t i = 0; i < n / QK_K; i++) {
    const float d = psi_half_to_float(x[i].d), min = psi_half_to_float(x[i].dmin);
    const uint8_t *q = x[i].qs;
    int is = 0;
    for (int half = 0; half < 2; half++, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; part++) {
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * (sc & 0xf), ml = min * (sc >> 4);
          for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * part] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void PSI_IMPL(psi_decode_q3_K)(const void *src, float *y, int64_t n) {
  const block_q3_K *x = src;
  for (int64_t i = 0; i < n / QK_K; i++) {
    const float d = psi_half_to_float(x[i].d);
    int8_t scales[16];
    for (int j = 0; j < 16; j++) {
      const int low = j < 8 ? x[i].scales[j] & 0xf : x[i].scales[j - 8] >> 4;
      scales[j] = (int8_t)((low | (((x[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
    }
    const uint8_t *q = x[i].qs;
    uint8_t bit = 1;
    int is = 0;
    for (int half = 0; half < 2; half++, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, bit <<= 1) {
        for (int part = 0; part < 2; part++) {
          const float dl = d * scales[is++];
          for (int l = 0; l < 16; l++) {
            const int k = l + 16 * part;
            *y++ = dl * (((q[k] >> shift) & 3) - ((x[i].hmask[k] & bit) ? 0 : 4));
          }
        }
      }
    }
  }
}

void PSI_IMPL(psi_decode_q4_K)(const void *src, float *y, int64_t n) {
  const block_q4_K *x = src;
  for (int64_t i = 0; i < n / QK_K; i++) {
    const float d = psi_half_to_float(x[i].d), min = psi_half_to_float(x[i].dmin);
    const uint8_t *q = x[i].qs;
    for (int j = 0; j < 8; j += 2, q += 32) {
      uint8_t sc, m;
      scale_min_k4(j, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      scale_min_k4(j + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
#if defined(__AVX2__)
      const __m256 d1v = _mm256_set1_ps(d1), m1v = _mm256_set1_ps(m1), d2v = _mm256_set1_ps(d2), m2v = _mm256_set1_ps(m2);
      const __m128i low4 = _mm_set1_epi8(15);
      for (int l = 0; l < 32; l += 16) {
        const __m128i bytes = _mm_loadu_si128((const __m128i *)(q + l));
        const __m128i lo = _mm_and_si128(bytes, low4), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low4);
        store_affine8(y + l, lo, d1v, m1v);
        store_affine8(y + l + 8, _mm_srli_si128(lo, 8), d1v, m1v);
        store_affine8(y + 32 + l, hi, d2v, m2v);
        store_affine8(y + 32 + l + 8, _mm_srli_si128(hi, 8), d2v, m2v);
      }
      y += 64;
#else
      for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xf) - m1;
      for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
#endif
    }
  }
}

void PSI_IMPL(psi_decode_q5_K)(const void *src, float *y, int64_t n) {
  const block_q5_K *x = src;
  for (int64_t i = 0; i < n / QK_K; i++) {
    const float d = psi_half_to_float(x[i].d), min = psi_half_to_float(x[i].dmin);
    const uint8_t *ql = x[i].qs, *qh = x[i].qh;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 8; j += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      scale_min_k4(j, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      scale_min_k4(j + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xf) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

void PSI_IMPL(psi_decode_q6_K)(const void *src, float *y, int64_t n) {
  const block_q6_K *x = src;
  for (int64_t i = 0; i < n / QK_K; i++) {
    const float d = psi_half_to_float(x[i].d);
    const uint8_t *ql = x[i].ql, *qh = x[i].qh;
    const int8_t *sc = x[i].scales;
    for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
      /* Scales per 16 values, hoisted: (d * scale) is what ggml multiplies q by. */
      float ds[8];
      for (int s = 0; s < 8; s++) ds[s] = d * sc[s];
      for (int l = 0; l < 32; l++) {
        const int is = l / 16;
        const int q1 = (int8_t)((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = (int8_t)((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = ds[is] * q1;
        y[l + 32] = ds[is + 2] * q2;
        y[l + 64] = ds[is + 4] * q3;
        y[l + 96] = ds[is + 6] * q4;
      }
    }
  }
}
