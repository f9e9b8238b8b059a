// What kernels/cuda/*.cu share about weights and products.
#pragma once
#include "common.cuh"

// A weight as the device holds it; TypeScript fills the same layout (six
// int64 fields, cuda-tensors.ts). A 3-D weight is `slabs` 2-D slabs of
// rows x cols, slabStride bytes apart; split-layout types keep each slab's
// scales scalesOffset bytes after the slab's start.
struct MatDesc {
  int64_t type;
  const uint8_t *data;
  int64_t scalesOffset;
  int64_t rows;
  int64_t cols;
  int64_t slabStride;
};

// Rows up to which one matrix-vector pass serves them all.
static const int MMV_ROWS = 8;
// Rows (dense, or in the largest expert group) from which a product takes the
// many-row kernels: int8 tensor cores for quantized weights (mmq.cuh), cuBLAS
// for float ones; and tokens up to which MoE routes and groups in one block
// with the fused gate+up pass (moe.cu). Both are past the largest recorded
// decode step (graph.cu, 64 rows), which stays on the matrix-vector kernels.
// For measurement, PSIONIC_CUDA_GEMM_MIN_ROWS and
// PSIONIC_CUDA_MOE_DEVICE_TOKENS move them (read once, at psi_cuda_init;
// never below the decode step's 64 rows).
extern int64_t GEMM_MIN_ROWS;
extern int64_t MOE_DEVICE_TOKENS;
// Weight rows a matrix-vector warp takes from 4 input rows on (matmul_types.cuh
// with_warp_rows): 2, or 1 with PSIONIC_CUDA_MMV_WARP_ROWS=1 (for the A/B).
extern int64_t MMV_WARP_ROWS;

// Which slab (expert) and input row each product row uses. Dense (the
// default): slab 0, input row = row. Grouped: the rows of expert e are
// sorted[offsets[e] .. offsets[e+1]-1] (experts + 1 offsets, on the device),
// input row row / inputDiv; active[j] is the j-th expert with rows (-1 past
// the last), so a grouped launch spans only min(experts, rows) experts
// (group_blocks): a decode token's 4 of 32, not 32 of which 28 exit at once.
// tiles[] lists the groups' GROUP_TILE_ROWS-row tiles for the tensor-core
// kernel (mmq.cuh), expert + (tile << 10), -1 past the last: a launch spans
// group_tiles() of them, not every expert times the largest group's tiles.
// Passed to kernels by value and hashed byte for byte (common.cuh): no padding.
struct RowMap {
  int inputDiv = 1;
  // The int8 rows of x from the previous product are still in the scratch: skip quantizing.
  int quantized = 0;
  // Dense rows stay on psionic's kernels at any count (the CPU's int8 arithmetic), never fp16 cuBLAS.
  int exact = 0;
  int experts = 0;
  // Dense: rows each block takes (a multiple of the kernel's R; set by the launch).
  int blockRows = 0;
  // Grouped: the most rows one expert can have (0: rows), which sizes the launch.
  int maxGroup = 0;
  const int *offsets = nullptr;
  const int *sorted = nullptr;
  const int *active = nullptr;
  const int *tiles = nullptr;
};

static const int GROUP_TILE_ROWS = 64;
// The most tiles groups of `rows` rows over `experts` experts can take: each expert
// with rows has at most one partial tile.
__host__ __device__ inline int64_t group_tiles(int64_t rows, int experts) {
  return (rows + GROUP_TILE_ROWS - 1) / GROUP_TILE_ROWS + (rows < experts ? rows : experts);
}

// Grid extent over the experts of a grouped product of `rows` rows.
inline unsigned group_blocks(const RowMap &map, int64_t rows) { return (unsigned)(rows < map.experts ? rows : map.experts); }
// The expert block index j takes, or -1: fewer experts have rows than the launch spans.
__device__ __forceinline__ int group_expert(const RowMap &map, unsigned j) { return map.active[j]; }

// Activation rows are quantized per 32-value block as the CPU backend (and
// ggml's x86 quantize_row_q8_0) does: q = round-half-even(x * (127/amax)) and
// the scale amax/127 rounded to fp16. 127/amax, not 1/(amax/127): the two
// differ by an ulp often enough to move a code at a rounding boundary.
__device__ __forceinline__ float q8_inverse_scale(float amax) { return amax != 0.f ? 127.f / amax : 0.f; }
__device__ __forceinline__ int q8_code(float v, float inverseScale) { return (int)rintf(v * inverseScale) & 0xff; }
__device__ __forceinline__ float q8_scale(float amax) { return __half2float(__float2half_rn(amax / 127.f)); }

