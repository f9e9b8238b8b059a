/* SwiGLU, forward and backward.
 *   gu, dgu are (rows, 2 * ffn) F32: each row is [gate (ffn) | up (ffn)], the output
 *   of the fused gate+up projection; h, dh are (rows, ffn) F32
 *   forward:  h = silu(gate) * up,  silu(g) = g * sigmoid(g)
 *   backward: dgate = dh * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  dup = dh * silu(g)
 * (dgu is overwritten.) The fast path takes the sigmoid 16 (or 8) lanes at a
 * time with the vector exp of the inference kernels; the reference uses expf. */
#include "train.h"
#include "ops.h" /* psi_exp16 / psi_exp8 */

static inline float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

static inline void forward_row(const float *gu, float *h, int64_t ffn, int plain) {
  const float *gate = gu, *up = gu + ffn;
  int64_t i = 0;
  if (!plain) {
#if defined(__AVX512F__)
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= ffn; i += 16) {
      const __m512 g = _mm512_loadu_ps(gate + i);
      const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, psi_exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
      _mm512_storeu_ps(h + i, _mm512_mul_ps(_mm512_mul_ps(g, s), _mm512_loadu_ps(up + i)));
    }
#elif defined(__AVX2__) && defined(__FMA__)
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= ffn; i += 8) {
      const __m256 g = _mm256_loadu_ps(gate + i);
      const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, psi_exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
      _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_mul_ps(g, s), _mm256_loadu_ps(up + i)));
    }
#endif
  }
  for (; i < ffn; i++) h[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

static inline void backward_row(const float *gu, const float *dh, float *dgu, int64_t ffn, int plain) {
  const float *gate = gu, *up = gu + ffn;
  float *dgate = dgu, *dup = dgu + ffn;
  int64_t i = 0;
  if (!plain) {
#if defined(__AVX512F__)
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= ffn; i += 16) {
      const __m512 g = _mm512_loadu_ps(gate + i), d = _mm512_loadu_ps(dh + i);
      const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, psi_exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
      const __m512 slope = _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(g, _mm512_sub_ps(one, s))));
      _mm512_storeu_ps(dgate + i, _mm512_mul_ps(_mm512_mul_ps(d, _mm512_loadu_ps(up + i)), slope));
      _mm512_storeu_ps(dup + i, _mm512_mul_ps(d, _mm512_mul_ps(g, s)));
    }
#elif defined(__AVX2__) && defined(__FMA__)
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= ffn; i += 8) {
      const __m256 g = _mm256_loadu_ps(gate + i), d = _mm256_loadu_ps(dh + i);
      const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, psi_exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
      const __m256 slope = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, s))));
      _mm256_storeu_ps(dgate + i, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(up + i)), slope));
      _mm256_storeu_ps(dup + i, _mm256_mul_ps(d, _mm256_mul_ps(g, s)));
    }
#endif
  }
  for (; i < ffn; i++) {
    const float g = gate[i], s = sigmoid(g);
    dgate[i] = dh[i] * up[i] * s * (1.0f + g * (1.0f - s));
    dup[i] = dh[i] * g * s;
  }
}

int32_t PSI_IMPL(psi_train_swiglu_forward_ref)(const float *gu, float *h, int64_t rows, int64_t ffn) {
  if (rows < 0 || ffn <= 0) return PSI_TRAIN_BAD_SHAPE;
  for (int64_t r = 0; r < rows; r++) forward_row(gu + r * 2 * ffn, h + r * ffn, ffn, 1);
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_swiglu_backward_ref)(const float *gu, const float *dh, float *dgu, int64_t rows, int64_t ffn) {
  if (rows < 0 || ffn <= 0) return PSI_TRAIN_BAD_SHAPE;
  for (int64_t r = 0; r < rows; r++) backward_row(gu + r * 2 * ffn, dh + r * ffn, dgu + r * 2 * ffn, ffn, 1);
  return PSI_TRAIN_OK;
}

typedef struct {
  const float *gu, *dh;
  float *h, *dgu;
  int64_t rows, ffn;
} swiglu_job;

static void forward_share(void *context, int ith, int nth) {
  const swiglu_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->rows, 1, ith, nth, &begin, &end);
  for (int64_t r = begin; r < end; r++) forward_row(j->gu + r * 2 * j->ffn, j->h + r * j->ffn, j->ffn, 0);
}

static void backward_share(void *context, int ith, int nth) {
  const swiglu_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->rows, 1, ith, nth, &begin, &end);
  for (int64_t r = begin; r < end; r++) backward_row(j->gu + r * 2 * j->ffn, j->dh + r * j->ffn, j->dgu + r * 2 * j->ffn, j->ffn, 0);
}

int32_t PSI_IMPL(psi_train_swiglu_forward)(const float *gu, float *h, int64_t rows, int64_t ffn, int32_t threads) {
  if (rows < 0 || ffn <= 0) return PSI_TRAIN_BAD_SHAPE;
  swiglu_job job = {gu, NULL, h, NULL, rows, ffn};
  psi_pool_run(psi_train_threads(threads, rows), forward_share, &job);
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_swiglu_backward)(const float *gu, const float *dh, float *dgu, int64_t rows, int64_t ffn, int32_t threads) {
  if (rows < 0 || ffn <= 0) return PSI_TRAIN_BAD_SHAPE;
  swiglu_job job = {gu, dh, NULL, dgu, rows, ffn};
  psi_pool_run(psi_train_threads(threads, rows), backward_share, &job);
  return PSI_TRAIN_OK;
}
