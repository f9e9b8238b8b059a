/* psi_dequantize_row / psi_quantize_row: one entry point per direction for every
 * supported ggml tensor type, plus the F32/F16/BF16 rows.
 *   decode: src is n/block_size blocks, dst is n floats
 *   encode: src is n floats, dst is n/block_size blocks
 * Returns PSI_QUANT_OK or a negative PSI_QUANT_* status (quant.h).
 * Pointers must be naturally aligned (4 bytes covers every type). */
#include "api.h"
#include "quant.h"
#if defined(__F16C__) && defined(__AVX2__)
#include <immintrin.h>
#endif

typedef void (*decode_fn)(const void *, float *, int64_t);
typedef void (*encode_fn)(const float *, void *, int64_t);

typedef struct { int32_t type; int64_t block_size; int quantized; decode_fn decode; encode_fn encode; } codec_row;

static void decode_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void encode_f32(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }

static const codec_row codecs[] = {
  {PSI_F32, 1, 0, decode_f32, encode_f32},
  {PSI_F16, 1, 0, PSI_IMPL(psi_decode_f16), PSI_IMPL(psi_encode_f16)},
  {PSI_BF16, 1, 0, PSI_IMPL(psi_decode_bf16), PSI_IMPL(psi_encode_bf16)},
  {PSI_Q4_0, QK, 1, PSI_IMPL(psi_decode_q4_0), PSI_IMPL(psi_encode_q4_0)},
  {PSI_Q4_1, QK, 1, PSI_IMPL(psi_decode_q4_1), PSI_IMPL(psi_encode_q4_1)},
  {PSI_Q5_0, QK, 1, PSI_IMPL(psi_decode_q5_0), PSI_IMPL(psi_encode_q5_0)},
  {PSI_Q5_1, QK, 1, PSI_IMPL(psi_decode_q5_1), PSI_IMPL(psi_encode_q5_1)},
  {PSI_Q8_0, QK, 1, PSI_IMPL(psi_decode_q8_0), PSI_IMPL(psi_encode_q8_0)},
  {PSI_MXFP4, QK, 1, PSI_IMPL(psi_decode_mxfp4), PSI_IMPL(psi_encode_mxfp4)},
  {PSI_Q2_K, QK_K, 1, PSI_IMPL(psi_decode_q2_K), PSI_IMPL(psi_encode_q2_K)},
  {PSI_Q3_K, QK_K, 1, PSI_IMPL(psi_decode_q3_K), PSI_IMPL(psi_encode_q3_K)},
  {PSI_Q4_K, QK_K, 1, PSI_IMPL(psi_decode_q4_K), PSI_IMPL(psi_encode_q4_K)},
  {PSI_Q5_K, QK_K, 1, PSI_IMPL(psi_decode_q5_K), PSI_IMPL(psi_encode_q5_K)},
  {PSI_Q6_K, QK_K, 1, PSI_IMPL(psi_decode_q6_K), PSI_IMPL(psi_encode_q6_K)},
};

static const codec_row *find_codec(int32_t type) {
  for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
    if (codecs[i].type == type) return &codecs[i];
  return NULL;
}

/* Quantized blocks cannot hold NaN or infinity (ggml would write an arbitrary block), so encoding refuses them. */
static int all_finite(const float *x, int64_t n) {
  uint32_t any_special = 0;
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = psi_bits_of_float(x[i]);
    any_special |= (u & 0x7f800000u) == 0x7f800000u;
  }
  return !any_special;
}

int32_t PSI_IMPL(psi_dequantize_row)(int32_t type, const void *src, float *dst, int64_t n) {
  const codec_row *codec = find_codec(type);
  if (!codec) return PSI_QUANT_UNSUPPORTED_TYPE;
  if (n < 0 || n % codec->block_size != 0) return PSI_QUANT_PARTIAL_BLOCK;
  codec->decode(src, dst, n);
  return PSI_QUANT_OK;
}

int32_t PSI_IMPL(psi_quantize_row)(int32_t type, const float *src, void *dst, int64_t n) {
  const codec_row *codec = find_codec(type);
  if (!codec) return PSI_QUANT_UNSUPPORTED_TYPE;
  if (n < 0 || n % codec->block_size != 0) return PSI_QUANT_PARTIAL_BLOCK;
  if (codec->quantized && !all_finite(src, n)) return PSI_QUANT_NON_FINITE;
  codec->encode(src, dst, n);
  return PSI_QUANT_OK;
}

/* ---- F16 and BF16 rows ---- */

void PSI_IMPL(psi_decode_f16)(const void *src, float *dst, int64_t n) {
  const uint16_t *h = src;
  int64_t i = 0;
#if defined(__F16C__) && defined(__AVX2__)
  /* vcvtph2ps is exact and quiets NaNs keeping the payload, like the scalar path. */
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
#endif
  for (; i < n; i++) dst[i] = psi_half_to_float(h[i]);
}

void PSI_IMPL(psi_encode_f16)(const float *src, void *dst, int64_t n) {
  uint16_t *h = dst;
  int64_t i = 0;
#if defined(__F16C__) && defined(__AVX2__)
  /* vcvtps2ph rounds like the scalar path but keeps NaN payload bits; groups with a NaN take the scalar path. */
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(src + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
      for (int j = 0; j < 8; j++) h[i + j] = psi_float_to_half(src[i + j]);
    } else {
      _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
  }
#endif
  for (; i < n; i++) h[i] = psi_float_to_half(src[i]);
}

void PSI_IMPL(psi_decode_bf16)(const void *src, float *dst, int64_t n) {
  const uint16_t *h = src;
  uint32_t *out = (uint32_t *)dst;
  for (int64_t i = 0; i < n; i++) out[i] = (uint32_t)h[i] << 16;
}

void PSI_IMPL(psi_encode_bf16)(const float *src, void *dst, int64_t n) {
  uint16_t *h = dst;
  for (int64_t i = 0; i < n; i++) h[i] = psi_float_to_bf16(src[i]);
}
