/* Activation quantizers for the matrix products (see matmul.h).
 *   x is n floats (n a whole number of blocks); dst receives n/32 (Q8_0, Q8_1)
 *   or n/256 (Q8_K) blocks, or n halves (F16, BF16).
 * Written as scalar C, except the Q8_0/Q8_1 block in AVX-512 builds: once the
 * prefill product ran on panels (matmul_panel.c) the scalar block took a third
 * of a 512-token product. The vector block does the same float operations
 * (exact max, one multiply by 127/amax, round half to even, saturate), so it
 * gives the same bytes as the scalar one and as ggml. */
#include "matmul.h"
#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#endif

/* ggml's x86 Q8_0 path: amax over the block, d = amax/127 stored as fp16,
 * q = round-half-even(x * (127/amax)). */
static float quantize_block_q8(const float *x, int8_t *qs, int *sum) {
#if defined(__AVX512F__) && defined(__AVX512BW__)
  const __m512 lo = _mm512_loadu_ps(x), hi = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
  const float d = amax / 127.f;
  const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
  /* cvtps rounds half to even under the default MXCSR, as psi_nearest_int does. */
  const __m512i qlo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, id)), qhi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, id));
  _mm_storeu_si128((__m128i *)qs, _mm512_cvtsepi32_epi8(qlo));
  _mm_storeu_si128((__m128i *)(qs + 16), _mm512_cvtsepi32_epi8(qhi));
  *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_max_epi32(_mm512_min_epi32(qlo, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128)),
                                                  _mm512_max_epi32(_mm512_min_epi32(qhi, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128))));
  return d;
#else
  float amax = 0.0f;
  for (int j = 0; j < QK; j++) {
    float a = __builtin_fabsf(x[j]);
    amax = a > amax ? a : amax;
  }
  const float d = amax / 127.f;
  const float id = amax != 0.0f ? 127.f / amax : 0.0f;
  int total = 0;
  for (int j = 0; j < QK; j++) {
    int q = psi_nearest_int(x[j] * id);
    q = q > 127 ? 127 : q < -128 ? -128 : q; /* the SIMD pack saturates the same way */
    qs[j] = (int8_t)q;
    total += q;
  }
  *sum = total;
  return d;
#endif
}

int32_t PSI_IMPL(psi_act_q8_0_block)(const float *x, void *dst) {
  block_q8_0 *y = dst;
  int sum;
  y->d = psi_float_to_half(quantize_block_q8(x, y->qs, &sum));
  return sum;
}

void PSI_IMPL(psi_act_q8_0)(const float *x, void *dst, int64_t n) {
  block_q8_0 *y = dst;
  for (int64_t i = 0; i < n / QK; i++) {
    int sum;
    y[i].d = psi_float_to_half(quantize_block_q8(x + i * QK, y[i].qs, &sum));
  }
}

void PSI_IMPL(psi_act_q8_1)(const float *x, void *dst, int64_t n) {
  block_q8_1 *y = dst;
  for (int64_t i = 0; i < n / QK; i++) {
    int sum;
    const float d = quantize_block_q8(x + i * QK, y[i].qs, &sum);
    y[i].d = psi_float_to_half(d);
    y[i].s = psi_float_to_half(d * (float)sum);
  }
}

/* ggml's quantize_row_q8_K_ref (its x86 build uses the reference): the scale
 * comes from the value of largest magnitude (first one on ties), signed, so
 * that value maps to -127. */
void PSI_IMPL(psi_act_q8_K)(const float *x, void *dst, int64_t n) {
  block_q8_K *y = dst;
#if defined(__AVX512F__) && defined(__AVX512BW__)
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    __m512 amax16 = _mm512_setzero_ps();
    for (int j = 0; j < QK_K; j += 16) amax16 = _mm512_max_ps(amax16, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
    const float amax = _mm512_reduce_max_ps(amax16);
    if (amax == 0.0f) {
      memset(&y[i], 0, sizeof(y[i]));
      continue;
    }
    float max = 0;
    for (int j = 0; j < QK_K; j += 16) { /* the first value of largest magnitude, as the scalar loop finds it */
      const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (hit) { max = x[j + __builtin_ctz(hit)]; break; }
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; j += 16) {
      const __m512i v = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_set1_ps(iscale), _mm512_loadu_ps(x + j))), _mm512_set1_epi32(127));
      _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtsepi32_epi8(v));
      y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(v);
    }
    y[i].d = 1 / iscale;
  }
  return;
#endif
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    float max = 0, amax = 0;
    for (int j = 0; j < QK_K; j++) {
      float a = __builtin_fabsf(x[j]);
      if (a > amax) { amax = a; max = x[j]; }
    }
    if (amax == 0.0f) {
      memset(&y[i], 0, sizeof(y[i]));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; j++) {
      int v = psi_nearest_int(iscale * x[j]);
      y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int j = 0; j < QK_K / 16; j++) {
      int sum = 0;
      for (int k = 0; k < 16; k++) sum += y[i].qs[j * 16 + k];
      y[i].bsums[j] = (int16_t)sum;
    }
    y[i].d = 1 / iscale;
  }
}

void PSI_IMPL(psi_act_f16)(const float *x, void *dst, int64_t n) {
  uint16_t *y = dst;
  for (int64_t i = 0; i < n; i++) y[i] = psi_float_to_half(x[i]);
}

void PSI_IMPL(psi_act_bf16)(const float *x, void *dst, int64_t n) {
  uint16_t *y = dst;
  for (int64_t i = 0; i < n; i++) y[i] = psi_float_to_bf16(x[i]);
}
