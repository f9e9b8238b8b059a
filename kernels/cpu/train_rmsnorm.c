/* RMSNorm with a weight, forward and backward.
 *   x, y, dy, dx are (rows, n) F32; weight, dweight are n F32; rstd is rows F32
 *   forward:  rstd[r] = 1 / sqrt(mean(x[r]^2) + eps),  y[r][i] = (x[r][i] * rstd[r]) * weight[i]
 *   backward: with g = dy * weight and xhat = x * rstd,
 *             dx[r][i] += rstd[r] * (g[i] - xhat[i] * sum_j(g[j] xhat[j]) / n)
 *             dweight[i] += sum_r dy[r][i] * xhat[r][i]
 * The forward rounds like the inference kernel (kernels/cpu/ops_norm.c: squares
 * in float summed in double, the mean rounded to float), so a trained model
 * sees the same normalisation when served. The weight gradient sums over rows,
 * so its pass splits columns between threads and runs the rows in order. */
#include "train.h"

static inline float row_rstd(const float *x, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
  const float mean = (float)(sum / (double)n);
  return 1.0f / sqrtf(mean + eps);
}

static inline void forward_row(const float *x, const float *w, float *y, float *rstd, int64_t n, float eps) {
  const float s = row_rstd(x, n, eps);
  *rstd = s;
  for (int64_t i = 0; i < n; i++) y[i] = (x[i] * s) * w[i];
}

static inline void backward_row(const float *x, const float *w, float s, const float *dy, float *dx, int64_t n) {
  double dot = 0.0;
  for (int64_t i = 0; i < n; i++) dot += (double)(dy[i] * w[i]) * (double)(x[i] * s);
  const float mean_dot = (float)(dot / (double)n);
  for (int64_t i = 0; i < n; i++) dx[i] += s * (dy[i] * w[i] - (x[i] * s) * mean_dot);
}

int32_t PSI_IMPL(psi_train_rmsnorm_forward_ref)(const float *x, const float *weight, float *y, float *rstd, int64_t rows, int64_t n, float eps) {
  if (rows < 0 || n <= 0 || !(eps > 0.0f)) return PSI_TRAIN_BAD_SHAPE;
  for (int64_t r = 0; r < rows; r++) forward_row(x + r * n, weight, y + r * n, rstd + r, n, eps);
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_rmsnorm_backward_ref)(const float *x, const float *weight, const float *rstd, const float *dy, float *dx, float *dweight, int64_t rows, int64_t n) {
  if (rows < 0 || n <= 0) return PSI_TRAIN_BAD_SHAPE;
  for (int64_t r = 0; r < rows; r++) backward_row(x + r * n, weight, rstd[r], dy + r * n, dx + r * n, n);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < n; i++) dweight[i] += dy[r * n + i] * (x[r * n + i] * rstd[r]);
  return PSI_TRAIN_OK;
}

typedef struct {
  const float *x, *weight, *dy;
  float *y, *rstd, *dx, *dweight;
  int64_t rows, n;
  float eps;
} rmsnorm_job;

static void forward_share(void *context, int ith, int nth) {
  const rmsnorm_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->rows, 1, ith, nth, &begin, &end);
  for (int64_t r = begin; r < end; r++) forward_row(j->x + r * j->n, j->weight, j->y + r * j->n, j->rstd + r, j->n, j->eps);
}

static void backward_share(void *context, int ith, int nth) {
  const rmsnorm_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->rows, 1, ith, nth, &begin, &end);
  for (int64_t r = begin; r < end; r++) backward_row(j->x + r * j->n, j->weight, j->rstd[r], j->dy + r * j->n, j->dx + r * j->n, j->n);
}

static void weight_share(void *context, int ith, int nth) {
  const rmsnorm_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->n, 16, ith, nth, &begin, &end);
  for (int64_t r = 0; r < j->rows; r++) {
    const float *x = j->x + r * j->n, *dy = j->dy + r * j->n;
    const float s = j->rstd[r];
    for (int64_t i = begin; i < end; i++) j->dweight[i] += dy[i] * (x[i] * s);
  }
}

int32_t PSI_IMPL(psi_train_rmsnorm_forward)(const float *x, const float *weight, float *y, float *rstd, int64_t rows, int64_t n, float eps, int32_t threads) {
  if (rows < 0 || n <= 0 || !(eps > 0.0f)) return PSI_TRAIN_BAD_SHAPE;
  rmsnorm_job job = {x, weight, NULL, y, rstd, NULL, NULL, rows, n, eps};
  psi_pool_run(psi_train_threads(threads, rows), forward_share, &job);
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_rmsnorm_backward)(const float *x, const float *weight, const float *rstd, const float *dy, float *dx, float *dweight, int64_t rows, int64_t n, int32_t threads) {
  if (rows < 0 || n <= 0) return PSI_TRAIN_BAD_SHAPE;
  rmsnorm_job job = {x, weight, dy, NULL, (float *)rstd, dx, dweight, rows, n, 0.0f};
  psi_pool_run(psi_train_threads(threads, rows), backward_share, &job);
  psi_pool_run(psi_train_threads(threads, (n + 15) / 16), weight_share, &job);
  return PSI_TRAIN_OK;
}
