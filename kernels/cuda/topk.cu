// Per row of logits: its k best values with their indices (k <= TOPK_MAX), best
// first, ties to the lower index: argmax_better's order, which is the host
// sampler's loadTopK order. A sampled decode step (top-k on, no penalties) then
// reads back k pairs per sequence instead of its whole row (~800 KB for a 201k
// vocabulary) and the host samples from those, as it would have from the row.
//
// Two launches, as the argmax: each block takes a contiguous part of a row and
// each of its warps keeps a sorted list of the best k it has seen in shared
// memory. A value enters only when it beats the list's last entry, which once
// the list is full is one compare per value (rare insertions, a warp at a
// time). Then one warp per row merges the lists of all its parts.
#include <algorithm>
#include "common.cuh"

static const int TOPK_MAX = 128;  // MAX_DEVICE_TOP_K in src/runtime/backend.ts
static const int TOPK_WARPS = 8;  // warps per part block
static const int TOPK_PARTS = 8;  // part blocks per row, at most
static const int TOPK_PART_MIN = 4096;  // fewer values per part would spend more on merging than scanning
static const int TOPK_LISTS_PER_LANE = TOPK_PARTS * TOPK_WARPS / 32;
static const unsigned FULL = 0xffffffffu;

struct TopEntry {
  float v;
  int id;
};

// Inserts (v, id) into the warp's list of n entries (sorted best first, at most
// k), every lane calling with the same arguments; returns the new length.
__device__ int topk_insert(TopEntry *list, int n, int k, float v, int id, int lane) {
  constexpr int SLOTS = TOPK_MAX / 32;  // list slots per lane (lane, lane + 32, ...), unrolled to stay in registers
  int p = 0;  // entries better than (v, id): its place in the list
#pragma unroll
  for (int s = 0; s < SLOTS; s++) {
    if (s * 32 >= k) break;
    const int slot = lane + 32 * s;
    p += __popc(__ballot_sync(FULL, slot < n && argmax_better(list[slot].v, list[slot].id, v, id)));
  }
  if (p >= k) return n;
  const int last = min(n, k - 1);  // the highest slot written: the old last entry drops off a full list
  TopEntry moved[SLOTS];
#pragma unroll
  for (int s = 0; s < SLOTS; s++) {
    if (s * 32 >= k) break;
    const int slot = lane + 32 * s;
    if (slot > p && slot <= last) moved[s] = list[slot - 1];
  }
  __syncwarp();
#pragma unroll
  for (int s = 0; s < SLOTS; s++) {
    if (s * 32 >= k) break;
    const int slot = lane + 32 * s;
    if (slot > p && slot <= last) list[slot] = moved[s];
    else if (slot == p) list[slot] = TopEntry{v, id};
  }
  __syncwarp();
  return min(n + 1, k);
}

// Part blockIdx.x of row blockIdx.y: each warp's best k (padded with id -1) to
// lists, and whether the part holds a NaN or +inf to broken.
__global__ void topk_parts(const float *x, int64_t width, int k, TopEntry *lists, int *broken) {
  psi_grid_wait();
  __shared__ TopEntry list[TOPK_WARPS][TOPK_MAX];
  __shared__ int anyBad;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t per = (width + gridDim.x - 1) / gridDim.x, first = blockIdx.x * per, end = min(width, first + per);
  const float *row = x + blockIdx.y * width;
  TopEntry *mine = list[warp];
  if (threadIdx.x == 0) anyBad = 0;
  __syncthreads();
  int n = 0;  // the list's length, the same in every lane
  float floorV = -INFINITY;
  int floorId = -1;  // the list's last entry once it is full
  bool bad = false;
  for (int64_t base = first + warp * 32; base < end; base += TOPK_WARPS * 32) {
    const int64_t j = base + lane;
    const float v = j < end ? row[j] : -INFINITY;
    bad |= j < end && !(v < INFINITY);
    const bool enters = j < end && (n < k || argmax_better(v, (int)j, floorV, floorId));
    for (unsigned pending = __ballot_sync(FULL, enters); pending != 0; pending &= pending - 1) {
      const int src = __ffs((int)pending) - 1;
      n = topk_insert(mine, n, k, __shfl_sync(FULL, v, src), __shfl_sync(FULL, (int)j, src), lane);
      if (n == k) {
        floorV = mine[k - 1].v;
        floorId = mine[k - 1].id;
      }
    }
  }
  if (bad) anyBad = 1;
  TopEntry *out = lists + ((int64_t)(blockIdx.y * gridDim.x + blockIdx.x) * TOPK_WARPS + warp) * k;
  for (int slot = lane; slot < k; slot += 32) out[slot] = slot < n ? mine[slot] : TopEntry{-INFINITY, -1};
  __syncthreads();
  if (threadIdx.x == 0) broken[blockIdx.y * gridDim.x + blockIdx.x] = anyBad;
}

