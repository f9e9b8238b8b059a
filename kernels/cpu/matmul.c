/* psi_matmul: Y[t][r] = dot(W row r, X[t]) for a quantized (or float) W.
 *   W is rows x cols in `type` (rows of cols/block_size blocks, row-major)
 *   X is n_tokens x cols float32, Y is n_tokens x rows float32 (token-major)
 * X is first quantized per token to the weight type's activation type (see
 * matmul.h), split over the pool by tokens; the product is then split over the
 * pool by rows. Each row-token value is computed by one thread with the same
 * instructions whatever the split, so results are bit-identical for every
 * thread count. psi_matmul_reference is the single-threaded plain reference. */
#include <stdlib.h>
#include "api.h"
#include "matmul.h"
#include "matmul_panel.h"
#include "threadpool.h"

typedef void (*activation_quantizer)(const float *x, void *dst, int64_t n);

typedef struct {
  int32_t type;
  int32_t block_size, block_bytes;
  int32_t activation_type;   /* ggml type id of the quantized activations */
  int32_t activation_bytes;  /* bytes per activation block (per value for float types) */
  activation_quantizer quantize; /* NULL: the activations are the float32 input itself */
  psi_reference_dot reference;
  psi_fast_tile tile;
  int32_t weight_offset; /* VNNI tiles multiply w + weight_offset (matmul.h); 0: not used */
  /* For more than one token, where llama.cpp sums in another order (F32); NULL: the same. */
  psi_reference_dot reference_batch;
  psi_fast_tile tile_batch;
} matmul_type;

