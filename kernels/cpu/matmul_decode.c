/* Decode products (one token) on AVX-512 VNNI for Q5_0 against Q8_0
 * activations. (Q8_0, Q4_0 and MXFP4 take matmul_rows16.c, in llama.cpp's
 * order; the helpers below keep their layouts as the type parameter allows.)
 *   w: rows of nb blocks; x: the token's blocks, scales and VNNI corrections
 *   in psi_matmul's interleaved layout (block b at index b*PSI_TILE_TOKENS)
 *   y[r] = dot(w row r, x), for rows [r_begin, r_end)
 * The one-token tile (matmul_legacy_simd.c) spends a float multiply-add chain
 * per block on one accumulator, so its 4-cycle latency bounds it (Q4_0 13
 * GB/s in cache). Here one zmm holds two blocks, two rows run side by side
 * (four independent chains), and the token's blocks, scales and corrections
 * are loaded once for both rows. Per block and row the arithmetic is the
 * tile's: exact int32 lane sums from the -offset*sum(x) start, times d_w*d_x,
 * added into float lanes, so the same (row) gives the same bits whether it
 * runs paired or alone. */
#include "matmul.h"
#include "matmul_panel.h"

#if PSI_MATMUL_PANELS
#include "matmul_simd.h"

static const uint8_t mxfp4_unsigned[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};
_Static_assert(PSI_MXFP4_OFFSET == 12, "mxfp4_unsigned holds the values + 12");

PSI_ALWAYS_INLINE int block_bytes(const int32_t type) {
  return type == PSI_Q8_0 ? (int)sizeof(block_q8_0) : type == PSI_Q4_0 ? (int)sizeof(block_q4_0)
       : type == PSI_Q5_0 ? (int)sizeof(block_q5_0) : (int)sizeof(block_mxfp4);
}

/* Blocks b and b+1 of a row as one zmm of unsigned bytes (value + PSI_<type>_OFFSET).
 * Q8_0 and Q5_0 keep each block's 32 values together (lanes 0-7: block b);
 * Q4_0 and MXFP4 put the low nibbles of both blocks first (16 bytes each),
 * then the high nibbles, which saves a shuffle per block: "split" layout.
 * With `single`, block b+1 reads as zero. */
PSI_ALWAYS_INLINE int split_layout(const int32_t type) { return type == PSI_Q4_0 || type == PSI_MXFP4; }

PSI_ALWAYS_INLINE __m512i unpack_pair(const int32_t type, const uint8_t *row, int64_t b, const int single) {
  switch (type) {
    case PSI_Q8_0: {
      const block_q8_0 *q = (const block_q8_0 *)row + b;
      const __m256i q0 = _mm256_loadu_si256((const __m256i *)q[0].qs);
      const __m256i q1 = single ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)q[1].qs);
      const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
      return _mm512_xor_si512(both, _mm512_set1_epi8((char)0x80));
    }
    case PSI_Q5_0: {
      const block_q5_0 *q = (const block_q5_0 *)row + b;
      uint32_t qh0, qh1 = 0;
      memcpy(&qh0, q[0].qh, 4);
      const __m256i u0 = _mm256_or_si256(nibbles_32(q[0].qs), _mm256_and_si256(bits_to_bytes(qh0), _mm256_set1_epi8(0x10)));
      __m256i u1 = _mm256_setzero_si256();
      if (!single) {
        memcpy(&qh1, q[1].qh, 4);
        u1 = _mm256_or_si256(nibbles_32(q[1].qs), _mm256_and_si256(bits_to_bytes(qh1), _mm256_set1_epi8(0x10)));
      }
      return _mm512_inserti64x4(_mm512_castsi256_si512(u0), u1, 1);
    }
    default: { /* Q4_0, MXFP4: split layout */
      const uint8_t *qs0 = type == PSI_Q4_0 ? ((const block_q4_0 *)row)[b].qs : ((const block_mxfp4 *)row)[b].qs;
      const __m128i p0 = _mm_loadu_si128((const __m128i *)qs0);
      const __m128i p1 = single ? _mm_setzero_si128()
                                : _mm_loadu_si128((const __m128i *)(type == PSI_Q4_0 ? ((const block_q4_0 *)row)[b + 1].qs : ((const block_mxfp4 *)row)[b + 1].qs));
      const __m256i packed = _mm256_setr_m128i(p0, p1);
      const __m512i nibbles = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(packed), _mm256_srli_epi16(packed, 4), 1),
                                               _mm512_set1_epi8(0x0F));
      if (type == PSI_Q4_0) return nibbles;
      const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)mxfp4_unsigned));
      return _mm512_shuffle_epi8(table, nibbles);
    }
  }
}

