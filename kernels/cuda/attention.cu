// KV cache stores and attention for a batch of sequences (segments), each
// with its own F16 K and V caches whose slot is the position. Causal, with
// GQA, an optional sliding window and optional per-head sinks (gpt-oss).
//
// One block of ATT_WARPS warps per (query row, head, key split). Keys are
// taken 32 at a time, one per lane, each lane computing a whole q.k; the warp
// keeps an online softmax (running max and sum) and accumulates V with lanes
// over the value dimensions; the warps then merge their partial results.
// Few query rows over many keys (long-context decode) split the keys among
// several blocks (flash-decoding): each writes its max, sum and weighted V,
// and a second kernel merges the splits and the sink. A batch with a segment
// of FLASH_MIN_ROWS or more rows (a prompt) goes to flash.cuh instead.
#include <algorithm>
#include "attention.cuh"
#include "flash.cuh"
#include "rope.cuh"

// Rows of k and v (float) into their segments' caches at slot pos0 + (row - rowStart).
__global__ void store_kv(const float *k, const float *v, Segments s, int64_t kWidth, int64_t vWidth) {
  psi_grid_wait();
  const int row = blockIdx.x;
  const int seg = segment_of(s, row);
  const int64_t slot = s.pos0[seg] + (row - s.rowStart[seg]);
  for (int64_t i = threadIdx.x; i < kWidth; i += blockDim.x) s.k[seg][slot * kWidth + i] = __float2half_rn(k[row * kWidth + i]);
  for (int64_t i = threadIdx.x; i < vWidth; i += blockDim.x) s.v[seg][slot * vWidth + i] = __float2half_rn(v[row * vWidth + i]);
}

// Rope and the KV store in one launch, a block per row: the row's angles at its position in its
// segment, q rotated into qOut, k rotated straight into the segment's K cache and v copied into
// its V cache, as halves (the values store_kv would store after a separate rope launch).
__global__ void rope_store_kv(const float *q, float *qOut, int64_t heads, const float *k, const float *v, Segments s, int64_t kvHeads,
                              int64_t headDim, int64_t headDimV, RopeArgs p, const float *factors, RopeRamp ramp) {
  psi_grid_wait();
  __shared__ float cs[ROPE_MAX_PAIRS], sn[ROPE_MAX_PAIRS];
  const int row = blockIdx.x;
  const int seg = segment_of(s, row);
  const int64_t slot = s.pos0[seg] + (row - s.rowStart[seg]);
  rope_angles((int)slot, p, factors, ramp, cs, sn);
  __syncthreads();
  rope_heads(q + row * heads * headDim, qOut + row * heads * headDim, heads, headDim, p, cs, sn);
  rope_heads(k + row * kvHeads * headDim, s.k[seg] + slot * kvHeads * headDim, kvHeads, headDim, p, cs, sn);
  const int64_t vWidth = kvHeads * headDimV;
  for (int64_t i = threadIdx.x; i < vWidth; i += blockDim.x) s.v[seg][slot * vWidth + i] = __float2half_rn(v[row * vWidth + i]);
}

// Keys a split covers: the row's key range cut into `splits` runs of whole 32-key chunks.
__device__ __forceinline__ void split_range(int first, int last, int split, int splits, int &begin, int &end) {
  const int chunks = (last - first + 32) / 32, per = (chunks + splits - 1) / splits;
  begin = first + split * per * 32;
  end = min(last, begin + per * 32 - 1);
}

// One head's output values value(d), d < headDimV, to out[o + d] by the block; with
// a.xq, also as the int8 rows the output projection reads (headDimV a multiple of 32:
// each warp takes whole 32-value blocks, quantize_warp32).
template <class F>
__device__ __forceinline__ void store_head(const AttendArgs &a, int64_t o, float *out, F &&value) {
  if (a.xq) {
    const int lane = threadIdx.x % 32;
    for (int d0 = threadIdx.x - lane; d0 < a.headDimV; d0 += blockDim.x) {
      const float v = value(d0 + lane);
      out[o + d0 + lane] = v;
      quantize_warp32(v, lane, a.xq + o + d0, a.xd + (o + d0) / 32);
    }
  } else {
    for (int d = threadIdx.x; d < a.headDimV; d += blockDim.x) out[o + d] = value(d);
  }
}

