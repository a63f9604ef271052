/*
 * AVX-512 VNNI kernels (vpdpbusd) for the eight-row regrouped Q8_0, Q4_0 and Q4_K layouts
 * (DT_Q8_0X8, DT_Q4_0X8, DT_Q4_KX8: common.h, repack.c) against any number of activation rows.
 * With several rows (batched decoding: one token of each of B sequences; prefill) the AVX2
 * kernels (quant_mm_avx2.c x8q8_group, x8_group, x8q4k_group) are compute-bound, and even one
 * sequence's Q8_0 / Q4_0 decode on one thread ran 15–40% faster this way on the development
 * machine (AMD EPYC, Zen 4). Compiled with -mavx512vnni -mavx512vl -mavx512f -mavx2 -mfma -mf16c;
 * kernels_avx512.c installs them only on a CPU with VNNI and VL.
 *
 *   Q8_0X8: activations are made unsigned once per call (u = x + 128, a byte flip), then per
 *           32-byte chunk and token one vpdpbusd adds Σ u·w of 4 values × 8 rows into int32 lanes
 *           (no int16 saturation, no sign juggling: AVX2 needs sign, sign, maddubs, madd, add);
 *           Σ x·w = Σ u·w − 128·Σ w, where Σ w per row and block is one vpdpbusd per chunk
 *           shared by all tokens.
 *   Q4_0X8: nibbles are already unsigned: per chunk and token two vpdpbusd (low, high nibbles)
 *           against the signed activations; the −8 offset is −8·Σ x as in the AVX2 kernel.
 *   Q4_KX8: per sub-block and token one vpdpbusd per chunk into int32, then the AVX2 kernel's
 *           float steps (scales, mins); prefill and batched rows only, decode stays AVX2.
 * One group (8 rows) fills a 256-bit register; for T ≥ 2 two groups share a 512-bit one (the
 * *_pair kernels: half the instructions per weight byte, +15–30% on prefill at 1 thread).
 * Integer sums are exact and the f32 steps are the AVX2 kernels', in the same order, so Q8_0 /
 * Q4_0 results are bit for bit theirs (the AVX2 kernels remain the fallback when scratch memory
 * runs out); Q4_K ones too at T < 8 (see q4k_pair).
 *
 * Legend: R = weight rows (groups of 8), T = activation rows (tokens), nb = 32-value blocks per
 * row, nsb = 256-value super-blocks per row (Q4_K), gb = bytes per group of 8 rows.
 */
#include <immintrin.h>
#include "native.h"

#define TILE 8 /* tokens that share one pass over a group's blocks */
#define PREFETCH_AHEAD 8192 /* bytes ahead of the super-block in use (Q4_KX8: groups stream by whole) */

static q8_rows_fn g_avx2[DT_COUNT]; /* the AVX2 kernels (fallback) */

static inline void put8(float *y, __m256 v, int acc) {
  _mm256_storeu_ps(y, acc ? _mm256_add_ps(_mm256_loadu_ps(y), v) : v);
}

static inline __m256i bcast4(const uint8_t *p) {
  int32_t f;
  memcpy(&f, p, 4);
  return _mm256_set1_epi32(f);
}

/* the activations as unsigned bytes u = x + 128 (T, K) into the calling thread's scratch */
static const uint8_t *unsigned_x(const q8a_rows *x, int T) {
  const int nb = x->nb;
  uint8_t *u = scratch_get(2, (size_t)T * nb * QK);
  if (!u) return NULL;
  const __m256i flip = _mm256_set1_epi8((char)0x80);
  for (long i = 0; i < (long)T * nb; i++)
    _mm256_storeu_si256((__m256i *)(u + i * QK), _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)x->xa[i].qs), flip));
  return u;
}

