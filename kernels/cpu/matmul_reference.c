/* Plain reference dot products: one weight row of nb blocks against one
 * quantized activation row, in the summation order of ggml's scalar
 * ggml_vec_dot_*_generic. Integer sums per block are exact; the float order
 * below is what the fast tiles are compared with.
 * quant.h turns off FMA contraction, so the avx2/avx512 builds of this file
 * round exactly as the portable one does. */
#include "matmul.h"

static inline float h2f(uint16_t h) { return psi_half_to_float(h); }

float PSI_IMPL(psi_ref_dot_q4_0)(const void *vw, const void *vx, int64_t nb) {
  const block_q4_0 *w = vw;
  const block_q8_0 *x = vx;
  float sum = 0;
  for (int64_t b = 0; b < nb; b++) {
    int s0 = 0, s1 = 0;
    for (int j = 0; j < 16; j++) {
      s0 += ((w[b].qs[j] & 0xF) - 8) * x[b].qs[j];
      s1 += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
    }
    sum += (float)(s0 + s1) * h2f(w[b].d) * h2f(x[b].d);
  }
  return sum;
}

float PSI_IMPL(psi_ref_dot_q4_1)(const void *vw, const void *vx, int64_t nb) {
  const block_q4_1 *w = vw;
  const block_q8_1 *x = vx;
  float sum = 0;
  for (int64_t b = 0; b < nb; b++) {
    int s0 = 0, s1 = 0;
    for (int j = 0; j < 16; j++) {
      s0 += (w[b].qs[j] & 0xF) * x[b].qs[j];
      s1 += (w[b].qs[j] >> 4) * x[b].qs[j + 16];
    }
    sum += (h2f(w[b].d) * h2f(x[b].d)) * (float)(s0 + s1) + h2f(w[b].m) * h2f(x[b].s);
  }
  return sum;
}

