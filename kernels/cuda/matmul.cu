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
// This file checks and dispatches on the weight's type; each type's launches
// (matmul_types.cuh) are compiled in the matmul_<types>.cu files.
#include "common.cuh"
#include "decode.cuh"
#include "matmul.cuh"

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

int psi_quantize_into(const float *x, int64_t blocks, int8_t *xq, float *xd) {
  PSI_LAUNCH((unsigned)ceil_div(blocks * 8, 128), 128, quantize_q8)(x, xq, xd, blocks);
  return PSI_LAUNCHED("quantize_q8");
}

int psi_quantized_scratch(int64_t rows, int64_t cols, int8_t **xq, float **xd) {
  *xq = (int8_t *)psi_scratch(0, rows * cols);
  *xd = (float *)psi_scratch(1, rows * cols / 32 * sizeof(float));
  return *xq && *xd ? 0 : -1;
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
    return matmul_glu_type<decltype(t)::value>(gate, up, x, rows, map, gateBias, upBias, biasStride, alpha, limit, hidden);
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
  return with_type(ws[0]->type, "matmul_many", [&](auto t) {
    return matmul_many_type<decltype(t)::value>(ws, biases, ys, count, x, rows, map);
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
