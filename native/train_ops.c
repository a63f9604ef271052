/*
 * Row and elementwise training kernels (see train.h): fused softmax cross-entropy forward and
 * backward, the AdamW update, sum of squares, RMSNorm backward, SwiGLU forward and backward and
 * the RoPE rotation (either direction), each split over the pool; plus the scalar row table, the
 * ISA choice of that table and the training kernels' per-thread scratch.
 *
 * Work splits never change results: rows are independent, elementwise ops are elementwise, and
 * the two reductions (sum of squares, RMSNorm's weight gradient) sum fixed blocks whose partial
 * results are combined in block order by the calling thread.
 * Attention is in train_attn.c, the AVX2 row table in train_avx2.c, the N-API side in
 * addon_train.c.
 *
 * Legend: R = rows, V = vocabulary, T = rows (tokens), C = row width, HS = head size.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "native.h"
#include "train.h"

#define ELEMS_PER_THREAD 32768 /* elementwise work below this stays on one thread */
#define SUMSQ_BLOCK 65536      /* fixed reduction blocks of sum_squares */
#define NORM_BLOCK 64          /* fixed row blocks of rmsnorm_backward's weight gradient */

static int threads_for(double work) {
  int nth = pool_threads();
  const int want = (int)(work / ELEMS_PER_THREAD);
  return want < nth ? (want < 1 ? 1 : want) : nth;
}

/* [i0, i1) of nth equal shares of n items, in multiples of `align` */
static void share(long n, long align, int ith, int nth, long *i0, long *i1) {
  const long units = (n + align - 1) / align;
  *i0 = units * ith / nth * align;
  *i1 = units * (ith + 1) / nth * align;
  if (*i1 > n) *i1 = n;
  if (*i0 > n) *i0 = n;
}

/* ---- per-thread scratch (freed when a pool thread exits) */

typedef struct { void *p[4]; size_t n[4]; } scratch_set;
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static _Atomic int g_oom;

static void scratch_free(void *arg) {
  scratch_set *s = arg;
  for (int i = 0; i < 4; i++) free(s->p[i]);
  free(s);
}

static void make_key(void) { pthread_key_create(&g_key, scratch_free); }

void *train_scratch(int slot, size_t bytes) {
  pthread_once(&g_key_once, make_key);
  scratch_set *s = pthread_getspecific(g_key);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s || pthread_setspecific(g_key, s) != 0) { free(s); train_set_oom(); return NULL; }
  }
  if (s->n[slot] >= bytes) return s->p[slot];
  free(s->p[slot]);
  size_t n = (bytes + bytes / 4 + 4096 + 63) & ~(size_t)63;
  s->p[slot] = aligned_alloc(64, n);
  s->n[slot] = s->p[slot] ? n : 0;
  if (!s->p[slot]) train_set_oom();
  return s->p[slot];
}

void train_set_oom(void) { atomic_store(&g_oom, 1); }
int train_take_oom(void) { return atomic_exchange(&g_oom, 0); }

/* ---- the scalar row table */

