/* RMSNorm, optionally fused with the multiply by a weight vector.
 *   x is (rows, n) F32, weight is n F32 or NULL, y is (rows, n) F32; y may alias x.
 *   y[r][i] = x[r][i] * scale_r (* weight[i]),  scale_r = 1 / sqrt(mean(x[r]^2) + eps)
 *
 * ggml (ggml_compute_forward_rms_norm_f32) squares each value in float, sums
 * the squares in double, divides by n in double, rounds the mean to float, and
 * computes scale = 1.0f / sqrtf(mean + eps) in float. The output is
 * (x * scale) * weight in float, in that order: llama.cpp's graph multiplies the
 * normalized row by the weight, and the CPU backend's fused rms_norm+mul does
 * the same two roundings. Both versions here follow that exactly; the fast one
 * only reorders the double-precision sum, whose rounding error (~1e-16
 * relative) vanishes when the mean is rounded to float. */
#include "api.h"
#include "ops.h"

static float rms_scale(double sum_of_squares, int64_t n, float eps) {
  const float mean = (float)(sum_of_squares / (double)n);
  return 1.0f / sqrtf(mean + eps);
}

int32_t PSI_IMPL(psi_rms_norm_ref)(const float *x, const float *weight, float *y, int64_t rows, int64_t n, float eps) {
  if (rows < 0 || n <= 0 || !(eps >= 0.0f)) return PSI_OPS_BAD_SHAPE;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(xr[i] * xr[i]);
    const float scale = rms_scale(sum, n, eps);
    for (int64_t i = 0; i < n; i++) yr[i] = weight ? (xr[i] * scale) * weight[i] : xr[i] * scale;
  }
  return PSI_OPS_OK;
}

/* Sum of x[i]^2 with each square rounded to float, accumulated in double. */
static double sum_of_squares(const float *x, int64_t n) {
  int64_t i = 0;
  double sum = 0.0;
#if defined(__AVX512F__)
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 sq = _mm512_mul_ps(v, v);
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
    acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
  }
  sum = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
#elif defined(__AVX2__)
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 sq = _mm256_mul_ps(v, v);
    acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
    acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(acc0, acc1));
  sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  for (; i < n; i++) sum += (double)(x[i] * x[i]);
  return sum;
}

int32_t PSI_IMPL(psi_rms_norm)(const float *x, const float *weight, float *y, int64_t rows, int64_t n, float eps) {
  if (rows < 0 || n <= 0 || !(eps >= 0.0f)) return PSI_OPS_BAD_SHAPE;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    const float scale = rms_scale(sum_of_squares(xr, n), n, eps);
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512 s16 = _mm512_set1_ps(scale);
    for (; i + 16 <= n; i += 16) {
      __m512 v = _mm512_mul_ps(_mm512_loadu_ps(xr + i), s16);
      if (weight) v = _mm512_mul_ps(v, _mm512_loadu_ps(weight + i));
      _mm512_storeu_ps(yr + i, v);
    }
#elif defined(__AVX2__)
    const __m256 s8 = _mm256_set1_ps(scale);
    for (; i + 8 <= n; i += 8) {
      __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xr + i), s8);
      if (weight) v = _mm256_mul_ps(v, _mm256_loadu_ps(weight + i));
      _mm256_storeu_ps(yr + i, v);
    }
#endif
    for (; i < n; i++) yr[i] = weight ? (xr[i] * scale) * weight[i] : xr[i] * scale;
  }
  return PSI_OPS_OK;
}
