/*
 * The inference engine in one native call: a whole Llama-2 forward pass over a batch of segments
 * (runs of new tokens, each with its own KV cache), the same computation as
 * src/model/forward.ts (the spec) with three fusions that change no value:
 *   - the Q, K and V projections are one matmul_parts job (x quantized once, one pool wake-up);
 *   - so are the FFN gate and up projections;
 *   - the attention-output and FFN-down projections add straight into the residual stream
 *     (x[i] + dot instead of x[i] + (dot stored, then added): the same float sum).
 * For F32 weights at T ≥ MATMUL_GEMM_MIN_T the GEMM accumulates per K slice, so there the sums
 * are regrouped (last-bit differences, well inside the model tolerance).
 * Weights are borrowed: the engine keeps raw pointers into memory the caller keeps alive
 * (src/backend/native.ts holds the arrays beside the handle). No tokenizer, sampling or training.
 *
 * Legend: T = tokens of all segments, C = dim, H = FFN hidden, V = vocab, NH / NKV = query / kv
 * heads, HS = head size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "native.h"
#include "engine.h"

/* LLAMA2_PROFILE=1: wall time per engine phase, printed to stderr at exit (a development aid) */
enum { PH_NORM, PH_QKV, PH_ROPE, PH_ATT, PH_WO, PH_GU, PH_SWIGLU, PH_W2, PH_OUT, PH_N };
static const char *const PH_NAME[PH_N] = { "rmsnorm", "qkv", "rope+kv", "attention", "wo", "gate|up", "swiglu", "w2", "logits" };
static double g_prof[PH_N];
static long g_prof_calls;
static int g_prof_on = -1;
static double prof_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static void prof_print(void) {
  double tot = 0;
  for (int i = 0; i < PH_N; i++) tot += g_prof[i];
  fprintf(stderr, "engine profile: %ld forward calls, %.1f ms in the engine\n", g_prof_calls, 1e3 * tot);
  for (int i = 0; i < PH_N; i++)
    fprintf(stderr, "  %-10s %9.1f ms %5.1f%%  %8.1f us/call\n", PH_NAME[i], 1e3 * g_prof[i], 100 * g_prof[i] / (tot > 0 ? tot : 1),
            1e6 * g_prof[i] / (g_prof_calls ? g_prof_calls : 1));
}
static inline double prof_mark(int ph, double t0) {
  if (!g_prof_on) return 0;
  const double t = prof_now();
  g_prof[ph] += t - t0;
  return t;
}

struct eng_copy {
  const uint8_t *src;
  int dt, N, K;          /* of the source */
  void *base;            /* the copy's mapping */
  size_t size;
  const uint8_t *data;   /* the regrouped bytes inside it */
  long refs;
  struct eng_copy *next;
};
static eng_copy *g_copies;

eng_copy *engine_copy_find(const uint8_t *src, int dt, int N, int K) {
  for (eng_copy *c = g_copies; c; c = c->next)
    if (c->src == src && c->dt == dt && c->N == N && c->K == K) { c->refs++; return c; }
  return NULL;
}

eng_copy *engine_copy_add(const uint8_t *src, int dt, int N, int K, void *base, size_t size, const uint8_t *data) {
  eng_copy *c = malloc(sizeof *c);
  if (!c) { munmap(base, size); return NULL; }
  *c = (eng_copy){ src, dt, N, K, base, size, data, 1, g_copies };
  g_copies = c;
  return c;
}

const uint8_t *engine_copy_data(const eng_copy *c) { return c->data; }

void engine_copy_release(eng_copy *c) {
  if (--c->refs > 0) return;
  for (eng_copy **p = &g_copies; *p; p = &(*p)->next)
    if (*p == c) { *p = c->next; break; }
  munmap(c->base, c->size);
  free(c);
}

void engine_free(engine_t *e) {
  if (!e) return;
  for (int i = 0; i < e->n_copies; i++) engine_copy_release(e->copies[i]);
  free(e->copies);
  free(e->layers);
  free(e->buf);
  free(e);
}

engine_t *engine_new(int n_layers) {
  engine_t *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->layers = calloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *e->layers);
  if (!e->layers) { free(e); return NULL; }
  e->n_layers = n_layers;
  return e;
}

/* activation buffers for T tokens: x, xb, q, att (T, C); k, v (T, NKV·HS); h1, h3 (T, H) */
static int buffers(engine_t *e, int T) {
  if (e->buf && e->buf_t >= T) return 0;
  const size_t C = (size_t)e->dim, kvW = (size_t)e->n_kv * e->hs, H = (size_t)e->hidden;
  const size_t per = 4 * C + 2 * kvW + 2 * H + 16 * 8; /* floats per token, plus alignment slack */
  float *b = aligned_alloc(64, ((sizeof(float) * per * (size_t)T) + 63) & ~(size_t)63);
  if (!b) return -1;
  free(e->buf);
  e->buf = b;
  e->buf_t = T;
  return 0;
}

static void part(mm_part *p, const eng_weight *w, float *y, long ldy, int acc) {
  p->w = w->data; p->dt = w->dt; p->N = w->N; p->y = y; p->ldy = ldy; p->accumulate = acc;
}

