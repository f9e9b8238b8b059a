/* Attention of query tokens over a KV cache: grouped-query heads, causal mask,
 * sliding window, optional per-head sink logits. Shapes and the mask rule are in
 * ops.h (psi_attention_args).
 *
 * For each query row (token t, head h; kv head h / (n_head / n_head_kv)):
 *   s_j = scale * dot(q, k_j) for each visible key j
 *   out = sum_j exp(s_j - M) v_j / (sum_j exp(s_j - M) + exp(sink_h - M))
 * computed the way ggml's CPU flash attention does (llama.cpp enables flash
 * attention on the CPU by default, "auto"), as an online softmax over the keys
 * in cache order, in ggml_compute_forward_flash_attn_ext_f16_one_chunk's steps:
 *   - masked keys are skipped entirely;
 *   - on a new maximum the running output and sum are scaled by expf(M_old - M),
 *     otherwise the key's weight is expf(s - M), both with libm expf;
 *   - sum S = S * ms + vs; the sink joins last; out = acc * (1.0f / S), 0 if S == 0.
 * PSI_ATTN_GGML_VEC precision (ggml's path for batches under 64 tokens) with an
 * F16 cache rounds Q to F16 before the dot product and keeps the running output
 * in F16: acc = fp16(fma(v, w, acc)) per key and acc = fp16(acc * ms) on a new
 * maximum, as ggml_vec_mad_f16 / ggml_vec_scale_f16 do. PSI_ATTN_F32 keeps Q and
 * the output in F32, what ggml's tiled path for 64+ tokens computes: the
 * reference goes key by key, the fast version tile by tile as ggml does but with
 * its own vector exp (within 1e-6 of ggml, not bit-identical).
 * With kv_chunks (one query token) the cells are split into chunks that are
 * merged afterwards, as ggml's split-KV decode does across its threads.
 * The fast version of the GGML_VEC path adds the dot-product terms in ggml's
 * SIMD order (the reference adds them left to right), which makes the AVX-512
 * variant bit-identical to llama.cpp's zen4 build (ops-ggml-parity.test.ts);
 * everything after the dot product is the same in both. The F32 path runs in
 * tiles (ops_attention_tiled.c). */
#include "api.h"
#include "ops.h"
#include "threadpool.h"

/* Query heads processed together over one pass of a kv head's keys. */
#define HEAD_GROUP 8

/* a * sa + b * sb rounded as ggml's compiled merge of partial results does (the
 * AVX-512 build fuses the first product into the add): checked bit for bit
 * against ggml in ops-ggml-parity.test.ts. */
#define MERGE(a, sa, b, sb) fmaf((a), (sa), (b) * (sb))

static int32_t check_attention(const psi_attention_args *a) {
  if (a->n_tokens < 0 || a->n_head <= 0 || a->n_head_kv <= 0 || a->n_head % a->n_head_kv != 0) return PSI_OPS_BAD_SHAPE;
  if (a->head_dim <= 0 || a->head_dim > PSI_ATTN_MAX_HEAD_DIM || a->head_dim_v <= 0 || a->head_dim_v > PSI_ATTN_MAX_HEAD_DIM) return PSI_OPS_BAD_SHAPE;
  if (a->n_kv < 0 || a->window < 0) return PSI_OPS_BAD_SHAPE;
  if (a->k_stride < (int64_t)a->n_head_kv * a->head_dim || a->v_stride < (int64_t)a->n_head_kv * a->head_dim_v) return PSI_OPS_BAD_SHAPE;
  if (a->kv_type != PSI_F16 && a->kv_type != PSI_F32) return PSI_OPS_UNSUPPORTED;
  if (a->precision != PSI_ATTN_GGML_VEC && a->precision != PSI_ATTN_F32) return PSI_OPS_UNSUPPORTED;
  return PSI_OPS_OK;
}

/* Whether the output accumulates in F16 (ggml: VKQ16 when V is F16, vec path). */
static inline int f16_accumulator(const psi_attention_args *a) { return a->kv_type == PSI_F16 && a->precision == PSI_ATTN_GGML_VEC; }

