// Weight decoding on the device. Every quantized type is read as sub-blocks of
// 32 values: 32 small integer codes (packed four to an int) and, for each half
// of 16, a scale a and offset b such that value = a * code + b. Products take
// integer dot products of the codes with 8-bit activations (dp4a) and apply
// a and b once per half; lookups and dequantization use the same decoder.
//
// Layouts: Q8_0, Q4_0 and MXFP4 are repacked at load ("split": each 2-D slab
// holds its blocks' codes first, 16-byte aligned, then their scales) so a
// lane reads a block's codes with one or two 16-byte loads (MXFP4's codes in
// value order, for e2m1x4); the K-quants are
// split further, each sub-block's code bits apart from the block's scales
// (decode_k4, decode_q6k); Q4_1 and Q5_* keep the GGUF block layout, read as
// wide as their blocks stay aligned (see load_word below). Same bits either way.
#pragma once
#include "common.cuh"

struct Sub32 {
  int q[8];      // codes 0..31, four int8 per int, little-endian
  float a0, b0;  // values 0..15
  float a1, b1;  // values 16..31
};

// Integer dot products (dp4a, int8 mma) start from SUM_BIAS instead of 0: a sum
// s with |s| < 2^22 then reads as the float 1.5 * 2^23 + s exactly, so one
// float subtract (full rate) stands for the int-to-float conversion, which runs
// at a quarter of the FP32 rate on sm_80/sm_90 and would otherwise be a third
// of the tensor-core kernels' inner loop. Every sum here is at most 32 products
// of int8 codes: |s| <= 32 * 128 * 127 = 520,192. The result is bit for bit
// (float)s.
constexpr int SUM_BIAS = 0x4B400000;
__device__ __forceinline__ float biased_sum(int s) { return __int_as_float(s) - 12582912.f; }

// Bytes of one GGUF block and values per block, per type (0 for types the CUDA backend lacks).
__host__ __device__ inline int block_bytes(int type) {
  switch (type) {
    case T_Q8_0: return 34; case T_Q4_0: return 18; case T_Q4_1: return 20; case T_Q5_0: return 22;
    case T_Q5_1: return 24; case T_MXFP4: return 17; case T_Q4_K: return 144; case T_Q5_K: return 176;
    case T_Q6_K: return 210; case T_F32: return 4; case T_F16: return 2; case T_BF16: return 2;
    default: return 0;
  }
}
__host__ __device__ inline int block_values(int type) {
  switch (type) {
    case T_Q4_K: case T_Q5_K: case T_Q6_K: return 256;
    case T_F32: case T_F16: case T_BF16: return 1;
    default: return 32;
  }
}
// Types repacked into the split layout, and their code bytes per block.
__host__ __device__ inline int split_code_bytes(int type) {
  return type == T_Q8_0 ? 32 : (type == T_Q4_0 || type == T_MXFP4) ? 16 : 0;
}
__host__ __device__ constexpr bool is_float_type(int type) { return type == T_F32 || type == T_F16 || type == T_BF16; }

// Host dispatch from a runtime type id to the kernel templates: calls
// f(TypeTag<T>{}) for the types with kernels (cuda-tensors.ts CUDA_TYPES),
// else refuses naming `what`.
template <int T>
struct TypeTag { static constexpr int value = T; };

template <class F>
inline int with_type(int64_t type, const char *what, F &&f) {
  switch (type) {
    case T_F32: return f(TypeTag<T_F32>{});
    case T_F16: return f(TypeTag<T_F16>{});
    case T_BF16: return f(TypeTag<T_BF16>{});
    case T_Q8_0: return f(TypeTag<T_Q8_0>{});
    case T_Q4_0: return f(TypeTag<T_Q4_0>{});
    case T_Q4_1: return f(TypeTag<T_Q4_1>{});
    case T_Q5_0: return f(TypeTag<T_Q5_0>{});
    case T_Q5_1: return f(TypeTag<T_Q5_1>{});
    case T_MXFP4: return f(TypeTag<T_MXFP4>{});
    case T_Q4_K: return f(TypeTag<T_Q4_K>{});
    case T_Q5_K: return f(TypeTag<T_Q5_K>{});
    case T_Q6_K: return f(TypeTag<T_Q6_K>{});
    default: psi_set_error("%s: the CUDA backend has no kernel for ggml type %d", what, (int)type); return -1;
  }
}

__device__ __forceinline__ float half_bits(uint16_t h) { return __half2float(__ushort_as_half(h)); }

