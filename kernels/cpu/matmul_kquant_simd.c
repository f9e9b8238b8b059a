/* Fast tiles for the K-quants (Q2_K .. Q6_K against Q8_K activations): one
 * weight row against up to PSI_TILE_TOKENS tokens.
 *   w: nb super-blocks of 256 values; x: the tile's Q8_K activations, interleaved by token (matmul.h)
 *   out[t*out_stride] = dot(w, token t)
 * Every type is first unpacked into one shape: eight 32-byte sub-blocks of
 * unsigned values u, an int16 scale per 16 values, and a correction per
 * 16-value group multiplied with the activation's group sums (bsums):
 *   dot = d*dx*sum(scale*u*x) + d_bias*dx*sum(bias*bsum)
 * (the offset of signed types and the minimum of Q2_K/Q4_K/Q5_K both become
 * that correction). Integer sums are exact per lane. Q2_K, Q4_K, Q5_K and Q6_K
 * then reduce them to one int32 per super-block and token and take the
 * reference's float steps bit for bit (llama.cpp's AMX / repack order); Q3_K
 * (and the Q5_K expert order) keep ggml_vec_dot's 8 lanes, as the reference. The portable build runs the reference. */
#include <math.h>
#include "matmul.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "matmul_simd.h"

typedef struct {
  __m256i u[8];     /* values of sub-block j (32 bytes, unsigned, < 64) */
  __m256i scale[8]; /* int16 scale of each byte pair of sub-block j */
  __m256i bias;     /* int16 coefficient of the activation's bsums[g], g = 0..15 */
  float d;          /* float scale of the scaled sum */
  float d_bias;     /* float scale of the correction; 0 when it shares d */
} kquant_block;

/* Sub-block j covers groups 2j and 2j+1 of 16 values: low and high 128-bit halves. */
PSI_ALWAYS_INLINE __m256i pair_scale(int16_t first, int16_t second) {
  return _mm256_setr_m128i(_mm_set1_epi16(first), _mm_set1_epi16(second));
}

/* The 8 six-bit scales and mins of Q4_K/Q5_K: bytes 0-3 hold scales 0-3 (and the
 * top bits of scales 4-7), bytes 4-7 mins 0-3 (top bits of mins 4-7), bytes 8-11
 * the low nibbles of scales 4-7 (low) and mins 4-7 (high). */
PSI_ALWAYS_INLINE void q45_K_scales(const uint8_t packed[12], uint64_t *scales, uint64_t *mins) {
  uint32_t a, b, c;
  memcpy(&a, packed, 4);
  memcpy(&b, packed + 4, 4);
  memcpy(&c, packed + 8, 4);
  const uint32_t scales_high = (c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4);
  const uint32_t mins_high = ((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4);
  *scales = (uint64_t)(a & 0x3f3f3f3f) | ((uint64_t)scales_high << 32);
  *mins = (uint64_t)(b & 0x3f3f3f3f) | ((uint64_t)mins_high << 32);
}

/* bias lane g = min of sub-block g/2 */
PSI_ALWAYS_INLINE __m256i mins_per_group(uint64_t mins) {
  const __m128i m8 = _mm_cvtsi64_si128((long long)mins);
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
}

PSI_ALWAYS_INLINE void unpack_q4_K(const block_q4_K *b, kquant_block *k) {
  uint64_t scales, mins;
  q45_K_scales(b->scales, &scales, &mins);
  for (int j = 0; j < 4; j++) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * j));
    k->u[2 * j] = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
    k->u[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0F));
  }
  for (int j = 0; j < 8; j++) k->scale[j] = _mm256_set1_epi16((int16_t)((scales >> (8 * j)) & 0xFF));
  k->bias = mins_per_group(mins);
  k->d = half_to_float(b->d);
  k->d_bias = -half_to_float(b->dmin);
}

/* Bit j of byte l, moved to bit `to` (shifts within 16-bit lanes never carry a wanted bit across bytes). */
PSI_ALWAYS_INLINE __m256i bit_of_bytes(__m256i bytes, int j, int to) {
  const __m256i shifted = j <= to ? _mm256_slli_epi16(bytes, to - j) : _mm256_srli_epi16(bytes, j - to);
  return _mm256_and_si256(shifted, _mm256_set1_epi8((char)(1 << to)));
}

PSI_ALWAYS_INLINE void unpack_q5_K(const block_q5_K *b, kquant_block *k) {
  uint64_t scales, mins;
  q45_K_scales(b->scales, &scales, &mins);
  const __m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
  for (int j = 0; j < 4; j++) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * j));
    k->u[2 * j] = _mm256_or_si256(_mm256_and_si256(q, _mm256_set1_epi8(0x0F)), bit_of_bytes(qh, 2 * j, 4));
    k->u[2 * j + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0F)),
                                      bit_of_bytes(qh, 2 * j + 1, 4));
  }
  for (int j = 0; j < 8; j++) k->scale[j] = _mm256_set1_epi16((int16_t)((scales >> (8 * j)) & 0xFF));
  k->bias = mins_per_group(mins);
  k->d = half_to_float(b->d);
  k->d_bias = -half_to_float(b->dmin);
}

