/* Fast tiles for float weights (F32, F16, BF16), whose activations are F32,
 * F16 and BF16 rows (ggml's vec_dot_type for each): one weight row against up
 * to PSI_TILE_TOKENS tokens, 8 values at a time, products accumulated in float
 * lanes (the reference sums in double). nb is the row length in values. */
#include "matmul.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "matmul_simd.h"

PSI_ALWAYS_INLINE __m256 load8_f32(const void *p, int64_t i) { return _mm256_loadu_ps((const float *)p + i); }
PSI_ALWAYS_INLINE __m256 load8_f16(const void *p, int64_t i) {
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}
PSI_ALWAYS_INLINE __m256 load8_bf16(const void *p, int64_t i) {
  const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
PSI_ALWAYS_INLINE const void *load_address_f32(const void *p, int64_t i) { return (const float *)p + i; }
PSI_ALWAYS_INLINE const void *load_address_f16(const void *p, int64_t i) { return (const uint16_t *)p + i; }
PSI_ALWAYS_INLINE const void *load_address_bf16(const void *p, int64_t i) { return (const uint16_t *)p + i; }
PSI_ALWAYS_INLINE float load1_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
PSI_ALWAYS_INLINE float load1_f16(const void *p, int64_t i) { return _cvtsh_ss(((const uint16_t *)p)[i]); }
PSI_ALWAYS_INLINE float load1_bf16(const void *p, int64_t i) {
  return psi_float_of_bits((uint32_t)((const uint16_t *)p)[i] << 16);
}

#define FLOAT_TILE(type)                                                                                  \
  PSI_ALWAYS_INLINE void tile_##type##_n(const void *w, const psi_tile_activations *x, const int nt,  \
                                         int64_t n, float *out, int64_t out_stride) {                      \
    __m256 acc[PSI_TILE_TOKENS];                                                                           \
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();                                             \
    int64_t i = 0;                                                                                         \
    for (; i + 8 <= n; i += 8) {                                                                           \
      if ((i & 15) == 0) prefetch_ahead(load_address_##type(w, i), 64);                                    \
      const __m256 wv = load8_##type(w, i);                                                                \
      for (int t = 0; t < nt; t++) acc[t] = _mm256_fmadd_ps(wv, load8_##type(x->blocks + t * x->stride, i), acc[t]); \
    }                                                                                                      \
    for (int t = 0; t < nt; t++) {                                                                         \
      float sum = hsum_ps(acc[t]);                                                                         \
      for (int64_t j = i; j < n; j++) sum += load1_##type(w, j) * load1_##type(x->blocks + t * x->stride, j);      \
      out[t * out_stride] = sum;                                                                           \
    }                                                                                                      \
  }

FLOAT_TILE(f32)
FLOAT_TILE(f16)
FLOAT_TILE(bf16)

#define EXPORT_TILE PSI_EXPORT_SIMD_TILE
#else
#define EXPORT_TILE PSI_EXPORT_REFERENCE_TILE
#endif

EXPORT_TILE(f32)
EXPORT_TILE(f16)
EXPORT_TILE(bf16)