/* The sink logit joins the softmax after the keys (ggml: once, in the chunk starting at cell 0). */
static void join_sink(float sink, float *M, float *S, float *acc, int64_t dv) {
  float ms = 1.0f, vs = 1.0f;
  if (sink > *M) {
    ms = expf(*M - sink);
    *M = sink; /* matters when the partial result is merged with other chunks */
    for (int64_t i = 0; i < dv; i++) acc[i] = acc[i] * ms;
  } else {
    vs = expf(sink - *M);
  }
  *S = *S * ms + vs;
}

/* ggml's split-KV decode (one query token over 512+ cells, several threads) runs
 * each thread's contiguous chunk of cells as its own online softmax and merges
 * the partial results in chunk order (ggml_flash_attn_ext_reduce_partials).
 * kv_chunks reproduces that split: chunk size ceil(n_kv / kv_chunks); 0 = no split. */
static int64_t split_chunk_size(const psi_attention_args *a) {
  if (a->kv_chunks <= 1 || a->n_tokens != 1 || a->precision != PSI_ATTN_GGML_VEC || a->n_kv == 0) return 0;
  return ((int64_t)a->n_kv + a->kv_chunks - 1) / a->kv_chunks;
}

/* Folds one chunk's (M, S, acc) into the running total; empty chunks (S == 0) are skipped. */
static void merge_partial(float *M, float *S, float *acc, float M_chunk, float S_chunk, const float *acc_chunk, int64_t dv) {
  if (S_chunk == 0.0f) return;
  const float M_new = fmaxf(*M, M_chunk);
  const float scale_old = expf(*M - M_new), scale_new = expf(M_chunk - M_new);
  for (int64_t i = 0; i < dv; i++) acc[i] = MERGE(acc[i], scale_old, acc_chunk[i], scale_new);
  *S = MERGE(*S, scale_old, S_chunk, scale_new);
  *M = M_new;
}

/* ---- reference: one query row at a time, every key checked against the mask ---- */

/* One query row over cells [j_begin, j_end): the unnormalized running output `acc`
 * (F32), its maximum M and sum S, the sink joined when `with_sink`. */
static void attend_row_ref_range(const psi_attention_args *a, int64_t t, int64_t h, int64_t j_begin, int64_t j_end, int with_sink,
                                 float *M_out, float *S_out, float *acc_out) {
  const int64_t kvh = h / (a->n_head / a->n_head_kv), dk = a->head_dim, dv = a->head_dim_v;
  const float *q = a->q + (t * a->n_head + h) * dk;
  float qr[PSI_ATTN_MAX_HEAD_DIM], vrow[PSI_ATTN_MAX_HEAD_DIM], *acc = acc_out;
  uint16_t acc16[PSI_ATTN_MAX_HEAD_DIM];
  const int half_q = a->kv_type == PSI_F16 && a->precision == PSI_ATTN_GGML_VEC;
  for (int64_t i = 0; i < dk; i++) qr[i] = half_q ? psi_half_to_float(psi_float_to_half(q[i])) : q[i];
  for (int64_t i = 0; i < dv; i++) { acc[i] = 0.0f; acc16[i] = 0; }
  const int half_acc = f16_accumulator(a);
  float S = 0.0f, M = -INFINITY;
  for (int64_t j = j_begin; j < j_end; j++) {
    if (!psi_key_visible(psi_key_position(a, j), a->q_pos[t], a->window)) continue;
    float s = 0.0f;
    if (a->kv_type == PSI_F16) {
      const uint16_t *k = (const uint16_t *)a->k + j * a->k_stride + kvh * dk;
      for (int64_t i = 0; i < dk; i++) s += psi_half_to_float(k[i]) * qr[i];
    } else {
      const float *k = (const float *)a->k + j * a->k_stride + kvh * dk;
      for (int64_t i = 0; i < dk; i++) s += k[i] * qr[i];
    }
    s = s * a->scale;
    float ms = 1.0f, vs = 1.0f;
    if (s > M) {
      const float old = M;
      M = s;
      ms = expf(old - M);
      for (int64_t i = 0; i < dv; i++) {
        if (half_acc) acc16[i] = psi_float_to_half(psi_half_to_float(acc16[i]) * ms);
        else acc[i] = acc[i] * ms;
      }
    } else {
      vs = expf(s - M);
    }
    for (int64_t i = 0; i < dv; i++)
      vrow[i] = a->kv_type == PSI_F16 ? psi_half_to_float(((const uint16_t *)a->v)[j * a->v_stride + kvh * dv + i])
                                      : ((const float *)a->v)[j * a->v_stride + kvh * dv + i];
    /* ggml's SIMD multiply-add is fused: one rounding per element. */
    for (int64_t i = 0; i < dv; i++) {
      if (half_acc) acc16[i] = psi_float_to_half(fmaf(vrow[i], vs, psi_half_to_float(acc16[i])));
      else acc[i] = fmaf(vrow[i], vs, acc[i]);
    }
    S = S * ms + vs;
  }
  if (half_acc) for (int64_t i = 0; i < dv; i++) acc[i] = psi_half_to_float(acc16[i]);
  if (a->sinks && with_sink) join_sink(a->sinks[h], &M, &S, acc, dv);
  *M_out = M;
  *S_out = S;
}

