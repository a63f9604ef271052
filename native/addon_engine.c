/*
 * N-API glue of the native inference engine (engine.c): engineCreate builds an engine record from
 * a model's weight arrays, engineForward runs one forward pass. Every argument that could make the
 * kernels touch memory out of bounds is checked here (shapes, byte sizes, token ids, cache sizes),
 * so a wrong call throws instead of crashing. Calls hold the addon's kernel mutex (addon.c).
 * The engine borrows the weight memory: src/backend/native.ts keeps the arrays alive beside the
 * handle. No kernel code here.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "native.h"
#include "engine.h"

pthread_mutex_t *addon_call_mutex(void);           /* addon.c */
int mmap_file_pages(const void *p, size_t n);     /* addon_mmap.c */

#define MAX_ARGS 12
#define FAIL(...) do { char m_[600]; snprintf(m_, sizeof m_, __VA_ARGS__); napi_throw_error(env, NULL, m_); goto fail; } while (0)

static const napi_type_tag ENGINE_TAG = { 0x6c6c616d61327473ULL, 0x656e67696e653031ULL };

typedef struct { void *p; size_t len; } span;

static int typed(napi_env env, napi_value v, napi_typedarray_type want, span *out) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, &out->len, &out->p, &ab, &off) != napi_ok) return 0;
  return type == want;
}

/* element i of a JS array, as a typed array of the wanted type */
static int typed_at(napi_env env, napi_value arr, uint32_t i, napi_typedarray_type want, span *out) {
  napi_value v;
  if (napi_get_element(env, arr, i, &v) != napi_ok) return 0;
  return typed(env, v, want, out);
}

static uint32_t array_len(napi_env env, napi_value arr) {
  bool is;
  uint32_t n = 0;
  if (napi_is_array(env, arr, &is) != napi_ok || !is) return UINT32_MAX;
  napi_get_array_length(env, arr, &n);
  return n;
}

/* ---- Q4_0 / Q8_0 / Q4_K matrices regrouped by eight rows (DT_Q4_0X8 / DT_Q8_0X8 / DT_Q4_KX8, repack.c) */

typedef struct { int dt; const uint8_t *src; uint8_t *dst; int K, groups; } repack_job;

static void repack_worker(void *arg, int ith, int nth) {
  const repack_job *j = arg;
  const int g0 = (int)((long)j->groups * ith / nth), g1 = (int)((long)j->groups * (ith + 1) / nth);
  if (j->dt == DT_Q4_K) q4_kx8_repack(j->src, j->dst, j->K, g0, g1);
  else x8_repack(j->dt, j->src, j->dst, j->K, g0, g1);
}

/*
 * Gives the engine its own X8 copy of a Q4_0, Q8_0 or Q4_K matrix with rows in whole groups of eight.
 * mode 1: only matrices inside a file mapping (mmapRanges), whose pages are then dropped from
 * memory, so resident memory stays about the file's size; mode 2: any matrix (a second copy; for
 * tests); mode 0: none. Engines over the same bytes share one copy (engine_copy_*). Without
 * memory for a copy the matrix keeps its file layout. 0, or −1 when out of memory for the
 * engine's own bookkeeping.
 */