static float max_s(int n, const float *x) {
  float m = -INFINITY;
  for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

static double exp_sum_s(int n, float *x, float shift) {
  double s = 0.0;
  for (int i = 0; i < n; i++) {
    x[i] = expf(x[i] - shift);
    s += x[i];
  }
  return s;
}

static void scale_s(int n, float *x, float s) {
  for (int i = 0; i < n; i++) x[i] *= s;
}

static void swiglu_fwd_s(int n, float *h, const float *a, const float *b) {
  for (int i = 0; i < n; i++) h[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

static void swiglu_bwd_s(int n, float *da, float *db, const float *dh, const float *a, const float *b) {
  for (int i = 0; i < n; i++) {
    const float sg = 1.0f / (1.0f + expf(-a[i]));
    if (da) da[i] += dh[i] * b[i] * sg * (1.0f + a[i] * (1.0f - sg));
    if (db) db[i] += dh[i] * a[i] * sg;
  }
}

/* float64 arithmetic in the reference's order, never fused into multiply-adds */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define NO_CONTRACT
#elif defined(__GNUC__)
#define NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define NO_CONTRACT
#endif
NO_CONTRACT static void adamw_s(long n, float *w, const float *g, float *m, float *v, const double *hp) {
  const double decay = hp[HP_DECAY], b1 = hp[HP_B1], c1 = hp[HP_C1], b2 = hp[HP_B2], c2 = hp[HP_C2];
  const double step = hp[HP_STEP], ibc2 = hp[HP_INVBC2], eps = hp[HP_EPS];
  for (long i = 0; i < n; i++) {
    const double gi = g[i];
    const double mi = b1 * m[i] + c1 * gi;
    const double vi = b2 * v[i] + c2 * gi * gi;
    m[i] = (float)mi;
    v[i] = (float)vi;
    w[i] = (float)(w[i] * decay - (step * mi) / (sqrt(vi) * ibc2 + eps));
  }
}

static double sumsq_s(long n, const float *x) {
  double s = 0.0;
  for (long i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

static float dot_s(int n, const float *a, const float *b) {
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static void dsoftmax_s(int n, float *ds, const float *p, float d, float scale) {
  for (int i = 0; i < n; i++) ds[i] = p[i] * (ds[i] - d) * scale;
}

void train_rows_scalar(train_rows_t *t) {
  t->max = max_s;
  t->exp_sum = exp_sum_s;
  t->scale = scale_s;
  t->swiglu_fwd = swiglu_fwd_s;
  t->swiglu_bwd = swiglu_bwd_s;
  t->adamw = adamw_s;
  t->sumsq = sumsq_s;
  t->dot = dot_s;
  t->dsoftmax = dsoftmax_s;
}

static train_rows_t g_tables[2]; /* scalar, AVX2 */
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
  train_rows_scalar(&g_tables[0]);
  g_tables[1] = g_tables[0];
#if defined(__x86_64__) || defined(_M_X64)
  train_rows_avx2(&g_tables[1]);
#endif
}

const train_rows_t *train_rows(void) {
  pthread_once(&g_tables_once, build_tables);
  const isa_t isa = isa_current();
  return (isa == ISA_AVX2 || isa == ISA_AVX512) ? &g_tables[1] : &g_tables[0];
}

/* ---- cross-entropy: rows split over the threads, each row by one thread */

typedef struct {
  float *x; const int32_t *targets; float *nll; double *inv; const double *coef; int R, V;
} xent_job;

static void xent_fwd_worker(void *arg, int ith, int nth) {
  const xent_job *j = arg;
  const train_rows_t *tr = train_rows();
  long r0, r1;
  share(j->R, 1, ith, nth, &r0, &r1);
  for (long r = r0; r < r1; r++) {
    float *x = j->x + r * j->V;
    const float xt = x[j->targets[r]];
    const float m = tr->max(j->V, x);
    const double s = tr->exp_sum(j->V, x, m);
    j->inv[r] = 1.0 / s;
    j->nll[r] = (float)(m + log(s) - xt);
  }
}

void xent_forward(float *x, const int32_t *targets, float *nll, double *inv, int R, int V) {
  xent_job j = { x, targets, nll, inv, NULL, R, V };
  pool_run(xent_fwd_worker, &j, threads_for((double)R * V * 4));
}

static void xent_bwd_worker(void *arg, int ith, int nth) {
  const xent_job *j = arg;
  const train_rows_t *tr = train_rows();
  long r0, r1;
  share(j->R, 1, ith, nth, &r0, &r1);
  for (long r = r0; r < r1; r++) {
    float *x = j->x + r * j->V;
    const double c = j->coef[r];
    if (c == 0.0) {
      memset(x, 0, sizeof(float) * (size_t)j->V);
      continue;
    }
    tr->scale(j->V, x, (float)(c * j->inv[r]));
    x[j->targets[r]] = (float)(x[j->targets[r]] - c);
  }
}

void xent_backward(float *x, const double *inv, const int32_t *targets, const double *coef, int R, int V) {
  xent_job j = { x, targets, NULL, (double *)inv, coef, R, V };
  pool_run(xent_bwd_worker, &j, threads_for((double)R * V));
}

/* ---- AdamW and the sum of squares */

typedef struct { float *w; const float *g; float *m, *v; long n; const double *hp; double *part; } adamw_job;

static void adamw_worker(void *arg, int ith, int nth) {
  const adamw_job *j = arg;
  long i0, i1;
  share(j->n, 64, ith, nth, &i0, &i1);
  if (i1 > i0) train_rows()->adamw(i1 - i0, j->w + i0, j->g + i0, j->m + i0, j->v + i0, j->hp);
}

void adamw_update(float *w, const float *g, float *m, float *v, long n, const double *hp) {
  adamw_job j = { w, g, m, v, n, hp, NULL };
  pool_run(adamw_worker, &j, threads_for((double)n * 4));
}

static void sumsq_worker(void *arg, int ith, int nth) {
  const adamw_job *j = arg;
  const long blocks = (j->n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
  const train_rows_t *tr = train_rows();
  for (long b = blocks * ith / nth; b < blocks * (ith + 1) / nth; b++) {
    const long i0 = b * SUMSQ_BLOCK, len = j->n - i0 < SUMSQ_BLOCK ? j->n - i0 : SUMSQ_BLOCK;
    j->part[b] = tr->sumsq(len, j->g + i0);
  }
}

double sum_squares(const float *x, long n) {
  const long blocks = (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
  double one, *part = blocks <= 1 ? &one : malloc(sizeof(double) * (size_t)blocks);
  if (!part) { train_set_oom(); return 0.0; }
  adamw_job j = { NULL, x, NULL, NULL, n, NULL, part };
  int nth = threads_for((double)n);
  if (nth > blocks) nth = blocks < 1 ? 1 : (int)blocks;
  if (blocks > 0) pool_run(sumsq_worker, &j, nth);
  double s = 0.0;
  for (long b = 0; b < blocks; b++) s += part[b];
  if (part != &one) free(part);
  return s;
}

/* ---- RMSNorm backward: y = x·r·g, r = 1/sqrt(mean(x²) + eps), recomputed here in double */

typedef struct {
  float *dx; const float *dy, *x, *g; int T, C; double eps; double *part; /* (blocks, C) */
} norm_job;

static void norm_bwd_worker(void *arg, int ith, int nth) {
  const norm_job *j = arg;
  const int C = j->C;
  const int blocks = (j->T + NORM_BLOCK - 1) / NORM_BLOCK;
  for (int b = (int)((long)blocks * ith / nth); b < (int)((long)blocks * (ith + 1) / nth); b++) {
    double *dg = j->part ? j->part + (long)b * C : NULL;
    if (dg) for (int i = 0; i < C; i++) dg[i] = 0.0;
    const int t1 = (b + 1) * NORM_BLOCK < j->T ? (b + 1) * NORM_BLOCK : j->T;
    for (int t = b * NORM_BLOCK; t < t1; t++) {
      const float *x = j->x + (long)t * C, *dy = j->dy + (long)t * C;
      double ss = 0.0;
      for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
      const double r = 1.0 / sqrt(ss / C + j->eps);
      if (j->dx) {
        double dot = 0.0;
        for (int i = 0; i < C; i++) dot += (double)dy[i] * j->g[i] * x[i];
        const float k = (float)(dot * r * r * r / C), rf = (float)r;
        float *dx = j->dx + (long)t * C;
        for (int i = 0; i < C; i++) dx[i] += rf * j->g[i] * dy[i] - k * x[i];
      }
      if (dg) for (int i = 0; i < C; i++) dg[i] += (double)dy[i] * x[i] * r;
    }
  }
}

void rmsnorm_backward(float *dx, float *dg, const float *dy, const float *x, const float *g, int T, int C, double eps) {
  const int blocks = (T + NORM_BLOCK - 1) / NORM_BLOCK;
  double *part = NULL;
  if (dg && blocks > 0 && !(part = malloc(sizeof(double) * (size_t)blocks * C))) { train_set_oom(); return; }
  norm_job j = { dx, dy, x, g, T, C, eps, part };
  int nth = threads_for((double)T * C * 3);
  if (nth > blocks) nth = blocks < 1 ? 1 : blocks;
  if (blocks > 0) pool_run(norm_bwd_worker, &j, nth);
  if (part) {
    for (int i = 0; i < C; i++) {
      double s = 0.0;
      for (int b = 0; b < blocks; b++) s += part[(long)b * C + i];
      dg[i] = (float)(dg[i] + s);
    }
    free(part);
  }
}

/* ---- SwiGLU */

typedef struct { float *h, *da, *db; const float *dh, *a, *b; long n; } glu_job;

static void glu_fwd_worker(void *arg, int ith, int nth) {
  const glu_job *j = arg;
  long i0, i1;
  share(j->n, 64, ith, nth, &i0, &i1);
  if (i1 > i0) train_rows()->swiglu_fwd((int)(i1 - i0), j->h + i0, j->a + i0, j->b + i0);
}

void swiglu_forward(float *h, const float *a, const float *b, long n) {
  glu_job j = { h, NULL, NULL, NULL, a, b, n };
  pool_run(glu_fwd_worker, &j, threads_for((double)n * 4));
}

static void glu_bwd_worker(void *arg, int ith, int nth) {
  const glu_job *j = arg;
  long i0, i1;
  share(j->n, 64, ith, nth, &i0, &i1);
  if (i1 > i0)
    train_rows()->swiglu_bwd((int)(i1 - i0), j->da ? j->da + i0 : NULL, j->db ? j->db + i0 : NULL, j->dh + i0,
                             j->a + i0, j->b + i0);
}

void swiglu_backward(float *da, float *db, const float *dh, const float *a, const float *b, long n) {
  if (!da && !db) return;
  glu_job j = { NULL, da, db, dh, a, b, n };
  pool_run(glu_bwd_worker, &j, threads_for((double)n * 5));
}

/* ---- RoPE: a cos/sin table per (HS, theta), angles in float64 rounded to f32 (as the reference) */

/* cos/sin tables: rope_table / g_rope in ops.c */

typedef struct { float *y; const float *x; int T, nHeads, hs; const int32_t *pos; int inverse, acc; } rope_job;

static void rope_worker(void *arg, int ith, int nth) {
  const rope_job *j = arg;
  const int half = j->hs / 2, W = j->nHeads * j->hs;
  const double dir = j->inverse ? -1.0 : 1.0;
  long t0, t1;
  share(j->T, 1, ith, nth, &t0, &t1);
  for (long t = t0; t < t1; t++) {
    const float *cs = g_rope.cos + (long)j->pos[t] * half, *sn = g_rope.sin + (long)j->pos[t] * half;
    for (int h = 0; h < j->nHeads; h++) {
      const float *x = j->x + t * W + (long)h * j->hs;
      float *y = j->y + t * W + (long)h * j->hs;
      for (int i = 0; i < half; i++) {
        const double a = x[2 * i], b = x[2 * i + 1], c = cs[i], s = dir * sn[i];
        const double ya = a * c - b * s, yb = a * s + b * c;
        if (j->acc) {
          y[2 * i] = (float)(y[2 * i] + ya);
          y[2 * i + 1] = (float)(y[2 * i + 1] + yb);
        } else {
          y[2 * i] = (float)ya;
          y[2 * i + 1] = (float)yb;
        }
      }
    }
  }
}

int rope_rotate(float *y, const float *x, int T, int nHeads, int hs, const int32_t *pos, double theta,
                int inverse, int accumulate) {
  int maxPos = 0;
  for (int t = 0; t < T; t++) if (pos[t] > maxPos) maxPos = pos[t];
  if (rope_table(hs, theta, maxPos + 1) != 0) return -1;
  rope_job j = { y, x, T, nHeads, hs, pos, inverse, accumulate };
  pool_run(rope_worker, &j, T > 1 ? threads_for((double)T * nHeads * hs * 2) : 1);
  return 0;
}