// One warp per row (blockIdx.x) merges its parts' sorted lists: k times, the
// best head of all lists (each lane watches TOPK_LISTS_PER_LANE of them) is
// written out and its list moves on. A broken row gets id -1 first.
__global__ void topk_merge(const TopEntry *lists, const int *broken, int parts, int k, int *outIds, float *outValues) {
  psi_grid_wait();
  const int lane = threadIdx.x, row = blockIdx.x, count = parts * TOPK_WARPS;
  const TopEntry *rowLists = lists + (int64_t)row * count * k;
  int head[TOPK_LISTS_PER_LANE];
  TopEntry at[TOPK_LISTS_PER_LANE];  // each watched list's head entry (id -1: none)
#pragma unroll
  for (int l = 0; l < TOPK_LISTS_PER_LANE; l++) {
    const int list = lane + 32 * l;
    head[l] = 0;
    at[l] = list < count ? rowLists[list * k] : TopEntry{-INFINITY, -1};
  }
  bool bad = false;
  for (int p = lane; p < parts; p += 32) bad |= broken[row * parts + p] != 0;
  bad = __ballot_sync(FULL, bad) != 0;
  for (int i = 0; i < k; i++) {
    float v = -INFINITY;
    int id = -1;
#pragma unroll
    for (int l = 0; l < TOPK_LISTS_PER_LANE; l++)
      if (argmax_better(at[l].v, at[l].id, v, id)) { v = at[l].v; id = at[l].id; }
    const int mineId = id;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(FULL, v, o);
      const int oi = __shfl_xor_sync(FULL, id, o);
      if (argmax_better(ov, oi, v, id)) { v = ov; id = oi; }
    }
    // Indices are unique across lists, so exactly one lane holds the winner.
#pragma unroll
    for (int l = 0; l < TOPK_LISTS_PER_LANE; l++) {
      if (mineId == id && at[l].id == id) {
        const int list = lane + 32 * l;
        at[l] = ++head[l] < k ? rowLists[list * k + head[l]] : TopEntry{-INFINITY, -1};
      }
    }
    if (lane == 0) {
      outIds[row * k + i] = bad && i == 0 ? -1 : id;
      outValues[row * k + i] = v;
    }
  }
}

// Writes each row's k best indices to hostOut[0, rows*k) and their values (as
// float bits) to hostOut[rows*k, 2*rows*k); a row holding a NaN or +inf gets
// index -1 first. Synchronizes.
PSI_EXPORT int psi_cuda_topk_rows(const float *x, int64_t rows, int64_t width, int k, int32_t *hostOut) {
  if (k < 1 || k > TOPK_MAX || k > width) {
    psi_set_error("top-k on the device: k = %d must be in [1, %d] and at most the row width %lld", k, TOPK_MAX, (long long)width);
    return -1;
  }
  const int parts = (int)std::min<int64_t>(TOPK_PARTS, ceil_div(width, TOPK_PART_MIN));
  TopEntry *lists = (TopEntry *)psi_scratch(20, rows * parts * TOPK_WARPS * k * sizeof(TopEntry));
  int *broken = (int *)psi_scratch(21, rows * parts * sizeof(int));
  int *out = (int *)psi_scratch(22, 2 * rows * k * sizeof(int));
  if (!lists || !broken || !out) return -1;
  PSI_LAUNCH(dim3((unsigned)parts, (unsigned)rows), TOPK_WARPS * 32, topk_parts)(x, width, k, lists, broken);
  if (PSI_LAUNCHED("topk_parts")) return -1;
  PSI_LAUNCH((unsigned)rows, 32, topk_merge)(lists, broken, parts, k, out, (float *)(out + rows * k));
  if (PSI_LAUNCHED("topk_merge")) return -1;
  if (psi_flush_recording()) return -1;
  if (psi_failed(cudaMemcpyAsync(hostOut, out, 2 * rows * k * sizeof(int), cudaMemcpyDeviceToHost, psi_stream()), "top-k download")) return -1;
  return psi_failed(cudaStreamSynchronize(psi_stream()), "top-k (sync): an earlier kernel failed") ? -1 : 0;
}
