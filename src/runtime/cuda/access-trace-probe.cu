// Kernels whose memory use is known exactly, for access-trace.test.ts: each
// is one warp (or four), and the test checks the sectors, distinct bytes and
// bank wavefronts the trace build (kernels/cuda/emulate_trace.cpp) reports.
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
  __shared__ float s[1024];
  for (int i = threadIdx.x; i < 1024; i += 32) s[i] = (float)i;
  __syncthreads();
  const float conflicted = s[(threadIdx.x * 32) % 1024], broadcast = s[threadIdx.x / 32];
  const float4 wide = reinterpret_cast<const float4 *>(s)[threadIdx.x];
  const float2 pair = reinterpret_cast<const float2 *>(s)[threadIdx.x / 32];
  y[threadIdx.x] = conflicted + broadcast + wide.x + wide.w + pair.y;
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
  cudaFree(x);
  cudaFree(y);
  return 0;
}
