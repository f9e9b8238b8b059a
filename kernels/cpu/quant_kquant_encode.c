/* Encoding Q2_K..Q6_K rows: src is n floats, dst is n/256 super-blocks.
 * Each follows ggml's quantize_row_*_ref (the sub-block scale searches too),
 * float operation for float operation, so the blocks come out byte-identical;
 * src/gguf/quant/kquant-search.ts is the TypeScript twin. */
#include <math.h>
#include "quant.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define GROUP_MAX_EPS 1e-15f

/* Symmetric scale for n values, codes in [-nmax, nmax-1] stored as code + nmax;
 * x^2-weighted least squares over 19 trial scales around nmax / max. */
static float symmetric_scale_search(int n, int nmax, const float *x, int8_t *L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
  }
  if (amax < GROUP_MAX_EPS) {
    memset(L, 0, (size_t)n);
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; i++) {
    const int l = MAX(-nmax, MIN(nmax - 1, psi_nearest_int(iscale * x[i])));
    L[i] = (int8_t)(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; i++) {
      const int l = MAX(-nmax, MIN(nmax - 1, psi_nearest_int(iscale * x[i])));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, psi_nearest_int(iscale * x[i]))));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/* Q3_K's search: start at nmax / max, then up to five passes moving single codes
 * while that improves the x^2-weighted fit. Codes stored as code + nmax. */
static float q3_scale_search(int n, int nmax, const float *x, int8_t *L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
  }
  if (amax < GROUP_MAX_EPS) {
    memset(L, 0, (size_t)n);
    return 0.f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; i++) {
    const int l = MAX(-nmax, MIN(nmax - 1, psi_nearest_int(iscale * x[i])));
    L[i] = (int8_t)l;
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int pass = 0; pass < 5; pass++) {
    int changed = 0;
    for (int i = 0; i < n; i++) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx <= 0) continue;
      float sl2 = suml2 - w * L[i] * L[i];
      const int new_l = MAX(-nmax, MIN(nmax - 1, psi_nearest_int(x[i] * sl2 / slx)));
      if (new_l == L[i]) continue;
      slx += w * x[i] * new_l;
      sl2 += w * new_l * new_l;
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = (int8_t)new_l;
        sumlx = slx;
        suml2 = sl2;
        changed++;
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Scale and minimum for n values with codes in [0, nmax] (value ~ scale * code - min):
 * nstep+1 trial scales, each refined by weighted least squares; keeps the lowest error. */
