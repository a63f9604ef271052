/*
 * Byte offsets inside ggml's quantized blocks and the K-quant scale unpacking, shared by the
 * decoder (quant_decode.c) and the integer dot products (quant_dot.c, quant_dot_avx2.c).
 *
 * Layouts (bytes; "f16" = IEEE half, little-endian):
 *   Q4_0 (18):  d f16 | qs[16]               value j: (qs[j] & 15) - 8, value j+16: (qs[j] >> 4) - 8
 *   Q4_1 (20):  d f16 | m f16 | qs[16]       value = d·q + m, q as Q4_0 without the -8
 *   Q5_0 (22):  d f16 | qh u32 | qs[16]      5th bit of value j: qh bit j, of value j+16: bit j+16; -16
 *   Q5_1 (24):  d f16 | m f16 | qh u32 | qs[16]
 *   Q8_0 (34):  d f16 | qs[32] int8
 *   Q2_K (84):  scales[16] (lo 4 bits scale, hi 4 bits min) | qs[64] 2-bit | d f16 | dmin f16
 *   Q3_K (110): hmask[32] | qs[64] 2-bit | scales[12] (16 packed 6-bit) | d f16
 *   Q4_K (144): d f16 | dmin f16 | scales[12] (8 scales + 8 mins, 6-bit) | qs[128]
 *   Q5_K (176): d f16 | dmin f16 | scales[12] | qh[32] | qs[128]
 *   Q6_K (210): ql[128] | qh[64] | scales[16] int8 | d f16
 * This header does no arithmetic beyond unpacking the packed scale bytes.
 */
#ifndef LLAMA2_NATIVE_QUANT_BLOCKS_H
#define LLAMA2_NATIVE_QUANT_BLOCKS_H

#include <stdint.h>
#include <string.h>

/* Q4_K / Q5_K: scale and min of sub-block j (0..7) from the 12 packed bytes */
static inline void k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

/* Q3_K: the 16 signed 6-bit scales (already minus 32) from the 12 packed bytes */
static inline void q3k_scales(const uint8_t *packed, int8_t out[16]) {
  const uint32_t kmask1 = 0x03030303u, kmask2 = 0x0f0f0f0fu;
  uint32_t aux[4];
  memcpy(aux, packed, 12);
  uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  uint8_t raw[16];
  memcpy(raw, aux, 16);
  for (int i = 0; i < 16; i++) out[i] = (int8_t)(raw[i] - 32);
}

#endif
