/*
 * Causal grouped-query attention for training, forward and backward, over B rows of T positions
 * (see train.h; the KV-cache attention of inference is attention.c). Query head h reads kv head
 * h / (NH/NKV); s = 1/sqrt(HS). A row is one sequence (plain causal), or, with starts, several
 * packed segments that each see only themselves: query t sees keys starts[t] ≤ j ≤ t.
 *
 * Forward, per (row, query head), in blocks of BQ query rows; in a packed row a block is cut into
 * runs of rows of one segment (a plain row's block is one run). For a run of query rows a .. e−1
 * whose segment begins at lo (0 when plain): S = Q·Kᵀ over the keys lo .. e−1 only (the first
 * run's lo is the block's smallest start: starts never decrease), P = softmax(s·S) row by row with
 * the causal mask, O = P·V. So a packed row never scores keys across segments and costs less
 * than a causal one, while a plain row does exactly the causal work. The forward saves
 * lse = log Σ exp(s·S) per query row, so the backward rebuilds P = exp(s·S − lse) without
 * another max/sum pass and never keeps a T×T matrix per head.
 * Backward, per (row, kv head), for every query head of the group, per run (the forward's runs):
 *   P as above, dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O))·s,
 *   dQ += dS·K, dK += dSᵀ·Q.
 * All products are gemm_st calls on strided views of the (B·T, heads·HS) activations (no copies).
 * Work items (a row and a head, or a kv head in the backward) go to threads from a shared
 * counter; each item owns the gradient rows it writes and sums in a fixed order, so results do
 * not depend on the thread count.
 *
 * Legend: B = rows, T = positions, NH / NKV = query / kv heads, HS = head size,
 * BQ = query rows per block.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include "native.h"
#include "train.h"

#define BQ 64

typedef struct {
  float *out, *lse;                 /* forward outputs */
  float *dq, *dk, *dv;              /* backward outputs (+=) */
  const float *q, *k, *v, *dout, *o, *lse_in;
  attn_shape s;
  _Atomic int next;
} attn_job;

/* C (M, N) (+)= op(A)·op(B) on strided views, one thread */
static void mm(float *c, long ldc, const float *a, long am, long ak, const float *b, long bk, long bn,
               int M, int N, int K, int acc) {
  gemm_args g = { 0 };
  g.a = a; g.am = am; g.ak = ak;
  g.b = b; g.bk = bk; g.bn = bn;
  g.c = c; g.ldc = ldc;
  g.M = M; g.N = N; g.K = K; g.accumulate = acc;
  gemm_st(&g);
}

/* The run of query rows from a (< end) that share a's segment: sets *e to its end (end when
 * plain) and returns the run's first key, the segment's start (0 when plain). */
static inline int run_end(const int32_t *st, int a, int end, int *e) {
  if (!st) { *e = end; return 0; }
  int i = a + 1;
  while (i < end && st[i] == st[a]) i++;
  *e = i;
  return st[a];
}

static void fwd_worker(void *arg, int ith, int nth) {
  attn_job *j = arg;
  const attn_shape s = j->s;
  const train_rows_t *tr = train_rows();
  const long qW = (long)s.NH * s.HS, kvW = (long)s.NKV * s.HS;
  const float scale = (float)(1.0 / sqrt((double)s.HS));
  float *S = train_scratch(0, sizeof(float) * (size_t)BQ * s.T); /* (BQ, T) scores, then P */
  (void)ith; (void)nth;
  if (!S) return;
  for (;;) {
    const int item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (item >= s.B * s.NH) break;
    const int b = item / s.NH, h = item % s.NH, kv = h / (s.NH / s.NKV);
    const float *Q = j->q + (long)b * s.T * qW + (long)h * s.HS;
    const float *K = j->k + (long)b * s.T * kvW + (long)kv * s.HS;
    const float *V = j->v + (long)b * s.T * kvW + (long)kv * s.HS;
    const int32_t *st = s.starts ? s.starts + (long)b * s.T : NULL;
    float *O = j->out + (long)b * s.T * qW + (long)h * s.HS;
    float *L = j->lse + (long)item * s.T;
    for (int r0 = 0; r0 < s.T; r0 += BQ) {
      const int end = s.T - r0 < BQ ? s.T : r0 + BQ;
      for (int a = r0, e; a < end; a = e) { /* a run of query rows a .. e−1 in one segment */
        const int lo = run_end(st, a, end, &e), rows = e - a, w = e - lo; /* keys lo .. e−1 */
        mm(S, w, Q + a * qW, qW, 1, K + lo * kvW, 1, kvW, rows, w, s.HS, 0); /* (rows, w) = Q·Kᵀ */
        for (int i = 0; i < rows; i++) {
          float *row = S + (long)i * w;
          const int valid = a + i + 1 - lo;
          tr->scale(valid, row, scale);
          const float m = tr->max(valid, row);
          const double sum = tr->exp_sum(valid, row, m);
          L[a + i] = (float)(m + log(sum));
          tr->scale(valid, row, (float)(1.0 / sum));
          memset(row + valid, 0, sizeof(float) * (size_t)(w - valid));
        }
        mm(O + a * qW, qW, S, w, 1, V + lo * kvW, kvW, 1, rows, s.HS, w, 0); /* (rows, HS) = P·V */
      }
    }
  }
}

