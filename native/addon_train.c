/*
 * N-API glue of the training kernels (train.h): checks every argument that could make a kernel
 * touch memory out of bounds (types, lengths, ids, positions, head counts, the segment starts of
 * packed attention rows), then calls the kernel under the addon's kernel mutex (addon.c). A
 * gradient argument may be null (not wanted). The JavaScript face is the training section of
 * src/backend/native.ts; no kernel code here.
 *
 * Exports: xentForward xentBackward adamw sumSquares rmsnormBackward swigluForward swigluBackward
 * ropeRotate attentionTrain attentionTrainBackward, and ATTN_STARTS (true: the attention kernels
 * take the optional segment starts argument; an addon built before them lacks it).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stdio.h>
#include "native.h"
#include "train.h"

pthread_mutex_t *addon_call_mutex(void); /* addon.c */

#define MAX_ARGS 16
#define FAIL(...) do { char m_[600]; snprintf(m_, sizeof m_, __VA_ARGS__); napi_throw_error(env, NULL, m_); return NULL; } while (0)
#define FAIL_TYPE(...) do { char m_[600]; snprintf(m_, sizeof m_, __VA_ARGS__); napi_throw_type_error(env, NULL, m_); return NULL; } while (0)
#define FAIL_RANGE(...) do { char m_[600]; snprintf(m_, sizeof m_, __VA_ARGS__); napi_throw_range_error(env, NULL, m_); return NULL; } while (0)

typedef struct { void *p; size_t len; } span;

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  return argc >= want;
}

/* 1: typed array of the wanted type; 0: something else; -1: null or undefined (when allowed) */
static int typed(napi_env env, napi_value v, napi_typedarray_type want, span *out, int nullable) {
  napi_valuetype t;
  if (nullable && napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined)) {
    out->p = NULL;
    out->len = 0;
    return -1;
  }
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, &out->len, &out->p, &ab, &off) != napi_ok) return 0;
  return type == want;
}