static const matmul_type types[] = {
  {PSI_Q4_0, QK, sizeof(block_q4_0), PSI_Q8_0, sizeof(block_q8_0), PSI_IMPL(psi_act_q8_0), PSI_IMPL(psi_ref_dot_q4_0), PSI_IMPL(psi_tile_q4_0), PSI_Q4_0_OFFSET, NULL, NULL},
  {PSI_Q4_1, QK, sizeof(block_q4_1), PSI_Q8_1, sizeof(block_q8_1), PSI_IMPL(psi_act_q8_1), PSI_IMPL(psi_ref_dot_q4_1), PSI_IMPL(psi_tile_q4_1), 0, NULL, NULL},
  {PSI_Q5_0, QK, sizeof(block_q5_0), PSI_Q8_0, sizeof(block_q8_0), PSI_IMPL(psi_act_q8_0), PSI_IMPL(psi_ref_dot_q5_0), PSI_IMPL(psi_tile_q5_0), PSI_Q5_0_OFFSET, NULL, NULL},
  {PSI_Q5_1, QK, sizeof(block_q5_1), PSI_Q8_1, sizeof(block_q8_1), PSI_IMPL(psi_act_q8_1), PSI_IMPL(psi_ref_dot_q5_1), PSI_IMPL(psi_tile_q5_1), 0, NULL, NULL},
  {PSI_Q8_0, QK, sizeof(block_q8_0), PSI_Q8_0, sizeof(block_q8_0), PSI_IMPL(psi_act_q8_0), PSI_IMPL(psi_ref_dot_q8_0), PSI_IMPL(psi_tile_q8_0), PSI_Q8_0_OFFSET, NULL, NULL},
  {PSI_MXFP4, QK, sizeof(block_mxfp4), PSI_Q8_0, sizeof(block_q8_0), PSI_IMPL(psi_act_q8_0), PSI_IMPL(psi_ref_dot_mxfp4), PSI_IMPL(psi_tile_mxfp4), PSI_MXFP4_OFFSET, NULL, NULL},
  {PSI_Q2_K, QK_K, sizeof(block_q2_K), PSI_Q8_K, sizeof(block_q8_K), PSI_IMPL(psi_act_q8_K), PSI_IMPL(psi_ref_dot_q2_K), PSI_IMPL(psi_tile_q2_K), 0, NULL, NULL},
  {PSI_Q3_K, QK_K, sizeof(block_q3_K), PSI_Q8_K, sizeof(block_q8_K), PSI_IMPL(psi_act_q8_K), PSI_IMPL(psi_ref_dot_q3_K), PSI_IMPL(psi_tile_q3_K), 0, NULL, NULL},
  {PSI_Q4_K, QK_K, sizeof(block_q4_K), PSI_Q8_K, sizeof(block_q8_K), PSI_IMPL(psi_act_q8_K), PSI_IMPL(psi_ref_dot_q4_K), PSI_IMPL(psi_tile_q4_K), 0, NULL, NULL},
  {PSI_Q5_K, QK_K, sizeof(block_q5_K), PSI_Q8_K, sizeof(block_q8_K), PSI_IMPL(psi_act_q8_K), PSI_IMPL(psi_ref_dot_q5_K), PSI_IMPL(psi_tile_q5_K), 0, NULL, NULL},
  {PSI_Q6_K, QK_K, sizeof(block_q6_K), PSI_Q8_K, sizeof(block_q8_K), PSI_IMPL(psi_act_q8_K), PSI_IMPL(psi_ref_dot_q6_K), PSI_IMPL(psi_tile_q6_K), 0, NULL, NULL},
  {PSI_F32, 1, 4, PSI_F32, 4, NULL, PSI_IMPL(psi_ref_dot_f32), PSI_IMPL(psi_tile_f32), 0, PSI_IMPL(psi_ref_dot_f32_batch), PSI_IMPL(psi_tile_f32_batch)},
  /* F16 weights against unrounded F32 activations, as ggml's AMX F16 kernel. */
  {PSI_F16, 1, 2, PSI_F32, 4, NULL, PSI_IMPL(psi_ref_dot_f16), PSI_IMPL(psi_tile_f16), 0, NULL, NULL},
  /* BF16: ggml_vec_dot_bf16 for one token, llamafile's tinyBLAS for more, as F32. */
  {PSI_BF16, 1, 2, PSI_BF16, 2, PSI_IMPL(psi_act_bf16), PSI_IMPL(psi_ref_dot_bf16), PSI_IMPL(psi_tile_bf16), 0, PSI_IMPL(psi_ref_dot_bf16_batch), PSI_IMPL(psi_tile_bf16_batch)},
  /* Expert products in llama.cpp's MUL_MAT_ID orders (matmul.h); the row-by-row tiles only. */
  {PSI_Q8_0_LANES, QK, sizeof(block_q8_0), PSI_Q8_0, sizeof(block_q8_0), PSI_IMPL(psi_act_q8_0), PSI_IMPL(psi_ref_dot_q8_0_lanes), PSI_IMPL(psi_tile_q8_0_lanes), 0, NULL, NULL},
  {PSI_Q5_0_LANES, QK, sizeof(block_q5_0), PSI_Q8_0, sizeof(block_q8_0), PSI_IMPL(psi_act_q8_0), PSI_IMPL(psi_ref_dot_q5_0_lanes), PSI_IMPL(psi_tile_q5_0_lanes), 0, NULL, NULL},
  {PSI_Q4_K_8X8, QK_K, sizeof(block_q4_K), PSI_Q8_K, sizeof(block_q8_K), PSI_IMPL(psi_act_q8_K), PSI_IMPL(psi_ref_dot_q4_K_8x8), PSI_IMPL(psi_tile_q4_K_8x8), 0, NULL, NULL},
  {PSI_Q4_1_LANES, QK, sizeof(block_q4_1), PSI_Q8_1, sizeof(block_q8_1), PSI_IMPL(psi_act_q8_1), PSI_IMPL(psi_ref_dot_q4_1_lanes), PSI_IMPL(psi_tile_q4_1_lanes), 0, NULL, NULL},
  {PSI_Q5_K_LANES, QK_K, sizeof(block_q5_K), PSI_Q8_K, sizeof(block_q8_K), PSI_IMPL(psi_act_q8_K), PSI_IMPL(psi_ref_dot_q5_K_lanes), PSI_IMPL(psi_tile_q5_K_lanes), 0, NULL, NULL},
  {PSI_BF16_LANES, 1, 2, PSI_BF16, 2, PSI_IMPL(psi_act_bf16), PSI_IMPL(psi_ref_dot_bf16), PSI_IMPL(psi_tile_bf16), 0, NULL, NULL},
#if PSI_MATMUL_PANELS
  /* Repacked MXFP4 (matmul_mxfp4_rows16.c): the panels and rows16 read it; no plain reference or tile. */
  {PSI_MXFP4_ROWS16, QK, sizeof(block_mxfp4), PSI_Q8_0, sizeof(block_q8_0), PSI_IMPL(psi_act_q8_0), NULL, NULL, PSI_MXFP4_OFFSET, NULL, NULL},
  /* Repacked Q8_0 (matmul_q8_0_rows16.c), likewise. */
  {PSI_Q8_0_ROWS16, QK, sizeof(block_q8_0), PSI_Q8_0, sizeof(block_q8_0), PSI_IMPL(psi_act_q8_0), NULL, NULL, PSI_Q8_0_OFFSET, NULL, NULL},
#endif
};

