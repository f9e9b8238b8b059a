/* Mixture-of-experts routing and the weighted sum of the chosen experts' outputs.
 *
 * Routing, per token: logits is (n_tokens, n_expert) F32 (router matmul output,
 * bias already added); ids is (n_tokens, k) int32 and weights (n_tokens, k) F32.
 * The k chosen experts are listed by descending score, ties to the lower id
 * (ggml's argsort does not define tie order). Modes, as llama.cpp's build_moe_ffn:
 *   PSI_MOE_TOPK_SOFTMAX (gpt-oss, SOFTMAX_WEIGHT gating): top-k over the raw
 *     logits, then softmax over the k chosen logits.
 *   PSI_MOE_SOFTMAX_TOPK (qwen2moe, mixtral): softmax over all experts, top-k
 *     over the probabilities, weights are those probabilities.
 *   PSI_MOE_SOFTMAX_TOPK_NORM: as above, then weights divided by their sum
 *     (summed in double, clamped below at 6.103515625e-5 as llama.cpp does).
 * Softmax is ggml's: expf(x - max), double sum, times (float)(1.0 / sum).
 *
 * Weighted sum: expert_out is (n_tokens, k, n_embd), weights (n_tokens, k),
 * out (n_tokens, n_embd). llama.cpp multiplies each expert's output by its
 * weight and adds the products in expert order, so
 *   out = ((o_0 * w_0) + (o_1 * w_1)) + ...   each product and sum rounded to float. */
#include "api.h"
#include "ops.h"

#define PSI_MOE_TOPK_SOFTMAX 0
#define PSI_MOE_SOFTMAX_TOPK 1
#define PSI_MOE_SOFTMAX_TOPK_NORM 2
#define MOE_MAX_EXPERTS 4096

static void softmax_in_place(float *x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - max); sum += (double)x[i]; }
  const float inverse = (float)(1.0 / sum);
  for (int64_t i = 0; i < n; i++) x[i] *= inverse;
}

static int32_t check_route(int64_t n_tokens, int64_t n_expert, int64_t k, int32_t mode) {
  if (n_tokens < 0 || n_expert <= 0 || n_expert > MOE_MAX_EXPERTS || k <= 0 || k > n_expert) return PSI_OPS_BAD_SHAPE;
  if (mode != PSI_MOE_TOPK_SOFTMAX && mode != PSI_MOE_SOFTMAX_TOPK && mode != PSI_MOE_SOFTMAX_TOPK_NORM) return PSI_OPS_UNSUPPORTED;
  return PSI_OPS_OK;
}

/* Turns the chosen experts' scores into weights; `chosen` holds their scores on entry. */
static void finish_weights(float *chosen, int64_t k, int32_t mode) {
  if (mode == PSI_MOE_TOPK_SOFTMAX) softmax_in_place(chosen, k);
  if (mode == PSI_MOE_SOFTMAX_TOPK_NORM) {
    double sum = 0.0;
    for (int64_t i = 0; i < k; i++) sum += (double)chosen[i];
    float total = (float)sum;
    if (!(total >= 6.103515625e-5f)) total = 6.103515625e-5f;
    for (int64_t i = 0; i < k; i++) chosen[i] /= total;
  }
}

/* "a ranks before b": higher score, or equal score and lower id. */
static inline int ranks_before(float score_a, int32_t id_a, float score_b, int32_t id_b) {
  return score_a > score_b || (score_a == score_b && id_a < id_b);
}

int32_t PSI_IMPL(psi_moe_route_ref)(const float *logits, int32_t *ids, float *weights, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t mode) {
  const int32_t status = check_route(n_tokens, n_expert, k, mode);
  if (status != PSI_OPS_OK) return status;
  float scores[MOE_MAX_EXPERTS];
  int32_t order[MOE_MAX_EXPERTS];
  for (int64_t t = 0; t < n_tokens; t++) {
    for (int64_t e = 0; e < n_expert; e++) { scores[e] = logits[t * n_expert + e]; order[e] = (int32_t)e; }
    if (mode != PSI_MOE_TOPK_SOFTMAX) softmax_in_place(scores, n_expert);
    /* Insertion sort of every expert by rank: plain and obviously right. */
    for (int64_t i = 1; i < n_expert; i++) {
      const int32_t id = order[i];
      int64_t j = i;
      while (j > 0 && ranks_before(scores[id], id, scores[order[j - 1]], order[j - 1])) { order[j] = order[j - 1]; j--; }
      order[j] = id;
    }
    for (int64_t i = 0; i < k; i++) { ids[t * k + i] = order[i]; weights[t * k + i] = scores[order[i]]; }
    finish_weights(weights + t * k, k, mode);
  }
  return PSI_OPS_OK;
}

