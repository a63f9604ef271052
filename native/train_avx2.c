/*
 * The AVX2 + FMA row table of the training kernels (train.h train_rows_t): max, exp-and-sum,
 * scale, SwiGLU forward/backward, AdamW, sum of squares, dot, softmax backward. Compiled with
 * -mavx2 -mfma -ffp-contract=off (and -mf16c for simd_avx2.h; binding.gyp) and used only after
 * dispatch.c chose AVX2 or AVX-512. Each entry computes what its scalar twin in train_ops.c
 * computes; AdamW is exact (float64, the reference's operation order, no fused multiply-adds),
 * the others use the vectorised exp of simd_avx2.h and float sums in a fixed order.
 */
#include <math.h>
#include "simd_avx2.h"
#include "train.h"

/* the first n (< 8) lanes of p, the others `fill` */
static inline __m256 load_tail(int n, const float *p, float fill) {
  float t[8];
  for (int i = 0; i < 8; i++) t[i] = i < n ? p[i] : fill;
  return _mm256_loadu_ps(t);
}

static inline void store_tail(int n, float *p, __m256 v) {
  float t[8];
  _mm256_storeu_ps(t, v);
  for (int i = 0; i < n; i++) p[i] = t[i];
}

static float max_avx2(int n, const float *x) {
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
  }
  for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
  if (i < n) m1 = _mm256_max_ps(m1, load_tail(n - i, x + i, -INFINITY));
  return hmax256(_mm256_max_ps(m0, m1));
}

/* float partial sums per 1024 elements, added to a double in order */
static double exp_sum_avx2(int n, float *x, float shift) {
  const __m256 vs = _mm256_set1_ps(shift);
  double total = 0.0;
  int i = 0;
  while (i < n) {
    const int end = n - i > 1024 ? i + 1024 : n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (; i + 16 <= end; i += 16) {
      const __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
      const __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
      _mm256_storeu_ps(x + i, e0);
      _mm256_storeu_ps(x + i + 8, e1);
      a0 = _mm256_add_ps(a0, e0);
      a1 = _mm256_add_ps(a1, e1);
    }
    for (; i + 8 <= end; i += 8) {
      const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
      _mm256_storeu_ps(x + i, e);
      a0 = _mm256_add_ps(a0, e);
    }
    if (i < end) {
      const int r = end - i;
      const __m256 e = exp256(_mm256_sub_ps(load_tail(r, x + i, -INFINITY), vs)); /* padding → 0 */
      store_tail(r, x + i, e);
      a1 = _mm256_add_ps(a1, e);
      i = end;
    }
    total += hsum256(_mm256_add_ps(a0, a1));
  }
  return total;
}

static void scale_avx2(int n, float *x, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
  for (; i < n; i++) x[i] *= s;
}

static inline __m256 sigmoid256(__m256 a) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), a))));
}

static void swiglu_fwd_avx2(int n, float *h, const float *a, const float *b) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 va = _mm256_loadu_ps(a + i);
    _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_mul_ps(va, sigmoid256(va)), _mm256_loadu_ps(b + i)));
  }
  if (i < n) {
    const __m256 va = load_tail(n - i, a + i, 0.0f);
    store_tail(n - i, h + i, _mm256_mul_ps(_mm256_mul_ps(va, sigmoid256(va)), load_tail(n - i, b + i, 0.0f)));
  }
}

static void swiglu_bwd_avx2(int n, float *da, float *db, const float *dh, const float *a, const float *b) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int i = 0; i < n; i += 8) {
    const int r = n - i < 8 ? n - i : 8;
    const __m256 va = r == 8 ? _mm256_loadu_ps(a + i) : load_tail(r, a + i, 0.0f);
    const __m256 vb = r == 8 ? _mm256_loadu_ps(b + i) : load_tail(r, b + i, 0.0f);
    const __m256 g = r == 8 ? _mm256_loadu_ps(dh + i) : load_tail(r, dh + i, 0.0f);
    const __m256 sg = sigmoid256(va);
    if (da) {
      const __m256 d = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(g, vb), sg),
                                     _mm256_add_ps(one, _mm256_mul_ps(va, _mm256_sub_ps(one, sg))));
      if (r == 8) _mm256_storeu_ps(da + i, _mm256_add_ps(_mm256_loadu_ps(da + i), d));
      else store_tail(r, da + i, _mm256_add_ps(load_tail(r, da + i, 0.0f), d));
    }
    if (db) {
      const __m256 d = _mm256_mul_ps(_mm256_mul_ps(g, va), sg);
      if (r == 8) _mm256_storeu_ps(db + i, _mm256_add_ps(_mm256_loadu_ps(db + i), d));
      else store_tail(r, db + i, _mm256_add_ps(load_tail(r, db + i, 0.0f), d));
    }
  }
}