__global__ void attend(const float *q, Segments s, AttendArgs a, const float *sinks, float *out) {
  psi_grid_wait();
  __shared__ float qs[MAX_HEAD_DIM];
  __shared__ float wm[ATT_WARPS], wl[ATT_WARPS];
  __shared__ float wacc[ATT_WARPS][MAX_HEAD_DIM];
  const int row = blockIdx.x, h = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int seg = segment_of(s, row);
  const int pos = s.pos0[seg] + (row - s.rowStart[seg]);
  const int kvh = h / (a.heads / a.kvHeads);
  const int64_t kWidth = (int64_t)a.kvHeads * a.headDim, vWidth = (int64_t)a.kvHeads * a.headDimV;
  const __half *K = s.k[seg] + kvh * a.headDim, *V = s.v[seg] + kvh * a.headDimV;
  for (int i = threadIdx.x; i < a.headDim; i += blockDim.x) qs[i] = q[((int64_t)row * a.heads + h) * a.headDim + i];
  __syncthreads();

  int first, last;
  split_range(a.window > 0 ? max(0, pos - a.window + 1) : 0, pos, blockIdx.z, a.splits, first, last);
  const int perLane = (a.headDimV + 31) / 32;
  float acc[MAX_HEAD_DIM / 32];
#pragma unroll
  for (int t = 0; t < MAX_HEAD_DIM / 32; t++) acc[t] = 0.f;
  float m = -INFINITY, l = 0.f;
  for (int chunk = first + warp * 32; chunk <= last; chunk += ATT_WARPS * 32) {
    const int key = chunk + lane;
    float score = -INFINITY;
    if (key <= last) {
      // The lane's key row, 16 bytes a load where the rows allow it (several loads in
      // flight, not one 4-byte load at a time); the sum runs in the same order either way.
      const __half2 *kr = reinterpret_cast<const __half2 *>(K + key * kWidth);
      float dot = 0.f;
      int i = 0;
      if (a.headDim % 8 == 0 && kWidth % 8 == 0) {
#pragma unroll 4
        for (; i < a.headDim / 2; i += 4) {
          const int4 raw = *reinterpret_cast<const int4 *>(kr + i);
          const int words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
          for (int j = 0; j < 4; j++) {
            const float2 kv = __half22float2(*reinterpret_cast<const __half2 *>(&words[j]));
            dot += qs[2 * (i + j)] * kv.x + qs[2 * (i + j) + 1] * kv.y;
          }
        }
      }
      for (; i < a.headDim / 2; i++) {
        const float2 kv = __half22float2(kr[i]);
        dot += qs[2 * i] * kv.x + qs[2 * i + 1] * kv.y;
      }
      score = dot * a.scale;
    }
    const float mNew = fmaxf(m, warp_max(score));
    const float p = key <= last ? expf(score - mNew) : 0.f;
    const float correction = expf(m - mNew);
    l = l * correction + warp_sum(p);
#pragma unroll
    for (int t = 0; t < MAX_HEAD_DIM / 32; t++) acc[t] *= correction;
    const int keys = min(32, last - chunk + 1);
    // Unrolled so several keys' V rows are loaded before the first is used.
#pragma unroll 8
    for (int j = 0; j < keys; j++) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
      const __half *vr = V + (int64_t)(chunk + j) * vWidth;
#pragma unroll
      for (int t = 0; t < MAX_HEAD_DIM / 32; t++) {
        const int d = lane + 32 * t;
        if (t < perLane && d < a.headDimV) acc[t] += pj * __half2float(vr[d]);
      }
    }
    m = mNew;
  }
  if (lane == 0) { wm[warp] = m; wl[warp] = l; }
#pragma unroll
  for (int t = 0; t < MAX_HEAD_DIM / 32; t++) {
    const int d = lane + 32 * t;
    if (d < a.headDimV) wacc[warp][d] = acc[t];
  }
  __syncthreads();
  float M = -INFINITY;
  for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, wm[w]);
  float L = 0.f;
  for (int w = 0; w < ATT_WARPS; w++) L += wm[w] == -INFINITY ? 0.f : wl[w] * expf(wm[w] - M);
  if (a.splits > 1) {
    const int64_t part = ((int64_t)row * a.heads + h) * a.splits + blockIdx.z;
    if (threadIdx.x == 0) { a.partMax[part] = M; a.partSum[part] = L; }
    for (int d = threadIdx.x; d < a.headDimV; d += blockDim.x) {
      float v = 0.f;
      for (int w = 0; w < ATT_WARPS; w++) v += wm[w] == -INFINITY ? 0.f : wacc[w][d] * expf(wm[w] - M);
      a.partAcc[part * a.headDimV + d] = v;
    }
    return;
  }
  if (sinks) L += expf(sinks[h] - M);
  store_head(a, ((int64_t)row * a.heads + h) * a.headDimV, out, [&](int d) {
    float v = 0.f;
    for (int w = 0; w < ATT_WARPS; w++) v += wm[w] == -INFINITY ? 0.f : wacc[w][d] * expf(wm[w] - M);
    return v / L;
  });
}

