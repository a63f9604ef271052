/*
 * The AVX2 + FMA + F16C kernel table (this file is compiled with -mavx2 -mfma -mf16c and only
 * called after dispatch.c checked the CPU): the 4×24 GEMM micro-kernel, f32/f16/bf16 dot products,
 * one head of attention (scores, softmax, weighted sum of values) and SiLU·mul. The integer quantized dots are in quant_dot_avx2.c.
 * Each function has a scalar twin in kernels_scalar.c computing the same thing.
 */
#include <math.h>
#include "common.h"
#include "simd_avx2.h"

void q8_dots_avx2(kernels_t *k); /* quant_dot_avx2.c */
void q8_rows_avx2(kernels_t *k); /* quant_mm_avx2.c */
void dequant_row_avx2(int dt, const uint8_t *src, long n, float *dst); /* quant_decode_avx2.c */

/*
 * C (4, 24) (+)= Σ_k ap[k·4 + i] · bp[k·24 + j]: 12 accumulators of 8 floats, three loads of B and
 * four broadcasts of A per k (7 loads per 12 FMAs; a 6×16 tile needs 8, and its last sliver of a
 * 128-row prompt is two thirds padding).
 */
static void gemm_tile_4x24(int kc, const float *ap, const float *bp, float *c, long ldc, int acc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
#pragma GCC unroll 4
  for (int k = 0; k < kc; k++, ap += 4, bp += 24) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8), b2 = _mm256_loadu_ps(bp + 16);
    __m256 a;
#define ROW(i, r0, r1, r2) \
    a = _mm256_broadcast_ss(ap + i); \
    r0 = _mm256_fmadd_ps(a, b0, r0); r1 = _mm256_fmadd_ps(a, b1, r1); r2 = _mm256_fmadd_ps(a, b2, r2);
    ROW(0, c00, c01, c02) ROW(1, c10, c11, c12) ROW(2, c20, c21, c22) ROW(3, c30, c31, c32)
#undef ROW
  }
#define STORE(i, r0, r1, r2) \
  if (acc) { \
    r0 = _mm256_add_ps(r0, _mm256_loadu_ps(c + i * ldc)); r1 = _mm256_add_ps(r1, _mm256_loadu_ps(c + i * ldc + 8)); \
    r2 = _mm256_add_ps(r2, _mm256_loadu_ps(c + i * ldc + 16)); \
  } \
  _mm256_storeu_ps(c + i * ldc, r0); _mm256_storeu_ps(c + i * ldc + 8, r1); _mm256_storeu_ps(c + i * ldc + 16, r2);
  STORE(0, c00, c01, c02) STORE(1, c10, c11, c12) STORE(2, c20, c21, c22) STORE(3, c30, c31, c32)
#undef STORE
}

static float dot_f32_avx2(int n, const float *a, const float *b) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

static inline __m256 load_f16x8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static inline __m256 load_bf16x8(const uint8_t *p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static float dot_f16_avx2(int n, const uint8_t *w, const float *x) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(load_f16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
    s1 = _mm256_fmadd_ps(load_f16x8(w + 2 * i + 16), _mm256_loadu_ps(x + i + 8), s1);
    s2 = _mm256_fmadd_ps(load_f16x8(w + 2 * i + 32), _mm256_loadu_ps(x + i + 16), s2);
    s3 = _mm256_fmadd_ps(load_f16x8(w + 2 * i + 48), _mm256_loadu_ps(x + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_f16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
  float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++) s += ld_f16(w + 2 * i) * x[i];
  return s;
}

static float dot_bf16_avx2(int n, const uint8_t *w, const float *x) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
    s1 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i + 16), _mm256_loadu_ps(x + i + 8), s1);
    s2 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i + 32), _mm256_loadu_ps(x + i + 16), s2);
    s3 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i + 48), _mm256_loadu_ps(x + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
  float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++) s += bf16_to_f32(ld_u16(w + 2 * i)) * x[i];
  return s;
}

/* four row sums in one register: lane r of the result = Σ lanes of a[r] */
static inline __m128 hsum4x256(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3); /* pairs of lanes */
  const __m256 h = _mm256_hadd_ps(h01, h23);                               /* r0 r1 r2 r3 per half */
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* weights of row r at index i, as f32: the three float dtypes of dot4 */
#define DOT4_LOAD(dt, w, i) ((dt) == DT_F32 ? _mm256_loadu_ps((const float *)(w) + (i)) \
                             : (dt) == DT_F16 ? load_f16x8((w) + 2 * (i)) : load_bf16x8((w) + 2 * (i)))

