/*
 * Q4_0, Q8_0 and Q4_K weights regrouped by eight rows (DT_Q4_0X8, DT_Q8_0X8, DT_Q4_KX8; layouts
 * in common.h) for the decode and prefill kernels: with the 8 rows of a group side by side in each 32-byte chunk, one maddubs multiplies
 * 4 values of all 8 rows by the same 4 activations, and a block ends with one FMA for 8 rows and
 * no horizontal sums (about half the instructions per weight byte of the row-at-a-time kernels,
 * which made them compute-bound at ~15 GB/s per core). The nibble bytes are not changed, only
 * moved: chunk c of block b holds bytes 4c..4c+3 of each row's block b, so chunk c's low nibbles
 * are values 4c..4c+3 of the 8 rows and its high nibbles values 16+4c..16+4c+3. Q8_0 has 8 such
 * chunks of int8 values per block (chunk c: values 4c..4c+3). Q4_K keeps its super-blocks but
 * stores the 8 rows' 6-bit scales and mins unpacked, one byte each, rows side by side.
 *
 * Here: the repacking (x8_repack, q4_kx8_repack) and the scalar kernels (the reference for the
 * ISA ones, and what every ISA without its own uses). The engine decides what to regroup and
 * keeps the copies (addon_engine.c, engine.c).
 *
 * Legend: N = rows (a multiple of 8), K = values per row, nb = K/32 blocks, g = group of 8 rows.
 */
#include "native.h"
#include "quant_blocks.h"

#define X8_BLOCK 144 /* bytes of one Q4_0 block of 8 rows: 8 f16 scales + 128 nibble bytes */

/* rows [g0·8, g1·8) of src (N, K), dtype DT_Q4_0 or DT_Q8_0 → the same byte range of dst in
 * that dtype's X8 layout */
void x8_repack(int dt, const uint8_t *src, uint8_t *dst, int K, int g0, int g1) {
  const int nb = K / 32, TB = DT_BYTES[dt], chunks = (TB - 2) / 4; /* 4 (Q4_0) or 8 (Q8_0) */
  const size_t rb = (size_t)nb * TB, gb = 8 * rb; /* bytes per row, per group */
  for (int g = g0; g < g1; g++) {
    const uint8_t *s = src + (size_t)g * gb;
    uint8_t *d = dst + (size_t)g * gb;
    for (int b = 0; b < nb; b++, d += 8 * TB) {
      for (int r = 0; r < 8; r++) {
        const uint8_t *blk = s + (size_t)r * rb + (size_t)TB * b;
        d[2 * r] = blk[0];
        d[2 * r + 1] = blk[1];
        for (int c = 0; c < chunks; c++) memcpy(d + 16 + 32 * c + 4 * r, blk + 2 + 4 * c, 4);
      }
    }
  }
}

/* rows [g0·8, g1·8) of src (N, K) Q4_K → dst (N, K) DT_Q4_KX8 (148 bytes per row per 256 values) */
void q4_kx8_repack(const uint8_t *src, uint8_t *dst, int K, int g0, int g1) {
  const int nsb = K / 256;
  const size_t rb = (size_t)nsb * 144;
  for (int g = g0; g < g1; g++) {
    const uint8_t *s = src + (size_t)g * 8 * rb;
    uint8_t *d = dst + (size_t)g * 8 * (size_t)nsb * 148;
    for (int sb = 0; sb < nsb; sb++, d += 1184) {
      for (int r = 0; r < 8; r++) {
        const uint8_t *blk = s + (size_t)r * rb + 144 * (size_t)sb;
        memcpy(d + 2 * r, blk, 2);          /* d */
        memcpy(d + 16 + 2 * r, blk + 2, 2); /* dmin */
        for (int j = 0; j < 8; j++) k4_scale_min(j, blk + 4, d + 32 + 8 * j + r, d + 96 + 8 * j + r);
        for (int m = 0; m < 4; m++)
          for (int c = 0; c < 8; c++) memcpy(d + 160 + 256 * m + 32 * c + 4 * r, blk + 16 + 32 * m + 4 * c, 4);
      }
    }
  }
}

/*
 * q8_rows_fn for DT_Q4_0X8 (w at a group boundary, R a multiple of 8): per row, block and token
 * the integer dot Σ (q − 8)·q_x, then d_w·d_x·dot summed in f32, the same values as the Q4_0
 * row kernels up to the f32 summation order.
 */