/* Q6_K: value = u - 32 with u = 6 bits; the -32 becomes bias = -32*scale. */
PSI_ALWAYS_INLINE void unpack_q6_K(const block_q6_K *b, kquant_block *k) {
  for (int h = 0; h < 2; h++) {
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    for (int j = 0; j < 4; j++) {
      const __m256i ql = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (j % 2)));
      const __m256i low = _mm256_and_si256(j < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
      /* bits 2j, 2j+1 of qh to bits 4, 5 */
      const __m256i high = _mm256_and_si256(2 * j <= 4 ? _mm256_slli_epi16(qh, 4 - 2 * j) : _mm256_srli_epi16(qh, 2 * j - 4),
                                            _mm256_set1_epi8(0x30));
      k->u[4 * h + j] = _mm256_or_si256(low, high);
    }
  }
  for (int j = 0; j < 8; j++) k->scale[j] = pair_scale(b->scales[2 * j], b->scales[2 * j + 1]);
  const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
  k->bias = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(s16, 5));
  k->d = half_to_float(b->d);
  k->d_bias = 0;
}

/* The 16 six-bit Q3_K scales minus 32, without psi_q3_K_scales' per-scale loop:
 * bytes 0-7 hold the low nibbles (scales 0-7 low, 8-15 high), bytes 8-11 the
 * 2-bit tops, scale j's in bits 2*(j/4) of byte 8 + j%4. */
PSI_ALWAYS_INLINE void q3_K_scales(const uint8_t packed[12], int8_t scales[16]) {
  uint64_t low;
  uint32_t top;
  memcpy(&low, packed, 8);
  memcpy(&top, packed + 8, 4);
  const uint64_t nibbles = 0x0F0F0F0F0F0F0F0FULL;
  const uint32_t pairs = 0x03030303u;
  const uint64_t top_first = (uint64_t)(top & pairs) | ((uint64_t)((top >> 2) & pairs) << 32);
  const uint64_t top_second = (uint64_t)((top >> 4) & pairs) | ((uint64_t)((top >> 6) & pairs) << 32);
  const uint64_t first = (low & nibbles) | (top_first << 4), second = ((low >> 4) & nibbles) | (top_second << 4);
  const __m128i unsigned_scales = _mm_set_epi64x((long long)second, (long long)first);
  _mm_storeu_si128((__m128i *)scales, _mm_sub_epi8(unsigned_scales, _mm_set1_epi8(32)));
}

/* Q3_K: value = u - 4 with u = 2 low bits + 4 * hmask bit; the tile takes the
 * -4 off per value (LANES), so the bias is unused. */
PSI_ALWAYS_INLINE void unpack_q3_K(const block_q3_K *b, kquant_block *k) {
  int8_t scales[16];
  q3_K_scales(b->scales, scales);
  const __m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
  for (int j = 0; j < 8; j++) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * (j / 4)));
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * (j % 4)), _mm256_set1_epi8(3));
    k->u[j] = _mm256_or_si256(low, bit_of_bytes(hm, j, 2));
  }
  for (int j = 0; j < 8; j++) k->scale[j] = pair_scale(scales[2 * j], scales[2 * j + 1]);
  k->bias = _mm256_setzero_si256();
  k->d = half_to_float(b->d);
  k->d_bias = 0;
}

/* Q2_K: 2-bit u, 4-bit scale (low nibble) and min (high nibble) per 16 values. */
PSI_ALWAYS_INLINE void unpack_q2_K(const block_q2_K *b, kquant_block *k) {
  for (int j = 0; j < 8; j++) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * (j / 4)));
    k->u[j] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * (j % 4)), _mm256_set1_epi8(3));
  }
  for (int j = 0; j < 8; j++) k->scale[j] = pair_scale(b->scales[2 * j] & 0xF, b->scales[2 * j + 1] & 0xF);
  const __m128i sc = _mm_loadu_si128((const __m128i *)b->scales);
  k->bias = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(0x0F)));
  k->d = half_to_float(b->d);
  k->d_bias = -half_to_float(b->dmin);
}

/* The exact sum of eight int32 lanes. */
PSI_ALWAYS_INLINE int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

/* How each type turns a super-block's integer sums into floats (matmul_reference.c):
 *   LANES     Q3_K (ggml_vec_dot_q3_K_q8_K): the -4 taken off each value's own
 *             lane (4*x subtracted per byte pair), 8 float lanes by fma, hsum_float_8
 *   LANES_MIN Q5_K experts (ggml_vec_dot_q5_K_q8_K): the scaled sum in 8 float
 *             lanes by fma, the mins term in a scalar by fmaf, added at the end
 *   ONE_SUM   Q6_K: bias into the sum, one fmaf per super-block
 *   WITH_MIN  Q4_K, Q5_K: fmaf of the scaled sum, then fmaf of the mins term (d_bias = -dmin)
 *   TWO_SUMS  Q2_K: scaled sum and mins term in two accumulators, subtracted at the end */
