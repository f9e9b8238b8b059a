/* Single-precision matrix multiply for training (SGEMM), row-major:
 *   C (m, n) = [C +] op(A) (m, k) . op(B) (k, n)
 *   op(A)[i][p] = trans_a ? a[p * lda + i] : a[i * lda + p]
 *   op(B)[p][j] = trans_b ? b[j * ldb + p] : b[p * ldb + j]
 * A linear layer with X (tokens, in) and W (out, in) (ggml dims [in, out]) needs:
 *   forward   Y  = X W^T    NT: m = tokens, n = out, k = in
 *   backward  dX = dY W     NN: m = tokens, n = in,  k = out
 *             dW += dY^T X  TN: m = out,    n = in,  k = tokens, accumulate
 *
 * The fast path is the GotoBLAS scheme: for each NC-wide column block and
 * KC-deep slice of k, pack op(B) into NR-wide panels (kept in L1 while the
 * microkernel sweeps down), for each MC-tall row block pack op(A) into MR-tall
 * panels (kept in L2), then a register-tiled MR x NR microkernel does
 * MR * NR fused multiply-adds per k step from one broadcast per row and NR/16
 * vector loads. Packing absorbs the transposes, so one microkernel serves all
 * three shapes. Threads own disjoint blocks of C (split by rows or columns in
 * whole tiles) and each packs its own operands; every element of C is summed
 * in the same k order whatever the split, so the result does not depend on
 * the thread count either. */
#include <stdlib.h>
#include <string.h>
#include "train.h"

#if defined(__AVX512F__)
#define MR 12
#define NR 32
#elif defined(__AVX2__) && defined(__FMA__)
#define MR 6
#define NR 16
#else
#define MR 4
#define NR 16
#endif
#define KC 256
#define MC (MR * 16)
#define NC (NR * 48)

int32_t PSI_IMPL(psi_train_sgemm_ref)(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                                      const float *a, int64_t lda, const float *b, int64_t ldb,
                                      float *c, int64_t ldc, int32_t accumulate) {
  if (m < 0 || n < 0 || k < 0) return PSI_TRAIN_BAD_SHAPE;
  for (int64_t i = 0; i < m; i++) {
    for (int64_t j = 0; j < n; j++) {
      float sum = 0.0f;
      for (int64_t p = 0; p < k; p++) {
        const float av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        sum += av * bv;
      }
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
    }
  }
  return PSI_TRAIN_OK;
}

typedef struct {
  int32_t trans_a, trans_b, accumulate, split_rows;
  int64_t m, n, k, lda, ldb, ldc;
  const float *a, *b;
  float *c;
  volatile int32_t failed;
} gemm_job;

/* Packing buffers, one pair per thread (pool workers live as long as the library). */
static _Thread_local float *packed_a, *packed_b;

static int ensure_packing_buffers(void) {
  if (!packed_a) packed_a = aligned_alloc(64, sizeof(float) * MC * KC);
  if (!packed_b) packed_b = aligned_alloc(64, sizeof(float) * KC * NC);
  return packed_a && packed_b;
}

/* op(A) rows [i0, i0+mc) x k [p0, p0+kc) -> MR-tall panels, each kc steps of MR values (rows past mc are 0). */
static void pack_a(const gemm_job *g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float *dst) {
  for (int64_t ir = 0; ir < mc; ir += MR, dst += MR * kc) {
    const int64_t rows = mc - ir < MR ? mc - ir : MR;
    if (g->trans_a) {
      for (int64_t p = 0; p < kc; p++) {
        const float *src = g->a + (p0 + p) * g->lda + i0 + ir;
        for (int64_t r = 0; r < rows; r++) dst[p * MR + r] = src[r];
        for (int64_t r = rows; r < MR; r++) dst[p * MR + r] = 0.0f;
      }
    } else {
      for (int64_t r = 0; r < MR; r++) {
        if (r >= rows) { for (int64_t p = 0; p < kc; p++) dst[p * MR + r] = 0.0f; continue; }
        const float *src = g->a + (i0 + ir + r) * g->lda + p0;
        for (int64_t p = 0; p < kc; p++) dst[p * MR + r] = src[p];
      }
    }
  }
}

/* op(B) k [p0, p0+kc) x columns [j0, j0+nc) -> NR-wide panels, each kc steps of NR values (columns past nc are 0). */
static void pack_b(const gemm_job *g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float *dst) {
  for (int64_t jr = 0; jr < nc; jr += NR, dst += NR * kc) {
    const int64_t cols = nc - jr < NR ? nc - jr : NR;
    if (!g->trans_b) {
      for (int64_t p = 0; p < kc; p++) {
        const float *src = g->b + (p0 + p) * g->ldb + j0 + jr;
        for (int64_t j = 0; j < cols; j++) dst[p * NR + j] = src[j];
        for (int64_t j = cols; j < NR; j++) dst[p * NR + j] = 0.0f;
      }
    } else {
      for (int64_t j = 0; j < NR; j++) {
        if (j >= cols) { for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = 0.0f; continue; }
        const float *src = g->b + (j0 + jr + j) * g->ldb + p0;
        for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = src[p];
      }
    }
  }
}