/* one group of 8 Q8_0X8 rows × NT tokens from t (the sums of x8q8_group, in its order) */
static inline __attribute__((always_inline)) void q8_group(const int NT, const uint8_t *grp, int nb, const uint8_t *u,
                                                           const q8a_rows *x, int t, float *y, long ldy, int acc) {
  const __m256i ones = _mm256_set1_epi8(1), zero = _mm256_setzero_si256();
  __m256 a[TILE];
  for (int j = 0; j < NT; j++) a[j] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = grp + 272 * (size_t)b;
    __m256i s[TILE], ws = zero;
    for (int j = 0; j < NT; j++) s[j] = zero;
    for (int c = 0; c < 8; c++) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
      ws = _mm256_dpbusd_epi32(ws, ones, v);
      for (int j = 0; j < NT; j++) s[j] = _mm256_dpbusd_epi32(s[j], bcast4(u + ((long)(t + j) * nb + b) * QK + 4 * c), v);
    }
    const __m256i w128 = _mm256_slli_epi32(ws, 7);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    for (int j = 0; j < NT; j++) {
      const q8a_block *xb = &x->xa[(long)(t + j) * nb + b];
      a[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(s[j], w128)), _mm256_mul_ps(dw, _mm256_broadcast_ss(&xb->d)), a[j]);
    }
  }
  for (int j = 0; j < NT; j++) put8(y + (long)j * ldy, a[j], acc);
}

/* one group of 8 Q4_0X8 rows × NT tokens from t (the sums of x8_group, in its order) */
static inline __attribute__((always_inline)) void q4_group(const int NT, const uint8_t *grp, int nb, const q8a_rows *x,
                                                           int t, float *y, long ldy, int acc) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
  __m256 a[TILE];
  for (int j = 0; j < NT; j++) a[j] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = grp + 144 * (size_t)b;
    __m256i s[TILE];
    for (int j = 0; j < NT; j++) s[j] = zero;
    for (int c = 0; c < 4; c++) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
      const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      for (int j = 0; j < NT; j++) {
        const uint8_t *qs = (const uint8_t *)x->xa[(long)(t + j) * nb + b].qs;
        s[j] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(s[j], lo, bcast4(qs + 4 * c)), hi, bcast4(qs + 16 + 4 * c));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    for (int j = 0; j < NT; j++) {
      const q8a_block *xb = &x->xa[(long)(t + j) * nb + b];
      const __m256i i32 = _mm256_sub_epi32(s[j], _mm256_set1_epi32(8 * xb->sum));
      a[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(dw, _mm256_broadcast_ss(&xb->d)), a[j]);
    }
  }
  for (int j = 0; j < NT; j++) put8(y + (long)j * ldy, a[j], acc);
}

/*
 * The same sums for two groups at once (16 rows) in 512-bit registers: group g in the low half,
 * group g+1 in the high half, so each lane does exactly the float steps of q4_group / q8_group
 * (bit for bit theirs), with half the instructions per weight byte: one broadcast of 4 activation
 * bytes and one vpdpbusd serve 16 rows. Pair tiles run for T ≥ 2 (at T = 1 decode streams the
 * weights from DRAM and the one-group kernels already keep up).
 */
static inline __m512i pair_load(const uint8_t *p0, const uint8_t *p1) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p0)), _mm256_loadu_si256((const __m256i *)p1), 1);
}

/* the 16 rows' f16 scales of block b of groups g, g+1 (16 bytes each at the block's start) as f32 */
static inline __m512 pair_scales(const uint8_t *p0, const uint8_t *p1) {
  const __m256i h = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)), _mm_loadu_si128((const __m128i *)p1), 1);
  return _mm512_cvtph_ps(h);
}

static inline void put16(float *y, __m512 v, int acc) {
  _mm512_storeu_ps(y, acc ? _mm512_add_ps(_mm512_loadu_ps(y), v) : v);
}

static inline __m512i bcast4_512(const uint8_t *p) {
  int32_t f;
  memcpy(&f, p, 4);
  return _mm512_set1_epi32(f);
}

