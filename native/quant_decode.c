/*
 * Decoding weight rows of every dtype to f32 — the C twin of src/formats/quants.ts (the spec).
 * Used by the embedding lookup and by the tile path of matmul (decode W rows, then GEMM).
 * Plain C whose per-block loops have fixed trip counts, so the compiler vectorises them: this
 * file is compiled twice, as is for the baseline (dequant_row_scalar) and from
 * quant_decode_avx2.c with AVX2 flags (dequant_row_avx2). It is not the integer dot product
 * (quant_dot.c). Every decoded value is exact in f32 whatever the evaluation order.
 */
#include "common.h"
#include "quant_blocks.h"
#include "native.h"

#ifndef DEQUANT_ROW_FN
#define DEQUANT_ROW_FN dequant_row_scalar
#endif

static void dq_q4_0(const uint8_t *b, float *y) { /* (32) */
  const float d = ld_f16(b);
  const uint8_t *qs = b + 2;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)((qs[j] & 0xF) - 8) * d;
    y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
  }
}

static void dq_q4_1(const uint8_t *b, float *y) {
  const float d = ld_f16(b), m = ld_f16(b + 2);
  const uint8_t *qs = b + 4;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)(qs[j] & 0xF) * d + m;
    y[j + 16] = (float)(qs[j] >> 4) * d + m;
  }
}

static void dq_q5_0(const uint8_t *b, float *y) {
  const float d = ld_f16(b);
  const uint32_t qh = ld_u32(b + 2);
  const uint8_t *qs = b + 6;
  for (int j = 0; j < 16; j++) {
    const int h0 = (int)(((qh >> j) << 4) & 0x10);
    const int h1 = (int)((qh >> (j + 12)) & 0x10);
    y[j] = (float)(((qs[j] & 0xF) | h0) - 16) * d;
    y[j + 16] = (float)(((qs[j] >> 4) | h1) - 16) * d;
  }
}

static void dq_q5_1(const uint8_t *b, float *y) {
  const float d = ld_f16(b), m = ld_f16(b + 2);
  const uint32_t qh = ld_u32(b + 4);
  const uint8_t *qs = b + 8;
  for (int j = 0; j < 16; j++) {
    const int h0 = (int)(((qh >> j) << 4) & 0x10);
    const int h1 = (int)((qh >> (j + 12)) & 0x10);
    y[j] = (float)((qs[j] & 0xF) | h0) * d + m;
    y[j + 16] = (float)((qs[j] >> 4) | h1) * d + m;
  }
}

static void dq_q8_0(const uint8_t *b, float *y) {
  const float d = ld_f16(b);
  const int8_t *qs = (const int8_t *)(b + 2);
  for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

static void dq_q2_k(const uint8_t *b, float *y) { /* (256) */
  const uint8_t *scales = b, *q = b + 16;
  const float d = ld_f16(b + 80), dmin = ld_f16(b + 82);
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; half++) {
        const uint8_t sc = scales[is++];
        const float dl = d * (float)(sc & 0xF), ml = dmin * (float)(sc >> 4);
        for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

static void dq_q3_k(const uint8_t *b, float *y) {
  const uint8_t *hm = b, *q = b + 32;
  const float d = ld_f16(b + 108);
  int8_t sc[16];
  q3k_scales(b + 96, sc);
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; half++) {
        const float dl = d * (float)sc[is++];
        for (int l = 0; l < 16; l++) {
          const int i = l + 16 * half;
          const int v = ((q[i] >> shift) & 3) - ((hm[i] & m) ? 0 : 4);
          *y++ = dl * (float)v;
        }
      }
      m = (uint8_t)(m << 1);
    }
    q += 32;
  }
}

static void dq_q4_k(const uint8_t *b, float *y) {
  const float d = ld_f16(b), dmin = ld_f16(b + 2);
  const uint8_t *scales = b + 4, *q = b + 16;
  for (int j = 0; j < 8; j += 2) {
    uint8_t sc, m;
    k4_scale_min(j, scales, &sc, &m);
    const float d1 = d * (float)sc, m1 = dmin * (float)m;
    k4_scale_min(j + 1, scales, &sc, &m);
    const float d2 = d * (float)sc, m2 = dmin * (float)m;
    for (int l = 0; l < 32; l++) y[l] = d1 * (float)(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; l++) y[l + 32] = d2 * (float)(q[l] >> 4) - m2;
    y += 64;
    q += 32;
  }
}

static void dq_q5_k(const uint8_t *b, float *y) {
  const float d = ld_f16(b), dmin = ld_f16(b + 2);
  const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
  for (int j = 0; j < 8; j += 2) {
    uint8_t sc, m;
    k4_scale_min(j, scales, &sc, &m);
    const float d1 = d * (float)sc, m1 = dmin * (float)m;
    k4_scale_min(j + 1, scales, &sc, &m);
    const float d2 = d * (float)sc, m2 = dmin * (float)m;
    const uint8_t u1 = (uint8_t)(1u << j), u2 = (uint8_t)(2u << j);
    for (int l = 0; l < 32; l++) y[l] = d1 * (float)((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; l++) y[l + 32] = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    y += 64;
    ql += 32;
  }
}

static void dq_q6_k(const uint8_t *b, float *y) {
  const uint8_t *ql = b, *qh = b + 128;
  const int8_t *sc = (const int8_t *)(b + 192);
  const float d = ld_f16(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; l++) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * (float)sc[is + 0] * (float)q1;
      y[l + 32] = d * (float)sc[is + 2] * (float)q2;
      y[l + 64] = d * (float)sc[is + 4] * (float)q3;
      y[l + 96] = d * (float)sc[is + 6] * (float)q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

typedef void (*dq_block_fn)(const uint8_t *b, float *y);
static const dq_block_fn DQ_BLOCK[DT_COUNT] = {
  NULL, NULL, NULL, dq_q4_0, dq_q4_1, dq_q5_0, dq_q5_1, dq_q8_0,
  dq_q2_k, dq_q3_k, dq_q4_k, dq_q5_k, dq_q6_k,
};

void DEQUANT_ROW_FN(int dt, const uint8_t *src, long n, float *dst) {
  switch (dt) {
    case DT_F32:
      memcpy(dst, src, (size_t)n * 4);
      return;
    case DT_F16:
      K_ACTIVE->f16_to_f32((int)n, src, dst);
      return;
    case DT_BF16:
      for (long i = 0; i < n; i++) dst[i] = bf16_to_f32(ld_u16(src + 2 * i));
      return;
    default: {
      const dq_block_fn f = DQ_BLOCK[dt];
      const long bs = DT_BLOCK[dt], tb = DT_BYTES[dt];
      for (long i = 0; i < n / bs; i++) f(src + i * tb, dst + i * bs);
    }
  }
}
