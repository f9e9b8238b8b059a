/* Plain reference dot products: one weight row of nb blocks against one
 * quantized activation row, in the summation order llama.cpp's CPU backend
 * uses on an x86 machine with AMX (docs/PARITY.md §3):
 *   - Q8_0, Q4_0, Q4_1, MXFP4, Q4_K, Q5_K, Q6_K ("sequential fma", ggml's AMX
 *     and mxfp4_8x8 repack kernels): one float accumulator, one fmaf per block
 *     of the exact integer block dot times d_w*d_x, blocks in K order (Q4_1
 *     adds a second fmaf for the block minimum, Q4_K/Q5_K one for the mins);
 *   - Q2_K (the q2_K_8x8 repack gemv): the same with the mins in a second
 *     accumulator, subtracted at the end;
 *   - Q5_0, Q5_1, Q3_K (plain CPU buffer, ggml_vec_dot_*): ggml's vec_dot order;
 *   - expert products (MUL_MAT_ID, which AMX does not take): Q8_0, Q5_0, Q4_1
 *     and Q5_K in their vec_dot order (*_lanes), Q3_K in its dense one, BF16 in the one-token
 *     order at every batch size, Q4_K in the q4_K_8x8 gemv's (q4_K_8x8);
 *   - F16 (AMX): F32 activations, 16 lanes of fmaf, GCC's 16-lane tree sum;
 *   - F32: ggml_vec_dot_f32 for one token, llamafile's tinyBLAS for batches;
 *   - BF16 (plain CPU buffer, BF16 activations): ggml_vec_dot_bf16 for one
 *     token, llamafile's tinyBLAS for batches.
 * Integer sums per block are exact, so only the float steps above decide the bits.
 * quant.h turns off FMA contraction, so the avx2/avx512 builds of this file
 * round exactly as the portable one does. */
#include <math.h>
#include "matmul.h"

static inline float h2f(uint16_t h) { return psi_half_to_float(h); }

float PSI_IMPL(psi_ref_dot_q4_0)(const void *vw, const void *vx, int64_t nb) {
  const block_q4_0 *w = vw;
  const block_q8_0 *x = vx;
  float acc = 0;
  for (int64_t b = 0; b < nb; b++) {
    int isum = 0;
    for (int j = 0; j < 16; j++) isum += ((w[b].qs[j] & 0xF) - 8) * x[b].qs[j] + ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
    acc = fmaf((float)isum, h2f(w[b].d) * h2f(x[b].d), acc);
  }
  return acc;
}

float PSI_IMPL(psi_ref_dot_q4_1)(const void *vw, const void *vx, int64_t nb) {
  const block_q4_1 *w = vw;
  const block_q8_1 *x = vx;
  float acc = 0;
  for (int64_t b = 0; b < nb; b++) {
    int isum = 0;
    for (int j = 0; j < 16; j++) isum += (w[b].qs[j] & 0xF) * x[b].qs[j] + (w[b].qs[j] >> 4) * x[b].qs[j + 16];
    acc = fmaf((float)isum, h2f(w[b].d) * h2f(x[b].d), acc);
    acc = fmaf(h2f(w[b].m), h2f(x[b].s), acc);
  }
  return acc;
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
  float acc = 0;
  for (int64_t b = 0; b < nb; b++) {
    int isum = 0;
    for (int j = 0; j < QK; j++) isum += w[b].qs[j] * x[b].qs[j];
    acc = fmaf((float)isum, h2f(w[b].d) * h2f(x[b].d), acc);
  }
  return acc;
}

/* ggml_vec_dot_q8_0_q8_0's and ggml_vec_dot_q5_0_q8_0's order, which llama.cpp
 * takes for Q8_0 and Q5_0 expert products (MUL_MAT_ID in a plain CPU buffer):
 * 8 float lanes, lane l takes the exact sum of values 4l..4l+3 of each block
 * (w[] the block's signed values) by one fmaf with d_w*d_x; then
 * hsum_float_8, r_i = l_{i+4} + l_i, then (r_0 + r_2) + (r_1 + r_3). */
static void lanes_add_block(float lanes[8], const int8_t w[QK], const int8_t x[QK], float d) {
  for (int l = 0; l < 8; l++) {
    int p = 0;
    for (int j = 4 * l; j < 4 * l + 4; j++) p += w[j] * x[j];
    lanes[l] = fmaf(d, (float)p, lanes[l]);
  }
}