#define ARR(i, s, kind, kname, fn, nullable) \
  span s; if (!typed(env, argv[i], kind, &s, nullable)) FAIL_TYPE("native %s: %s must be a %s%s", fn, #s, kname, nullable ? " or null" : "")
#define F32(i, s, fn) ARR(i, s, napi_float32_array, "Float32Array", fn, 0)
#define F32_OPT(i, s, fn) ARR(i, s, napi_float32_array, "Float32Array", fn, 1)
#define F64(i, s, fn) ARR(i, s, napi_float64_array, "Float64Array", fn, 0)
#define I32(i, s, fn) ARR(i, s, napi_int32_array, "Int32Array", fn, 0)
#define INT(i, v, fn) \
  int64_t v; if (napi_get_value_int64(env, argv[i], &v) != napi_ok || v < 0 || v > 0x7fffffff) FAIL_TYPE("native %s: %s must be a non-negative int32", fn, #v)
#define NUM(i, v, fn) \
  double v; if (napi_get_value_double(env, argv[i], &v) != napi_ok) FAIL_TYPE("native %s: %s must be a number", fn, #v)
#define BOOL(i, v, fn) \
  bool v; if (napi_get_value_bool(env, argv[i], &v) != napi_ok) FAIL_TYPE("native %s: %s must be a boolean", fn, #v)
/* s.p non-NULL (given) and shorter than n */
#define NEED(s, n, fn, expr) \
  if ((s).p && (double)(s).len < (double)(n)) FAIL("native %s: %s has %zu elements, needs %s = %.0f", fn, #s, (s).len, expr, (double)(n))

static napi_value undefined(napi_env env) { napi_value u; napi_get_undefined(env, &u); return u; }

static void lock(void) { pthread_mutex_lock(addon_call_mutex()); }

static napi_value unlock_check(napi_env env) {
  pthread_mutex_unlock(addon_call_mutex());
  const int oom = train_take_oom() | scratch_take_oom();
  if (oom) FAIL("native training kernel: out of memory for scratch buffers");
  return undefined(env);
}

static int ids_in_range(const int32_t *ids, size_t n, int64_t limit) {
  for (size_t i = 0; i < n; i++) if (ids[i] < 0 || ids[i] >= limit) return (int)i;
  return -1;
}

/* xentForward(x, targets, nll, inv, V) */
static napi_value js_xent_forward(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 5, argv)) FAIL_TYPE("native xentForward: expected 5 arguments");
  F32(0, x, "xentForward"); I32(1, targets, "xentForward"); F32(2, nll, "xentForward"); F64(3, inv, "xentForward");
  INT(4, V, "xentForward");
  const size_t R = targets.len;
  if (V == 0) FAIL_RANGE("native xentForward: V must be > 0");
  NEED(x, (double)R * V, "xentForward", "R*V");
  NEED(nll, R, "xentForward", "R");
  NEED(inv, R, "xentForward", "R");
  const int bad = ids_in_range(targets.p, R, V);
  if (bad >= 0) FAIL_RANGE("native xentForward: target %d at row %d is outside 0..%d", ((int32_t *)targets.p)[bad], bad, (int)V - 1);
  lock();
  xent_forward(x.p, targets.p, nll.p, inv.p, (int)R, (int)V);
  return unlock_check(env);
}

/* xentBackward(x, inv, targets, coef, V) */
static napi_value js_xent_backward(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 5, argv)) FAIL_TYPE("native xentBackward: expected 5 arguments");
  F32(0, x, "xentBackward"); F64(1, inv, "xentBackward"); I32(2, targets, "xentBackward"); F64(3, coef, "xentBackward");
  INT(4, V, "xentBackward");
  const size_t R = targets.len;
  if (V == 0) FAIL_RANGE("native xentBackward: V must be > 0");
  NEED(x, (double)R * V, "xentBackward", "R*V");
  NEED(inv, R, "xentBackward", "R");
  NEED(coef, R, "xentBackward", "R");
  const int bad = ids_in_range(targets.p, R, V);
  if (bad >= 0) FAIL_RANGE("native xentBackward: target %d at row %d is outside 0..%d", ((int32_t *)targets.p)[bad], bad, (int)V - 1);
  lock();
  xent_backward(x.p, inv.p, targets.p, coef.p, (int)R, (int)V);
  return unlock_check(env);
}

/* adamw(w, g, m, v, hp: Float64Array [decay, beta1, c1, beta2, c2, stepSize, invSqrtBc2, eps]) */
static napi_value js_adamw(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 5, argv)) FAIL_TYPE("native adamw: expected 5 arguments");
  F32(0, w, "adamw"); F32(1, g, "adamw"); F32(2, m, "adamw"); F32(3, v, "adamw"); F64(4, hp, "adamw");
  NEED(g, w.len, "adamw", "w.length");
  NEED(m, w.len, "adamw", "w.length");
  NEED(v, w.len, "adamw", "w.length");
  NEED(hp, HP_COUNT, "adamw", "8 constants");
  lock();
  adamw_update(w.p, g.p, m.p, v.p, (long)w.len, hp.p);
  return unlock_check(env);
}

/* sumSquares(x) → Σ x² (float64) */
static napi_value js_sum_squares(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 1, argv)) FAIL_TYPE("native sumSquares: expected 1 argument");
  F32(0, x, "sumSquares");
  lock();
  const double s = sum_squares(x.p, (long)x.len);
  if (!unlock_check(env)) return NULL;
  napi_value r;
  napi_create_double(env, s, &r);
  return r;
}

/* rmsnormBackward(dx | null, dg | null, dy, x, g, T, eps) */
static napi_value js_rmsnorm_backward(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 7, argv)) FAIL_TYPE("native rmsnormBackward: expected 7 arguments");
  F32_OPT(0, dx, "rmsnormBackward"); F32_OPT(1, dg, "rmsnormBackward"); F32(2, dy, "rmsnormBackward");
  F32(3, x, "rmsnormBackward"); F32(4, g, "rmsnormBackward"); INT(5, T, "rmsnormBackward"); NUM(6, eps, "rmsnormBackward");
  const double n = (double)T * g.len;
  NEED(dx, n, "rmsnormBackward", "T*C");
  NEED(dg, g.len, "rmsnormBackward", "C");
  NEED(dy, n, "rmsnormBackward", "T*C");
  NEED(x, n, "rmsnormBackward", "T*C");
  lock();
  rmsnorm_backward(dx.p, dg.p, dy.p, x.p, g.p, (int)T, (int)g.len, eps);
  return unlock_check(env);
}

