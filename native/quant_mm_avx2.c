/*
 * AVX2 multi-row integer kernels (common.h q8_rows_fn) for the dtypes that matter for speed:
 * Q4_0, Q8_0, Q4_K and Q6_K weights against q8a activations (compiled with -mavx2 -mfma -mf16c).
 * They compute what quant_dot_avx2.c computes per row, with fewer instructions per block:
 *   - nibbles unpack with one 128-bit broadcast load, a variable shift and a mask, already in the
 *     activation order (values 0..15 in the low lane, 16..31 in the high lane);
 *   - f16 weight scales come from a 256 KiB table (one load instead of a conversion);
 *   - the Q4_0 offset (−8) is folded into the float step with the per-block side value −Σq·d
 *     (q8a_rows.nsd) instead of a separate scalar correction;
 *   - decode (T < 4): Q4_0 / Q8_0 take four rows at a time (one activation load, one reduction
 *     for the four); the K-quants sum the eight 32-value sub-blocks of a super-block horizontally
 *     into one vector and scale all eight at once (scales unpacked once per super-block);
 *   - prefill, T ≥ PACK8_MIN_T, Q4_0 / Q4_K: rows in SIMD lanes — eight rows repacked per call into
 *     a small buffer so that one maddubs serves eight rows and the block scaling is one FMA per
 *     eight rows (about twice the rate of the tiles below; see the section comment);
 *   - other prefill (T ≥ 4): 2-row × 4-token tiles (Q4_0 / Q8_0) and 1-row × 4-token tiles (Q4_K)
 *     unpack each weight block once for four tokens.
 * Weights stream from memory with software prefetches that run ahead of the rows in use at the
 * pace they are consumed; decode of the X8 Q4_0 / Q8_0 layouts walks a chunk as four streams a
 * quarter apart (x8_groups4), since one stream per thread leaves DRAM bandwidth unused. Integer partial sums
 * are exact; only the f32 summation order differs from the scalar twins in quant_dot.c.
 *
 * Legend: R = weight rows, T = activation rows (tokens), nb = 32-value blocks per row.
 */
#include "native.h"
#include "simd_avx2.h"

#define PREFETCH_AHEAD 1024      /* bytes ahead of the current block of a single row */
#define PREFETCH_ROWS_BYTES 8192  /* bytes ahead when whole rows stream by (decode) */

static float g_f16[65536]; /* f16 bits → f32, filled by q8_rows_avx2 */

static inline __m256 scale_at(const uint8_t *p) { return _mm256_broadcast_ss(&g_f16[ld_u16(p)]); }
static inline void prefetch(const uint8_t *p) { _mm_prefetch((const char *)p + PREFETCH_AHEAD, _MM_HINT_T0); }

static inline void store(float *y, float v, int acc) { *y = acc ? *y + v : v; }

/* 16 packed bytes of nibbles → 32 bytes 0..15: low nibbles in the low lane, high in the high */
static inline __m256i nibbles(const uint8_t *qs) {
  const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
  return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
}

static inline __m256i load_qs(const q8a_block *b) { return _mm256_loadu_si256((const __m256i *)b->qs); }

/* Σ over groups of 4 of u·s as 8 floats (u: unsigned bytes ≤ 15 or |q| ≤ 128; s signed) */
static inline __m256 dot_us(__m256i u, __m256i s) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
/* the same for two signed byte vectors (w may hold −128; x never does) */
static inline __m256 dot_ss(__m256i w, __m256i x) { return dot_us(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)); }

/* ---------------------------------------------------------------------------------------------
 * Q4_0 (18-byte blocks: f16 d, 16 bytes of nibbles; value = d·(q − 8)), Q5_0 (22 bytes: f16 d,
 * 32 fifth bits, 16 bytes of nibbles; value = d·(q − 16)) and Q8_0 (34 bytes: f16 d, 32 int8).
 * Per block and token: lanes hold p = partial dots; Q4_0 adds the offset as
 * Σ_lanes (p·dx + nsd) = dx·(Σp − 8Σq_x) (Q5_0 with 2·nsd: −16Σq_x), then one FMA with the
 * weight scale. */

enum { K_Q4_0, K_Q8_0, K_Q4_K, K_Q5_0 };

static inline int block_bytes(int kind) { return kind == K_Q4_0 ? 18 : kind == K_Q5_0 ? 22 : 34; }

/* the block's 32 values as bytes: unsigned 0..15 / 0..31 (Q4_0 / Q5_0) or signed (Q8_0) */
static inline __m256i blk_values(int kind, const uint8_t *blk) {
  if (kind == K_Q4_0) return nibbles(blk + 2);
  if (kind == K_Q5_0) return _mm256_or_si256(nibbles(blk + 6), _mm256_and_si256(bits_to_bytes(ld_u32(blk + 2)), _mm256_set1_epi8(16)));
  return _mm256_loadu_si256((const __m256i *)(blk + 2));
}

static inline __m256 blk_dot(int kind, __m256i q, __m256i x) { return kind == K_Q8_0 ? dot_ss(q, x) : dot_us(q, x); }

static inline __m256 blk_prod(int kind, const uint8_t *blk, __m256i x) { return blk_dot(kind, blk_values(kind, blk), x); }

static inline __m256 blk_fold(int kind, __m256 p, const float *d, const float *nsd, int b) {
  if (kind == K_Q8_0) return _mm256_mul_ps(p, _mm256_broadcast_ss(d + b));
  const __m256 off = _mm256_broadcast_ss(nsd + b);
  return _mm256_fmadd_ps(p, _mm256_broadcast_ss(d + b), kind == K_Q5_0 ? _mm256_add_ps(off, off) : off);
}

