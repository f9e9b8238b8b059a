// Float weights (F32, F16, BF16): the products of matmul_types.cuh for these
// types, compiled apart from the other types' so nvcc builds the groups in
// parallel, and the cuBLAS path (many rows) only they take.
#include "matmul_types.cuh"

// F32/BF16 weight slab -> fp16 rows, for the cuBLAS path.
template <int T>
__global__ void expand_half(MatDesc w, const uint8_t *slab, __half *out) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < w.rows * w.cols) out[i] = __float2half_rn(float_weight<T>(slab, i));
}

__global__ void to_half(const float *x, __half *out, int64_t n) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2half_rn(x[i]);
}

__global__ void add_bias_rows(float *y, const float *bias, int64_t rows, int64_t width) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < rows * width) y[i] += bias[i % width];
}

// Dense float weight times many rows on cuBLAS: y = fp16(x) fp16(W)^T (+ bias), fp32 sums.
template <int T>
int cublas_product(const MatDesc &w, const float *x, int64_t rows, const float *bias, float *y) {
  const int64_t total = w.rows * w.cols;
  const __half *wh = reinterpret_cast<const __half *>(w.data);
  if constexpr (T != T_F16) {
    __half *expanded = (__half *)psi_scratch(2, total * sizeof(__half));
    if (!expanded) return -1;
    PSI_LAUNCH((unsigned)ceil_div(total, 256), 256, expand_half<T>)(w, w.data, expanded);
    if (PSI_LAUNCHED("expand_half")) return -1;
    wh = expanded;
  }
  __half *xh = (__half *)psi_scratch(3, rows * w.cols * sizeof(__half));
  if (!xh) return -1;
  PSI_LAUNCH((unsigned)ceil_div(rows * w.cols, 256), 256, to_half)(x, xh, rows * w.cols);
  if (PSI_LAUNCHED("to_half")) return -1;
  if (psi_cublas_gemm_f16(wh, xh, y, w.rows, rows, w.cols) != 0) return -1;
  if (bias) {
    PSI_LAUNCH((unsigned)ceil_div(rows * w.rows, 256), 256, add_bias_rows)(y, bias, rows, w.rows);
    return PSI_LAUNCHED("add_bias_rows");
  }
  return 0;
}

PSI_MATMUL_TYPES(T_F32)
PSI_MATMUL_TYPES(T_F16)
PSI_MATMUL_TYPES(T_BF16)
