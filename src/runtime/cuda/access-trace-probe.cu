// Kernels whose memory use is known exactly, for access-trace.test.ts: each
// is one warp (or two, or four), and the test checks the sectors, distinct bytes,
// bank wavefronts and races the trace build (kernels/cuda/emulate_trace.cpp) reports.
#include "../../../kernels/cuda/emulate.h"

void psi_grid_wait();

// Lane l reads float l and writes float l: 128 bytes in 4 sectors, every byte used.
__global__ void coalesced(const float *x, float *y) {
  psi_grid_wait();
  y[threadIdx.x] = x[threadIdx.x] + 1.f;
}
// Lane l reads float 8l: 32 sectors for 128 bytes.
__global__ void strided(const float *x, float *y) {
  psi_grid_wait();
  y[threadIdx.x] = x[threadIdx.x * 8];
}
// Lane l reads the first 16 bytes of the 32 at 32l, then the second 16: each
// request touches 32 sectors and uses half of each.
__global__ void halves(const int4 *x, int4 *y) {
  psi_grid_wait();
  const int4 a = x[2 * threadIdx.x], b = x[2 * threadIdx.x + 1];
  y[threadIdx.x] = make_int4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}
// Four warps read the same 128 bytes: 16 sectors fetched by requests, 4 distinct.
__global__ void shared_input(const float *x, float *y) {
  psi_grid_wait();
  y[threadIdx.x] = x[threadIdx.x % 32];
}
// Shared memory: lane l writes word l (no conflict), reads word 32l % 1024
// (all in bank 0: 32 wavefronts), reads word l / 32 = 0 (a broadcast: 1;
// g++ leaves a constant index like s[0] unchecked, so the trace misses it),
// reads 16 bytes at 16l (four quarter-warp phases of 128 bytes: 4, the fewest),
// and 8 bytes at 0 (a broadcast in each of two half-warp phases: 2, the fewest).
__global__ void banks(float *y) {
  psi_grid_wait();
  __shared__ float s[1024] __attribute__((aligned(16)));  // read as float4 below
  for (int i = threadIdx.x; i < 1024; i += 32) s[i] = (float)i;
  __syncthreads();
  const float conflicted = s[(threadIdx.x * 32) % 1024], broadcast = s[threadIdx.x / 32];
  const float4 wide = reinterpret_cast<const float4 *>(s)[threadIdx.x];
  const float2 pair = reinterpret_cast<const float2 *>(s)[threadIdx.x / 32];
  y[threadIdx.x] = conflicted + broadcast + wide.x + wide.w + pair.y;
}

// Lane l writes s[l], then reads its neighbour's: with no barrier between (a
// race inside the warp), after __syncwarp (none), or after only a shuffle (a
// race: a shuffle orders no memory).
template <int SYNC>
__global__ void neighbour(float *y) {
  psi_grid_wait();
  __shared__ float s[32];
  s[threadIdx.x] = (float)threadIdx.x;
  if (SYNC == 1) __syncwarp();
  const float v = SYNC == 2 ? __shfl_xor_sync(0xffffffffu, 1.f, 1) : 0.f;
  y[threadIdx.x] = s[(threadIdx.x + 1) % 32] + v;  // read: neighbour
}
// Two warps. Thread t writes s[t] and reads s[63 - t], the other warp's (a race).
// Thread 0 sets flag and total (at constant indices), which the others use after
// a barrier (no race); everyone adds to total atomically (no race among the
// adds), and thread 0 reads it before the next barrier (a race with the others'
// adds, inside its warp and across). Threads 0 and 1 write one global word (a race).
__global__ void across(float *y, int *word) {
  psi_grid_wait();
  __shared__ float s[64];
  __shared__ float flag;
  __shared__ int total;
  s[threadIdx.x] = 1.f;
  const float other = s[63 - threadIdx.x];  // read: other warp
  __syncthreads();
  if (threadIdx.x == 0) flag = 2.f, total = 0;
  __syncthreads();
  atomicAdd(&total, 1);  // write: atomic
  const int early = threadIdx.x == 0 ? total : 0;  // read: early
  __syncthreads();
  y[threadIdx.x] = other + flag + (float)total + (float)early;
  if (threadIdx.x < 2) word[0] = threadIdx.x;  // write: global
}

// Two blocks of 32 threads: block b writes y[16b .. 16b + 31], so y[16 .. 31] twice (a
// race between blocks); both add to one counter atomically (none).
__global__ void overlap(float *y, int *count) {
  psi_grid_wait();
  y[16 * blockIdx.x + threadIdx.x] = (float)blockIdx.x;  // write: overlap
  if (threadIdx.x == 0) atomicAdd(count, 1);
}

extern "C" __attribute__((visibility("default"))) int probe_run() {
  float *x, *y;
  if (cudaMalloc(&x, 4096) || cudaMalloc(&y, 4096)) return 1;
  for (int i = 0; i < 1024; i++) x[i] = (float)i;
  psi_emu_trace_kernel((const void *)&coalesced);
  psi_emu_run(dim3(1), dim3(32), [&]() { coalesced(x, y); });
  psi_emu_trace_kernel((const void *)&strided);
  psi_emu_run(dim3(1), dim3(32), [&]() { strided(x, y); });
  psi_emu_trace_kernel((const void *)&halves);
  psi_emu_run(dim3(1), dim3(32), [&]() { halves((const int4 *)x, (int4 *)y); });
  psi_emu_trace_kernel((const void *)&shared_input);
  psi_emu_run(dim3(1), dim3(128), [&]() { shared_input(x, y); });
  psi_emu_trace_kernel((const void *)&banks);
  psi_emu_run(dim3(1), dim3(32), [&]() { banks(y); });
  psi_emu_trace_kernel((const void *)&neighbour<0>);
  psi_emu_run(dim3(1), dim3(32), [&]() { neighbour<0>(y); });
  psi_emu_trace_kernel((const void *)&neighbour<1>);
  psi_emu_run(dim3(1), dim3(32), [&]() { neighbour<1>(y); });
  psi_emu_trace_kernel((const void *)&neighbour<2>);
  psi_emu_run(dim3(1), dim3(32), [&]() { neighbour<2>(y); });
  psi_emu_trace_kernel((const void *)&across);
  psi_emu_run(dim3(1), dim3(64), [&]() { across(y, (int *)x); });
  psi_emu_trace_kernel((const void *)&overlap);
  psi_emu_run(dim3(2), dim3(32), [&]() { overlap(y, (int *)x); });
  cudaFree(x);
  cudaFree(y);
  return 0;
}
