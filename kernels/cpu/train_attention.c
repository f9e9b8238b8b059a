/* Causal grouped-query self-attention, forward and backward.
 *   qkv, dqkv are (batch * seq_len, qkv_width) F32, qkv_width = (heads + 2 kv_heads) * head_dim:
 *     each token's row is [q (heads x head_dim) | k (kv_heads x head_dim) | v (kv_heads x head_dim)],
 *     the output of the fused Q/K/V projection (Q and K already rotated).
 *   out, dout are (batch * seq_len, heads * head_dim) F32
 *   probs is (batch, heads, seq_len, seq_len) F32: softmax row t holds keys 0..t, zeros after
 *   Query head h reads kv head h / (heads / kv_heads), as llama.cpp broadcasts.
 *   forward:  p[t][s] = softmax_s(q_t . k_s / sqrt(head_dim)) over s <= t;  out_t = sum_s p[t][s] v_s
 *   backward: dp[s] = dout_t . v_s;  ds[s] = p[s] (dp[s] - sum_s' p[s'] dp[s']) / sqrt(head_dim)
 *             dq_t = sum_s ds[s] k_s;  dk_s += ds[s] q_t;  dv_s += p[s] dout_t
 * dqkv is overwritten. The forward keeps the probabilities (O(T^2) per head,
 * fine for the contexts trained here) so the backward does not recompute them.
 * The backward gives each thread whole (sequence, kv head) pairs: the K and V
 * gradients of a pair collect from every query head of its group, always in
 * head order, then token order. */
#include <stdlib.h>
#include <string.h>
#include "train.h"
#include "ops.h" /* psi_exp16 */

typedef struct {
  const float *qkv, *probs_in, *dout;
  float *out, *probs, *dqkv;
  int64_t batch, seq_len, heads, kv_heads, head_dim;
  float scale;
  int plain; /* 1: the reference's scalar loops */
  volatile int32_t failed; /* a thread could not get its scratch */
} attention_job;

/* The reference's dot product: plain, in index order. */
static inline float dot(const float *a, const float *b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
  return sum;
}

/* out[s] = scale * sum_i q[i] kt[i * ld + s] for s < count: one query against `count` keys
 * stored transposed (kt row i holds component i of every key), so the vector
 * lanes run over keys and no horizontal sums are needed. */
static inline void scores_row(const float *q, const float *kt, int64_t ld, int64_t count, int64_t hd, float scale, float *out) {
  int64_t s = 0;
#if defined(__AVX512F__)
  for (; s < count; s += 16) {
    const __mmask16 mask = count - s >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - s)) - 1);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= hd; i += 2) {
      acc0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i]), _mm512_maskz_loadu_ps(mask, kt + i * ld + s), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_set1_ps(q[i + 1]), _mm512_maskz_loadu_ps(mask, kt + (i + 1) * ld + s), acc1);
    }
    if (i < hd) acc0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i]), _mm512_maskz_loadu_ps(mask, kt + i * ld + s), acc0);
    _mm512_mask_storeu_ps(out + s, mask, _mm512_mul_ps(_mm512_add_ps(acc0, acc1), _mm512_set1_ps(scale)));
  }
#elif defined(__AVX2__) && defined(__FMA__)
  for (; s + 8 <= count; s += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < hd; i++) acc = _mm256_fmadd_ps(_mm256_set1_ps(q[i]), _mm256_loadu_ps(kt + i * ld + s), acc);
    _mm256_storeu_ps(out + s, _mm256_mul_ps(acc, _mm256_set1_ps(scale)));
  }
#endif
  for (; s < count; s++) {
    float sum = 0.0f;
    for (int64_t i = 0; i < hd; i++) sum += q[i] * kt[i * ld + s];
    out[s] = sum * scale;
  }
}

/* p[0..count) = softmax(p[0..count)). The fast path runs 16 lanes at a time with
 * the vector exp of the inference kernels; lanes past count are masked off. */