/* The e8m0 half scales as float bits, so two are combined in a general register. */
static uint32_t e8m0_half_bits[256];
__attribute__((constructor)) static void fill_e8m0_half_bits(void) {
  for (int e = 0; e < 256; e++) e8m0_half_bits[e] = psi_bits_of_float(psi_e8m0_half_to_float((uint8_t)e));
}

/* (d_w of block b, d_w of block b+1, 0, 0); block b+1's is 0 with `single`. */
PSI_ALWAYS_INLINE __m128 scale_pair(const int32_t type, const uint8_t *row, int64_t b, const int single) {
  if (type == PSI_MXFP4) {
    const block_mxfp4 *q = (const block_mxfp4 *)row + b;
    const uint64_t bits = e8m0_half_bits[q[0].e] | (single ? 0 : (uint64_t)e8m0_half_bits[q[1].e] << 32);
    return _mm_castsi128_ps(_mm_cvtsi64_si128((long long)bits));
  }
  uint16_t d0, d1 = 0;
  const int bytes = block_bytes(type);
  memcpy(&d0, row + b * bytes, 2); /* d leads Q8_0, Q4_0 and Q5_0 blocks */
  if (!single) memcpy(&d1, row + (b + 1) * bytes, 2);
  return _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)d0 | (uint32_t)d1 << 16)));
}

/* Blocks b and b+1 (or only b, `single`) of `rows` rows at w + r*row_bytes into acc[r]. */
PSI_ALWAYS_INLINE void block_pair(const int32_t type, const uint8_t *w, int64_t row_bytes, const int rows, int64_t b,
                                  const int single, const psi_tile_activations *x, __m512 acc[2]) {
  const block_q8_0 *xs = (const block_q8_0 *)x->blocks;
  const int64_t i0 = b * PSI_TILE_TOKENS, i1 = (b + 1) * PSI_TILE_TOKENS;
  const __m256i x0 = _mm256_loadu_si256((const __m256i *)xs[i0].qs);
  const __m256i x1 = single ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)xs[i1].qs);
  const __m512i natural = _mm512_inserti64x4(_mm512_castsi256_si512(x0), x1, 1);
  /* split: 16-byte quarters (x0 low, x1 low, x0 high, x1 high) */
  const __m512i xv = split_layout(type) ? _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7), natural) : natural;
  const int second = split_layout(type) ? 0x10 : 0x100; /* the lane block b+1's sum starts in */
  const __m512i start = _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(1, x->corrections[i0]), (__mmask16)second,
                                               single ? 0 : x->corrections[i1]);
  const __m128 dx = _mm_setr_ps(x->scales[i0], single ? 0.0f : x->scales[i1], 0, 0);
  const __m512i spread = split_layout(type) ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)
                                            : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  for (int r = 0; r < rows; r++) {
    const uint8_t *row = w + r * row_bytes;
    prefetch_ahead(row + b * block_bytes(type), 2 * block_bytes(type));
    const __m512i p = _mm512_dpbusd_epi32(start, unpack_pair(type, row, b, single), xv);
    const __m512 d = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(scale_pair(type, row, b, single), dx)));
    acc[r] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[r]);
  }
}

PSI_ALWAYS_INLINE void decode_rows_n(const int32_t type, const uint8_t *w, int64_t row_bytes, const int rows,
                                     int64_t nb, const psi_tile_activations *x, float *y) {
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) block_pair(type, w, row_bytes, rows, b, 0, x, acc);
  if (b < nb) block_pair(type, w, row_bytes, rows, b, 1, x, acc);
  for (int r = 0; r < rows; r++) y[r] = _mm512_reduce_add_ps(acc[r]);
}

#define DECODE_TYPE(name, type)                                                                         \
  static void decode_##name(const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,    \
                            const psi_tile_activations *x, float *y) {                                 \
    int64_t r = r0;                                                                                    \
    for (; r + 1 < r1; r += 2) decode_rows_n(type, w + r * row_bytes, row_bytes, 2, nb, x, y + r);      \
    if (r < r1) decode_rows_n(type, w + r * row_bytes, row_bytes, 1, nb, x, y + r);                     \
  }
DECODE_TYPE(q5_0, PSI_Q5_0)

int PSI_IMPL(psi_decode_rows)(int32_t type, const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,
                              const psi_tile_activations *x, float *y) {
  switch (type) {
    case PSI_Q5_0: decode_q5_0(w, row_bytes, r0, r1, nb, x, y); return 1;
    default: return 0;
  }
}

#endif