static float lanes_sum(const float lanes[8]) {
  float r[4];
  for (int i = 0; i < 4; i++) r[i] = lanes[i + 4] + lanes[i];
  return (r[0] + r[2]) + (r[1] + r[3]);
}

float PSI_IMPL(psi_ref_dot_q8_0_lanes)(const void *vw, const void *vx, int64_t nb) {
  const block_q8_0 *w = vw;
  const block_q8_0 *x = vx;
  float lanes[8] = {0};
  for (int64_t b = 0; b < nb; b++) lanes_add_block(lanes, w[b].qs, x[b].qs, h2f(w[b].d) * h2f(x[b].d));
  return lanes_sum(lanes);
}

float PSI_IMPL(psi_ref_dot_q5_0_lanes)(const void *vw, const void *vx, int64_t nb) {
  const block_q5_0 *w = vw;
  const block_q8_0 *x = vx;
  float lanes[8] = {0};
  for (int64_t b = 0; b < nb; b++) {
    uint32_t qh;
    memcpy(&qh, w[b].qh, 4);
    int8_t v[QK];
    for (int j = 0; j < 16; j++) {
      v[j] = (int8_t)((int)((w[b].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16);
      v[j + 16] = (int8_t)((int)((w[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
    }
    lanes_add_block(lanes, v, x[b].qs, h2f(w[b].d) * h2f(x[b].d));
  }
  return lanes_sum(lanes);
}

/* ggml_vec_dot_q4_1_q8_1's order (Q4_1 expert products): the 8 lanes above on
 * the unsigned nibbles, and the block minimums m_w*s_x summed on their own (a
 * product of two fp16 values, exact in float), added after the lanes. */
float PSI_IMPL(psi_ref_dot_q4_1_lanes)(const void *vw, const void *vx, int64_t nb) {
  const block_q4_1 *w = vw;
  const block_q8_1 *x = vx;
  float lanes[8] = {0}, minimums = 0;
  for (int64_t b = 0; b < nb; b++) {
    int8_t v[QK];
    for (int j = 0; j < 16; j++) {
      v[j] = (int8_t)(w[b].qs[j] & 0xF);
      v[j + 16] = (int8_t)(w[b].qs[j] >> 4);
    }
    minimums += h2f(w[b].m) * h2f(x[b].s);
    lanes_add_block(lanes, v, x[b].qs, h2f(w[b].d) * h2f(x[b].d));
  }
  return lanes_sum(lanes) + minimums;
}

/* The doubled E2M1 values with half the E8M0 scale, as ggml's mxfp4 kernels. */
float PSI_IMPL(psi_ref_dot_mxfp4)(const void *vw, const void *vx, int64_t nb) {
  const block_mxfp4 *w = vw;
  const block_q8_0 *x = vx;
  float acc = 0;
  for (int64_t b = 0; b < nb; b++) {
    int isum = 0;
    for (int j = 0; j < 16; j++) isum += x[b].qs[j] * psi_mxfp4_values[w[b].qs[j] & 0xF] + x[b].qs[j + 16] * psi_mxfp4_values[w[b].qs[j] >> 4];
    acc = fmaf((float)isum, psi_e8m0_half_to_float(w[b].e) * h2f(x[b].d), acc);
  }
  return acc;
}

/* Q2_K: ggml_gemv_q2_K_8x8_q8_K's two accumulators, scales and mins. */
float PSI_IMPL(psi_ref_dot_q2_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q2_K *w = vw;
  const block_q8_K *x = vx;
  float acc = 0, acc_min = 0;
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t *sc = w[b].scales;
    int isum = 0, imin = 0;
    for (int g = 0; g < 16; g++) {
      /* value 16g + l (l < 16) is 2-bit field (v%128)/32 of qs[32*(v/128) + v%32], v = 16g + l */
      int s = 0;
      for (int l = 0; l < 16; l++) {
        const int v = 16 * g + l;
        s += x[b].qs[v] * ((w[b].qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3);
      }
      isum += (sc[g] & 0xF) * s;
      imin += (sc[g] >> 4) * x[b].bsums[g];
    }
    acc = fmaf((float)isum, h2f(w[b].d) * x[b].d, acc);
    acc_min = fmaf((float)imin, h2f(w[b].dmin) * x[b].d, acc_min);
  }
  return acc - acc_min;
}

/* Q3_K (plain CPU buffer, dense and expert products alike):
 * ggml_vec_dot_q3_K_q8_K's order: per super-block 8
 * int32 lanes, lane l = sum over the 8 chunks c of 32 values of
 * scale_{2c + l/4} times values 32c+4l..32c+4l+3 (exact, values in -4..3),
 * one fmaf per lane with d_w*d_x; hsum_float_8 at the end. */
float PSI_IMPL(psi_ref_dot_q3_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q3_K *w = vw;
  const block_q8_K *x = vx;
  float lanes[8] = {0};
  for (int64_t b = 0; b < nb; b++) {
    int8_t scales[16];
    psi_q3_K_scales(w[b].scales, scales);
    int32_t isum[8] = {0};
    for (int c = 0; c < 8; c++)
      for (int l = 0; l < 8; l++) {
        int s = 0;
        for (int j = 4 * l; j < 4 * l + 4; j++) {
          const int v = 32 * c + j; /* as psi_ref_dot_q3_K */
          const int low = (w[b].qs[32 * (v / 128) + v % 32] >> (2 * ((v / 32) % 4))) & 3;
          const int high = (w[b].hmask[v % 32] >> (v / 32)) & 1;
          s += x[b].qs[v] * (low - (high ? 0 : 4));
        }
        isum[l] += scales[2 * c + l / 4] * s;
      }
    const float d = h2f(w[b].d) * x[b].d;
    for (int l = 0; l < 8; l++) lanes[l] = fmaf(d, (float)isum[l], lanes[l]);
  }
  return lanes_sum(lanes);
}

/* One Q4_K/Q5_K super-block's exact integer sums (they differ only in the
 * fifth bit, qh NULL for Q4_K): the scaled sum of value*activation and the
 * mins term sum_g min_g*(bsum_2g + bsum_2g+1). */
static void q45_K_sums(const uint8_t *scales12, const uint8_t *qs, const uint8_t *qh, const block_q8_K *x, int *isum, int *imin) {
  *isum = 0, *imin = 0;
  for (int g = 0; g < 8; g++) {
    uint8_t scale, min;
    psi_kquant_scale_min(g, scales12, &scale, &min);
    int s = 0;
    for (int l = 0; l < 32; l++) {
      /* value 32g + l: nibble g%2 of qs[32*(g/2) + l]; fifth bit g of qh[l] */
      int q = (qs[32 * (g / 2) + l] >> (4 * (g % 2))) & 0xF;
      if (qh) q += ((qh[l] >> g) & 1) << 4;
      s += x->qs[32 * g + l] * q;
    }
    *isum += scale * s;
    *imin += min * (x->bsums[2 * g] + x->bsums[2 * g + 1]);
  }
}

/* Q4_K and Q5_K on AMX: per super-block the scaled sum and the mins term,
 * each one fmaf into the same accumulator. */
static float dot_q45_K(const uint8_t *scales12, const uint8_t *qs, const uint8_t *qh, uint16_t d, uint16_t dmin,
                       const block_q8_K *x, float acc) {
  int isum, imin;
  q45_K_sums(scales12, qs, qh, x, &isum, &imin);
  acc = fmaf((float)isum, h2f(d) * x->d, acc);
  return fmaf(-(float)imin, h2f(dmin) * x->d, acc);
}

float PSI_IMPL(psi_ref_dot_q4_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q4_K *w = vw;
  const block_q8_K *x = vx;
  float acc = 0;
  for (int64_t b = 0; b < nb; b++) acc = dot_q45_K(w[b].scales, w[b].qs, NULL, w[b].d, w[b].dmin, &x[b], acc);
  return acc;
}

/* Q4_K in ggml_gemv_q4_K_8x8_q8_K's order (llama.cpp's Q4_K expert products:
 * MUL_MAT_ID in the CPU_REPACK buffer, one routed row at a time): the scaled
 * sums and the mins terms in two accumulators, subtracted at the end. */
float PSI_IMPL(psi_ref_dot_q4_K_8x8)(const void *vw, const void *vx, int64_t nb) {
  const block_q4_K *w = vw;
  const block_q8_K *x = vx;
  float acc = 0, acc_min = 0;
  for (int64_t b = 0; b < nb; b++) {
    int isum, imin;
    q45_K_sums(w[b].scales, w[b].qs, NULL, &x[b], &isum, &imin);
    acc = fmaf((float)isum, h2f(w[b].d) * x[b].d, acc);
    acc_min = fmaf((float)imin, h2f(w[b].dmin) * x[b].d, acc_min);
  }
  return acc - acc_min;
}

/* ggml_vec_dot_q5_K_q8_K's order (Q5_K expert products): per super-block 8
 * int32 lanes, lane l = sum over the 8 groups g of scale_g times values
 * 32g+4l..32g+4l+3 (exact), one fmaf per lane with d_w*d_x; the mins term,
 * -dmin_w*d_x times sum_g min_g*(bsum_2g + bsum_2g+1), in a scalar by fmaf
 * (GCC contracts ggml's `summs += dmin * imin`); hsum_float_8 of the lanes,
 * plus that scalar. */
float PSI_IMPL(psi_ref_dot_q5_K_lanes)(const void *vw, const void *vx, int64_t nb) {
  const block_q5_K *w = vw;
  const block_q8_K *x = vx;
  float lanes[8] = {0}, minimums = 0;
  for (int64_t b = 0; b < nb; b++) {
    int32_t isum[8] = {0};
    int imin = 0;
    for (int g = 0; g < 8; g++) {
      uint8_t scale, min;
      psi_kquant_scale_min(g, w[b].scales, &scale, &min);
      for (int l = 0; l < 8; l++) {
        int s = 0;
        for (int j = 4 * l; j < 4 * l + 4; j++) {
          const int q = ((w[b].qs[32 * (g / 2) + j] >> (4 * (g % 2))) & 0xF) | (((w[b].qh[j] >> g) & 1) << 4);
          s += q * x[b].qs[32 * g + j];
        }
        isum[l] += scale * s;
      }
      imin += min * (x[b].bsums[2 * g] + x[b].bsums[2 * g + 1]);
    }
    const float d = h2f(w[b].d) * x[b].d;
    for (int l = 0; l < 8; l++) lanes[l] = fmaf(d, (float)isum[l], lanes[l]);
    minimums = fmaf(-h2f(w[b].dmin) * x[b].d, (float)imin, minimums);
  }
  return lanes_sum(lanes) + minimums;
}

float PSI_IMPL(psi_ref_dot_q5_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q5_K *w = vw;
  const block_q8_K *x = vx;
  float acc = 0;
  for (int64_t b = 0; b < nb; b++) acc = dot_q45_K(w[b].scales, w[b].qs, w[b].qh, w[b].d, w[b].dmin, &x[b], acc);
  return acc;
}

float PSI_IMPL(psi_ref_dot_q6_K)(const void *vw, const void *vx, int64_t nb) {
  const block_q6_K *w = vw;
  const block_q8_K *x = vx;
  float acc = 0;
  for (int64_t b = 0; b < nb; b++) {
    int isum = 0;
    for (int g = 0; g < 16; g++) {
      int s = 0;
      for (int i = 0; i < 16; i++) {
        /* value v = 128*h + 32*k + l: low nibble (k/2) of ql[64*h + 32*(k%2) + l], 2 bits k of qh[32*h + l] */
        const int v = 16 * g + i, h = v / 128, k = (v % 128) / 32, l = v % 32;
        const int low = (w[b].ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
        const int high = (w[b].qh[32 * h + l] >> (2 * k)) & 3;
        s += x[b].qs[v] * ((low | (high << 4)) - 32);
      }
      isum += w[b].scales[g] * s;
    }
    acc = fmaf((float)isum, h2f(w[b].d) * x[b].d, acc);
  }
  return acc;
}

/* GCC's _mm512_reduce_add_ps: halves, then quarters, then (2+0)+(3+1). */
float PSI_IMPL(psi_sum16)(const float l[16]) {
  float s8[8], s4[4];
  for (int i = 0; i < 8; i++) s8[i] = l[i + 8] + l[i];
  for (int i = 0; i < 4; i++) s4[i] = s8[i + 4] + s8[i];
  return (s4[2] + s4[0]) + (s4[3] + s4[1]);
}

/* F32, one token: ggml_vec_dot_f32 (4 accumulators of 16 lanes over 64-value
 * steps, folded 0+2, 1+3, then 0+1, summed as 16 lanes; the tail after). */
float PSI_IMPL(psi_ref_dot_f32)(const void *vw, const void *vx, int64_t n) {
  const float *w = vw, *x = vx;
  float lanes[4][16] = {{0}};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 4; j++)
      for (int l = 0; l < 16; l++) lanes[j][l] = fmaf(x[i + 16 * j + l], w[i + 16 * j + l], lanes[j][l]);
  for (int l = 0; l < 16; l++) lanes[0][l] = (lanes[0][l] + lanes[2][l]) + (lanes[1][l] + lanes[3][l]);
  float sum = PSI_IMPL(psi_sum16)(lanes[0]);
  for (; i < n; i++) sum += x[i] * w[i];
  return sum;
}

/* F32, batches: llamafile's tinyBLAS (one accumulator, lane l takes k = l mod 16).
 * F16 (AMX, F32 activations): the same order on the widened weights. */
#define DOT16(name, load)                                                                \
  float PSI_IMPL(name)(const void *vw, const void *vx, int64_t n) {                      \
    const float *x = vx;                                                                 \
    float lanes[16] = {0};                                                               \
    int64_t i = 0;                                                                       \
    for (; i + 16 <= n; i += 16)                                                         \
      for (int l = 0; l < 16; l++) lanes[l] = fmaf(load(vw, i + l), x[i + l], lanes[l]); \
    float sum = PSI_IMPL(psi_sum16)(lanes);                                              \
    for (; i < n; i++) sum += load(vw, i) * x[i];                                        \
    return sum;                                                                          \
  }
static inline float load_f32(const void *w, int64_t i) { return ((const float *)w)[i]; }
static inline float load_f16(const void *w, int64_t i) { return h2f(((const uint16_t *)w)[i]); }
DOT16(psi_ref_dot_f32_batch, load_f32)
DOT16(psi_ref_dot_f16, load_f16)

static inline float bf2f(uint16_t h) { return psi_float_of_bits((uint32_t)h << 16); }


/* BF16 (BF16-rounded activations), one token, and BF16 expert products at
 * every batch size: ggml_vec_dot_bf16's order on an AVX512-BF16 machine: vdpbf16ps over steps of 64 values, the first 32
 * into accumulator c[0], the next 32 into c[1]; lane j of an accumulator takes
 * the pair (2j, 2j+1) of its 32 values, the odd one first, each product exact
 * in float and each addition rounded. Then, in double, GCC's 16-lane tree sum
 * of c[0] plus that of c[1], plus the values past the last whole 64 one by one;
 * rounded to float at the end. (vdpbf16ps also flushes denormal inputs and
 * results to zero, which this and the AVX2 tile do not: they part only where a
 * value or partial sum is below 2^-126 in magnitude.) */
float PSI_IMPL(psi_ref_dot_bf16)(const void *vw, const void *vx, int64_t n) {
  const uint16_t *w = vw, *x = vx;
  float c[2][16] = {{0}};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int h = 0; h < 2; h++)
      for (int j = 0; j < 16; j++) {
        const int64_t k = i + 32 * h + 2 * j;
        c[h][j] = c[h][j] + bf2f(w[k + 1]) * bf2f(x[k + 1]);
        c[h][j] = c[h][j] + bf2f(w[k]) * bf2f(x[k]);
      }
  double sum = (double)PSI_IMPL(psi_sum16)(c[0]);
  sum += (double)PSI_IMPL(psi_sum16)(c[1]);
  for (; i < n; i++) sum += (double)(bf2f(w[i]) * bf2f(x[i]));
  return (float)sum;
}

/* BF16, more than one token: llamafile's tinyBLAS<32, __m512, __m512bh> (K a
 * multiple of 32; otherwise ggml falls back to ggml_vec_dot_bf16): one
 * 16-lane accumulator over 32-value steps, lane j taking pair (2j, 2j+1) as
 * vdpbf16ps does (odd value first), then GCC's 16-lane tree sum in float. */
float PSI_IMPL(psi_ref_dot_bf16_batch)(const void *vw, const void *vx, int64_t n) {
  if (n % 32 != 0) return PSI_IMPL(psi_ref_dot_bf16)(vw, vx, n);
  const uint16_t *w = vw, *x = vx;
  float c[16] = {0};
  for (int64_t i = 0; i < n; i += 32)
    for (int j = 0; j < 16; j++) {
      const int64_t k = i + 2 * j;
      c[j] = c[j] + bf2f(w[k + 1]) * bf2f(x[k + 1]);
      c[j] = c[j] + bf2f(w[k]) * bf2f(x[k]);
    }
  return PSI_IMPL(psi_sum16)(c);
}
