// Shared by kernels/cuda/*.cu: the exported-symbol macro, the launch macro
// (PSI_LAUNCH: nvcc, or the CPU build of emulate.h), the one stream every
// launch goes to, error reporting (a failed call records a readable message
// that psi_cuda_last_error() returns, and the exported function returns
// non-zero: TypeScript turns that into a PsionicError, never a crash), and
// ggml's type ids.
#pragma once
#ifdef PSI_EMULATE
#include "emulate.h"
#else
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
// kernel<<<grid, block, 0, stream>>>(args), written so that the CPU build (emulate.h) can run it too.
#define PSI_LAUNCH(grid, block, ...) __VA_ARGS__<<<grid, block, 0, psi_stream()>>>
#endif
#include <stdint.h>
#include <stdio.h>

#define PSI_EXPORT extern "C" __attribute__((visibility("default")))

// ggml type ids (ggml.h enum ggml_type).
enum {
  T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
  T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30, T_MXFP4 = 39,
};

cudaStream_t psi_stream();
void psi_set_error(const char *fmt, ...);
// Records the error of `status` (and returns true) when it is not cudaSuccess.
bool psi_failed(cudaError_t status, const char *what);
// The last launch's error, recorded under `what`.
#define PSI_LAUNCHED(what) (psi_failed(cudaGetLastError(), what) ? -1 : 0)

// memory.cu: a device copy of small host data for launches queued after it, and
// growable scratch buffers by slot (each reused by the next op asking for that slot).
void *psi_stage(const void *src, size_t bytes);
void *psi_scratch(int slot, size_t bytes);

static inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
