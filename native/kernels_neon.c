/*
 * The arm64 NEON additions to the scalar table: a 4×8 GEMM micro-kernel and the f32 dot product.
 * Kept small on purpose (it cannot be tested on the x86 machines this project runs on); every
 * other entry stays scalar. The scalar twins are in kernels_scalar.c.
 */
#include <arm_neon.h>
#include "common.h"

/* C (4, 8) (+)= Σ_k ap[k·4 + i] · bp[k·8 + j] */
static void gemm_tile_4x8(int kc, const float *ap, const float *bp, float *c, long ldc, int acc) {
  float32x4_t c0l = vdupq_n_f32(0.0f), c0h = c0l, c1l = c0l, c1h = c0l, c2l = c0l, c2h = c0l, c3l = c0l, c3h = c0l;
  for (int k = 0; k < kc; k++, ap += 4, bp += 8) {
    const float32x4_t bl = vld1q_f32(bp), bh = vld1q_f32(bp + 4);
    const float32x4_t a = vld1q_f32(ap);
    c0l = vfmaq_laneq_f32(c0l, bl, a, 0); c0h = vfmaq_laneq_f32(c0h, bh, a, 0);
    c1l = vfmaq_laneq_f32(c1l, bl, a, 1); c1h = vfmaq_laneq_f32(c1h, bh, a, 1);
    c2l = vfmaq_laneq_f32(c2l, bl, a, 2); c2h = vfmaq_laneq_f32(c2h, bh, a, 2);
    c3l = vfmaq_laneq_f32(c3l, bl, a, 3); c3h = vfmaq_laneq_f32(c3h, bh, a, 3);
  }
#define STORE(i, l, h) \
  if (acc) { l = vaddq_f32(l, vld1q_f32(c + i * ldc)); h = vaddq_f32(h, vld1q_f32(c + i * ldc + 4)); } \
  vst1q_f32(c + i * ldc, l); vst1q_f32(c + i * ldc + 4, h);
  STORE(0, c0l, c0h) STORE(1, c1l, c1h) STORE(2, c2l, c2h) STORE(3, c3l, c3h)
#undef STORE
}

static float dot_f32_neon(int n, const float *a, const float *b) {
  float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
  }
  float s = vaddvq_f32(vaddq_f32(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

void kernels_neon(kernels_t *k) {
  k->name = "neon";
  k->mr = 4;
  k->nr = 8;
  k->gemm_tile = gemm_tile_4x8;
  k->dot_f32 = dot_f32_neon;
}