static float scale_min_search(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              float rmin, float rdelta, int nstep, int absolute_error) {
  uint8_t trial[32];
  float min = x[0], max = x[0];
  float sum_w = weights[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    memset(L, 0, (size_t)n);
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; i++) {
    L[i] = (uint8_t)MAX(0, MIN(nmax, psi_nearest_int(iscale * (x[i] - min))));
    float diff = scale * L[i] + min - x[i];
    diff = absolute_error ? fabsf(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; is++) {
    /* Measured from the best minimum so far, as ggml does. */
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; i++) {
      const int l = MAX(0, MIN(nmax, psi_nearest_int(iscale * (x[i] - min))));
      trial[i] = (uint8_t)l;
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float error = 0;
    for (int i = 0; i < n; i++) {
      float diff = this_scale * trial[i] + this_min - x[i];
      diff = absolute_error ? fabsf(diff) : diff * diff;
      error += weights[i] * diff;
    }
    if (error < best_error) {
      memcpy(L, trial, (size_t)n);
      best_error = error;
      scale = this_scale;
      min = this_min;
    }
  }
  *the_min = -min;
  return scale;
}

static void pack_2bit(const uint8_t *L, uint8_t *qs) {
  for (int j = 0; j < QK_K; j += 128) {
    for (int l = 0; l < 32; l++) {
      qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

void PSI_IMPL(psi_encode_q2_K)(const float *x, void *dst, int64_t n) {
  block_q2_K *y = dst;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    uint8_t L[QK_K];
    float weights[16], scales[16], mins[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; j++) {
      for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
      scales[j] = scale_min_search(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, 1);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    memset(&y[i], 0, sizeof(y[i]));
    if (max_scale > 0) {
      const float iscale = 15.f / max_scale;
      for (int j = 0; j < 16; j++) y[i].scales[j] = (uint8_t)psi_nearest_int(iscale * scales[j]);
      y[i].d = psi_float_to_half(max_scale / 15.f);
    }
    if (max_min > 0) {
      const float iscale = 15.f / max_min;
      for (int j = 0; j < 16; j++) y[i].scales[j] |= (uint8_t)(psi_nearest_int(iscale * mins[j]) << 4);
      y[i].dmin = psi_float_to_half(max_min / 15.f);
    }
    for (int j = 0; j < 16; j++) {
      const float d = psi_half_to_float(y[i].d) * (y[i].scales[j] & 0xf);
      if (!d) continue;
      const float dm = psi_half_to_float(y[i].dmin) * (y[i].scales[j] >> 4);
      for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)MAX(0, MIN(3, psi_nearest_int((x[16 * j + l] + dm) / d)));
    }
    pack_2bit(L, y[i].qs);
  }
}

void PSI_IMPL(psi_encode_q3_K)(const float *x, void *dst, int64_t n) {
  block_q3_K *y = dst;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    int8_t L[QK_K];
    float scales[16];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; j++) {
      scales[j] = q3_scale_search(16, 4, x + 16 * j, L + 16 * j);
      if (fabsf(scales[j]) > amax) { amax = fabsf(scales[j]); max_scale = scales[j]; }
    }
    memset(&y[i], 0, sizeof(y[i]));
    if (max_scale) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; j++) {
        int8_t l = (int8_t)psi_nearest_int(iscale * scales[j]);
        l = (int8_t)(MAX(-32, MIN(31, l)) + 32);
        if (j < 8) y[i].scales[j] = l & 0xf;
        else y[i].scales[j - 8] |= (uint8_t)((l & 0xf) << 4);
        y[i].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
      }
      y[i].d = psi_float_to_half(1 / iscale);
    }
    for (int j = 0; j < 16; j++) {
      const int low = j < 8 ? y[i].scales[j] & 0xf : y[i].scales[j - 8] >> 4;
      const int8_t sc = (int8_t)((low | (((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
      const float d = psi_half_to_float(y[i].d) * sc;
      if (!d) continue;
      for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(MAX(-4, MIN(3, psi_nearest_int(x[16 * j + l] / d))) + 4);
    }
    /* The third bit of element j goes to hmask[j % 32], bit j / 32. */
    for (int j = 0; j < QK_K; j++) {
      if (L[j] > 3) {
        y[i].hmask[j % 32] |= (uint8_t)(1 << (j / 32));
        L[j] -= 4;
      }
    }
    pack_2bit((const uint8_t *)L, y[i].qs);
  }
}

/* Q4_K and Q5_K share the scale search and the 6-bit packing of scales and mins. */
static void encode_scale_min_k4(const float *x, uint16_t *d_out, uint16_t *dmin_out, uint8_t *packed, uint8_t *L,
                                int nmax, float rmin, int nstep) {
  float weights[32], scales[8], mins[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; j++) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = sqrtf(sum_x2 / 32);
    for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
    scales[j] = scale_min_search(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep, 0);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < 8; j++) {
    const uint8_t ls = MIN(63, (uint8_t)psi_nearest_int(inv_scale * scales[j]));
    const uint8_t lm = MIN(63, (uint8_t)psi_nearest_int(inv_min * mins[j]));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = (uint8_t)((ls & 0xf) | ((lm & 0xf) << 4));
      packed[j - 4] |= (uint8_t)((ls >> 4) << 6);
      packed[j] |= (uint8_t)((lm >> 4) << 6);
    }
  }
  *d_out = psi_float_to_half(max_scale / 63.f);
  *dmin_out = psi_float_to_half(max_min / 63.f);
  for (int j = 0; j < 8; j++) {
    uint8_t sc, m;
    if (j < 4) {
      sc = packed[j] & 63;
      m = packed[j + 4] & 63;
    } else {
      sc = (packed[j + 4] & 0xf) | ((packed[j - 4] >> 6) << 4);
      m = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
    }
    const float d = psi_half_to_float(*d_out) * sc;
    if (!d) continue;
    const float dm = psi_half_to_float(*dmin_out) * m;
    for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)MAX(0, MIN(nmax, psi_nearest_int((x[32 * j + l] + dm) / d)));
  }
}

void PSI_IMPL(psi_encode_q4_K)(const float *x, void *dst, int64_t n) {
  block_q4_K *y = dst;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    uint8_t L[QK_K];
    memset(&y[i], 0, sizeof(y[i]));
    encode_scale_min_k4(x, &y[i].d, &y[i].dmin, y[i].scales, L, 15, -1.f, 20);
    for (int j = 0; j < QK_K; j += 64) {
      for (int l = 0; l < 32; l++) y[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
  }
}

void PSI_IMPL(psi_encode_q5_K)(const float *x, void *dst, int64_t n) {
  block_q5_K *y = dst;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    uint8_t L[QK_K];
    memset(&y[i], 0, sizeof(y[i]));
    encode_scale_min_k4(x, &y[i].d, &y[i].dmin, y[i].scales, L, 31, -0.5f, 15);
    uint8_t m1 = 1, m2 = 2;
    for (int j = 0; j < QK_K; j += 64, m1 <<= 2, m2 <<= 2) {
      for (int l = 0; l < 32; l++) {
        int l1 = L[j + l], l2 = L[j + l + 32];
        if (l1 > 15) { l1 -= 16; y[i].qh[l] |= m1; }
        if (l2 > 15) { l2 -= 16; y[i].qh[l] |= m2; }
        y[i].qs[j / 2 + l] = (uint8_t)(l1 | (l2 << 4));
      }
    }
  }
}

void PSI_IMPL(psi_encode_q6_K)(const float *x, void *dst, int64_t n) {
  block_q6_K *y = dst;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    int8_t L[QK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ib++) {
      scales[ib] = symmetric_scale_search(16, 32, x + 16 * ib, L + 16 * ib);
      if (fabsf(scales[ib]) > max_abs_scale) { max_abs_scale = fabsf(scales[ib]); max_scale = scales[ib]; }
    }
    memset(&y[i], 0, sizeof(y[i]));
    if (max_abs_scale < GROUP_MAX_EPS) continue;
    const float iscale = -128.f / max_scale;
    y[i].d = psi_float_to_half(1 / iscale);
    for (int ib = 0; ib < 16; ib++) y[i].scales[ib] = (int8_t)MIN(127, psi_nearest_int(iscale * scales[ib]));
    for (int j = 0; j < 16; j++) {
      const float d = psi_half_to_float(y[i].d) * y[i].scales[j];
      if (!d) continue;
      for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(MAX(-32, MIN(31, psi_nearest_int(x[16 * j + l] / d))) + 32);
    }
    for (int j = 0; j < QK_K; j += 128) {
      uint8_t *ql = y[i].ql + j / 2, *qh = y[i].qh + j / 4;
      for (int l = 0; l < 32; l++) {
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = (uint8_t)((q1 & 0xf) | ((q3 & 0xf) << 4));
        ql[l + 32] = (uint8_t)((q2 & 0xf) | ((q4 & 0xf) << 4));
        qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}
