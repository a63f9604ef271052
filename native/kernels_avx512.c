/*
 * The AVX-512F additions to the AVX2 table (this file is compiled with -mavx512f -mavx2 -mfma
 * -mf16c and only called after dispatch.c found AVX-512F): a 6×32 GEMM micro-kernel, the same
 * structure as the AVX2 one (kernels_avx2.c) with 16-float registers; and, on a CPU with AVX-512
 * VNNI and VL, the VNNI kernels of the regrouped Q8_0 / Q4_0 / Q4_K layouts (quant_vnni.c:
 * vpdpbusd, one instruction per 32 multiply-adds where AVX2 needs five). Everything else stays
 * AVX2. The scalar twin of the tile is gemm_tile_scalar in kernels_scalar.c.
 * Measured and not kept on the development machine (Zen 4, which runs 512-bit FMAs as two 256-bit
 * halves; bench/ab.ts): 512-bit F32/F16/BF16 dot products for decode (0.93–1.0×: decode there is
 * at the memory-bandwidth limit), and the AVX2 4×24 tile in place of this 6×32 one (1.02–1.05×,
 * but then no test on such a machine would run the 6×32 tile that full-width AVX-512 CPUs need).
 */
#include <immintrin.h>
#include "common.h"

/* C (6, 32) (+)= Σ_k ap[k·6 + i] · bp[k·32 + j] */
static void gemm_tile_6x32(int kc, const float *ap, const float *bp, float *c, long ldc, int acc) {
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
  for (int k = 0; k < kc; k++, ap += 6, bp += 32) {
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
    __m512 a;
#define ROW(i, r0, r1) \
    a = _mm512_set1_ps(ap[i]); r0 = _mm512_fmadd_ps(a, b0, r0); r1 = _mm512_fmadd_ps(a, b1, r1);
    ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
#undef ROW
  }
#define STORE(i, r0, r1) \
  if (acc) { r0 = _mm512_add_ps(r0, _mm512_loadu_ps(c + i * ldc)); r1 = _mm512_add_ps(r1, _mm512_loadu_ps(c + i * ldc + 16)); } \
  _mm512_storeu_ps(c + i * ldc, r0); _mm512_storeu_ps(c + i * ldc + 16, r1);
  STORE(0, c00, c01) STORE(1, c10, c11) STORE(2, c20, c21) STORE(3, c30, c31) STORE(4, c40, c41) STORE(5, c50, c51)
#undef STORE
}

void q8_rows_vnni(kernels_t *k); /* quant_vnni.c */

void kernels_avx512(kernels_t *k) {
  k->name = "avx512";
  k->mr = 6;
  k->nr = 32;
  k->gemm_tile = gemm_tile_6x32;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")) q8_rows_vnni(k);
}
