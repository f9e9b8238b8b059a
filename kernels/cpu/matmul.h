/* Quantized matrix products: Y[t][r] = dot(W row r, X[t]) on quantized W.
 *
 * As in ggml, the activations X are first quantized per token into the type
 * ggml pairs with the weight type (its `vec_dot_type`), and each row-token dot
 * product runs on integers block by block, the scales applied in float:
 *   Q4_0 Q5_0 Q8_0 MXFP4 -> Q8_0 activations     Q4_1 Q5_1 -> Q8_1
 *   Q2_K..Q6_K           -> Q8_K                 F16 -> F32 (unrounded), BF16 -> BF16, F32 -> F32
 *
 * Every weight type has a plain reference dot (matmul_reference.c, in the
 * summation order llama.cpp's CPU backend uses on an AMX machine, docs/PARITY.md)
 * and may have a fast
 * tile (matmul_legacy_simd.c, matmul_kquant_simd.c, matmul_float_simd.c) that
 * computes one weight row against up to PSI_TILE_TOKENS tokens, loading each
 * weight block once. AVX-512 VNNI builds take faster paths first
 * (matmul_panel.h): weight panels with rows across the vector lanes for
 * prefill (matmul_panel*.c), 16 rows at a time for up to 16 tokens
 * (matmul_rows16.c, and the repacked layouts below), and one-token Q5_0
 * products two blocks and two rows at a time (matmul_decode.c). Tests hold
 * every path to the reference. */
#ifndef PSI_MATMUL_H
#define PSI_MATMUL_H

#include "quant.h"

/* Status codes of psi_matmul and friends (src/runtime/cpu/matmul.ts names them). */
#define PSI_MATMUL_OK 0
#define PSI_MATMUL_UNSUPPORTED_TYPE (-1)
#define PSI_MATMUL_BAD_SHAPE (-2)
#define PSI_MATMUL_BAD_THREADS (-3)
#define PSI_MATMUL_OUT_OF_MEMORY (-4)

/* ggml type ids of the activation-only types (quant.h has the weight types). */
enum { PSI_Q8_1 = 9, PSI_Q8_K = 15 };

/* psionic's own weight layouts, past ggml's type ids: a ggml type's bytes
 * rearranged once at load (psi_matmul_repack) for faster products with the
 * same bits. PSI_MXFP4_ROWS16, PSI_Q8_0_ROWS16: MXFP4 and Q8_0 in groups of
 * 16 rows (matmul_mxfp4_rows16.c, matmul_q8_0_rows16.c); AVX-512 VNNI builds only. */
enum { PSI_MXFP4_ROWS16 = 0x1000 + PSI_MXFP4, PSI_Q8_0_ROWS16 = 0x1000 + PSI_Q8_0 };

/* psionic's ids for a ggml type's bytes multiplied in another order: the one
 * llama.cpp takes for expert products (MUL_MAT_ID) where it differs from
 * psi_matmul's for the type (docs/PARITY.md §3). PSI_Q8_0_LANES, PSI_Q5_0_LANES:
 * ggml_vec_dot_q8_0_q8_0's / ggml_vec_dot_q5_0_q8_0's 8 lanes; PSI_Q4_K_8X8:
 * the q4_K_8x8 repack gemv's two accumulators; PSI_Q4_1_LANES, PSI_Q5_K_LANES:
 * ggml_vec_dot_q4_1_q8_1's / _q5_K_q8_K's 8 float lanes and a scalar sum of
 * the minimum terms (Q3_K's dense order is already its vec_dot's);
 * PSI_BF16_LANES: ggml_vec_dot_bf16's two 16-lane vdpbf16ps accumulators at
 * every batch size (BF16's one-token order; without its tinyBLAS batches). */
enum {
  PSI_Q8_0_LANES = 0x2000 + PSI_Q8_0,
  PSI_Q5_0_LANES = 0x2000 + PSI_Q5_0,
  PSI_Q4_K_8X8 = 0x2000 + PSI_Q4_K,
  PSI_Q4_1_LANES = 0x2000 + PSI_Q4_1,
  PSI_Q5_K_LANES = 0x2000 + PSI_Q5_K,
  PSI_BF16_LANES = 0x2000 + PSI_BF16,
};

/* Activation blocks (ggml-common.h layouts). */
typedef struct { uint16_t d, s; int8_t qs[32]; } block_q8_1; /* s = fp16(d * sum(qs)) */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
_Static_assert(sizeof(block_q8_1) == 36, "q8_1 block is 36 bytes");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K block is 292 bytes");

/* Tokens one fast tile handles per weight-row pass. */
#define PSI_TILE_TOKENS 8

/* Activation quantizers: n floats (a whole number of blocks) -> blocks.
 * Q8_0/Q8_1 round exactly as ggml's x86 quantize_row_q8_0/q8_1 (ties to even,
 * scale 127/amax), which is what llama.cpp's CPU backend uses for activations
 * here, not quantize_row_q8_0_ref (ties away from zero, scale 1/d). */
void PSI_IMPL(psi_act_q8_0)(const float *x, void *dst, int64_t n);
/* One Q8_0 block of 32 values, as psi_act_q8_0; returns the sum of its quants. */
int32_t PSI_IMPL(psi_act_q8_0_block)(const float *x, void *dst);
void PSI_IMPL(psi_act_q8_1)(const float *x, void *dst, int64_t n);
void PSI_IMPL(psi_act_q8_K)(const float *x, void *dst, int64_t n);
void PSI_IMPL(psi_act_f16)(const float *x, void *dst, int64_t n);
void PSI_IMPL(psi_act_bf16)(const float *x, void *dst, int64_t n);

