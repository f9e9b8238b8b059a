// Device discovery for the CUDA backend: which GPUs exist, and a readable reason
// when none can be used (no driver, no device), so callers refuse clearly instead
// of crashing. The CUDA runtime is linked statically; only the driver is needed.
#include <cuda_runtime.h>
#include <stdio.h>

#define PSI_EXPORT extern "C" __attribute__((visibility("default")))

static char last_error[256] = "";

// Number of usable CUDA devices, or -1 with psi_cuda_last_error() saying why.
PSI_EXPORT int psi_cuda_device_count(void) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    snprintf(last_error, sizeof last_error, "%s: %s", cudaGetErrorName(status), cudaGetErrorString(status));
    return -1;
  }
  return count;
}

// Writes "name|total bytes|compute capability major.minor" for `device` into `out`; 0 on success.
PSI_EXPORT int psi_cuda_device_describe(int device, char *out, int capacity) {
  cudaDeviceProp prop;
  cudaError_t status = cudaGetDeviceProperties(&prop, device);
  if (status != cudaSuccess) {
    snprintf(last_error, sizeof last_error, "%s: %s", cudaGetErrorName(status), cudaGetErrorString(status));
    return -1;
  }
  snprintf(out, capacity, "%s|%zu|%d.%d", prop.name, prop.totalGlobalMem, prop.major, prop.minor);
  return 0;
}

PSI_EXPORT const char *psi_cuda_last_error(void) { return last_error; }