/* One pass over the experts keeping the best k in a sorted list: O(n_expert * k) worst case. */
int32_t PSI_IMPL(psi_moe_route)(const float *logits, int32_t *ids, float *weights, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t mode) {
  const int32_t status = check_route(n_tokens, n_expert, k, mode);
  if (status != PSI_OPS_OK) return status;
  float scores[MOE_MAX_EXPERTS];
  for (int64_t t = 0; t < n_tokens; t++) {
    memcpy(scores, logits + t * n_expert, (size_t)n_expert * sizeof(float));
    if (mode != PSI_MOE_TOPK_SOFTMAX) softmax_in_place(scores, n_expert);
    int32_t *best = ids + t * k;
    int64_t kept = 0;
    for (int64_t e = 0; e < n_expert; e++) {
      if (kept == k && !ranks_before(scores[e], (int32_t)e, scores[best[k - 1]], best[k - 1])) continue;
      int64_t j = kept < k ? kept++ : k - 1;
      while (j > 0 && ranks_before(scores[e], (int32_t)e, scores[best[j - 1]], best[j - 1])) { best[j] = best[j - 1]; j--; }
      best[j] = (int32_t)e;
    }
    for (int64_t i = 0; i < k; i++) weights[t * k + i] = scores[best[i]];
    finish_weights(weights + t * k, k, mode);
  }
  return PSI_OPS_OK;
}

int32_t PSI_IMPL(psi_moe_weighted_sum_ref)(const float *expert_out, const float *weights, float *out, int64_t n_tokens, int64_t k, int64_t n_embd) {
  if (n_tokens < 0 || k <= 0 || n_embd < 0) return PSI_OPS_BAD_SHAPE;
  for (int64_t t = 0; t < n_tokens; t++) {
    const float *o = expert_out + t * k * n_embd;
    const float *w = weights + t * k;
    float *y = out + t * n_embd;
    for (int64_t d = 0; d < n_embd; d++) {
      float acc = o[d] * w[0];
      for (int64_t i = 1; i < k; i++) acc = acc + o[i * n_embd + d] * w[i];
      y[d] = acc;
    }
  }
  return PSI_OPS_OK;
}

/* Same roundings as the reference (separate multiply and add, never fused). */
int32_t PSI_IMPL(psi_moe_weighted_sum)(const float *expert_out, const float *weights, float *out, int64_t n_tokens, int64_t k, int64_t n_embd) {
  if (n_tokens < 0 || k <= 0 || n_embd < 0) return PSI_OPS_BAD_SHAPE;
  for (int64_t t = 0; t < n_tokens; t++) {
    const float *o = expert_out + t * k * n_embd;
    const float *w = weights + t * k;
    float *y = out + t * n_embd;
    int64_t d = 0;
#if defined(__AVX512F__)
    for (; d + 16 <= n_embd; d += 16) {
      __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(o + d), _mm512_set1_ps(w[0]));
      for (int64_t i = 1; i < k; i++) acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_loadu_ps(o + i * n_embd + d), _mm512_set1_ps(w[i])));
      _mm512_storeu_ps(y + d, acc);
    }
#elif defined(__AVX2__)
    for (; d + 8 <= n_embd; d += 8) {
      __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(o + d), _mm256_set1_ps(w[0]));
      for (int64_t i = 1; i < k; i++) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(o + i * n_embd + d), _mm256_set1_ps(w[i])));
      _mm256_storeu_ps(y + d, acc);
    }
#endif
    for (; d < n_embd; d++) {
      float acc = o[d] * w[0];
      for (int64_t i = 1; i < k; i++) acc = acc + o[i * n_embd + d] * w[i];
      y[d] = acc;
    }
  }
  return PSI_OPS_OK;
}