static void attend_row_ref(const psi_attention_args *a, int64_t t, int64_t h) {
  const int64_t dv = a->head_dim_v;
  float M, S, acc[PSI_ATTN_MAX_HEAD_DIM], part[PSI_ATTN_MAX_HEAD_DIM];
  const int64_t chunk = split_chunk_size(a);
  if (chunk == 0) {
    attend_row_ref_range(a, t, h, 0, a->n_kv, 1, &M, &S, acc);
  } else {
    M = -INFINITY;
    S = 0.0f;
    for (int64_t i = 0; i < dv; i++) acc[i] = 0.0f;
    for (int64_t begin = 0; begin < a->n_kv; begin += chunk) {
      float Mc, Sc;
      attend_row_ref_range(a, t, h, begin, begin + chunk < a->n_kv ? begin + chunk : a->n_kv, begin == 0, &Mc, &Sc, part);
      merge_partial(&M, &S, acc, Mc, Sc, part, dv);
    }
  }
  const float inverse = S == 0.0f ? 0.0f : 1.0f / S;
  float *out = a->out + (t * a->n_head + h) * dv;
  for (int64_t i = 0; i < dv; i++) out[i] = acc[i] * inverse;
}

int32_t PSI_IMPL(psi_attention_ref)(const psi_attention_args *a) {
  const int32_t status = check_attention(a);
  if (status != PSI_OPS_OK) return status;
  for (int64_t t = 0; t < a->n_tokens; t++)
    for (int64_t h = 0; h < a->n_head; h++) attend_row_ref(a, t, h);
  return PSI_OPS_OK;
}

/* ---- fast: a group of query heads shares each pass over its kv head's keys,
 * keys outside the visible range are never touched, SIMD dot products and
 * multiply-adds, work split over the pool by (token, kv head, head group). ---- */

/* The K.Q dot products add their terms in the order of ggml's ggml_vec_dot_f16 /
 * ggml_vec_dot_f32 in the matching build (AVX-512: four 16-lane accumulators over
 * steps of 64; AVX2: four 8-lane accumulators over steps of 32; then accumulators
 * 0+2, 1+3, 0+1, a horizontal sum, and the leftover terms added in double; the
 * portable build sums every term in double like ggml's scalar build). With an F16
 * cache each product of two F16 values is exact in F32, so this reproduces ggml's
 * score bit for bit. */