/* one weight row · one activation row, two blocks per iteration on two accumulators */
static inline float row_dot_32(int kind, const uint8_t *w, const q8a_block *xa, const float *d, const float *nsd, int nb) {
  const int TB = block_bytes(kind);
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * TB) {
    prefetch(w);
    const __m256 p0 = blk_prod(kind, w, load_qs(xa + b)), p1 = blk_prod(kind, w + TB, load_qs(xa + b + 1));
    a0 = _mm256_fmadd_ps(blk_fold(kind, p0, d, nsd, b), scale_at(w), a0);
    a1 = _mm256_fmadd_ps(blk_fold(kind, p1, d, nsd, b + 1), scale_at(w + TB), a1);
  }
  if (b < nb) a0 = _mm256_fmadd_ps(blk_fold(kind, blk_prod(kind, w, load_qs(xa + b)), d, nsd, b), scale_at(w), a0);
  return hsum256(_mm256_add_ps(a0, a1));
}

/* the sums of the 8 lanes of a, b, c, d as 4 floats */
static inline __m128 hsum4x8(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* four consecutive weight rows (rb bytes apart) · one activation row: the activation block is
 * loaded once for the four; short rows (small K) pay the per-row reduction once per four */
static inline __m128 rows4_dot_32(int kind, const uint8_t *w, size_t rb, const q8a_block *xa, const float *d,
                                  const float *nsd, int nb) {
  const int TB = block_bytes(kind);
  const uint8_t *w0 = w, *w1 = w + rb, *w2 = w + 2 * rb, *w3 = w + 3 * rb;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  /* the rows after these follow in memory: fetch at least PREFETCH_ROWS_BYTES ahead (whole groups of
   * four rows) at the pace these are consumed, so short rows (small K) still hide DRAM latency */
  const uint8_t *next = w + 4 * rb * ((PREFETCH_ROWS_BYTES + 4 * rb - 1) / (4 * rb));
  for (int b = 0; b < nb; b++, w0 += TB, w1 += TB, w2 += TB, w3 += TB) {
    _mm_prefetch((const char *)next + 4 * TB * b, _MM_HINT_T0); /* a step is 72 to 136 bytes: two lines */
    _mm_prefetch((const char *)next + 4 * TB * b + 64, _MM_HINT_T0);
    const __m256i x = load_qs(xa + b);
    a0 = _mm256_fmadd_ps(blk_fold(kind, blk_prod(kind, w0, x), d, nsd, b), scale_at(w0), a0);
    a1 = _mm256_fmadd_ps(blk_fold(kind, blk_prod(kind, w1, x), d, nsd, b), scale_at(w1), a1);
    a2 = _mm256_fmadd_ps(blk_fold(kind, blk_prod(kind, w2, x), d, nsd, b), scale_at(w2), a2);
    a3 = _mm256_fmadd_ps(blk_fold(kind, blk_prod(kind, w3, x), d, nsd, b), scale_at(w3), a3);
  }
  return hsum4x8(a0, a1, a2, a3);
}

/* rows r, r+1 × tokens t..t+3 (prefill): each weight block is unpacked once for the four tokens and
 * each activation block loaded once for the two rows (measured best among 1×4 … 3×2 tiles and
 * variants with precombined scales, which lost to store-forwarding stalls) */
static inline __attribute__((always_inline)) void tile_2x4(int kind, const uint8_t *w, size_t rb, const q8a_rows *x,
                                                           int t, float *y, long ldy, int acc) {
  const int TB = block_bytes(kind), nb = x->nb;
  __m256 c[2][4];
  for (int r = 0; r < 2; r++)
    for (int j = 0; j < 4; j++) c[r][j] = _mm256_setzero_ps();
  const q8a_block *xa = x->xa + (long)t * nb;
  const float *d = x->d + (long)t * nb, *nsd = x->nsd + (long)t * nb;
  for (int b = 0; b < nb; b++) {
    __m256i q[2];
    for (int r = 0; r < 2; r++) {
      const uint8_t *blk = w + r * rb + (size_t)TB * b;
      q[r] = blk_values(kind, blk);
    }
    for (int j = 0; j < 4; j++) {
      const __m256i xv = load_qs(xa + (long)j * nb + b);
      for (int r = 0; r < 2; r++) {
        const __m256 p = blk_dot(kind, q[r], xv);
        c[r][j] = _mm256_fmadd_ps(blk_fold(kind, p, d + (long)j * nb, nsd + (long)j * nb, b), scale_at(w + r * rb + (size_t)TB * b), c[r][j]);
      }
    }
  }
  for (int j = 0; j < 4; j++)
    for (int r = 0; r < 2; r++) store(y + j * ldy + r, hsum256(c[r][j]), acc);
}

/* the 8 scales (bytes 0..7) and mins (8..15) of a Q4_K super-block from its 12 packed bytes */
static inline __m128i q4k_scales_mins(const uint8_t *packed) {
  uint32_t u[4];
  memcpy(u, packed, 12);
  u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
  const uint32_t m03 = u[1] & 0x3f3f3f3fu;
  u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  u[2] = m03;
  u[0] &= 0x3f3f3f3fu;
  return _mm_loadu_si128((const __m128i *)u);
}

/* ---------------------------------------------------------------------------------------------
 * Q4_0 / Q4_K prefill with rows in SIMD lanes (T ≥ PACK8_MIN_T): eight weight rows are repacked, for the
 * duration of one call, into a small buffer where one 32-byte load holds 4 values of each of the 8
 * rows (group g of a block = values 4g..4g+3), and their 8 scales side by side. A broadcast of 4
 * activation bytes then feeds one maddubs for all 8 rows; the 8 groups of a block add up in int16
 * (at most 8·2·15·127 = 30480, no overflow); one madd, one int32 offset correction (−8·Σq_x) and
 * one FMA with (8 row scales × the token's scale) finish the block for 8 rows at once. The
 * results of a token are 8 consecutive outputs: no horizontal sums. The file's bytes are never
 * rewritten (the mapping stays shared); the buffer is per thread and per call.
 */
#define PACK8_MIN_T 8

/* 8×8 transpose of 32-bit lanes: out[g] lane r = v[r] lane g */
static inline void transpose8x32(__m256i v[8]) {
  const __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]), t5 = _mm256_unpackhi_epi32(v[4], v[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]), t7 = _mm256_unpackhi_epi32(v[6], v[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  v[0] = _mm256_permute2x128_si256(u0, u4, 0x20); v[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  v[2] = _mm256_permute2x128_si256(u2, u6, 0x20); v[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  v[4] = _mm256_permute2x128_si256(u0, u4, 0x31); v[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  v[6] = _mm256_permute2x128_si256(u2, u6, 0x31); v[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* rows 0..7 of w (rb bytes apart) → pk (nb, 8 groups, 8 rows, 4 values 0..15) and ds (nb, 8) */
static void pack8_q4_0(const uint8_t *w, size_t rb, int nb, uint8_t *pk, float *ds) {
  for (int b = 0; b < nb; b++) {
    __m256i v[8];
    for (int r = 0; r < 8; r++) {
      const uint8_t *blk = w + r * rb + 18 * (size_t)b;
      v[r] = nibbles(blk + 2);
      ds[8 * b + r] = g_f16[ld_u16(blk)];
    }
    transpose8x32(v);
    for (int g = 0; g < 8; g++) _mm256_store_si256((__m256i *)(pk + 256 * (size_t)b + 32 * g), v[g]);
  }
}

static inline void put8(float *y, __m256 v, int acc) {
  _mm256_storeu_ps(y, acc ? _mm256_add_ps(_mm256_loadu_ps(y), v) : v);
}

/* Q4_K rows 0..7 → the same packed layout, one 32-value sub-block per block, with per block the 8
 * rows' d·scale (ds) and dmin·min (ms) */
static void pack8_q4_k(const uint8_t *w, size_t rb, int nb, uint8_t *pk, float *ds, float *ms) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int sb = 0; sb < nb / 8; sb++) {
    for (int r = 0; r < 8; r++) {
      const uint8_t *sp = w + r * rb + 144 * (size_t)sb;
      uint8_t sm[16];
      _mm_storeu_si128((__m128i *)sm, q4k_scales_mins(sp + 4));
      const float d = g_f16[ld_u16(sp)], dmin = g_f16[ld_u16(sp + 2)];
      for (int j = 0; j < 8; j++) {
        ds[8 * (8 * sb + j) + r] = d * (float)sm[j];
        ms[8 * (8 * sb + j) + r] = dmin * (float)sm[8 + j];
      }
    }
    for (int j = 0; j < 8; j++) {
      __m256i v[8];
      for (int r = 0; r < 8; r++) {
        const __m256i bytes = _mm256_loadu_si256((const __m256i *)(w + r * rb + 144 * (size_t)sb + 16 + 32 * (j / 2)));
        v[r] = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(bytes, 4) : bytes, m4);
      }
      transpose8x32(v);
      uint8_t *dst = pk + 256 * (size_t)(8 * sb + j);
      for (int g = 0; g < 8; g++) _mm256_store_si256((__m256i *)(dst + 32 * g), v[g]);
    }
  }
}

/* 8 packed rows × NT tokens (1..4) starting at token t: y[(t+j)·ldy + 0..7]. Q4_0: value
 * d·(q − 8); Q4_K (kind K_Q4_K): value d·sc·q − dmin·m, the mins through nsd = −Σq_x·d_x */
static inline __attribute__((always_inline)) void gemm8(int kind, const int NT, const uint8_t *pk, const float *ds,
                                                        const float *ms, const q8a_rows *x, int t, float *y, long ldy, int acc) {
  const int nb = x->nb;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 a[4];
  for (int j = 0; j < NT; j++) a[j] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = pk + 256 * (size_t)b;
    __m256i s[4];
    for (int j = 0; j < NT; j++) s[j] = _mm256_setzero_si256();
#pragma GCC unroll 2 /* fully unrolled, gcc schedules all 32 products first and spills them */
    for (int g = 0; g < 8; g++) {
      const __m256i wg = _mm256_load_si256((const __m256i *)(p + 32 * g));
      for (int j = 0; j < NT; j++) {
        int32_t four;
        memcpy(&four, x->xa[(long)(t + j) * nb + b].qs + 4 * g, 4);
        s[j] = _mm256_add_epi16(s[j], _mm256_maddubs_epi16(wg, _mm256_set1_epi32(four)));
      }
    }
    const __m256 dw = _mm256_load_ps(ds + 8 * b);
    for (int j = 0; j < NT; j++) {
      const long o = (long)(t + j) * nb + b;
      const q8a_block *xb = &x->xa[o];
      __m256i i32 = _mm256_madd_epi16(s[j], ones);
      if (kind == K_Q4_0) i32 = _mm256_sub_epi32(i32, _mm256_set1_epi32(8 * xb->sum));
      a[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(dw, _mm256_broadcast_ss(&xb->d)), a[j]);
      if (kind == K_Q4_K) a[j] = _mm256_fmadd_ps(_mm256_load_ps(ms + 8 * b), _mm256_broadcast_ss(x->nsd + o), a[j]);
    }
  }
  for (int j = 0; j < NT; j++) put8(y + (long)j * ldy, a[j], acc);
}

/* rows in groups of 8 through the packed kernel; returns how many rows it did (a multiple of 8) */
static inline int rows8(int kind, int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  const int nb = K / 32;
  uint8_t *buf = scratch_get(2, (size_t)nb * (256 + 64) + 64);
  if (!buf) return 0; /* out of memory: reported by addon.c; the caller's path still works */
  uint8_t *pk = (uint8_t *)(((uintptr_t)buf + 31) & ~(uintptr_t)31);
  float *ds = (float *)(pk + 256 * (size_t)nb), *ms = ds + 8 * (size_t)nb;
  int r = 0;
  for (; r + 8 <= R; r += 8) {
    if (kind == K_Q4_0) pack8_q4_0(w + r * rb, rb, nb, pk, ds);
    else pack8_q4_k(w + r * rb, rb, nb, pk, ds, ms);
    int t = 0;
    for (; t + 4 <= T; t += 4) gemm8(kind, 4, pk, ds, ms, x, t, y + (long)t * ldy + r, ldy, acc);
    for (; t < T; t++) gemm8(kind, 1, pk, ds, ms, x, t, y + (long)t * ldy + r, ldy, acc);
  }
  return r;
}

static inline void rows_32(int kind, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y,
                           long ldy, int acc) {
  const int nb = x->nb;
  int r = 0;
  if (kind == K_Q4_0 && T >= PACK8_MIN_T) r = rows8(K_Q4_0, 32 * nb, w, rb, R, x, T, y, ldy, acc);
  if (T >= 4) {
    for (; r + 2 <= R; r += 2) {
      int t = 0;
      for (; t + 4 <= T; t += 4) tile_2x4(kind, w + r * rb, rb, x, t, y + (long)t * ldy + r, ldy, acc);
      for (; t < T; t++)
        for (int i = 0; i < 2; i++)
          store(y + (long)t * ldy + r + i,
                row_dot_32(kind, w + (r + i) * rb, x->xa + (long)t * nb, x->d + (long)t * nb, x->nsd + (long)t * nb, nb), acc);
    }
  }
  for (; r + 4 <= R; r += 4)
    for (int t = 0; t < T; t++) {
      float v[4];
      _mm_storeu_ps(v, rows4_dot_32(kind, w + r * rb, rb, x->xa + (long)t * nb, x->d + (long)t * nb, x->nsd + (long)t * nb, nb));
      for (int i = 0; i < 4; i++) store(y + (long)t * ldy + r + i, v[i], acc);
    }
  for (; r < R; r++)
    for (int t = 0; t < T; t++)
      store(y + (long)t * ldy + r, row_dot_32(kind, w + r * rb, x->xa + (long)t * nb, x->d + (long)t * nb, x->nsd + (long)t * nb, nb), acc);
}

static void rows_q4_0(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  (void)K;
  rows_32(K_Q4_0, w, rb, R, x, T, y, ldy, acc);
}
static void rows_q8_0(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  (void)K;
  rows_32(K_Q8_0, w, rb, R, x, T, y, ldy, acc);
}
static void rows_q5_0(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  (void)K;
  rows_32(K_Q5_0, w, rb, R, x, T, y, ldy, acc);
}

/* ---------------------------------------------------------------------------------------------
 * K-quants: one super-block (256 values, 8 activation blocks) at a time. Each sub-block's
 * integer dot stays as 8 int32 lanes; the eight are then summed horizontally into one vector
 * (lane j = sub-block j) and scaled together. */

/* lane j of the result = Σ of the 8 lanes of v_j */
static inline __m256i hsum8x8(__m256i v0, __m256i v1, __m256i v2, __m256i v3, __m256i v4, __m256i v5, __m256i v6,
                              __m256i v7) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v4, v5), _mm256_hadd_epi32(v6, v7));
  /* a = [v0 v1 v2 v3 (low-lane halves) | v0 v1 v2 v3 (high-lane halves)], b likewise for v4..v7 */
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