// Value i of a float weight (F32, F16 or BF16) as a float.
template <int T>
__device__ __forceinline__ float float_weight(const uint8_t *p, int64_t i) {
  if (T == T_F32) return reinterpret_cast<const float *>(p)[i];
  if (T == T_F16) return __half2float(reinterpret_cast<const __half *>(p)[i]);
  return __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(p)[i]);
}

// Loads of the GGUF-layout blocks, as wide as each field's alignment allows:
// blocks of 20 and 24 bytes (Q4_1, Q5_1) keep 4-byte alignment, 22 (Q5_0)
// only 2, while a byte at a time costs a warp request per byte per lane. The
// emulator checks each alignment, as the GPU faults on a misaligned load.
template <int A>
__device__ __forceinline__ void check_aligned(const void *p) {
#ifdef PSI_EMULATE
  psi_emu_aligned<A>(p, A == 2 ? "uint16_t" : "int");
#endif
}
__device__ __forceinline__ uint16_t load_u16(const uint8_t *p) {
  check_aligned<2>(p);
  return *reinterpret_cast<const uint16_t *>(p);
}
__device__ __forceinline__ int load_word(const uint8_t *p) {
  check_aligned<4>(p);
  return *reinterpret_cast<const int *>(p);
}
// A little-endian word at a 2-byte aligned address, from two 16-bit loads.
__device__ __forceinline__ int load_word_u16(const uint8_t *p) { return (int)(load_u16(p) | ((uint32_t)load_u16(p + 2) << 16)); }
// 2^(e-128): half the e8m0 scale, since the E2M1 codes below are doubled to be integers.
__device__ __forceinline__ float e8m0_half(uint8_t e) {
  return __uint_as_float(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
}

// Four bytes (each 0..127) less `off` (each at most 0x80) byte by byte, as int8:
// biased by 0x80 first so no byte borrows from the next, the bias flipped back
// after. Three instructions; __vsubss4 has none on sm_80/sm_90 and expands to more.
__device__ __forceinline__ int sub_bytes(uint32_t v, uint32_t off) { return (int)(((v | 0x80808080u) - off) ^ 0x80808080u); }

// PTX prmt, generic form: byte n of the result is byte (c >> 4n) & 7 of {b, a},
// or, where bit 3 of that selector nibble is set, that byte's sign bit repeated.
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t c) {
#ifdef PSI_EMULATE
  const uint64_t both = ((uint64_t)b << 32) | a;
  uint32_t r = 0;
  for (int n = 0; n < 4; n++) {
    const uint32_t sel = (c >> (4 * n)) & 15, byte = (uint32_t)(both >> (8 * (sel & 7))) & 0xff;
    r |= (sel & 8 ? (byte & 0x80 ? 0xffu : 0u) : byte) << (8 * n);
  }
  return r;
#else
  uint32_t r;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
#endif
}

// Four E2M1 codes (the low 16 bits of `codes`, value k in bits 4k..4k+3) as int8,
// doubled to be integers: 0, 1, 2, 3, 4, 6, 8, 12 and their negatives. Each code
// is a prmt selector into the table of magnitudes, its sign bit prmt's sign-fill
// bit: a positive code copies its magnitude, a negative one gives 0 (the sign of a
// positive byte). With the signs flipped the same lookup gives the negative codes'
// magnitudes and 0 for the rest, so v = pos | -neg byte by byte, -neg taken by
// sub_bytes so no byte borrows from the next. Six instructions for four
// values (with the shift and flip shared by a word's two halves), where a 16-entry
// table lookup with the sign merged by mask took twelve.
__device__ __forceinline__ int e2m1x4(uint32_t codes, uint32_t flipped) {
  const uint32_t mag0 = 0x03020100u, mag1 = 0x0c080604u;
  const uint32_t pos = prmt(mag0, mag1, codes), neg = prmt(mag0, mag1, flipped);
  return sub_bytes(0, neg) | (int)pos;
}

