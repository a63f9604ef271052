/*
 * The small per-row and elementwise kernels: RMSNorm, RoPE, SiLU·mul, add, the embedding lookup,
 * and a memory-read bandwidth probe for the benchmark. RMSNorm and RoPE follow src/backend/ref.ts operation for
 * operation (float64 where it uses float64) so they agree with it to the last bit or so; SiLU
 * and add go through the ISA table. Large inputs are split over the pool. Attention is in
 * attention.c, matrix products in gemm.c / matmul.c.
 *
 * Legend: T = rows, C = row width, HS = head size.
 */
#include <math.h>
#include <stdlib.h>
#include "native.h"

#define ELEMS_PER_THREAD 32768 /* elementwise work below this stays on one thread */

static int threads_for(double work) {
  int nth = pool_threads();
  const int want = (int)(work / ELEMS_PER_THREAD);
  return want < nth ? (want < 1 ? 1 : want) : nth;
}

/* ---- RMSNorm: y (T, C) = x / sqrt(mean(x²) + eps) · g; y may alias x */

typedef struct { float *y; const float *x; const float *g; int T, C; double eps; } norm_job;

static void norm_rows(const norm_job *j, int t0, int t1) {
  const int C = j->C;
  for (int t = t0; t < t1; t++) {
    const float *x = j->x + (long)t * C;
    float *y = j->y + (long)t * C;
    double ss = 0.0;
    for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
    const double inv = 1.0 / sqrt(ss / C + j->eps);
    for (int i = 0; i < C; i++) y[i] = (float)(x[i] * inv) * j->g[i];
  }
}

static void norm_worker(void *arg, int ith, int nth) {
  const norm_job *j = arg;
  norm_rows(j, (int)((long)j->T * ith / nth), (int)((long)j->T * (ith + 1) / nth));
}

void rmsnorm(float *y, const float *x, const float *g, int T, int C, double eps) {
  norm_job j = { y, x, g, T, C, eps };
  pool_run(norm_worker, &j, T > 1 ? threads_for((double)T * C) : 1);
}

/* ---- RoPE: a cos/sin table per (HS, theta), angles in float64, values rounded to f32 (as ref) */

rope_cache_t g_rope;

int rope_table(int hs, double theta, int minLen) {
  if (g_rope.cos && g_rope.hs == hs && g_rope.theta == theta && g_rope.len >= minLen) return 0;
  int len = (g_rope.cos && g_rope.hs == hs && g_rope.theta == theta) ? 2 * g_rope.len : 256;
  if (len < minLen) len = minLen;
  const int half = hs / 2;
  float *c = malloc(sizeof(float) * (size_t)len * half), *s = malloc(sizeof(float) * (size_t)len * half);
  if (!c || !s) { free(c); free(s); return -1; }
  for (int i = 0; i < half; i++) {
    const double freq = 1.0 / pow(theta, (2.0 * i) / hs);
    for (int p = 0; p < len; p++) {
      const double a = p * freq;
      c[(long)p * half + i] = (float)cos(a);
      s[(long)p * half + i] = (float)sin(a);
    }
  }
  free(g_rope.cos);
  free(g_rope.sin);
  g_rope.cos = c; g_rope.sin = s; g_rope.hs = hs; g_rope.len = len; g_rope.theta = theta;
  return 0;
}

typedef struct { float *x; int T, nHeads, hs; const int32_t *pos; } rope_job;

static void rope_worker(void *arg, int ith, int nth) {
  const rope_job *j = arg;
  const int half = j->hs / 2, W = j->nHeads * j->hs;
  const int t0 = (int)((long)j->T * ith / nth), t1 = (int)((long)j->T * (ith + 1) / nth);
  for (int t = t0; t < t1; t++) {
    const float *cs = g_rope.cos + (long)j->pos[t] * half, *sn = g_rope.sin + (long)j->pos[t] * half;
    for (int h = 0; h < j->nHeads; h++) {
      float *x = j->x + (long)t * W + (long)h * j->hs;
      for (int i = 0; i < half; i++) {
        const double a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = (float)(a * cs[i] - b * sn[i]);
        x[2 * i + 1] = (float)(a * sn[i] + b * cs[i]);
      }
    }
  }
}