static inline __m256i madd_u(__m256i u, __m256i s) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)); }

/* Q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles;
 * sub-block j: nibbles of bytes 32·(j/2).., low half if j even; value = d·sc_j·q − dmin·m_j */
static inline float row_dot_q4_k(const uint8_t *w, size_t ahead, const q8a_block *xa, const float *d, const float *nsd, int nsb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps(), accm = acc;
  for (int sb = 0; sb < nsb; sb++, w += 144, xa += 8, d += 8, nsd += 8) {
    _mm_prefetch((const char *)w + ahead, _MM_HINT_T0);
    _mm_prefetch((const char *)w + ahead + 64, _MM_HINT_T0);
    _mm_prefetch((const char *)w + ahead + 128, _MM_HINT_T0);
    const __m128i sm = q4k_scales_mins(w + 4); /* scales (bytes 0..7) and mins (8..15) */
    const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm));
    const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8)));
    __m256i s[8];
    for (int j = 0; j < 4; j++) {
      const __m256i bytes = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * j));
      s[2 * j] = madd_u(_mm256_and_si256(bytes, m4), load_qs(xa + 2 * j));
      s[2 * j + 1] = madd_u(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4), load_qs(xa + 2 * j + 1));
    }
    const __m256 tot = _mm256_cvtepi32_ps(hsum8x8(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(tot, _mm256_loadu_ps(d)), _mm256_mul_ps(sc, scale_at(w)), acc);
    accm = _mm256_fmadd_ps(_mm256_loadu_ps(nsd), _mm256_mul_ps(mn, scale_at(w + 2)), accm);
  }
  return hsum256(_mm256_add_ps(acc, accm));
}