enum { LANES, ONE_SUM, WITH_MIN, TWO_SUMS, LANES_MIN };

#define KQUANT_TILE(name, type, mode)                                                                      \
  PSI_ALWAYS_INLINE void tile_##name##_n(const void *vw, const psi_tile_activations *x, const int nt,  \
                                         int64_t nb, float *out, int64_t out_stride) {                      \
    const block_##type *w = vw;                                                                             \
    __m256 lanes[PSI_TILE_TOKENS];                                                                          \
    float acc[PSI_TILE_TOKENS], acc_min[PSI_TILE_TOKENS];                                                   \
    for (int t = 0; t < nt; t++) { lanes[t] = _mm256_setzero_ps(); acc[t] = acc_min[t] = 0; }               \
    for (int64_t b = 0; b < nb; b++) {                                                                      \
      kquant_block k;                                                                                       \
      prefetch_ahead(&w[b], sizeof(w[b]));                                                                  \
      unpack_##type(&w[b], &k);                                                                             \
      for (int t = 0; t < nt; t++) {                                                                        \
        const block_q8_K *xb = (const block_q8_K *)x->blocks + b * PSI_TILE_TOKENS + t;                     \
        __m256i sum = _mm256_setzero_si256();                                                               \
        for (int j = 0; j < 8; j++) {                                                                       \
          const __m256i xq = _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * j));                        \
          __m256i pairs = _mm256_maddubs_epi16(k.u[j], xq);                                                 \
          if (mode == LANES) pairs =  _mm256_sub_epi16(pairs, _mm256_maddubs_epi16(_mm256_set1_epi8(4), xq)); \
          sum = dot_s16(sum, pairs, k.scale[j]);                                                            \
        }                                                                                                   \
        const __m256i bias = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xb->bsums), k.bias);     \
        if (mode == LANES) {                                                                                \
          lanes[t] = _mm256_fmadd_ps(_mm256_set1_ps(k.d * xb->d), _mm256_cvtepi32_ps(sum), lanes[t]);     \
        } else if (mode == LANES_MIN) {                                                                     \
          lanes[t] = _mm256_fmadd_ps(_mm256_set1_ps(k.d * xb->d), _mm256_cvtepi32_ps(sum), lanes[t]);     \
          acc[t] = fmaf(k.d_bias * xb->d, (float)hsum_epi32(bias), acc[t]);                                \
        } else if (mode == ONE_SUM) {                                                                       \
          acc[t] = fmaf((float)hsum_epi32(_mm256_add_epi32(sum, bias)), k.d * xb->d, acc[t]);              \
        } else if (mode == WITH_MIN) {                                                                      \
          acc[t] = fmaf((float)hsum_epi32(sum), k.d * xb->d, acc[t]);                                      \
          acc[t] = fmaf((float)hsum_epi32(bias), k.d_bias * xb->d, acc[t]);                                \
        } else {                                                                                            \
          acc[t] = fmaf((float)hsum_epi32(sum), k.d * xb->d, acc[t]);                                      \
          acc_min[t] = fmaf((float)hsum_epi32(bias), -k.d_bias * xb->d, acc_min[t]);                       \
        }                                                                                                   \
      }                                                                                                     \
    }                                                                                                       \
    if (mode == LANES) store_sums(lanes, nt, out, out_stride);                                              \
    else if (mode == LANES_MIN) {                                                                           \
      float sums[PSI_TILE_TOKENS];                                                                          \
      store_sums(lanes, nt, sums, 1);                                                                       \
      for (int t = 0; t < nt; t++) out[t * out_stride] = sums[t] + acc[t];                                  \
    }                                                                                                       \
    else for (int t = 0; t < nt; t++) out[t * out_stride] = acc[t] - acc_min[t];                            \
  }

KQUANT_TILE(q2_K, q2_K, TWO_SUMS)
KQUANT_TILE(q3_K, q3_K, LANES)   /* dense and expert products: ggml_vec_dot_q3_K_q8_K */
KQUANT_TILE(q4_K, q4_K, WITH_MIN)
KQUANT_TILE(q4_K_8x8, q4_K, TWO_SUMS) /* expert products: the q4_K_8x8 gemv's order */
KQUANT_TILE(q5_K, q5_K, WITH_MIN)
KQUANT_TILE(q5_K_lanes, q5_K, LANES_MIN)     /* expert products: ggml_vec_dot_q5_K_q8_K */
KQUANT_TILE(q6_K, q6_K, ONE_SUM)

#define EXPORT_TILE PSI_EXPORT_SIMD_TILE

#else

#define EXPORT_TILE PSI_EXPORT_REFERENCE_TILE

#endif

EXPORT_TILE(q2_K)
EXPORT_TILE(q3_K)
EXPORT_TILE(q4_K)
EXPORT_TILE(q4_K_8x8)
EXPORT_TILE(q5_K)
EXPORT_TILE(q5_K_lanes)
EXPORT_TILE(q6_K)