/* four rows at once, two accumulators per row (eight FMA chains in flight) */
#define DOT4_BODY(dt)                                                                               \
  const uint8_t *w0 = w, *w1 = w + rb, *w2 = w + 2 * rb, *w3 = w + 3 * rb;                          \
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0; \
  int i = 0;                                                                                        \
  for (; i + 16 <= n; i += 16) {                                                                    \
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);                      \
    a0 = _mm256_fmadd_ps(DOT4_LOAD(dt, w0, i), x0, a0);                                             \
    a1 = _mm256_fmadd_ps(DOT4_LOAD(dt, w1, i), x0, a1);                                             \
    a2 = _mm256_fmadd_ps(DOT4_LOAD(dt, w2, i), x0, a2);                                             \
    a3 = _mm256_fmadd_ps(DOT4_LOAD(dt, w3, i), x0, a3);                                             \
    b0 = _mm256_fmadd_ps(DOT4_LOAD(dt, w0, i + 8), x1, b0);                                         \
    b1 = _mm256_fmadd_ps(DOT4_LOAD(dt, w1, i + 8), x1, b1);                                         \
    b2 = _mm256_fmadd_ps(DOT4_LOAD(dt, w2, i + 8), x1, b2);                                         \
    b3 = _mm256_fmadd_ps(DOT4_LOAD(dt, w3, i + 8), x1, b3);                                         \
  }                                                                                                 \
  for (; i + 8 <= n; i += 8) {                                                                      \
    const __m256 x0 = _mm256_loadu_ps(x + i);                                                       \
    a0 = _mm256_fmadd_ps(DOT4_LOAD(dt, w0, i), x0, a0);                                             \
    a1 = _mm256_fmadd_ps(DOT4_LOAD(dt, w1, i), x0, a1);                                             \
    a2 = _mm256_fmadd_ps(DOT4_LOAD(dt, w2, i), x0, a2);                                             \
    a3 = _mm256_fmadd_ps(DOT4_LOAD(dt, w3, i), x0, a3);                                             \
  }                                                                                                 \
  _mm_storeu_ps(out, hsum4x256(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2), \
                               _mm256_add_ps(a3, b3)));                                             \
  for (; i < n; i++) {                                                                              \
    const uint8_t *ws[4] = { w0, w1, w2, w3 };                                                      \
    for (int r = 0; r < 4; r++)                                                                     \
      out[r] += ((dt) == DT_F32 ? ((const float *)ws[r])[i] : (dt) == DT_F16 ? ld_f16(ws[r] + 2 * i) \
                                                              : bf16_to_f32(ld_u16(ws[r] + 2 * i))) * x[i]; \
  }

static void dot4_avx2(int dt, int n, const uint8_t *w, size_t rb, const float *x, float *out) {
  if (dt == DT_F32) { DOT4_BODY(DT_F32) }
  else if (dt == DT_F16) { DOT4_BODY(DT_F16) }
  else { DOT4_BODY(DT_BF16) }
}
#undef DOT4_BODY
#undef DOT4_LOAD

/* r[i] ← column i of the 8×8 block whose rows are r[0..7] */
static inline void transpose8x8_ps(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* GEMM B packing (kernels_t.pack_nt): 8 rows × 8 k at a time, converted in registers, one 8×8
 * transpose; NR a multiple of 8. Eight rows are walked along k before the next eight: rows a
 * power of two apart share an L1 set, and all NR of them at once would evict each other. */
#define PACK_NT_BODY(dt)                                                                           \
  const int es = (dt) == DT_F32 ? 4 : 2;                                                           \
  const int kv = kc & ~7;                                                                          \
  for (int j = 0; j < NR; j += 8)                                                                  \
    for (int k = 0; k < kv; k += 8) {                                                              \
      __m256 r[8];                                                                                 \
      for (int i = 0; i < 8; i++) {                                                                \
        const uint8_t *p = src + (long)(j + i) * rs + (long)es * k;                                \
        r[i] = (dt) == DT_F32 ? _mm256_loadu_ps((const float *)p) : (dt) == DT_F16 ? load_f16x8(p) : load_bf16x8(p); \
      }                                                                                            \
      transpose8x8_ps(r);                                                                          \
      for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (long)(k + i) * NR + j, r[i]);           \
    }                                                                                              \
  for (int k = kv; k < kc; k++)                                                                    \
    for (int j = 0; j < NR; j++) {                                                                 \
      const uint8_t *p = src + (long)j * rs + (long)es * k;                                        \
      dst[(long)k * NR + j] = (dt) == DT_F32 ? ld_f32(p) : (dt) == DT_F16 ? ld_f16(p) : bf16_to_f32(ld_u16(p)); \
    }

static void pack_nt_avx2(int dt, const uint8_t *src, long rs, int kc, int NR, float *dst) {
  if (dt == DT_F32) { PACK_NT_BODY(DT_F32) }
  else if (dt == DT_F16) { PACK_NT_BODY(DT_F16) }
  else { PACK_NT_BODY(DT_BF16) }
}
#undef PACK_NT_BODY

static void f16_to_f32_avx2(int n, const uint8_t *src, float *dst) {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16x8(src + 2 * i));
  for (; i < n; i++) dst[i] = ld_f16(src + 2 * i);
}

static float exp_shift_sum_avx2(int n, float *x, float shift) {
  const __m256 vs = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (i < n) { /* tail through a padded vector so it uses the same exp as the body */
    float t[8] = { 0 };
    for (int j = 0; j < n - i; j++) t[j] = x[i + j] - shift;
    const __m256 e = exp256(_mm256_loadu_ps(t));
    _mm256_storeu_ps(t, e);
    for (int j = 0; j < n - i; j++) x[i + j] = t[j];
    for (int j = n - i; j < 8; j++) t[j] = 0.0f;
    acc = _mm256_add_ps(acc, _mm256_loadu_ps(t));
  }
  return hsum256(acc);
}