static int maybe_repack(engine_t *e, eng_weight *w, int mode) {
  if (mode == 0 || (w->dt != DT_Q4_0 && w->dt != DT_Q8_0 && w->dt != DT_Q4_K) || w->N % 8 != 0) return 0;
  const int to = w->dt == DT_Q4_0 ? DT_Q4_0X8 : w->dt == DT_Q8_0 ? DT_Q8_0X8 : DT_Q4_KX8;
  const size_t bytes = (size_t)w->N * dt_row_bytes(w->dt, w->K), out = (size_t)w->N * dt_row_bytes(to, w->K);
  const int mapped = mmap_file_pages(w->data, bytes);
  if (mode == 1 && !mapped) return 0;
  eng_copy **copies = realloc(e->copies, sizeof *copies * (size_t)(e->n_copies + 1));
  if (!copies) return -1;
  e->copies = copies;
  eng_copy *c = engine_copy_find(w->data, w->dt, w->N, w->K); /* another engine over the same bytes */
  if (!c) {
    /* anonymous memory on 2 MiB pages where the kernel gives them (THP "madvise" mode): one page
     * fault per 2 MiB instead of per 4 KiB (a 7B model's copy took seconds of faults), and fewer
     * TLB misses while the kernels stream the weights */
    const size_t HUGE = (size_t)2 << 20, size = ((out + HUGE - 1) & ~(HUGE - 1)) + HUGE;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return 0; /* no memory for a copy: this matrix keeps the file layout */
    uint8_t *dst = (uint8_t *)(((uintptr_t)base + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
#ifdef MADV_HUGEPAGE
    madvise(dst, out, MADV_HUGEPAGE); /* a hint: without it the copy still works on 4 KiB pages */
#endif
    repack_job j = { w->dt, w->data, dst, w->K, w->N / 8 };
    pool_run(repack_worker, &j, j.groups >= 64 ? pool_threads() : 1);
    if (mapped) { /* the file's bytes are no longer read by the engine: let the kernel reclaim them */
      const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)w->data, b = a + bytes;
      const uintptr_t lo = (a + page - 1) & ~(page - 1), hi = b & ~(page - 1);
      if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    c = engine_copy_add(w->data, w->dt, w->N, w->K, base, size, dst);
    if (!c) return 0; /* (the pages were released: the kernels fault them back in from the file) */
  }
  e->copies[e->n_copies++] = c;
  w->data = engine_copy_data(c);
  w->dt = to;
  return 0;
}

static void engine_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  engine_free(data);
}

/* engineCreate(cfg: Float64Array [dim, layers, heads, kvHeads, hidden, vocab, eps, theta],
 *              mats: Uint8Array[] (tok, out, then per layer wq wk wv wo w1 w2 w3),
 *              dtypes: Int32Array (same order), norms: Float32Array[] (final, then per layer attn ffn),
 *              repack?: 0 | 1 | 2 (maybe_repack's mode; default 1)) */
static napi_value js_engine_create(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS], result = NULL;
  size_t argc = MAX_ARGS;
  engine_t *e = NULL;
  span cfg, dts;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) FAIL("native engineCreate: expected 4 arguments");
  if (!typed(env, argv[0], napi_float64_array, &cfg) || cfg.len < 8) FAIL("native engineCreate: cfg must be a Float64Array of 8 numbers");
  const double *c = cfg.p;
  for (int i = 0; i < 6; i++)
    if (!(c[i] >= 1 && c[i] <= 1 << 24) || c[i] != (double)(int)c[i]) FAIL("native engineCreate: cfg[%d] = %g is not a positive integer", i, c[i]);
  const int C = (int)c[0], L = (int)c[1], NH = (int)c[2], NKV = (int)c[3], H = (int)c[4], V = (int)c[5];
  if (C % NH != 0 || (C / NH) % 2 != 0 || NH % NKV != 0) FAIL("native engineCreate: dim %d, %d heads, %d kv heads do not fit", C, NH, NKV);
  if (!(c[6] > 0) || !(c[7] > 0)) FAIL("native engineCreate: eps and theta must be positive");
  const int HS = C / NH, kvW = NKV * HS;
  const uint32_t nm = 2 + 7 * (uint32_t)L, nn = 1 + 2 * (uint32_t)L;
  if (array_len(env, argv[1]) != nm) FAIL("native engineCreate: mats must be an array of %u Uint8Arrays", nm);
  if (!typed(env, argv[2], napi_int32_array, &dts) || dts.len < nm) FAIL("native engineCreate: dtypes must be an Int32Array of %u codes", nm);
  if (array_len(env, argv[3]) != nn) FAIL("native engineCreate: norms must be an array of %u Float32Arrays", nn);
  e = engine_new(L);
  if (!e) FAIL("native engineCreate: out of memory");
  e->dim = C; e->n_layers = L; e->n_heads = NH; e->n_kv = NKV; e->hs = HS; e->hidden = H; e->vocab = V;
  e->eps = c[6]; e->theta = c[7];
  static const char *const NAMES[7] = { "wq", "wk", "wv", "wo", "w1", "w2", "w3" };
  for (uint32_t i = 0; i < nm; i++) {
    int N, K;
    eng_weight *w;
    if (i < 2) { N = V; K = C; w = i == 0 ? &e->tok : &e->out; }
    else {
      const int j = (int)(i - 2) % 7;
      eng_layer *ly = &e->layers[(i - 2) / 7];
      eng_weight *ws[7] = { &ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w1, &ly->w2, &ly->w3 };
      const int Ns[7] = { C, kvW, kvW, C, H, C, H }, Ks[7] = { C, C, C, C, C, H, C };
      N = Ns[j]; K = Ks[j]; w = ws[j];
    }
    const char *what = i == 0 ? "tok_embeddings" : i == 1 ? "output" : NAMES[(i - 2) % 7];
    span m;
    const int dt = ((const int32_t *)dts.p)[i];
    if (dt < 0 || dt >= DT_PUBLIC_COUNT) FAIL("native engineCreate: %s has unknown dtype code %d", what, dt);
    if (K % DT_BLOCK[dt] != 0) FAIL("native engineCreate: %s rows of %d values are not whole blocks of %d", what, K, DT_BLOCK[dt]);
    if (!typed_at(env, argv[1], i, napi_uint8_array, &m)) FAIL("native engineCreate: mats[%u] (%s) must be a Uint8Array", i, what);
    if ((double)m.len < (double)N * dt_row_bytes(dt, K)) FAIL("native engineCreate: %s has %zu bytes, needs %.0f", what, m.len, (double)N * dt_row_bytes(dt, K));
    w->data = m.p; w->dt = dt; w->N = N; w->K = K;
  }
  for (uint32_t i = 0; i < nn; i++) {
    span g;
    if (!typed_at(env, argv[3], i, napi_float32_array, &g) || g.len < (size_t)C) FAIL("native engineCreate: norms[%u] must be a Float32Array of %d values", i, C);
    if (i == 0) e->norm = g.p;
    else if (i % 2 == 1) e->layers[(i - 1) / 2].attn_norm = g.p;
    else e->layers[(i - 1) / 2].ffn_norm = g.p;
  }
  int repack = 1;
  if (argc >= 5) {
    napi_valuetype t;
    napi_typeof(env, argv[4], &t);
    if (t != napi_undefined && (napi_get_value_int32(env, argv[4], &repack) != napi_ok || repack < 0 || repack > 2))
      FAIL("native engineCreate: repack must be 0, 1 or 2");
  }
  {
    pthread_mutex_lock(addon_call_mutex());
    int rc = maybe_repack(e, &e->out, repack);
    for (int l = 0; l < L && rc == 0; l++) {
      eng_layer *ly = &e->layers[l];
      eng_weight *ws[7] = { &ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w1, &ly->w2, &ly->w3 };
      for (int k = 0; k < 7 && rc == 0; k++) rc = maybe_repack(e, ws[k], repack);
    }
    pthread_mutex_unlock(addon_call_mutex());
    if (rc != 0) FAIL("native engineCreate: out of memory while regrouping quantized weights");
  }
  if (napi_create_external(env, e, engine_finalize, NULL, &result) != napi_ok) FAIL("native engineCreate: cannot create the handle");
  e = NULL; /* owned by the handle now */
  if (napi_type_tag_object(env, result, &ENGINE_TAG) != napi_ok) FAIL("native engineCreate: cannot tag the handle");
  return result;