/* swigluForward(h, a, b, n) */
static napi_value js_swiglu_forward(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 4, argv)) FAIL_TYPE("native swigluForward: expected 4 arguments");
  F32(0, h, "swigluForward"); F32(1, a, "swigluForward"); F32(2, b, "swigluForward"); INT(3, n, "swigluForward");
  NEED(h, n, "swigluForward", "n");
  NEED(a, n, "swigluForward", "n");
  NEED(b, n, "swigluForward", "n");
  lock();
  swiglu_forward(h.p, a.p, b.p, (long)n);
  return unlock_check(env);
}

/* swigluBackward(da | null, db | null, dh, a, b, n) */
static napi_value js_swiglu_backward(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 6, argv)) FAIL_TYPE("native swigluBackward: expected 6 arguments");
  F32_OPT(0, da, "swigluBackward"); F32_OPT(1, db, "swigluBackward"); F32(2, dh, "swigluBackward");
  F32(3, a, "swigluBackward"); F32(4, b, "swigluBackward"); INT(5, n, "swigluBackward");
  NEED(da, n, "swigluBackward", "n");
  NEED(db, n, "swigluBackward", "n");
  NEED(dh, n, "swigluBackward", "n");
  NEED(a, n, "swigluBackward", "n");
  NEED(b, n, "swigluBackward", "n");
  lock();
  swiglu_backward(da.p, db.p, dh.p, a.p, b.p, (long)n);
  return unlock_check(env);
}

/* ropeRotate(y, x, T, nHeads, headSize, pos, theta, inverse, accumulate) */
static napi_value js_rope_rotate(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 9, argv)) FAIL_TYPE("native ropeRotate: expected 9 arguments");
  F32(0, y, "ropeRotate"); F32(1, x, "ropeRotate"); INT(2, T, "ropeRotate"); INT(3, nHeads, "ropeRotate");
  INT(4, hs, "ropeRotate"); I32(5, pos, "ropeRotate"); NUM(6, theta, "ropeRotate");
  BOOL(7, inverse, "ropeRotate"); BOOL(8, accumulate, "ropeRotate");
  if (!(theta > 0)) FAIL_RANGE("native ropeRotate: theta must be > 0");
  if (hs % 2 != 0) FAIL("native ropeRotate: head size %d is odd", (int)hs);
  const double n = (double)T * nHeads * hs;
  NEED(y, n, "ropeRotate", "T*nHeads*HS");
  NEED(x, n, "ropeRotate", "T*nHeads*HS");
  NEED(pos, T, "ropeRotate", "T");
  if (accumulate && y.p == x.p) FAIL("native ropeRotate: y must not alias x when accumulating");
  const int bad = ids_in_range(pos.p, (size_t)T, 1 << 27);
  if (bad >= 0) FAIL_RANGE("native ropeRotate: pos[%d] = %d is outside 0..2^27", bad, ((int32_t *)pos.p)[bad]);
  lock();
  const int rc = rope_rotate(y.p, x.p, (int)T, (int)nHeads, (int)hs, pos.p, theta, inverse, accumulate);
  if (rc != 0) train_set_oom();
  return unlock_check(env);
}

/* the first position n of starts (B·T) that is not a valid segment start, or −1: every row
 * begins a segment (starts[b·T] = 0) and each later position continues the previous one's
 * segment or begins its own (starts[b·T + t] ∈ {starts[b·T + t − 1], t}); *want gets the
 * expected values */
static long bad_start(const int32_t *starts, int64_t B, int64_t T, int32_t want[2]) {
  for (int64_t b = 0; b < B; b++) {
    for (int64_t t = 0; t < T; t++) {
      const int32_t st = starts[b * T + t], prev = t ? starts[b * T + t - 1] : 0;
      if (st == prev || st == t) continue;
      want[0] = prev;
      want[1] = (int32_t)t;
      return (long)(b * T + t);
    }
  }
  return -1;
}

/* reads B, T, NH, NKV, HS from argv[i..i+4], checks the head grouping, and the optional segment
 * starts (Int32Array (B·T) or null / absent) at argv[i+5] */