/* cache rows (hs floats, stride apart) are strided in memory: fetch the one `ahead` rows on */
#define ATTN_PREFETCH_ROWS 8
static inline void prefetch_row(const float *row, int hs) {
  for (int i = 0; i < hs; i += 16) _mm_prefetch((const char *)(row + i), _MM_HINT_T0);
}

/* scores (n) = scale · q·k_s, four keys at a time (one combined horizontal reduction) */
static void attn_scores(int n, int hs, const float *q, const float *k, long stride, float scale, float *scores) {
  const int hv = hs & ~7;
  int s = 0;
  for (; s + 4 <= n; s += 4) {
    const float *k0 = k + (long)s * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
    if (s + ATTN_PREFETCH_ROWS + 4 <= n)
      for (int j = 0; j < 4; j++) prefetch_row(k + (long)(s + ATTN_PREFETCH_ROWS + j) * stride, hs);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < hv; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
      a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), a1);
      a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), a2);
      a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), a3);
    }
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3)); /* lanes: 4 low, 4 high halves */
    float d[4];
    _mm_storeu_ps(d, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
    for (int i = hv; i < hs; i++) { d[0] += q[i] * k0[i]; d[1] += q[i] * k1[i]; d[2] += q[i] * k2[i]; d[3] += q[i] * k3[i]; }
    for (int t = 0; t < 4; t++) scores[s + t] = d[t] * scale;
  }
  for (; s < n; s++) scores[s] = dot_f32_avx2(hs, q, k + (long)s * stride) * scale;
}

static void attend_head_avx2(int n, int hs, const float *q, const float *k, const float *v, long stride,
                             float scale, float *scores, float *out) {
  attn_scores(n, hs, q, k, stride, scale, scores);
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int s = 0;
  for (; s + 8 <= n; s += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(scores + s));
  float max = hmax256(vmax);
  for (; s < n; s++) if (scores[s] > max) max = scores[s];
  const float inv = 1.0f / exp_shift_sum_avx2(n, scores, max);
  for (s = 0; s < n; s++) scores[s] *= inv;
  int i0 = 0;
  for (; i0 + 32 <= hs; i0 += 32) { /* 32 outputs stay in registers over all keys */
    __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
    for (s = 0; s < n; s++) {
      if (i0 == 0 && s + ATTN_PREFETCH_ROWS < n) prefetch_row(v + (long)(s + ATTN_PREFETCH_ROWS) * stride, hs);
      const __m256 p = _mm256_set1_ps(scores[s]);
      const float *vs = v + (long)s * stride + i0;
      o0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vs), o0);
      o1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vs + 8), o1);
      o2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vs + 16), o2);
      o3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vs + 24), o3);
    }
    _mm256_storeu_ps(out + i0, o0); _mm256_storeu_ps(out + i0 + 8, o1);
    _mm256_storeu_ps(out + i0 + 16, o2); _mm256_storeu_ps(out + i0 + 24, o3);
  }
  for (; i0 + 8 <= hs; i0 += 8) {
    __m256 o = _mm256_setzero_ps();
    for (s = 0; s < n; s++) o = _mm256_fmadd_ps(_mm256_set1_ps(scores[s]), _mm256_loadu_ps(v + (long)s * stride + i0), o);
    _mm256_storeu_ps(out + i0, o);
  }
  for (; i0 < hs; i0++) {
    float o = 0.0f;
    for (s = 0; s < n; s++) o += scores[s] * v[(long)s * stride + i0];
    out[i0] = o;
  }
}

static void silu_mul_avx2(int n, float *g, const float *u) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(g + i);
    const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), v));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
  if (i < n) {
    float t[8] = { 0 }, w[8] = { 0 };
    for (int j = 0; j < n - i; j++) { t[j] = g[i + j]; w[j] = u[i + j]; }
    silu_mul_avx2(8, t, w);
    for (int j = 0; j < n - i; j++) g[i + j] = t[j];
  }
}

static void add_f32_avx2(int n, float *x, const float *y) {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) x[i] += y[i];
}

void kernels_avx2(kernels_t *k) {
  k->name = "avx2";
  k->mr = 4;
  k->nr = 24;
  k->gemm_tile = gemm_tile_4x24;
  k->dot_f32 = dot_f32_avx2;
  k->dot_f16 = dot_f16_avx2;
  k->dot_bf16 = dot_bf16_avx2;
  k->dot4 = dot4_avx2;
  k->f16_to_f32 = f16_to_f32_avx2;
  k->pack_nt = pack_nt_avx2;
  k->dequant_row = dequant_row_avx2;
  k->attend_head = attend_head_avx2;
  k->exp_shift_sum = exp_shift_sum_avx2;
  k->silu_mul = silu_mul_avx2;
  k->add_f32 = add_f32_avx2;
  q8_dots_avx2(k);
  q8_rows_avx2(k);
}