// Sub-block `sb` (values sb*32 .. sb*32+31) of row `row` of a slab with `cols` values per row.
template <int T>
__device__ __forceinline__ void decode_sub(const uint8_t *slab, int64_t row, int64_t cols, int64_t sb, Sub32 &s) {
  const int64_t blocksPerRow = cols / block_values(T);
  if (T == T_Q8_0) {
    const int64_t blk = row * blocksPerRow + sb;
    const int4 *codes = reinterpret_cast<const int4 *>(slab + blk * 32);
    const int4 c0 = codes[0], c1 = codes[1];
    s.q[0] = c0.x; s.q[1] = c0.y; s.q[2] = c0.z; s.q[3] = c0.w; s.q[4] = c1.x; s.q[5] = c1.y; s.q[6] = c1.z; s.q[7] = c1.w;
    s.b0 = s.b1 = 0.f;
  } else if (T == T_Q4_0 || T == T_MXFP4) {
    const int64_t blk = row * blocksPerRow + sb;
    const int4 c = *reinterpret_cast<const int4 *>(slab + blk * 16);
    const int v[4] = {c.x, c.y, c.z, c.w};
    if (T == T_Q4_0) {
#pragma unroll
      for (int i = 0; i < 4; i++) {
        s.q[i] = sub_bytes(v[i] & 0x0f0f0f0f, 0x08080808);
        s.q[4 + i] = sub_bytes((v[i] >> 4) & 0x0f0f0f0f, 0x08080808);
      }
    } else {
      // MXFP4 codes are repacked in value order (memory.cu's repack_split): word i holds values 8i..8i+7.
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const uint32_t w = (uint32_t)v[i], flipped = w ^ 0x88888888u;
        s.q[2 * i] = e2m1x4(w, flipped);
        s.q[2 * i + 1] = e2m1x4(w >> 16, flipped >> 16);
      }
    }
    s.b0 = s.b1 = 0.f;
  } else if (T == T_Q4_1 || T == T_Q5_0 || T == T_Q5_1) {
    const uint8_t *b = slab + (row * blocksPerRow + sb) * block_bytes(T);
    const float d = half_bits(load_u16(b));
    const float m = T == T_Q5_0 ? 0.f : half_bits(load_u16(b + 2));
    const uint8_t *qs = b + (T == T_Q4_1 ? 4 : T == T_Q5_0 ? 6 : 8);
    // Q5_0's fields are 2-byte aligned (22-byte blocks); Q4_1's and Q5_1's 4.
    const uint32_t qh = T == T_Q4_1 ? 0u : T == T_Q5_0 ? (uint32_t)load_word_u16(b + 2) : (uint32_t)load_word(b + 4);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int w = T == T_Q5_0 ? load_word_u16(qs + 4 * i) : load_word(qs + 4 * i);
      int lo = w & 0x0f0f0f0f, hi = (w >> 4) & 0x0f0f0f0f;
      if (T != T_Q4_1) {
        // Fifth bits: value j takes bit j of qh, value j+16 bit j+16.
        int hl = 0, hh = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
          hl |= ((qh >> (4 * i + k)) & 1) << (8 * k + 4);
          hh |= ((qh >> (4 * i + k + 16)) & 1) << (8 * k + 4);
        }
        lo |= hl; hi |= hh;
        if (T == T_Q5_0) { lo = sub_bytes(lo, 0x10101010); hi = sub_bytes(hi, 0x10101010); }
      }
      s.q[i] = lo; s.q[4 + i] = hi;
    }
    s.a0 = s.a1 = d; s.b0 = s.b1 = m;
    return;
  }
}

// Code word i (values 4i .. 4i + 3) of a sub-block's low-nibble region (value v
// at byte v % 16, in the high nibble from 16; pack_low_nibbles, memory.cu).
__device__ __forceinline__ int low_nibbles(const int4 &lo, int i) {
  const int w = (i & 3) == 0 ? lo.x : (i & 3) == 1 ? lo.y : (i & 3) == 2 ? lo.z : lo.w;
  return (i < 4 ? w : w >> 4) & 0x0f0f0f0f;
}