int rope(float *x, int T, int nHeads, int hs, const int32_t *pos, double theta) {
  int maxPos = 0;
  for (int t = 0; t < T; t++) if (pos[t] > maxPos) maxPos = pos[t];
  if (rope_table(hs, theta, maxPos + 1) != 0) return -1;
  rope_job j = { x, T, nHeads, hs, pos };
  pool_run(rope_worker, &j, T > 1 ? threads_for((double)T * nHeads * hs) : 1);
  return 0;
}

/* ---- elementwise: split [0, n) in 64-element-aligned ranges */

typedef struct { float *a; const float *b; long n; int op; } ew_job;

static void ew_worker(void *arg, int ith, int nth) {
  const ew_job *j = arg;
  const long blocks = (j->n + 63) / 64;
  const long i0 = blocks * ith / nth * 64;
  long i1 = blocks * (ith + 1) / nth * 64;
  if (i1 > j->n) i1 = j->n;
  if (i0 >= i1) return;
  if (j->op == 0) K_ACTIVE->silu_mul((int)(i1 - i0), j->a + i0, j->b + i0);
  else K_ACTIVE->add_f32((int)(i1 - i0), j->a + i0, j->b + i0);
}

void swiglu(float *g, const float *u, long n) {
  ew_job j = { g, u, n, 0 };
  pool_run(ew_worker, &j, threads_for((double)n * 4)); /* exp and divide: ~4× an add */
}

void add_vec(float *x, const float *y, long n) {
  ew_job j = { x, y, n, 1 };
  pool_run(ew_worker, &j, threads_for((double)n));
}

/* ---- read bandwidth probe: Σ values, each thread over a contiguous share read as rows of
 * PROBE_ROW floats, four rows at a time with the matvec kernel (dot4 against a vector of ones):
 * the access pattern of a decode matvec, whose four interleaved streams the hardware prefetchers
 * serve faster than one (a one-stream Σx² read 10–30% less on the development machine) */

#define PROBE_ROW 4096
static float probe_ones[PROBE_ROW];

typedef struct { const float *p; size_t n; int reps; double sums[256]; } probe_job;

static void probe_worker(void *arg, int ith, int nth) {
  probe_job *j = arg;
  const kernels_t *kt = K_ACTIVE;
  const size_t i0 = j->n * ith / nth, i1 = j->n * (ith + 1) / nth;
  const size_t rb = PROBE_ROW * sizeof(float);
  double s = 0.0;
  for (int r = 0; r < j->reps; r++) {
    size_t i = i0;
    float o4[4];
    if (kt->dot4)
      for (; i + 4 * PROBE_ROW <= i1; i += 4 * PROBE_ROW) {
        kt->dot4(DT_F32, PROBE_ROW, (const uint8_t *)(j->p + i), rb, probe_ones, o4);
        s += (double)o4[0] + o4[1] + o4[2] + o4[3];
      }
    for (; i < i1; i += PROBE_ROW) s += kt->dot_f32((int)(i1 - i < PROBE_ROW ? i1 - i : PROBE_ROW), j->p + i, probe_ones);
  }
  j->sums[ith] = s;
}

double read_probe(const float *p, size_t n, int reps) {
  static probe_job j; /* 2 KiB of sums: not on the stack */
  if (probe_ones[0] != 1.0f)
    for (int i = 0; i < PROBE_ROW; i++) probe_ones[i] = 1.0f;
  j.p = p; j.n = n; j.reps = reps;
  const int nth = pool_threads() < 256 ? pool_threads() : 256;
  for (int i = 0; i < 256; i++) j.sums[i] = 0.0;
  pool_run(probe_worker, &j, nth);
  double s = 0.0;
  for (int i = 0; i < nth; i++) s += j.sums[i];
  return s;
}

/* ---- embedding: out (T, C) = table[ids[t]] decoded to f32 (ids already range-checked) */

void embedding(float *out, const uint8_t *table, int dt, int C, const int32_t *ids, int T) {
  const size_t rb = dt_row_bytes(dt, C);
  for (int t = 0; t < T; t++) dequant_row(dt, table + (size_t)ids[t] * rb, C, out + (long)t * C);
}
