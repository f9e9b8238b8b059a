/* Tensor type codecs shared by kernels/cpu/quant_*.c: ggml block layouts
 * (sizes checked at compile time), the scalar fp16/bf16/e8m0 conversions, and
 * the per-type row functions psi_dequantize_row / psi_quantize_row dispatch to.
 *
 * Results must match ggml bit for bit, so float arithmetic here is plain
 * IEEE single precision in source order: no FMA contraction (the avx2/avx512
 * builds would otherwise fuse a*b+c), no reassociation. */
#ifndef PSI_QUANT_H
#define PSI_QUANT_H

#if defined(__clang__)
#pragma clang fp contract(off)
#else
#pragma GCC optimize("fp-contract=off")
#endif

#include <stdint.h>
#include <string.h>
#include "psi.h"

/* Status codes returned to TypeScript (src/gguf/quant/codecs.ts names them). */
#define PSI_QUANT_OK 0
#define PSI_QUANT_UNSUPPORTED_TYPE (-1)
#define PSI_QUANT_PARTIAL_BLOCK (-2)
#define PSI_QUANT_NON_FINITE (-3)

/* ggml type ids (ggml.h enum ggml_type). */
enum {
  PSI_F32 = 0, PSI_F16 = 1, PSI_Q4_0 = 2, PSI_Q4_1 = 3, PSI_Q5_0 = 6, PSI_Q5_1 = 7, PSI_Q8_0 = 8,
  PSI_Q2_K = 10, PSI_Q3_K = 11, PSI_Q4_K = 12, PSI_Q5_K = 13, PSI_Q6_K = 14, PSI_BF16 = 30, PSI_MXFP4 = 39,
};

#define QK 32   /* values per legacy / MXFP4 block */
#define QK_K 256 /* values per K-quant super-block */

typedef struct { uint16_t d; uint8_t qs[16]; } block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } block_q8_0;
typedef struct { uint8_t e; uint8_t qs[16]; } block_mxfp4;
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } block_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } block_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } block_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } block_q6_K;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 block is 18 bytes");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 block is 20 bytes");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 block is 22 bytes");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 block is 24 bytes");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 block is 34 bytes");
_Static_assert(sizeof(block_mxfp4) == 17, "mxfp4 block is 17 bytes");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K block is 84 bytes");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K block is 110 bytes");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K block is 144 bytes");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K block is 176 bytes");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K block is 210 bytes");

/* MXFP4 codes: E2M1 values doubled so they are integers. */
static const int8_t psi_mxfp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static inline float psi_float_of_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t psi_bits_of_float(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* fp16 -> fp32, exact; NaNs keep their payload and become quiet (as F16C does). */
static inline float psi_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  if (exponent == 0x1f) return psi_float_of_bits(sign | 0x7f800000u | (mantissa ? 0x400000u | (mantissa << 13) : 0));
  if (exponent != 0) return psi_float_of_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
  /* Subnormal (or zero): mantissa * 2^-24 is exact in float32. */
  return psi_float_of_bits(sign | psi_bits_of_float((float)mantissa * 0x1p-24f));
}

/* fp32 -> fp16, round to nearest even, overflow to inf, NaN -> 0x7E00 (sign kept).
 * Scaling by 2^112 then 2^-110 lets one float addition do the rounding, which
 * is how ggml's portable conversion gets the same bits. */
static inline uint16_t psi_float_to_half(float f) {
  uint32_t w = psi_bits_of_float(f), shl1 = w + w, sign = w & 0x80000000u;
  if (shl1 > 0xff000000u) return (uint16_t)((sign >> 16) | 0x7e00);
  float base = (__builtin_fabsf(f) * 0x1p+112f) * 0x1p-110f;
  uint32_t bias = shl1 & 0xff000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = psi_float_of_bits((bias >> 1) + 0x07800000u) + base;
  uint32_t bits = psi_bits_of_float(base);
  return (uint16_t)((sign >> 16) | (((bits >> 13) & 0x7c00) + (bits & 0x0fff)));
}

/* fp32 -> bf16, round to nearest even; NaN keeps its top bits and is made quiet. */
static inline uint16_t psi_float_to_bf16(float f) {
  uint32_t u = psi_bits_of_float(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
  return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

/* 2^(e-128): half the e8m0 scale (the MXFP4 codes are doubled); e = 0, 1 give subnormals. */
static inline float psi_e8m0_half_to_float(uint8_t e) {
  return psi_float_of_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
}

/* ggml's round-to-nearest: add 1.5 * 2^23 and read the mantissa (ties to even). */
static inline int psi_nearest_int(float v) {
  float shifted = v + 12582912.f;
  int32_t i; memcpy(&i, &shifted, 4);
  return (i & 0x007fffff) - 0x00400000;
}

/* Per-type rows: decode n values from blocks, or encode n values into blocks.
 * n is a whole number of blocks and the input is finite (checked by the caller). */
#define PSI_ROW_CODEC(type) \
  void PSI_IMPL(psi_decode_##type)(const void *src, float *dst, int64_t n); \
  void PSI_IMPL(psi_encode_##type)(const float *src, void *dst, int64_t n);
PSI_ROW_CODEC(f16) PSI_ROW_CODEC(bf16)
PSI_ROW_CODEC(q4_0) PSI_ROW_CODEC(q4_1) PSI_ROW_CODEC(q5_0) PSI_ROW_CODEC(q5_1) PSI_ROW_CODEC(q8_0) PSI_ROW_CODEC(mxfp4)
PSI_ROW_CODEC(q2_K) PSI_ROW_CODEC(q3_K) PSI_ROW_CODEC(q4_K) PSI_ROW_CODEC(q5_K) PSI_ROW_CODEC(q6_K)
#undef PSI_ROW_CODEC

#endif