static inline void softmax_row(float *p, int64_t count, int plain) {
  int64_t s = 0;
  float max = -INFINITY, sum = 0.0f;
#if defined(__AVX512F__)
  if (!plain) {
    const __m512 lowest = _mm512_set1_ps(-INFINITY);
    __m512 vmax = lowest;
    for (s = 0; s < count; s += 16) {
      const __mmask16 mask = count - s >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - s)) - 1);
      vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(lowest, mask, p + s));
    }
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 vsum = _mm512_setzero_ps();
    for (s = 0; s < count; s += 16) {
      const __mmask16 mask = count - s >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - s)) - 1);
      const __m512 e = _mm512_maskz_mov_ps(mask, psi_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, p + s), m)));
      _mm512_mask_storeu_ps(p + s, mask, e);
      vsum = _mm512_add_ps(vsum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (s = 0; s < count; s += 16) {
      const __mmask16 mask = count - s >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - s)) - 1);
      _mm512_mask_storeu_ps(p + s, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, p + s), inv));
    }
    return;
  }
#endif
  for (s = 0; s < count; s++) max = p[s] > max ? p[s] : max;
  for (s = 0; s < count; s++) { p[s] = expf(p[s] - max); sum += p[s]; }
  const float inv = 1.0f / sum;
  for (s = 0; s < count; s++) p[s] *= inv;
}

/* One thread's scratch for a transposed K or V block (seq_len x head_dim), kept between calls. */
static _Thread_local float *transposed;
static _Thread_local int64_t transposed_size;

static float *transposed_scratch(int64_t n) {
  if (n > transposed_size) {
    free(transposed);
    transposed = malloc(sizeof(float) * (size_t)n);
    transposed_size = transposed ? n : 0;
  }
  return transposed;
}

/* kt[i * T + s] = rows[s * width + i] for the T rows of one head. */
static void transpose_head(const float *rows, int64_t width, int64_t T, int64_t hd, float *kt) {
  for (int64_t s = 0; s < T; s++)
    for (int64_t i = 0; i < hd; i++) kt[i * T + s] = rows[s * width + i];
}

/* y += alpha * x */
static inline void axpy(float alpha, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

static void forward_head(attention_job *j, int64_t b, int64_t h) {
  const int64_t T = j->seq_len, hd = j->head_dim, width = (j->heads + 2 * j->kv_heads) * hd, out_width = j->heads * hd;
  const int64_t kvh = h / (j->heads / j->kv_heads);
  const float *base = j->qkv + b * T * width;
  const int64_t k_col = j->heads * hd + kvh * hd, v_col = (j->heads + j->kv_heads) * hd + kvh * hd;
  float *kt = j->plain ? NULL : transposed_scratch(T * hd);
  if (!j->plain && !kt) { j->failed = 1; return; }
  if (kt) transpose_head(base + k_col, width, T, hd, kt);
  for (int64_t t = 0; t < T; t++) {
    const float *q = base + t * width + h * hd;
    float *p = j->probs + ((b * j->heads + h) * T + t) * T;
    if (kt) scores_row(q, kt, T, t + 1, hd, j->scale, p);
    else for (int64_t s = 0; s <= t; s++) p[s] = dot(q, base + s * width + k_col, hd) * j->scale;
    softmax_row(p, t + 1, j->plain);
    for (int64_t s = t + 1; s < T; s++) p[s] = 0.0f;
    float *o = j->out + (b * T + t) * out_width + h * hd;
    memset(o, 0, sizeof(float) * hd);
    for (int64_t s = 0; s <= t; s++) axpy(p[s], base + s * width + v_col, o, hd);
  }
}

static void backward_group(attention_job *j, int64_t b, int64_t kvh) {
  const int64_t T = j->seq_len, hd = j->head_dim, width = (j->heads + 2 * j->kv_heads) * hd, out_width = j->heads * hd;
  const int64_t group = j->heads / j->kv_heads;
  const float *base = j->qkv + b * T * width;
  float *dbase = j->dqkv + b * T * width;
  const int64_t k_col = j->heads * hd + kvh * hd, v_col = (j->heads + j->kv_heads) * hd + kvh * hd;
  for (int64_t t = 0; t < T; t++) {
    memset(dbase + t * width + k_col, 0, sizeof(float) * hd);
    memset(dbase + t * width + v_col, 0, sizeof(float) * hd);
  }
  float dp[PSI_TRAIN_MAX_SEQ];
  float *vt = j->plain ? NULL : transposed_scratch(T * hd);
  if (!j->plain && !vt) { j->failed = 1; return; }
  if (vt) transpose_head(base + v_col, width, T, hd, vt);
  for (int64_t h = kvh * group; h < (kvh + 1) * group; h++) {
    for (int64_t t = 0; t < T; t++) {
      const float *p = j->probs_in + ((b * j->heads + h) * T + t) * T;
      const float *dout = j->dout + (b * T + t) * out_width + h * hd;
      const float *q = base + t * width + h * hd;
      float *dq = dbase + t * width + h * hd;
      if (vt) scores_row(dout, vt, T, t + 1, hd, 1.0f, dp);
      else for (int64_t s = 0; s <= t; s++) dp[s] = dot(dout, base + s * width + v_col, hd);
      float weighted = 0.0f;
      for (int64_t s = 0; s <= t; s++) weighted += p[s] * dp[s];
      memset(dq, 0, sizeof(float) * hd);
      for (int64_t s = 0; s <= t; s++) {
        const float ds = p[s] * (dp[s] - weighted) * j->scale;
        axpy(ds, base + s * width + k_col, dq, hd);
        axpy(ds, q, dbase + s * width + k_col, hd);
        axpy(p[s], dout, dbase + s * width + v_col, hd);
      }
    }
  }
}

static void forward_share(void *context, int ith, int nth) {
  attention_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->batch * j->heads, 1, ith, nth, &begin, &end);
  for (int64_t item = begin; item < end; item++) forward_head(j, item / j->heads, item % j->heads);
}

