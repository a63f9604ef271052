/*
 * Causal self-attention for one sequence over the KV cache, with grouped-query heads:
 *   out[t, h] = softmax_s(q[t, h] · k[s, h/rep] / sqrt(HS), s ≤ pos0 + t) · v[:, h/rep]
 * Decode and short runs (T < BLOCKED_MIN_T): one work item per (query row, head), handed out
 * from an atomic counter so causal rows of different lengths balance across threads; the per-head
 * work is the ISA table's attend_head (f32, vectorised exp). Prefill: one item per (head, block of
 * BQ query rows): S = Q·Kᵀ over the keys the block can see, a masked softmax per row, O = P·V,
 * both products on the packed GEMM (as train_attn.c does for training), which is several times
 * faster than row-by-row dots at 128+ positions. The reference (src/backend/ref.ts) accumulates
 * in float64.
 * attention_segments runs many sequences (the engine's segments) at once: their short runs
 * (decode) share one job of (segment, row, head) items, so a decode step over B sequences is one
 * pool wake-up per layer instead of B; their long runs take the blocked path one by one.
 * No masking beyond causality, no dropout, no backward pass.
 *
 * Legend: T = query rows, S = keys, NH / NKV = query / kv heads, HS = head size.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "native.h"
#include "train.h"

#define BLOCKED_MIN_T 16 /* query rows from which prefill takes the blocked GEMM path */
#define BQ 32            /* query rows per block */

typedef struct {
  float *out;                 /* (T, NH·HS) */
  const float *q;             /* (T, NH·HS) */
  const float *k, *v;         /* (S, NKV·HS) */
  int T, pos0, nh, nkv, hs;
  _Atomic int next;           /* next work item (t·NH + h) */
} att_job;

static void att_worker(void *arg, int ith, int nth) {
  att_job *j = arg;
  const kernels_t *kt = K_ACTIVE;
  const int hs = j->hs, rep = j->nh / j->nkv, qW = j->nh * hs, kvW = j->nkv * hs;
  const float scale = (float)(1.0 / sqrt((double)hs));
  float *scores = scratch_get(2, sizeof(float) * (size_t)(j->pos0 + j->T)); /* (S) */
  if (!scores) return;
  for (;;) {
    const int item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (item >= j->T * j->nh) break;
    const int t = item / j->nh, h = item % j->nh;
    const long kvo = (long)(h / rep) * hs;
    /* out may alias q: attend_head reads all of q (the scores) before writing out */
    kt->attend_head(j->pos0 + t + 1, hs, j->q + (long)t * qW + (long)h * hs, j->k + kvo, j->v + kvo, kvW, scale,
                    scores, j->out + (long)t * qW + (long)h * hs);
  }
  (void)ith; (void)nth;
}

/* C (M, N) = op(A)·op(B) on strided views, one thread */
static void mm(float *c, long ldc, const float *a, long am, long ak, const float *b, long bk, long bn, int M, int N, int K) {
  gemm_args g = { 0 };
  g.a = a; g.am = am; g.ak = ak;
  g.b = b; g.bk = bk; g.bn = bn;
  g.c = c; g.ldc = ldc;
  g.M = M; g.N = N; g.K = K;
  gemm_st(&g);
}

static void blocked_worker(void *arg, int ith, int nth) {
  att_job *j = arg;
  const train_rows_t *tr = train_rows();
  const int hs = j->hs, rep = j->nh / j->nkv, qW = j->nh * hs, kvW = j->nkv * hs;
  const int blocks = (j->T + BQ - 1) / BQ, S = j->pos0 + j->T;
  const float scale = (float)(1.0 / sqrt((double)hs));
  float *P = scratch_get(2, sizeof(float) * (size_t)BQ * S); /* (rows, n) scores, then probabilities */
  (void)ith; (void)nth;
  if (!P) return;
  for (;;) {
    /* items from the last block down: the longest rows first, the short ones fill in at the end */
    const int item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (item >= blocks * j->nh) break;
    const int blk = blocks - 1 - item / j->nh, h = item % j->nh;
    const int r0 = blk * BQ, rows = j->T - r0 < BQ ? j->T - r0 : BQ, n = j->pos0 + r0 + rows;
    const float *Q = j->q + (long)r0 * qW + (long)h * hs;
    const float *K = j->k + (long)(h / rep) * hs, *V = j->v + (long)(h / rep) * hs;
    mm(P, n, Q, qW, 1, K, 1, kvW, rows, n, hs); /* (rows, n) = Q·Kᵀ */
    for (int i = 0; i < rows; i++) {
      float *row = P + (long)i * n;
      const int valid = j->pos0 + r0 + i + 1;
      tr->scale(valid, row, scale);
      const float m = tr->max(valid, row);
      const double sum = tr->exp_sum(valid, row, m);
      tr->scale(valid, row, (float)(1.0 / sum));
      memset(row + valid, 0, sizeof(float) * (size_t)(n - valid));
    }
    mm(j->out + (long)r0 * qW + (long)h * hs, qW, P, n, 1, V, kvW, 1, rows, hs, n); /* (rows, HS) = P·V */
  }
}

