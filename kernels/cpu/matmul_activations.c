/* Activation quantizers for the matrix products (see matmul.h).
 *   x is n floats (n a whole number of blocks); dst receives n/32 (Q8_0, Q8_1)
 *   or n/256 (Q8_K) blocks, or n halves (F16, BF16).
 * Written as scalar C in every variant: they touch each activation once per
 * matmul, which is small next to the product itself, and one plain version is
 * easier to keep bit-identical to ggml. */
#include "matmul.h"

/* ggml's x86 Q8_0 path: amax over the block, d = amax/127 stored as fp16,
 * q = round-half-even(x * (127/amax)). */
static float quantize_block_q8(const float *x, int8_t *qs, int *sum) {
  float amax = 0.0f;
  for (int j = 0; j < QK; j++) {
    float a = __builtin_fabsf(x[j]);
    amax = a > amax ? a : amax;
  }
  const float d = amax / 127.f;
  const float id = amax != 0.0f ? 127.f / amax : 0.0f;
  int total = 0;
  for (int j = 0; j < QK; j++) {
    int q = psi_nearest_int(x[j] * id);
    q = q > 127 ? 127 : q < -128 ? -128 : q; /* the SIMD pack saturates the same way */
    qs[j] = (int8_t)q;
    total += q;
  }
  *sum = total;
  return d;
}

void PSI_IMPL(psi_act_q8_0)(const float *x, void *dst, int64_t n) {
  block_q8_0 *y = dst;
  for (int64_t i = 0; i < n / QK; i++) {
    int sum;
    y[i].d = psi_float_to_half(quantize_block_q8(x + i * QK, y[i].qs, &sum));
  }
}

void PSI_IMPL(psi_act_q8_1)(const float *x, void *dst, int64_t n) {
  block_q8_1 *y = dst;
  for (int64_t i = 0; i < n / QK; i++) {
    int sum;
    const float d = quantize_block_q8(x + i * QK, y[i].qs, &sum);
    y[i].d = psi_float_to_half(d);
    y[i].s = psi_float_to_half(d * (float)sum);
  }
}

/* ggml's quantize_row_q8_K_ref (its x86 build uses the reference): the scale
 * comes from the value of largest magnitude (first one on ties), signed, so
 * that value maps to -127. */
void PSI_IMPL(psi_act_q8_K)(const float *x, void *dst, int64_t n) {
  block_q8_K *y = dst;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    float max = 0, amax = 0;
    for (int j = 0; j < QK_K; j++) {
      float a = __builtin_fabsf(x[j]);
      if (a > amax) { amax = a; max = x[j]; }
    }
    if (amax == 0.0f) {
      memset(&y[i], 0, sizeof(y[i]));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; j++) {
      int v = psi_nearest_int(iscale * x[j]);
      y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int j = 0; j < QK_K / 16; j++) {
      int sum = 0;
      for (int k = 0; k < 16; k++) sum += y[i].qs[j * 16 + k];
      y[i].bsums[j] = (int16_t)sum;
    }
    y[i].d = 1 / iscale;
  }
}

void PSI_IMPL(psi_act_f16)(const float *x, void *dst, int64_t n) {
  uint16_t *y = dst;
  for (int64_t i = 0; i < n; i++) y[i] = psi_float_to_half(x[i]);
}

void PSI_IMPL(psi_act_bf16)(const float *x, void *dst, int64_t n) {
  uint16_t *y = dst;
  for (int64_t i = 0; i < n; i++) y[i] = psi_float_to_bf16(x[i]);
}
