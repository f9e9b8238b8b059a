// The CUDA backend's memory: the stream every launch goes to, device buffers,
// uploads (weights once at load, small host arrays such as token ids and
// positions through a pinned ring so the copy stays asynchronous), downloads,
// growable scratch, and the load-time repack of Q8_0/Q4_0/MXFP4 into the
// split layout (decode.cuh).
#include <stdarg.h>
#include <string.h>
#include <stdlib.h>
#include <algorithm>
#include <vector>
#include "common.cuh"
#include "decode.cuh"
#include "matmul.cuh"

static char last_error[512] = "";
static cudaStream_t stream = nullptr;

void psi_set_error(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, args);
  va_end(args);
}

bool psi_failed(cudaError_t status, const char *what) {
  if (status == cudaSuccess) return false;
  psi_set_error("%s: %s (%s)", what, cudaGetErrorString(status), cudaGetErrorName(status));
  // A failed call also leaves its error as the runtime's last one: reset it, or
  // the next launch's check would report this error again (a refused
  // allocation is not sticky; a sticky error comes back on its own).
  cudaGetLastError();
  return true;
}

cudaStream_t psi_stream() { return stream; }

PSI_EXPORT const char *psi_cuda_last_error(void) { return last_error; }

// Number of usable CUDA devices, or -1 with the reason recorded (no driver, no device).
PSI_EXPORT int psi_cuda_device_count(void) {
  int count = 0;
  return psi_failed(cudaGetDeviceCount(&count), "cudaGetDeviceCount") ? -1 : count;
}

