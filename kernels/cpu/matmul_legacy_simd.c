/* Fast tiles for the 32-value block types (Q8_0, Q4_0, Q5_0, MXFP4 against
 * Q8_0 activations; Q4_1, Q5_1 against Q8_1): one weight row against up to
 * PSI_TILE_TOKENS tokens, each weight block unpacked once to 32 bytes and
 * multiplied with every token's block.
 *   w: nb weight blocks; x: the tile's activations, interleaved by token (matmul.h)
 *   out[t*out_stride] = dot(w, token t)
 * Per block and token the integer dot is exact in 8 int32 lanes. Q8_0, Q4_0,
 * MXFP4 and Q4_1 then follow the reference's order bit for bit (ggml's AMX /
 * repack kernels): the 8 tokens' lane sums are reduced to one int32 each (lane
 * t of one vector), converted, and multiply-added by d_w*d_x into a float
 * accumulator per token, block after block. Q5_0 and Q5_1 keep ggml_vec_dot's
 * shape: lanes scaled and summed in float, added at the end (Q5_1 is ggml's
 * order; Q5_0 differs from the reference in float rounding only), and so do
 * q8_0_lanes / q5_0_lanes / q4_1_lanes, Q8_0, Q5_0 and Q4_1 exactly in
 * ggml_vec_dot's order (expert products).
 * The portable build runs the reference. */
#include "matmul.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "matmul_simd.h"

/* Signed weights (values fit in int8) in ggml_vec_dot's 8 lanes: |w| times x with
 * w's sign moved onto x, lane l the exact sum of values 4l..4l+3, one fma per
 * lane and block, the lanes summed at the end (hsum_float_8's order). */
#define LANE_TILE(name, block_t, unpack, weight_scale)                                               \
  PSI_ALWAYS_INLINE void name##_n(const void *vw, const psi_tile_activations *x, const int nt,          \
                                  int64_t nb, float *out, int64_t out_stride) {                          \
    const block_t *w = vw;                                                                               \
    __m256 acc[PSI_TILE_TOKENS];                                                                         \
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();                                           \
    for (int64_t b = 0; b < nb; b++) {                                                                   \
      prefetch_ahead(&w[b], sizeof(block_t));                                                            \
      const __m256i wv = unpack(&w[b]);                                                                  \
      const __m256i wabs = _mm256_sign_epi8(wv, wv);                                                     \
      const __m256 dw = _mm256_set1_ps(weight_scale(&w[b]));                                             \
      const block_q8_0 *xs = (const block_q8_0 *)x->blocks + b * PSI_TILE_TOKENS;                        \
      const float *dx = x->scales + b * PSI_TILE_TOKENS;                                                 \
      for (int t = 0; t < nt; t++) {                                                                     \
        const __m256i xsigned = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)xs[t].qs), wv);     \
        const __m256i p = dot_u8_s8(_mm256_setzero_si256(), wabs, xsigned);                              \
        const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(dx + t));                             \
        acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(p), acc[t]);                                  \
      }                                                                                                  \
    }                                                                                                    \
    store_sums(acc, nt, out, out_stride);                                                                                              \
  }

#if PSI_MATMUL_VNNI
/* Signed weights, VNNI form: the weights shifted by `offset` to unsigned
 * bytes go straight into vpdpbusd with the activations read from memory; the
 * shift comes back out through the accumulator's start, -offset * sum(x) in
 * lane 0, which the activation quantizer stored per block. */
#define SIGNED_TILE(name, block_t, unpack, weight_scale)                                               \
  PSI_ALWAYS_INLINE void name##_n(const void *vw, const psi_tile_activations *x, const int nt,          \
                                  int64_t nb, float *out, int64_t out_stride) {                          \
    const block_t *w = vw;                                                                               \
    __m256 acc[PSI_TILE_TOKENS];                                                                         \
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();                                           \
    for (int64_t b = 0; b < nb; b++) {                                                                   \
      prefetch_ahead(&w[b], sizeof(block_t));                                                            \
      const __m256i u = unpack##_unsigned(&w[b]);                                                        \
      const __m256 dw = _mm256_set1_ps(weight_scale(&w[b]));                                             \
      const block_q8_0 *xs = (const block_q8_0 *)x->blocks + b * PSI_TILE_TOKENS;                        \
      const float *dx = x->scales + b * PSI_TILE_TOKENS;                                                 \
      const int32_t *corrections = x->corrections + b * PSI_TILE_TOKENS;                                 \
      for (int t = 0; t < nt; t++) {                                                                     \
        const __m256i start = _mm256_maskz_set1_epi32(1, corrections[t]);                                \
        const __m256i p = _mm256_dpbusd_epi32(start, u, _mm256_loadu_si256((const __m256i *)xs[t].qs));  \
        const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(dx + t));                             \
        acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(p), acc[t]);                                  \
      }                                                                                                  \
    }                                                                                                    \
    store_sums(acc, nt, out, out_stride);                                                                                              \
  }