int engine_forward(engine_t *e, const int32_t *ids, int T, const eng_segment *segs, int nseg,
                   const int32_t *logit_rows, int nlogits, float *logits, float *hidden) {
  if (T <= 0) return 0;
  if (buffers(e, T) != 0) return -1;
  const int C = e->dim, H = e->hidden, NH = e->n_heads, NKV = e->n_kv, HS = e->hs, kvW = NKV * HS;
  float *x = e->buf;                       /* (T, C) residual stream */
  float *xb = x + (size_t)T * C;           /* (T, C) normed input */
  float *q = xb + (size_t)T * C;           /* (T, NH·HS) */
  float *att = q + (size_t)T * C;          /* (T, NH·HS) */
  float *k = att + (size_t)T * C;          /* (T, NKV·HS) */
  float *v = k + (size_t)T * kvW;          /* (T, NKV·HS) */
  float *h1 = v + (size_t)T * kvW;         /* (T, H) */
  float *h3 = h1 + (size_t)T * H;          /* (T, H) */
  int32_t *pos = malloc(sizeof(int32_t) * (size_t)T);
  att_seg *att_segs = malloc(sizeof(att_seg) * (size_t)nseg);
  if (!pos || !att_segs) { free(pos); free(att_segs); return -1; }
  for (int s = 0, t = 0; s < nseg; s++)
    for (int i = 0; i < segs[s].n; i++, t++) pos[t] = segs[s].pos0 + i;

  if (g_prof_on < 0) {
    const char *env = getenv("LLAMA2_PROFILE");
    g_prof_on = env && *env && *env != '0';
    if (g_prof_on) atexit(prof_print);
  }
  g_prof_calls++;
  double tp = g_prof_on ? prof_now() : 0;
  embedding(x, e->tok.data, e->tok.dt, C, ids, T);
  int rc = 0;
  for (int l = 0; l < e->n_layers && rc == 0; l++) {
    const eng_layer *L = &e->layers[l];
    /* attention block: x += wo · attn(rope(wq·n(x)), rope(wk·n(x)), wv·n(x)) */
    rmsnorm(xb, x, L->attn_norm, T, C, e->eps);
    tp = prof_mark(PH_NORM, tp);
    mm_part qkv[3];
    part(&qkv[0], &L->wq, q, C, 0);
    part(&qkv[1], &L->wk, k, kvW, 0);
    part(&qkv[2], &L->wv, v, kvW, 0);
    matmul_parts(qkv, 3, xb, C, T);
    tp = prof_mark(PH_QKV, tp);
    if (rope(q, T, NH, HS, pos, e->theta) != 0 || rope(k, T, NKV, HS, pos, e->theta) != 0) { rc = -1; break; }
    for (int s = 0, t0 = 0; s < nseg; t0 += segs[s].n, s++) {
      const eng_segment *sg = &segs[s];
      float *kc = sg->k[l], *vc = sg->v[l];
      memcpy(kc + (size_t)sg->pos0 * kvW, k + (size_t)t0 * kvW, sizeof(float) * (size_t)sg->n * kvW);
      memcpy(vc + (size_t)sg->pos0 * kvW, v + (size_t)t0 * kvW, sizeof(float) * (size_t)sg->n * kvW);
      att_segs[s] = (att_seg){ att + (size_t)t0 * C, q + (size_t)t0 * C, kc, vc, sg->n, sg->pos0 };
    }
    tp = prof_mark(PH_ROPE, tp);
    if (attention_segments(att_segs, nseg, NH, NKV, HS) != 0) { rc = -1; break; }
    tp = prof_mark(PH_ATT, tp);
    mm_part o;
    part(&o, &L->wo, x, C, 1);
    matmul_parts(&o, 1, att, C, T);
    tp = prof_mark(PH_WO, tp);
    /* FFN block: x += w2 · (silu(w1·n(x)) * w3·n(x)) */
    rmsnorm(xb, x, L->ffn_norm, T, C, e->eps);
    tp = prof_mark(PH_NORM, tp);
    mm_part gu[2];
    part(&gu[0], &L->w1, h1, H, 0);
    part(&gu[1], &L->w3, h3, H, 0);
    matmul_parts(gu, 2, xb, C, T);
    tp = prof_mark(PH_GU, tp);
    swiglu(h1, h3, (long)T * H);
    tp = prof_mark(PH_SWIGLU, tp);
    mm_part d;
    part(&d, &L->w2, x, C, 1);
    matmul_parts(&d, 1, h1, H, T);
    tp = prof_mark(PH_W2, tp);
  }
  free(pos);
  free(att_segs);
  if (rc != 0) return rc;

  rmsnorm(x, x, e->norm, T, C, e->eps); /* (T, C) final hidden states */
  if (hidden) memcpy(hidden, x, sizeof(float) * (size_t)T * C);
  if (nlogits > 0) {
    const float *rows = x;
    int all = nlogits == T;
    for (int i = 0; all && i < T; i++) all = logit_rows[i] == i;
    if (!all) { /* gather the rows that get logits (e.g. each segment's last) */
      for (int i = 0; i < nlogits; i++) memcpy(xb + (size_t)i * C, x + (size_t)logit_rows[i] * C, sizeof(float) * C);
      rows = xb;
    }
    matmul(logits, rows, e->out.data, e->out.dt, e->vocab, C, nlogits); /* (nlogits, V) */
  }
  prof_mark(PH_OUT, tp);
  return 0;
}