float PSI_IMPL(psi_ref_dot_q5_0)(const void *vw, const void *vx, int64_t nb) {
  const block_q5_0 *w = vw;
  const block_q8_0 *x = vx;
  float sum = 0;
  for (int64_t b = 0; b < nb; b++) {
    uint32_t qh;
    memcpy(&qh, w[b].qh, 4);
    int s0 = 0, s1 = 0;
    for (int j = 0; j < 16; j++) {
      int v0 = (int)((w[b].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
      int v1 = (int)((w[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      s0 += v0 * x[b].qs[j];
      s1 += v1 * x[b].qs[j + 16];
    }
    sum += (h2f(w[b].d) * h2f(x[b].d)) * (float)(s0 + s1);
  }
  return sum;
}

float PSI_IMPL(psi_ref_dot_q5_1)(const void *vw, const void *vx, int64_t nb) {
  const block_q5_1 *w = vw;
  const block_q8_1 *x = vx;
  float sum = 0;
  for (int64_t b = 0; b < nb; b++) {
    uint32_t qh;
    memcpy(&qh, w[b].qh, 4);
    int s0 = 0, s1 = 0;
    for (int j = 0; j < 16; j++) {
      int v0 = (int)((w[b].qs[j] & 0xF) | (((qh >> j) & 1) << 4));
      int v1 = (int)((w[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
      s0 += v0 * x[b].qs[j];
      s1 += v1 * x[b].qs[j + 16];
    }
    sum += (h2f(w[b].d) * h2f(x[b].d)) * (float)(s0 + s1) + h2f(w[b].m) * h2f(x[b].s);
  }
  return sum;
}

float PSI_IMPL(psi_ref_dot_q8_0)(const void *vw, const void *vx, int64_t nb) {
  const block_q8_0 *w = vw;
  const block_q8_0 *x = vx;
  float sum = 0;
  for (int64_t b = 0; b < nb; b++) {
    int s = 0;
    for (int j = 0; j < QK; j++) s += w[b].qs[j] * x[b].qs[j];
    sum += (float)s * (h2f(w[b].d) * h2f(x[b].d));
  }
  return sum;
}

float PSI_IMPL(psi_ref_dot_mxfp4)(const void *vw, const void *vx, int64_t nb) {
  const block_mxfp4 *w = vw;
  const block_q8_0 *x = vx;
  float sum = 0;
  for (int64_t b = 0; b < nb; b++) {
    const float d = h2f(x[b].d) * psi_e8m0_half_to_float(w[b].e);
    int s0 = 0, s1 = 0;
    for (int j = 0; j < 16; j++) {
      s0 += x[b].qs[j] * psi_mxfp4_values[w[b].qs[j] & 0xF];
      s1 += x[b].qs[j + 16] * psi_mxfp4_values[w[b].qs[j] >> 4];
    }
    sum += d * (float)(s0 + s1);
  }
  return sum;
}

/* The K-quant references keep ggml's eight lane sums: value l of a super-block
 * lands in lane l % 8, each lane is scaled in float per super-block, and the
 * lanes are added at the very end. */
#define LANES 8

float PSI_IMPL(psi_ref_dot_q2_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q2_K *w = vw;
  const block_q8_K *x = vx;
  float sum = 0;
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t *sc = w[b].scales;
    int mins = 0;
    for (int j = 0; j < 16; j++) mins += x[b].bsums[j] * (sc[j] >> 4);
    const float dall = x[b].d * h2f(w[b].d);
    const float dmin = x[b].d * h2f(w[b].dmin);
    int isum = 0;
    /* Value 128*half + 32*shift_index + l comes from qs[32*half + l] >> (2*shift_index); scale per 16 values. */
    for (int half = 0; half < 2; half++)
      for (int k = 0; k < 4; k++)
        for (int part = 0; part < 2; part++) {
          const int scale = sc[half * 8 + k * 2 + part] & 0xF;
          const int8_t *q8 = x[b].qs + half * 128 + k * 32 + part * 16;
          const uint8_t *q2 = w[b].qs + half * 32 + part * 16;
          int s = 0;
          for (int l = 0; l < 16; l++) s += q8[l] * ((q2[l] >> (2 * k)) & 3);
          isum += scale * s;
        }
    sum += dall * (float)isum - dmin * (float)mins;
  }
  return sum;
}

float PSI_IMPL(psi_ref_dot_q3_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q3_K *w = vw;
  const block_q8_K *x = vx;
  float lanes[LANES] = {0};
  for (int64_t b = 0; b < nb; b++) {
    int8_t scales[16];
    psi_q3_K_scales(w[b].scales, scales);
    int32_t acc[LANES] = {0};
    for (int v = 0; v < QK_K; v++) {
      /* value v: 2-bit field (v/32)%4 of qs[32*(v/128) + v%32], high bit (v/32) of hmask[v%32] */
      const int low = (w[b].qs[32 * (v / 128) + v % 32] >> (2 * ((v / 32) % 4))) & 3;
      const int high = (w[b].hmask[v % 32] >> (v / 32)) & 1;
      acc[v % LANES] += scales[v / 16] * (x[b].qs[v] * (low - (high ? 0 : 4)));
    }
    const float d = h2f(w[b].d) * x[b].d;
    for (int l = 0; l < LANES; l++) lanes[l] += d * (float)acc[l];
  }
  float sum = 0;
  for (int l = 0; l < LANES; l++) sum += lanes[l];
  return sum;
}

/* Q4_K and Q5_K share everything but the fifth bit. */
static float dot_q45_K(const uint8_t *scales12, const uint8_t *qs, const uint8_t *qh, uint16_t d, uint16_t dmin,
                       const block_q8_K *x, float lanes[LANES]) {
  uint8_t scale[8], min[8];
  for (int j = 0; j < 8; j++) psi_kquant_scale_min(j, scales12, &scale[j], &min[j]);
  int mins = 0;
  for (int j = 0; j < QK_K / 16; j++) mins += x->bsums[j] * min[j / 2];
  int32_t acc[LANES] = {0};
  for (int v = 0; v < QK_K; v++) {
    /* value v: nibble (v/32)%2 of qs[32*(v/64) + v%32]; fifth bit (v/32) of qh[v%32] */
    int q = (qs[32 * (v / 64) + v % 32] >> (4 * ((v / 32) % 2))) & 0xF;
    if (qh) q += ((qh[v % 32] >> (v / 32)) & 1) << 4;
    acc[v % LANES] += scale[v / 32] * (x->qs[v] * q);
  }
  const float dd = h2f(d) * x->d;
  for (int l = 0; l < LANES; l++) lanes[l] += dd * (float)acc[l];
  return h2f(dmin) * x->d * (float)mins;
}

float PSI_IMPL(psi_ref_dot_q4_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q4_K *w = vw;
  const block_q8_K *x = vx;
  float lanes[LANES] = {0}, sum = 0;
  for (int64_t b = 0; b < nb; b++) sum -= dot_q45_K(w[b].scales, w[b].qs, NULL, w[b].d, w[b].dmin, &x[b], lanes);
  for (int l = 0; l < LANES; l++) sum += lanes[l];
  return sum;
}

float PSI_IMPL(psi_ref_dot_q5_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q5_K *w = vw;
  const block_q8_K *x = vx;
  float lanes[LANES] = {0}, sum = 0;
  for (int64_t b = 0; b < nb; b++) sum -= dot_q45_K(w[b].scales, w[b].qs, w[b].qh, w[b].d, w[b].dmin, &x[b], lanes);
  for (int l = 0; l < LANES; l++) sum += lanes[l];
  return sum;
}

float PSI_IMPL(psi_ref_dot_q6_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q6_K *w = vw;
  const block_q8_K *x = vx;
  float lanes[LANES] = {0};
  for (int64_t b = 0; b < nb; b++) {
    int32_t acc[LANES] = {0};
    for (int v = 0; v < QK_K; v++) {
      /* value v = 128*h + 32*k + l: low nibble (k/2) of ql[64*h + 32*(k%2) + l], 2 bits k of qh[32*h + l] */
      const int h = v / 128, k = (v % 128) / 32, l = v % 32;
      const int low = (w[b].ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
      const int high = (w[b].qh[32 * h + l] >> (2 * k)) & 3;
      acc[v % LANES] += w[b].scales[v / 16] * (x[b].qs[v] * ((low | (high << 4)) - 32));
    }
    const float d = h2f(w[b].d) * x[b].d;
    for (int l = 0; l < LANES; l++) lanes[l] += d * (float)acc[l];
  }
  float sum = 0;
  for (int l = 0; l < LANES; l++) sum += lanes[l];
  return sum;
}

/* Float weights: products in float, summed in double (ggml's ggml_float). */
float PSI_IMPL(psi_ref_dot_f32)(const void *vw, const void *vx, int64_t n) {
  const float *w = vw, *x = vx;
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += (double)(w[i] * x[i]);
  return (float)sum;
}

float PSI_IMPL(psi_ref_dot_f16)(const void *vw, const void *vx, int64_t n) {
  const uint16_t *w = vw, *x = vx;
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += (double)(h2f(w[i]) * h2f(x[i]));
  return (float)sum;
}

static inline float bf2f(uint16_t h) { return psi_float_of_bits((uint32_t)h << 16); }

float PSI_IMPL(psi_ref_dot_bf16)(const void *vw, const void *vx, int64_t n) {
  const uint16_t *w = vw, *x = vx;
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += (double)(bf2f(w[i]) * bf2f(x[i]));
  return (float)sum;
}