/* exact float64 AdamW, 4 elements at a time (no FMA: this file is built with -ffp-contract=off) */
static void adamw_avx2(long n, float *w, const float *g, float *m, float *v, const double *hp) {
  const __m256d decay = _mm256_set1_pd(hp[HP_DECAY]), b1 = _mm256_set1_pd(hp[HP_B1]), c1 = _mm256_set1_pd(hp[HP_C1]);
  const __m256d b2 = _mm256_set1_pd(hp[HP_B2]), c2 = _mm256_set1_pd(hp[HP_C2]), step = _mm256_set1_pd(hp[HP_STEP]);
  const __m256d ibc2 = _mm256_set1_pd(hp[HP_INVBC2]), eps = _mm256_set1_pd(hp[HP_EPS]);
  long i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d gi = _mm256_cvtps_pd(_mm_loadu_ps(g + i));
    const __m256d mi = _mm256_add_pd(_mm256_mul_pd(b1, _mm256_cvtps_pd(_mm_loadu_ps(m + i))), _mm256_mul_pd(c1, gi));
    const __m256d vi = _mm256_add_pd(_mm256_mul_pd(b2, _mm256_cvtps_pd(_mm_loadu_ps(v + i))),
                                     _mm256_mul_pd(_mm256_mul_pd(c2, gi), gi));
    _mm_storeu_ps(m + i, _mm256_cvtpd_ps(mi));
    _mm_storeu_ps(v + i, _mm256_cvtpd_ps(vi));
    const __m256d den = _mm256_add_pd(_mm256_mul_pd(_mm256_sqrt_pd(vi), ibc2), eps);
    const __m256d wi = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(w + i)), decay);
    _mm_storeu_ps(w + i, _mm256_cvtpd_ps(_mm256_sub_pd(wi, _mm256_div_pd(_mm256_mul_pd(step, mi), den))));
  }
  for (; i < n; i++) {
    const double gd = g[i];
    const double mi = hp[HP_B1] * m[i] + hp[HP_C1] * gd;
    const double vi = hp[HP_B2] * v[i] + hp[HP_C2] * gd * gd;
    m[i] = (float)mi;
    v[i] = (float)vi;
    w[i] = (float)(w[i] * hp[HP_DECAY] - (hp[HP_STEP] * mi) / (sqrt(vi) * hp[HP_INVBC2] + hp[HP_EPS]));
  }
}

static double sumsq_avx2(long n, const float *x) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0;
  long i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    s0 = _mm256_add_pd(s0, _mm256_mul_pd(a, a));
    s1 = _mm256_add_pd(s1, _mm256_mul_pd(b, b));
  }
  double t[4];
  _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
  double s = (t[0] + t[1]) + (t[2] + t[3]);
  for (; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

static float dot_avx2(int n, const float *a, const float *b) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

static void dsoftmax_avx2(int n, float *ds, const float *p, float d, float scale) {
  const __m256 vd = _mm256_set1_ps(d), vs = _mm256_set1_ps(scale);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(ds + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(p + i), _mm256_sub_ps(_mm256_loadu_ps(ds + i), vd)), vs));
  for (; i < n; i++) ds[i] = p[i] * (ds[i] - d) * scale;
}

void train_rows_avx2(train_rows_t *t) {
  t->max = max_avx2;
  t->exp_sum = exp_sum_avx2;
  t->scale = scale_avx2;
  t->swiglu_fwd = swiglu_fwd_avx2;
  t->swiglu_bwd = swiglu_bwd_avx2;
  t->adamw = adamw_avx2;
  t->sumsq = sumsq_avx2;
  t->dot = dot_avx2;
  t->dsoftmax = dsoftmax_avx2;
}
