// gpt-oss's mixture of experts on the device, as the CPU's cpu-moe.ts runs it
// (llama.cpp's build_moe_ffn: router logits + bias, top-k over the raw logits
// with ties to the lower id, softmax over the k chosen, clamped SwiGLU, each
// token's k results scaled and summed in selection order).
// The (token, slot) pairs are grouped by expert on the device and each chosen
// expert's weights are read once for all its rows. Top-k takes a warp per
// token. Up to MOE_DEVICE_TOKENS tokens (decode, batched decode; matmul.cuh)
// routing and grouping take one block (with a float router, the last block of
// the router's product: one launch); more tokens (prefill) are routed in
// parallel and grouped by one block. Gate, up and the SwiGLU are one pass
// either way: matrix-vector kernels for small groups, the tensor cores
// (mmq.cuh's gate+up form) for large ones. Float experts over many tokens
// send the ids to the host, and each expert's group is one cuBLAS product.
#include <vector>
#include "common.cuh"
#include "matmul.cuh"
#include "mmv.cuh"

int psi_gather(const float *src, const int *deviceIndex, int divisor, int64_t count, int64_t width, float *out);

static const int MAX_EXPERTS = 512;

// Top-k of one token's router logits by one warp (the whole warp calls it):
// k rounds, each taking the highest logit not yet taken, ties to the lower id
// (the order the CPU's sorted insertion gives), then the softmax over the k
// chosen in that order. Lane j of the first k writes ids[j] and weights[j].
// Each lane holds experts lane, lane + 32, ...; a NaN logit ranks as -inf.
__device__ __forceinline__ void topk_softmax(const float *l, int experts, int k, int lane, int *ids, float *weights) {
  const int PER_LANE = MAX_EXPERTS / 32;
  float v[PER_LANE];
#pragma unroll
  for (int j = 0; j < PER_LANE; j++) {
    const int e = lane + 32 * j;
    const float x = e < experts ? l[e] : -INFINITY;
    v[j] = x != x ? -INFINITY : x;
  }
  uint32_t taken = 0;  // bit j: expert lane + 32 j is chosen (or past the experts)
#pragma unroll
  for (int j = 0; j < PER_LANE; j++) if (lane + 32 * j >= experts) taken |= 1u << j;
  // Lane j keeps the j-th pick (registers, not an indexed array in local memory).
  float score = -INFINITY;
  int mine = 0;
  for (int round = 0; round < k; round++) {
    float bv = -INFINITY;
    int bid = -1;
#pragma unroll
    for (int j = 0; j < PER_LANE; j++) {
      const int e = lane + 32 * j;
      if (!(taken >> j & 1) && argmax_better(v[j], e, bv, bid)) { bv = v[j]; bid = e; }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oid = __shfl_xor_sync(0xffffffffu, bid, o);
      if (argmax_better(ov, oid, bv, bid)) { bv = ov; bid = oid; }
    }
    if (bid % 32 == lane) taken |= 1u << (bid / 32);
    if (round == lane) { score = bv; mine = bid; }
  }
  // The softmax over the picks, summed in pick order.
  const float max = __shfl_sync(0xffffffffu, score, 0);  // every lane shuffles, whatever it then keeps
  const float chosen = lane < k ? expf(score - max) : 0.f;
  float sum = 0.f;
  for (int j = 0; j < k; j++) sum += __shfl_sync(0xffffffffu, chosen, j);
  if (lane < k) { ids[lane] = mine; weights[lane] = chosen / sum; }
}

// One warp per token.
__global__ void route_topk(const float *logits, int experts, int k, int64_t tokens, int *ids, float *weights) {
  psi_grid_wait();
  const int64_t t = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
  if (t < tokens) topk_softmax(logits + t * experts, experts, k, threadIdx.x % 32, ids + t * k, weights + t * k);
}