#if defined(__AVX512F__)
#define DOT_LANES 16
typedef __m512 dot_vec;
static inline dot_vec dot_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline dot_vec dot_load_f32(const float *p) { return _mm512_loadu_ps(p); }
static inline dot_vec dot_fma(dot_vec a, dot_vec b, dot_vec c) { return _mm512_fmadd_ps(a, b, c); }
static inline dot_vec dot_add(dot_vec a, dot_vec b) { return _mm512_add_ps(a, b); }
static inline dot_vec dot_zero(void) { return _mm512_setzero_ps(); }
static inline double dot_hsum(dot_vec v) { return (double)_mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#define DOT_LANES 8
typedef __m256 dot_vec;
static inline dot_vec dot_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline dot_vec dot_load_f32(const float *p) { return _mm256_loadu_ps(p); }
static inline dot_vec dot_fma(dot_vec a, dot_vec b, dot_vec c) { return _mm256_fmadd_ps(a, b, c); }
static inline dot_vec dot_add(dot_vec a, dot_vec b) { return _mm256_add_ps(a, b); }
static inline dot_vec dot_zero(void) { return _mm256_setzero_ps(); }
static inline double dot_hsum(dot_vec v) {
  const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t1 = _mm_hadd_ps(t0, t0);
  return (double)_mm_cvtss_f32(_mm_hadd_ps(t1, t1));
}
#endif

static inline float dot_f16_f32(const uint16_t *k, const float *q, int64_t n) {
  double sum = 0.0;
  int64_t i = 0;
#ifdef DOT_LANES
  const int64_t step = 4 * DOT_LANES, np = n & ~(step - 1);
  dot_vec acc[4] = {dot_zero(), dot_zero(), dot_zero(), dot_zero()};
  for (; i < np; i += step)
    for (int j = 0; j < 4; j++) acc[j] = dot_fma(dot_load_f16(k + i + j * DOT_LANES), dot_load_f32(q + i + j * DOT_LANES), acc[j]);
  acc[0] = dot_add(acc[0], acc[2]);
  acc[1] = dot_add(acc[1], acc[3]);
  sum = dot_hsum(dot_add(acc[0], acc[1]));
#endif
  for (; i < n; i++) sum += (double)(psi_half_to_float(k[i]) * q[i]);
  return (float)sum;
}

static inline float dot_f32(const float *k, const float *q, int64_t n) {
  double sum = 0.0;
  int64_t i = 0;
#ifdef DOT_LANES
  const int64_t step = 4 * DOT_LANES, np = n & ~(step - 1);
  dot_vec acc[4] = {dot_zero(), dot_zero(), dot_zero(), dot_zero()};
  for (; i < np; i += step)
    for (int j = 0; j < 4; j++) acc[j] = dot_fma(dot_load_f32(k + i + j * DOT_LANES), dot_load_f32(q + i + j * DOT_LANES), acc[j]);
  acc[0] = dot_add(acc[0], acc[2]);
  acc[1] = dot_add(acc[1], acc[3]);
  sum = dot_hsum(dot_add(acc[0], acc[1]));
#endif
  for (; i < n; i++) sum += (double)(k[i] * q[i]);
  return (float)sum;
}

/* acc = fp16(fp32(acc) * ms), n values. */
static inline void scale_f16(uint16_t *acc, float ms, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(acc + i))), _mm512_set1_ps(ms));
    _mm256_storeu_si256((__m256i *)(acc + i), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#elif defined(__AVX2__) && defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(acc + i))), _mm256_set1_ps(ms));
    _mm_storeu_si128((__m128i *)(acc + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#endif
  for (; i < n; i++) acc[i] = psi_float_to_half(psi_half_to_float(acc[i]) * ms);
}

/* acc = fp16(fma(v, w, fp32(acc))), n values. */
static inline void mad_f16(uint16_t *acc, const uint16_t *v, float w, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m512 r = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i))), _mm512_set1_ps(w),
                                     _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(acc + i))));
    _mm256_storeu_si256((__m256i *)(acc + i), _mm512_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
  for (; i + 8 <= n; i += 8) {
    const __m256 r = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))), _mm256_set1_ps(w),
                                     _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(acc + i))));
    _mm_storeu_si128((__m128i *)(acc + i), _mm256_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#endif
  for (; i < n; i++) acc[i] = psi_float_to_half(fmaf(psi_half_to_float(v[i]), w, psi_half_to_float(acc[i])));
}