// Q4_K and Q5_K, repacked at load (repack_k4, memory.cu) into each sub-block's
// low code nibbles [S][16] (as Q6_K's below), for Q5_K each sub-block's fifth
// bits [S][4] (a little-endian word, value v at bit 8 (v % 4) + v / 4, so code
// word i takes them with one shift and mask), then each block's
// first 16 bytes [S / 8][16] (d, dmin and the 12 bytes of packed 6-bit scales
// and mins), so a lane takes a sub-block in two or three aligned loads and
// reads its scale and min out of registers. `rest` (slab + scalesOffset) is
// 16 S bytes in. Same bytes per block as the GGUF layout.
template <int T>
__device__ __forceinline__ void decode_k4(const uint8_t *slab, const uint8_t *rest, int64_t g, Sub32 &s) {
  const int64_t S = (rest - slab) / 16;
  const int4 lo = reinterpret_cast<const int4 *>(slab)[g];
  const uint32_t fifth = T == T_Q5_K ? (uint32_t)load_word(rest + g * 4) : 0u;
  const int4 meta = reinterpret_cast<const int4 *>(rest + (T == T_Q5_K ? S * 4 : 0))[g / 8];
  const float d = half_bits((uint16_t)(meta.x & 0xffff)), dmin = half_bits((uint16_t)((uint32_t)meta.x >> 16));
  // Sub-block j's 6-bit scale and min (ggml's get_scale_min_k4) from the scale bytes 0..3, 4..7 and 8..11.
  const int j = (int)(g % 8), at = 8 * (j & 3);
  const int a = (meta.y >> at) & 0xff, b = (meta.z >> at) & 0xff, c = (meta.w >> at) & 0xff;
  const int sc = j < 4 ? a & 63 : (c & 0xf) | ((a >> 6) << 4), m = j < 4 ? b & 63 : (c >> 4) | ((b >> 6) << 4);
#pragma unroll
  for (int i = 0; i < 8; i++) s.q[i] = low_nibbles(lo, i) | (int)(((fifth >> i) & 0x01010101u) << 4);
  s.a0 = s.a1 = d * (float)sc;
  s.b0 = s.b1 = -(dmin * (float)m);
}

// Q6_K, repacked at load (repack_q6k, memory.cu) from 210-byte blocks (2-byte
// aligned, each sub-block's bits spread over 64 bytes of ql and qh) into four
// regions per slab of S sub-blocks: low nibbles [S][16] (value v at byte v % 16,
// high nibble from 16), high bit pairs [S][8] (value v at byte v % 8, bits
// 2 * (v / 8)), int8 scales [S][2] (values 0..15, 16..31) and fp16 d [S / 8].
// `highs` (slab + scalesOffset) is 16 S bytes in, so the regions after it
// follow from it. Four loads a sub-block instead of eighteen words.
__device__ __forceinline__ void decode_q6k(const uint8_t *slab, const uint8_t *highs, int64_t g, Sub32 &s) {
  const int64_t S = (highs - slab) / 16;
  const int4 lo = reinterpret_cast<const int4 *>(slab)[g];
  const int2 hi = reinterpret_cast<const int2 *>(highs)[g];
  const uint16_t scales = load_u16(highs + S * 8 + g * 2);
  const float d = half_bits(load_u16(highs + S * 10 + (g / 8) * 2));
#pragma unroll
  for (int i = 0; i < 8; i++) {
    const int high = ((i % 2 ? hi.y : hi.x) >> (2 * (i / 2))) & 0x03030303;
    s.q[i] = sub_bytes(low_nibbles(lo, i) | (high << 4), 0x20202020);
  }
  s.a0 = d * (float)(int8_t)(scales & 0xff);
  s.a1 = d * (float)(int8_t)(scales >> 8);
  s.b0 = s.b1 = 0.f;
}

// The split types' scale of block `blk`; scales start `codeBytes` after the slab.
template <int T>
__device__ __forceinline__ void split_scale(const uint8_t *scales, int64_t blk, Sub32 &s) {
  if (T == T_Q8_0 || T == T_Q4_0) s.a0 = s.a1 = half_bits(reinterpret_cast<const uint16_t *>(scales)[blk]);
  else if (T == T_MXFP4) s.a0 = s.a1 = e8m0_half(scales[blk]);
}

// One whole sub-block: codes and scales, whatever the layout. For split types
// `scales` points at the slab's scale region; other types ignore it.
template <int T>
__device__ __forceinline__ void load_sub(const uint8_t *slab, const uint8_t *scales, int64_t row, int64_t cols, int64_t sb, Sub32 &s) {
  const int64_t g = row * (cols / 32) + sb;  // the sub-block's index in its slab
  if constexpr (T == T_Q6_K) {
    decode_q6k(slab, scales, g, s);
  } else if constexpr (T == T_Q4_K || T == T_Q5_K) {
    decode_k4<T>(slab, scales, g, s);
  } else {
    decode_sub<T>(slab, row, cols, sb, s);
    if (split_code_bytes(T)) split_scale<T>(scales, g, s);
  }
}

__device__ __forceinline__ int sub_code(const Sub32 &s, int i) {
  return (int)(int8_t)(s.q[i >> 2] >> (8 * (i & 3)));
}
