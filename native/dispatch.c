/*
 * Runtime ISA dispatch: which kernel table (common.h kernels_t) the backend uses.
 *
 * At load the best level the CPU and OS support is chosen (AVX-512 > AVX2+FMA+F16C > scalar on
 * x86-64; NEON on arm64); isa_select can force a lower one (tests run every level this machine
 * supports; LLAMA2_NATIVE_ISA does it from the environment, see src/backend/native.ts).
 * This file only chooses; the kernels are in the per-ISA files.
 */
#include "native.h"

const kernels_t *K_ACTIVE;
static kernels_t g_tables[ISA_COUNT];
static int g_built[ISA_COUNT];
static isa_t g_cur = ISA_SCALAR;

static const char *const ISA_NAMES[ISA_COUNT] = { "scalar", "avx2", "avx512", "neon" };

const char *isa_name(isa_t isa) { return (unsigned)isa < ISA_COUNT ? ISA_NAMES[isa] : "?"; }

int isa_supported(isa_t isa) {
  switch (isa) {
    case ISA_SCALAR:
      return 1;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    case ISA_AVX2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case ISA_AVX512:
      return isa_supported(ISA_AVX2) && __builtin_cpu_supports("avx512f");
#endif
#if defined(__aarch64__)
    case ISA_NEON:
      return 1;
#endif
    default:
      return 0;
  }
}

static const kernels_t *table(isa_t isa) {
  if (!g_built[isa]) {
    kernels_t *k = &g_tables[isa];
    kernels_scalar(k);
    switch (isa) {
#if defined(__x86_64__)
      case ISA_AVX2: kernels_avx2(k); break;
      case ISA_AVX512: kernels_avx2(k); kernels_avx512(k); break;
#endif
#if defined(__aarch64__)
      case ISA_NEON: kernels_neon(k); break;
#endif
      default: break;
    }
    g_built[isa] = 1;
  }
  return &g_tables[isa];
}

int isa_select(isa_t isa) {
  if ((unsigned)isa >= ISA_COUNT || !isa_supported(isa)) return -1;
  K_ACTIVE = table(isa);
  g_cur = isa;
  return 0;
}

isa_t isa_current(void) { return g_cur; }