#else
#define SIGNED_TILE LANE_TILE
#endif

/* Lane t = the sum of p[t]'s eight int32 lanes (exact). */
PSI_ALWAYS_INLINE __m256i token_sums(const __m256i p[PSI_TILE_TOKENS]) {
  const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
  const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
}

/* Lanes t < nt set, for the per-token loads of a partial tile. */
PSI_ALWAYS_INLINE __m256i token_mask(const int nt) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(nt), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

PSI_ALWAYS_INLINE void store_tokens(__m256 acc, const int nt, float *out, int64_t out_stride) {
  float sums[PSI_TILE_TOKENS];
  _mm256_storeu_ps(sums, acc);
  for (int t = 0; t < nt; t++) out[t * out_stride] = sums[t];
}

/* Block b's exact integer dot with token t's block, in 8 int32 lanes. */
#if PSI_MATMUL_VNNI
#define BLOCK_DOT(u, wv, xs, corrections, t) \
  _mm256_dpbusd_epi32(_mm256_maskz_set1_epi32(1, (corrections)[t]), (u), _mm256_loadu_si256((const __m256i *)(xs)[t].qs))
#else
#define BLOCK_DOT(u, wv, xs, corrections, t) \
  dot_u8_s8(_mm256_setzero_si256(), _mm256_sign_epi8((wv), (wv)), _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xs)[t].qs), (wv)))
#endif

/* Signed weights in llama.cpp's order: acc_t = fma(isum_t, d_w*d_x_t, acc_t) per block. */
#define SEQUENTIAL_TILE(name, block_t, unpack, weight_scale)                                           \
  PSI_ALWAYS_INLINE void name##_n(const void *vw, const psi_tile_activations *x, const int nt,          \
                                  int64_t nb, float *out, int64_t out_stride) {                          \
    const block_t *w = vw;                                                                               \
    const __m256i live = token_mask(nt);                                                                 \
    __m256 acc = _mm256_setzero_ps();                                                                    \
    for (int64_t b = 0; b < nb; b++) {                                                                   \
      prefetch_ahead(&w[b], sizeof(block_t));                                                            \
      const __m256i wv = PSI_MATMUL_VNNI ? _mm256_setzero_si256() : unpack(&w[b]);                       \
      const __m256i u = PSI_MATMUL_VNNI ? unpack##_unsigned(&w[b]) : _mm256_setzero_si256();             \
      const block_q8_0 *xs = (const block_q8_0 *)x->blocks + b * PSI_TILE_TOKENS;                        \
      const int32_t *corrections = PSI_MATMUL_VNNI ? x->corrections + b * PSI_TILE_TOKENS : NULL;        \
      __m256i p[PSI_TILE_TOKENS];                                                                        \
      for (int t = 0; t < PSI_TILE_TOKENS; t++) p[t] = t < nt ? BLOCK_DOT(u, wv, xs, corrections, t) : _mm256_setzero_si256(); \
      const __m256 d = _mm256_mul_ps(_mm256_set1_ps(weight_scale(&w[b])), _mm256_maskload_ps(x->scales + b * PSI_TILE_TOKENS, live)); \
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(token_sums(p)), d, acc);                                  \
    }                                                                                                    \
    store_tokens(acc, nt, out, out_stride);                                                              \
  }

/* Each type's weights as signed bytes (unpack_*) and shifted by its
 * PSI_*_OFFSET to unsigned bytes (unpack_*_unsigned). */
