// Products y = x W^T (+ bias) with W in its GGUF type on the device.
//
// Few rows (decode, up to MMV_ROWS at a time): matrix-vector kernels
// (mmv.cuh) that read each weight byte once per MMV_ROWS rows. Activations are quantized per
// 32 values to int8 with an fp16 scale, as ggml's q8_0 does on the CPU, and
// multiplied with dp4a; float weights multiply float rows (rounded to the
// weight's type first, as ggml's vec_dot does).
// Many rows (prefill, from GEMM_MIN_ROWS): quantized weights go to the int8
// tensor-core kernel (mmq.cuh), same arithmetic; float weights are expanded
// to fp16 (F16 is used as it is) and multiplied by cuBLAS (loaded at run
// time, cublas.cu) with fp32 accumulation, or without cuBLAS by the
// matrix-vector kernels in chunks.
// Expert products (MoE) take the rows grouped by expert: the same kernels,
// each block reading one expert's slab for all the rows that chose it.
#include <algorithm>
#include <type_traits>
#include "common.cuh"
#include "decode.cuh"
#include "matmul.cuh"
#include "mmq.cuh"
#include "mmv.cuh"

// x rows -> int8 codes and fp16-rounded scales per 32 values (q8_code, q8_scale):
// 8 lanes a block, 4 values a lane, so a warp's load is 512
// contiguous bytes and a one-row input is spread over blocks / 16 warps.
__global__ void quantize_q8(const float *x, int8_t *xq, float *xd, int64_t blocks) {
  psi_grid_wait();
  const int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, b = t / 8;
  const int part = (int)(t % 8);
  // Lanes past the last block stay for the shuffles (their warp's other lanes need them).
  const bool in = b < blocks;
  float4 f;
  f.x = f.y = f.z = f.w = 0.f;
  if (in) f = *reinterpret_cast<const float4 *>(x + b * 32 + part * 4);
  float amax = fmaxf(fmaxf(fabsf(f.x), fabsf(f.y)), fmaxf(fabsf(f.z), fabsf(f.w)));
#pragma unroll
  for (int o = 4; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  if (!in) return;
  const float id = q8_inverse_scale(amax);
  const int packed = q8_code(f.x, id) | (q8_code(f.y, id) << 8) | (q8_code(f.z, id) << 16) | (q8_code(f.w, id) << 24);
  *reinterpret_cast<int *>(xq + b * 32 + part * 4) = packed;
  if (part == 0) xd[b] = q8_scale(amax);
}

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

int psi_quantize_into(const float *x, int64_t blocks, int8_t *xq, float *xd) {
  PSI_LAUNCH((unsigned)ceil_div(blocks * 8, 128), 128, quantize_q8)(x, xq, xd, blocks);
  return PSI_LAUNCHED("quantize_q8");
}

int psi_quantized_scratch(int64_t rows, int64_t cols, int8_t **xq, float **xd) {
  *xq = (int8_t *)psi_scratch(0, rows * cols);
  *xd = (float *)psi_scratch(1, rows * cols / 32 * sizeof(float));
  return *xq && *xd ? 0 : -1;
}

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

// Dense float weight times many rows on cuBLAS: y = fp16(x) fp16(W)^T (+ bias), fp32 sums.
template <int T>
static int cublas_product(const MatDesc &w, const float *x, int64_t rows, const float *bias, float *y) {
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

template <int T>
static int matmul_type(const MatDesc &w, const float *x, int64_t rows, const RowMap &map, const float *bias, int64_t biasStride, float *y) {
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

int psi_matmul(const MatDesc &w, const float *x, int64_t rows, const RowMap &map, const float *bias, int64_t biasStride, float *y) {
  if (w.cols % 32 != 0 && !is_float_type(w.type)) { psi_set_error("matmul: %lld columns are not whole blocks", (long long)w.cols); return -1; }
  return with_type(w.type, "matmul", [&](auto t) { return matmul_type<decltype(t)::value>(w, x, rows, map, bias, biasStride, y); });
}

int psi_matmul_glu(const MatDesc &gate, const MatDesc &up, const float *x, int64_t rows, const RowMap &map,
                   const float *gateBias, const float *upBias, int64_t biasStride, float alpha, float limit, float *hidden) {
  if (!map.offsets || gate.type != up.type || gate.rows != up.rows || gate.cols != up.cols) {
    psi_set_error("matmul_glu: takes grouped rows and gate/up weights of one type and shape");
    return -1;
  }
  return with_type(gate.type, "matmul_glu", [&](auto t) {
    constexpr int T = decltype(t)::value;
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

// x (rows x cols) times `count` weights of one type and width, each plus its bias (or
// null), into ys[i]: one launch for the matrix-vector rows (up to GEMM_MIN_ROWS - 1),
// else one product after another (sharing x's quantization). `reuse` as psi_cuda_matmul's.
PSI_EXPORT int psi_cuda_matmul_many(const MatDesc *const *ws, const float *const *biases, float *const *ys, int count,
                                    const float *x, int64_t rows, int reuse) {
  if (count < 1 || count > MANY_MAX) { psi_set_error("matmul_many: %d weights (1 to %d)", count, MANY_MAX); return -1; }
  for (int i = 1; i < count; i++) {
    if (ws[i]->type != ws[0]->type || ws[i]->cols != ws[0]->cols) { psi_set_error("matmul_many: weights of one type and width only"); return -1; }
  }
  if (ws[0]->cols % 32 != 0 && !is_float_type(ws[0]->type)) { psi_set_error("matmul: %lld columns are not whole blocks", (long long)ws[0]->cols); return -1; }
  RowMap map;
  map.quantized = reuse != 0;
  if (rows >= GEMM_MIN_ROWS) {
    for (int i = 0; i < count; i++) {
      if (psi_matmul(*ws[i], x, rows, map, biases[i], 0, ys[i])) return -1;
      map.quantized = psi_matmul_quantizes(*ws[i]);
    }
    return 0;
  }
  Many m;
  memset(&m, 0, sizeof m);
  m.count = count;
  for (int i = 0; i < count; i++) { m.w[i] = *ws[i]; m.bias[i] = biases[i]; m.y[i] = ys[i]; }
  return with_type(ws[0]->type, "matmul_many", [&](auto t) {
    return with_rows(rows, [&](auto r) { return launch_many<decltype(t)::value, decltype(r)::value>(m, x, rows, map); });
  });
}

bool psi_matmul_quantizes(const MatDesc &w) {
  return !is_float_type((int)w.type);
}

// x (rows x cols) times slab 0 of w, plus bias: y is rows x w.rows. `reuse`: the
// previous product had this same x and a quantized weight (q, k and v share
// their input), so its int8 rows are still in the scratch.
PSI_EXPORT int psi_cuda_matmul(const MatDesc *w, const float *x, int64_t rows, const float *bias, float *y, int reuse) {
  RowMap map;
  map.quantized = reuse != 0;
  return psi_matmul(*w, x, rows, map, bias, 0, y);
}

// Rows of a weight table (any type) as floats: out[i] = table[tokens[i]].
template <int T>
__global__ void get_rows(MatDesc w, const int *tokens, int64_t count, float *out) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  const int64_t per = is_float_type(T) ? w.cols : w.cols / 32;
  if (i >= count * per) return;
  const int64_t t = i / per, j = i % per, row = tokens[t];
  if constexpr (is_float_type(T)) {
    out[t * w.cols + j] = float_weight<T>(w.data + row * w.cols * (T == T_F32 ? 4 : 2), j);
  } else {
  Sub32 s;
  load_sub<T>(w.data, w.data + w.scalesOffset, row, w.cols, j, s);
  float *o = out + t * w.cols + j * 32;
#pragma unroll
  for (int k = 0; k < 32; k++) o[k] = (k < 16 ? s.a0 : s.a1) * (float)sub_code(s, k) + (k < 16 ? s.b0 : s.b1);
  }
}

PSI_EXPORT int psi_cuda_get_rows(const MatDesc *w, const int32_t *hostTokens, int64_t count, float *out) {
  const int *tokens = (const int *)psi_stage(hostTokens, count * sizeof(int32_t));
  if (!tokens) return -1;
  const int64_t per = is_float_type(w->type) ? w->cols : w->cols / 32;
  const unsigned grid = (unsigned)ceil_div(count * per, 128);
  return with_type(w->type, "get_rows", [&](auto t) {
    PSI_LAUNCH(grid, 128, get_rows<decltype(t)::value>)(*w, tokens, count, out);
    return PSI_LAUNCHED("get_rows");
  });
}