/* Reference dot of one weight row (nb blocks) with one activation row. */
typedef float (*psi_reference_dot)(const void *w, const void *x, int64_t nb);
#define PSI_REFERENCE_DOT(type) float PSI_IMPL(psi_ref_dot_##type)(const void *w, const void *x, int64_t nb);
PSI_REFERENCE_DOT(q4_0) PSI_REFERENCE_DOT(q4_1) PSI_REFERENCE_DOT(q5_0) PSI_REFERENCE_DOT(q5_1)
PSI_REFERENCE_DOT(q8_0) PSI_REFERENCE_DOT(mxfp4)
PSI_REFERENCE_DOT(q2_K) PSI_REFERENCE_DOT(q3_K) PSI_REFERENCE_DOT(q4_K) PSI_REFERENCE_DOT(q5_K) PSI_REFERENCE_DOT(q6_K)
PSI_REFERENCE_DOT(f32) PSI_REFERENCE_DOT(f16) PSI_REFERENCE_DOT(bf16)
PSI_REFERENCE_DOT(q8_0_lanes) PSI_REFERENCE_DOT(q5_0_lanes) PSI_REFERENCE_DOT(q4_K_8x8)
PSI_REFERENCE_DOT(q4_1_lanes) PSI_REFERENCE_DOT(q5_K_lanes)
/* F32 and BF16 weights take another order for more than one token (llamafile's tinyBLAS). */
PSI_REFERENCE_DOT(f32_batch) PSI_REFERENCE_DOT(bf16_batch)
#undef PSI_REFERENCE_DOT
/* The sum of 16 floats in the tree GCC's _mm512_reduce_add_ps uses. */
float PSI_IMPL(psi_sum16)(const float l[16]);

/* The SIMD builds lay quantized activations out interleaved by token within
 * each tile of PSI_TILE_TOKENS tokens, so a tile finds token t's block b at a
 * fixed offset from block b of token 0 (one pointer, constant displacements).
 * The portable build keeps one row per token for the reference dots. */
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define PSI_MATMUL_INTERLEAVED 1
#else
#define PSI_MATMUL_INTERLEAVED 0
#endif

/* AVX-512 VNNI builds multiply unsigned weight bytes: w + offset, per type. */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define PSI_MATMUL_VNNI 1
#else
#define PSI_MATMUL_VNNI 0
#endif
#define PSI_Q4_0_OFFSET 8
#define PSI_Q5_0_OFFSET 16
#define PSI_Q8_0_OFFSET 128
#define PSI_MXFP4_OFFSET 12

/* A tile's view of the activations of its tokens.
 *   quantized, interleaved: token t's block b at blocks + (b*PSI_TILE_TOKENS + t) * block bytes,
 *     and for Q8_0/Q8_1 its d as float at scales[b*PSI_TILE_TOKENS + t]; in VNNI
 *     builds, for offset weight types, -offset * sum(qs) at corrections[b*PSI_TILE_TOKENS + t]
 *   rows (float types, and the portable build): token t at blocks + t*stride */
typedef struct {
  const uint8_t *blocks;
  int64_t stride;
  const float *scales;
  const int32_t *corrections;
} psi_tile_activations;

/* Fast tile: one weight row (nb blocks) against nt <= PSI_TILE_TOKENS tokens;
 * writes out[t * out_stride]. */
typedef void (*psi_fast_tile)(const void *w, const psi_tile_activations *x, int nt, int64_t nb, float *out, int64_t out_stride);
#define PSI_FAST_TILE(type) void PSI_IMPL(psi_tile_##type)(const void *w, const psi_tile_activations *x, int nt, int64_t nb, float *out, int64_t out_stride);
PSI_FAST_TILE(q4_0) PSI_FAST_TILE(q4_1) PSI_FAST_TILE(q5_0) PSI_FAST_TILE(q5_1) PSI_FAST_TILE(q8_0) PSI_FAST_TILE(mxfp4)
PSI_FAST_TILE(q2_K) PSI_FAST_TILE(q3_K) PSI_FAST_TILE(q4_K) PSI_FAST_TILE(q5_K) PSI_FAST_TILE(q6_K)
PSI_FAST_TILE(f32) PSI_FAST_TILE(f16) PSI_FAST_TILE(bf16) PSI_FAST_TILE(f32_batch)
PSI_FAST_TILE(q8_0_lanes) PSI_FAST_TILE(q5_0_lanes) PSI_FAST_TILE(q4_K_8x8)
PSI_FAST_TILE(q4_1_lanes) PSI_FAST_TILE(q5_K_lanes) PSI_FAST_TILE(bf16_batch)
#undef PSI_FAST_TILE

/* The portable build's tiles: the reference dot, token by token. */
#define PSI_EXPORT_REFERENCE_TILE(type)                                                                  \
  void PSI_IMPL(psi_tile_##type)(const void *w, const psi_tile_activations *x, int nt, int64_t nb,     \
                                 float *out, int64_t out_stride) {                                      \
    for (int t = 0; t < nt; t++) out[t * out_stride] = PSI_IMPL(psi_ref_dot_##type)(w, x->blocks + t * x->stride, nb); \
  }

/* 6-bit scale and min j (0..7) of a Q4_K/Q5_K super-block (ggml's get_scale_min_k4). */
static inline void psi_kquant_scale_min(int j, const uint8_t *q, uint8_t *scale, uint8_t *min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

/* The 16 signed 6-bit scales of a Q3_K super-block, offset by -32 already removed. */
static inline void psi_q3_K_scales(const uint8_t packed[12], int8_t scales[16]) {
  for (int j = 0; j < 16; j++) {
    int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
    int high = (packed[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    scales[j] = (int8_t)((low | (high << 4)) - 32);
  }
}

#endif
