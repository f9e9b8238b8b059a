/* Shared definitions of the training kernels (kernels/cpu/train_*.c).
 *
 * Each op is a *_forward / *_backward pair (llm.c's layout) with a plain
 * `_ref` beside the fast version; tests hold the fast one to the reference and
 * the backward to finite differences of the forward (the src/train tests).
 * Backward kernels ADD into parameter gradients and into the residual
 * gradient, so micro-batches accumulate without extra copies.
 *
 * Determinism: work is split by (ith, nth) alone, every sum runs in a fixed
 * order, and no sum is split across threads, so the same inputs give the same
 * bits whatever the timing (and, for these kernels, whatever the thread count). */
#ifndef PSI_TRAIN_H
#define PSI_TRAIN_H

#include <math.h>
#include <stdint.h>
#include "api.h"
#include "threadpool.h"
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Status codes, the same values as the inference ops (kernels/cpu/ops.h). */
#define PSI_TRAIN_OK 0
#define PSI_TRAIN_BAD_SHAPE (-10)
#define PSI_TRAIN_BAD_INDEX (-11)
#define PSI_TRAIN_NO_MEMORY (-13) /* a scratch buffer could not be allocated */

/* Longest sequence the attention kernels accept (one row of scores lives on the stack). */
#define PSI_TRAIN_MAX_SEQ 8192

static inline int psi_train_threads(int32_t threads, int64_t work_items) {
  int64_t nth = threads < 1 ? 1 : threads;
  if (nth > work_items) nth = work_items < 1 ? 1 : work_items;
  return (int)nth;
}

#endif
