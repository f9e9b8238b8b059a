/* AdamW update and the sum of squares behind global gradient-norm clipping.
 *   params, grads, m, v are n F32; m and v are the first and second moments
 *   g = grads[i] * grad_scale (the clipping factor)
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   params[i] -= lr * (weight_decay * params[i] + (m / correction1) / (sqrt(v / correction2) + eps))
 * with correctionN = 1 - betaN^step (bias correction), decay decoupled from
 * the gradient (Loshchilov & Hutter). Elementwise, so any split gives the same bits.
 *
 * psi_train_sum_squares sums x[i]^2 in double over fixed chunks of 65536 and
 * adds the chunk sums in order: the result depends on neither the threads nor
 * the vector width. */
#include "train.h"

#define SUM_CHUNK 65536

static inline void adamw_range(float *p, const float *g, float *m, float *v, int64_t begin, int64_t end, float lr, float beta1, float beta2,
                               float eps, float weight_decay, float correction1, float correction2, float grad_scale) {
  for (int64_t i = begin; i < end; i++) {
    const float grad = g[i] * grad_scale;
    m[i] = beta1 * m[i] + (1.0f - beta1) * grad;
    v[i] = beta2 * v[i] + (1.0f - beta2) * grad * grad;
    const float update = (m[i] / correction1) / (sqrtf(v[i] / correction2) + eps);
    p[i] -= lr * (weight_decay * p[i] + update);
  }
}

typedef struct {
  float *p, *m, *v;
  const float *g;
  int64_t n;
  float lr, beta1, beta2, eps, weight_decay, correction1, correction2, grad_scale;
} adamw_job;

static void adamw_share(void *context, int ith, int nth) {
  const adamw_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->n, 64, ith, nth, &begin, &end);
  adamw_range(j->p, j->g, j->m, j->v, begin, end, j->lr, j->beta1, j->beta2, j->eps, j->weight_decay, j->correction1, j->correction2, j->grad_scale);
}

static int32_t check(int64_t n, float correction1, float correction2) {
  return n < 0 || !(correction1 > 0.0f) || !(correction2 > 0.0f) ? PSI_TRAIN_BAD_SHAPE : PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_adamw_ref)(float *params, const float *grads, float *m, float *v, int64_t n, float lr, float beta1, float beta2,
                                      float eps, float weight_decay, float correction1, float correction2, float grad_scale) {
  if (check(n, correction1, correction2) != PSI_TRAIN_OK) return PSI_TRAIN_BAD_SHAPE;
  adamw_range(params, grads, m, v, 0, n, lr, beta1, beta2, eps, weight_decay, correction1, correction2, grad_scale);
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_adamw)(float *params, const float *grads, float *m, float *v, int64_t n, float lr, float beta1, float beta2,
                                  float eps, float weight_decay, float correction1, float correction2, float grad_scale, int32_t threads) {
  if (check(n, correction1, correction2) != PSI_TRAIN_OK) return PSI_TRAIN_BAD_SHAPE;
  adamw_job job = {params, m, v, grads, n, lr, beta1, beta2, eps, weight_decay, correction1, correction2, grad_scale};
  psi_pool_run(psi_train_threads(threads, (n + 65535) / 65536), adamw_share, &job);
  return PSI_TRAIN_OK;
}

static double chunk_sum(const float *x, int64_t n) {
  double lanes[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) lanes[l] += (double)x[i + l] * (double)x[i + l];
  for (; i < n; i++) lanes[0] += (double)x[i] * (double)x[i];
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

typedef struct {
  const float *x;
  int64_t n;
  double *chunks;
} sum_job;

static void sum_share(void *context, int ith, int nth) {
  const sum_job *j = context;
  const int64_t chunks = (j->n + SUM_CHUNK - 1) / SUM_CHUNK;
  int64_t begin, end;
  psi_pool_split(chunks, 1, ith, nth, &begin, &end);
  for (int64_t c = begin; c < end; c++) {
    const int64_t start = c * SUM_CHUNK, len = j->n - start < SUM_CHUNK ? j->n - start : SUM_CHUNK;
    j->chunks[c] = chunk_sum(j->x + start, len);
  }
}

/* scratch holds ceil(n / 65536) doubles. */
int32_t PSI_IMPL(psi_train_sum_squares)(const float *x, int64_t n, double *scratch, double *result, int32_t threads) {
  if (n < 0) return PSI_TRAIN_BAD_SHAPE;
  const int64_t chunks = (n + SUM_CHUNK - 1) / SUM_CHUNK;
  sum_job job = {x, n, scratch};
  psi_pool_run(psi_train_threads(threads, chunks), sum_share, &job);
  double total = 0.0;
  for (int64_t c = 0; c < chunks; c++) total += scratch[c];
  *result = total;
  return PSI_TRAIN_OK;
}