static const matmul_type *find_type(int32_t type) {
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (types[i].type == type) return &types[i];
  return NULL;
}

/* Largest dimension accepted: keeps every byte offset far from int64 overflow. */
#define MAX_DIMENSION ((int64_t)1 << 31)

static int32_t check_shape(const matmul_type *m, int64_t rows, int64_t cols, int64_t n_tokens) {
  if (!m) return PSI_MATMUL_UNSUPPORTED_TYPE;
  if (rows < 0 || n_tokens < 0 || cols <= 0 || rows > MAX_DIMENSION || cols > MAX_DIMENSION || n_tokens > MAX_DIMENSION)
    return PSI_MATMUL_BAD_SHAPE;
  if (cols % m->block_size != 0) return PSI_MATMUL_BAD_SHAPE;
  return PSI_MATMUL_OK;
}

typedef struct {
  const matmul_type *m;
  const uint8_t *w;
  int64_t rows, nb, row_bytes;
  const float *x;
  int64_t cols, n_tokens;
  /* Activations as the tiles read them (matmul.h): interleaved per tile of
   * PSI_TILE_TOKENS tokens (tile_bytes each, scales nb*PSI_TILE_TOKENS floats
   * each), or one row of row_bytes per token. */
  int interleaved;
  uint8_t *acts;
  int64_t act_row_bytes, act_tile_bytes;
  float *act_scales;
  int32_t *act_corrections;
  float *y;
  /* Panel path (matmul_panel.h): per-thread scratch of panel_scratch_bytes, or NULL. */
  uint8_t *panel_scratch;
  int64_t panel_scratch_bytes;
} matmul_job;

