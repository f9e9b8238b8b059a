/* Rotary position embedding (RoPE), normal and NeoX pairing, with YaRN scaling.
 *   x, y are (n_tokens, n_head, head_dim) F32 (y may alias x); pos is n_tokens int32.
 *   The first n_dims values of each head rotate; the rest are copied.
 *   Pair i (0 <= i < n_dims/2) of a token at position p turns by
 *     theta_i = p * freq_base^(-2i/n_dims) / freq_factors[i]
 *   blended between interpolation (theta * freq_scale) and extrapolation by YaRN's
 *   ramp over the correction dims, and cos/sin are scaled by attn_factor (times
 *   YaRN's magnitude correction when ext_factor != 0).
 *
 * ggml (ops.cpp ggml_rope_cache_init / rope_yarn) builds theta_i by repeated
 * float multiplication: theta_0 = (float)p, theta_{i+1} = theta_i * theta_scale
 * with theta_scale = powf(freq_base, -2.0f/n_dims). That rounding differs from
 * the closed form by up to ~i ulp of theta, which matters at large positions,
 * so both versions here build theta the same way, and compute the YaRN ramp and
 * correction dims with ggml's float expressions (i0/2 is integer division),
 * fusing the same multiply-adds ggml's compiled code fuses (rotate_first below).
 * Both are bit-identical to ggml (ops-ggml-parity.test.ts). */
#include "api.h"
#include "ops.h"
#include "threadpool.h"

#define ROPE_MAX_DIMS 4096

/* ggml_rope_yarn_corr_dims: the dims where YaRN's ramp starts and ends. */
static void yarn_corr_dims(const psi_rope_params *p, float dims[2]) {
  const float pi = (float)M_PI;
  const float start = floorf(p->n_dims * logf(p->n_ctx_orig / (p->beta_fast * 2 * pi)) / (2 * logf(p->freq_base)));
  const float end = ceilf(p->n_dims * logf(p->n_ctx_orig / (p->beta_slow * 2 * pi)) / (2 * logf(p->freq_base)));
  dims[0] = start > 0 ? start : 0;
  dims[1] = end < p->n_dims - 1 ? end : (float)(p->n_dims - 1);
}

/* cos and sin of pair i0/2, scaled; theta_extrap already divided by the frequency factor. */
static void yarn_rotation(const psi_rope_params *p, const float corr[2], float theta_extrap, int64_t i0, float *cos_out, float *sin_out) {
  const float theta_interp = p->freq_scale * theta_extrap;
  float theta = theta_interp, mscale = p->attn_factor;
  if (p->ext_factor != 0.0f) {
    const float span = corr[1] - corr[0] > 0.001f ? corr[1] - corr[0] : 0.001f;
    const float ramp_y = ((float)(i0 / 2) - corr[0]) / span;
    const float ramp = 1 - (ramp_y < 0 ? 0 : ramp_y > 1 ? 1 : ramp_y);
    const float mix = ramp * p->ext_factor;
    theta = fmaf(theta_interp, 1 - mix, theta_extrap * mix);
    mscale *= fmaf(0.1f, logf(1.0f / p->freq_scale), 1.0f);
  }
  *cos_out = cosf(theta) * mscale;
  *sin_out = sinf(theta) * mscale;
}

static int32_t check_rope(const psi_rope_params *p, int64_t n_tokens, int64_t n_head, int64_t head_dim) {
  if (n_tokens < 0 || n_head <= 0 || head_dim <= 0) return PSI_OPS_BAD_SHAPE;
  if (p->n_dims <= 0 || p->n_dims % 2 != 0 || p->n_dims > head_dim || p->n_dims > ROPE_MAX_DIMS) return PSI_OPS_BAD_SHAPE;
  if (p->mode != PSI_ROPE_NORMAL && p->mode != PSI_ROPE_NEOX) return PSI_OPS_UNSUPPORTED;
  if (!(p->freq_base > 0.0f) || !(p->freq_scale > 0.0f) || p->n_ctx_orig <= 0) return PSI_OPS_BAD_SHAPE;
  return PSI_OPS_OK;
}

/* The rotated pair. ggml's compiled rope (the AVX-512 build llama.cpp runs here)
 * fuses the first product of each line into the add, x0*c - x1*s becoming
 * fma(x0, c, -(x1*s)); the YaRN blend and magnitude above likewise. Checked bit for
 * bit against ggml in ops-ggml-parity.test.ts. */
static inline float rotate_first(float x0, float x1, float c, float s) { return fmaf(x0, c, -(x1 * s)); }
static inline float rotate_second(float x0, float x1, float c, float s) { return fmaf(x0, s, x1 * c); }

/* Positions of the two values of pair `pair` within a head. */
static inline void pair_slots(int32_t mode, int64_t n_dims, int64_t pair, int64_t *a, int64_t *b) {
  if (mode == PSI_ROPE_NEOX) { *a = pair; *b = pair + n_dims / 2; }
  else { *a = 2 * pair; *b = 2 * pair + 1; }
}

