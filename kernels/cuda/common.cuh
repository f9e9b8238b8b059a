// Shared by kernels/cuda/*.cu: the exported-symbol macro, the launch macro
// (PSI_LAUNCH: nvcc or the CPU build of emulate.h, launched or recorded for a
// CUDA graph), the one stream every
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
#endif
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <functional>

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

// graph.cu: a decode step's launches and copies are recorded (psi_recording),
// fingerprinted by their kernels, shapes and argument bytes, and run as one
// CUDA graph, replayed when a later step has the same fingerprint. Anything
// that waits for the device ends the recording first (psi_flush_recording).
// A step's first graph is cut off after GRAPH_FIRST_NODES recorded launches and
// copies (8; PSIONIC_CUDA_GRAPH_FIRST_NODES, a large value for one graph a step).
extern int64_t GRAPH_FIRST_NODES;
bool psi_recording();
void psi_record(uint64_t fingerprint, std::function<void()> work);
int psi_flush_recording();
// cudaMemcpyAsync on the stream, recorded as part of the step while recording.
int psi_memcpy_async(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, const char *what);

// A step's fingerprint hashes every launch's argument bytes (a Segments struct
// is ~800 bytes): eight bytes at a time, each mixed in by an odd multiply and
// an xor-shift, then the tail byte by byte. Every hash starts from PSI_HASH_SEED.
constexpr uint64_t PSI_HASH_SEED = 14695981039346656037ull;
inline uint64_t psi_hash(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = (const unsigned char *)p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 32;
  }
  for (; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

// Programmatic dependent launch (Hopper; PSIONIC_CUDA_PDL=1, memory.cu): each
// kernel is launched while the one before it still runs, so its blocks are
// resident when that one ends instead of a launch gap later. Every kernel
// therefore calls psi_grid_wait() first, before it reads anything: it waits
// for the previous kernel to end and its writes to be visible, then lets the
// next kernel launch. Without PDL (or before sm_90) the wait returns at once.
// The CPU build checks that every thread of every kernel calls it.
#ifdef PSI_EMULATE
void psi_grid_wait();
#else
__device__ __forceinline__ void psi_grid_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif
extern bool psi_pdl;

// kernel<<<grid, block, 0, stream>>>(args) as PSI_LAUNCH(grid, block, kernel)(args):
// launched now, or recorded into the step being recorded. Arguments are hashed
// byte for byte, so structs passed by value must have no padding.
template <class F>
struct PsiLaunch {
  dim3 grid, block;
  F kernel;
  template <class... A>
  void operator()(A... args) const {
    if (psi_recording()) {
      uint64_t h = psi_hash(PSI_HASH_SEED, &kernel, sizeof kernel);
      h = psi_hash(h, &grid, sizeof grid);
      h = psi_hash(h, &block, sizeof block);
      ((h = psi_hash(h, &args, sizeof args)), ...);
      const PsiLaunch self = *this;
      psi_record(h, [self, args...]() { self.run(args...); });
    } else {
      run(args...);
    }
  }
  template <class... A>
  void run(A... args) const {
#ifdef PSI_EMULATE
#ifdef PSI_EMU_TRACE
    psi_emu_trace_kernel((const void *)kernel);
#endif
    psi_emu_run(grid, block, [&]() { kernel(args...); }, (const void *)kernel);
#else
    if (psi_pdl) {
      cudaLaunchAttribute attribute;
      attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attribute.val.programmaticStreamSerializationAllowed = 1;
      cudaLaunchConfig_t config = {};
      config.gridDim = grid;
      config.blockDim = block;
      config.stream = psi_stream();
      config.attrs = &attribute;
      config.numAttrs = 1;
      cudaLaunchKernelEx(&config, kernel, args...);
    } else {
      kernel<<<grid, block, 0, psi_stream()>>>(args...);
    }
#endif
  }
};
template <class F>
inline PsiLaunch<F> psi_launch(dim3 grid, dim3 block, F kernel) { return {grid, block, kernel}; }
#define PSI_LAUNCH(grid, block, ...) psi_launch(dim3(grid), dim3(block), __VA_ARGS__)

static inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// warp_sum of N values at once (N a power of two, KEEP of them per unit, N /
// KEEP <= 32), for a fraction of the shuffles: each step a lane keeps half of
// its values (the upper half where its lane bit o is set) and trades the other
// half for its partner's, so N values cost fewer than N + 5 KEEP shuffles
// instead of 5 N. Afterwards v[0..KEEP) hold the warp's totals of unit
// lane / (32 / (N / KEEP)) (values [unit * KEEP, unit * KEEP + KEEP)),
// bit for bit warp_sum's: each value meets the same partners in the same order.
template <int N, int KEEP = 1, int O = 16>
__device__ __forceinline__ void warp_reduce_scatter(float *v, int lane) {
  static_assert((N & (N - 1)) == 0 && N % KEEP == 0 && (N == KEEP || N / KEEP <= 2 * O), "N: a power of two, at most 32 units");
  if constexpr (O > 0) {
    if constexpr (N > KEEP) {
      constexpr int HALF = N / 2;
      const bool upper = (lane & O) != 0;
#pragma unroll
      for (int j = 0; j < HALF; j++) {
        const float mine = upper ? v[j + HALF] : v[j], theirs = upper ? v[j] : v[j + HALF];
        v[j] = mine + __shfl_xor_sync(0xffffffffu, theirs, O);
      }
      warp_reduce_scatter<HALF, KEEP, O / 2>(v, lane);
    } else {
#pragma unroll
      for (int j = 0; j < KEEP; j++) v[j] += __shfl_xor_sync(0xffffffffu, v[j], O);
      warp_reduce_scatter<N, KEEP, O / 2>(v, lane);
    }
  }
}

// Whether (ov, oi) beats (v, i): a larger value, or an equal one at a lower index; i < 0 is none yet.
// The ranking of the argmax (ops.cu) and of MoE top-k (moe.cu), as the CPU ranks.
__device__ __forceinline__ bool argmax_better(float ov, int oi, float v, int i) {
  return oi >= 0 && (i < 0 || ov > v || (ov == v && oi < i));
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
