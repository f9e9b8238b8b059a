/* Test-only: runs single ggml ops through node-llama-cpp's own ggml CPU library
 * (the build llama.cpp uses on this machine), so the psionic ops tests can hold
 * their kernels to ggml itself. Compiled by src/runtime/cpu/ggml-ops-oracle.ts
 * at test time, never part of libpsionic_cpu.so.
 *
 * Each function builds a one-op graph in a fresh context, computes it with
 * ggml_graph_compute_with_ctx and copies the result out. Layouts are psionic's
 * (row-major, tokens outermost); the functions rearrange to ggml's where needed.
 * The few ggml declarations below are written from ggml.h / ggml-cpu.h of the
 * matching llama.cpp release (the headers are not shipped in node_modules). */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct ggml_context;
struct ggml_tensor;
struct ggml_cgraph;
struct ggml_init_params { size_t mem_size; void *mem_buffer; bool no_alloc; };
enum { GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_I32 = 26 };
enum { GGML_PREC_F32 = 10 };

struct ggml_context *ggml_init(struct ggml_init_params params);
void ggml_free(struct ggml_context *ctx);
struct ggml_tensor *ggml_new_tensor_4d(struct ggml_context *ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3);
void *ggml_get_data(const struct ggml_tensor *tensor);
struct ggml_tensor *ggml_rms_norm(struct ggml_context *ctx, struct ggml_tensor *a, float eps);
struct ggml_tensor *ggml_mul(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b);
struct ggml_tensor *ggml_rope_ext(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b, struct ggml_tensor *c, int n_dims, int mode,
                                  int n_ctx_orig, float freq_base, float freq_scale, float ext_factor, float attn_factor, float beta_fast, float beta_slow);
struct ggml_tensor *ggml_flash_attn_ext(struct ggml_context *ctx, struct ggml_tensor *q, struct ggml_tensor *k, struct ggml_tensor *v, struct ggml_tensor *mask,
                                        float scale, float max_bias, float logit_softcap);
void ggml_flash_attn_ext_set_prec(struct ggml_tensor *a, int prec);
void ggml_flash_attn_ext_add_sinks(struct ggml_tensor *a, struct ggml_tensor *sinks);
struct ggml_tensor *ggml_soft_max_ext(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *mask, float scale, float max_bias);
struct ggml_tensor *ggml_swiglu_split(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b);
struct ggml_tensor *ggml_swiglu_oai(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b, float alpha, float limit);
struct ggml_cgraph *ggml_new_graph(struct ggml_context *ctx);
void ggml_build_forward_expand(struct ggml_cgraph *graph, struct ggml_tensor *tensor);
int ggml_graph_compute_with_ctx(struct ggml_context *ctx, struct ggml_cgraph *graph, int n_threads);
void ggml_cpu_init(void);

#define EXPORT __attribute__((visibility("default")))

static struct ggml_context *begin(size_t data_bytes) {
  ggml_cpu_init();
  struct ggml_init_params params = {data_bytes + (64u << 20), NULL, false};
  return ggml_init(params);
}

/* Computes `out` and copies n floats of it to dst; returns the ggml status (0 = success). */
static int finish(struct ggml_context *ctx, struct ggml_tensor *out, float *dst, size_t n, int n_threads) {
  struct ggml_cgraph *graph = ggml_new_graph(ctx);
  ggml_build_forward_expand(graph, out);
  const int status = ggml_graph_compute_with_ctx(ctx, graph, n_threads);
  if (status == 0) memcpy(dst, ggml_get_data(out), n * sizeof(float));
  ggml_free(ctx);
  return status;
}

static struct ggml_tensor *f32_tensor(struct ggml_context *ctx, const float *src, int64_t ne0, int64_t ne1, int64_t ne2) {
  struct ggml_tensor *t = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, ne0, ne1, ne2, 1);
  memcpy(ggml_get_data(t), src, (size_t)(ne0 * ne1 * ne2) * sizeof(float));
  return t;
}

/* x, y: (rows, n); weight: n or NULL (then no multiply). llama.cpp: rms_norm then mul. */
EXPORT int oracle_rms_norm(const float *x, const float *weight, float *y, int64_t rows, int64_t n, float eps) {
  struct ggml_context *ctx = begin((size_t)(rows * n * 3 + n) * 4);
  struct ggml_tensor *out = ggml_rms_norm(ctx, f32_tensor(ctx, x, n, rows, 1), eps);
  if (weight) out = ggml_mul(ctx, out, f32_tensor(ctx, weight, n, 1, 1));
  return finish(ctx, out, y, (size_t)(rows * n), 1);
}

