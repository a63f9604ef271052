/*
 * Scalar integer dot products of quantized weight rows with int8-quantized activations (q8a,
 * common.h), and the scalar activation quantizer. This is the plain reference path beside
 * quant_dot_avx2.c; both compute, per 32-value activation block b with scale dx_b:
 *   Σ_b dx_b · (weight scale · Σ_i q_w[i]·q_x[i]  [+ weight min · Σ_i q_x[i]])
 * with the integer sums exact and the scaling in f32. It does not decode rows to f32
 * (quant_decode.c does).
 */
#include <math.h>
#include "common.h"
#include "quant_blocks.h"

void quantize_q8a_scalar(int K, const float *x, q8a_block *out) {
  for (int b = 0; b < K / QK; b++) {
    const float *xb = x + b * QK;
    float amax = 0.0f;
    for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < QK; i++) {
      const int q = (int)nearbyintf(xb[i] * id); /* round half to even (default rounding mode) */
      out[b].qs[i] = (int8_t)q;
      sum += q;
    }
    out[b].d = d;
    out[b].sum = sum;
  }
}

static float dot_q4_0(int K, const uint8_t *w, const q8a_block *xa) {
  float acc = 0.0f;
  for (int b = 0; b < K / 32; b++, w += 18) {
    const uint8_t *qs = w + 2;
    const int8_t *x = xa[b].qs;
    int32_t s = 0;
    for (int j = 0; j < 16; j++) s += ((qs[j] & 0xF) - 8) * x[j] + ((qs[j] >> 4) - 8) * x[j + 16];
    acc += ld_f16(w) * xa[b].d * (float)s;
  }
  return acc;
}

static float dot_q4_1(int K, const uint8_t *w, const q8a_block *xa) {
  float acc = 0.0f;
  for (int b = 0; b < K / 32; b++, w += 20) {
    const uint8_t *qs = w + 4;
    const int8_t *x = xa[b].qs;
    int32_t s = 0;
    for (int j = 0; j < 16; j++) s += (qs[j] & 0xF) * x[j] + (qs[j] >> 4) * x[j + 16];
    acc += ld_f16(w) * xa[b].d * (float)s + ld_f16(w + 2) * xa[b].d * (float)xa[b].sum;
  }
  return acc;
}

static float dot_q5_0(int K, const uint8_t *w, const q8a_block *xa) {
  float acc = 0.0f;
  for (int b = 0; b < K / 32; b++, w += 22) {
    const uint32_t qh = ld_u32(w + 2);
    const uint8_t *qs = w + 6;
    const int8_t *x = xa[b].qs;
    int32_t s = 0;
    for (int j = 0; j < 16; j++) {
      const int h0 = (int)(((qh >> j) << 4) & 0x10), h1 = (int)((qh >> (j + 12)) & 0x10);
      s += (((qs[j] & 0xF) | h0) - 16) * x[j] + (((qs[j] >> 4) | h1) - 16) * x[j + 16];
    }
    acc += ld_f16(w) * xa[b].d * (float)s;
  }
  return acc;
}

static float dot_q5_1(int K, const uint8_t *w, const q8a_block *xa) {
  float acc = 0.0f;
  for (int b = 0; b < K / 32; b++, w += 24) {
    const uint32_t qh = ld_u32(w + 4);
    const uint8_t *qs = w + 8;
    const int8_t *x = xa[b].qs;
    int32_t s = 0;
    for (int j = 0; j < 16; j++) {
      const int h0 = (int)(((qh >> j) << 4) & 0x10), h1 = (int)((qh >> (j + 12)) & 0x10);
      s += ((qs[j] & 0xF) | h0) * x[j] + ((qs[j] >> 4) | h1) * x[j + 16];
    }
    acc += ld_f16(w) * xa[b].d * (float)s + ld_f16(w + 2) * xa[b].d * (float)xa[b].sum;
  }
  return acc;
}

static float dot_q8_0(int K, const uint8_t *w, const q8a_block *xa) {
  float acc = 0.0f;
  for (int b = 0; b < K / 32; b++, w += 34) {
    const int8_t *qs = (const int8_t *)(w + 2);
    const int8_t *x = xa[b].qs;
    int32_t s = 0;
    for (int j = 0; j < 32; j++) s += qs[j] * x[j];
    acc += ld_f16(w) * xa[b].d * (float)s;
  }
  return acc;
}

/* Q2_K: activation block j (0..7) is 2-bit plane j%4 of qs[32·(j/4) ..]; scale bytes 2j, 2j+1
 * (low 4 bits scale, high 4 bits min) cover its two halves of 16 */
static float dot_q2_k(int K, const uint8_t *w, const q8a_block *xa) {
  float acc = 0.0f;
  for (int sb = 0; sb < K / 256; sb++, w += 84, xa += 8) {
    const uint8_t *sc = w;
    const float d = ld_f16(w + 80), dmin = ld_f16(w + 82);
    float sacc = 0.0f, macc = 0.0f;
    for (int j = 0; j < 8; j++) {
      const uint8_t *q = w + 16 + 32 * (j / 4);
      const int shift = 2 * (j % 4);
      const int8_t *x = xa[j].qs;
      int32_t s[2] = { 0, 0 }, xs[2] = { 0, 0 };
      for (int l = 0; l < 32; l++) {
        s[l / 16] += ((q[l] >> shift) & 3) * x[l];
        xs[l / 16] += x[l];
      }
      sacc += xa[j].d * (float)((sc[2 * j] & 15) * s[0] + (sc[2 * j + 1] & 15) * s[1]);
      macc += xa[j].d * (float)((sc[2 * j] >> 4) * xs[0] + (sc[2 * j + 1] >> 4) * xs[1]);
    }
    acc += d * sacc - dmin * macc;
  }
  return acc;
}

