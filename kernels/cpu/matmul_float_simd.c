/* Fast tiles for float weights (F32, F16, BF16): one weight row against up to
 * PSI_TILE_TOKENS tokens. nb is the row length in values.
 *   F32, F16: F32 activation rows; llama.cpp's orders (matmul_reference.c):
 *     tile_f32        one token, ggml_vec_dot_f32: 4 x 16 lanes per 64 values
 *     tile_f32_batch  llamafile's tinyBLAS: 16 lanes, lane l takes k = l mod 16
 *     tile_f16        ggml's AMX F16 kernel: the same 16 lanes on widened weights
 *   each ends in the 16-lane tree sum of psi_sum16, then a scalar tail.
 *   BF16: BF16 activation rows, vdpbf16ps's pairs (the instruction itself in
 *     AVX512-BF16 builds, two fmas per lane elsewhere):
 *     tile_bf16        one token (and expert products), ggml_vec_dot_bf16: two 16-lane accumulators
 *     tile_bf16_batch  llamafile's tinyBLAS: one 16-lane accumulator
 * AVX2 builds hold 16 lanes as two ymm (lanes 0-7, 8-15). */
#include "matmul.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "matmul_simd.h"

/* 16 float lanes. */
#if defined(__AVX512F__)
typedef __m512 lanes16;
PSI_ALWAYS_INLINE lanes16 zero16(void) { return _mm512_setzero_ps(); }
PSI_ALWAYS_INLINE lanes16 load16_f32(const float *p) { return _mm512_loadu_ps(p); }
PSI_ALWAYS_INLINE lanes16 load16_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
PSI_ALWAYS_INLINE lanes16 fma16(lanes16 a, lanes16 b, lanes16 c) { return _mm512_fmadd_ps(a, b, c); }
PSI_ALWAYS_INLINE lanes16 add16(lanes16 a, lanes16 b) { return _mm512_add_ps(a, b); }
PSI_ALWAYS_INLINE float sum16(lanes16 a) { return _mm512_reduce_add_ps(a); }
#else
typedef struct { __m256 lo, hi; } lanes16;
PSI_ALWAYS_INLINE lanes16 zero16(void) { return (lanes16){_mm256_setzero_ps(), _mm256_setzero_ps()}; }
PSI_ALWAYS_INLINE lanes16 load16_f32(const float *p) { return (lanes16){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
PSI_ALWAYS_INLINE lanes16 load16_f16(const uint16_t *p) {
  return (lanes16){_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 8)))};
}
PSI_ALWAYS_INLINE lanes16 fma16(lanes16 a, lanes16 b, lanes16 c) { return (lanes16){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
PSI_ALWAYS_INLINE lanes16 add16(lanes16 a, lanes16 b) { return (lanes16){_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
/* psi_sum16's tree: lane i + lane i+8, then the 8-lane hsum_ps (i + i+4, then (0+2) + (1+3)). */
PSI_ALWAYS_INLINE float sum16(lanes16 a) { return hsum_ps(_mm256_add_ps(a.hi, a.lo)); }
#endif

PSI_ALWAYS_INLINE lanes16 load16_weights(const int f16, const void *w, int64_t i) {
  return f16 ? load16_f16((const uint16_t *)w + i) : load16_f32((const float *)w + i);
}
PSI_ALWAYS_INLINE float load1_weight(const int f16, const void *w, int64_t i) {
  return f16 ? _cvtsh_ss(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

/* tinyBLAS / AMX F16 order: fma(w, x, lane), 16 lanes per token. */
PSI_ALWAYS_INLINE void lanes16_tile(const int f16, const void *w, const psi_tile_activations *x, const int nt, int64_t n,
                                    float *out, int64_t out_stride) {
  lanes16 acc[PSI_TILE_TOKENS];
  for (int t = 0; t < nt; t++) acc[t] = zero16();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    prefetch_ahead(f16 ? (const void *)((const uint16_t *)w + i) : (const void *)((const float *)w + i), f16 ? 32 : 64);
    const lanes16 wv = load16_weights(f16, w, i);
    for (int t = 0; t < nt; t++) acc[t] = fma16(wv, load16_f32((const float *)(x->blocks + t * x->stride) + i), acc[t]);
  }
  for (int t = 0; t < nt; t++) {
    const float *xt = (const float *)(x->blocks + t * x->stride);
    float sum = sum16(acc[t]);
    for (int64_t j = i; j < n; j++) sum += load1_weight(f16, w, j) * xt[j];
    out[t * out_stride] = sum;
  }
}
PSI_ALWAYS_INLINE void tile_f32_batch_n(const void *w, const psi_tile_activations *x, const int nt, int64_t n, float *out, int64_t out_stride) {
  lanes16_tile(0, w, x, nt, n, out, out_stride);
}
PSI_ALWAYS_INLINE void tile_f16_n(const void *w, const psi_tile_activations *x, const int nt, int64_t n, float *out, int64_t out_stride) {
  lanes16_tile(1, w, x, nt, n, out, out_stride);
}

/* ggml_vec_dot_f32 (one token per product, so token by token): accumulator j
 * of 4 takes values 64c + 16j + l, folded (0+2) + (1+3) before the 16-lane sum. */
PSI_ALWAYS_INLINE void tile_f32_n(const void *vw, const psi_tile_activations *x, const int nt, int64_t n, float *out, int64_t out_stride) {
  const float *w = vw;
  for (int t = 0; t < nt; t++) {
    const float *xt = (const float *)(x->blocks + t * x->stride);
    lanes16 acc[4] = {zero16(), zero16(), zero16(), zero16()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      prefetch_ahead(w + i, 256);
      for (int j = 0; j < 4; j++) acc[j] = fma16(load16_f32(xt + i + 16 * j), load16_f32(w + i + 16 * j), acc[j]);
    }
    float sum = sum16(add16(add16(acc[0], acc[2]), add16(acc[1], acc[3])));
    for (; i < n; i++) sum += xt[i] * w[i];
    out[t * out_stride] = sum;
  }
}

/* acc + vdpbf16ps(w[0..31], x[0..31]): lane j adds w*x of value 2j+1, then of
 * value 2j (products of bf16 values are exact, so an fma rounds as the
 * instruction's add does). */
#if defined(__AVX512BF16__)
PSI_ALWAYS_INLINE lanes16 dot_bf16_32(lanes16 acc, const uint16_t *w, const uint16_t *x) {
  return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(w), (__m512bh)_mm512_loadu_si512(x));
}
#else
/* 16 bf16 values as 8 pairs: the odd value of each pair is the high half of its
 * 32-bit lane (a float once masked), the even one the low half (shifted up). */
PSI_ALWAYS_INLINE __m256 dot_bf16_16(__m256 acc, const uint16_t *w, const uint16_t *x) {
  const __m256i wu = _mm256_loadu_si256((const __m256i *)w), xu = _mm256_loadu_si256((const __m256i *)x);
  const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
  acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(wu, high)), _mm256_castsi256_ps(_mm256_and_si256(xu, high)), acc);
  return _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(wu, 16)), _mm256_castsi256_ps(_mm256_slli_epi32(xu, 16)), acc);
}
#if defined(__AVX512F__)
PSI_ALWAYS_INLINE lanes16 dot_bf16_32(lanes16 acc, const uint16_t *w, const uint16_t *x) {
  const __m256 lo = dot_bf16_16(_mm512_castps512_ps256(acc), w, x);
  const __m256 hi = dot_bf16_16(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)), w + 16, x + 16);
  return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}