/* x, y: (n_tokens, n_head, head_dim); pos: n_tokens; freq_factors: n_dims/2 or NULL. */
EXPORT int oracle_rope(const float *x, float *y, const int32_t *pos, int64_t n_tokens, int64_t n_head, int64_t head_dim, int32_t n_dims, int32_t mode,
                       int32_t n_ctx_orig, float freq_base, float freq_scale, float ext_factor, float attn_factor, float beta_fast, float beta_slow,
                       const float *freq_factors) {
  struct ggml_context *ctx = begin((size_t)(n_tokens * n_head * head_dim * 3 + n_tokens + n_dims) * 4);
  struct ggml_tensor *a = f32_tensor(ctx, x, head_dim, n_head, n_tokens);
  struct ggml_tensor *p = ggml_new_tensor_4d(ctx, GGML_TYPE_I32, n_tokens, 1, 1, 1);
  memcpy(ggml_get_data(p), pos, (size_t)n_tokens * 4);
  struct ggml_tensor *factors = freq_factors ? f32_tensor(ctx, freq_factors, n_dims / 2, 1, 1) : NULL;
  struct ggml_tensor *out = ggml_rope_ext(ctx, a, p, factors, n_dims, mode, n_ctx_orig, freq_base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow);
  return finish(ctx, out, y, (size_t)(n_tokens * n_head * head_dim), 1);
}

/* q: (n_tokens, n_head, d) F32; k, v: (n_kv, n_head_kv, d) F16 bits; out: (n_tokens, n_head, d).
 * The mask is built as llama.cpp does: 0 where cell j (position j) is visible to the
 * token at q_pos[t] (causal, standard window), -inf elsewhere, in F16. */
EXPORT int oracle_attention(const float *q, const uint16_t *k, const uint16_t *v, float *out, const int32_t *q_pos, int64_t n_tokens, int64_t n_head,
                            int64_t n_head_kv, int64_t d, int64_t n_kv, int32_t window, const float *sinks, float scale, int32_t n_threads) {
  struct ggml_context *ctx = begin((size_t)(n_tokens * n_head * d * 3 + n_kv * n_head_kv * d * 2 + n_kv * n_tokens + n_head) * 4);
  struct ggml_tensor *qt = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, d, n_tokens, n_head, 1);
  float *qd = ggml_get_data(qt);
  for (int64_t t = 0; t < n_tokens; t++)
    for (int64_t h = 0; h < n_head; h++) memcpy(qd + (h * n_tokens + t) * d, q + (t * n_head + h) * d, (size_t)d * 4);
  struct ggml_tensor *kt = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, d, n_kv, n_head_kv, 1);
  struct ggml_tensor *vt = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, d, n_kv, n_head_kv, 1);
  uint16_t *kd = ggml_get_data(kt), *vd = ggml_get_data(vt);
  for (int64_t j = 0; j < n_kv; j++)
    for (int64_t h = 0; h < n_head_kv; h++) {
      memcpy(kd + (h * n_kv + j) * d, k + (j * n_head_kv + h) * d, (size_t)d * 2);
      memcpy(vd + (h * n_kv + j) * d, v + (j * n_head_kv + h) * d, (size_t)d * 2);
    }
  struct ggml_tensor *mask = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, n_kv, n_tokens, 1, 1);
  uint16_t *md = ggml_get_data(mask);
  for (int64_t t = 0; t < n_tokens; t++)
    for (int64_t j = 0; j < n_kv; j++) {
      const int visible = j <= q_pos[t] && (window == 0 || q_pos[t] - j < window);
      md[t * n_kv + j] = visible ? 0x0000 : 0xfc00; /* F16 0 and -inf */
    }
  struct ggml_tensor *fa = ggml_flash_attn_ext(ctx, qt, kt, vt, mask, scale, 0.0f, 0.0f);
  if (sinks) ggml_flash_attn_ext_add_sinks(fa, f32_tensor(ctx, sinks, n_head, 1, 1));
  ggml_flash_attn_ext_set_prec(fa, GGML_PREC_F32);
  return finish(ctx, fa, out, (size_t)(n_tokens * n_head * d), n_threads);
}

/* x, y: (rows, n). */
EXPORT int oracle_softmax(const float *x, float *y, int64_t rows, int64_t n) {
  struct ggml_context *ctx = begin((size_t)(rows * n * 3) * 4);
  return finish(ctx, ggml_soft_max_ext(ctx, f32_tensor(ctx, x, n, rows, 1), NULL, 1.0f, 0.0f), y, (size_t)(rows * n), 1);
}

/* gate, up, y: (rows, n); oai selects gpt-oss's clamped form. */
EXPORT int oracle_swiglu(const float *gate, const float *up, float *y, int64_t rows, int64_t n, int32_t oai, float alpha, float limit) {
  struct ggml_context *ctx = begin((size_t)(rows * n * 4) * 4);
  struct ggml_tensor *g = f32_tensor(ctx, gate, n, rows, 1), *u = f32_tensor(ctx, up, n, rows, 1);
  struct ggml_tensor *out = oai ? ggml_swiglu_oai(ctx, g, u, alpha, limit) : ggml_swiglu_split(ctx, g, u);
  return finish(ctx, out, y, (size_t)(rows * n), 1);
}