static void backward_share(void *context, int ith, int nth) {
  attention_job *j = context;
  int64_t begin, end;
  psi_pool_split(j->batch * j->kv_heads, 1, ith, nth, &begin, &end);
  for (int64_t item = begin; item < end; item++) backward_group(j, item / j->kv_heads, item % j->kv_heads);
}

static int32_t check(int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim) {
  if (batch < 0 || seq_len <= 0 || seq_len > PSI_TRAIN_MAX_SEQ || heads <= 0 || kv_heads <= 0 || head_dim <= 0 || heads % kv_heads != 0)
    return PSI_TRAIN_BAD_SHAPE;
  return PSI_TRAIN_OK;
}

static int32_t run(attention_job *job, int backward, int32_t threads) {
  if (check(job->batch, job->seq_len, job->heads, job->kv_heads, job->head_dim) != PSI_TRAIN_OK) return PSI_TRAIN_BAD_SHAPE;
  job->scale = 1.0f / sqrtf((float)job->head_dim);
  const int64_t items = job->batch * (backward ? job->kv_heads : job->heads);
  if (job->plain) {
    if (backward) backward_share(job, 0, 1);
    else forward_share(job, 0, 1);
  } else {
    psi_pool_run(psi_train_threads(threads, items), backward ? backward_share : forward_share, job);
  }
  return job->failed ? PSI_TRAIN_NO_MEMORY : PSI_TRAIN_OK;
}

int32_t PSI_IMPL(psi_train_attention_forward)(const float *qkv, float *out, float *probs, int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim, int32_t threads) {
  attention_job job = {qkv, NULL, NULL, out, probs, NULL, batch, seq_len, heads, kv_heads, head_dim, 0.0f, 0, 0};
  return run(&job, 0, threads);
}

int32_t PSI_IMPL(psi_train_attention_forward_ref)(const float *qkv, float *out, float *probs, int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim) {
  attention_job job = {qkv, NULL, NULL, out, probs, NULL, batch, seq_len, heads, kv_heads, head_dim, 0.0f, 1, 0};
  return run(&job, 0, 1);
}

int32_t PSI_IMPL(psi_train_attention_backward)(const float *qkv, const float *probs, const float *dout, float *dqkv, int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim, int32_t threads) {
  attention_job job = {qkv, probs, dout, NULL, NULL, dqkv, batch, seq_len, heads, kv_heads, head_dim, 0.0f, 0, 0};
  return run(&job, 1, threads);
}

int32_t PSI_IMPL(psi_train_attention_backward_ref)(const float *qkv, const float *probs, const float *dout, float *dqkv, int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim) {
  attention_job job = {qkv, probs, dout, NULL, NULL, dqkv, batch, seq_len, heads, kv_heads, head_dim, 0.0f, 1, 0};
  return run(&job, 1, 1);
}