// One 32-value block held a value a lane by a whole warp: codes to q[0..31], the scale to *d.
__device__ __forceinline__ void quantize_warp32(float v, int lane, int8_t *q, float *d) {
  const float amax = warp_max(fabsf(v));
  q[lane] = (int8_t)q8_code(v, q8_inverse_scale(amax));
  if (lane == 0) *d = q8_scale(amax);
}

// `blocks` 32-value blocks of x quantized into xq/xd (q8_code, q8_scale).
int psi_quantize_into(const float *x, int64_t blocks, int8_t *xq, float *xd);

// The scratch where products find the int8 rows of their input (rows x cols
// codes, a scale per 32): psi_matmul quantizes into it, and an op whose output
// feeds products (RMSNorm) may fill it as it writes.
int psi_quantized_scratch(int64_t rows, int64_t cols, int8_t **xq, float **xd);

// Each group of `group` values of every row (plus `addend`'s, when given: the sum goes
// to `sum`; with `mix`, whole rows only, the addend of row r is the sum of its k rows of
// `addend`, row r * k + j weighted by mix[r * k + j]), normalized, then scaled by weight
// (group values) when given (ops.cu). `quantize` (whole rows of 32-value blocks): the
// output's int8 rows go to the products' scratch too (psi_quantized_scratch).
int psi_rms_norm(const float *x, const float *addend, const float *mix, int k, float *sum, const float *weight, float eps,
                 int64_t rows, int64_t width, int64_t group, float *out, bool quantize);

// y = x W^T + bias, rows as `map` says; an expert's bias is biasStride floats after the previous one's.
int psi_matmul(const MatDesc &w, const float *x, int64_t rows, const RowMap &map, const float *bias, int64_t biasStride, float *y);

// One weight type's psi_matmul, psi_matmul_glu and psi_cuda_matmul_many (below
// GEMM_MIN_ROWS), defined in matmul_types.cuh and instantiated per type in the
// matmul_<types>.cu files; matmul.cu checks the arguments and picks the type.
template <int T>
int matmul_type(const MatDesc &w, const float *x, int64_t rows, const RowMap &map, const float *bias, int64_t biasStride, float *y);
template <int T>
int matmul_glu_type(const MatDesc &gate, const MatDesc &up, const float *x, int64_t rows, const RowMap &map,
                    const float *gateBias, const float *upBias, int64_t biasStride, float alpha, float limit, float *hidden);
// Weights of one input in one matrix-vector launch (q, k and v): at most MANY_MAX.
static const int MANY_MAX = 3;
template <int T>
int matmul_many_type(const MatDesc *const *ws, const float *const *biases, float *const *ys, int count, const float *x, int64_t rows,
                     const RowMap &map);

// gpt-oss's clamped SwiGLU (ggml_swiglu_oai): g <= limit, |u| <= limit.
__device__ __forceinline__ float swiglu_oai_value(float gate, float up, float alpha, float limit) {
  const float g = fminf(gate, limit), u = fminf(fmaxf(up, -limit), limit);
  return (g / (1.f + expf(alpha * (-g)))) * (u + 1.f);
}

// Value c of token t's k expert rows (rows t * k + j of `width`), weighted by
// weights[t * k + j] and summed in selection order: the MoE's weighted sum, as
// moe.cu's weighted_sum and ops.cu's fused norm both add it.
__device__ __forceinline__ float expert_mix(const float *expertOut, const float *weights, int k, int64_t t, int64_t width, int64_t c) {
  float v = 0.f;
  for (int j = 0; j < k; j++) v += weights[t * k + j] * expertOut[(t * k + j) * width + c];
  return v;
}

// hidden = swiglu_oai(x gate^T + gateBias, x up^T + upBias) for grouped rows (map.offsets), in one launch.
int psi_matmul_glu(const MatDesc &gate, const MatDesc &up, const float *x, int64_t rows, const RowMap &map,
                   const float *gateBias, const float *upBias, int64_t biasStride, float alpha, float limit, float *hidden);
// Whether a product with w leaves x's int8 rows in the scratch (so the next product of x may reuse them): every quantized type.
bool psi_matmul_quantizes(const MatDesc &w);

bool psi_cublas_available();
// y (n x m, row-major, fp32) = x (n x k, fp16) times w (m x k, fp16) transposed.
int psi_cublas_gemm_f16(const __half *w, const __half *x, float *y, int64_t m, int64_t n, int64_t k);

