/* Token embedding, forward and backward.
 *   table is (vocab, d) F32, ids is n int32 in [0, vocab), out/dout are (n, d) F32
 *   forward:  out[i] = table[ids[i]]
 *   backward: dtable[ids[i]] += dout[i]  (a repeated id sums its rows in token order)
 * The backward splits the d columns between threads, never the tokens, so
 * rows that share an id are still summed in one fixed order. */
#include <string.h>
#include "train.h"

static int32_t check_ids(const int32_t *ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; i++) if (ids[i] < 0 || ids[i] >= vocab) return PSI_TRAIN_BAD_INDEX;
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_embedding_forward_ref)(const float *table, const int32_t *ids, float *out, int64_t n, int64_t d, int64_t vocab) {
  if (n < 0 || d <= 0 || vocab <= 0) return PSI_TRAIN_BAD_SHAPE;
  if (check_ids(ids, n, vocab) != PSI_TRAIN_OK) return PSI_TRAIN_BAD_INDEX;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) out[i * d + j] = table[(int64_t)ids[i] * d + j];
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_embedding_backward_ref)(float *dtable, const int32_t *ids, const float *dout, int64_t n, int64_t d, int64_t vocab) {
  if (n < 0 || d <= 0 || vocab <= 0) return PSI_TRAIN_BAD_SHAPE;
  if (check_ids(ids, n, vocab) != PSI_TRAIN_OK) return PSI_TRAIN_BAD_INDEX;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) dtable[(int64_t)ids[i] * d + j] += dout[i * d + j];
  return PSI_TRAIN_OK;
}

typedef struct {
  float *table_or_grad;
  const int32_t *ids;
  float *rows;
  int64_t n, d;
} embedding_job;

static void forward_share(void *context, int ith, int nth) {
  const embedding_job *job = context;
  int64_t begin, end;
  psi_pool_split(job->n, 1, ith, nth, &begin, &end);
  for (int64_t i = begin; i < end; i++)
    memcpy(job->rows + i * job->d, job->table_or_grad + (int64_t)job->ids[i] * job->d, sizeof(float) * job->d);
}

static void backward_share(void *context, int ith, int nth) {
  const embedding_job *job = context;
  int64_t begin, end;
  psi_pool_split(job->d, 16, ith, nth, &begin, &end);
  for (int64_t i = 0; i < job->n; i++) {
    float *dst = job->table_or_grad + (int64_t)job->ids[i] * job->d;
    const float *src = job->rows + i * job->d;
    for (int64_t j = begin; j < end; j++) dst[j] += src[j];
  }
}

int32_t PSI_IMPL(psi_train_embedding_forward)(const float *table, const int32_t *ids, float *out, int64_t n, int64_t d, int64_t vocab, int32_t threads) {
  if (n < 0 || d <= 0 || vocab <= 0) return PSI_TRAIN_BAD_SHAPE;
  if (check_ids(ids, n, vocab) != PSI_TRAIN_OK) return PSI_TRAIN_BAD_INDEX;
  embedding_job job = {(float *)table, ids, out, n, d};
  psi_pool_run(psi_train_threads(threads, n), forward_share, &job);
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_embedding_backward)(float *dtable, const int32_t *ids, const float *dout, int64_t n, int64_t d, int64_t vocab, int32_t threads) {
  if (n < 0 || d <= 0 || vocab <= 0) return PSI_TRAIN_BAD_SHAPE;
  if (check_ids(ids, n, vocab) != PSI_TRAIN_OK) return PSI_TRAIN_BAD_INDEX;
  embedding_job job = {dtable, ids, (float *)dout, n, d};
  psi_pool_run(psi_train_threads(threads, (d + 15) / 16), backward_share, &job);
  return PSI_TRAIN_OK;
}