/* groups g, g+1 (grp, grp + gb) of Q4_0X8 × NT tokens from t */
static inline __attribute__((always_inline)) void q4_pair(const int NT, const uint8_t *grp, size_t gb, int nb, const q8a_rows *x,
                                                          int t, float *y, long ldy, int acc) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), zero = _mm512_setzero_si512();
  __m512 a[TILE];
  for (int j = 0; j < NT; j++) a[j] = _mm512_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t *p0 = grp + 144 * (size_t)b, *p1 = p0 + gb;
    __m512i s[TILE];
    for (int j = 0; j < NT; j++) s[j] = zero;
    for (int c = 0; c < 4; c++) {
      const __m512i v = pair_load(p0 + 16 + 32 * c, p1 + 16 + 32 * c);
      const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi32(v, 4), m4);
      for (int j = 0; j < NT; j++) {
        const uint8_t *qs = (const uint8_t *)x->xa[(long)(t + j) * nb + b].qs;
        s[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(s[j], lo, bcast4_512(qs + 4 * c)), hi, bcast4_512(qs + 16 + 4 * c));
      }
    }
    const __m512 dw = pair_scales(p0, p1);
    for (int j = 0; j < NT; j++) {
      const q8a_block *xb = &x->xa[(long)(t + j) * nb + b];
      const __m512i i32 = _mm512_sub_epi32(s[j], _mm512_set1_epi32(8 * xb->sum));
      a[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i32), _mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), a[j]);
    }
  }
  for (int j = 0; j < NT; j++) put16(y + (long)j * ldy, a[j], acc);
}

/* groups g, g+1 of Q8_0X8 × NT tokens from t (u: the unsigned activations) */
static inline __attribute__((always_inline)) void q8_pair(const int NT, const uint8_t *grp, size_t gb, int nb, const uint8_t *u,
                                                          const q8a_rows *x, int t, float *y, long ldy, int acc) {
  const __m512i ones = _mm512_set1_epi8(1), zero = _mm512_setzero_si512();
  __m512 a[TILE];
  for (int j = 0; j < NT; j++) a[j] = _mm512_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t *p0 = grp + 272 * (size_t)b, *p1 = p0 + gb;
    __m512i s[TILE], ws = zero;
    for (int j = 0; j < NT; j++) s[j] = zero;
    for (int c = 0; c < 8; c++) {
      const __m512i v = pair_load(p0 + 16 + 32 * c, p1 + 16 + 32 * c);
      ws = _mm512_dpbusd_epi32(ws, ones, v);
      for (int j = 0; j < NT; j++) s[j] = _mm512_dpbusd_epi32(s[j], bcast4_512(u + ((long)(t + j) * nb + b) * QK + 4 * c), v);
    }
    const __m512i w128 = _mm512_slli_epi32(ws, 7);
    const __m512 dw = pair_scales(p0, p1);
    for (int j = 0; j < NT; j++) {
      const q8a_block *xb = &x->xa[(long)(t + j) * nb + b];
      a[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s[j], w128)), _mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), a[j]);
    }
  }
  for (int j = 0; j < NT; j++) put16(y + (long)j * ldy, a[j], acc);
}

/*
 * Q4_KX8 (common.h), two groups per 512-bit register as above, in the order of the AVX2 group
 * kernel (quant_mm_avx2.c x8q4k_group): per super-block and sub-block, the int32 dot (here one
 * vpdpbusd per chunk and token instead of maddubs into int16 and a madd), then d_x·scale and
 * the mins' term in f32, then × d and × dmin per super-block. At T < 8 the results are bit for bit
 * the AVX2 kernel's; its prefill (T ≥ 8) takes another route (gemm8) and differs in the last bits.
 * Up to 4 tokens per pass (six accumulators per token); T ≥ 2 only (see rows_q4_kx8_vnni).
 */
#define KTILE 4