// Merges the key splits of each (row, head) (blockIdx.x, blockIdx.y) and the sink.
__global__ void merge_splits(AttendArgs a, const float *sinks, float *out) {
  psi_grid_wait();
  const int row = blockIdx.x, h = blockIdx.y;
  const int64_t base = ((int64_t)row * a.heads + h) * a.splits;
  float M = -INFINITY;
  for (int i = 0; i < a.splits; i++) M = fmaxf(M, a.partMax[base + i]);
  float L = 0.f;
  for (int i = 0; i < a.splits; i++) L += a.partMax[base + i] == -INFINITY ? 0.f : a.partSum[base + i] * expf(a.partMax[base + i] - M);
  if (sinks) L += expf(sinks[h] - M);
  store_head(a, ((int64_t)row * a.heads + h) * a.headDimV, out, [&](int d) {
    float v = 0.f;
    for (int i = 0; i < a.splits; i++) v += a.partMax[base + i] == -INFINITY ? 0.f : a.partAcc[(base + i) * a.headDimV + d] * expf(a.partMax[base + i] - M);
    return v / L;
  });
}

// Key splits for a launch of `rows` x `heads` blocks whose longest key range is `keys`:
// enough blocks to fill the GPU (about 2 per multiprocessor), at least 256 keys per split.
static int choose_splits(int64_t rows, int heads, int keys) {
  const int64_t blocks = rows * heads, target = 2 * 132;
  if (blocks >= target || keys < 512) return 1;
  return (int)std::min<int64_t>(std::min<int64_t>(MAX_SPLITS, ceil_div(target, blocks)), keys / 256);
}

// Segments as TypeScript passes them: count, then per segment (rowStart, rows, pos0) as int64
// and the K and V cache addresses.
struct HostSegment { int64_t rowStart, rows, pos0; __half *k, *v; };

