// What attention.cu and flash.cuh share: the batch's segments (one sequence
// each, with its own F16 K and V caches whose slot is the position) and the
// launch's attention parameters.
#pragma once
#include "common.cuh"
#include "matmul.cuh"

static const int MAX_SEGMENTS = 32;
static const int ATT_WARPS = 4;
static const int MAX_HEAD_DIM = 256;
static const int MAX_SPLITS = 32;

// Passed by value and hashed byte for byte (common.cuh): no padding. The
// first positions change every step, so they are staged, not part of the value.
struct Segments {
  int count;
  int rowStart[MAX_SEGMENTS];
  int rows[MAX_SEGMENTS];
  int unused;
  const int *pos0;
  __half *k[MAX_SEGMENTS];
  __half *v[MAX_SEGMENTS];
};

__device__ __forceinline__ int segment_of(const Segments &s, int row) {
  int i = 0;
  while (i + 1 < s.count && row >= s.rowStart[i + 1]) i++;
  return i;
}

struct AttendArgs {
  int heads, kvHeads, headDim, headDimV, window;
  float scale;
  // Key splits per (row, head); with more than one the block writes partials (part*) instead of out.
  int splits, unused;
  float *partMax, *partSum, *partAcc;
  // When set, the output is also written as int8 rows with a scale per 32 (quantize_warp32).
  int8_t *xq;
  float *xd;
};