/* Q6_K (210 bytes): ql[128], qh[64], 16 int8 scales, f16 d; activation block j = (half h = j/4,
 * quarter qq = j%4): low 4 bits from ql[64h + 32(qq&1) ..] (high nibble if qq ≥ 2), 2 high bits
 * from qh[32h ..] >> 2qq; value = d·sc·(q − 32), scales 2j (values 0..15) and 2j+1 (16..31).
 * The scales multiply inside the int16 → int32 step (madd with the scale pair per lane half). */
static inline float row_dot_q6_k(const uint8_t *w, size_t ahead, const q8a_block *xa, const float *d, int nsb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
  /* byte shuffles that spread int16 scale 2qq over the low lane and 2qq+1 over the high lane */
  const __m256i pick[4] = {
    _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3),
    _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7),
    _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11),
    _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15),
  };
  __m256 acc = _mm256_setzero_ps();
  for (int sb = 0; sb < nsb; sb++, w += 210, xa += 8, d += 8) {
    for (int i = 0; i < 4; i++) _mm_prefetch((const char *)w + ahead + 64 * i, _MM_HINT_T0);
    __m256i s[8];
    for (int h = 0; h < 2; h++) {
      const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(w + 192 + 8 * h))));
      const __m256i qh = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h));
      const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(w + 64 * h));
      const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32));
      for (int qq = 0; qq < 4; qq++) {
        const __m256i ql = qq & 1 ? ql1 : ql0;
        const __m256i lo = _mm256_and_si256(qq >> 1 ? _mm256_srli_epi16(ql, 4) : ql, m4);
        const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * qq), m2), 4);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, hi), off); /* −32..31 */
        const __m256i x = load_qs(xa + 4 * h + qq);
        const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q));
        s[4 * h + qq] = _mm256_madd_epi16(p16, _mm256_shuffle_epi8(sc, pick[qq]));
      }
    }
    const __m256 tot = _mm256_cvtepi32_ps(hsum8x8(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(tot, _mm256_loadu_ps(d)), scale_at(w + 208), acc);
  }
  return hsum256(acc);
}

