/* Shared definitions of the non-matmul inference ops (kernels/cpu/ops_*.c):
 * status codes, the argument structs TypeScript fills (src/runtime/cpu/ops.ts
 * writes the same layouts), and a vectorized exp for the fast paths.
 *
 * Every op has a plain reference `psi_<op>_ref` (simple loops, IEEE single
 * precision in source order: quant.h turns off FMA contraction, and fmaf is
 * written out where ggml's compiled code fuses) and a fast
 * `psi_<op>` that tests hold to it. Where ggml's exact rounding matters for
 * token parity with llama.cpp, the reference follows ggml's arithmetic and the
 * comment beside it says what ggml does. */
#ifndef PSI_OPS_H
#define PSI_OPS_H

#include <math.h>
#include "quant.h"
#include "api.h"
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Status codes returned to TypeScript (src/runtime/cpu/ops.ts names them). */
#define PSI_OPS_OK 0
#define PSI_OPS_BAD_SHAPE (-10)      /* a size is negative, zero where it must not be, or inconsistent */
#define PSI_OPS_BAD_INDEX (-11)      /* a row id or expert id is out of range */
#define PSI_OPS_UNSUPPORTED (-12)    /* a type or mode this op does not implement */

/* RoPE modes (ggml's GGML_ROPE_TYPE_*): NORMAL rotates adjacent pairs (x[2i], x[2i+1]);
 * NEOX rotates (x[i], x[i + n_dims/2]). */
#define PSI_ROPE_NORMAL 0
#define PSI_ROPE_NEOX 2

/* RoPE parameters, 48 bytes, as ggml_rope_ext takes them. */
typedef struct psi_rope_params {
  int32_t n_dims;      /* leading dims of each head that rotate (even, <= head_dim) */
  int32_t mode;        /* PSI_ROPE_NORMAL or PSI_ROPE_NEOX */
  int32_t n_ctx_orig;  /* training context (YaRN correction dims) */
  int32_t reserved;
  float freq_base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow;
  const float *freq_factors; /* n_dims/2 divisors of theta (llama3 rope_freqs), or NULL */
} psi_rope_params;
_Static_assert(sizeof(psi_rope_params) == 48, "psi_rope_params is 48 bytes");

/* Attention precision, mirroring ggml's CPU flash-attention paths:
 * GGML_VEC: Q is rounded to K's type (F16) before the dot product, and with an
 *   F16 V the running output is kept in F16 (ggml_vec_mad_f16); this is what
 *   llama.cpp runs for batches under 64 query tokens (decode, short prompts).
 * F32: Q stays F32, K and V are widened to F32, the accumulator is F32; this is
 *   ggml's tiled path, used for batches of 64 or more query tokens. */
#define PSI_ATTN_GGML_VEC 0
#define PSI_ATTN_F32 1

/* One attention call over a KV cache, 120 bytes.
 *   q      (n_tokens, n_head, head_dim) F32
 *   k      (n_kv, n_head_kv, head_dim) of kv_type (F16 or F32), row stride k_stride elements
 *   v      (n_kv, n_head_kv, head_dim_v) of kv_type, row stride v_stride elements
 *   out    (n_tokens, n_head, head_dim_v) F32
 *   q_pos  n_tokens positions; kv_pos n_kv positions (NULL: cell i holds position i;
 *          a negative position marks an empty cell)
 *   sinks  n_head logits added to each softmax denominator, or NULL
 * Key j is visible to a query at position p when kv_pos[j] <= p (causal) and, with a
 * window w > 0, p - kv_pos[j] < w (llama.cpp's is_masked_swa, standard type). */
typedef struct psi_attention_args {
  const float *q;
  const void *k;
  const void *v;
  float *out;
  const int32_t *q_pos;
  const int32_t *kv_pos;
  const float *sinks;
  int32_t n_tokens, n_head, n_head_kv, head_dim, head_dim_v, n_kv;
  int32_t kv_type;   /* PSI_F16 or PSI_F32 */
  int32_t window;    /* 0: no sliding window */
  int32_t precision; /* PSI_ATTN_GGML_VEC or PSI_ATTN_F32 */
  int32_t n_threads;
  float scale;
  int32_t kv_chunks; /* one query token, PSI_ATTN_GGML_VEC: split the cells into this many chunks as ggml's split-KV decode does (its thread count); 0 or 1: no split */
  int64_t k_stride, v_stride; /* elements between consecutive cache cells (>= n_head_kv * head_dim) */
} psi_attention_args;
_Static_assert(sizeof(psi_attention_args) == 120, "psi_attention_args is 120 bytes");

/* This variant's copy of every exported kernel (api.h), for ops that build on others. */
#define PSI_DECLARE_VARIANT(ret, name, params, args) ret PSI_IMPL(name) params;
PSI_KERNELS(PSI_DECLARE_VARIANT)
#undef PSI_DECLARE_VARIANT

/* Largest head the attention kernels accept: their per-thread scratch is on the stack. */
#define PSI_ATTN_MAX_HEAD_DIM 1024

static inline int32_t psi_key_position(const psi_attention_args *a, int64_t j) { return a->kv_pos ? a->kv_pos[j] : (int32_t)j; }

/* llama.cpp's mask: causal, plus is_masked_swa's standard window (p - p_key >= window is masked). */
static inline int psi_key_visible(int32_t key_pos, int32_t query_pos, int32_t window) {
  return key_pos >= 0 && key_pos <= query_pos && (window == 0 || query_pos - key_pos < window);
}

/* The cache cells a query at `query_pos` can see, as a range [first, last); with
 * explicit cell positions every cell is a candidate and the mask decides. */
static inline void psi_candidate_range(const psi_attention_args *a, int32_t query_pos, int64_t *first, int64_t *last) {
  *first = 0;
  *last = a->n_kv;
  if (a->kv_pos) return;
  if (a->window > 0 && (int64_t)query_pos - a->window + 1 > 0) *first = (int64_t)query_pos - a->window + 1;
  if ((int64_t)query_pos + 1 < *last) *last = query_pos < 0 ? 0 : (int64_t)query_pos + 1;
}

/* The F32-precision attention in tiles (ops_attention_tiled.c), called by psi_attention;
 * returns 0 when it cannot allocate its scratch, and the caller takes the per-key path. */
int32_t PSI_IMPL(psi_attention_tiled_f32)(const psi_attention_args *a);

/* The exp of a whole vector for the fast elementwise ops. Our own range reduction:
 * exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 (two-part ln 2), and
 * exp(r) by its Taylor series to degree 7 (|r| <= ln2/2: truncation < 6e-9 relative).
 * 2^n is applied as two factors 2^(n/2) * 2^(n - n/2) so results near overflow and in
 * the subnormal range come out right without special cases; x is clamped to
 * [-104, 89] first (exp is 0 below, +inf above, in float). NaN stays NaN. */
#if defined(__AVX512F__)
static inline __m512 psi_exp16(__m512 x) {
  const __m512 clamped = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(clamped, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), clamped);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i ni = _mm512_cvtps_epi32(n), half = _mm512_srai_epi32(ni, 1), rest = _mm512_sub_epi32(ni, half);
  const __m512i bias = _mm512_set1_epi32(127);
  __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(half, bias), 23)));
  y = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(rest, bias), 23)));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}
#endif
#if defined(__AVX2__) && defined(__FMA__)
static inline __m256 psi_exp8(__m256 x) {
  const __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), clamped);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n), half = _mm256_srai_epi32(ni, 1), rest = _mm256_sub_epi32(ni, half);
  const __m256i bias = _mm256_set1_epi32(127);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23)));
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, bias), 23)));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
#endif

#endif