#else
PSI_ALWAYS_INLINE lanes16 dot_bf16_32(lanes16 acc, const uint16_t *w, const uint16_t *x) {
  return (lanes16){dot_bf16_16(acc.lo, w, x), dot_bf16_16(acc.hi, w + 16, x + 16)};
}
#endif
#endif

/* ggml_vec_dot_bf16 (matmul_reference.c): accumulators c1 (values 64s..64s+31)
 * and c2 (64s+32..64s+63), their 16-lane sums added in double, then the tail. */
PSI_ALWAYS_INLINE void tile_bf16_n(const void *w, const psi_tile_activations *x, const int nt, int64_t n, float *out, int64_t out_stride) {
  const uint16_t *wh = w;
  lanes16 c1[PSI_TILE_TOKENS], c2[PSI_TILE_TOKENS];
  for (int t = 0; t < nt; t++) c1[t] = c2[t] = zero16();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    prefetch_ahead(wh + i, 128);
    for (int t = 0; t < nt; t++) {
      const uint16_t *xt = (const uint16_t *)(x->blocks + t * x->stride);
      c1[t] = dot_bf16_32(c1[t], wh + i, xt + i);
      c2[t] = dot_bf16_32(c2[t], wh + i + 32, xt + i + 32);
    }
  }
  for (int t = 0; t < nt; t++) {
    const uint16_t *xt = (const uint16_t *)(x->blocks + t * x->stride);
    double sum = (double)sum16(c1[t]);
    sum += (double)sum16(c2[t]);
    for (int64_t j = i; j < n; j++) sum += (double)(psi_float_of_bits((uint32_t)wh[j] << 16) * psi_float_of_bits((uint32_t)xt[j] << 16));
    out[t * out_stride] = (float)sum;
  }
}

/* llamafile's tinyBLAS (matmul_reference.c): one accumulator over 32-value
 * steps; K not a multiple of 32 takes ggml_vec_dot_bf16's order, as in ggml. */
PSI_ALWAYS_INLINE void tile_bf16_batch_n(const void *w, const psi_tile_activations *x, const int nt, int64_t n, float *out, int64_t out_stride) {
  if (n % 32 != 0) {
    tile_bf16_n(w, x, nt, n, out, out_stride);
    return;
  }
  const uint16_t *wh = w;
  lanes16 c[PSI_TILE_TOKENS];
  for (int t = 0; t < nt; t++) c[t] = zero16();
  for (int64_t i = 0; i < n; i += 32) {
    if ((i & 63) == 0) prefetch_ahead(wh + i, 128);
    for (int t = 0; t < nt; t++) c[t] = dot_bf16_32(c[t], wh + i, (const uint16_t *)(x->blocks + t * x->stride) + i);
  }
  for (int t = 0; t < nt; t++) out[t * out_stride] = sum16(c[t]);
}

#define EXPORT_TILE PSI_EXPORT_SIMD_TILE
#else
#define EXPORT_TILE PSI_EXPORT_REFERENCE_TILE
#endif

EXPORT_TILE(f32)
EXPORT_TILE(f32_batch)
EXPORT_TILE(f16)
EXPORT_TILE(bf16)
EXPORT_TILE(bf16_batch)
