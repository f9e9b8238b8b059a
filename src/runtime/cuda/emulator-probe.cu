// Kernels for emulator.test.ts: warp-synchronous calls whose mask names every
// lane, with all of a warp's lanes present, or after half of them have returned
// (undefined on a GPU, where it can hang; the emulator stops with an error); and
// reads of shared memory no thread of the block wrote.
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

// Lane l of block b writes s[l] = 1 when b is `writer` (every block when it is
// negative), then reads s[l] into y[32 b + l].
__global__ void shared_value(float *y, int writer) {
  psi_grid_wait();
  __shared__ float s[32];
  if (writer < 0 || (int)blockIdx.x == writer) s[threadIdx.x] = 1.f;
  y[32 * blockIdx.x + threadIdx.x] = s[threadIdx.x];
}

// A launch of 16 blocks that all write shared memory, then one where only block 0
// does: returns how many of blocks 1-15 read a number (not NaN), or -1 when block 0
// did not read its 1.
extern "C" __attribute__((visibility("default"))) int probe_unwritten_shared() {
  float *y;
  if (cudaMalloc(&y, 16 * 32 * sizeof(float))) return -1;
  psi_emu_run(dim3(16), dim3(32), [&]() { shared_value(y, -1); }, (const void *)&shared_value);
  psi_emu_run(dim3(16), dim3(32), [&]() { shared_value(y, 0); }, (const void *)&shared_value);
  int numbers = y[5] == 1.f ? 0 : -1;
  for (int b = 1; b < 16 && numbers >= 0; b++) numbers += y[32 * b + 5] == y[32 * b + 5];
  cudaFree(y);
  return numbers;
}