// Writes "name|total bytes|compute capability major.minor" for `device` into `out`; 0 on success.
PSI_EXPORT int psi_cuda_device_describe(int device, char *out, int capacity) {
  cudaDeviceProp prop;
  if (psi_failed(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties")) return -1;
  snprintf(out, capacity, "%s|%zu|%d.%d", prop.name, prop.totalGlobalMem, prop.major, prop.minor);
  return 0;
}

// Pinned staging ring for small host arrays: host copy, then an async upload.
static uint8_t *ring_host = nullptr, *ring_device = nullptr;
static size_t ring_at = 0;
static const size_t RING_BYTES = 8u << 20;

int64_t GEMM_MIN_ROWS = 65;
int64_t MOE_DEVICE_TOKENS = 64;
int64_t FLASH_MIN_ROWS = 16;
int64_t MMV_WARP_ROWS = 2;
int64_t GRAPH_FIRST_NODES = 8;
bool psi_pdl = false;

// A positive integer from the environment, at least `floor`; else `fallback`.
static int64_t tuning(const char *name, int64_t fallback, int64_t floor) {
  const char *value = getenv(name);
  const long long parsed = value && *value ? atoll(value) : 0;
  return parsed > 0 ? std::max<int64_t>(floor, parsed) : fallback;
}

PSI_EXPORT int psi_cuda_init(int device) {
  if (stream) return 0;
  GEMM_MIN_ROWS = tuning("PSIONIC_CUDA_GEMM_MIN_ROWS", 65, 65);
  MOE_DEVICE_TOKENS = tuning("PSIONIC_CUDA_MOE_DEVICE_TOKENS", 64, 64);
  FLASH_MIN_ROWS = tuning("PSIONIC_CUDA_FLASH_MIN_ROWS", 16, 2);
  MMV_WARP_ROWS = std::min<int64_t>(2, tuning("PSIONIC_CUDA_MMV_WARP_ROWS", 2, 1));
  GRAPH_FIRST_NODES = std::min<int64_t>(1 << 20, tuning("PSIONIC_CUDA_GRAPH_FIRST_NODES", 8, 1));
  if (psi_failed(cudaSetDevice(device), "cudaSetDevice")) return -1;
  // Programmatic dependent launch (common.cuh), sm_90 and later, on request until measured.
  cudaDeviceProp prop;
  if (psi_failed(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties")) return -1;
  psi_pdl = tuning("PSIONIC_CUDA_PDL", 0, 0) == 1 && prop.major >= 9;
  if (psi_failed(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate")) return -1;
  if (psi_failed(cudaMallocHost(&ring_host, RING_BYTES), "cudaMallocHost (staging ring)")) return -1;
  if (psi_failed(cudaMalloc(&ring_device, RING_BYTES), "cudaMalloc (staging ring)")) return -1;
  return 0;
}

PSI_EXPORT void *psi_cuda_malloc(uint64_t bytes) {
  void *p = nullptr;
  if (psi_failed(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc")) {
    size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    psi_set_error("cudaMalloc of %llu bytes failed: %zu of %zu bytes free on the device",
                  (unsigned long long)bytes, free_bytes, total);
    return nullptr;
  }
  return p;
}

PSI_EXPORT int psi_cuda_free(void *p) { return psi_failed(cudaFree(p), "cudaFree") ? -1 : 0; }

// Page-locked host memory for downloads repeated every step (logits): the GPU copies
// into it directly, not through the driver's bounce buffer for pageable memory.
PSI_EXPORT void *psi_cuda_host_alloc(uint64_t bytes) {
  void *p = nullptr;
  if (psi_failed(cudaMallocHost(&p, bytes ? bytes : 1), "cudaMallocHost")) return nullptr;
  return p;
}

PSI_EXPORT int psi_cuda_host_free(void *p) { return psi_failed(cudaFreeHost(p), "cudaFreeHost") ? -1 : 0; }

// Marks device bytes off limits to every kernel (poisoned 1) or usable again (0),
// for the emulator built with AddressSanitizer (cuda-emulated.test.ts), where a
// kernel touching them is reported; the arena keeps each step's gaps and stale
// rows poisoned. Bytes made usable hold NaN (0xff), as memory no kernel has
// written this step: a kernel reading them before they are written spoils its
// output instead of finding the last step's values. Returns 1 there, 0 in
// builds without the sanitizer (a GPU's), which ignore it. Before poisoning,
// work recorded for a graph runs: it was recorded against the bytes as they were.
PSI_EXPORT int psi_cuda_poison(void *p, uint64_t bytes, int poisoned) {
#ifdef PSI_EMU_ASAN
  if (poisoned && psi_flush_recording()) return -1;
  if (p && bytes) {
    if (poisoned) {
      __asan_poison_memory_region(p, bytes);
    } else {
      __asan_unpoison_memory_region(p, bytes);
      memset(p, 0xff, bytes);
    }
  }
  return 1;
#else
  (void)p; (void)bytes; (void)poisoned;
  return 0;
#endif
}

PSI_EXPORT int psi_cuda_upload(void *dst, const void *src, uint64_t bytes) {
  if (psi_flush_recording()) return -1;
  return psi_failed(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream), "upload") ||
         psi_failed(cudaStreamSynchronize(stream), "upload (sync)") ? -1 : 0;
}

PSI_EXPORT int psi_cuda_download(void *dst, const void *src, uint64_t bytes) {
  if (psi_flush_recording()) return -1;
  if (psi_failed(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream), "download")) return -1;
  return psi_failed(cudaStreamSynchronize(stream), "download (sync): an earlier kernel failed") ? -1 : 0;
}

PSI_EXPORT int psi_cuda_copy(void *dst, const void *src, uint64_t bytes) {
  return psi_memcpy_async(dst, src, bytes, cudaMemcpyDeviceToDevice, "device copy");
}

PSI_EXPORT int psi_cuda_sync(void) {
  if (psi_flush_recording()) return -1;
  return psi_failed(cudaStreamSynchronize(stream), "synchronize") ? -1 : 0;
}

// What the ring holds since it last started over (the first 16 stagings).
struct Staged { size_t at, bytes; };
static std::vector<Staged> staged;
static uint64_t stagingCopies = 0;
uint64_t psi_staging_copies() { return stagingCopies; }

// A device copy of `bytes` host bytes, valid for launches queued after this call.
// Bytes the ring already holds get the earlier copy (every layer stages the same
// positions), so a decode step has a few staging copies, not two per layer, each
// of which would sit between two kernels of the step's chain.
void *psi_stage(const void *src, size_t bytes) {
  for (const Staged &s : staged) {
    if (s.bytes == bytes && memcmp(ring_host + s.at, src, bytes) == 0) return ring_device + s.at;
  }
  const size_t aligned = (bytes + 255) & ~(size_t)255;
  if (aligned > RING_BYTES) { psi_set_error("staging: %zu bytes exceed the %zu-byte ring", bytes, RING_BYTES); return nullptr; }
  if (ring_at + aligned > RING_BYTES) {
    // Wrapping: the copies that read the ring's start must be done before it is rewritten.
    if (psi_flush_recording() || psi_failed(cudaStreamSynchronize(stream), "staging (sync)")) return nullptr;
    ring_at = 0;
    staged.clear();
  }
  memcpy(ring_host + ring_at, src, bytes);
  void *dst = ring_device + ring_at;
  if (psi_memcpy_async(dst, ring_host + ring_at, bytes, cudaMemcpyHostToDevice, "staging copy")) return nullptr;
  if (staged.size() < 16) staged.push_back({ring_at, bytes});
  stagingCopies++;
  ring_at += aligned;
  return dst;
}

// A recorded step starts the ring over (its device is idle), so identical steps stage at identical addresses.
void psi_ring_reset() {
  ring_at = 0;
  staged.clear();
}

// Scratch buffers that grow on demand; each slot is reused by the next op that asks for it.
static void *scratch_ptr[24];
static size_t scratch_size[24];

// Buffers outgrown while a step was being recorded: its recorded work may still use them.
static std::vector<void *> deferred;

void psi_release_deferred() {
  for (void *p : deferred) cudaFree(p);
  deferred.clear();
}

void *psi_scratch(int slot, size_t bytes) {
  if (scratch_size[slot] >= bytes) {
#ifdef PSI_EMU_ASAN
    __asan_unpoison_memory_region(scratch_ptr[slot], bytes);  // a larger request inside the headroom
#endif
    return scratch_ptr[slot];
  }
  if (scratch_ptr[slot]) {
    if (psi_recording()) {
      deferred.push_back(scratch_ptr[slot]);
    } else {
      cudaStreamSynchronize(stream);
      cudaFree(scratch_ptr[slot]);
    }
  }
  scratch_ptr[slot] = nullptr; scratch_size[slot] = 0;
  size_t want = bytes + bytes / 4;
  if (psi_failed(cudaMalloc(&scratch_ptr[slot], want), "cudaMalloc (scratch)")) return nullptr;
  scratch_size[slot] = want;
#ifdef PSI_EMU_ASAN
  // The headroom past the request is off limits until a request asks for it.
  __asan_poison_memory_region((char *)scratch_ptr[slot] + bytes, want - bytes);
#endif
  return scratch_ptr[slot];
}

// GGUF blocks of one slab -> split layout: codes of block i at i*codeBytes, scales after all codes.
__global__ void repack_split(const uint8_t *src, uint8_t *dst, int64_t blocks, int type) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= blocks) return;
  const int bytes = block_bytes(type), codes = split_code_bytes(type), scale = bytes - codes;
  const uint8_t *b = src + i * bytes;
  // Q8_0/Q4_0 start with the fp16 scale; MXFP4 with its e8m0 byte. MXFP4's codes go
  // in value order, two a byte, low nibble first (GGUF has value v < 16 in byte v's
  // low nibble, v >= 16 in byte v - 16's high one), so four values are one prmt
  // selector (decode.cuh's e2m1x4).
  if (type == T_MXFP4) {
    const auto code = [&](int v) { return v < 16 ? b[scale + v] & 15 : b[scale + v - 16] >> 4; };
    for (int j = 0; j < codes; j++) dst[i * codes + j] = (uint8_t)(code(2 * j) | (code(2 * j + 1) << 4));
  } else {
    for (int j = 0; j < codes; j++) dst[i * codes + j] = b[scale + j];
  }
  for (int j = 0; j < scale; j++) dst[blocks * codes + i * scale + j] = b[j];
}

// One sub-block's 32 code nibbles, (src[v] >> shift) & 15, packed into dst[0..16):
// value v at byte v % 16, in the high nibble from 16 (decode.cuh's low-nibble regions).
__device__ __forceinline__ void pack_low_nibbles(const uint8_t *src, int shift, uint8_t *dst) {
  uint8_t lows[16] = {};
  for (int v = 0; v < 32; v++) lows[v % 16] |= ((src[v] >> shift) & 0xf) << (4 * (v / 16));
  for (int k = 0; k < 16; k++) dst[k] = lows[k];
}

// Q6_K blocks of one slab -> decode_q6k's regions (decode.cuh), a thread per sub-block g
// (block g / 8, sub-block j = g % 8: half j / 4, quarter j % 4 of ggml's layout).
__global__ void repack_q6k(const uint8_t *src, uint8_t *dst, int64_t blocks) {
  psi_grid_wait();
  const int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, S = blocks * 8;
  if (g >= S) return;
  const uint8_t *b = src + (g / 8) * 210;
  const int j = (int)(g % 8), half = j / 4, qi = j % 4;
  const uint8_t *qh = b + 128 + half * 32;
  pack_low_nibbles(b + half * 64 + (qi & 1) * 32, (qi >> 1) * 4, dst + g * 16);
  uint8_t highs[8] = {};
  for (int v = 0; v < 32; v++) highs[v % 8] |= ((qh[v] >> (qi * 2)) & 3) << (2 * (v / 8));
  for (int k = 0; k < 8; k++) dst[S * 16 + g * 8 + k] = highs[k];
  dst[S * 24 + g * 2] = b[192 + half * 8 + 2 * qi];
  dst[S * 24 + g * 2 + 1] = b[192 + half * 8 + 2 * qi + 1];
  if (j == 0) { dst[S * 26 + (g / 8) * 2] = b[208]; dst[S * 26 + (g / 8) * 2 + 1] = b[209]; }
}

// Q4_K / Q5_K blocks of one slab -> decode_k4's regions (decode.cuh), a thread per
// sub-block g (block g / 8, sub-block j = g % 8: nibble j % 2 of the codes' 32-byte run j / 2).
template <int T>
__global__ void repack_k4(const uint8_t *src, uint8_t *dst, int64_t blocks) {
  psi_grid_wait();
  const int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, S = blocks * 8;
  if (g >= S) return;
  const uint8_t *b = src + (g / 8) * block_bytes(T);
  const int j = (int)(g % 8);
  pack_low_nibbles(b + (T == T_Q5_K ? 48 : 16) + (j / 2) * 32, (j & 1) * 4, dst + g * 16);
  uint8_t *meta = dst + S * 16;
  if (T == T_Q5_K) {
    uint32_t fifth = 0;
    for (int v = 0; v < 32; v++) fifth |= (uint32_t)((b[16 + v] >> j) & 1) << (8 * (v % 4) + v / 4);
    for (int k = 0; k < 4; k++) meta[g * 4 + k] = (uint8_t)(fifth >> (8 * k));
    meta += S * 4;
  }
  if (j == 0) for (int k = 0; k < 16; k++) meta[(g / 8) * 16 + k] = b[k];
}

// Repacks `slabs` slabs of `blocksPerSlab` blocks from src (GGUF, contiguous) into dst
// at `dstSlabStride` bytes apart.
PSI_EXPORT int psi_cuda_repack(int type, const uint8_t *src, uint8_t *dst, int64_t blocksPerSlab, int64_t slabs, int64_t dstSlabStride) {
  const bool kQuant = type == T_Q4_K || type == T_Q5_K || type == T_Q6_K;
  if (!split_code_bytes(type) && !kQuant) { psi_set_error("repack: type %d has no split layout", type); return -1; }
  for (int64_t s = 0; s < slabs; s++) {
    const uint8_t *from = src + s * blocksPerSlab * block_bytes(type);
    const unsigned subBlockGrid = (unsigned)ceil_div(blocksPerSlab * 8, 256);  // a thread per sub-block
    if (type == T_Q6_K) {
      PSI_LAUNCH(subBlockGrid, 256, repack_q6k)(from, dst + s * dstSlabStride, blocksPerSlab);
    } else if (type == T_Q4_K) {
      PSI_LAUNCH(subBlockGrid, 256, repack_k4<T_Q4_K>)(from, dst + s * dstSlabStride, blocksPerSlab);
    } else if (type == T_Q5_K) {
      PSI_LAUNCH(subBlockGrid, 256, repack_k4<T_Q5_K>)(from, dst + s * dstSlabStride, blocksPerSlab);
    } else {
      PSI_LAUNCH((unsigned)ceil_div(blocksPerSlab, 256), 256, repack_split)(from, dst + s * dstSlabStride, blocksPerSlab, type);
    }
    if (PSI_LAUNCHED("repack")) return -1;
  }
  return 0;
}
