/*
 * The scalar kernel table: plain C for every entry of kernels_t. It is the baseline every CPU
 * runs, the reference path the SIMD tables are compared against (tests run each ISA level), and
 * the starting point each SIMD table overrides. No intrinsics here.
 */
#include <math.h>
#include "common.h"

void q8_dots_scalar(kernels_t *k); /* quant_dot.c */
void x8_scalar(kernels_t *k);      /* repack.c */
void dequant_row_scalar(int dt, const uint8_t *src, long n, float *dst); /* quant_decode.c */

#define MR_S 4
#define NR_S 4

/* C (4, 4) (+)= Ap · Bp over kc; Ap holds 4 values of A per k, Bp 4 values of B per k */
static void gemm_tile_scalar(int kc, const float *ap, const float *bp, float *c, long ldc, int acc) {
  float t[MR_S][NR_S] = { { 0 } };
  for (int k = 0; k < kc; k++, ap += MR_S, bp += NR_S)
    for (int i = 0; i < MR_S; i++)
      for (int j = 0; j < NR_S; j++) t[i][j] += ap[i] * bp[j];
  for (int i = 0; i < MR_S; i++)
    for (int j = 0; j < NR_S; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}

static float dot_f32_scalar(int n, const float *a, const float *b) {
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static float dot_f16_scalar(int n, const uint8_t *w, const float *x) {
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += ld_f16(w + 2 * i) * x[i];
  return s;
}

static float dot_bf16_scalar(int n, const uint8_t *w, const float *x) {
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += bf16_to_f32(ld_u16(w + 2 * i)) * x[i];
  return s;
}

static void f16_to_f32_scalar(int n, const uint8_t *src, float *dst) {
  for (int i = 0; i < n; i++) dst[i] = ld_f16(src + 2 * i);
}

static float exp_shift_sum_scalar(int n, float *x, float shift) {
  float sum = 0.0f;
  for (int i = 0; i < n; i++) sum += x[i] = expf(x[i] - shift);
  return sum;
}

static void attend_head_scalar(int n, int hs, const float *q, const float *k, const float *v, long stride,
                               float scale, float *scores, float *out) {
  float max = -INFINITY;
  for (int s = 0; s < n; s++) {
    const float *ks = k + (long)s * stride;
    float d = 0.0f;
    for (int i = 0; i < hs; i++) d += q[i] * ks[i];
    scores[s] = d * scale;
    if (scores[s] > max) max = scores[s];
  }
  float sum = 0.0f;
  for (int s = 0; s < n; s++) {
    scores[s] = expf(scores[s] - max);
    sum += scores[s];
  }
  const float inv = 1.0f / sum;
  for (int i = 0; i < hs; i++) out[i] = 0.0f;
  for (int s = 0; s < n; s++) {
    const float p = scores[s] * inv, *vs = v + (long)s * stride;
    for (int i = 0; i < hs; i++) out[i] += p * vs[i];
  }
}

static void silu_mul_scalar(int n, float *g, const float *u) {
  for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void add_f32_scalar(int n, float *x, const float *y) {
  for (int i = 0; i < n; i++) x[i] += y[i];
}

void kernels_scalar(kernels_t *k) {
  k->name = "scalar";
  k->mr = MR_S;
  k->nr = NR_S;
  k->gemm_tile = gemm_tile_scalar;
  k->dot_f32 = dot_f32_scalar;
  k->dot_f16 = dot_f16_scalar;
  k->dot_bf16 = dot_bf16_scalar;
  k->f16_to_f32 = f16_to_f32_scalar;
  k->dequant_row = dequant_row_scalar;
  k->attend_head = attend_head_scalar;
  k->silu_mul = silu_mul_scalar;
  k->exp_shift_sum = exp_shift_sum_scalar;
  k->add_f32 = add_f32_scalar;
  q8_dots_scalar(k);
  x8_scalar(k);
}