static int threads_for_items(int items, double flops) {
  int nth = pool_threads();
  if (nth > items) nth = items;
  if (flops < 2.0e6) nth = 1;
  return nth < 1 ? 1 : nth;
}

void attn_train_forward(float *out, float *lse, const float *q, const float *k, const float *v, attn_shape s) {
  attn_job j = { 0 };
  j.out = out; j.lse = lse; j.q = q; j.k = k; j.v = v; j.s = s;
  atomic_store(&j.next, 0);
  const double flops = 2.0 * s.B * s.NH * (double)s.T * s.T * s.HS;
  pool_run(fwd_worker, &j, threads_for_items(s.B * s.NH, flops));
}

static void bwd_worker(void *arg, int ith, int nth) {
  attn_job *j = arg;
  const attn_shape s = j->s;
  const train_rows_t *tr = train_rows();
  const long qW = (long)s.NH * s.HS, kvW = (long)s.NKV * s.HS;
  const int rep = s.NH / s.NKV;
  const float scale = (float)(1.0 / sqrt((double)s.HS));
  float *P = train_scratch(0, sizeof(float) * (size_t)BQ * s.T);  /* (BQ, T) probabilities */
  float *dP = train_scratch(1, sizeof(float) * (size_t)BQ * s.T); /* (BQ, T) dP, then dS */
  (void)ith; (void)nth;
  if (!P || !dP) return;
  for (;;) {
    const int item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (item >= s.B * s.NKV) break;
    const int b = item / s.NKV, kv = item % s.NKV;
    const long kvOff = (long)b * s.T * kvW + (long)kv * s.HS;
    const float *K = j->k + kvOff, *V = j->v + kvOff;
    float *dK = j->dk ? j->dk + kvOff : NULL, *dV = j->dv ? j->dv + kvOff : NULL;
    const int32_t *st = s.starts ? s.starts + (long)b * s.T : NULL;
    for (int h = kv * rep; h < (kv + 1) * rep; h++) {
      const long qOff = (long)b * s.T * qW + (long)h * s.HS;
      const float *Q = j->q + qOff, *dO = j->dout + qOff, *O = j->o + qOff;
      float *dQ = j->dq ? j->dq + qOff : NULL;
      const float *L = j->lse_in + ((long)b * s.NH + h) * s.T;
      for (int r0 = 0; r0 < s.T; r0 += BQ) {
        const int end = s.T - r0 < BQ ? s.T : r0 + BQ;
        for (int a = r0, e; a < end; a = e) { /* the forward's runs */
          const int lo = run_end(st, a, end, &e), rows = e - a, w = e - lo;
          const float *Kb = K + lo * kvW, *Vb = V + lo * kvW;
          mm(P, w, Q + a * qW, qW, 1, Kb, 1, kvW, rows, w, s.HS, 0); /* (rows, w) = Q·Kᵀ */
          for (int i = 0; i < rows; i++) {
            float *row = P + (long)i * w;
            const int valid = a + i + 1 - lo;
            tr->scale(valid, row, scale);
            tr->exp_sum(valid, row, L[a + i]); /* P = exp(s·S − lse) */
            memset(row + valid, 0, sizeof(float) * (size_t)(w - valid));
          }
          if (dV) mm(dV + lo * kvW, kvW, P, 1, w, dO + a * qW, qW, 1, w, s.HS, rows, 1); /* dV (w, HS) += Pᵀ·dO */
          if (!dQ && !dK) continue;
          mm(dP, w, dO + a * qW, qW, 1, Vb, 1, kvW, rows, w, s.HS, 0); /* (rows, w) = dO·Vᵀ */
          for (int i = 0; i < rows; i++) {
            const int valid = a + i + 1 - lo;
            const float d = tr->dot(s.HS, dO + (a + i) * qW, O + (a + i) * qW); /* Σ_j P·dP = dO·O */
            tr->dsoftmax(valid, dP + (long)i * w, P + (long)i * w, d, scale);
            memset(dP + (long)i * w + valid, 0, sizeof(float) * (size_t)(w - valid));
          }
          if (dQ) mm(dQ + a * qW, qW, dP, w, 1, Kb, kvW, 1, rows, s.HS, w, 1);  /* dQ (rows, HS) += dS·K */
          if (dK) mm(dK + lo * kvW, kvW, dP, 1, w, Q + a * qW, qW, 1, w, s.HS, rows, 1); /* dK (w, HS) += dSᵀ·Q */
        }
      }
    }
  }
}

void attn_train_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                         const float *v, const float *out, const float *lse, attn_shape s) {
  if (!dq && !dk && !dv) return;
  attn_job j = { 0 };
  j.dq = dq; j.dk = dk; j.dv = dv; j.dout = dout; j.q = q; j.k = k; j.v = v; j.o = out; j.lse_in = lse; j.s = s;
  atomic_store(&j.next, 0);
  const double flops = 5.0 * s.B * s.NH * (double)s.T * s.T * s.HS;
  pool_run(bwd_worker, &j, threads_for_items(s.B * s.NKV, flops));
}
