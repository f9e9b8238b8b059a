/* Rotary position embedding (llama's "normal" pairing), forward and backward, in place.
 *   x is (rows, heads, head_dim) F32 within rows of row_stride floats (so it can be
 *   the Q or K part of a packed QKV row); row r is at position r % seq_len.
 *   cos, sin are (seq_len, head_dim / 2): the rotation of pair i at position t.
 *   forward:  (x0, x1) -> (x0 c - x1 s, x0 s + x1 c)   on pairs (2i, 2i + 1)
 *   backward: (d0, d1) -> (d0 c + d1 s, -d0 s + d1 c)  (the transposed rotation)
 * The table is built as ggml builds it (kernels/cpu/ops_rope.c): theta starts
 * at the position and is multiplied by base^(-2/head_dim) once per pair, in
 * float, so training rotates exactly as the inference engine will. */
#include "train.h"

int32_t PSI_IMPL(psi_train_rope_table)(float *cos_table, float *sin_table, int64_t seq_len, int64_t head_dim, float base) {
  if (seq_len <= 0 || head_dim <= 0 || head_dim % 2 != 0 || !(base > 0.0f)) return PSI_TRAIN_BAD_SHAPE;
  const float theta_scale = powf(base, -2.0f / (float)head_dim);
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < seq_len; t++) {
    float theta = (float)t;
    for (int64_t i = 0; i < half; i++) {
      cos_table[t * half + i] = cosf(theta);
      sin_table[t * half + i] = sinf(theta);
      theta *= theta_scale;
    }
  }
  return PSI_TRAIN_OK;
}

static inline void rotate_row(float *x, const float *c, const float *s, int64_t heads, int64_t head_dim, int backward) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; h++) {
    float *v = x + h * head_dim;
    for (int64_t i = 0; i < half; i++) {
      const float x0 = v[2 * i], x1 = v[2 * i + 1];
      if (backward) { v[2 * i] = fmaf(x0, c[i], x1 * s[i]); v[2 * i + 1] = fmaf(x1, c[i], -(x0 * s[i])); }
      else { v[2 * i] = fmaf(x0, c[i], -(x1 * s[i])); v[2 * i + 1] = fmaf(x0, s[i], x1 * c[i]); }
    }
  }
}

static int32_t check(int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride) {
  if (rows < 0 || seq_len <= 0 || heads <= 0 || head_dim <= 0 || head_dim % 2 != 0 || row_stride < heads * head_dim) return PSI_TRAIN_BAD_SHAPE;
  return PSI_TRAIN_OK;
}

static int32_t rope_ref(float *x, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table, int backward) {
  if (check(rows, seq_len, heads, head_dim, row_stride) != PSI_TRAIN_OK) return PSI_TRAIN_BAD_SHAPE;
  const int64_t half = head_dim / 2;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t t = r % seq_len;
    rotate_row(x + r * row_stride, cos_table + t * half, sin_table + t * half, heads, head_dim, backward);
  }
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_rope_forward_ref)(float *x, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table) {
  return rope_ref(x, rows, seq_len, heads, head_dim, row_stride, cos_table, sin_table, 0);
}

int32_t PSI_IMPL(psi_train_rope_backward_ref)(float *dx, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table) {
  return rope_ref(dx, rows, seq_len, heads, head_dim, row_stride, cos_table, sin_table, 1);
}

typedef struct {
  float *x;
  const float *cos_table, *sin_table;
  int64_t rows, seq_len, heads, head_dim, row_stride;
  int backward;
} rope_job;

static void rope_share(void *context, int ith, int nth) {
  const rope_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->rows, 1, ith, nth, &begin, &end);
  const int64_t half = j->head_dim / 2;
  for (int64_t r = begin; r < end; r++) {
    const int64_t t = r % j->seq_len;
    rotate_row(j->x + r * j->row_stride, j->cos_table + t * half, j->sin_table + t * half, j->heads, j->head_dim, j->backward);
  }
}

static int32_t rope_threaded(float *x, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table, int backward, int32_t threads) {
  if (check(rows, seq_len, heads, head_dim, row_stride) != PSI_TRAIN_OK) return PSI_TRAIN_BAD_SHAPE;
  rope_job job = {x, cos_table, sin_table, rows, seq_len, heads, head_dim, row_stride, backward};
  psi_pool_run(psi_train_threads(threads, rows), rope_share, &job);
  return PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_rope_forward)(float *x, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table, int32_t threads) {
  return rope_threaded(x, rows, seq_len, heads, head_dim, row_stride, cos_table, sin_table, 0, threads);
}

int32_t PSI_IMPL(psi_train_rope_backward)(float *dx, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table, int32_t threads) {
  return rope_threaded(dx, rows, seq_len, heads, head_dim, row_stride, cos_table, sin_table, 1, threads);
}
