// bun:ffi symbols of the training kernels in libpsionic_cpu.so (kernels/cpu/train_api.h
// lists the same); ffi/cpu.ts folds them into its table, src/train/train-kernels.ts wraps them.
import { FFIType } from "bun:ffi";

const { ptr, i32, i64, f32 } = FFIType;

export const cpuTrainSymbols = {
  psi_train_sgemm: { args: [i32, i32, i64, i64, i64, ptr, i64, ptr, i64, ptr, i64, i32, i32], returns: i32 },
  psi_train_sgemm_ref: { args: [i32, i32, i64, i64, i64, ptr, i64, ptr, i64, ptr, i64, i32], returns: i32 },
  psi_train_embedding_forward: { args: [ptr, ptr, ptr, i64, i64, i64, i32], returns: i32 },
  psi_train_embedding_forward_ref: { args: [ptr, ptr, ptr, i64, i64, i64], returns: i32 },
  psi_train_embedding_backward: { args: [ptr, ptr, ptr, i64, i64, i64, i32], returns: i32 },
  psi_train_embedding_backward_ref: { args: [ptr, ptr, ptr, i64, i64, i64], returns: i32 },
  psi_train_rmsnorm_forward: { args: [ptr, ptr, ptr, ptr, i64, i64, f32, i32], returns: i32 },
  psi_train_rmsnorm_forward_ref: { args: [ptr, ptr, ptr, ptr, i64, i64, f32], returns: i32 },
  psi_train_rmsnorm_backward: { args: [ptr, ptr, ptr, ptr, ptr, ptr, i64, i64, i32], returns: i32 },
  psi_train_rmsnorm_backward_ref: { args: [ptr, ptr, ptr, ptr, ptr, ptr, i64, i64], returns: i32 },
  psi_train_rope_table: { args: [ptr, ptr, i64, i64, f32], returns: i32 },
  psi_train_rope_forward: { args: [ptr, i64, i64, i64, i64, i64, ptr, ptr, i32], returns: i32 },
  psi_train_rope_forward_ref: { args: [ptr, i64, i64, i64, i64, i64, ptr, ptr], returns: i32 },
  psi_train_rope_backward: { args: [ptr, i64, i64, i64, i64, i64, ptr, ptr, i32], returns: i32 },
  psi_train_rope_backward_ref: { args: [ptr, i64, i64, i64, i64, i64, ptr, ptr], returns: i32 },
  psi_train_attention_forward: { args: [ptr, ptr, ptr, i64, i64, i64, i64, i64, i32], returns: i32 },
  psi_train_attention_forward_ref: { args: [ptr, ptr, ptr, i64, i64, i64, i64, i64], returns: i32 },
  psi_train_attention_backward: { args: [ptr, ptr, ptr, ptr, i64, i64, i64, i64, i64, i32], returns: i32 },
  psi_train_attention_backward_ref: { args: [ptr, ptr, ptr, ptr, i64, i64, i64, i64, i64], returns: i32 },
  psi_train_swiglu_forward: { args: [ptr, ptr, i64, i64, i32], returns: i32 },
  psi_train_swiglu_forward_ref: { args: [ptr, ptr, i64, i64], returns: i32 },
  psi_train_swiglu_backward: { args: [ptr, ptr, ptr, i64, i64, i32], returns: i32 },
  psi_train_swiglu_backward_ref: { args: [ptr, ptr, ptr, i64, i64], returns: i32 },
  psi_train_cross_entropy: { args: [ptr, ptr, ptr, ptr, i64, i64, f32, i32], returns: i32 },
  psi_train_cross_entropy_ref: { args: [ptr, ptr, ptr, ptr, i64, i64, f32], returns: i32 },
  psi_train_adamw: { args: [ptr, ptr, ptr, ptr, i64, f32, f32, f32, f32, f32, f32, f32, f32, i32], returns: i32 },
  psi_train_adamw_ref: { args: [ptr, ptr, ptr, ptr, i64, f32, f32, f32, f32, f32, f32, f32, f32], returns: i32 },
  psi_train_sum_squares: { args: [ptr, i64, ptr, ptr, i32], returns: i32 },
} as const;