/* how far ahead the K-quant rows prefetch: whole rows, at least PREFETCH_ROWS_BYTES, at the pace a
 * row is consumed (rows are consecutive in memory) */
static inline size_t rows_ahead(size_t rb) { return rb * ((PREFETCH_ROWS_BYTES + rb - 1) / rb); }

/* one Q4_K row × tokens t..t+3 (prefill): each super-block's nibbles are unpacked once for the
 * four tokens; per sub-block and token one integer dot, then (dx · d·sc) in two float steps */
static void tile_q4_k_1x4(const uint8_t *w, int nsb, const q8a_rows *x, int t, float *y, long ldy, int acc) {
  const int nb = x->nb;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 c[4][2];
  for (int j = 0; j < 4; j++) c[j][0] = c[j][1] = _mm256_setzero_ps();
  float scl[8] __attribute__((aligned(32)));
  for (int sb = 0; sb < nsb; sb++, w += 144) {
    const __m128i sm = q4k_scales_mins(w + 4);
    _mm256_store_ps(scl, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm)), scale_at(w)));
    const __m256 mnd = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))), scale_at(w + 2));
    for (int jp = 0; jp < 4; jp++) {
      const __m256i bytes = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * jp));
      const __m256i lo = _mm256_and_si256(bytes, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
      const int b = sb * 8 + 2 * jp;
      for (int j = 0; j < 4; j++) {
        const long o = (long)(t + j) * nb + b;
        const __m256 p0 = _mm256_mul_ps(_mm256_cvtepi32_ps(madd_u(lo, load_qs(x->xa + o))), _mm256_broadcast_ss(x->d + o));
        const __m256 p1 = _mm256_mul_ps(_mm256_cvtepi32_ps(madd_u(hi, load_qs(x->xa + o + 1))), _mm256_broadcast_ss(x->d + o + 1));
        c[j][0] = _mm256_fmadd_ps(p0, _mm256_broadcast_ss(scl + 2 * jp), c[j][0]);
        c[j][1] = _mm256_fmadd_ps(p1, _mm256_broadcast_ss(scl + 2 * jp + 1), c[j][1]);
      }
    }
    for (int j = 0; j < 4; j++) c[j][0] = _mm256_fmadd_ps(_mm256_loadu_ps(x->nsd + (long)(t + j) * nb + sb * 8), mnd, c[j][0]);
  }
  for (int j = 0; j < 4; j++) store(y + j * ldy, hsum256(_mm256_add_ps(c[j][0], c[j][1])), acc);
}

static void rows_q4_k(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  const int nb = x->nb;
  const size_t ahead = rows_ahead(rb);
  const int r8 = T >= PACK8_MIN_T ? rows8(K_Q4_K, K, w, rb, R, x, T, y, ldy, acc) : 0;
  for (int r = r8; r < R; r++) {
    int t = 0;
    for (; t + 4 <= T; t += 4) tile_q4_k_1x4(w + r * rb, K / 256, x, t, y + (long)t * ldy + r, ldy, acc);
    for (; t < T; t++)
      store(y + (long)t * ldy + r, row_dot_q4_k(w + r * rb, ahead, x->xa + (long)t * nb, x->d + (long)t * nb, x->nsd + (long)t * nb, K / 256), acc);
  }
}

static void rows_q6_k(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  const int nb = x->nb;
  const size_t ahead = rows_ahead(rb);
  for (int r = 0; r < R; r++)
    for (int t = 0; t < T; t++)
      store(y + (long)t * ldy + r, row_dot_q6_k(w + r * rb, ahead, x->xa + (long)t * nb, x->d + (long)t * nb, K / 256), acc);
}

/* ---------------------------------------------------------------------------------------------
 * DT_Q4_0X8 (Q4_0 regrouped by eight rows, repack.c): the rows-in-lanes scheme of gemm8 above,
 * straight from memory. Chunk c of a block (32 bytes) gives, masked, values 4c..4c+3 of the 8 rows
 * and, shifted, values 16+4c..16+4c+3; each meets a broadcast of the 4 matching activation bytes
 * in one maddubs. Per block and token: 8 maddubs for 8 rows, one madd, the −8·Σq_x offset in
 * int32, one FMA with the 8 row scales (one f16 conversion) × the token's scale. Up to 4 tokens
 * share each unpacked chunk (prefill); decode streams the groups with prefetches running
 * PREFETCH_ROWS_BYTES ahead. */
