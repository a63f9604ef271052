/*
 * AVX2 integer dot products of quantized weight rows with q8a activations, and the AVX2
 * activation quantizer (compiled with -mavx2 -mfma -mf16c). Same results as the scalar twins in
 * quant_dot.c up to f32 summation order; integer partial sums are exact. Weight bytes are read
 * with unaligned loads: blocks of 18/20/22/34 bytes are never aligned. Two blocks per iteration
 * (two accumulators, or one register holding both blocks' nibbles) keep the FMA latency chain
 * off the critical path.
 */
#include "common.h"
#include "quant_blocks.h"
#include "simd_avx2.h"

static void quantize_q8a_avx2(int K, const float *x, q8a_block *out) {
  const __m256 signbit = _mm256_set1_ps(-0.0f);
  for (int b = 0; b < K / QK; b++) {
    const float *xb = x + b * QK;
    __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
    __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signbit, v0), _mm256_andnot_ps(signbit, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(signbit, v2), _mm256_andnot_ps(signbit, v3)));
    const float amax = hmax256(m);
    const float d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const int rnd = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC; /* half to even, like nearbyintf */
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), rnd));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), rnd));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), rnd));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), rnd));
    out[b].sum = hsum256_i32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    /* packs interleave the 128-bit lanes; the final permute restores element order */
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    const __m256i q = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)out[b].qs, q);
    out[b].d = d;
  }
}

static inline __m256i load_x(const q8a_block *xa) { return _mm256_loadu_si256((const __m256i *)xa->qs); }

/*
 * The nibble formats (Q4_0, Q4_1, Q5_0, Q5_1) go two blocks at a time: the 16 packed bytes of
 * blocks b and b+1 share one register, so one mask and one shift unpack both, and the activations
 * are regrouped to match (values 0..15 of both blocks, then 16..31). Lanes 0..3 of the sums then
 * belong to block b, lanes 4..7 to b+1. Values are unsigned (0..15 / 0..31); the offset of
 * Q4_0 / Q5_0 (−8 / −16) is applied as −offset · d · d_x · Σ q_x per block.
 */
static inline __m256 pair_sums(__m256i lo, __m256i hi, const q8a_block *xb0, const q8a_block *xb1) {
  const __m256i x0 = load_x(xb0), x1 = load_x(xb1);
  const __m256i xlo = _mm256_permute2x128_si256(x0, x1, 0x20); /* x0[0..15]  | x1[0..15]  */
  const __m256i xhi = _mm256_permute2x128_si256(x0, x1, 0x31); /* x0[16..31] | x1[16..31] */
  /* each maddubs pair is at most 2·31·127, so adding the two stays inside int16 */
  const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
}

/* nibbles of two blocks: lo = values 0..15 of both, hi = values 16..31 of both */
static inline void nibble_pair(const uint8_t *qs0, const uint8_t *qs1, __m256i *lo, __m256i *hi) {
  const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)qs0)),
                                            _mm_loadu_si128((const __m128i *)qs1), 1);
  const __m256i m = _mm256_set1_epi8(0x0F);
  *lo = _mm256_and_si256(v, m);
  *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
}

/* adds the 5th bits of two blocks (qh words h0, h1) as 16 to the nibble pair */
static inline void fifth_bits(uint32_t h0, uint32_t h1, __m256i *lo, __m256i *hi) {
  const __m256i sixteen = _mm256_set1_epi8(16);
  *lo = _mm256_or_si256(*lo, _mm256_and_si256(bits_to_bytes((h0 & 0xFFFFu) | (h1 << 16)), sixteen));
  *hi = _mm256_or_si256(*hi, _mm256_and_si256(bits_to_bytes((h0 >> 16) | (h1 & 0xFFFF0000u)), sixteen));
}

/*
 * One row of a nibble format: TB bytes per block, scale at +0, min (if HAS_MIN) at +2, qh (if
 * QH_AT ≥ 0) at +QH_AT, nibbles at +QS_AT; OFFSET subtracted from every value.
 */
static inline float nibble_row(int K, const uint8_t *w, const q8a_block *xa, int TB, int QS_AT, int QH_AT,
                               int HAS_MIN, float OFFSET) {
  __m256 acc = _mm256_setzero_ps();
  float extra = 0.0f;
  const int nb = K / 32;
  for (int b = 0; b + 2 <= nb; b += 2, w += 2 * TB) {
    __m256i lo, hi;
    nibble_pair(w + QS_AT, w + TB + QS_AT, &lo, &hi);
    if (QH_AT >= 0) fifth_bits(ld_u32(w + QH_AT), ld_u32(w + TB + QH_AT), &lo, &hi);
    const float s0 = f16c_at(w) * xa[b].d, s1 = f16c_at(w + TB) * xa[b + 1].d;
    acc = _mm256_fmadd_ps(halves(s0, s1), pair_sums(lo, hi, xa + b, xa + b + 1), acc);
    if (HAS_MIN) extra += f16c_at(w + 2) * xa[b].d * (float)xa[b].sum + f16c_at(w + TB + 2) * xa[b + 1].d * (float)xa[b + 1].sum;
    else extra -= OFFSET * (s0 * (float)xa[b].sum + s1 * (float)xa[b + 1].sum);
  }
  if (nb & 1) { /* a last odd block: pair it with itself and keep half of the lanes */
    const int b = nb - 1;
    __m256i lo, hi;
    nibble_pair(w + QS_AT, w + QS_AT, &lo, &hi);
    if (QH_AT >= 0) fifth_bits(ld_u32(w + QH_AT), ld_u32(w + QH_AT), &lo, &hi);
    const float s0 = f16c_at(w) * xa[b].d;
    acc = _mm256_fmadd_ps(halves(s0, 0.0f), pair_sums(lo, hi, xa + b, xa + b), acc);
    if (HAS_MIN) extra += f16c_at(w + 2) * xa[b].d * (float)xa[b].sum;
    else extra -= OFFSET * s0 * (float)xa[b].sum;
  }
  return hsum256(acc) + extra;
}

