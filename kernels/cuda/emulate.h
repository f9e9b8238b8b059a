// The CUDA kernels compiled for the CPU (build/libpsionic_cuda_emu.so, -DPSI_EMULATE):
// the subset of the CUDA language and runtime kernels/cuda uses, so the
// kernels' indexing, layouts and arithmetic run and are checked on machines
// without a GPU (CI, the build machines). Each thread of a block is a fiber
// (emulate.cpp) and the block's fibers take turns, switching only at
// __syncthreads and warp shuffles, where a fiber waits for its block or warp:
// the same synchronization rules as the hardware, one thread at a time per
// block (blocks run in parallel, one worker per core).
// Device memory is host memory; launches and copies complete before they
// return. Nothing here says anything about speed.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>
#if defined(__SANITIZE_ADDRESS__) && !defined(PSI_EMU_TRACE)
// Built with -fsanitize=address (build.ts, libpsionic_cuda_emu_asan.so): device
// buffers are heap blocks, so reads and writes past them are reported.
#include <sanitizer/asan_interface.h>
#define PSI_EMU_ASAN 1
#endif
#ifdef PSI_EMU_TRACE
// The access-trace build (emulate_trace.cpp, scripts/cuda-access-report.ts):
// device buffers are registered so each kernel load and store can be told
// apart from a fiber's locals, and a launch names its kernel.
void psi_emu_trace_alloc(void *p, size_t bytes);
void psi_emu_trace_free(void *p);
void psi_emu_trace_kernel(const void *kernel);
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local