void attention(float *out, const float *q, const float *k, const float *v, int T, int pos0,
               int nHeads, int nKv, int hs) {
  att_job j = { out, q, k, v, T, pos0, nHeads, nKv, hs, 0 };
  if (T >= BLOCKED_MIN_T && out != q) {
    const int items = (T + BQ - 1) / BQ * nHeads;
    int nth = pool_threads();
    if (nth > items) nth = items;
    pool_run(blocked_worker, &j, nth);
    return;
  }
  const double work = (double)T * nHeads * (pos0 + T) * hs;
  int nth = pool_threads();
  if (work < 16384.0 || T * nHeads < 2) nth = 1; /* ~2 µs of work: a pool wake-up costs ~0.1 µs */
  pool_run(att_worker, &j, nth);
}

/* ---- many sequences at once (the engine's segments): one job for all their short runs */

typedef struct {
  const att_seg *segs;
  const int *first;           /* (nseg + 1) index of each short segment's first item; items of s: T·NH */
  const int *which;           /* the short segments, in order */
  int nshort, nh, nkv, hs, maxS;
  _Atomic int next;
} att_many_job;

static void many_worker(void *arg, int ith, int nth) {
  att_many_job *j = arg;
  const kernels_t *kt = K_ACTIVE;
  const int hs = j->hs, rep = j->nh / j->nkv, qW = j->nh * hs, kvW = j->nkv * hs, items = j->first[j->nshort];
  const float scale = (float)(1.0 / sqrt((double)hs));
  float *scores = scratch_get(2, sizeof(float) * (size_t)j->maxS); /* (S) */
  (void)ith; (void)nth;
  if (!scores) return;
  int s = 0; /* a thread's items only grow: its segment cursor only moves forward */
  for (;;) {
    const int item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (item >= items) break;
    while (j->first[s + 1] <= item) s++;
    const att_seg *g = &j->segs[j->which[s]];
    const int local = item - j->first[s], t = local / j->nh, h = local % j->nh;
    const long kvo = (long)(h / rep) * hs;
    kt->attend_head(g->pos0 + t + 1, hs, g->q + (long)t * qW + (long)h * hs, g->k + kvo, g->v + kvo, kvW, scale, scores,
                    g->out + (long)t * qW + (long)h * hs);
  }
}

int attention_segments(const att_seg *segs, int nseg, int nHeads, int nKv, int hs) {
  int *first = malloc(sizeof(int) * (size_t)(2 * nseg + 1));
  if (!first) return -1;
  int *which = first + nseg + 1;
  int nshort = 0, maxS = 1;
  double work = 0.0;
  first[0] = 0;
  for (int s = 0; s < nseg; s++) {
    const att_seg *g = &segs[s];
    if (g->T >= BLOCKED_MIN_T && g->out != g->q) { /* prefill runs: the blocked GEMM path, one job each */
      attention(g->out, g->q, g->k, g->v, g->T, g->pos0, nHeads, nKv, hs);
      continue;
    }
    which[nshort] = s;
    first[nshort + 1] = first[nshort] + g->T * nHeads;
    nshort++;
    if (g->pos0 + g->T > maxS) maxS = g->pos0 + g->T;
    work += (double)g->T * nHeads * (g->pos0 + g->T) * hs;
  }
  if (nshort > 0) {
    att_many_job j = { segs, first, which, nshort, nHeads, nKv, hs, maxS, 0 };
    int nth = pool_threads();
    if (work < 16384.0 || first[nshort] < 2) nth = 1; /* as in attention(): a few µs of work */
    if (nth > first[nshort]) nth = first[nshort];
    pool_run(many_worker, &j, nth);
  }
  free(first);
  return 0;
}
