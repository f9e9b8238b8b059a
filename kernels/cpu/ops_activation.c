/* Row softmax, SiLU, SwiGLU, gpt-oss's clamped SwiGLU, and the residual add.
 *
 * The references follow ggml's scalar formulas (ggml-cpu vec.h/vec.cpp, ops.cpp):
 *   softmax  y = expf(x - max) / sum, the sum of the float exps taken in double,
 *            inverted in double and rounded to float before the multiply
 *   silu     x / (1 + expf(-x))
 *   swiglu   silu(gate) * up
 *   swiglu_oai (ggml_swiglu_oai, gpt-oss experts):
 *            g = min(gate, limit); u = clamp(up, -limit, limit)
 *            y = g / (1 + expf(-alpha * g)) * (u + 1)      (no lower clamp on gate)
 * The fast versions use psi_exp16/psi_exp8 (ops.h) for whole vectors; ggml's own
 * vector paths likewise use an exp approximation, so neither is bit-exact with
 * the other and tests state the tolerance. */
#include "api.h"
#include "ops.h"

/* ---- softmax over rows: x, y are (rows, n); y may alias x ---- */

static float row_max(const float *x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
  return max;
}

int32_t PSI_IMPL(psi_softmax_ref)(const float *x, float *y, int64_t rows, int64_t n) {
  if (rows < 0 || n <= 0) return PSI_OPS_BAD_SHAPE;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    const float max = row_max(xr, n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
      const float e = expf(xr[i] - max);
      sum += (double)e;
      yr[i] = e;
    }
    const float inverse = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) yr[i] *= inverse;
  }
  return PSI_OPS_OK;
}

int32_t PSI_IMPL(psi_softmax)(const float *x, float *y, int64_t rows, int64_t n) {
  if (rows < 0 || n <= 0) return PSI_OPS_BAD_SHAPE;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    const float max = row_max(xr, n);
    double sum = 0.0;
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512 m16 = _mm512_set1_ps(max);
    for (; i + 16 <= n; i += 16) {
      const __m512 e = psi_exp16(_mm512_sub_ps(_mm512_loadu_ps(xr + i), m16));
      _mm512_storeu_ps(yr + i, e);
      sum += (double)_mm512_reduce_add_ps(e);
    }
#elif defined(__AVX2__) && defined(__FMA__)
    const __m256 m8 = _mm256_set1_ps(max);
    for (; i + 8 <= n; i += 8) {
      const __m256 e = psi_exp8(_mm256_sub_ps(_mm256_loadu_ps(xr + i), m8));
      _mm256_storeu_ps(yr + i, e);
      float lanes[8];
      _mm256_storeu_ps(lanes, e);
      sum += (double)(((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])));
    }
#endif
    for (; i < n; i++) {
      const float e = expf(xr[i] - max);
      sum += (double)e;
      yr[i] = e;
    }
    const float inverse = (float)(1.0 / sum);
    for (int64_t j = 0; j < n; j++) yr[j] *= inverse;
  }
  return PSI_OPS_OK;
}

/* ---- SiLU: y = x * sigmoid(x), n values; y may alias x ---- */

int32_t PSI_IMPL(psi_silu_ref)(const float *x, float *y, int64_t n) {
  if (n < 0) return PSI_OPS_BAD_SHAPE;
  for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
  return PSI_OPS_OK;
}

int32_t PSI_IMPL(psi_silu)(const float *x, float *y, int64_t n) {
  if (n < 0) return PSI_OPS_BAD_SHAPE;
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 e = psi_exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
    _mm512_storeu_ps(y + i, _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e)));
  }
#elif defined(__AVX2__) && defined(__FMA__)
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 e = psi_exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
    _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e)));
  }
#endif
  for (; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
  return PSI_OPS_OK;
}

/* ---- SwiGLU and the clamped gpt-oss variant.
 *   gate is (rows, cols) with row stride gate_stride, up likewise with up_stride
 *   (so both halves of a merged gate_up matmul output can be passed in place);
 *   y is (rows, cols) contiguous. ---- */

static int32_t check_glu(int64_t rows, int64_t cols, int64_t gate_stride, int64_t up_stride) {
  if (rows < 0 || cols < 0 || gate_stride < cols || up_stride < cols) return PSI_OPS_BAD_SHAPE;
  return PSI_OPS_OK;
}