/* c (MR x NR, row stride ldc) = [c +] sum over kc steps of a-panel column x b-panel row. */
static inline void microkernel(int64_t kc, const float *restrict a, const float *restrict b, float *restrict c, int64_t ldc, int add) {
#if defined(__AVX512F__)
  __m512 acc[MR][2];
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; p++, a += MR, b += NR) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR; r++) {
    float *row = c + r * ldc;
    if (add) { acc[r][0] = _mm512_add_ps(_mm512_loadu_ps(row), acc[r][0]); acc[r][1] = _mm512_add_ps(_mm512_loadu_ps(row + 16), acc[r][1]); }
    _mm512_storeu_ps(row, acc[r][0]);
    _mm512_storeu_ps(row + 16, acc[r][1]);
  }
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[MR][2];
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; p++, a += MR, b += NR) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR; r++) {
    float *row = c + r * ldc;
    if (add) { acc[r][0] = _mm256_add_ps(_mm256_loadu_ps(row), acc[r][0]); acc[r][1] = _mm256_add_ps(_mm256_loadu_ps(row + 8), acc[r][1]); }
    _mm256_storeu_ps(row, acc[r][0]);
    _mm256_storeu_ps(row + 8, acc[r][1]);
  }
#else
  float acc[MR][NR];
  memset(acc, 0, sizeof acc);
  for (int64_t p = 0; p < kc; p++, a += MR, b += NR)
    for (int r = 0; r < MR; r++)
      for (int j = 0; j < NR; j++) acc[r][j] += a[r] * b[j];
  for (int r = 0; r < MR; r++)
    for (int j = 0; j < NR; j++) c[r * ldc + j] = add ? c[r * ldc + j] + acc[r][j] : acc[r][j];
#endif
}

/* A tile cut by the edge of C: compute the whole tile aside, keep the part inside. */
static void edge_tile(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int64_t rows, int64_t cols, int add) {
  float tile[MR * NR] __attribute__((aligned(64)));
  microkernel(kc, a, b, tile, NR, 0);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < cols; j++) c[r * ldc + j] = add ? c[r * ldc + j] + tile[r * NR + j] : tile[r * NR + j];
}

/* C rows [i_begin, i_end) x columns [j_begin, j_end). */
static void gemm_block(const gemm_job *g, int64_t i_begin, int64_t i_end, int64_t j_begin, int64_t j_end) {
  for (int64_t jc = j_begin; jc < j_end; jc += NC) {
    const int64_t nc = j_end - jc < NC ? j_end - jc : NC;
    for (int64_t pc = 0; pc < g->k; pc += KC) {
      const int64_t kc = g->k - pc < KC ? g->k - pc : KC;
      const int add = g->accumulate || pc > 0;
      pack_b(g, pc, kc, jc, nc, packed_b);
      for (int64_t ic = i_begin; ic < i_end; ic += MC) {
        const int64_t mc = i_end - ic < MC ? i_end - ic : MC;
        pack_a(g, ic, mc, pc, kc, packed_a);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t cols = nc - jr < NR ? nc - jr : NR;
          const float *b_panel = packed_b + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t rows = mc - ir < MR ? mc - ir : MR;
            float *c = g->c + (ic + ir) * g->ldc + jc + jr;
            if (rows == MR && cols == NR) microkernel(kc, packed_a + ir * kc, b_panel, c, g->ldc, add);
            else edge_tile(kc, packed_a + ir * kc, b_panel, c, g->ldc, rows, cols, add);
          }
        }
      }
    }
  }
}

static void gemm_share(void *context, int ith, int nth) {
  gemm_job *g = context;
  int64_t begin, end;
  psi_pool_split(g->split_rows ? g->m : g->n, g->split_rows ? MR : NR, ith, nth, &begin, &end);
  if (begin >= end) return;
  if (!ensure_packing_buffers()) { g->failed = 1; return; }
  if (g->split_rows) gemm_block(g, begin, end, 0, g->n);
  else gemm_block(g, 0, g->m, begin, end);
}

int32_t PSI_IMPL(psi_train_sgemm)(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                                  const float *a, int64_t lda, const float *b, int64_t ldb,
                                  float *c, int64_t ldc, int32_t accumulate, int32_t threads) {
  if (m < 0 || n < 0 || k < 0) return PSI_TRAIN_BAD_SHAPE;
  if (m == 0 || n == 0) return PSI_TRAIN_OK;
  if (k == 0) {
    if (!accumulate) for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, sizeof(float) * n);
    return PSI_TRAIN_OK;
  }
  gemm_job g = {trans_a, trans_b, accumulate, 0, m, n, k, lda, ldb, ldc, a, b, c, 0};
  const int64_t row_tiles = (m + MR - 1) / MR, col_tiles = (n + NR - 1) / NR;
  g.split_rows = row_tiles >= col_tiles;
  const int nth = psi_train_threads(threads, g.split_rows ? row_tiles : col_tiles);
  psi_pool_run(nth, gemm_share, &g);
  return g.failed ? PSI_TRAIN_NO_MEMORY : PSI_TRAIN_OK;
}