/* acc = fma(v, w, acc) with v F16 (widened) or F32. */
static inline void mad_f32(float *acc, const void *v, int v_is_f16, float w, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m512 vv = v_is_f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)v + i))) : _mm512_loadu_ps((const float *)v + i);
    _mm512_storeu_ps(acc + i, _mm512_fmadd_ps(vv, _mm512_set1_ps(w), _mm512_loadu_ps(acc + i)));
  }
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
  for (; i + 8 <= n; i += 8) {
    const __m256 vv = v_is_f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)v + i))) : _mm256_loadu_ps((const float *)v + i);
    _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(vv, _mm256_set1_ps(w), _mm256_loadu_ps(acc + i)));
  }
#endif
  for (; i < n; i++) acc[i] = fmaf(v_is_f16 ? psi_half_to_float(((const uint16_t *)v)[i]) : ((const float *)v)[i], w, acc[i]);
}

/* Running softmax state of a group of query rows. */
typedef struct {
  float M[HEAD_GROUP], S[HEAD_GROUP];
  float acc[HEAD_GROUP][PSI_ATTN_MAX_HEAD_DIM];
} group_state;

/* Query heads [h0, h0 + n) of kv head kvh, token t, over cells [j_begin, j_end):
 * the unnormalized state into `st`, sinks joined when `with_sink`. */
static void attend_group_range(const psi_attention_args *a, int64_t t, int64_t kvh, int64_t h0, int64_t n, int64_t j_begin, int64_t j_end,
                               int with_sink, group_state *st) {
  const int64_t dk = a->head_dim, dv = a->head_dim_v;
  const int half_q = a->kv_type == PSI_F16 && a->precision == PSI_ATTN_GGML_VEC, half_acc = f16_accumulator(a);
  float q[HEAD_GROUP][PSI_ATTN_MAX_HEAD_DIM];
  uint16_t acc16[HEAD_GROUP][PSI_ATTN_MAX_HEAD_DIM];
  float *S = st->S, *M = st->M;
  float (*acc)[PSI_ATTN_MAX_HEAD_DIM] = st->acc;
  for (int64_t g = 0; g < n; g++) {
    const float *src = a->q + (t * a->n_head + h0 + g) * dk;
    for (int64_t i = 0; i < dk; i++) q[g][i] = half_q ? psi_half_to_float(psi_float_to_half(src[i])) : src[i];
    if (half_acc) memset(acc16[g], 0, (size_t)dv * sizeof(uint16_t));
    else memset(acc[g], 0, (size_t)dv * sizeof(float));
    S[g] = 0.0f;
    M[g] = -INFINITY;
  }
  const int32_t query_pos = a->q_pos[t];
  int64_t first, last;
  psi_candidate_range(a, query_pos, &first, &last);
  if (first < j_begin) first = j_begin;
  if (last > j_end) last = j_end;
  for (int64_t j = first; j < last; j++) {
    if (!psi_key_visible(psi_key_position(a, j), query_pos, a->window)) continue;
    const void *k = a->kv_type == PSI_F16 ? (const void *)((const uint16_t *)a->k + j * a->k_stride + kvh * dk)
                                          : (const void *)((const float *)a->k + j * a->k_stride + kvh * dk);
    const void *v = a->kv_type == PSI_F16 ? (const void *)((const uint16_t *)a->v + j * a->v_stride + kvh * dv)
                                          : (const void *)((const float *)a->v + j * a->v_stride + kvh * dv);
    for (int64_t g = 0; g < n; g++) {
      float s = a->kv_type == PSI_F16 ? dot_f16_f32(k, q[g], dk) : dot_f32(k, q[g], dk);
      s = s * a->scale;
      float ms = 1.0f, vs = 1.0f;
      if (s > M[g]) {
        const float old = M[g];
        M[g] = s;
        ms = expf(old - s);
        if (half_acc) scale_f16(acc16[g], ms, dv);
        else for (int64_t i = 0; i < dv; i++) acc[g][i] = acc[g][i] * ms;
      } else {
        vs = expf(s - M[g]);
      }
      if (half_acc) mad_f16(acc16[g], v, vs, dv);
      else mad_f32(acc[g], v, a->kv_type == PSI_F16, vs, dv);
      S[g] = S[g] * ms + vs;
    }
  }
  for (int64_t g = 0; g < n; g++) {
    if (half_acc) for (int64_t i = 0; i < dv; i++) acc[g][i] = psi_half_to_float(acc16[g][i]);
    if (a->sinks && with_sink) join_sink(a->sinks[h0 + g], &M[g], &S[g], acc[g], dv);
  }
}