using std::max;
using std::min;

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 { unsigned x, y, z; };
// The vector types keep CUDA's alignment, and a load or store of one through
// a misaligned address is reported and aborts, as the GPU faults on it
// ("misaligned address") where an x86 load would quietly succeed.
[[noreturn]] void psi_emu_misaligned(const void *p, int align, const char *type);
template <int A>
inline void psi_emu_aligned(const void *p, const char *type) {
  if ((uintptr_t)p % A) psi_emu_misaligned(p, A, type);
}
#define PSI_EMU_VECTOR(NAME, A, T, ...)                                                     \
  struct alignas(A) NAME {                                                                  \
    T __VA_ARGS__;                                                                          \
    NAME() = default;                                                                       \
    NAME(const NAME &o) { psi_emu_aligned<A>(&o, #NAME); memcpy((void *)this, &o, A); }     \
    NAME &operator=(const NAME &o) {                                                        \
      psi_emu_aligned<A>(this, #NAME);                                                      \
      psi_emu_aligned<A>(&o, #NAME);                                                        \
      memcpy((void *)this, &o, A);                                                          \
      return *this;                                                                         \
    }                                                                                       \
  };
PSI_EMU_VECTOR(int4, 16, int, x, y, z, w)
PSI_EMU_VECTOR(float4, 16, float, x, y, z, w)
PSI_EMU_VECTOR(float2, 8, float, x, y)
PSI_EMU_VECTOR(int2, 8, int, x, y)
inline int4 make_int4(int x, int y, int z, int w) { int4 v; v.x = x; v.y = y; v.z = z; v.w = w; return v; }

// The running fiber's coordinates (emulate.cpp).
struct PsiFiberCoords { uint3 thread, block; dim3 blockDim, gridDim; };
const PsiFiberCoords &psi_emu_coords();
#define threadIdx (psi_emu_coords().thread)
#define blockIdx (psi_emu_coords().block)
#define blockDim (psi_emu_coords().blockDim)
#define gridDim (psi_emu_coords().gridDim)

void psi_emu_barrier();
// The asm tells the compiler that any memory may change here: __shared__ arrays
// are static variables whose address never leaves the kernel, so without it
// g++ may keep their values in registers across the call (or work out what
// they hold from this thread's own writes), missing what other threads wrote.
inline void __syncthreads() {
  psi_emu_barrier();
  asm volatile("" ::: "memory");
}
// The warp-synchronous calls (shuffles, votes, __syncwarp, mma and ldmatrix) name
// their lanes in `mask`: every lane it names must make the call, and a lane that
// has exited (or that the block lacks) is an error here, as on the GPU it is
// undefined (a hang or garbage). Every live lane of the warp must call them.
// Exchanges 8 bytes with lane `src` of the warp.
uint64_t psi_emu_shuffle(uint64_t value, int src, unsigned mask);
int psi_emu_lane();
// Every live lane of the warp passes n <= 8 words and gets all 32 lanes' words (all[lane][i]).
void psi_emu_warp_gather(const uint32_t *mine, int n, uint32_t all[32][8], unsigned mask = 0xffffffffu);

template <class T>
inline T psi_emu_shfl(T v, int src, unsigned mask) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof(T));
  bits = psi_emu_shuffle(bits, src, mask);
  T out;
  memcpy(&out, &bits, sizeof(T));
  return out;
}
template <class T> inline T __shfl_xor_sync(unsigned lanes, T v, int mask) { return psi_emu_shfl(v, psi_emu_lane() ^ mask, lanes); }
template <class T> inline T __shfl_sync(unsigned lanes, T v, int src) { return psi_emu_shfl(v, src & 31, lanes); }
// Waits for every lane of the warp; the asm, as in __syncthreads, makes shared memory be read again.
void psi_emu_warp_barrier(unsigned mask);
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  psi_emu_warp_barrier(mask);
  asm volatile("" ::: "memory");
}
inline unsigned __ballot_sync(unsigned lanes, int predicate) {
  const uint32_t mine = predicate != 0;
  uint32_t all[32][8];
  psi_emu_warp_gather(&mine, 1, all, lanes);
  unsigned mask = 0;
  for (int l = 0; l < 32; l++) mask |= all[l][0] << l;
  return mask;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }

// A block's fibers never run at the same time, but blocks run on several host threads
// at once: device-scope atomics and fences (a counter of finished blocks) are real ones.
inline int atomicAdd(int *p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicAdd(unsigned *p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
// A load that skips L1 on the GPU (another block's writes); a plain load here, after the fence.
template <class T> inline T __ldcg(const T *p) { return *p; }

inline float __uint_as_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline uint32_t psi_emu_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; i++) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
  return c;
}

// fp16 and bf16, with the hardware's round-to-nearest-even conversions.
struct __half { uint16_t bits; };
PSI_EMU_VECTOR(__half2, 4, __half, x, y)
struct __nv_bfloat16 { uint16_t bits; };

inline float __half2float(__half h) {
  const uint32_t sign = (uint32_t)(h.bits & 0x8000) << 16, exponent = (h.bits >> 10) & 0x1f, mantissa = h.bits & 0x3ff;
  if (exponent == 0x1f) return __uint_as_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return __uint_as_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  return __uint_as_float(sign | psi_emu_bits((float)mantissa * 0x1p-24f));
}
inline __half __float2half_rn(float f) {
  const uint32_t w = psi_emu_bits(f), shl1 = w + w, sign = w & 0x80000000u;
  if (shl1 > 0xff000000u) return {(uint16_t)((sign >> 16) | 0x7e00)};
  float base = (std::fabs(f) * 0x1p+112f) * 0x1p-110f;
  uint32_t bias = shl1 & 0xff000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = __uint_as_float((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = psi_emu_bits(base);
  return {(uint16_t)((sign >> 16) | (((bits >> 13) & 0x7c00) + (bits & 0x0fff)))};
}
inline __half __ushort_as_half(uint16_t u) { return {u}; }
inline uint16_t __half_as_ushort(__half h) { return h.bits; }
inline float2 __half22float2(__half2 h) {
  float2 f;
  f.x = __half2float(h.x);
  f.y = __half2float(h.y);
  return f;
}
inline float __bfloat162float(__nv_bfloat16 b) { return __uint_as_float((uint32_t)b.bits << 16); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  const uint32_t u = psi_emu_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {(uint16_t)((u >> 16) | 64)};
  return {(uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16)};
}

// The runtime: one "device" whose memory is the host's.
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorInvalidValue = 1 };
typedef void *cudaStream_t;
typedef double *cudaEvent_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum { cudaStreamNonBlocking = 1 };
struct cudaDeviceProp { char name[256]; size_t totalGlobalMem; int major, minor; };

inline const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "invalid argument"; }
inline const char *cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation" : "cudaErrorInvalidValue"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidValue; }
inline cudaError_t cudaGetDeviceCount(int *count) { *count = 1; return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device) {
  if (device != 0) return cudaErrorInvalidValue;
  snprintf(p->name, sizeof p->name, "psionic CUDA emulator (CPU)");
  p->totalGlobalMem = (size_t)8 << 30; p->major = 9; p->minor = 0;
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = (void *)1; return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
// 256-byte aligned as on a GPU, and exactly `bytes` long: under AddressSanitizer
// (cuda-emulated.test.ts) a read or write past the end of a buffer is reported,
// and the bytes start as NaN (0xff), since a GPU's new allocation holds whatever
// was there: a kernel that reads before anything is written gets no zeros.
inline cudaError_t cudaMalloc(void **p, size_t bytes) {
  if (posix_memalign(p, 256, bytes ? bytes : 1)) *p = nullptr;
#ifdef PSI_EMU_ASAN
  if (*p) memset(*p, 0xff, bytes);
#endif
#ifdef PSI_EMU_TRACE
  if (*p) psi_emu_trace_alloc(*p, bytes);
#endif
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
template <class T> inline cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
inline cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaMalloc(p, bytes); }
template <class T> inline cudaError_t cudaMallocHost(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
inline cudaError_t cudaFree(void *p) {
#ifdef PSI_EMU_TRACE
  psi_emu_trace_free(p);
#endif
  free(p);
  return cudaSuccess;
}
inline cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind, cudaStream_t) { memmove(dst, src, bytes); return cudaSuccess; }
inline cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) { *free_bytes = *total = (size_t)8 << 30; return cudaSuccess; }
double psi_emu_now_ms();
inline cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new double(0); return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) { *e = psi_emu_now_ms(); return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) { *ms = (float)(*b - *a); return cudaSuccess; }

// Runs every block of a launch (emulate.cpp); PSI_LAUNCH (common.cuh) calls it.
// Runs body as the grid's threads; `kernel` (its __global__ function) names the
// __shared__ arrays filled with 0xff bytes before each block (emulate.cpp).
void psi_emu_run(dim3 grid, dim3 block, const std::function<void()> &body, const void *kernel = nullptr);
// This library's thread_local objects whose symbol names start with `prefix`
// (from its ELF symbol table), as offsets in the calling thread's thread_local
// block, and that block (dlinfo). emulate.cpp fills the __shared__ arrays (_ZZ:
// function-local) with 0xff bytes; the trace build leaves out their guards (_ZGV).
struct PsiTlsSymbol { uintptr_t offset, size; };
std::vector<PsiTlsSymbol> psi_emu_tls_symbols(const char *prefix);
char *psi_emu_tls_block();