static inline __attribute__((always_inline)) void x8_group(const int NT, const uint8_t *grp, int nb, const q8a_rows *x,
                                                           int t, float *y, long ldy, int acc) {
  const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0F);
  __m256 a[4];
  for (int j = 0; j < NT; j++) a[j] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = grp + 144 * (size_t)b;
    _mm_prefetch((const char *)p + PREFETCH_ROWS_BYTES, _MM_HINT_T0);
    _mm_prefetch((const char *)p + PREFETCH_ROWS_BYTES + 64, _MM_HINT_T0);
    _mm_prefetch((const char *)p + PREFETCH_ROWS_BYTES + 128, _MM_HINT_T0);
    __m256i s[4];
    for (int j = 0; j < NT; j++) s[j] = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
      const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      for (int j = 0; j < NT; j++) {
        const int8_t *qs = x->xa[(long)(t + j) * nb + b].qs;
        int32_t f0, f1;
        memcpy(&f0, qs + 4 * c, 4);
        memcpy(&f1, qs + 16 + 4 * c, 4);
        /* each maddubs pair is ≤ 2·15·127; 8 of them per block stay inside int16 (30480) */
        s[j] = _mm256_add_epi16(s[j], _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(f0)),
                                                       _mm256_maddubs_epi16(hi, _mm256_set1_epi32(f1))));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    for (int j = 0; j < NT; j++) {
      const q8a_block *xb = &x->xa[(long)(t + j) * nb + b];
      const __m256i i32 = _mm256_sub_epi32(_mm256_madd_epi16(s[j], ones), _mm256_set1_epi32(8 * xb->sum));
      a[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(dw, _mm256_broadcast_ss(&xb->d)), a[j]);
    }
  }
  for (int j = 0; j < NT; j++) put8(y + (long)j * ldy, a[j], acc);
}

/* x8_group at one token over four groups at once (g[s], output y[s]; the same sums in the same
 * order per group): four memory streams for decode, where one stream per thread leaves DRAM
 * bandwidth unused */
static inline __attribute__((always_inline)) void x8_groups4(const uint8_t *const g[4], int nb, const q8a_rows *x, int t,
                                                             float *const y[4], int acc) {
  const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0F);
  __m256 a[4];
  for (int s = 0; s < 4; s++) a[s] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const q8a_block *xb = &x->xa[(long)t * nb + b];
    const __m256 xd = _mm256_broadcast_ss(&xb->d);
    const __m256i xsum8 = _mm256_set1_epi32(8 * xb->sum);
    for (int s = 0; s < 4; s++) {
      const uint8_t *p = g[s] + 144 * (size_t)b;
      _mm_prefetch((const char *)p + PREFETCH_ROWS_BYTES, _MM_HINT_T0);
      _mm_prefetch((const char *)p + PREFETCH_ROWS_BYTES + 64, _MM_HINT_T0);
      _mm_prefetch((const char *)p + PREFETCH_ROWS_BYTES + 128, _MM_HINT_T0);
      __m256i acc16 = _mm256_setzero_si256();
      for (int c = 0; c < 4; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
        const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        int32_t f0, f1;
        memcpy(&f0, xb->qs + 4 * c, 4);
        memcpy(&f1, xb->qs + 16 + 4 * c, 4);
        acc16 = _mm256_add_epi16(acc16, _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(f0)),
                                                         _mm256_maddubs_epi16(hi, _mm256_set1_epi32(f1))));
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
      const __m256i i32 = _mm256_sub_epi32(_mm256_madd_epi16(acc16, ones), xsum8);
      a[s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(dw, xd), a[s]);
    }
  }
  for (int s = 0; s < 4; s++) put8(y[s], a[s], acc);
}

/* DT_Q8_0X8: chunk c (32 bytes) holds int8 values 4c..4c+3 of the 8 rows; |w| meets the
 * activations with w's signs in one maddubs (pairs ≤ 2·128·127, inside int16), one madd per chunk
 * (two chunks would overflow int16), then as above. */
static inline __attribute__((always_inline)) void x8q8_group(const int NT, const uint8_t *grp, int nb, const q8a_rows *x,
                                                             int t, float *y, long ldy, int acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 a[4];
  for (int j = 0; j < NT; j++) a[j] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = grp + 272 * (size_t)b;
    for (int o = 0; o < 320; o += 64) _mm_prefetch((const char *)p + PREFETCH_ROWS_BYTES + o, _MM_HINT_T0);
    __m256i s[4];
    for (int j = 0; j < NT; j++) s[j] = _mm256_setzero_si256();
    for (int c = 0; c < 8; c++) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
      const __m256i av = _mm256_sign_epi8(v, v);
      for (int j = 0; j < NT; j++) {
        int32_t f;
        memcpy(&f, x->xa[(long)(t + j) * nb + b].qs + 4 * c, 4);
        const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(f), v);
        s[j] = _mm256_add_epi32(s[j], _mm256_madd_epi16(_mm256_maddubs_epi16(av, xs), ones));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    for (int j = 0; j < NT; j++) {
      const q8a_block *xb = &x->xa[(long)(t + j) * nb + b];
      a[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[j]), _mm256_mul_ps(dw, _mm256_broadcast_ss(&xb->d)), a[j]);
    }
  }
  for (int j = 0; j < NT; j++) put8(y + (long)j * ldy, a[j], acc);
}