fail:
  engine_free(e);
  return NULL;
}

/* engineForward(handle, ids: Int32Array (T), segN: Int32Array, segPos0: Int32Array,
 *               kCaches: Float32Array[] (segments × layers), vCaches: likewise,
 *               logitRows: Int32Array (ascending), logits: Float32Array, hidden: Float32Array | null) */
static napi_value js_engine_forward(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  size_t argc = MAX_ARGS;
  eng_segment *segs = NULL;
  float **caches = NULL;
  engine_t *e;
  bool tagged = false;
  span ids, sn, sp, rows, logits, hidden = { NULL, 0 };
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 9) FAIL("native engineForward: expected 9 arguments");
  if (napi_check_object_type_tag(env, argv[0], &ENGINE_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], (void **)&e) != napi_ok)
    FAIL("native engineForward: the first argument is not an engine handle");
  if (!typed(env, argv[1], napi_int32_array, &ids)) FAIL("native engineForward: ids must be an Int32Array");
  if (!typed(env, argv[2], napi_int32_array, &sn) || !typed(env, argv[3], napi_int32_array, &sp) || sn.len != sp.len || sn.len == 0)
    FAIL("native engineForward: segN and segPos0 must be Int32Arrays of the same non-zero length");
  if (!typed(env, argv[6], napi_int32_array, &rows)) FAIL("native engineForward: logitRows must be an Int32Array");
  if (!typed(env, argv[7], napi_float32_array, &logits)) FAIL("native engineForward: logits must be a Float32Array");
  napi_valuetype ht;
  napi_typeof(env, argv[8], &ht);
  if (ht != napi_null && ht != napi_undefined && !typed(env, argv[8], napi_float32_array, &hidden))
    FAIL("native engineForward: hidden must be a Float32Array or null");
  const int L = e->n_layers, nseg = (int)sn.len, kvW = e->n_kv * e->hs;
  const size_t T = ids.len;
  if (T == 0 || T > 0x7fffffff) FAIL("native engineForward: no tokens");
  const int32_t *id = ids.p, *n = sn.p, *p0 = sp.p, *lr = rows.p;
  for (size_t t = 0; t < T; t++)
    if (id[t] < 0 || id[t] >= e->vocab) FAIL("native engineForward: token id %d is outside the vocabulary (0..%d)", id[t], e->vocab - 1);
  size_t total = 0;
  for (int s = 0; s < nseg; s++) {
    if (n[s] < 1 || p0[s] < 0 || (double)p0[s] + n[s] > 0x7ffffff) FAIL("native engineForward: segment %d has %d tokens at position %d", s, n[s], p0[s]);
    total += (size_t)n[s];
  }
  if (total != T) FAIL("native engineForward: segments hold %zu tokens but ids has %zu", total, T);
  for (size_t i = 0; i < rows.len; i++)
    if (lr[i] < 0 || (size_t)lr[i] >= T || (i > 0 && lr[i] <= lr[i - 1])) FAIL("native engineForward: logitRows[%zu] = %d is not an ascending row below %zu", i, lr[i], T);
  if ((double)logits.len < (double)rows.len * e->vocab) FAIL("native engineForward: logits has %zu values, needs %.0f", logits.len, (double)rows.len * e->vocab);
  if (hidden.p && (double)hidden.len < (double)T * e->dim) FAIL("native engineForward: hidden has %zu values, needs %.0f", hidden.len, (double)T * e->dim);
  const uint32_t ncache = (uint32_t)nseg * (uint32_t)L;
  if (array_len(env, argv[4]) != ncache || array_len(env, argv[5]) != ncache)
    FAIL("native engineForward: kCaches and vCaches must be arrays of %u Float32Arrays (segments × layers)", ncache);
  segs = calloc((size_t)nseg, sizeof *segs);
  caches = calloc(2 * (size_t)ncache + 1, sizeof *caches);
  if (!segs || !caches) FAIL("native engineForward: out of memory");
  for (int s = 0; s < nseg; s++) {
    const double need = ((double)p0[s] + n[s]) * kvW;
    for (int l = 0; l < L; l++) {
      span kc, vc;
      const uint32_t i = (uint32_t)(s * L + l);
      if (!typed_at(env, argv[4], i, napi_float32_array, &kc) || !typed_at(env, argv[5], i, napi_float32_array, &vc))
        FAIL("native engineForward: cache entry %u is not a Float32Array", i);
      if ((double)kc.len < need || (double)vc.len < need)
        FAIL("native engineForward: segment %d layer %d cache holds %zu values, needs %.0f", s, l, kc.len < vc.len ? kc.len : vc.len, need);
      caches[i] = kc.p;
      caches[ncache + i] = vc.p;
    }
    segs[s].n = n[s]; segs[s].pos0 = p0[s];
    segs[s].k = caches + (size_t)s * L; segs[s].v = caches + ncache + (size_t)s * L;
  }
  pthread_mutex_lock(addon_call_mutex());
  const int rc = engine_forward(e, id, (int)T, segs, nseg, lr, (int)rows.len, logits.p, hidden.p);
  pthread_mutex_unlock(addon_call_mutex());
  free(segs);
  free(caches);
  if (rc != 0 || scratch_take_oom()) { napi_throw_error(env, NULL, "native engineForward: out of memory"); return NULL; }
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
fail:
  free(segs);
  free(caches);
  return NULL;
}

void engine_exports(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "engineCreate", NAPI_AUTO_LENGTH, js_engine_create, NULL, &fn);
  napi_set_named_property(env, exports, "engineCreate", fn);
  napi_create_function(env, "engineForward", NAPI_AUTO_LENGTH, js_engine_forward, NULL, &fn);
  napi_set_named_property(env, exports, "engineForward", fn);
}