static void quantize_tokens(void *context, int ith, int nth) {
  const matmul_job *job = context;
  const matmul_type *m = job->m;
  int64_t begin, end;
  psi_pool_split(job->n_tokens, 1, ith, nth, &begin, &end);
  for (int64_t t = begin; t < end; t++) {
    const float *x = job->x + t * job->cols;
    if (!job->interleaved) {
      m->quantize(x, job->acts + t * job->act_row_bytes, job->cols);
      continue;
    }
    const int64_t tile = t / PSI_TILE_TOKENS, slot = t % PSI_TILE_TOKENS;
    uint8_t *blocks = job->acts + tile * job->act_tile_bytes;
    const int64_t first = tile * job->nb * PSI_TILE_TOKENS + slot; /* index of block 0 in scales/corrections */
    if (m->activation_type == PSI_Q8_0) { /* the common case, without re-reading each block */
      for (int64_t b = 0; b < job->nb; b++) {
        block_q8_0 *block = (block_q8_0 *)blocks + b * PSI_TILE_TOKENS + slot;
        const int32_t sum = PSI_IMPL(psi_act_q8_0_block)(x + b * QK, block);
        job->act_scales[first + b * PSI_TILE_TOKENS] = psi_half_to_float(block->d);
        if (job->act_corrections) job->act_corrections[first + b * PSI_TILE_TOKENS] = -m->weight_offset * sum;
      }
      continue;
    }
    for (int64_t b = 0; b < job->nb; b++) {
      uint8_t *block = blocks + (b * PSI_TILE_TOKENS + slot) * m->activation_bytes;
      m->quantize(x + b * m->block_size, block, m->block_size);
      if (job->act_scales) {
        uint16_t d;
        memcpy(&d, block, 2); /* d leads both Q8_0 and Q8_1 blocks */
        job->act_scales[first + b * PSI_TILE_TOKENS] = psi_half_to_float(d);
      }
      if (job->act_corrections) {
        const int8_t *qs = ((const block_q8_0 *)block)->qs;
        int32_t sum = 0;
        for (int j = 0; j < QK; j++) sum += qs[j];
        job->act_corrections[first + b * PSI_TILE_TOKENS] = -m->weight_offset * sum;
      }
    }
  }
}

/* Rows a thread keeps hot while it walks every token tile: 32 rows of a
 * 4096-wide Q8_0 matrix are ~140 KB, comfortably inside L2. */
#define ROW_BLOCK 32

/* Rows per panel (matmul_panel.c): the panel path splits rows on its boundaries. */
#define PANEL_GRANULE 32

/* Up to this many tokens (a batched decode step of several sequences), the
 * 16-row kernel reads each weight block once per tile of 8 tokens with no
 * per-call repacking; the panel path's weight packing only pays off beyond. */
#define ROWS16_MAX_TOKENS 16

static int rows16_eligible(const int32_t type, const int64_t n_tokens) {
#if PSI_MATMUL_PANELS
  return n_tokens <= ROWS16_MAX_TOKENS && (type == PSI_Q8_0 || type == PSI_Q4_0 || type == PSI_Q4_1 || type == PSI_MXFP4 || type == PSI_Q8_0_ROWS16);
#else
  (void)type, (void)n_tokens;
  return 0;
#endif
}

#if PSI_MATMUL_PANELS
/* Rows [r0, r1) of a repacked Q8_0 matrix past its last whole group: plain Q8_0
 * bytes, each tile of tokens by the 16-row kernel, or (a row too long for its
 * 32-bit gather offsets) by the Q8_0 tile row by row; the same bits either way. */
static void multiply_plain_tail(const matmul_job *job, int64_t r0, int64_t r1) {
  const matmul_type *plain = find_type(PSI_Q8_0);
  for (int64_t t = 0; t < job->n_tokens; t += PSI_TILE_TOKENS) {
    const int64_t tile = t / PSI_TILE_TOKENS;
    const int nt = job->n_tokens - t < PSI_TILE_TOKENS ? (int)(job->n_tokens - t) : PSI_TILE_TOKENS;
    const psi_tile_activations x = {job->acts + tile * job->act_tile_bytes, 0, job->act_scales + tile * job->nb * PSI_TILE_TOKENS,
                                    job->act_corrections + tile * job->nb * PSI_TILE_TOKENS};
    float *y = job->y + t * job->rows;
    if (PSI_IMPL(psi_rows16)(PSI_Q8_0, job->w, job->row_bytes, r0, r1, job->nb, &x, nt, y, job->rows)) continue;
    for (int64_t r = r0; r < r1; r++) plain->tile(job->w + r * job->row_bytes, &x, nt, job->nb, y + r, job->rows);
  }
}
#endif

