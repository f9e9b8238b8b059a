// One weight type's products, the templates behind matmul.cu's dispatch:
// matrix-vector kernels (mmv.cuh) for few rows, the int8 tensor cores (mmq.cuh)
// for many, cuBLAS for float weights (matmul_float.cu). Each matmul_<types>.cu
// instantiates them for its group of types (PSI_MATMUL_TYPES), so nvcc compiles
// the groups in parallel: as one file they took about 130 s per architecture.
#pragma once
#include <algorithm>
#include <cstring>
#include <type_traits>
#include "common.cuh"
#include "decode.cuh"
#include "matmul.cuh"
#include "mmq.cuh"
#include "mmv.cuh"

// The int8 rows of x the quantized kernels read (quantized now unless map.quantized says they are there).
template <int T>
static int quantized_rows(const float *x, int64_t rows, int64_t cols, const RowMap &map, int8_t **xq, float **xd) {
  *xq = nullptr;
  *xd = nullptr;
  if constexpr (!is_float_type(T)) {
    // Expert rows read input row row/inputDiv: quantize every input row once.
    const int64_t inputRows = map.offsets ? ceil_div(rows, map.inputDiv) : rows;
    const int64_t blocks = inputRows * cols / 32;
    if (psi_quantized_scratch(inputRows, cols, xq, xd)) return -1;
    if (!map.quantized && psi_quantize_into(x, blocks, *xq, *xd)) return -1;
  }
  return 0;
}

// Rows from which a weight of TARGET_BLOCKS mmq tiles or more goes to mmq.
static const int64_t MMQ_WIDE_ROWS = 16;

// Calls f(Rows<W>{}) with the weight rows each matrix-vector warp takes: 2 from
// 4 input rows, where each activation load then serves two weight rows (from 4
// rows the activations a warp loads outweigh its weight bytes 8 to 1 or more),
// else 1 (a decode token's products want every warp they can get).
template <int R, class F>
static int with_warp_rows(F &&f) {
  if constexpr (R >= 4) {
    if (MMV_WARP_ROWS == 2) return f(Rows<2>{});
  }
  return f(Rows<1>{});
}
// Rows one chunk of a grouped product's expert can hold (a token picks an expert at most once).
static int64_t group_rows(const RowMap &map, int64_t rows) { return map.maxGroup ? std::min<int64_t>(map.maxGroup, rows) : rows; }

template <int T, int R>
static int launch_mmv(const MatDesc &w, const float *x, int64_t rows, const RowMap &given, const float *bias, int64_t biasStride, float *y) {
  int8_t *xq;
  float *xd;
  if (quantized_rows<T>(x, rows, w.cols, given, &xq, &xd)) return -1;
  return with_warp_rows<R>([&](auto warpRows) {
    constexpr int W = decltype(warpRows)::value;
    RowMap map = given;
    const int64_t across = ceil_div(w.rows, MMV_WARPS * W);
    const int64_t down = map.offsets ? group_blocks(map, rows) : dense_row_blocks(across, rows, R, map);
    PSI_LAUNCH(dim3((unsigned)across, (unsigned)down), 32 * MMV_WARPS, mmv<T, R, W>)(w, xq, xd, x, rows, map, bias, biasStride, y);
    return PSI_LAUNCHED("mmv");
  });
}

template <int T, int R>
static int launch_glu(const MatDesc &gate, const MatDesc &up, const float *x, int64_t rows, const RowMap &map,
                      const float *gateBias, const float *upBias, int64_t biasStride, float alpha, float limit, float *hidden) {
  int8_t *xq;
  float *xd;
  if (quantized_rows<T>(x, rows, gate.cols, map, &xq, &xd)) return -1;
  return with_warp_rows<R>([&](auto warpRows) {
    constexpr int W = decltype(warpRows)::value;
    const dim3 grid((unsigned)ceil_div(gate.rows, MMV_WARPS * W), group_blocks(map, rows));
    PSI_LAUNCH(grid, 32 * MMV_WARPS, mmv_glu<T, R, W>)(gate, up, xq, xd, x, rows, map, gateBias, upBias, biasStride, alpha, limit, hidden);
    return PSI_LAUNCHED("mmv_glu");
  });
}

// Dense float weight times many rows on cuBLAS (matmul_float.cu, the one file whose types take it).
template <int T>
int cublas_product(const MatDesc &w, const float *x, int64_t rows, const float *bias, float *y);