// Every token's top-k and weights, 8 tokens (warps) a block.
static int launch_route_topk(const float *logits, int experts, int k, int64_t tokens, int *ids, float *weights) {
  PSI_LAUNCH((unsigned)ceil_div(tokens, 8), 256, route_topk)(logits, experts, k, tokens, ids, weights);
  return PSI_LAUNCHED("route_topk");
}

// Counts each expert's slots into next[] and writes offsets (experts + 1, an
// exclusive prefix sum): offsets[e] .. offsets[e+1]-1 is expert e's group in
// sorted[]; active (experts): the experts with slots in id order, then -1s;
// and tiles (group_tiles): their 64-row tiles, then -1s (RowMap). On return
// (the whole block calls it) next[e] = offsets[e], the first free place of e's group.
__device__ __forceinline__ void count_slots(const int *ids, int slots, int experts, int *next, int *offsets, int *active, int *tiles) {
  for (int e = threadIdx.x; e < experts; e += blockDim.x) next[e] = 0;
  __syncthreads();
  for (int s = threadIdx.x; s < slots; s += blockDim.x) atomicAdd(&next[ids[s]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int running = 0, used = 0, n = 0;
    for (int e = 0; e < experts; e++) {
      const int count = next[e];
      offsets[e] = next[e] = running;
      running += count;
      if (count > 0) active[used++] = e;
      for (int y = 0; y * GROUP_TILE_ROWS < count; y++) tiles[n++] = e + (y << 10);
    }
    offsets[experts] = running;
    while (used < experts) active[used++] = -1;
    while (n < group_tiles(slots, experts)) tiles[n++] = -1;
  }
  __syncthreads();
}

// Routing and grouping by one block: each token's top-k and weights (a warp
// per token), then a stable counting sort of the slots by expert into
// sorted[], which holds slot numbers (count_slots' offsets), from a shared
// copy of the ids. tokens <= MOE_DEVICE_TOKENS (at most ROUTE_GROUP_SLOTS slots).
static const int ROUTE_GROUP_SLOTS = 1024;
__device__ __forceinline__ void route_and_group(const float *logits, int experts, int k, int tokens, int *ids, float *weights, int *offsets,
                                                int *active, int *tiles, int *sorted) {
  __shared__ int next[MAX_EXPERTS], slotIds[ROUTE_GROUP_SLOTS];
  const int warps = blockDim.x / 32, lane = threadIdx.x % 32;
  for (int t = threadIdx.x / 32; t < tokens; t += warps) {
    topk_softmax(logits + (int64_t)t * experts, experts, k, lane, ids + t * k, weights + t * k);
    if (lane < k) slotIds[t * k + lane] = ids[t * k + lane];
  }
  const int slots = tokens * k;
  count_slots(slotIds, slots, experts, next, offsets, active, tiles);
  if (threadIdx.x == 0) for (int s = 0; s < slots; s++) sorted[next[slotIds[s]]++] = s;
}

__global__ void route_group(const float *logits, int experts, int k, int tokens, int *ids, float *weights, int *offsets, int *active, int *tiles,
                            int *sorted) {
  psi_grid_wait();
  route_and_group(logits, experts, k, tokens, ids, weights, offsets, active, tiles, sorted);
}

// The router's float product and the routing in one launch (decode, batched decode):
// the blocks compute the logits as mmv<F32> does (mmv.cuh: each row's sums in a lone
// pass's order, so the same bits), and the block that finishes last routes and groups
// them (route_and_group), from a copy of all the logits in its shared memory.
static const int ROUTE_FUSED_LOGITS = 2048;
__device__ unsigned route_blocks_done = 0;  // blocks of the running launch that have written their logits
template <int R>
__global__ void router_route(MatDesc router, const float *x, int64_t tokens, RowMap map, const float *bias, float *logits, int k,
                             int *ids, float *weights, int *offsets, int *active, int *tiles, int *sorted) {
  psi_grid_wait();
  __shared__ float staged[ROUTE_FUSED_LOGITS];
  __shared__ bool last;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, experts = (int)router.rows;
  const int64_t n0 = blockIdx.x * (int64_t)MMV_WARPS + warp;
  if (n0 < router.rows) mmv_outputs<T_F32, R, 1>(router, n0, lane, nullptr, nullptr, x, tokens, map, bias, 0, logits);
  // Each block's logits are visible device-wide before it counts itself done.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(&route_blocks_done, 1u) == gridDim.x * gridDim.y - 1;
  __syncthreads();
  if (!last) return;
  if (threadIdx.x == 0) route_blocks_done = 0;  // ready for the next launch
  __threadfence();
  for (int i = threadIdx.x; i < tokens * experts; i += blockDim.x) staged[i] = __ldcg(logits + i);
  __syncthreads();
  route_and_group(staged, experts, k, (int)tokens, ids, weights, offsets, active, tiles, sorted);
}

// router_route over `tokens` rows (tokens * experts <= ROUTE_FUSED_LOGITS, a float router):
// the grid of the router's matrix-vector launch, one warp per expert row.
static int launch_router_route(const MatDesc &router, const float *x, int64_t tokens, const float *bias, float *logits, int k,
                               int *ids, float *weights, int *offsets, int *active, int *tiles, int *sorted) {
  return with_rows(tokens, [&](auto r) {
    constexpr int R = decltype(r)::value;
    RowMap map;
    const int64_t across = ceil_div(router.rows, MMV_WARPS);
    const int64_t down = dense_row_blocks(across, tokens, R, map);
    PSI_LAUNCH(dim3((unsigned)across, (unsigned)down), 32 * MMV_WARPS, router_route<R>)(router, x, tokens, map, bias, logits, k, ids, weights,
                                                                                        offsets, active, tiles, sorted);
    return PSI_LAUNCHED("router_route");
  });
}

// Slots grouped by expert, any count, in one block: offsets as route_group's;
// within an expert's group the slots' order is arbitrary (each product row
// depends only on its own slot).
__global__ void group_slots(const int *ids, int slots, int experts, int *offsets, int *active, int *tiles, int *sorted) {
  psi_grid_wait();
  __shared__ int next[MAX_EXPERTS];
  count_slots(ids, slots, experts, next, offsets, active, tiles);
  for (int s = threadIdx.x; s < slots; s += blockDim.x) sorted[atomicAdd(&next[ids[s]], 1)] = s;
}

__global__ void swiglu_oai_kernel(const float *gate, const float *up, float *out, int64_t n, float alpha, float limit) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) out[i] = swiglu_oai_value(gate[i], up[i], alpha, limit);
}