static float dot_q4_0_avx2(int K, const uint8_t *w, const q8a_block *xa) { return nibble_row(K, w, xa, 18, 2, -1, 0, 8.0f); }
static float dot_q4_1_avx2(int K, const uint8_t *w, const q8a_block *xa) { return nibble_row(K, w, xa, 20, 4, -1, 1, 0.0f); }
static float dot_q5_0_avx2(int K, const uint8_t *w, const q8a_block *xa) { return nibble_row(K, w, xa, 22, 6, 2, 0, 16.0f); }
static float dot_q5_1_avx2(int K, const uint8_t *w, const q8a_block *xa) { return nibble_row(K, w, xa, 24, 8, 4, 1, 0.0f); }

/* Q8_0: signed bytes as they are; two blocks per iteration on two accumulators */
static float dot_q8_0_avx2(int K, const uint8_t *w, const q8a_block *xa) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  const int nb = K / 32;
  int b = 0;
  for (; b + 2 <= nb; b += 2, w += 68) {
    const __m256i q0 = _mm256_loadu_si256((const __m256i *)(w + 2)), q1 = _mm256_loadu_si256((const __m256i *)(w + 36));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16c_at(w) * xa[b].d), _mm256_cvtepi32_ps(dot_i8i8(q0, load_x(&xa[b]))), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16c_at(w + 34) * xa[b + 1].d), _mm256_cvtepi32_ps(dot_i8i8(q1, load_x(&xa[b + 1]))), acc1);
  }
  if (b < nb) {
    const __m256i q0 = _mm256_loadu_si256((const __m256i *)(w + 2));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16c_at(w) * xa[b].d), _mm256_cvtepi32_ps(dot_i8i8(q0, load_x(&xa[b]))), acc0);
  }
  return hsum256(_mm256_add_ps(acc0, acc1));
}

/* Q2_K: activation block j is 2-bit plane j%4 of bytes 32·(j/4); scales[2j], [2j+1] (lo 4 bits
 * scale, hi 4 bits min) cover its two halves of 16 */
static float dot_q2_k_avx2(int K, const uint8_t *w, const q8a_block *xa) {
  const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi8(1);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  for (int sb = 0; sb < K / 256; sb++, w += 84, xa += 8) {
    const uint8_t *sc = w;
    const float d = f16c_at(w + 80), dmin = f16c_at(w + 82);
    for (int j = 0; j < 8; j++) {
      const __m256i qb = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * (j / 4)));
      const __m256i q = _mm256_and_si256(_mm256_srl_epi16(qb, _mm_cvtsi32_si128(2 * (j % 4))), m3);
      const __m256i x = load_x(&xa[j]);
      const __m256 s = _mm256_cvtepi32_ps(dot_u8i8(q, x)), xs = _mm256_cvtepi32_ps(dot_u8i8(ones, x));
      const float dd = d * xa[j].d, dm = dmin * xa[j].d;
      acc0 = _mm256_fmadd_ps(halves(dd * (float)(sc[2 * j] & 15), dd * (float)(sc[2 * j + 1] & 15)), s, acc0);
      acc1 = _mm256_fnmadd_ps(halves(dm * (float)(sc[2 * j] >> 4), dm * (float)(sc[2 * j + 1] >> 4)), xs, acc1);
    }
  }
  return hsum256(_mm256_add_ps(acc0, acc1));
}

/* Q3_K: like Q2_K, plus the hmask bit j of byte l (clear bit: subtract 4); signed scales */
static float dot_q3_k_avx2(int K, const uint8_t *w, const q8a_block *xa) {
  const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1), four = _mm256_set1_epi8(4);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  for (int sb = 0; sb < K / 256; sb++, w += 110, xa += 8) {
    int8_t sc[16];
    q3k_scales(w + 96, sc);
    const float d = f16c_at(w + 108);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)w);
    for (int j = 0; j < 8; j++) {
      const __m256i qb = _mm256_loadu_si256((const __m256i *)(w + 32 + 32 * (j / 4)));
      const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(qb, _mm_cvtsi32_si128(2 * (j % 4))), m3);
      const __m256i hb = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(j)), one);
      const __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hb, 2)), four); /* -4..3 */
      const __m256 s = _mm256_cvtepi32_ps(dot_i8i8(q, load_x(&xa[j])));
      const float dd = d * xa[j].d;
      const __m256 scale = halves(dd * (float)sc[2 * j], dd * (float)sc[2 * j + 1]);
      if (j & 1) acc1 = _mm256_fmadd_ps(scale, s, acc1); else acc0 = _mm256_fmadd_ps(scale, s, acc0);
    }
  }
  return hsum256(_mm256_add_ps(acc0, acc1));
}