#define SHAPE(i, fn) \
  INT(i, B, fn); INT(i + 1, T, fn); INT(i + 2, NH, fn); INT(i + 3, NKV, fn); INT(i + 4, HS, fn); \
  if (NKV == 0 || NH % NKV != 0) FAIL("native %s: %d query heads is not a multiple of %d kv heads", fn, (int)NH, (int)NKV); \
  ARR(i + 5, starts, napi_int32_array, "Int32Array", fn, 1); \
  NEED(starts, (double)B * T, fn, "B*T"); \
  if (starts.p) { \
    int32_t want_[2]; \
    const long bad_ = bad_start(starts.p, B, T, want_); \
    if (bad_ >= 0) FAIL_RANGE("native %s: starts[%ld] (row %ld, position %ld) is %d, expected %d or %d", fn, bad_, \
                              bad_ / (long)T, bad_ % (long)T, ((int32_t *)starts.p)[bad_], want_[0], want_[1]); \
  } \
  const attn_shape shape = { (int)B, (int)T, (int)NH, (int)NKV, (int)HS, starts.p }; \
  const double qn = (double)B * T * NH * HS, kn = (double)B * T * NKV * HS, ln = (double)B * NH * T

/* attentionTrain(out, lse, q, k, v, B, T, NH, NKV, HS, starts?) */
static napi_value js_attention_train(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 10, argv)) FAIL_TYPE("native attentionTrain: expected 10 arguments");
  F32(0, out, "attentionTrain"); F32(1, lse, "attentionTrain"); F32(2, q, "attentionTrain");
  F32(3, k, "attentionTrain"); F32(4, v, "attentionTrain");
  SHAPE(5, "attentionTrain");
  NEED(out, qn, "attentionTrain", "B*T*NH*HS");
  NEED(q, qn, "attentionTrain", "B*T*NH*HS");
  NEED(k, kn, "attentionTrain", "B*T*NKV*HS");
  NEED(v, kn, "attentionTrain", "B*T*NKV*HS");
  NEED(lse, ln, "attentionTrain", "B*NH*T");
  lock();
  attn_train_forward(out.p, lse.p, q.p, k.p, v.p, shape);
  return unlock_check(env);
}

/* attentionTrainBackward(dq | null, dk | null, dv | null, dout, q, k, v, out, lse, B, T, NH, NKV, HS, starts?) */
static napi_value js_attention_train_backward(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  const char *fn = "attentionTrainBackward";
  if (!get_args(env, info, 14, argv)) FAIL_TYPE("native attentionTrainBackward: expected 14 arguments");
  F32_OPT(0, dq, fn); F32_OPT(1, dk, fn); F32_OPT(2, dv, fn); F32(3, dout, fn); F32(4, q, fn); F32(5, k, fn);
  F32(6, v, fn); F32(7, out, fn); F32(8, lse, fn);
  SHAPE(9, fn);
  NEED(dq, qn, fn, "B*T*NH*HS");
  NEED(dk, kn, fn, "B*T*NKV*HS");
  NEED(dv, kn, fn, "B*T*NKV*HS");
  NEED(dout, qn, fn, "B*T*NH*HS");
  NEED(q, qn, fn, "B*T*NH*HS");
  NEED(out, qn, fn, "B*T*NH*HS");
  NEED(k, kn, fn, "B*T*NKV*HS");
  NEED(v, kn, fn, "B*T*NKV*HS");
  NEED(lse, ln, fn, "B*NH*T");
  lock();
  attn_train_backward(dq.p, dk.p, dv.p, dout.p, q.p, k.p, v.p, out.p, lse.p, shape);
  return unlock_check(env);
}

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

void train_exports(napi_env env, napi_value exports) {
  export_fn(env, exports, "xentForward", js_xent_forward);
  export_fn(env, exports, "xentBackward", js_xent_backward);
  export_fn(env, exports, "adamw", js_adamw);
  export_fn(env, exports, "sumSquares", js_sum_squares);
  export_fn(env, exports, "rmsnormBackward", js_rmsnorm_backward);
  export_fn(env, exports, "swigluForward", js_swiglu_forward);
  export_fn(env, exports, "swigluBackward", js_swiglu_backward);
  export_fn(env, exports, "ropeRotate", js_rope_rotate);
  export_fn(env, exports, "attentionTrain", js_attention_train);
  export_fn(env, exports, "attentionTrainBackward", js_attention_train_backward);
  napi_value yes;
  napi_get_boolean(env, true, &yes);
  napi_set_named_property(env, exports, "ATTN_STARTS", yes);
}
