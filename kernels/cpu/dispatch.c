/* Picks one instruction-set variant of every kernel at load time and exports
 * the kernels under their plain names. Compiled once, without ISA flags, so it
 * runs on any x86-64 (or other) CPU. */
#include <string.h>
#include "api.h"

#define DECLARE_VARIANTS(ret, name, params, args) \
  ret name##_portable params; ret name##_avx2 params; ret name##_avx512 params; \
  static ret (*name##_selected) params = name##_portable;
PSI_KERNELS(DECLARE_VARIANTS)

#define EXPORT_KERNEL(ret, name, params, args) PSI_EXPORT ret name params { return name##_selected args; }
PSI_KERNELS(EXPORT_KERNEL)

#define SELECT(variant) \
  do { PSI_KERNELS(SELECT_ONE_##variant) } while (0)
#define SELECT_ONE_portable(ret, name, params, args) name##_selected = name##_portable;
#define SELECT_ONE_avx2(ret, name, params, args) name##_selected = name##_avx2;
#define SELECT_ONE_avx512(ret, name, params, args) name##_selected = name##_avx512;

static const char *selected_variant = "portable";

/* Whether this CPU can run a variant. The avx512 build uses VNNI and BF16
 * instructions (Zen 4, Sapphire Rapids); avx2 also needs FMA and F16C. */
static int cpu_supports(const char *variant) {
  if (strcmp(variant, "portable") == 0) return 1;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (strcmp(variant, "avx2") == 0) return avx2;
  if (strcmp(variant, "avx512") == 0)
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16");
#endif
  return 0;
}

/* Switches every kernel to `variant`; returns 1 on success, 0 when the CPU
 * (or this build) cannot run it. Tests use it to check each variant. */
PSI_EXPORT int32_t psi_cpu_select_variant(const char *variant) {
  if (!cpu_supports(variant)) return 0;
#if defined(__x86_64__)
  if (strcmp(variant, "avx512") == 0) { SELECT(avx512); selected_variant = "avx512"; return 1; }
  if (strcmp(variant, "avx2") == 0) { SELECT(avx2); selected_variant = "avx2"; return 1; }
#endif
  SELECT(portable);
  selected_variant = "portable";
  return 1;
}

PSI_EXPORT const char *psi_cpu_variant(void) { return selected_variant; }

__attribute__((constructor)) static void choose_best_variant(void) {
  if (!psi_cpu_select_variant("avx512") && !psi_cpu_select_variant("avx2")) psi_cpu_select_variant("portable");
}