// Each token's k expert rows, weighted and summed in selection order, plus the residual when given.
__global__ void weighted_sum(const float *expertOut, const float *weights, int k, int64_t tokens, int64_t width,
                             const float *residual, float *out) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= tokens * width) return;
  const float v = expert_mix(expertOut, weights, k, i / width, width, i % width);
  out[i] = residual ? residual[i] + v : v;
}

__global__ void scatter_rows(const float *src, const int *index, int64_t count, int64_t width, float *dst) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < count * width) dst[(int64_t)index[i / width] * width + i % width] = src[i];
}

static MatDesc slab_of(const MatDesc &w, int e) {
  MatDesc s = w;
  s.data = w.data + e * w.slabStride;
  return s;
}

static int swiglu_oai(const float *gate, const float *up, float *out, int64_t n, float alpha, float limit) {
  PSI_LAUNCH((unsigned)ceil_div(n, 256), 256, swiglu_oai_kernel)(gate, up, out, n, alpha, limit);
  return PSI_LAUNCHED("swiglu_oai");
}

// x (tokens x d) -> out (tokens x d). gate/up are [d -> ff] x experts, down [ff -> d] x experts.
// `reuse`: x's int8 rows are already in the products' scratch (its RMSNorm wrote them).
// `residual` (tokens x d, or null) is added to the result in the same pass. With `normed`
// (and a residual), that sum is also RMS-normalized (scaled by normWeight when given) into
// `normed` in the same launch, with its int8 rows for the products after it when d allows:
// the next layer's attention norm, one launch instead of the weighted sum and a norm.
PSI_EXPORT int psi_cuda_moe(const float *x, int64_t tokens, const MatDesc *router, const float *routerBias,
                            const MatDesc *gate, const float *gateBias, const MatDesc *up, const float *upBias,
                            const MatDesc *down, const float *downBias, int k, float alpha, float limit, const float *residual,
                            float *out, int reuse, const float *normWeight, float eps, float *normed) {
  if (normed && !residual) { psi_set_error("moe: normalizing the sum needs a residual"); return -1; }
  const int experts = (int)router->rows;
  const int64_t d = router->cols, ff = gate->rows, slots = tokens * k;
  if (experts > MAX_EXPERTS || k < 1 || k > 16 || k > experts) { psi_set_error("moe: %d of %d experts is not supported (k <= 16, experts <= %d)", k, experts, MAX_EXPERTS); return -1; }
  float *logits = (float *)psi_scratch(4, tokens * experts * sizeof(float));
  int *ids = (int *)psi_scratch(5, slots * sizeof(int));
  float *weights = (float *)psi_scratch(6, slots * sizeof(float));
  float *expertOut = (float *)psi_scratch(7, slots * d * sizeof(float));
  float *hidden = (float *)psi_scratch(10, slots * ff * sizeof(float));
  if (!logits || !ids || !weights || !expertOut || !hidden) return -1;
  const bool few = tokens <= MOE_DEVICE_TOKENS;
  // A float router over few tokens computes its logits in the launch that routes them.
  const bool routeFused = few && slots <= ROUTE_GROUP_SLOTS && router->type == T_F32 && tokens * experts <= ROUTE_FUSED_LOGITS;
  // The router takes the CPU's arithmetic at any token count: a top-k near-tie
  // decided by fp16 rounding would send a token to other experts.
  RowMap exact;
  exact.exact = true;
  exact.quantized = reuse != 0;
  if (!routeFused && psi_matmul(*router, x, tokens, exact, routerBias, 0, logits)) return -1;
  const bool xQuantized = reuse != 0 || psi_matmul_quantizes(*router);

  const bool quantizedExperts = psi_matmul_quantizes(*gate) && psi_matmul_quantizes(*up) && psi_matmul_quantizes(*down);
  if (few || quantizedExperts) {
    int *offsets = (int *)psi_scratch(12, (2 * experts + 1 + group_tiles(slots, experts)) * sizeof(int));
    int *sorted = (int *)psi_scratch(13, slots * sizeof(int));
    if (!offsets || !sorted) return -1;
    int *active = offsets + experts + 1, *tiles = active + experts;
    if (routeFused) {
      if (launch_router_route(*router, x, tokens, routerBias, logits, k, ids, weights, offsets, active, tiles, sorted)) return -1;
    } else if (few && slots <= ROUTE_GROUP_SLOTS) {
      PSI_LAUNCH(1, 256, route_group)(logits, experts, k, (int)tokens, ids, weights, offsets, active, tiles, sorted);
      if (PSI_LAUNCHED("route_group")) return -1;
    } else {
      if (launch_route_topk(logits, experts, k, tokens, ids, weights)) return -1;
      PSI_LAUNCH(1, 1024, group_slots)(ids, (int)slots, experts, offsets, active, tiles, sorted);
      if (PSI_LAUNCHED("group_slots")) return -1;
    }
    RowMap byToken;
    byToken.offsets = offsets; byToken.active = active; byToken.tiles = tiles; byToken.sorted = sorted; byToken.experts = experts; byToken.inputDiv = k;
    // A token chooses an expert at most once.
    byToken.maxGroup = (int)tokens;
    // x's int8 rows are in the scratch when its norm or the router's product put them there.
    byToken.quantized = xQuantized && psi_matmul_quantizes(*gate);
    RowMap bySlot = byToken;
    bySlot.inputDiv = 1;
    bySlot.quantized = false;
    // One pass for gate, up and the SwiGLU: matrix-vector up to GEMM_MIN_ROWS per expert, else mmq's gate+up form.
    if (gate->type == up->type) {
      if (psi_matmul_glu(*gate, *up, x, slots, byToken, gateBias, upBias, ff, alpha, limit, hidden)) return -1;
    } else {
      float *g = (float *)psi_scratch(8, slots * ff * sizeof(float));
      float *u = (float *)psi_scratch(9, slots * ff * sizeof(float));
      if (!g || !u) return -1;
      if (psi_matmul(*gate, x, slots, byToken, gateBias, ff, g)) return -1;
      byToken.quantized = psi_matmul_quantizes(*gate) && psi_matmul_quantizes(*up);
      if (psi_matmul(*up, x, slots, byToken, upBias, ff, u)) return -1;
      if (swiglu_oai(g, u, hidden, slots * ff, alpha, limit)) return -1;
    }
    if (psi_matmul(*down, hidden, slots, bySlot, downBias, d, expertOut)) return -1;
  } else {
    if (launch_route_topk(logits, experts, k, tokens, ids, weights)) return -1;
    std::vector<int> hostIds(slots);
    if (psi_flush_recording()) return -1;
    if (psi_failed(cudaMemcpyAsync(hostIds.data(), ids, slots * sizeof(int), cudaMemcpyDeviceToHost, psi_stream()), "moe ids") ||
        psi_failed(cudaStreamSynchronize(psi_stream()), "moe ids (sync)")) return -1;
    std::vector<int> count(experts, 0), start(experts + 1, 0), order(slots);
    for (int id : hostIds) count[id]++;
    for (int e = 0; e < experts; e++) start[e + 1] = start[e] + count[e];
    std::vector<int> at(start.begin(), start.end() - 1);
    for (int64_t s = 0; s < slots; s++) order[at[hostIds[s]]++] = (int)s;
    const int *deviceOrder = (const int *)psi_stage(order.data(), slots * sizeof(int));
    float *xg = (float *)psi_scratch(11, slots * d * sizeof(float));
    float *g = (float *)psi_scratch(8, slots * ff * sizeof(float));
    float *u = (float *)psi_scratch(9, slots * ff * sizeof(float));
    if (!deviceOrder || !xg || !g || !u) return -1;
    // Token rows in expert order; each expert's group then multiplies as a dense batch.
    if (psi_gather(x, deviceOrder, k, slots, d, xg)) return -1;
    for (int e = 0; e < experts; e++) {
      const int64_t c = count[e], o = start[e];
      if (c == 0) continue;
      if (psi_matmul(slab_of(*gate, e), xg + o * d, c, RowMap{}, gateBias ? gateBias + e * ff : nullptr, 0, g + o * ff)) return -1;
      if (psi_matmul(slab_of(*up, e), xg + o * d, c, RowMap{}, upBias ? upBias + e * ff : nullptr, 0, u + o * ff)) return -1;
    }
    if (swiglu_oai(g, u, hidden, slots * ff, alpha, limit)) return -1;
    // Down products land in expert order in xg, then go back to their (token, slot) rows.
    for (int e = 0; e < experts; e++) {
      const int64_t c = count[e], o = start[e];
      if (c == 0) continue;
      if (psi_matmul(slab_of(*down, e), hidden + o * ff, c, RowMap{}, downBias ? downBias + e * d : nullptr, 0, xg + o * d)) return -1;
    }
    PSI_LAUNCH((unsigned)ceil_div(slots * d, 256), 256, scatter_rows)(xg, deviceOrder, slots, d, expertOut);
    if (PSI_LAUNCHED("scatter_rows")) return -1;
  }
  if (normed) return psi_rms_norm(residual, expertOut, weights, k, out, normWeight, eps, tokens, d, d, normed, d % 32 == 0);
  PSI_LAUNCH((unsigned)ceil_div(tokens * d, 256), 256, weighted_sum)(expertOut, weights, k, tokens, d, residual, out);
  return PSI_LAUNCHED("weighted_sum");
}