// k and v rows (may be null to skip storing) go into the caches, then q attends. With `rope`
// (and k, v), q and k are rotated first, in the launch that stores k and v: q into qRotated
// (rows x heads x headDim), which attention then reads.
PSI_EXPORT int psi_cuda_attend(const float *q, const float *k, const float *v, const HostSegment *segs, int count,
                               int heads, int kvHeads, int headDim, int headDimV, int window, float scale, const float *sinks, float *out,
                               int quantize, const RopeArgs *rope, const float *ropeFactors, float *qRotated) {
  if (rope && (!k || !v || !qRotated)) { psi_set_error("attention: rope in the store launch needs k, v and a buffer for the rotated q"); return -1; }
  if (rope && rope_check(*rope, headDim)) return -1;
  const RopeRamp ramp = rope ? rope_ramp(*rope) : RopeRamp{};
  const float *queries = rope ? qRotated : q;
  if (headDim > MAX_HEAD_DIM || headDimV > MAX_HEAD_DIM || headDim % 2 != 0 || heads % kvHeads != 0) {
    psi_set_error("attention: head dims %d/%d (at most %d, K even) and %d/%d heads are not supported", headDim, headDimV, MAX_HEAD_DIM, heads, kvHeads);
    return -1;
  }
  if (quantize && headDimV % 32 != 0) { psi_set_error("attention: quantizing the output needs heads of whole 32-value blocks"); return -1; }
  // With `quantize`, the output's int8 rows go to the products' scratch too (for the output projection).
  const int64_t width = (int64_t)heads * headDimV, allRows = count > 0 ? segs[count - 1].rowStart + segs[count - 1].rows - segs[0].rowStart : 0;
  int8_t *xq = nullptr;
  float *xd = nullptr;
  if (quantize && psi_quantized_scratch(allRows, width, &xq, &xd)) return -1;
  for (int base = 0; base < count; base += MAX_SEGMENTS) {
    Segments s;
    memset(&s, 0, sizeof s);
    s.count = min(MAX_SEGMENTS, count - base);
    const int64_t firstRow = segs[base].rowStart;
    int64_t rows = 0;
    int pos0[MAX_SEGMENTS];
    for (int i = 0; i < s.count; i++) {
      const HostSegment &h = segs[base + i];
      s.rowStart[i] = (int)(h.rowStart - firstRow); s.rows[i] = (int)h.rows; pos0[i] = (int)h.pos0;
      s.k[i] = h.k; s.v[i] = h.v;
      rows = h.rowStart + h.rows - firstRow;
    }
    if (rows <= 0) continue;
    if (!(s.pos0 = (const int *)psi_stage(pos0, s.count * sizeof(int)))) return -1;
    if (rope) {
      PSI_LAUNCH((unsigned)rows, 256, rope_store_kv)(q + firstRow * heads * headDim, qRotated + firstRow * heads * headDim, (int64_t)heads,
                                                    k + firstRow * kvHeads * headDim, v + firstRow * kvHeads * headDimV, s, (int64_t)kvHeads,
                                                    (int64_t)headDim, (int64_t)headDimV, *rope, ropeFactors, ramp);
      if (PSI_LAUNCHED("rope_store_kv")) return -1;
    } else if (k && v) {
      PSI_LAUNCH((unsigned)rows, 128, store_kv)(k + firstRow * kvHeads * headDim, v + firstRow * kvHeads * headDimV, s,
                                               (int64_t)kvHeads * headDim, (int64_t)kvHeads * headDimV);
      if (PSI_LAUNCHED("store_kv")) return -1;
    }
    // The longest key range of any row here decides the split; a segment of prompt rows, the flash kernel.
    int keys = 0, maxSegmentRows = 0;
    for (int i = 0; i < s.count; i++) {
      const int lastPos = pos0[i] + s.rows[i] - 1;
      keys = max(keys, window > 0 ? min(window, lastPos + 1) : lastPos + 1);
      maxSegmentRows = max(maxSegmentRows, s.rows[i]);
    }
    const int64_t at = firstRow - segs[0].rowStart;
    if (flash_fits(headDim, headDimV, maxSegmentRows)) {
      const AttendArgs a = {heads, kvHeads, headDim, headDimV, window, scale, 1, 0, nullptr, nullptr, nullptr, nullptr, nullptr};
      if (launch_flash(queries + firstRow * heads * headDim, s, a, maxSegmentRows, sinks, out + firstRow * width)) return -1;
      if (quantize && psi_quantize_into(out + firstRow * width, rows * width / 32, xq + at * width, xd + at * width / 32)) return -1;
      continue;
    }
    AttendArgs a = {heads, kvHeads, headDim, headDimV, window, scale, choose_splits(rows, heads, keys), 0, nullptr, nullptr, nullptr,
                    quantize ? xq + at * width : nullptr, quantize ? xd + at * width / 32 : nullptr};
    if (a.splits > 1) {
      const int64_t parts = rows * heads * a.splits;
      a.partMax = (float *)psi_scratch(15, parts * sizeof(float));
      a.partSum = (float *)psi_scratch(16, parts * sizeof(float));
      a.partAcc = (float *)psi_scratch(17, parts * headDimV * sizeof(float));
      if (!a.partMax || !a.partSum || !a.partAcc) return -1;
    }
    PSI_LAUNCH(dim3((unsigned)rows, (unsigned)heads, (unsigned)a.splits), 32 * ATT_WARPS, attend)(queries + firstRow * heads * headDim, s, a, sinks,
                                                                                               out + firstRow * heads * headDimV);
    if (PSI_LAUNCHED("attention")) return -1;
    if (a.splits > 1) {
      PSI_LAUNCH(dim3((unsigned)rows, (unsigned)heads), 128, merge_splits)(a, sinks, out + firstRow * heads * headDimV);
      if (PSI_LAUNCHED("attention merge")) return -1;
    }
  }
  return 0;
}

__global__ void store_rows_kernel(const float *src, int64_t count, __half *dst) {
  psi_grid_wait();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < count) dst[i] = __float2half_rn(src[i]);
}

// rows x width floats into an F16 cache from slot firstSlot on.
PSI_EXPORT int psi_cuda_store_rows(const float *src, int64_t rows, int64_t width, __half *cache, int64_t firstSlot) {
  PSI_LAUNCH((unsigned)ceil_div(rows * width, 256), 256, store_rows_kernel)(src, rows * width, cache + firstSlot * width);
  return PSI_LAUNCHED("store_rows");
}
