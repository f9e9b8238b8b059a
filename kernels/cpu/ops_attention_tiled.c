/* F32-precision attention in tiles, for prompt batches (the shapes and the mask
 * are psi_attention's, ops.h). This is how ggml's CPU flash attention runs
 * batches of 64+ query tokens (ggml_compute_forward_flash_attn_ext_tiled): Q
 * stays F32, a tile of keys is widened to F32 once and shared by every query
 * row that uses it, scores for a whole tile come from one small matrix product,
 * and the online softmax advances a tile at a time (rescale on a new tile
 * maximum, vector exp, then out += P V).
 *
 * Work item: one kv head and a block of up to TILE_Q query tokens, covering all
 * query heads that share the kv head (group = n_head / n_head_kv), so a packed
 * K/V tile serves TILE_Q * group rows. The reference for this path is
 * psi_attention_ref with PSI_ATTN_F32 (one key at a time, libm expf); the two
 * differ only in rounding (tests hold them within 2e-6). */
#include <stdlib.h>
#include "api.h"
#include "ops.h"
#include "threadpool.h"

#define TILE_KV 64
#define TILE_Q 32

typedef struct {
  const psi_attention_args *a;
  float *scratch;        /* per thread: scratch_floats each */
  int64_t scratch_floats;
} tiled_job;

static int64_t scratch_floats_for(const psi_attention_args *a) {
  const int64_t rows = (int64_t)TILE_Q * (a->n_head / a->n_head_kv);
  return (int64_t)a->head_dim * TILE_KV + (int64_t)TILE_KV * a->head_dim_v + rows * (a->head_dim_v + 2) + 16;
}

/* s[j] = sum_i q[i] * kt[i][j] for the 64 keys of a tile (kt is the tile transposed). */
static void tile_scores(const float *q, const float *kt, int64_t dk, float *s) {
#if defined(__AVX512F__)
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t i = 0; i < dk; i++) {
    const __m512 qi = _mm512_set1_ps(q[i]);
    const float *row = kt + i * TILE_KV;
    s0 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row), s0);
    s1 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row + 16), s1);
    s2 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row + 32), s2);
    s3 = _mm512_fmadd_ps(qi, _mm512_loadu_ps(row + 48), s3);
  }
  _mm512_storeu_ps(s, s0); _mm512_storeu_ps(s + 16, s1); _mm512_storeu_ps(s + 32, s2); _mm512_storeu_ps(s + 48, s3);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[8];
  for (int c = 0; c < 8; c++) acc[c] = _mm256_setzero_ps();
  for (int64_t i = 0; i < dk; i++) {
    const __m256 qi = _mm256_set1_ps(q[i]);
    for (int c = 0; c < 8; c++) acc[c] = _mm256_fmadd_ps(qi, _mm256_loadu_ps(kt + i * TILE_KV + 8 * c), acc[c]);
  }
  for (int c = 0; c < 8; c++) _mm256_storeu_ps(s + 8 * c, acc[c]);
#else
  for (int j = 0; j < TILE_KV; j++) s[j] = 0.0f;
  for (int64_t i = 0; i < dk; i++)
    for (int j = 0; j < TILE_KV; j++) s[j] += q[i] * kt[i * TILE_KV + j];
#endif
}

/* p[j] = exp(s[j] - max), 0 where s[j] is -inf (masked); returns the sum of p. */
static float tile_exp(const float *s, float max, float *p) {
  int j = 0;
#if defined(__AVX512F__)
  for (; j < TILE_KV; j += 16) {
    const __m512 v = _mm512_loadu_ps(s + j);
    const __m512 e = psi_exp16(_mm512_sub_ps(v, _mm512_set1_ps(max)));
    _mm512_storeu_ps(p + j, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ), e, _mm512_setzero_ps()));
  }
#elif defined(__AVX2__) && defined(__FMA__)
  for (; j < TILE_KV; j += 8) {
    const __m256 v = _mm256_loadu_ps(s + j);
    const __m256 e = psi_exp8(_mm256_sub_ps(v, _mm256_set1_ps(max)));
    _mm256_storeu_ps(p + j, _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(v, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ)));
  }
#endif
  for (; j < TILE_KV; j++) p[j] = s[j] == -INFINITY ? 0.0f : expf(s[j] - max);
#if defined(__AVX512F__)
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(p), _mm512_loadu_ps(p + 16)),
                                            _mm512_add_ps(_mm512_loadu_ps(p + 32), _mm512_loadu_ps(p + 48))));
