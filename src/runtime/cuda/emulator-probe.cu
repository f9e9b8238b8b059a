// Kernels for emulator.test.ts: warp-synchronous calls whose mask names every
// lane, with all of a warp's lanes present, or after half of them have returned
// (undefined on a GPU, where it can hang; the emulator stops with an error); and
// a read of shared memory no thread of the launch wrote.
#include "../../../kernels/cuda/emulate.h"

void psi_grid_wait();

// Lanes from `live` on return before the warp's sum; the others shuffle with a full mask.
__global__ void warp_sum(float *y, int live) {
  psi_grid_wait();
  if ((int)threadIdx.x >= live) return;
  float v = (float)threadIdx.x;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  y[threadIdx.x] = v;
}

// Runs warp_sum on one warp; returns lane 0's sum.
extern "C" __attribute__((visibility("default"))) float probe_warp_sum(int live) {
  float *y;
  if (cudaMalloc(&y, 32 * sizeof(float))) return -1.f;
  psi_emu_run(dim3(1), dim3(32), [&]() { warp_sum(y, live); });
  const float out = y[0];
  cudaFree(y);
  return out;
}

// Lane l writes s[l] = 1 when `write`, then reads s[l].
__global__ void shared_value(float *y, int write) {
  psi_grid_wait();
  __shared__ float s[32];
  if (write) s[threadIdx.x] = 1.f;
  y[threadIdx.x] = s[threadIdx.x];
}

// A launch that writes shared memory, then one that reads it unwritten: returns what lane 5 read.
extern "C" __attribute__((visibility("default"))) float probe_unwritten_shared() {
  float *y;
  if (cudaMalloc(&y, 32 * sizeof(float))) return -1.f;
  psi_emu_run(dim3(1), dim3(32), [&]() { shared_value(y, 1); });
  psi_emu_run(dim3(1), dim3(32), [&]() { shared_value(y, 0); });
  const float out = y[5];
  cudaFree(y);
  return out;
}
