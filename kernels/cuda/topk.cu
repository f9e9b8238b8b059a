// Per row of logits: its k best values with their indices (k <= TOPK_MAX), best
// first, ties to the lower index: argmax_better's order, which is the host
// sampler's loadTopK order, and the row's log Z (logprobs). A sampled decode
// step then reads back k pairs per sequence instead of its whole row (~800 KB
// for a 201k vocabulary) and the host samples from those, as it would have
// from the row (Sampler.deviceTopK says when that holds).
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

// A part's summary beside its lists: whether it holds a NaN or +inf, and its
// values' log-sum-exp as (max, sum of exp(value - max)), for the row's log Z
// (the logprobs a request may ask for).
struct PartInfo {
  double sum;
  float max;
  int broken;
};

// (m, s) += exp(v): a running max and sum rescaled when the max rises (-inf adds nothing).
__device__ __forceinline__ void lse_add(float &m, float &s, float v) {
  if (v > m) {
    s = s * expf(m - v) + 1.f;
    m = v;
  } else if (v > -INFINITY) {
    s += expf(v - m);
  }
}

// Two (max, sum) pairs as one; a pair that saw only -inf has sum 0.
template <class S>
__device__ __forceinline__ void lse_merge(float &m, S &s, float om, S os) {
  const float M = fmaxf(m, om);
  s = M == -INFINITY ? (S)0 : s * (S)expf(m - M) + os * (S)expf(om - M);
  m = M;
}

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
// lists, and the part's PartInfo to info.
__global__ void topk_parts(const float *x, int64_t width, int k, TopEntry *lists, PartInfo *info) {
  psi_grid_wait();
  __shared__ TopEntry list[TOPK_WARPS][TOPK_MAX];
  __shared__ float warpMax[TOPK_WARPS], warpSum[TOPK_WARPS];
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
  float m = -INFINITY, sum = 0.f;
  for (int64_t base = first + warp * 32; base < end; base += TOPK_WARPS * 32) {
    const int64_t j = base + lane;
    const float v = j < end ? row[j] : -INFINITY;
    bad |= j < end && !(v < INFINITY);
    lse_add(m, sum, v);
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
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) lse_merge(m, sum, __shfl_xor_sync(FULL, m, o), __shfl_xor_sync(FULL, sum, o));
  if (lane == 0) {
    warpMax[warp] = m;
    warpSum[warp] = sum;
  }
  TopEntry *out = lists + ((int64_t)(blockIdx.y * gridDim.x + blockIdx.x) * TOPK_WARPS + warp) * k;
  for (int slot = lane; slot < k; slot += 32) out[slot] = slot < n ? mine[slot] : TopEntry{-INFINITY, -1};
  __syncthreads();
  if (threadIdx.x == 0) {
    float pm = -INFINITY;
    double ps = 0;
    for (int w = 0; w < TOPK_WARPS; w++) lse_merge(pm, ps, warpMax[w], (double)warpSum[w]);
    info[blockIdx.y * gridDim.x + blockIdx.x] = PartInfo{ps, pm, anyBad};
  }
}

// One warp per row (blockIdx.x) merges its parts' sorted lists: k times, the
// best head of all lists (each lane watches TOPK_LISTS_PER_LANE of them) is
// written out and its list moves on. A broken row gets id -1 first. The parts'
// log-sum-exps give the row's log Z = log(sum of exp(value)).
__global__ void topk_merge(const TopEntry *lists, const PartInfo *info, int parts, int k, int *outIds, float *outValues, double *outLogZ) {
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
  float m = -INFINITY;
  double sum = 0;
  for (int p = lane; p < parts; p += 32) {
    const PartInfo part = info[row * parts + p];
    bad |= part.broken != 0;
    lse_merge(m, sum, part.max, part.sum);
  }
  bad = __ballot_sync(FULL, bad) != 0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) lse_merge(m, sum, __shfl_xor_sync(FULL, m, o), __shfl_xor_sync(FULL, sum, o));
  if (lane == 0) outLogZ[row] = (double)m + log(sum);
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

// Writes each row's k best indices to hostOut[0, rows*k), their values (as
// float bits) to hostOut[rows*k, 2*rows*k) and each row's log Z (as double
// bits) after them; a row holding a NaN or +inf gets index -1 first. Synchronizes.
PSI_EXPORT int psi_cuda_topk_rows(const float *x, int64_t rows, int64_t width, int k, int32_t *hostOut) {
  if (k < 1 || k > TOPK_MAX || k > width) {
    psi_set_error("top-k on the device: k = %d must be in [1, %d] and at most the row width %lld", k, TOPK_MAX, (long long)width);
    return -1;
  }
  const int parts = (int)std::min<int64_t>(TOPK_PARTS, ceil_div(width, TOPK_PART_MIN));
  TopEntry *lists = (TopEntry *)psi_scratch(20, rows * parts * TOPK_WARPS * k * sizeof(TopEntry));
  PartInfo *info = (PartInfo *)psi_scratch(21, rows * parts * sizeof(PartInfo));
  const size_t bytes = 2 * rows * k * sizeof(int) + rows * sizeof(double);  // 8-byte aligned: 2 * rows * k ints
  int *out = (int *)psi_scratch(22, bytes);
  if (!lists || !info || !out) return -1;
  PSI_LAUNCH(dim3((unsigned)parts, (unsigned)rows), TOPK_WARPS * 32, topk_parts)(x, width, k, lists, info);
  if (PSI_LAUNCHED("topk_parts")) return -1;
  PSI_LAUNCH((unsigned)rows, 32, topk_merge)(lists, info, parts, k, out, (float *)(out + rows * k), (double *)(out + 2 * rows * k));
  if (PSI_LAUNCHED("topk_merge")) return -1;
  if (psi_flush_recording()) return -1;
  if (psi_failed(cudaMemcpyAsync(hostOut, out, bytes, cudaMemcpyDeviceToHost, psi_stream()), "top-k download")) return -1;
  return psi_failed(cudaStreamSynchronize(psi_stream()), "top-k (sync): an earlier kernel failed") ? -1 : 0;
}
