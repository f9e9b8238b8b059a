/* The training kernels (kernels/cpu/train_*.c; conventions in train.h), as an
 * X-macro list that api.h folds into PSI_KERNELS. ffi/cpu-train.ts carries the
 * matching bun:ffi symbol table. */
#ifndef PSI_TRAIN_API_H
#define PSI_TRAIN_API_H

#define PSI_TRAIN_KERNELS(X) \
  X(int32_t, psi_train_sgemm, (int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, int32_t accumulate, int32_t threads), (trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads)) \
  X(int32_t, psi_train_sgemm_ref, (int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, int32_t accumulate), (trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate)) \
  X(int32_t, psi_train_embedding_forward, (const float *table, const int32_t *ids, float *out, int64_t n, int64_t d, int64_t vocab, int32_t threads), (table, ids, out, n, d, vocab, threads)) \
  X(int32_t, psi_train_embedding_forward_ref, (const float *table, const int32_t *ids, float *out, int64_t n, int64_t d, int64_t vocab), (table, ids, out, n, d, vocab)) \
  X(int32_t, psi_train_embedding_backward, (float *dtable, const int32_t *ids, const float *dout, int64_t n, int64_t d, int64_t vocab, int32_t threads), (dtable, ids, dout, n, d, vocab, threads)) \
  X(int32_t, psi_train_embedding_backward_ref, (float *dtable, const int32_t *ids, const float *dout, int64_t n, int64_t d, int64_t vocab), (dtable, ids, dout, n, d, vocab)) \
  X(int32_t, psi_train_rmsnorm_forward, (const float *x, const float *weight, float *y, float *rstd, int64_t rows, int64_t n, float eps, int32_t threads), (x, weight, y, rstd, rows, n, eps, threads)) \
  X(int32_t, psi_train_rmsnorm_forward_ref, (const float *x, const float *weight, float *y, float *rstd, int64_t rows, int64_t n, float eps), (x, weight, y, rstd, rows, n, eps)) \
  X(int32_t, psi_train_rmsnorm_backward, (const float *x, const float *weight, const float *rstd, const float *dy, float *dx, float *dweight, int64_t rows, int64_t n, int32_t threads), (x, weight, rstd, dy, dx, dweight, rows, n, threads)) \
  X(int32_t, psi_train_rmsnorm_backward_ref, (const float *x, const float *weight, const float *rstd, const float *dy, float *dx, float *dweight, int64_t rows, int64_t n), (x, weight, rstd, dy, dx, dweight, rows, n)) \
  X(int32_t, psi_train_rope_table, (float *cos_table, float *sin_table, int64_t seq_len, int64_t head_dim, float base), (cos_table, sin_table, seq_len, head_dim, base)) \
  X(int32_t, psi_train_rope_forward, (float *x, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table, int32_t threads), (x, rows, seq_len, heads, head_dim, row_stride, cos_table, sin_table, threads)) \
  X(int32_t, psi_train_rope_forward_ref, (float *x, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table), (x, rows, seq_len, heads, head_dim, row_stride, cos_table, sin_table)) \
  X(int32_t, psi_train_rope_backward, (float *dx, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table, int32_t threads), (dx, rows, seq_len, heads, head_dim, row_stride, cos_table, sin_table, threads)) \
  X(int32_t, psi_train_rope_backward_ref, (float *dx, int64_t rows, int64_t seq_len, int64_t heads, int64_t head_dim, int64_t row_stride, const float *cos_table, const float *sin_table), (dx, rows, seq_len, heads, head_dim, row_stride, cos_table, sin_table)) \
  X(int32_t, psi_train_attention_forward, (const float *qkv, float *out, float *probs, int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim, int32_t threads), (qkv, out, probs, batch, seq_len, heads, kv_heads, head_dim, threads)) \
  X(int32_t, psi_train_attention_forward_ref, (const float *qkv, float *out, float *probs, int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim), (qkv, out, probs, batch, seq_len, heads, kv_heads, head_dim)) \
  X(int32_t, psi_train_attention_backward, (const float *qkv, const float *probs, const float *dout, float *dqkv, int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim, int32_t threads), (qkv, probs, dout, dqkv, batch, seq_len, heads, kv_heads, head_dim, threads)) \
  X(int32_t, psi_train_attention_backward_ref, (const float *qkv, const float *probs, const float *dout, float *dqkv, int64_t batch, int64_t seq_len, int64_t heads, int64_t kv_heads, int64_t head_dim), (qkv, probs, dout, dqkv, batch, seq_len, heads, kv_heads, head_dim)) \
  X(int32_t, psi_train_swiglu_forward, (const float *gu, float *h, int64_t rows, int64_t ffn, int32_t threads), (gu, h, rows, ffn, threads)) \
  X(int32_t, psi_train_swiglu_forward_ref, (const float *gu, float *h, int64_t rows, int64_t ffn), (gu, h, rows, ffn)) \
  X(int32_t, psi_train_swiglu_backward, (const float *gu, const float *dh, float *dgu, int64_t rows, int64_t ffn, int32_t threads), (gu, dh, dgu, rows, ffn, threads)) \
  X(int32_t, psi_train_swiglu_backward_ref, (const float *gu, const float *dh, float *dgu, int64_t rows, int64_t ffn), (gu, dh, dgu, rows, ffn)) \
  X(int32_t, psi_train_cross_entropy, (const float *logits, const int32_t *targets, float *losses, float *dlogits, int64_t rows, int64_t vocab, float grad_scale, int32_t threads), (logits, targets, losses, dlogits, rows, vocab, grad_scale, threads)) \
  X(int32_t, psi_train_cross_entropy_ref, (const float *logits, const int32_t *targets, float *losses, float *dlogits, int64_t rows, int64_t vocab, float grad_scale), (logits, targets, losses, dlogits, rows, vocab, grad_scale)) \
  X(int32_t, psi_train_adamw, (float *params, const float *grads, float *m, float *v, int64_t n, float lr, float beta1, float beta2, float eps, float weight_decay, float correction1, float correction2, float grad_scale, int32_t threads), (params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, correction1, correction2, grad_scale, threads)) \
  X(int32_t, psi_train_adamw_ref, (float *params, const float *grads, float *m, float *v, int64_t n, float lr, float beta1, float beta2, float eps, float weight_decay, float correction1, float correction2, float grad_scale), (params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, correction1, correction2, grad_scale)) \
  X(int32_t, psi_train_sum_squares, (const float *x, int64_t n, double *scratch, double *result, int32_t threads), (x, n, scratch, result, threads))

#endif
