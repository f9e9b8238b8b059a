/* Softmax cross-entropy, forward and backward fused.
 *   logits, dlogits are (rows, vocab) F32 (dlogits may be logits itself, or NULL for
 *   the loss alone); targets is rows int32 in [0, vocab); losses is rows F32
 *   losses[r] = logsumexp(logits[r]) - logits[r][targets[r]]
 *   dlogits[r][i] = (softmax(logits[r])[i] - [i == targets[r]]) * grad_scale
 * The caller passes grad_scale = 1 / (rows in the mean) times its own scale and
 * sums the losses itself, in order. Exponentials are summed in double. */
#include "train.h"
#include "ops.h" /* psi_exp16 / psi_exp8: the vector exp the inference softmax uses */

static int32_t check(const int32_t *targets, int64_t rows, int64_t vocab) {
  if (rows < 0 || vocab <= 0) return PSI_TRAIN_BAD_SHAPE;
  for (int64_t r = 0; r < rows; r++) if (targets[r] < 0 || targets[r] >= vocab) return PSI_TRAIN_BAD_INDEX;
  return PSI_TRAIN_OK;
}

static inline float row_max(const float *x, int64_t n) {
  float max = x[0];
  for (int64_t i = 1; i < n; i++) max = x[i] > max ? x[i] : max;
  return max;
}

static void cross_entropy_row(const float *x, int32_t target, float *loss, float *dx, int64_t n, float grad_scale, int plain) {
  const float max = row_max(x, n);
  const float target_logit = x[target];
  double sum = 0.0;
  int64_t i = 0;
  if (!plain) {
    /* Exponentials in vector lanes, written into dx (when there is one) so the gradient pass only scales. */
#if defined(__AVX512F__)
    const __m512 m = _mm512_set1_ps(max);
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    for (; i + 16 <= n; i += 16) {
      const __m512 e = psi_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
      if (dx) _mm512_storeu_ps(dx + i, e);
      acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
      acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    sum = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
#elif defined(__AVX2__) && defined(__FMA__)
    const __m256 m = _mm256_set1_ps(max);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    for (; i + 8 <= n; i += 8) {
      const __m256 e = psi_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
      if (dx) _mm256_storeu_ps(dx + i, e);
      acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
      acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(acc0, acc1));
    sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  }
  for (; i < n; i++) {
    const float e = expf(x[i] - max);
    if (dx) dx[i] = e;
    sum += (double)e;
  }
  const float log_sum = (float)log(sum);
  *loss = (max + log_sum) - target_logit;
  if (!dx) return;
  const float scale = (float)((double)grad_scale / sum);
  for (int64_t j = 0; j < n; j++) dx[j] *= scale;
  dx[target] -= grad_scale;
}

typedef struct {
  const float *logits;
  const int32_t *targets;
  float *losses, *dlogits;
  int64_t rows, vocab;
  float grad_scale;
  int plain;
} cross_entropy_job;

static void share(void *context, int ith, int nth) {
  const cross_entropy_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->rows, 1, ith, nth, &begin, &end);
  for (int64_t r = begin; r < end; r++)
    cross_entropy_row(j->logits + r * j->vocab, j->targets[r], j->losses + r, j->dlogits ? j->dlogits + r * j->vocab : NULL, j->vocab, j->grad_scale, j->plain);
}

int32_t PSI_IMPL(psi_train_cross_entropy)(const float *logits, const int32_t *targets, float *losses, float *dlogits, int64_t rows, int64_t vocab, float grad_scale, int32_t threads) {
  const int32_t status = check(targets, rows, vocab);
  if (status != PSI_TRAIN_OK) return status;
  cross_entropy_job job = {logits, targets, losses, dlogits, rows, vocab, grad_scale, 0};
  psi_pool_run(psi_train_threads(threads, rows), share, &job);
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_cross_entropy_ref)(const float *logits, const int32_t *targets, float *losses, float *dlogits, int64_t rows, int64_t vocab, float grad_scale) {
  const int32_t status = check(targets, rows, vocab);
  if (status != PSI_TRAIN_OK) return status;
  cross_entropy_job job = {logits, targets, losses, dlogits, rows, vocab, grad_scale, 1};
  share(&job, 0, 1);
  return PSI_TRAIN_OK;
}
