/* The AVX-512 VNNI paths psi_matmul takes before its per-row tiles: prefill
 * products with weight panels (matmul_panel*.c) for PSI_PANEL_MIN_TOKENS or
 * more tokens; below that, 16 rows at a time (matmul_rows16.c: Q8_0, Q4_0,
 * Q4_1, MXFP4; matmul_*_rows16.c: the repacked MXFP4 and Q8_0 layouts), and for Q5_0 one-token products two rows at a time
 * (matmul_decode.c). */
#ifndef PSI_MATMUL_PANEL_H
#define PSI_MATMUL_PANEL_H

#include "matmul.h"

#if PSI_MATMUL_VNNI && defined(__AVX512F__) && defined(__AVX512BW__)
#define PSI_MATMUL_PANELS 1
#else
#define PSI_MATMUL_PANELS 0
#endif

/* Below this many tokens unpacking a panel costs more than it saves: on
 * llama-180m's matrices, one thread, the panels and the per-row tiles are even
 * at 4 tokens (Q4_0 0.43 ms both), the panels 1.5x faster at 8. */
#define PSI_PANEL_MIN_TOKENS 6

/* One product as the panel kernels see it. acts/act_scales/act_corrections
 * are psi_matmul's interleaved activations (matmul.h): Q8_0 with scales and
 * corrections, or Q8_K for the K-quants. */
typedef struct {
  int32_t type;
  const uint8_t *w;
  int64_t rows, nb, row_bytes, block_bytes;
  const uint8_t *acts;
  int64_t act_tile_bytes;
  const float *act_scales;
  const int32_t *act_corrections;
  int64_t n_tokens;
  float *y;
} psi_panel_args;

/* The 16-row layouts' repacks (matmul_mxfp4_rows16.c, matmul_q8_0_rows16.c),
 * behind psi_matmul_repack; PSI_MATMUL_UNSUPPORTED_TYPE in builds without their products. */
int32_t PSI_IMPL(psi_repack_mxfp4_rows16)(const void *src, void *dst, int64_t rows, int64_t cols);
int32_t PSI_IMPL(psi_repack_q8_0_rows16)(const void *src, void *dst, int64_t rows, int64_t cols);

#if PSI_MATMUL_PANELS
/* Scratch bytes one thread needs for `type` with nb blocks per row; 0: no panel kernel for the type. */
int64_t PSI_IMPL(psi_panel_scratch_bytes)(int32_t type, int64_t nb);
/* y rows [r_begin, r_end) for every token; scratch holds psi_panel_scratch_bytes. */
void PSI_IMPL(psi_panel_multiply)(const psi_panel_args *a, int64_t r_begin, int64_t r_end, void *scratch);
/* One-token products (matmul_decode.c) for rows [r0, r1); 0: not for this type. */
int PSI_IMPL(psi_decode_rows)(int32_t type, const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,
                              const psi_tile_activations *x, float *y);
/* Products of nt <= 5 tokens, 16 rows at a time (matmul_rows16.c), for rows
 * [r0, r1) into y[t*y_stride + r]; 0: not for this type or shape. */
int PSI_IMPL(psi_rows16)(int32_t type, const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,
                         const psi_tile_activations *x, int nt, float *y, int64_t y_stride);
/* The repacked MXFP4 layout (matmul_mxfp4_rows16.c): nt <= 5 tokens against
 * whole 16-row groups [r0, r1), and one group's blocks unpacked into half of a panel. */
void PSI_IMPL(psi_rows16_mxfp4_packed)(const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,
                                       const psi_tile_activations *x, int nt, float *y, int64_t y_stride);
void PSI_IMPL(psi_panel_unpack_mxfp4_packed)(const uint8_t *group, int64_t nb, int half, uint8_t *q, float *d, int panel_rows);
/* The repacked Q8_0 layout (matmul_q8_0_rows16.c): 1-16 tokens (every activation
 * tile, from the first) against whole 16-row groups [r0, r1), and one group into half of a panel. */
void PSI_IMPL(psi_rows16_q8_0_packed)(const uint8_t *w, int64_t row_bytes, int64_t r0, int64_t r1, int64_t nb,
                                      const psi_tile_activations *x, int64_t n_tokens, float *y, int64_t y_stride);
void PSI_IMPL(psi_panel_unpack_q8_0_packed)(const uint8_t *group, int64_t nb, int half, uint8_t *q, float *d, int panel_rows);
/* The K-quant panels (matmul_panel_kquant.c), which psi_panel_* hand Q2_K..Q6_K to. */
int64_t PSI_IMPL(psi_panel_kquant_scratch_bytes)(int32_t type, int64_t nb);
void PSI_IMPL(psi_panel_kquant_multiply)(const psi_panel_args *a, int64_t r_begin, int64_t r_end, void *scratch);
#endif

#endif