static inline __attribute__((always_inline)) void q4k_pair(const int NT, const uint8_t *grp, size_t gb, int nsb, const q8a_rows *x,
                                                           int t, float *y, long ldy, int acc) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), zero = _mm512_setzero_si512();
  const int nb = x->nb;
  __m512 a[KTILE], am[KTILE];
  for (int j = 0; j < NT; j++) a[j] = am[j] = _mm512_setzero_ps();
  for (int sb = 0; sb < nsb; sb++) {
    const uint8_t *p0 = grp + 1184 * (size_t)sb, *p1 = p0 + gb;
    for (int o = 0; o < 1216; o += 64) {
      _mm_prefetch((const char *)p0 + PREFETCH_AHEAD + o, _MM_HINT_T0);
      _mm_prefetch((const char *)p1 + PREFETCH_AHEAD + o, _MM_HINT_T0);
    }
    const __m512 dv = pair_scales(p0, p1), dmv = pair_scales(p0 + 16, p1 + 16);
    __m512 ss[KTILE], sm[KTILE];
    for (int j = 0; j < NT; j++) ss[j] = sm[j] = _mm512_setzero_ps();
    for (int m = 0; m < 4; m++) {
      __m512i slo[KTILE], shi[KTILE];
      for (int j = 0; j < NT; j++) slo[j] = shi[j] = zero;
      for (int c = 0; c < 8; c++) {
        const __m512i v = pair_load(p0 + 160 + 256 * m + 32 * c, p1 + 160 + 256 * m + 32 * c);
        const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi32(v, 4), m4);
        for (int j = 0; j < NT; j++) {
          const q8a_block *xb = &x->xa[(long)(t + j) * nb + 8 * sb + 2 * m];
          slo[j] = _mm512_dpbusd_epi32(slo[j], lo, bcast4_512((const uint8_t *)xb[0].qs + 4 * c));
          shi[j] = _mm512_dpbusd_epi32(shi[j], hi, bcast4_512((const uint8_t *)xb[1].qs + 4 * c));
        }
      }
      for (int h = 0; h < 2; h++) {
        const int sub = 2 * m + h;
        const __m128i sc8 = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(p0 + 32 + 8 * sub)), _mm_loadl_epi64((const __m128i *)(p1 + 32 + 8 * sub)));
        const __m128i mn8 = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(p0 + 96 + 8 * sub)), _mm_loadl_epi64((const __m128i *)(p1 + 96 + 8 * sub)));
        const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sc8)), mn = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mn8));
        for (int j = 0; j < NT; j++) {
          const long o = (long)(t + j) * nb + 8 * sb + sub;
          const __m512 dot = _mm512_cvtepi32_ps(h ? shi[j] : slo[j]);
          ss[j] = _mm512_fmadd_ps(dot, _mm512_mul_ps(sc, _mm512_set1_ps(x->d[o])), ss[j]);
          sm[j] = _mm512_fmadd_ps(mn, _mm512_set1_ps(x->nsd[o]), sm[j]);
        }
      }
    }
    for (int j = 0; j < NT; j++) {
      a[j] = _mm512_fmadd_ps(dv, ss[j], a[j]);
      am[j] = _mm512_fmadd_ps(dmv, sm[j], am[j]);
    }
  }
  for (int j = 0; j < NT; j++) put16(y + (long)j * ldy, _mm512_add_ps(a[j], am[j]), acc);
}