int32_t PSI_IMPL(psi_rope_ref)(const float *x, float *y, const int32_t *pos, int64_t n_tokens, int64_t n_head, int64_t head_dim, const psi_rope_params *p) {
  const int32_t status = check_rope(p, n_tokens, n_head, head_dim);
  if (status != PSI_OPS_OK) return status;
  float corr[2];
  yarn_corr_dims(p, corr);
  const float theta_scale = powf(p->freq_base, -2.0f / p->n_dims);
  for (int64_t t = 0; t < n_tokens; t++) {
    for (int64_t h = 0; h < n_head; h++) {
      const float *src = x + (t * n_head + h) * head_dim;
      float *dst = y + (t * n_head + h) * head_dim;
      float theta = (float)pos[t];
      for (int64_t i0 = 0; i0 < p->n_dims; i0 += 2) {
        const float factor = p->freq_factors ? p->freq_factors[i0 / 2] : 1.0f;
        float c, s;
        yarn_rotation(p, corr, theta / factor, i0, &c, &s);
        theta *= theta_scale;
        int64_t a, b;
        pair_slots(p->mode, p->n_dims, i0 / 2, &a, &b);
        const float x0 = src[a], x1 = src[b];
        dst[a] = rotate_first(x0, x1, c, s);
        dst[b] = rotate_second(x0, x1, c, s);
      }
      for (int64_t i = p->n_dims; i < head_dim; i++) dst[i] = src[i];
    }
  }
  return PSI_OPS_OK;
}

/* The fast version computes cos/sin once per token (the theta cache) and applies
 * them to every head; the rotation loops are plain so the compiler vectorizes the
 * NeoX halves. Same float operations as the reference, so the same bits. */
typedef struct {
  const float *x; float *y; const int32_t *pos;
  int64_t n_tokens, n_head, head_dim;
  const psi_rope_params *p;
  float corr[2], theta_scale;
} rope_job;

static void rope_tokens(void *context, int ith, int nth) {
  const rope_job *job = context;
  const psi_rope_params *p = job->p;
  const int64_t half = p->n_dims / 2;
  float cos_cache[ROPE_MAX_DIMS / 2], sin_cache[ROPE_MAX_DIMS / 2];
  int64_t begin, end;
  psi_pool_split(job->n_tokens, 1, ith, nth, &begin, &end);
  for (int64_t t = begin; t < end; t++) {
    float theta = (float)job->pos[t];
    for (int64_t i = 0; i < half; i++) {
      const float factor = p->freq_factors ? p->freq_factors[i] : 1.0f;
      yarn_rotation(p, job->corr, theta / factor, 2 * i, &cos_cache[i], &sin_cache[i]);
      theta *= job->theta_scale;
    }
    for (int64_t h = 0; h < job->n_head; h++) {
      const float *src = job->x + (t * job->n_head + h) * job->head_dim;
      float *dst = job->y + (t * job->n_head + h) * job->head_dim;
      if (p->mode == PSI_ROPE_NEOX) {
        const float *lo = src, *hi = src + half;
        float *out_lo = dst, *out_hi = dst + half;
        for (int64_t i = 0; i < half; i++) {
          const float x0 = lo[i], x1 = hi[i];
          out_lo[i] = rotate_first(x0, x1, cos_cache[i], sin_cache[i]);
          out_hi[i] = rotate_second(x0, x1, cos_cache[i], sin_cache[i]);
        }
      } else {
        for (int64_t i = 0; i < half; i++) {
          const float x0 = src[2 * i], x1 = src[2 * i + 1];
          dst[2 * i] = rotate_first(x0, x1, cos_cache[i], sin_cache[i]);
          dst[2 * i + 1] = rotate_second(x0, x1, cos_cache[i], sin_cache[i]);
        }
      }
      if (dst != src) for (int64_t i = p->n_dims; i < job->head_dim; i++) dst[i] = src[i];
    }
  }
}

int32_t PSI_IMPL(psi_rope)(const float *x, float *y, const int32_t *pos, int64_t n_tokens, int64_t n_head, int64_t head_dim, const psi_rope_params *p, int32_t n_threads) {
  const int32_t status = check_rope(p, n_tokens, n_head, head_dim);
  if (status != PSI_OPS_OK) return status;
  rope_job job = {x, y, pos, n_tokens, n_head, head_dim, p, {0, 0}, powf(p->freq_base, -2.0f / p->n_dims)};
  yarn_corr_dims(p, job.corr);
  /* A token's rotation costs n_head * head_dim multiplies plus n_dims/2 cos/sin: below
   * a few tokens waking the pool costs more than it saves. */
  const int nth = n_tokens < 4 ? 1 : (int)(n_threads < n_tokens ? n_threads : n_tokens);
  if (nth <= 1) rope_tokens(&job, 0, 1);
  else psi_pool_run(nth, rope_tokens, &job);
  return PSI_OPS_OK;
}
