// The card's device-to-device copy bandwidth: the ceiling a memory-bound kernel
// (decode's weight reads) is measured against. Two 2 GiB buffers, non-zero data,
// three warm-up copies, then 20 timed cudaMemcpyDeviceToDevice with CUDA events;
// prints the median counting bytes read plus bytes written.
//   nvcc -O2 -o /tmp/cuda-copy-bandwidth scripts/cuda-copy-bandwidth.cu && /tmp/cuda-copy-bandwidth
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK(call)                                                                       \
  do {                                                                                    \
    cudaError_t status_ = (call);                                                         \
    if (status_ != cudaSuccess) {                                                         \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,           \
                   cudaGetErrorString(status_));                                          \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)

int main() {
  const size_t bytes = size_t(2) << 30;
  const int warmups = 3, trials = 20;
  int device = 0;
  cudaDeviceProp prop;
  CHECK(cudaGetDevice(&device));
  CHECK(cudaGetDeviceProperties(&prop, device));
  void *src = nullptr, *dst = nullptr;
  CHECK(cudaMalloc(&src, bytes));
  CHECK(cudaMalloc(&dst, bytes));
  CHECK(cudaMemset(src, 0x5a, bytes));
  CHECK(cudaMemset(dst, 0xa5, bytes));
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < warmups; i++) CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  CHECK(cudaDeviceSynchronize());
  std::vector<float> ms(trials);
  for (int i = 0; i < trials; i++) {
    CHECK(cudaEventRecord(start));
    CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice));
    CHECK(cudaEventRecord(stop));
    CHECK(cudaEventSynchronize(stop));
    CHECK(cudaEventElapsedTime(&ms[i], start, stop));
  }
  // The copy really happened: the destination's first byte now holds the source's.
  unsigned char first = 0;
  CHECK(cudaMemcpy(&first, dst, 1, cudaMemcpyDeviceToHost));
  if (first != 0x5a) {
    std::fprintf(stderr, "copy check failed: read 0x%02x, expected 0x5a\n", first);
    return 1;
  }
  std::sort(ms.begin(), ms.end());
  const float median = (ms[trials / 2 - 1] + ms[trials / 2]) / 2;
  const double moved = 2.0 * double(bytes); // read + written
  std::printf("device: %s (sm_%d%d, %.1f GiB)\n", prop.name, prop.major, prop.minor,
              double(prop.totalGlobalMem) / double(1 << 30));
  std::printf("copy of %.0f GiB: median %.3f ms (min %.3f, max %.3f) over %d copies\n",
              double(bytes) / double(1 << 30), median, ms.front(), ms.back(), trials);
  std::printf("copy bandwidth: %.0f GB/s (read+write)\n", moved / (median * 1e-3) / 1e9);
  CHECK(cudaEventDestroy(start));
  CHECK(cudaEventDestroy(stop));
  CHECK(cudaFree(src));
  CHECK(cudaFree(dst));
  return 0;
}
