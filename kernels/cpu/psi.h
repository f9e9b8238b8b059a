/* Shared definitions for the CPU kernel library.
 *
 * Every kernel source is compiled once per instruction-set variant (portable,
 * avx2, avx512); PSI_IMPL gives each copy of a function a variant-suffixed name
 * so all copies link into one libpsionic_cpu.so. dispatch.c picks a variant
 * once, from the CPU's features, and exports the plain names listed in api.h. */
#ifndef PSI_H
#define PSI_H

#include <stdint.h>
#include <stddef.h>

#ifndef PSI_VARIANT
#define PSI_VARIANT portable
#endif

#define PSI_CAT_(a, b) a##_##b
#define PSI_CAT(a, b) PSI_CAT_(a, b)
/* PSI_IMPL(psi_foo) -> psi_foo_avx2 in the avx2 build. */
#define PSI_IMPL(name) PSI_CAT(name, PSI_VARIANT)

#define PSI_EXPORT __attribute__((visibility("default")))

#endif