/* Q4_K / Q5_K: sub-block j uses bytes 32·(j/2) of the nibbles, low half if j even, and qh bit j */
static inline float dot_q45_k_avx2(int K, const uint8_t *w, const q8a_block *xa, int five) {
  const int tb = five ? 176 : 144;
  const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  float macc = 0.0f;
  for (int sb = 0; sb < K / 256; sb++, w += tb, xa += 8) {
    const float d = f16c_at(w), dmin = f16c_at(w + 2);
    const uint8_t *scales = w + 4, *ql = w + (five ? 48 : 16);
    const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(w + 16)) : _mm256_setzero_si256();
    float msb = 0.0f;
    for (int j = 0; j < 8; j += 2) {
      const __m256i bytes = _mm256_loadu_si256((const __m256i *)(ql + 16 * j));
      __m256i lo = _mm256_and_si256(bytes, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
      if (five) {
        const __m256i b0 = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)); /* bit j of each byte → bit 0 */
        const __m256i b1 = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(j + 1));
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(b0, one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(b1, one), 4));
      }
      uint8_t sc0, m0, sc1, m1;
      k4_scale_min(j, scales, &sc0, &m0);
      k4_scale_min(j + 1, scales, &sc1, &m1);
      const __m256i s0 = dot_u8i8(lo, load_x(&xa[j])), s1 = dot_u8i8(hi, load_x(&xa[j + 1]));
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc0 * xa[j].d), _mm256_cvtepi32_ps(s0), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc1 * xa[j + 1].d), _mm256_cvtepi32_ps(s1), acc1);
      msb += xa[j].d * (float)(m0 * xa[j].sum) + xa[j + 1].d * (float)(m1 * xa[j + 1].sum);
    }
    macc += dmin * msb;
  }
  return hsum256(_mm256_add_ps(acc0, acc1)) - macc;
}
static float dot_q4_k_avx2(int K, const uint8_t *w, const q8a_block *xa) { return dot_q45_k_avx2(K, w, xa, 0); }
static float dot_q5_k_avx2(int K, const uint8_t *w, const q8a_block *xa) { return dot_q45_k_avx2(K, w, xa, 1); }

/* Q6_K: activation block j = (half h, quarter qq); scales 2j (bytes 0..15) and 2j+1 (16..31) */
static float dot_q6_k_avx2(int K, const uint8_t *w, const q8a_block *xa) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  for (int sb = 0; sb < K / 256; sb++, w += 210, xa += 8) {
    const int8_t *sc = (const int8_t *)(w + 192);
    const float d = f16c_at(w + 208);
    for (int h = 0; h < 2; h++) {
      const __m256i qh = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h));
      const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(w + 64 * h));
      const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32));
      for (int qq = 0; qq < 4; qq++) {
        const int j = 4 * h + qq;
        const __m256i ql = qq & 1 ? ql1 : ql0;
        const __m256i lo = _mm256_and_si256(qq >> 1 ? _mm256_srli_epi16(ql, 4) : ql, m4);
        const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * qq)), m2), 4);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, hi), off);
        const __m256 s = _mm256_cvtepi32_ps(dot_i8i8(q, load_x(&xa[j])));
        const float dd = d * xa[j].d;
        const __m256 scale = halves(dd * (float)sc[2 * j], dd * (float)sc[2 * j + 1]);
        if (qq & 1) acc1 = _mm256_fmadd_ps(scale, s, acc1); else acc0 = _mm256_fmadd_ps(scale, s, acc0);
      }
    }
  }
  return hsum256(_mm256_add_ps(acc0, acc1));
}

void q8_dots_avx2(kernels_t *k) {
  k->quantize_q8a = quantize_q8a_avx2;
  k->q8_dot[DT_Q4_0] = dot_q4_0_avx2;
  k->q8_dot[DT_Q4_1] = dot_q4_1_avx2;
  k->q8_dot[DT_Q5_0] = dot_q5_0_avx2;
  k->q8_dot[DT_Q5_1] = dot_q5_1_avx2;
  k->q8_dot[DT_Q8_0] = dot_q8_0_avx2;
  k->q8_dot[DT_Q2_K] = dot_q2_k_avx2;
  k->q8_dot[DT_Q3_K] = dot_q3_k_avx2;
  k->q8_dot[DT_Q4_K] = dot_q4_k_avx2;
  k->q8_dot[DT_Q5_K] = dot_q5_k_avx2;
  k->q8_dot[DT_Q6_K] = dot_q6_k_avx2;
}