template <int T>
int matmul_type(const MatDesc &w, const float *x, int64_t rows, const RowMap &map, const float *bias, int64_t biasStride, float *y) {
  const bool many = (map.offsets && map.maxGroup ? map.maxGroup : rows) >= GEMM_MIN_ROWS;
  if constexpr (is_float_type(T)) {
    if (many && !map.offsets && !map.exact && psi_cublas_available()) return cublas_product<T>(w, x, rows, bias, y);
  } else if ((many && (map.offsets || w.rows >= 2 * mmq::BM)) ||
             (!map.offsets && rows >= MMQ_WIDE_ROWS && ceil_div(w.rows, mmq::BM) * ceil_div(rows, mmq::BN) >= TARGET_BLOCKS)) {
    // A narrow weight (the router's 32 rows) would give mmq a handful of blocks;
    // the matrix-vector kernels split its rows among enough blocks instead. Below
    // GEMM_MIN_ROWS a weight wide enough to fill the GPU with tiles (the output head
    // in batched decode) still goes to mmq: the matrix-vector kernels would read the
    // rows' activations again for every 4 outputs.
    int8_t *xq;
    float *xd;
    if (quantized_rows<T>(x, rows, w.cols, map, &xq, &xd)) return -1;
    return launch_mmq<T>(w, xq, xd, rows, map, bias, biasStride, y);
  }
  return with_rows(map.offsets ? group_rows(map, rows) : rows,
                   [&](auto r) { return launch_mmv<T, decltype(r)::value>(w, x, rows, map, bias, biasStride, y); });
}

template <int T>
int matmul_glu_type(const MatDesc &gate, const MatDesc &up, const float *x, int64_t rows, const RowMap &map,
                    const float *gateBias, const float *upBias, int64_t biasStride, float alpha, float limit, float *hidden) {
  if constexpr (!is_float_type(T)) {
    // Groups of many rows: both products on the tensor cores in one pass (mmq.cuh's gate+up form).
    if (group_rows(map, rows) >= GEMM_MIN_ROWS) {
      int8_t *xq;
      float *xd;
      if (quantized_rows<T>(x, rows, gate.cols, map, &xq, &xd)) return -1;
      Glu glu = {};
      glu.up = up; glu.upBias = upBias; glu.alpha = alpha; glu.limit = limit;
      return launch_mmq<T>(gate, xq, xd, rows, map, gateBias, biasStride, hidden, glu);
    }
  }
  return with_rows(group_rows(map, rows), [&](auto r) {
    return launch_glu<T, decltype(r)::value>(gate, up, x, rows, map, gateBias, upBias, biasStride, alpha, limit, hidden);
  });
}

template <int T, int R>
static int launch_many(Many m, const float *x, int64_t rows, RowMap map) {
  int8_t *xq;
  float *xd;
  if (quantized_rows<T>(x, rows, m.w[0].cols, map, &xq, &xd)) return -1;
  return with_warp_rows<R>([&](auto warpRows) {
    constexpr int W = decltype(warpRows)::value;
    m.blocks[0] = 0;
    for (int i = 0; i < m.count; i++) m.blocks[i + 1] = m.blocks[i] + (int)ceil_div(m.w[i].rows, MMV_WARPS * W);
    const int64_t across = m.blocks[m.count], down = dense_row_blocks(across, rows, R, map);
    PSI_LAUNCH(dim3((unsigned)across, (unsigned)down), 32 * MMV_WARPS, mmv_many<T, R, W>)(m, xq, xd, x, rows, map);
    return PSI_LAUNCHED("mmv_many");
  });
}

// The matrix-vector rows of psi_cuda_matmul_many (below GEMM_MIN_ROWS): one launch for every weight.
template <int T>
int matmul_many_type(const MatDesc *const *ws, const float *const *biases, float *const *ys, int count, const float *x, int64_t rows,
                     const RowMap &map) {
  Many m;
  memset(&m, 0, sizeof m);
  m.count = count;
  for (int i = 0; i < count; i++) { m.w[i] = *ws[i]; m.bias[i] = biases[i]; m.y[i] = ys[i]; }
  return with_rows(rows, [&](auto r) { return launch_many<T, decltype(r)::value>(m, x, rows, map); });
}

#define PSI_MATMUL_TYPES(T)                                                                                                  \
  template int matmul_type<T>(const MatDesc &, const float *, int64_t, const RowMap &, const float *, int64_t, float *);     \
  template int matmul_glu_type<T>(const MatDesc &, const MatDesc &, const float *, int64_t, const RowMap &, const float *,  \
                                  const float *, int64_t, float, float, float *);                                           \
  template int matmul_many_type<T>(const MatDesc *const *, const float *const *, float *const *, int, const float *, int64_t, \
                                   const RowMap &);