PSI_ALWAYS_INLINE __m256i unpack_q8_0(const block_q8_0 *b) { return _mm256_loadu_si256((const __m256i *)b->qs); }
PSI_ALWAYS_INLINE __m256i unpack_q8_0_unsigned(const block_q8_0 *b) {
  return _mm256_xor_si256(unpack_q8_0(b), _mm256_set1_epi8((char)0x80));
}
PSI_ALWAYS_INLINE float scale_f16(const block_q8_0 *b) { return half_to_float(b->d); }
SEQUENTIAL_TILE(tile_q8_0, block_q8_0, unpack_q8_0, scale_f16)
LANE_TILE(tile_q8_0_lanes, block_q8_0, unpack_q8_0, scale_f16) /* expert products: ggml_vec_dot_q8_0_q8_0 */

PSI_ALWAYS_INLINE __m256i unpack_q4_0_unsigned(const block_q4_0 *b) { return nibbles_32(b->qs); }
PSI_ALWAYS_INLINE __m256i unpack_q4_0(const block_q4_0 *b) { return _mm256_sub_epi8(nibbles_32(b->qs), _mm256_set1_epi8(8)); }
PSI_ALWAYS_INLINE float scale_q4_0(const block_q4_0 *b) { return half_to_float(b->d); }
SEQUENTIAL_TILE(tile_q4_0, block_q4_0, unpack_q4_0, scale_q4_0)

PSI_ALWAYS_INLINE __m256i unpack_q5_0_unsigned(const block_q5_0 *b) {
  uint32_t qh;
  memcpy(&qh, b->qh, 4);
  return _mm256_or_si256(nibbles_32(b->qs), _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
}
PSI_ALWAYS_INLINE __m256i unpack_q5_0(const block_q5_0 *b) { return _mm256_sub_epi8(unpack_q5_0_unsigned(b), _mm256_set1_epi8(16)); }
PSI_ALWAYS_INLINE float scale_q5_0(const block_q5_0 *b) { return half_to_float(b->d); }
SIGNED_TILE(tile_q5_0, block_q5_0, unpack_q5_0, scale_q5_0)
LANE_TILE(tile_q5_0_lanes, block_q5_0, unpack_q5_0, scale_q5_0) /* expert products: ggml_vec_dot_q5_0_q8_0 */

/* MXFP4 codes to their (doubled) E2M1 values, and to those values + PSI_MXFP4_OFFSET. */
static const int8_t mxfp4_unsigned_values[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};
_Static_assert(PSI_MXFP4_OFFSET == 12, "mxfp4_unsigned_values holds the values + 12");

PSI_ALWAYS_INLINE __m256i mxfp4_lookup(const block_mxfp4 *b, const int8_t table16[16]) {
  const __m128i table = _mm_loadu_si128((const __m128i *)table16);
  return _mm256_shuffle_epi8(_mm256_setr_m128i(table, table), nibbles_32(b->qs));
}
PSI_ALWAYS_INLINE __m256i unpack_mxfp4(const block_mxfp4 *b) { return mxfp4_lookup(b, psi_mxfp4_values); }
PSI_ALWAYS_INLINE __m256i unpack_mxfp4_unsigned(const block_mxfp4 *b) { return mxfp4_lookup(b, mxfp4_unsigned_values); }

/* Half the e8m0 scale, 2^(e-128), by table: the scalar conversion's branch and
 * shifts cost more than the rest of a decode step's block. */
static float e8m0_half_table[256];
__attribute__((constructor)) static void fill_e8m0_half_table(void) {
  for (int e = 0; e < 256; e++) e8m0_half_table[e] = psi_e8m0_half_to_float((uint8_t)e);
}
PSI_ALWAYS_INLINE float scale_mxfp4(const block_mxfp4 *b) { return e8m0_half_table[b->e]; }

SEQUENTIAL_TILE(tile_mxfp4, block_mxfp4, unpack_mxfp4, scale_mxfp4)

/* Unsigned weights with a per-block minimum m: dot = d_w*d_x*sum(q*x) + m*s_x. */
#define UNSIGNED_TILE(name, block_t, unpack)                                                             \
  PSI_ALWAYS_INLINE void name##_n(const void *vw, const psi_tile_activations *x, const int nt,      \
                                  int64_t nb, float *out, int64_t out_stride) {                          \
    const block_t *w = vw;                                                                               \
    __m256 acc[PSI_TILE_TOKENS];                                                                         \
    float minimum[PSI_TILE_TOKENS];                                                                      \
    for (int t = 0; t < nt; t++) { acc[t] = _mm256_setzero_ps(); minimum[t] = 0; }                       \
    for (int64_t b = 0; b < nb; b++) {                                                                   \
      prefetch_ahead(&w[b], sizeof(block_t));                                                            \
      const __m256i u = unpack(&w[b]);                                                                   \
      const __m256 dw = _mm256_set1_ps(half_to_float(w[b].d));                                          \
      const float mw = half_to_float(w[b].m);                                                            \
      const block_q8_1 *xs = (const block_q8_1 *)x->blocks + b * PSI_TILE_TOKENS;                        \
      const float *dx = x->scales + b * PSI_TILE_TOKENS;                                                 \
      for (int t = 0; t < nt; t++) {                                                                     \
        const block_q8_1 *xb = &xs[t];                                                                   \
        const __m256i p = dot_u8_s8(_mm256_setzero_si256(), u, _mm256_loadu_si256((const __m256i *)xb->qs)); \
        const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(dx + t));                             \
        acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(p), acc[t]);                                  \
        minimum[t] += mw * half_to_float(xb->s);                                                         \
      }                                                                                                  \
    }                                                                                                    \
    float sums[PSI_TILE_TOKENS];                                                                         \
    store_sums(acc, nt, sums, 1);                                                                        \
    for (int t = 0; t < nt; t++) out[t * out_stride] = sums[t] + minimum[t];                             \
  }