/* x8q8_group at one token over four groups at once (see x8_groups4) */
static inline __attribute__((always_inline)) void x8q8_groups4(const uint8_t *const g[4], int nb, const q8a_rows *x, int t,
                                                               float *const y[4], int acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 a[4];
  for (int s = 0; s < 4; s++) a[s] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const q8a_block *xb = &x->xa[(long)t * nb + b];
    const __m256 xd = _mm256_broadcast_ss(&xb->d);
    for (int s = 0; s < 4; s++) {
      const uint8_t *p = g[s] + 272 * (size_t)b;
      for (int o = 0; o < 320; o += 64) _mm_prefetch((const char *)p + PREFETCH_ROWS_BYTES + o, _MM_HINT_T0);
      __m256i acc32 = _mm256_setzero_si256();
      for (int c = 0; c < 8; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
        int32_t f;
        memcpy(&f, xb->qs + 4 * c, 4);
        const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(f), v);
        acc32 = _mm256_add_epi32(acc32, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v, v), xs), ones));
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
      a[s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc32), _mm256_mul_ps(dw, xd), a[s]);
    }
  }
  for (int s = 0; s < 4; s++) put8(y[s], a[s], acc);
}

/* DT_Q4_KX8: per super-block, sub-block pair m: chunk c's low nibbles are values 4c..4c+3 of
 * sub-block 2m of the 8 rows, its high nibbles those of sub-block 2m+1; each sub-block sums in
 * int16 (8 chunks · 2·15·127 = 30480), then one madd, and per sub-block one FMA with the 8 rows'
 * d·scale × the token's d, one with the 8 rows' dmin·min × the token's nsd (= −d·Σq). */
static inline __attribute__((always_inline)) void x8q4k_group(const int NT, const uint8_t *grp, int nsb, const q8a_rows *x,
                                                              int t, float *y, long ldy, int acc) {
  const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0F);
  const int nb = x->nb;
  __m256 a[4], am[4];
  for (int j = 0; j < NT; j++) a[j] = am[j] = _mm256_setzero_ps();
  for (int sb = 0; sb < nsb; sb++) {
    const uint8_t *p = grp + 1184 * (size_t)sb;
    for (int o = 0; o < 1216; o += 64) _mm_prefetch((const char *)p + PREFETCH_ROWS_BYTES + o, _MM_HINT_T0);
    const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    const __m256 dmv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16)));
    /* per super-block, like the row kernels: Σ_j d_x·sc_j·dot_j and Σ_j d_x·m_j·Σq_x, then × d and
     * × dmin (the two sums nearly cancel when the activations have a large mean, so the order of
     * the roundings matters at the 1e-3 level) */
    __m256 ss[4], sm[4];
    for (int j = 0; j < NT; j++) ss[j] = sm[j] = _mm256_setzero_ps();
    for (int m = 0; m < 4; m++) {
      __m256i slo[4], shi[4];
      for (int j = 0; j < NT; j++) slo[j] = shi[j] = _mm256_setzero_si256();
      for (int c = 0; c < 8; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 160 + 256 * m + 32 * c));
        const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        for (int j = 0; j < NT; j++) {
          const q8a_block *xb = &x->xa[(long)(t + j) * nb + 8 * sb + 2 * m];
          int32_t f0, f1;
          memcpy(&f0, xb[0].qs + 4 * c, 4);
          memcpy(&f1, xb[1].qs + 4 * c, 4);
          slo[j] = _mm256_add_epi16(slo[j], _mm256_maddubs_epi16(lo, _mm256_set1_epi32(f0)));
          shi[j] = _mm256_add_epi16(shi[j], _mm256_maddubs_epi16(hi, _mm256_set1_epi32(f1)));
        }
      }
      for (int h = 0; h < 2; h++) {
        const int sub = 2 * m + h;
        const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 32 + 8 * sub))));
        const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 96 + 8 * sub))));
        for (int j = 0; j < NT; j++) {
          const long o = (long)(t + j) * nb + 8 * sb + sub;
          const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(h ? shi[j] : slo[j], ones));
          ss[j] = _mm256_fmadd_ps(dot, _mm256_mul_ps(sc, _mm256_broadcast_ss(x->d + o)), ss[j]);
          sm[j] = _mm256_fmadd_ps(mn, _mm256_broadcast_ss(x->nsd + o), sm[j]);
        }
      }
    }
    for (int j = 0; j < NT; j++) {
      a[j] = _mm256_fmadd_ps(dv, ss[j], a[j]);
      am[j] = _mm256_fmadd_ps(dmv, sm[j], am[j]);
    }
  }
  for (int j = 0; j < NT; j++) put8(y + (long)j * ldy, _mm256_add_ps(a[j], am[j]), acc);
}


/* X8 Q4_0 group (nb blocks of 144 bytes) → gemm8's packed layout (values as bytes) and scales */
static void unpack8_q4_0x8(const uint8_t *grp, int nb, uint8_t *pk, float *ds) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int b = 0; b < nb; b++) {
    const uint8_t *p = grp + 144 * (size_t)b;
    for (int c = 0; c < 4; c++) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
      _mm256_store_si256((__m256i *)(pk + 256 * (size_t)b + 32 * c), _mm256_and_si256(v, m4));
      _mm256_store_si256((__m256i *)(pk + 256 * (size_t)b + 32 * (c + 4)), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
    }
    _mm256_store_ps(ds + 8 * b, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)));
  }
}

/* X8 Q4_K group (nsb super-blocks of 1184 bytes) → gemm8's layout, one block per 32-value
 * sub-block, with d·scale (ds) and dmin·min (ms) per sub-block and row */