int32_t PSI_IMPL(psi_swiglu_ref)(const float *gate, const float *up, float *y, int64_t rows, int64_t cols, int64_t gate_stride, int64_t up_stride) {
  const int32_t status = check_glu(rows, cols, gate_stride, up_stride);
  if (status != PSI_OPS_OK) return status;
  for (int64_t r = 0; r < rows; r++) {
    const float *g = gate + r * gate_stride, *u = up + r * up_stride;
    float *yr = y + r * cols;
    for (int64_t i = 0; i < cols; i++) yr[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
  }
  return PSI_OPS_OK;
}

int32_t PSI_IMPL(psi_swiglu)(const float *gate, const float *up, float *y, int64_t rows, int64_t cols, int64_t gate_stride, int64_t up_stride) {
  const int32_t status = check_glu(rows, cols, gate_stride, up_stride);
  if (status != PSI_OPS_OK) return status;
  for (int64_t r = 0; r < rows; r++) {
    const float *g = gate + r * gate_stride, *u = up + r * up_stride;
    float *yr = y + r * cols;
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= cols; i += 16) {
      const __m512 v = _mm512_loadu_ps(g + i);
      const __m512 e = psi_exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
      const __m512 silu = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
      _mm512_storeu_ps(yr + i, _mm512_mul_ps(silu, _mm512_loadu_ps(u + i)));
    }
#elif defined(__AVX2__) && defined(__FMA__)
    for (; i + 8 <= cols; i += 8) {
      const __m256 v = _mm256_loadu_ps(g + i);
      const __m256 e = psi_exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
      const __m256 silu = _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
      _mm256_storeu_ps(yr + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
    }
#endif
    for (; i < cols; i++) yr[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
  }
  return PSI_OPS_OK;
}

static inline float swiglu_oai_one(float gate, float up, float alpha, float limit) {
  const float g = limit < gate ? limit : gate;                       /* std::min(gate, limit) */
  const float u = up < -limit ? -limit : (limit < up ? limit : up);  /* std::clamp(up, -limit, limit) */
  return (g / (1.f + expf(alpha * (-g)))) * (u + 1.f);
}

int32_t PSI_IMPL(psi_swiglu_oai_ref)(const float *gate, const float *up, float *y, int64_t rows, int64_t cols, int64_t gate_stride, int64_t up_stride, float alpha, float limit) {
  const int32_t status = check_glu(rows, cols, gate_stride, up_stride);
  if (status != PSI_OPS_OK) return status;
  for (int64_t r = 0; r < rows; r++) {
    const float *g = gate + r * gate_stride, *u = up + r * up_stride;
    float *yr = y + r * cols;
    for (int64_t i = 0; i < cols; i++) yr[i] = swiglu_oai_one(g[i], u[i], alpha, limit);
  }
  return PSI_OPS_OK;
}

int32_t PSI_IMPL(psi_swiglu_oai)(const float *gate, const float *up, float *y, int64_t rows, int64_t cols, int64_t gate_stride, int64_t up_stride, float alpha, float limit) {
  const int32_t status = check_glu(rows, cols, gate_stride, up_stride);
  if (status != PSI_OPS_OK) return status;
  for (int64_t r = 0; r < rows; r++) {
    const float *g = gate + r * gate_stride, *u = up + r * up_stride;
    float *yr = y + r * cols;
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512 lim = _mm512_set1_ps(limit), neg_lim = _mm512_set1_ps(-limit), neg_alpha = _mm512_set1_ps(-alpha), one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= cols; i += 16) {
      /* min/max return their second operand for NaN; gate and up are finite in practice. */
      const __m512 gv = _mm512_min_ps(_mm512_loadu_ps(g + i), lim);
      const __m512 uv = _mm512_min_ps(_mm512_max_ps(_mm512_loadu_ps(u + i), neg_lim), lim);
      const __m512 glu = _mm512_div_ps(gv, _mm512_add_ps(one, psi_exp16(_mm512_mul_ps(neg_alpha, gv))));
      _mm512_storeu_ps(yr + i, _mm512_mul_ps(glu, _mm512_add_ps(uv, one)));
    }
#elif defined(__AVX2__) && defined(__FMA__)
    const __m256 lim = _mm256_set1_ps(limit), neg_lim = _mm256_set1_ps(-limit), neg_alpha = _mm256_set1_ps(-alpha), one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= cols; i += 8) {
      const __m256 gv = _mm256_min_ps(_mm256_loadu_ps(g + i), lim);
      const __m256 uv = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(u + i), neg_lim), lim);
      const __m256 glu = _mm256_div_ps(gv, _mm256_add_ps(one, psi_exp8(_mm256_mul_ps(neg_alpha, gv))));
      _mm256_storeu_ps(yr + i, _mm256_mul_ps(glu, _mm256_add_ps(uv, one)));
    }
#endif
    for (; i < cols; i++) yr[i] = swiglu_oai_one(g[i], u[i], alpha, limit);
  }
  return PSI_OPS_OK;
}

/* ---- residual add: y = a + b, n values; y may alias a or b ---- */

int32_t PSI_IMPL(psi_add_ref)(const float *a, const float *b, float *y, int64_t n) {
  if (n < 0) return PSI_OPS_BAD_SHAPE;
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  return PSI_OPS_OK;
}

int32_t PSI_IMPL(psi_add)(const float *a, const float *b, float *y, int64_t n) {
  if (n < 0) return PSI_OPS_BAD_SHAPE;
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
#elif defined(__AVX2__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
#endif
  for (; i < n; i++) y[i] = a[i] + b[i];
  return PSI_OPS_OK;
}