/* Q4_1 in llama.cpp's order: per block acc_t = fma(isum_t, d_w*d_x_t, acc_t), then fma(m_w, s_x_t, acc_t). */
PSI_ALWAYS_INLINE void tile_q4_1_n(const void *vw, const psi_tile_activations *x, const int nt, int64_t nb, float *out,
                                   int64_t out_stride) {
  const block_q4_1 *w = vw;
  const __m256i live = token_mask(nt);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    prefetch_ahead(&w[b], sizeof(block_q4_1));
    const __m256i u = nibbles_32(w[b].qs);
    const block_q8_1 *xs = (const block_q8_1 *)x->blocks + b * PSI_TILE_TOKENS;
    __m256i p[PSI_TILE_TOKENS];
    uint16_t s[PSI_TILE_TOKENS];
    for (int t = 0; t < PSI_TILE_TOKENS; t++) {
      p[t] = t < nt ? dot_u8_s8(_mm256_setzero_si256(), u, _mm256_loadu_si256((const __m256i *)xs[t].qs)) : _mm256_setzero_si256();
      s[t] = t < nt ? xs[t].s : 0;
    }
    const __m256 d = _mm256_mul_ps(_mm256_set1_ps(half_to_float(w[b].d)), _mm256_maskload_ps(x->scales + b * PSI_TILE_TOKENS, live));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(token_sums(p)), d, acc);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(w[b].m)), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)s)), acc);
  }
  store_tokens(acc, nt, out, out_stride);
}

PSI_ALWAYS_INLINE __m256i unpack_q5_1(const block_q5_1 *b) {
  uint32_t qh;
  memcpy(&qh, b->qh, 4);
  return _mm256_or_si256(nibbles_32(b->qs), _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
}
UNSIGNED_TILE(tile_q5_1, block_q5_1, unpack_q5_1)

/* Q4_1 expert products in ggml_vec_dot_q4_1_q8_1's order, Q5_1's shape on the nibbles. */
PSI_ALWAYS_INLINE __m256i unpack_q4_1(const block_q4_1 *b) { return nibbles_32(b->qs); }
UNSIGNED_TILE(tile_q4_1_lanes, block_q4_1, unpack_q4_1)

#define EXPORT_TILE PSI_EXPORT_SIMD_TILE

#else /* portable: the reference, token by token */

#define EXPORT_TILE PSI_EXPORT_REFERENCE_TILE

#endif

EXPORT_TILE(q8_0)
EXPORT_TILE(q8_0_lanes)
EXPORT_TILE(q5_0_lanes)
EXPORT_TILE(q4_0)
EXPORT_TILE(q5_0)
EXPORT_TILE(mxfp4)
EXPORT_TILE(q4_1)
EXPORT_TILE(q4_1_lanes)
EXPORT_TILE(q5_1)