static void unpack8_q4_kx8(const uint8_t *grp, int nsb, uint8_t *pk, float *ds, float *ms) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int sb = 0; sb < nsb; sb++) {
    const uint8_t *p = grp + 1184 * (size_t)sb;
    const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    const __m256 dmv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16)));
    for (int j = 0; j < 8; j++) {
      const size_t blk = 8 * (size_t)sb + j;
      _mm256_store_ps(ds + 8 * blk, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 32 + 8 * j))))));
      _mm256_store_ps(ms + 8 * blk, _mm256_mul_ps(dmv, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 96 + 8 * j))))));
    }
    for (int m = 0; m < 4; m++)
      for (int c = 0; c < 8; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 160 + 256 * m + 32 * c));
        _mm256_store_si256((__m256i *)(pk + 256 * (8 * (size_t)sb + 2 * m) + 32 * c), _mm256_and_si256(v, m4));
        _mm256_store_si256((__m256i *)(pk + 256 * (8 * (size_t)sb + 2 * m + 1) + 32 * c), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
      }
  }
}

/* prefill (T ≥ PACK8_MIN_T) of the X8 Q4_0 / Q4_K layouts: each group of 8 rows unpacked once
 * per call into gemm8's layout, then all tokens through gemm8 (the weights stay in L1 across
 * tokens); returns the rows done (all, or 0 when out of memory) */
static int x8_prefill(int kind, int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy,
                      int acc) {
  const int nb = K / 32;
  uint8_t *buf = scratch_get(2, (size_t)nb * (256 + 64) + 64);
  if (!buf) return 0;
  uint8_t *pk = (uint8_t *)(((uintptr_t)buf + 31) & ~(uintptr_t)31);
  float *ds = (float *)(pk + 256 * (size_t)nb), *ms = ds + 8 * (size_t)nb;
  for (int g = 0; g < R / 8; g++) {
    const uint8_t *grp = w + 8 * rb * (size_t)g;
    if (kind == K_Q4_0) unpack8_q4_0x8(grp, nb, pk, ds);
    else unpack8_q4_kx8(grp, K / 256, pk, ds, ms);
    int t = 0;
    for (; t + 4 <= T; t += 4) gemm8(kind, 4, pk, ds, ms, x, t, y + (long)t * ldy + 8 * g, ldy, acc);
    for (; t < T; t++) gemm8(kind, 1, pk, ds, ms, x, t, y + (long)t * ldy + 8 * g, ldy, acc);
  }
  return R;
}

/* the X8 kernels over R rows (groups of 8) and T tokens: prefill of Q4_0 / Q4_K through gemm8,
 * otherwise each group for 4 tokens at a time, then one at a time */
static inline __attribute__((always_inline)) void x8_rows(int kind, int K, const uint8_t *w, size_t rb, int R,
                                                          const q8a_rows *x, int T, float *y, long ldy, int acc) {
  if (kind != K_Q8_0 && T >= PACK8_MIN_T && x8_prefill(kind, K, w, rb, R, x, T, y, ldy, acc) == R) return;
  int g0 = 0;
  /* decode: four memory streams, a quarter of the groups apart (Q4_0, Q8_0: 5–28% faster on the
   * development machine; Q4_K's heavier group kernel lost 7–11% that way, so it keeps one stream) */
  if (T == 1 && kind != K_Q4_K) {
    const int q = R / 8 / 4;
    for (int i = 0; i < q; i++) {
      const uint8_t *gs[4];
      float *ys[4];
      for (int s = 0; s < 4; s++) { gs[s] = w + 8 * rb * (size_t)(i + s * q); ys[s] = y + 8 * (i + s * q); }
      if (kind == K_Q4_0) x8_groups4(gs, K / 32, x, 0, ys, acc);
      else x8q8_groups4(gs, K / 32, x, 0, ys, acc);
    }
    g0 = 4 * q;
  }
  for (int g = g0; g < R / 8; g++) {
    const uint8_t *grp = w + 8 * rb * (size_t)g;
    float *yg = y + 8 * g;
    int t = 0;
    for (; t + 4 <= T; t += 4) {
      if (kind == K_Q4_0) x8_group(4, grp, K / 32, x, t, yg + (long)t * ldy, ldy, acc);
      else if (kind == K_Q8_0) x8q8_group(4, grp, K / 32, x, t, yg + (long)t * ldy, ldy, acc);
      else x8q4k_group(4, grp, K / 256, x, t, yg + (long)t * ldy, ldy, acc);
    }
    for (; t < T; t++) {
      if (kind == K_Q4_0) x8_group(1, grp, K / 32, x, t, yg + (long)t * ldy, ldy, acc);
      else if (kind == K_Q8_0) x8q8_group(1, grp, K / 32, x, t, yg + (long)t * ldy, ldy, acc);
      else x8q4k_group(1, grp, K / 256, x, t, yg + (long)t * ldy, ldy, acc);
    }
  }
}

static void rows_q4_0x8(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  x8_rows(K_Q4_0, K, w, rb, R, x, T, y, ldy, acc);
}
static void rows_q8_0x8(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  x8_rows(K_Q8_0, K, w, rb, R, x, T, y, ldy, acc);
}
static void rows_q4_kx8(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y, long ldy, int acc) {
  x8_rows(K_Q4_K, K, w, rb, R, x, T, y, ldy, acc);
}

void q8_rows_avx2(kernels_t *k) {
  for (int i = 0; i < 65536; i++) g_f16[i] = f16_to_f32((uint16_t)i);
  k->q8_rows[DT_Q4_0] = rows_q4_0;
  k->q8_rows[DT_Q8_0] = rows_q8_0;
  k->q8_rows[DT_Q5_0] = rows_q5_0;
  k->q8_rows[DT_Q4_K] = rows_q4_k;
  k->q8_rows[DT_Q6_K] = rows_q6_k;
  k->q8_rows[DT_Q4_0X8] = rows_q4_0x8;
  k->q8_rows[DT_Q8_0X8] = rows_q8_0x8;
  k->q8_rows[DT_Q4_KX8] = rows_q4_kx8;
}