#else
  float sum = 0.0f;
  for (j = 0; j < TILE_KV; j++) sum += p[j];
  return sum;
#endif
}

/* acc += sum_j p[j] * vt[j], over the nk keys of a tile and dv values; the
 * accumulator stays in registers across the keys, 64 (AVX-512) or 32 (AVX2) values at a time. */
static void tile_pv(float *acc, const float *p, const float *vt, int64_t nk, int64_t dv) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 64 <= dv; i += 64) {
    __m512 a0 = _mm512_loadu_ps(acc + i), a1 = _mm512_loadu_ps(acc + i + 16), a2 = _mm512_loadu_ps(acc + i + 32), a3 = _mm512_loadu_ps(acc + i + 48);
    for (int64_t j = 0; j < nk; j++) {
      const __m512 w = _mm512_set1_ps(p[j]);
      const float *v = vt + j * dv + i;
      a0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(v), a0);
      a1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + 16), a1);
      a2 = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + 32), a2);
      a3 = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + 48), a3);
    }
    _mm512_storeu_ps(acc + i, a0); _mm512_storeu_ps(acc + i + 16, a1); _mm512_storeu_ps(acc + i + 32, a2); _mm512_storeu_ps(acc + i + 48, a3);
  }
  for (; i + 16 <= dv; i += 16) {
    __m512 a0 = _mm512_loadu_ps(acc + i);
    for (int64_t j = 0; j < nk; j++) a0 = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), _mm512_loadu_ps(vt + j * dv + i), a0);
    _mm512_storeu_ps(acc + i, a0);
  }
#elif defined(__AVX2__) && defined(__FMA__)
  for (; i + 32 <= dv; i += 32) {
    __m256 a0 = _mm256_loadu_ps(acc + i), a1 = _mm256_loadu_ps(acc + i + 8), a2 = _mm256_loadu_ps(acc + i + 16), a3 = _mm256_loadu_ps(acc + i + 24);
    for (int64_t j = 0; j < nk; j++) {
      const __m256 w = _mm256_set1_ps(p[j]);
      const float *v = vt + j * dv + i;
      a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v), a0);
      a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8), a1);
      a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 16), a2);
      a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 24), a3);
    }
    _mm256_storeu_ps(acc + i, a0); _mm256_storeu_ps(acc + i + 8, a1); _mm256_storeu_ps(acc + i + 16, a2); _mm256_storeu_ps(acc + i + 24, a3);
  }
#endif
  for (; i < dv; i++) {
    float a = acc[i];
    for (int64_t j = 0; j < nk; j++) a = fmaf(p[j], vt[j * dv + i], a);
    acc[i] = a;
  }
}

/* n cache values from element `index` on, as F32 (F16 through the codecs' vectorized decode). */
static inline void widen_row(const psi_attention_args *a, const void *base, int64_t index, float *dst, int64_t n) {
  if (a->kv_type == PSI_F16) PSI_IMPL(psi_decode_f16)((const uint16_t *)base + index, dst, n);
  else memcpy(dst, (const float *)base + index, (size_t)n * sizeof(float));
}