static void multiply_rows(void *context, int ith, int nth) {
  const matmul_job *job = context;
  int64_t begin, end;
#if PSI_MATMUL_PANELS
  if (job->panel_scratch) {
    psi_pool_split(job->rows, PANEL_GRANULE, ith, nth, &begin, &end);
    const psi_panel_args args = {job->m->type, job->w, job->rows, job->nb, job->row_bytes, job->m->block_bytes,
                                 job->acts, job->act_tile_bytes, job->act_scales, job->act_corrections, job->n_tokens, job->y};
    if (begin < end) PSI_IMPL(psi_panel_multiply)(&args, begin, end, job->panel_scratch + ith * job->panel_scratch_bytes);
    return;
  }
#endif
  const int32_t type = job->m->type;
#if PSI_MATMUL_PANELS
  if (type == PSI_MXFP4_ROWS16) { /* fewer than PSI_PANEL_MIN_TOKENS tokens: whole groups, then the plain tail rows */
    psi_pool_split(job->rows, 16, ith, nth, &begin, &end);
    const psi_tile_activations x = {job->acts, 0, job->act_scales, job->act_corrections};
    const int64_t packed_end = end < job->rows / 16 * 16 ? end : job->rows / 16 * 16;
    if (begin < packed_end) PSI_IMPL(psi_rows16_mxfp4_packed)(job->w, job->row_bytes, begin, packed_end, job->nb, &x, (int)job->n_tokens, job->y, job->rows);
    if (packed_end < end) PSI_IMPL(psi_rows16)(PSI_MXFP4, job->w, job->row_bytes, packed_end, end, job->nb, &x, (int)job->n_tokens, job->y, job->rows);
    return;
  }
  if (type == PSI_Q8_0_ROWS16) { /* up to ROWS16_MAX_TOKENS tokens: whole groups, then the plain tail rows */
    psi_pool_split(job->rows, 16, ith, nth, &begin, &end);
    const psi_tile_activations x = {job->acts, 0, job->act_scales, job->act_corrections};
    const int64_t packed_end = end < job->rows / 16 * 16 ? end : job->rows / 16 * 16;
    if (begin < packed_end) PSI_IMPL(psi_rows16_q8_0_packed)(job->w, job->row_bytes, begin, packed_end, job->nb, &x, job->n_tokens, job->y, job->rows);
    if (packed_end < end) multiply_plain_tail(job, packed_end, end);
    return;
  }
  if (job->interleaved && rows16_eligible(type, job->n_tokens)) {
    psi_pool_split(job->rows, 16, ith, nth, &begin, &end);
    if (begin >= end) return;
    int done = 1;
    for (int64_t t = 0; t < job->n_tokens && done; t += PSI_TILE_TOKENS) {
      const int64_t tile = t / PSI_TILE_TOKENS;
      const int nt = job->n_tokens - t < PSI_TILE_TOKENS ? (int)(job->n_tokens - t) : PSI_TILE_TOKENS;
      const psi_tile_activations x = {job->acts + tile * job->act_tile_bytes, 0, job->act_scales + tile * job->nb * PSI_TILE_TOKENS,
                                      job->act_corrections ? job->act_corrections + tile * job->nb * PSI_TILE_TOKENS : NULL};
      done = PSI_IMPL(psi_rows16)(type, job->w, job->row_bytes, begin, end, job->nb, &x, nt, job->y + t * job->rows, job->rows);
    }
    if (done) return;
  } else
#endif
  psi_pool_split(job->rows, 4, ith, nth, &begin, &end);
  const psi_fast_tile row_tile = job->n_tokens > 1 && job->m->tile_batch ? job->m->tile_batch : job->m->tile;
#if PSI_MATMUL_PANELS
  if (job->n_tokens == 1 && job->interleaved && job->act_corrections) {
    const psi_tile_activations x = {job->acts, 0, job->act_scales, job->act_corrections};
    if (begin >= end || PSI_IMPL(psi_decode_rows)(job->m->type, job->w, job->row_bytes, begin, end, job->nb, &x, job->y)) return;
  }
#endif
  for (int64_t r0 = begin; r0 < end; r0 += ROW_BLOCK) {
    const int64_t r1 = r0 + ROW_BLOCK < end ? r0 + ROW_BLOCK : end;
    for (int64_t t = 0; t < job->n_tokens; t += PSI_TILE_TOKENS) {
      const int nt = job->n_tokens - t < PSI_TILE_TOKENS ? (int)(job->n_tokens - t) : PSI_TILE_TOKENS;
      const int64_t tile = t / PSI_TILE_TOKENS;
      const psi_tile_activations x = job->interleaved
          ? (psi_tile_activations){job->acts + tile * job->act_tile_bytes, 0,
                                   job->act_scales ? job->act_scales + tile * job->nb * PSI_TILE_TOKENS : NULL,
                                   job->act_corrections ? job->act_corrections + tile * job->nb * PSI_TILE_TOKENS : NULL}
          : (psi_tile_activations){job->acts + t * job->act_row_bytes, job->act_row_bytes, NULL, NULL};
      for (int64_t r = r0; r < r1; r++)
        row_tile(job->w + r * job->row_bytes, &x, nt, job->nb, job->y + t * job->rows + r, job->rows);
    }
  }
}

