/*
 * Causal self-attention for one sequence over the KV cache, with grouped-query heads:
 *   out[t, h] = softmax_s(q[t, h] · k[s, h/rep] / sqrt(HS), s ≤ pos0 + t) · v[:, h/rep]
 * One work item per (query row, head), handed out from an atomic counter so causal rows of
 * different lengths balance across threads (decode: one item per head). The per-head work is
 * the ISA table's attend_head (f32, vectorised exp); the reference (src/backend/ref.ts) accumulates
 * in float64.
 * No masking beyond causality, no dropout, no backward pass.
 *
 * Legend: T = query rows, S = keys, NH / NKV = query / kv heads, HS = head size.
 */
#include <math.h>
#include <stdatomic.h>
#include "native.h"

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

void attention(float *out, const float *q, const float *k, const float *v, int T, int pos0,
               int nHeads, int nKv, int hs) {
  att_job j = { out, q, k, v, T, pos0, nHeads, nKv, hs, 0 };
  const double work = (double)T * nHeads * (pos0 + T) * hs;
  int nth = pool_threads();
  if (work < 16384.0 || T * nHeads < 2) nth = 1; /* ~2 µs of work: a pool wake-up costs ~0.1 µs */
  pool_run(att_worker, &j, nth);
}
