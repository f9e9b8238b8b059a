/* The kernels libpsionic_cpu.so exports, as one X-macro list:
 *   X(return type, name, (parameters), (arguments))
 * Each is implemented per variant as PSI_IMPL(name) and dispatched by dispatch.c.
 * ffi/cpu.ts carries the matching bun:ffi symbol table. */
#ifndef PSI_API_H
#define PSI_API_H

#include "psi.h"
#include "train_api.h"

/* The non-matmul inference ops (kernels/cpu/ops_*.c; argument structs in ops.h). */
struct psi_rope_params;
struct psi_attention_args;
#define PSI_OPS_KERNELS(X) \
  X(int32_t, psi_rms_norm, (const float *x, const float *weight, float *y, int64_t rows, int64_t n, float eps), (x, weight, y, rows, n, eps)) \
  X(int32_t, psi_rms_norm_ref, (const float *x, const float *weight, float *y, int64_t rows, int64_t n, float eps), (x, weight, y, rows, n, eps)) \
  X(int32_t, psi_rope, (const float *x, float *y, const int32_t *pos, int64_t n_tokens, int64_t n_head, int64_t head_dim, const struct psi_rope_params *p, int32_t n_threads), (x, y, pos, n_tokens, n_head, head_dim, p, n_threads)) \
  X(int32_t, psi_rope_ref, (const float *x, float *y, const int32_t *pos, int64_t n_tokens, int64_t n_head, int64_t head_dim, const struct psi_rope_params *p), (x, y, pos, n_tokens, n_head, head_dim, p)) \
  X(int32_t, psi_attention, (const struct psi_attention_args *a), (a)) \
  X(int32_t, psi_attention_ref, (const struct psi_attention_args *a), (a)) \
  X(int32_t, psi_softmax, (const float *x, float *y, int64_t rows, int64_t n), (x, y, rows, n)) \
  X(int32_t, psi_softmax_ref, (const float *x, float *y, int64_t rows, int64_t n), (x, y, rows, n)) \
  X(int32_t, psi_silu, (const float *x, float *y, int64_t n), (x, y, n)) \
  X(int32_t, psi_silu_ref, (const float *x, float *y, int64_t n), (x, y, n)) \
  X(int32_t, psi_swiglu, (const float *gate, const float *up, float *y, int64_t rows, int64_t cols, int64_t gate_stride, int64_t up_stride), (gate, up, y, rows, cols, gate_stride, up_stride)) \
  X(int32_t, psi_swiglu_ref, (const float *gate, const float *up, float *y, int64_t rows, int64_t cols, int64_t gate_stride, int64_t up_stride), (gate, up, y, rows, cols, gate_stride, up_stride)) \
  X(int32_t, psi_swiglu_oai, (const float *gate, const float *up, float *y, int64_t rows, int64_t cols, int64_t gate_stride, int64_t up_stride, float alpha, float limit), (gate, up, y, rows, cols, gate_stride, up_stride, alpha, limit)) \
  X(int32_t, psi_swiglu_oai_ref, (const float *gate, const float *up, float *y, int64_t rows, int64_t cols, int64_t gate_stride, int64_t up_stride, float alpha, float limit), (gate, up, y, rows, cols, gate_stride, up_stride, alpha, limit)) \
  X(int32_t, psi_add, (const float *a, const float *b, float *y, int64_t n), (a, b, y, n)) \
  X(int32_t, psi_add_ref, (const float *a, const float *b, float *y, int64_t n), (a, b, y, n)) \
  X(int32_t, psi_moe_route, (const float *logits, int32_t *ids, float *weights, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t mode), (logits, ids, weights, n_tokens, n_expert, k, mode)) \
  X(int32_t, psi_moe_route_ref, (const float *logits, int32_t *ids, float *weights, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t mode), (logits, ids, weights, n_tokens, n_expert, k, mode)) \
  X(int32_t, psi_moe_weighted_sum, (const float *expert_out, const float *weights, float *out, int64_t n_tokens, int64_t k, int64_t n_embd), (expert_out, weights, out, n_tokens, k, n_embd)) \
  X(int32_t, psi_moe_weighted_sum_ref, (const float *expert_out, const float *weights, float *out, int64_t n_tokens, int64_t k, int64_t n_embd), (expert_out, weights, out, n_tokens, k, n_embd)) \
  X(int32_t, psi_get_rows, (int32_t type, const void *table, int64_t row_bytes, int64_t n_table, int64_t n_cols, const int32_t *ids, int64_t n_ids, float *out), (type, table, row_bytes, n_table, n_cols, ids, n_ids, out)) \
  X(int32_t, psi_kv_store, (const float *src, void *cache, int32_t kv_type, const int32_t *cells, int64_t n_tokens, int64_t row_len, int64_t cell_stride, int64_t n_cells), (src, cache, kv_type, cells, n_tokens, row_len, cell_stride, n_cells))

#define PSI_KERNELS(X) \
  PSI_OPS_KERNELS(X) \
  PSI_TRAIN_KERNELS(X) \
  X(int32_t, psi_dequantize_row, (int32_t type, const void *src, float *dst, int64_t n), (type, src, dst, n)) \
  X(int32_t, psi_quantize_row, (int32_t type, const float *src, void *dst, int64_t n), (type, src, dst, n)) \
  X(int32_t, psi_matmul, (int32_t type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n_tokens, float *y, int32_t threads), (type, w, rows, cols, x, n_tokens, y, threads)) \
  X(int32_t, psi_matmul_reference, (int32_t type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n_tokens, float *y), (type, w, rows, cols, x, n_tokens, y)) \
  X(int64_t, psi_matmul_quantize_activations, (int32_t weight_type, const float *x, int64_t n, void *dst), (weight_type, x, n, dst)) \
  X(int32_t, psi_matmul_activation_type, (int32_t weight_type), (weight_type)) \
  X(int32_t, psi_matmul_repack, (int32_t layout, const void *src, void *dst, int64_t rows, int64_t cols), (layout, src, dst, rows, cols)) \
  X(int32_t, psi_read_memory, (const void *buffer, int64_t bytes, int32_t n_threads, int32_t passes, uint64_t *checksum), (buffer, bytes, n_threads, passes, checksum))

#endif