int32_t PSI_IMPL(psi_matmul)(int32_t type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n_tokens,
                             float *y, int32_t threads) {
  const matmul_type *m = find_type(type);
  int32_t status = check_shape(m, rows, cols, n_tokens);
  if (status != PSI_MATMUL_OK) return status;
  if (threads < 1 || threads > PSI_POOL_MAX_THREADS) return PSI_MATMUL_BAD_THREADS;
  if (rows == 0 || n_tokens == 0) return PSI_MATMUL_OK;
  const int64_t nb = cols / m->block_size;
  const int q8 = m->activation_type == PSI_Q8_0 || m->activation_type == PSI_Q8_1 || m->activation_type == PSI_Q8_K;
  matmul_job job = {m, w, rows, nb, nb * m->block_bytes, x, cols, n_tokens,
                    PSI_MATMUL_INTERLEAVED && q8, (uint8_t *)x, cols * 4, 0, NULL, NULL, y, NULL, 0};
  uint8_t *scratch = NULL;
  const int64_t row_groups = (rows + 3) / 4;
  int workers = row_groups < threads ? (int)row_groups : threads;
#if PSI_MATMUL_PANELS
  if (n_tokens >= PSI_PANEL_MIN_TOKENS && !rows16_eligible(type, n_tokens)) {
    job.panel_scratch_bytes = PSI_IMPL(psi_panel_scratch_bytes)(type, nb);
    const int64_t panels = (rows + PANEL_GRANULE - 1) / PANEL_GRANULE;
    if (job.panel_scratch_bytes > 0) workers = panels < threads ? (int)panels : threads;
  }
#endif
  if (m->quantize) {
    const int64_t tiles = (n_tokens + PSI_TILE_TOKENS - 1) / PSI_TILE_TOKENS;
    const int with_scales = job.interleaved && m->activation_type != PSI_Q8_K; /* Q8_K's d is a float already */
    const size_t scale_bytes = with_scales ? (size_t)(tiles * nb * PSI_TILE_TOKENS) * sizeof(float) : 0;
    const int with_corrections = PSI_MATMUL_VNNI && with_scales && m->weight_offset != 0;
    const size_t correction_bytes = with_corrections ? (size_t)(tiles * nb * PSI_TILE_TOKENS) * sizeof(int32_t) : 0;
    job.act_row_bytes = nb * m->activation_bytes;
    job.act_tile_bytes = job.act_row_bytes * PSI_TILE_TOKENS;
    const size_t act_bytes = (size_t)(job.interleaved ? tiles * job.act_tile_bytes : n_tokens * job.act_row_bytes);
    const size_t panel_bytes = (size_t)(job.panel_scratch_bytes * workers);
    scratch = malloc(scale_bytes + correction_bytes + act_bytes + panel_bytes);
    if (!scratch) return PSI_MATMUL_OUT_OF_MEMORY;
    job.act_scales = with_scales ? (float *)scratch : NULL;
    job.act_corrections = with_corrections ? (int32_t *)(scratch + scale_bytes) : NULL;
    job.acts = scratch + scale_bytes + correction_bytes;
    if (panel_bytes > 0) job.panel_scratch = job.acts + act_bytes;
    psi_pool_run(n_tokens < threads ? (int)n_tokens : threads, quantize_tokens, &job);
  }
  psi_pool_run(workers, multiply_rows, &job);
  free(scratch);
  return PSI_MATMUL_OK;
}

