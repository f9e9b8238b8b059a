/* Row gathers and scatters: the embedding lookup (ggml_get_rows) and the store
 * of new K/V rows into the cache (ggml_set_rows / ggml_cpy to F16).
 * Both reuse the tensor codecs of quant_row.c rather than decoding again here,
 * so every type the codecs support (and their tests) carries over. */
#include "api.h"
#include "ops.h"

/* table is n_table rows of row_bytes bytes, each n_cols values of `type`;
 * ids is n_ids row numbers; out is (n_ids, n_cols) F32. */
int32_t PSI_IMPL(psi_get_rows)(int32_t type, const void *table, int64_t row_bytes, int64_t n_table, int64_t n_cols, const int32_t *ids, int64_t n_ids, float *out) {
  if (row_bytes <= 0 || n_table < 0 || n_cols <= 0 || n_ids < 0) return PSI_OPS_BAD_SHAPE;
  for (int64_t i = 0; i < n_ids; i++)
    if (ids[i] < 0 || ids[i] >= n_table) return PSI_OPS_BAD_INDEX;
  for (int64_t i = 0; i < n_ids; i++) {
    const int32_t status = PSI_IMPL(psi_dequantize_row)(type, (const uint8_t *)table + ids[i] * row_bytes, out + i * n_cols, n_cols);
    if (status != PSI_QUANT_OK) return status;
  }
  return PSI_OPS_OK;
}

/* src is (n_tokens, row_len) F32; row t goes to cache cell cells[t], which starts
 * cell_stride elements after the previous cell. kv_type is PSI_F16 (rounded to
 * nearest even, as ggml's fp32->fp16) or PSI_F32 (copied). */
int32_t PSI_IMPL(psi_kv_store)(const float *src, void *cache, int32_t kv_type, const int32_t *cells, int64_t n_tokens, int64_t row_len, int64_t cell_stride, int64_t n_cells) {
  if (n_tokens < 0 || row_len <= 0 || cell_stride < row_len || n_cells < 0) return PSI_OPS_BAD_SHAPE;
  if (kv_type != PSI_F16 && kv_type != PSI_F32) return PSI_OPS_UNSUPPORTED;
  for (int64_t t = 0; t < n_tokens; t++)
    if (cells[t] < 0 || cells[t] >= n_cells) return PSI_OPS_BAD_INDEX;
  for (int64_t t = 0; t < n_tokens; t++) {
    if (kv_type == PSI_F16) PSI_IMPL(psi_encode_f16)(src + t * row_len, (uint16_t *)cache + cells[t] * cell_stride, row_len);
    else memcpy((float *)cache + cells[t] * cell_stride, src + t * row_len, (size_t)row_len * sizeof(float));
  }
  return PSI_OPS_OK;
}