static void run_item(const psi_attention_args *a, float *scratch, int64_t kvh, int64_t t0, int64_t t1) {
  const int64_t dk = a->head_dim, dv = a->head_dim_v, group = a->n_head / a->n_head_kv, nt = t1 - t0;
  float *kt = scratch, *vt = kt + dk * TILE_KV, *acc = vt + TILE_KV * dv;
  float *M = acc + (int64_t)TILE_Q * group * dv, *S = M + TILE_Q * group;
  float s[TILE_KV], p[TILE_KV], krow[PSI_ATTN_MAX_HEAD_DIM];
  for (int64_t r = 0; r < nt * group; r++) { M[r] = -INFINITY; S[r] = 0.0f; }
  memset(acc, 0, (size_t)(nt * group * dv) * sizeof(float));

  int64_t first = a->n_kv, last = 0;
  for (int64_t t = t0; t < t1; t++) {
    int64_t f, l;
    psi_candidate_range(a, a->q_pos[t], &f, &l);
    if (f < first) first = f;
    if (l > last) last = l;
  }
  for (int64_t j0 = first; j0 < last; j0 += TILE_KV) {
    const int64_t nk = last - j0 < TILE_KV ? last - j0 : TILE_KV;
    /* Widen the tile once: V rows straight into vt, K rows through a row buffer into kt's columns. */
    for (int64_t jj = 0; jj < TILE_KV; jj++) {
      if (jj >= nk) { for (int64_t i = 0; i < dk; i++) kt[i * TILE_KV + jj] = 0.0f; continue; }
      const int64_t cell = j0 + jj;
      widen_row(a, a->v, cell * a->v_stride + kvh * dv, vt + jj * dv, dv);
      widen_row(a, a->k, cell * a->k_stride + kvh * dk, krow, dk);
      for (int64_t i = 0; i < dk; i++) kt[i * TILE_KV + jj] = krow[i];
    }
    for (int64_t t = t0; t < t1; t++) {
      const int32_t query_pos = a->q_pos[t];
      uint8_t visible[TILE_KV];
      int any = 0;
      for (int64_t jj = 0; jj < TILE_KV; jj++) {
        visible[jj] = jj < nk && psi_key_visible(psi_key_position(a, j0 + jj), query_pos, a->window);
        any |= visible[jj];
      }
      if (!any) continue;
      for (int64_t g = 0; g < group; g++) {
        const int64_t h = kvh * group + g, r = (t - t0) * group + g;
        tile_scores(a->q + (t * a->n_head + h) * dk, kt, dk, s);
        float tile_max = -INFINITY;
        for (int64_t jj = 0; jj < TILE_KV; jj++) {
          s[jj] = visible[jj] ? s[jj] * a->scale : -INFINITY;
          tile_max = s[jj] > tile_max ? s[jj] : tile_max;
        }
        float *row = acc + r * dv;
        if (tile_max > M[r]) {
          const float ms = expf(M[r] - tile_max);
          for (int64_t i = 0; i < dv; i++) row[i] *= ms;
          S[r] *= ms;
          M[r] = tile_max;
        }
        S[r] += tile_exp(s, M[r], p);
        tile_pv(row, p, vt, nk, dv);
      }
    }
  }
  for (int64_t t = t0; t < t1; t++) {
    for (int64_t g = 0; g < group; g++) {
      const int64_t h = kvh * group + g, r = (t - t0) * group + g;
      float *row = acc + r * dv;
      if (a->sinks) {
        const float sink = a->sinks[h];
        float ms = 1.0f, vs = 1.0f;
        if (sink > M[r]) {
          ms = expf(M[r] - sink);
          for (int64_t i = 0; i < dv; i++) row[i] *= ms;
        } else {
          vs = expf(sink - M[r]);
        }
        S[r] = S[r] * ms + vs;
      }
      const float inverse = S[r] == 0.0f ? 0.0f : 1.0f / S[r];
      float *out = a->out + (t * a->n_head + h) * dv;
      for (int64_t i = 0; i < dv; i++) out[i] = row[i] * inverse;
    }
  }
}

static void tiled_items(void *context, int ith, int nth) {
  const tiled_job *job = context;
  const psi_attention_args *a = job->a;
  const int64_t blocks = (a->n_tokens + TILE_Q - 1) / TILE_Q;
  int64_t begin, end;
  psi_pool_split((int64_t)a->n_head_kv * blocks, 1, ith, nth, &begin, &end);
  for (int64_t item = begin; item < end; item++) {
    const int64_t kvh = item / blocks, t0 = (item % blocks) * TILE_Q;
    const int64_t t1 = t0 + TILE_Q < a->n_tokens ? t0 + TILE_Q : a->n_tokens;
    run_item(a, job->scratch + (int64_t)ith * job->scratch_floats, kvh, t0, t1);
  }
}

/* Returns 0 when it could not allocate its scratch (the caller then takes the per-key path). */
int32_t PSI_IMPL(psi_attention_tiled_f32)(const psi_attention_args *a) {
  const int64_t items = (int64_t)a->n_head_kv * ((a->n_tokens + TILE_Q - 1) / TILE_Q);
  const int nth = a->n_threads < 1 ? 1 : (a->n_threads < items ? a->n_threads : (int)(items > 0 ? items : 1));
  tiled_job job = {a, NULL, scratch_floats_for(a)};
  job.scratch = malloc((size_t)(job.scratch_floats * nth) * sizeof(float));
  if (!job.scratch) return 0;
  if (nth <= 1) tiled_items(&job, 0, 1);
  else psi_pool_run(nth, tiled_items, &job);
  free(job.scratch);
  return 1;
}