int32_t PSI_IMPL(psi_matmul_reference)(int32_t type, const void *w, int64_t rows, int64_t cols, const float *x,
                                       int64_t n_tokens, float *y) {
  const matmul_type *m = find_type(type);
  int32_t status = check_shape(m, rows, cols, n_tokens);
  if (status != PSI_MATMUL_OK) return status;
  if (!m->reference) return PSI_MATMUL_UNSUPPORTED_TYPE; /* a repacked layout: the reference reads ggml's */
  if (rows == 0 || n_tokens == 0) return PSI_MATMUL_OK;
  const int64_t nb = cols / m->block_size, row_bytes = nb * m->block_bytes;
  const int64_t act_stride = m->quantize ? nb * m->activation_bytes : cols * 4;
  void *act = malloc((size_t)act_stride);
  if (!act) return PSI_MATMUL_OUT_OF_MEMORY;
  const psi_reference_dot dot = n_tokens > 1 && m->reference_batch ? m->reference_batch : m->reference;
  for (int64_t t = 0; t < n_tokens; t++) {
    if (m->quantize) m->quantize(x + t * cols, act, cols);
    else memcpy(act, x + t * cols, (size_t)act_stride);
    for (int64_t r = 0; r < rows; r++) y[t * rows + r] = dot((const uint8_t *)w + r * row_bytes, act, nb);
  }
  free(act);
  return PSI_MATMUL_OK;
}

/* Rearranges rows x cols of a ggml type into one of psionic's layouts (matmul.h)
 * at dst (src == dst allowed); PSI_MATMUL_UNSUPPORTED_TYPE where this build has
 * no products for the layout, so the caller keeps the plain bytes. */
int32_t PSI_IMPL(psi_matmul_repack)(int32_t layout, const void *src, void *dst, int64_t rows, int64_t cols) {
  switch (layout) {
    case PSI_MXFP4_ROWS16: return PSI_IMPL(psi_repack_mxfp4_rows16)(src, dst, rows, cols);
    case PSI_Q8_0_ROWS16: return PSI_IMPL(psi_repack_q8_0_rows16)(src, dst, rows, cols);
    default: return PSI_MATMUL_UNSUPPORTED_TYPE;
  }
}

/* Quantizes n activation values the way psi_matmul does for weights of
 * `weight_type`; returns the bytes written to dst, or a negative status. */
int64_t PSI_IMPL(psi_matmul_quantize_activations)(int32_t weight_type, const float *x, int64_t n, void *dst) {
  const matmul_type *m = find_type(weight_type);
  if (!m) return PSI_MATMUL_UNSUPPORTED_TYPE;
  if (n < 0 || n % m->block_size != 0) return PSI_MATMUL_BAD_SHAPE;
  const int64_t bytes = n / m->block_size * m->activation_bytes;
  if (m->quantize) m->quantize(x, dst, n);
  else memcpy(dst, x, (size_t)bytes);
  return bytes;
}

/* The ggml type id psi_matmul quantizes activations to for `weight_type`, or -1. */
int32_t PSI_IMPL(psi_matmul_activation_type)(int32_t weight_type) {
  const matmul_type *m = find_type(weight_type);
  return m ? m->activation_type : PSI_MATMUL_UNSUPPORTED_TYPE;
}