static void rows_q4_0x8_scalar(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y,
                               long ldy, int acc) {
  (void)rb;
  const int nb = K / 32;
  for (int g = 0; g < R / 8; g++) {
    const uint8_t *grp = w + (size_t)g * 8 * nb * 18;
    for (int t = 0; t < T; t++) {
      float sum[8] = { 0 };
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * X8_BLOCK;
        const q8a_block *xb = &x->xa[(long)t * nb + b];
        for (int r = 0; r < 8; r++) {
          int32_t dot = 0;
          for (int c = 0; c < 4; c++)
            for (int i = 0; i < 4; i++) {
              const uint8_t q = blk[16 + 32 * c + 4 * r + i];
              dot += ((q & 0x0F) - 8) * xb->qs[4 * c + i] + ((q >> 4) - 8) * xb->qs[16 + 4 * c + i];
            }
          sum[r] += ld_f16(blk + 2 * r) * xb->d * (float)dot;
        }
      }
      float *yt = y + (long)t * ldy + 8 * g;
      for (int r = 0; r < 8; r++) yt[r] = acc ? yt[r] + sum[r] : sum[r];
    }
  }
}

/* the same for DT_Q8_0X8: Σ w·q_x per row and block */
static void rows_q8_0x8_scalar(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y,
                               long ldy, int acc) {
  (void)rb;
  const int nb = K / 32;
  for (int g = 0; g < R / 8; g++) {
    const uint8_t *grp = w + (size_t)g * 8 * nb * 34;
    for (int t = 0; t < T; t++) {
      float sum[8] = { 0 };
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * 272;
        const q8a_block *xb = &x->xa[(long)t * nb + b];
        for (int r = 0; r < 8; r++) {
          int32_t dot = 0;
          for (int c = 0; c < 8; c++)
            for (int i = 0; i < 4; i++) dot += (int8_t)blk[16 + 32 * c + 4 * r + i] * xb->qs[4 * c + i];
          sum[r] += ld_f16(blk + 2 * r) * xb->d * (float)dot;
        }
      }
      float *yt = y + (long)t * ldy + 8 * g;
      for (int r = 0; r < 8; r++) yt[r] = acc ? yt[r] + sum[r] : sum[r];
    }
  }
}

/* the same for DT_Q4_KX8, in the order of quant_dot.c's Q4_K dot: per super-block and row,
 * d·Σ_j d_x·sc_j·Σ q·q_x − dmin·Σ_j d_x·m_j·Σ q_x */
static void rows_q4_kx8_scalar(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y,
                               long ldy, int acc) {
  (void)rb;
  const int nsb = K / 256, nb = K / 32;
  for (int g = 0; g < R / 8; g++) {
    const uint8_t *grp = w + (size_t)g * 8 * nsb * 148;
    for (int t = 0; t < T; t++) {
      float sum[8] = { 0 };
      for (int sb = 0; sb < nsb; sb++) {
        const uint8_t *blk = grp + (size_t)sb * 1184;
        for (int r = 0; r < 8; r++) {
          float sacc = 0.0f, macc = 0.0f;
          for (int j = 0; j < 8; j++) {
            const q8a_block *xb = &x->xa[(long)t * nb + 8 * sb + j];
            int32_t dot = 0;
            for (int c = 0; c < 8; c++)
              for (int i = 0; i < 4; i++) {
                const uint8_t q = blk[160 + 256 * (j / 2) + 32 * c + 4 * r + i];
                dot += (j & 1 ? q >> 4 : q & 0x0F) * xb->qs[4 * c + i];
              }
            sacc += xb->d * (float)(blk[32 + 8 * j + r] * dot);
            macc += xb->d * (float)(blk[96 + 8 * j + r] * xb->sum);
          }
          sum[r] += ld_f16(blk + 2 * r) * sacc - ld_f16(blk + 16 + 2 * r) * macc;
        }
      }
      float *yt = y + (long)t * ldy + 8 * g;
      for (int r = 0; r < 8; r++) yt[r] = acc ? yt[r] + sum[r] : sum[r];
    }
  }
}

void x8_scalar(kernels_t *k) {
  /* rows are interleaved: no single-row dots */
  k->q8_rows[DT_Q4_0X8] = rows_q4_0x8_scalar;
  k->q8_dot[DT_Q4_0X8] = NULL;
  k->q8_rows[DT_Q8_0X8] = rows_q8_0x8_scalar;
  k->q8_dot[DT_Q8_0X8] = NULL;
  k->q8_rows[DT_Q4_KX8] = rows_q4_kx8_scalar;
  k->q8_dot[DT_Q4_KX8] = NULL;
}