/* Work item: token t, kv head kvh, query heads [h0, h0 + n) of that kv head's group. */
static void attend_group(const psi_attention_args *a, int64_t t, int64_t kvh, int64_t h0, int64_t n) {
  const int64_t dv = a->head_dim_v, chunk = split_chunk_size(a);
  group_state total, part;
  if (chunk == 0) {
    attend_group_range(a, t, kvh, h0, n, 0, a->n_kv, 1, &total);
  } else {
    for (int64_t g = 0; g < n; g++) {
      total.M[g] = -INFINITY;
      total.S[g] = 0.0f;
      memset(total.acc[g], 0, (size_t)dv * sizeof(float));
    }
    for (int64_t begin = 0; begin < a->n_kv; begin += chunk) {
      attend_group_range(a, t, kvh, h0, n, begin, begin + chunk < a->n_kv ? begin + chunk : a->n_kv, begin == 0, &part);
      for (int64_t g = 0; g < n; g++) merge_partial(&total.M[g], &total.S[g], total.acc[g], part.M[g], part.S[g], part.acc[g], dv);
    }
  }
  for (int64_t g = 0; g < n; g++) {
    const float inverse = total.S[g] == 0.0f ? 0.0f : 1.0f / total.S[g];
    float *out = a->out + (t * a->n_head + h0 + g) * dv;
    for (int64_t i = 0; i < dv; i++) out[i] = total.acc[g][i] * inverse;
  }
}

static void attention_items(void *context, int ith, int nth) {
  const psi_attention_args *a = context;
  const int64_t group = a->n_head / a->n_head_kv, chunks = (group + HEAD_GROUP - 1) / HEAD_GROUP;
  const int64_t items = (int64_t)a->n_tokens * a->n_head_kv * chunks;
  int64_t begin, end;
  psi_pool_split(items, 1, ith, nth, &begin, &end);
  for (int64_t item = begin; item < end; item++) {
    const int64_t t = item / (a->n_head_kv * chunks), rest = item % (a->n_head_kv * chunks);
    const int64_t kvh = rest / chunks, chunk = rest % chunks;
    const int64_t h0 = kvh * group + chunk * HEAD_GROUP;
    const int64_t n = group - chunk * HEAD_GROUP < HEAD_GROUP ? group - chunk * HEAD_GROUP : HEAD_GROUP;
    attend_group(a, t, kvh, h0, n);
  }
}

int32_t PSI_IMPL(psi_attention)(const psi_attention_args *a) {
  const int32_t status = check_attention(a);
  if (status != PSI_OPS_OK) return status;
  if (a->precision == PSI_ATTN_F32 && PSI_IMPL(psi_attention_tiled_f32)(a)) return PSI_OPS_OK;
  const int64_t group = a->n_head / a->n_head_kv;
  const int64_t items = (int64_t)a->n_tokens * a->n_head_kv * ((group + HEAD_GROUP - 1) / HEAD_GROUP);
  const int nth = a->n_threads < 1 ? 1 : (a->n_threads < items ? a->n_threads : (int)(items > 0 ? items : 1));
  if (nth <= 1) attention_items((void *)a, 0, 1);
  else psi_pool_run(nth, attention_items, (void *)a);
  return PSI_OPS_OK;
}