static void rows_q4_kx8_vnni(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  const int nsb = K / 256;
  int g = 0;
  /* decode keeps the AVX2 kernel: on the development machine (Zen 4) the pairs decoded 0.55–0.7×
   * as fast and one group per 256-bit register with split vpdpbusd chains 0.85–0.95× (bench/ab) */
  if (T == 1) { g_avx2[DT_Q4_KX8](K, w, rb, R, x, T, y, ldy, acc); return; }
  for (; g + 2 <= R / 8; g += 2) {
    const uint8_t *grp = w + 8 * rb * (size_t)g;
    for (int t = 0; t < T; t += KTILE) {
      float *yt = y + (long)t * ldy + 8 * g;
      switch (T - t < KTILE ? T - t : KTILE) {
        case 4: q4k_pair(4, grp, 8 * rb, nsb, x, t, yt, ldy, acc); break;
        case 3: q4k_pair(3, grp, 8 * rb, nsb, x, t, yt, ldy, acc); break;
        case 2: q4k_pair(2, grp, 8 * rb, nsb, x, t, yt, ldy, acc); break;
        default: q4k_pair(1, grp, 8 * rb, nsb, x, t, yt, ldy, acc); break;
      }
    }
  }
  if (g < R / 8) g_avx2[DT_Q4_KX8](K, w + 8 * rb * (size_t)g, rb, R - 8 * g, x, T, y + 8 * g, ldy, acc); /* an odd last group */
}

/* NT as a compile-time constant for each tile width 1..TILE */
#define TILES(call)                                       \
  switch (nt) {                                           \
    case 8: call(8); break; case 7: call(7); break;       \
    case 6: call(6); break; case 5: call(5); break;       \
    case 4: call(4); break; case 3: call(3); break;       \
    case 2: call(2); break; default: call(1); break;      \
  }

/* groups of 8 rows × tiles of up to TILE tokens; u: the unsigned activations (Q8_0X8 only) */
static inline __attribute__((always_inline)) void x8_rows_vnni(int q8, int K, const uint8_t *w, size_t rb, int R, const uint8_t *u,
                                                               const q8a_rows *x, int T, float *y, long ldy, int acc) {
  const int nb = K / QK;
  int g = 0;
  if (T >= 2) {
    for (; g + 2 <= R / 8; g += 2) {
      const uint8_t *grp = w + 8 * rb * (size_t)g;
      for (int t = 0; t < T; t += TILE) {
        const int nt = T - t < TILE ? T - t : TILE;
        float *yt = y + (long)t * ldy + 8 * g;
#define PAIR(n) if (q8) q8_pair(n, grp, 8 * rb, nb, u, x, t, yt, ldy, acc); else q4_pair(n, grp, 8 * rb, nb, x, t, yt, ldy, acc)
        TILES(PAIR)
#undef PAIR
      }
    }
  }
  for (; g < R / 8; g++) {
    const uint8_t *grp = w + 8 * rb * (size_t)g;
    for (int t = 0; t < T; t += TILE) {
      const int nt = T - t < TILE ? T - t : TILE;
      float *yt = y + (long)t * ldy + 8 * g;
#define GROUP(n) if (q8) q8_group(n, grp, nb, u, x, t, yt, ldy, acc); else q4_group(n, grp, nb, x, t, yt, ldy, acc)
      TILES(GROUP)
#undef GROUP
    }
  }
}

static void rows_q8_0x8_vnni(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  const uint8_t *u = unsigned_x(x, T);
  if (u) x8_rows_vnni(1, K, w, rb, R, u, x, T, y, ldy, acc);
  else g_avx2[DT_Q8_0X8](K, w, rb, R, x, T, y, ldy, acc);
}

static void rows_q4_0x8_vnni(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  x8_rows_vnni(0, K, w, rb, R, NULL, x, T, y, ldy, acc);
}

void q8_rows_vnni(kernels_t *k) {
  g_avx2[DT_Q8_0X8] = k->q8_rows[DT_Q8_0X8];
  g_avx2[DT_Q4_0X8] = k->q8_rows[DT_Q4_0X8];
  g_avx2[DT_Q4_KX8] = k->q8_rows[DT_Q4_KX8];
  if (g_avx2[DT_Q8_0X8]) k->q8_rows[DT_Q8_0X8] = rows_q8_0x8_vnni;
  if (g_avx2[DT_Q4_0X8]) k->q8_rows[DT_Q4_0X8] = rows_q4_0x8_vnni;
  if (g_avx2[DT_Q4_KX8]) k->q8_rows[DT_Q4_KX8] = rows_q4_kx8_vnni;
}