/* Q3_K: as Q2_K, minus 4 where bit j of hmask[l] is clear; 16 signed 6-bit scales */
static float dot_q3_k(int K, const uint8_t *w, const q8a_block *xa) {
  float acc = 0.0f;
  for (int sb = 0; sb < K / 256; sb++, w += 110, xa += 8) {
    int8_t sc[16];
    q3k_scales(w + 96, sc);
    const float d = ld_f16(w + 108);
    float sacc = 0.0f;
    for (int j = 0; j < 8; j++) {
      const uint8_t *q = w + 32 + 32 * (j / 4);
      const int shift = 2 * (j % 4);
      const int8_t *x = xa[j].qs;
      int32_t s[2] = { 0, 0 };
      for (int l = 0; l < 32; l++) s[l / 16] += (((q[l] >> shift) & 3) - (((w[l] >> j) & 1) ? 0 : 4)) * x[l];
      sacc += xa[j].d * (float)(sc[2 * j] * s[0] + sc[2 * j + 1] * s[1]);
    }
    acc += d * sacc;
  }
  return acc;
}

/* Q4_K and Q5_K: 8 sub-blocks of 32 per super-block, each with a 6-bit scale and min */
static float dot_q45_k(int K, const uint8_t *w, const q8a_block *xa, int five) {
  const int tb = five ? 176 : 144;
  float acc = 0.0f;
  for (int sb = 0; sb < K / 256; sb++, w += tb, xa += 8) {
    const float d = ld_f16(w), dmin = ld_f16(w + 2);
    const uint8_t *scales = w + 4;
    const uint8_t *qh = w + 16, *ql = w + (five ? 48 : 16);
    float sacc = 0.0f, macc = 0.0f;
    for (int j = 0; j < 8; j++) {
      uint8_t sc, m;
      k4_scale_min(j, scales, &sc, &m);
      const uint8_t *q = ql + 32 * (j / 2);
      const int shift = 4 * (j & 1);
      const int8_t *x = xa[j].qs;
      int32_t s = 0;
      for (int l = 0; l < 32; l++) {
        int v = (q[l] >> shift) & 0xF;
        if (five && (qh[l] >> j) & 1) v += 16;
        s += v * x[l];
      }
      sacc += xa[j].d * (float)(sc * s);
      macc += xa[j].d * (float)(m * xa[j].sum);
    }
    acc += d * sacc - dmin * macc;
  }
  return acc;
}
static float dot_q4_k(int K, const uint8_t *w, const q8a_block *xa) { return dot_q45_k(K, w, xa, 0); }
static float dot_q5_k(int K, const uint8_t *w, const q8a_block *xa) { return dot_q45_k(K, w, xa, 1); }

/* Q6_K: activation block j (0..7) is half h = j/4, quarter qq = j%4; scales 2j and 2j+1 */
static float dot_q6_k(int K, const uint8_t *w, const q8a_block *xa) {
  float acc = 0.0f;
  for (int sb = 0; sb < K / 256; sb++, w += 210, xa += 8) {
    const int8_t *sc = (const int8_t *)(w + 192);
    const float d = ld_f16(w + 208);
    float sacc = 0.0f;
    for (int j = 0; j < 8; j++) {
      const int h = j / 4, qq = j % 4;
      const uint8_t *ql = w + 64 * h + 32 * (qq & 1), *qh = w + 128 + 32 * h;
      const int lshift = 4 * (qq >> 1), hshift = 2 * qq;
      const int8_t *x = xa[j].qs;
      int32_t s0 = 0, s1 = 0;
      for (int l = 0; l < 32; l++) {
        const int v = (((ql[l] >> lshift) & 0xF) | (((qh[l] >> hshift) & 3) << 4)) - 32;
        if (l < 16) s0 += v * x[l]; else s1 += v * x[l];
      }
      sacc += xa[j].d * (float)(sc[2 * j] * s0 + sc[2 * j + 1] * s1);
    }
    acc += d * sacc;
  }
  return acc;
}

void q8_dots_scalar(kernels_t *k) {
  k->quantize_q8a = quantize_q8a_scalar;
  for (int i = 0; i < DT_COUNT; i++) k->q8_dot[i] = NULL;
  k->q8_dot[DT_Q4_0] = dot_q4_0;
  k->q8_dot[DT_Q4_1] = dot_q4_1;
  k->q8_dot[DT_Q5_0] = dot_q5_0;
  k->q8_dot[DT_Q5_1] = dot_q5_1;
  k->q8_dot[DT_Q8_0] = dot_q8_0;
  k->q8_dot[DT_Q2_K] = dot_q2_k;
  k->q8_dot[DT_Q3_K] = dot_q3_k;
  k->q8_dot[DT_Q4_K] = dot_q4_k;
  k->q8_dot[DT_Q5_K] = dot_q5_k;
  k->q8_dot[DT_Q6_K] = dot_q6_k;
}
