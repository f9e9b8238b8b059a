/* Small SIMD helpers shared by the fast matmul tiles (avx2 and avx512 builds).
 * The avx512 build works on 256-bit vectors too: VNNI's vpdpbusd/vpdpwssd on
 * ymm registers replace AVX2's two-step multiply-add, and ymm keeps the
 * byte-sign trick (vpsignb has no 512-bit form). */
#ifndef PSI_MATMUL_SIMD_H
#define PSI_MATMUL_SIMD_H

#include <immintrin.h>
#include "matmul.h"

#define PSI_ALWAYS_INLINE static inline __attribute__((always_inline))

/* How far ahead of the current weight block the tiles prefetch. Decoding from
 * memory (a 187 MiB Q8_0 weight set, 2 threads) streamed 15 GB/s on the
 * hardware prefetcher alone, 19.9 GB/s prefetching 1 KiB ahead, 23.5 GB/s 2 KiB
 * ahead, 23.2 GB/s 4 KiB ahead. */
#define PSI_PREFETCH_BYTES 2048

/* Prefetches the cache lines `bytes` bytes of weights starting at p will
 * occupy PSI_PREFETCH_BYTES from now. */
PSI_ALWAYS_INLINE void prefetch_ahead(const void *p, const int bytes) {
  for (int offset = 0; offset < bytes; offset += 64) _mm_prefetch((const char *)p + PSI_PREFETCH_BYTES + offset, _MM_HINT_T0);
}

/* acc + sum over groups of 4 of u[i]*s[i] (u unsigned bytes, s signed bytes).
 * The AVX2 form adds pairs in saturating int16 first: callers keep u*s pairs
 * within int16 (|u| <= 128 with |s| <= 127). */
PSI_ALWAYS_INLINE __m256i dot_u8_s8(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

/* acc + pairwise products of int16 lanes a and b, summed into int32 lanes. */
PSI_ALWAYS_INLINE __m256i dot_s16(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpwssd_epi32(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

PSI_ALWAYS_INLINE float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* out[t*out_stride] = sum of acc[t]'s lanes, t < nt. Written without a loop so
 * GCC does not turn it into a vectorized loop over the accumulator array,
 * which made it keep the accumulators in memory through the hot loop. */
PSI_ALWAYS_INLINE void store_sums(const __m256 *acc, const int nt, float *out, int64_t out_stride) {
  if (nt > 0) out[0] = hsum_ps(acc[0]);
  if (nt > 1) out[out_stride] = hsum_ps(acc[1]);
  if (nt > 2) out[2 * out_stride] = hsum_ps(acc[2]);
  if (nt > 3) out[3 * out_stride] = hsum_ps(acc[3]);
  if (nt > 4) out[4 * out_stride] = hsum_ps(acc[4]);
  if (nt > 5) out[5 * out_stride] = hsum_ps(acc[5]);
  if (nt > 6) out[6 * out_stride] = hsum_ps(acc[6]);
  if (nt > 7) out[7 * out_stride] = hsum_ps(acc[7]);
}

PSI_ALWAYS_INLINE float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

/* 32 bytes: the low nibbles of 16 bytes, then their high nibbles. */
PSI_ALWAYS_INLINE __m256i nibbles_32(const uint8_t *q) {
  const __m128i packed = _mm_loadu_si128((const __m128i *)q);
  const __m256i both = _mm256_setr_m128i(packed, _mm_srli_epi16(packed, 4));
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/* 32 bytes, byte i = 0xFF where bit i of `bits` is set, else 0. */
PSI_ALWAYS_INLINE __m256i bits_to_bytes(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
      _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
  const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

/* Exports psi_tile_<type> from tile_<type>_n, instantiated per token count so
 * the accumulators stay in registers. */
#define PSI_EXPORT_SIMD_TILE(type)                                                                      \
  void PSI_IMPL(psi_tile_##type)(const void *w, const psi_tile_activations *x, int nt, int64_t nb,     \
                                 float *out, int64_t out_stride) {                                      \
    switch (nt) {                                                                                        \
      case 1: tile_##type##_n(w, x, 1, nb, out, out_stride); break;                                      \
      case 2: tile_##type##_n(w, x, 2, nb, out, out_stride); break;                                      \
      case 3: tile_##type##_n(w, x, 3, nb, out, out_stride); break;                                      \
      case 4: tile_##type##_n(w, x, 4, nb, out, out_stride); break;                                      \
      case 5: tile_##type##_n(w, x, 5, nb, out, out_stride); break;                                      \
      case 6: tile_##type##_n(w, x, 6, nb, out, out_stride); break;                                      \
      case 7: tile_##type##_n(w, x, 7, nb, out, out_stride); break;                                      \
      default: tile_##type##_n(w, x, 8, nb, out, out_stride); break;                                     \
    }                                                                                                    \
  }

#endif
