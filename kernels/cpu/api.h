/* The kernels libpsionic_cpu.so exports, as one X-macro list:
 *   X(return type, name, (parameters), (arguments))
 * Each is implemented per variant as PSI_IMPL(name) and dispatched by dispatch.c.
 * ffi/cpu.ts carries the matching bun:ffi symbol table. */
#ifndef PSI_API_H
#define PSI_API_H

#include "psi.h"

#define PSI_KERNELS(X) \
  X(int32_t, psi_dequantize_row, (int32_t type, const void *src, float *dst, int64_t n), (type, src, dst, n)) \
  X(int32_t, psi_quantize_row, (int32_t type, const float *src, void *dst, int64_t n), (type, src, dst, n))

#endif
