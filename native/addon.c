/*
 * N-API glue of the native backend: checks the arguments (types, sizes, ranges) and calls the
 * kernels. Every check that protects memory is here, so a wrong call from JavaScript throws
 * instead of crashing. Kernel calls are serialised by one mutex (the pool and the scratch buffers
 * are shared). The JavaScript face is src/backend/native.ts; this file has no kernel code.
 *
 * Exports: gemm matmul rmsnorm rope attention swiglu embedding add setThreads threads isa setIsa
 * supportedIsas quantizeQ8 readProbe mmapFile, and constants INT8_MAX_T GEMM_MIN_T; the engine's
 * engineCreate engineForward come from addon_engine.c, mmapRanges from addon_mmap.c.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "native.h"

static pthread_mutex_t g_call = PTHREAD_MUTEX_INITIALIZER;

/* the kernel mutex, for the other glue files (addon_engine.c) */
pthread_mutex_t *addon_call_mutex(void) { return &g_call; }
void engine_exports(napi_env env, napi_value exports); /* addon_engine.c: engineCreate, engineForward */
void mmap_exports(napi_env env, napi_value exports);   /* addon_mmap.c: mmapRanges */
void train_exports(napi_env env, napi_value exports);  /* addon_train.c: the training kernels */

#define MAX_ARGS 10
#define FAIL(...) do { char m_[4400]; snprintf(m_, sizeof m_, __VA_ARGS__); napi_throw_error(env, NULL, m_); return NULL; } while (0)
#define FAIL_TYPE(...) do { char m_[4400]; snprintf(m_, sizeof m_, __VA_ARGS__); napi_throw_type_error(env, NULL, m_); return NULL; } while (0)
#define FAIL_RANGE(...) do { char m_[4400]; snprintf(m_, sizeof m_, __VA_ARGS__); napi_throw_range_error(env, NULL, m_); return NULL; } while (0)

typedef struct { void *p; size_t len; } span; /* a typed array: data pointer and element count */

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  return argc >= want;
}

static int typed(napi_env env, napi_value v, napi_typedarray_type want, span *out) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, &out->len, &out->p, &ab, &off) != napi_ok) return 0;
  return type == want;
}

static int num_i(napi_env env, napi_value v, int64_t *out) { return napi_get_value_int64(env, v, out) == napi_ok; }
static int num_d(napi_env env, napi_value v, double *out) { return napi_get_value_double(env, v, out) == napi_ok; }

/* fetches typed array argument i into span s, or throws naming it */
#define ARR(i, s, kind, kname, fn, what) \
  span s; if (!typed(env, argv[i], kind, &s)) FAIL_TYPE("native %s: %s must be a %s", fn, what, kname)
#define F32(i, s, fn) ARR(i, s, napi_float32_array, "Float32Array", fn, #s)
#define INT(i, v, fn) \
  int64_t v; if (!num_i(env, argv[i], &v) || v < 0 || v > 0x7fffffff) FAIL_TYPE("native %s: %s must be a non-negative int32", fn, #v)
#define NEED(s, n, fn, expr) \
  if ((double)(s).len < (double)(n)) FAIL("native %s: %s has %zu elements, needs %s = %.0f", fn, #s, (s).len, expr, (double)(n))

static napi_value undefined(napi_env env) { napi_value u; napi_get_undefined(env, &u); return u; }

static napi_value finish(napi_env env) {
  pthread_mutex_unlock(&g_call);
  if (scratch_take_oom()) FAIL("native backend: out of memory for its scratch buffers");
  return undefined(env);
}

static napi_value js_gemm(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 8, argv)) FAIL_TYPE("native gemm: expected 8 arguments");
  F32(0, c, "gemm"); F32(1, a, "gemm"); F32(2, b, "gemm");
  INT(3, M, "gemm"); INT(4, N, "gemm"); INT(5, K, "gemm"); INT(6, layout, "gemm");
  bool acc;
  if (napi_get_value_bool(env, argv[7], &acc) != napi_ok) FAIL_TYPE("native gemm: accumulate must be a boolean");
  if (layout > 2) FAIL_RANGE("native gemm: layout code %d is not 0 (NT), 1 (NN) or 2 (TN)", (int)layout);
  NEED(c, (double)M * N, "gemm", "M*N");
  NEED(a, (double)M * K, "gemm", "M*K");
  NEED(b, (double)K * N, "gemm", "K*N");
  pthread_mutex_lock(&g_call);
  gemm_layout(c.p, a.p, b.p, (int)M, (int)N, (int)K, (int)layout, acc);
  return finish(env);
}

static napi_value js_matmul(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 7, argv)) FAIL_TYPE("native matmul: expected 7 arguments");
  F32(0, y, "matmul"); F32(1, x, "matmul");
  ARR(2, w, napi_uint8_array, "Uint8Array", "matmul", "weight data");
  INT(3, dt, "matmul"); INT(4, N, "matmul"); INT(5, K, "matmul"); INT(6, T, "matmul");
  if (dt >= DT_PUBLIC_COUNT) FAIL_RANGE("native matmul: dtype code %d is unknown", (int)dt);
  if (K % DT_BLOCK[dt] != 0) FAIL("native matmul: K=%d is not a multiple of the block size %d", (int)K, DT_BLOCK[dt]);
  NEED(w, (double)N * dt_row_bytes((int)dt, K), "matmul", "N*rowBytes");
  NEED(x, (double)T * K, "matmul", "T*K");
  NEED(y, (double)T * N, "matmul", "T*N");
  pthread_mutex_lock(&g_call);
  matmul(y.p, x.p, w.p, (int)dt, (int)N, (int)K, (int)T);
  return finish(env);
}

/* matmulRegrouped(y, x, w, dt, N, K, T): matmul through the engine's X8 layout (repack.c) of a
 * Q4_0 / Q8_0 / Q4_K matrix with N a multiple of 8: the conformance tests' way to reach it */
static napi_value js_matmul_regrouped(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 7, argv)) FAIL_TYPE("native matmulRegrouped: expected 7 arguments");
  F32(0, y, "matmulRegrouped"); F32(1, x, "matmulRegrouped");
  ARR(2, w, napi_uint8_array, "Uint8Array", "matmulRegrouped", "weight data");
  INT(3, dt, "matmulRegrouped"); INT(4, N, "matmulRegrouped"); INT(5, K, "matmulRegrouped"); INT(6, T, "matmulRegrouped");
  if (dt != DT_Q4_0 && dt != DT_Q8_0 && dt != DT_Q4_K) FAIL_RANGE("native matmulRegrouped: dtype code %d is not Q4_0, Q8_0 or Q4_K", (int)dt);
  if (N % 8 != 0 || K % DT_BLOCK[dt] != 0) FAIL("native matmulRegrouped: N=%d must be a multiple of 8 and K=%d of %d", (int)N, (int)K, DT_BLOCK[dt]);
  NEED(w, (double)N * dt_row_bytes((int)dt, K), "matmulRegrouped", "N*rowBytes");
  NEED(x, (double)T * K, "matmulRegrouped", "T*K");
  NEED(y, (double)T * N, "matmulRegrouped", "T*N");
  const int to = dt == DT_Q4_0 ? DT_Q4_0X8 : dt == DT_Q8_0 ? DT_Q8_0X8 : DT_Q4_KX8;
  uint8_t *g = malloc((size_t)N * dt_row_bytes(to, K) + 1);
  if (!g) FAIL("native matmulRegrouped: out of memory");
  if (dt == DT_Q4_K) q4_kx8_repack(w.p, g, (int)K, 0, (int)N / 8);
  else x8_repack((int)dt, w.p, g, (int)K, 0, (int)N / 8);
  pthread_mutex_lock(&g_call);
  matmul(y.p, x.p, g, to, (int)N, (int)K, (int)T);
  free(g);
  return finish(env);
}

static napi_value js_rmsnorm(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 5, argv)) FAIL_TYPE("native rmsnorm: expected 5 arguments");
  F32(0, y, "rmsnorm"); F32(1, x, "rmsnorm"); F32(2, g, "rmsnorm");
  INT(3, T, "rmsnorm");
  double eps;
  if (!num_d(env, argv[4], &eps)) FAIL_TYPE("native rmsnorm: eps must be a number");
  NEED(x, (double)T * g.len, "rmsnorm", "T*C");
  NEED(y, (double)T * g.len, "rmsnorm", "T*C");
  pthread_mutex_lock(&g_call);
  rmsnorm(y.p, x.p, g.p, (int)T, (int)g.len, eps);
  return finish(env);
}

static napi_value js_rope(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 6, argv)) FAIL_TYPE("native rope: expected 6 arguments");
  F32(0, x, "rope");
  INT(1, T, "rope"); INT(2, nHeads, "rope"); INT(3, hs, "rope");
  ARR(4, pos, napi_int32_array, "Int32Array", "rope", "pos");
  double theta;
  if (!num_d(env, argv[5], &theta) || !(theta > 0)) FAIL_TYPE("native rope: theta must be a positive number");
  if (hs % 2 != 0) FAIL("native rope: head size %d is odd", (int)hs);
  NEED(x, (double)T * nHeads * hs, "rope", "T*nHeads*HS");
  NEED(pos, (double)T, "rope", "T");
  const int32_t *p = pos.p;
  for (int64_t t = 0; t < T; t++)
    if (p[t] < 0 || p[t] > 0x7ffffff) FAIL_RANGE("native rope: pos[%d] = %d is outside 0..2^27", (int)t, p[t]);
  pthread_mutex_lock(&g_call);
  const int rc = rope(x.p, (int)T, (int)nHeads, (int)hs, p, theta);
  pthread_mutex_unlock(&g_call);
  if (rc != 0) FAIL("native rope: out of memory for the cos/sin table");
  return undefined(env);
}

static napi_value js_attention(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 9, argv)) FAIL_TYPE("native attention: expected 9 arguments");
  F32(0, out, "attention"); F32(1, q, "attention"); F32(2, kCache, "attention"); F32(3, vCache, "attention");
  INT(4, T, "attention"); INT(5, pos0, "attention"); INT(6, nHeads, "attention"); INT(7, nKv, "attention");
  INT(8, hs, "attention");
  if (nKv == 0 || nHeads % nKv != 0) FAIL("native attention: %d query heads is not a multiple of %d kv heads", (int)nHeads, (int)nKv);
  NEED(q, (double)T * nHeads * hs, "attention", "T*NH*HS");
  NEED(out, (double)T * nHeads * hs, "attention", "T*NH*HS");
  NEED(kCache, (double)(pos0 + T) * nKv * hs, "attention", "(pos0+T)*NKV*HS");
  NEED(vCache, (double)(pos0 + T) * nKv * hs, "attention", "(pos0+T)*NKV*HS");
  pthread_mutex_lock(&g_call);
  attention(out.p, q.p, kCache.p, vCache.p, (int)T, (int)pos0, (int)nHeads, (int)nKv, (int)hs);
  return finish(env);
}

static napi_value js_swiglu(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 3, argv)) FAIL_TYPE("native swiglu: expected 3 arguments");
  F32(0, gate, "swiglu"); F32(1, up, "swiglu"); INT(2, n, "swiglu");
  NEED(gate, n, "swiglu", "n");
  NEED(up, n, "swiglu", "n");
  pthread_mutex_lock(&g_call);
  swiglu(gate.p, up.p, (long)n);
  return finish(env);
}

static napi_value js_add(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 3, argv)) FAIL_TYPE("native add: expected 3 arguments");
  F32(0, x, "add"); F32(1, y, "add"); INT(2, n, "add");
  NEED(x, n, "add", "n");
  NEED(y, n, "add", "n");
  pthread_mutex_lock(&g_call);
  add_vec(x.p, y.p, (long)n);
  return finish(env);
}

static napi_value js_embedding(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 6, argv)) FAIL_TYPE("native embedding: expected 6 arguments");
  F32(0, out, "embedding");
  ARR(1, table, napi_uint8_array, "Uint8Array", "embedding", "table data");
  INT(2, dt, "embedding"); INT(3, V, "embedding"); INT(4, C, "embedding");
  ARR(5, ids, napi_int32_array, "Int32Array", "embedding", "ids");
  if (dt >= DT_PUBLIC_COUNT) FAIL_RANGE("native embedding: dtype code %d is unknown", (int)dt);
  if (C % DT_BLOCK[dt] != 0) FAIL("native embedding: C=%d is not a multiple of the block size %d", (int)C, DT_BLOCK[dt]);
  NEED(table, (double)V * dt_row_bytes((int)dt, C), "embedding", "V*rowBytes");
  NEED(out, (double)ids.len * C, "embedding", "T*C");
  const int32_t *id = ids.p;
  for (size_t t = 0; t < ids.len; t++)
    if (id[t] < 0 || id[t] >= V) FAIL_RANGE("embedding: token id %d is outside the vocabulary (0..%d)", id[t], (int)V - 1);
  pthread_mutex_lock(&g_call);
  embedding(out.p, table.p, (int)dt, (int)C, id, (int)ids.len);
  return finish(env);
}

static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 1, argv)) FAIL_TYPE("native setThreads: expected 1 argument");
  INT(0, n, "setThreads");
  if (n < 1 || n > 256) FAIL_RANGE("native setThreads: %d threads is outside 1..256", (int)n);
  pthread_mutex_lock(&g_call);
  const int rc = pool_set_threads((int)n);
  pthread_mutex_unlock(&g_call);
  if (rc != 0) FAIL("native setThreads: could not start %d threads (%d running)", (int)n, pool_threads());
  return undefined(env);
}

static napi_value js_threads(napi_env env, napi_callback_info info) {
  napi_value r;
  napi_create_int32(env, pool_threads(), &r);
  return r;
}

static napi_value js_isa(napi_env env, napi_callback_info info) {
  napi_value r;
  napi_create_string_utf8(env, isa_name(isa_current()), NAPI_AUTO_LENGTH, &r);
  return r;
}

static napi_value js_supported_isas(napi_env env, napi_callback_info info) {
  napi_value arr, s;
  napi_create_array(env, &arr);
  uint32_t n = 0;
  for (int i = 0; i < ISA_COUNT; i++) {
    if (!isa_supported((isa_t)i)) continue;
    napi_create_string_utf8(env, isa_name((isa_t)i), NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, n++, s);
  }
  return arr;
}

static napi_value js_set_isa(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  char name[32];
  size_t len;
  if (!get_args(env, info, 1, argv) || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok)
    FAIL_TYPE("native setIsa: expected an ISA name");
  for (int i = 0; i < ISA_COUNT; i++) {
    if (strcmp(name, isa_name((isa_t)i)) != 0) continue;
    pthread_mutex_lock(&g_call);
    const int rc = isa_select((isa_t)i);
    pthread_mutex_unlock(&g_call);
    if (rc != 0) FAIL("native setIsa: this CPU does not support %s", name);
    return undefined(env);
  }
  FAIL_RANGE("native setIsa: unknown ISA \"%s\" (scalar, avx2, avx512, neon)", name);
}

/* quantizeQ8(x, d: Float32Array (K/32), qs: Int8Array (K), sums: Int32Array (K/32)): test hook */
static napi_value js_quantize_q8(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 4, argv)) FAIL_TYPE("native quantizeQ8: expected 4 arguments");
  F32(0, x, "quantizeQ8"); F32(1, d, "quantizeQ8");
  ARR(2, qs, napi_int8_array, "Int8Array", "quantizeQ8", "qs");
  ARR(3, sums, napi_int32_array, "Int32Array", "quantizeQ8", "sums");
  const size_t nb = x.len / QK;
  if (x.len % QK != 0) FAIL("native quantizeQ8: %zu values is not a multiple of 32", x.len);
  NEED(d, nb, "quantizeQ8", "K/32");
  NEED(qs, x.len, "quantizeQ8", "K");
  NEED(sums, nb, "quantizeQ8", "K/32");
  q8a_block *b = malloc(sizeof(q8a_block) * (nb ? nb : 1));
  if (!b) FAIL("native quantizeQ8: out of memory");
  pthread_mutex_lock(&g_call);
  K_ACTIVE->quantize_q8a((int)x.len, x.p, b);
  pthread_mutex_unlock(&g_call);
  for (size_t i = 0; i < nb; i++) {
    ((float *)d.p)[i] = b[i].d;
    ((int32_t *)sums.p)[i] = b[i].sum;
    memcpy((int8_t *)qs.p + i * QK, b[i].qs, QK);
  }
  free(b);
  return undefined(env);
}

/* readProbe(values: Float32Array, reps): Σ values `reps` times on the pool (a read-bandwidth probe) */
static napi_value js_read_probe(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 2, argv)) FAIL_TYPE("native readProbe: expected 2 arguments");
  F32(0, values, "readProbe");
  INT(1, reps, "readProbe");
  pthread_mutex_lock(&g_call);
  const double s = read_probe(values.p, values.len, (int)reps);
  pthread_mutex_unlock(&g_call);
  napi_value r;
  napi_create_double(env, s, &r);
  return r;
}

/* sampleDraw(w: Float32Array, temperature, topK, topP, minP, r, mass?: Float64Array): a token id
 * (sample.c); w is overwritten with probabilities, mass[0] (when given) receives the kept ids' total
 * probability. The caller (src/generate/sampler.ts) has checked the options. */
static napi_value js_sample_draw(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  if (!get_args(env, info, 6, argv)) FAIL_TYPE("native sampleDraw: expected 6 arguments");
  F32(0, w, "sampleDraw");
  INT(2, top_k, "sampleDraw");
  double temp, top_p, min_p, r;
  if (!num_d(env, argv[1], &temp) || !num_d(env, argv[3], &top_p) || !num_d(env, argv[4], &min_p) || !num_d(env, argv[5], &r))
    FAIL_TYPE("native sampleDraw: temperature, topP, minP and r must be numbers");
  if (!(temp > 0) || w.len == 0 || w.len > 0x7fffffff) FAIL("native sampleDraw: needs temperature > 0 and 1..2^31 logits");
  span mass = { NULL, 0 };
  napi_valuetype mt;
  napi_typeof(env, argv[6], &mt);
  if (mt != napi_undefined && (!typed(env, argv[6], napi_float64_array, &mass) || mass.len < 1))
    FAIL_TYPE("native sampleDraw: mass must be a Float64Array of at least 1 element");
  pthread_mutex_lock(&g_call);
  const int id = sample_draw(w.p, (int)w.len, (float)temp, (int)top_k, (float)top_p, (float)min_p, r, mass.p);
  pthread_mutex_unlock(&g_call);
  napi_value out;
  napi_create_int32(env, id, &out);
  return out;
}

static void unmap(napi_env env, void *data, void *hint) { munmap(data, (size_t)(uintptr_t)hint); }

/* mmapFile(path): the whole file as an ArrayBuffer over a private (copy-on-write) mapping */
static napi_value js_mmap_file(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  char path[4096];
  size_t len;
  if (!get_args(env, info, 1, argv) || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok)
    FAIL_TYPE("mmapFile: expected a path string");
  if (len >= sizeof path - 1) FAIL("mmapFile: path is longer than %zu bytes", sizeof path - 2);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) FAIL("mmapFile %s: cannot open (%s)", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) { const int e = errno; close(fd); FAIL("mmapFile %s: cannot stat (%s)", path, strerror(e)); }
  napi_value ab;
  if (st.st_size == 0) {
    close(fd);
    void *unused;
    napi_create_arraybuffer(env, 0, &unused, &ab);
    return ab;
  }
  const size_t size = (size_t)st.st_size;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int e = errno;
  close(fd);
  if (p == MAP_FAILED) FAIL("mmapFile %s: mmap of %zu bytes failed (%s)", path, size, strerror(e));
  if (napi_create_external_arraybuffer(env, p, size, unmap, (void *)(uintptr_t)size, &ab) != napi_ok) {
    munmap(p, size);
    FAIL("mmapFile %s: this Node.js does not allow external ArrayBuffers", path);
  }
  return ab;
}

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

static void export_int(napi_env env, napi_value exports, const char *name, int v) {
  napi_value n;
  napi_create_int32(env, v, &n);
  napi_set_named_property(env, exports, name, n);
}

static napi_value init(napi_env env, napi_value exports) {
  static int once;
  pthread_mutex_lock(&g_call);
  if (!once) { /* the best ISA this CPU has; one thread until setThreads */
    for (int i = ISA_COUNT - 1; i >= 0; i--) if (isa_select((isa_t)i) == 0) break;
    once = 1;
  }
  pthread_mutex_unlock(&g_call);
  export_fn(env, exports, "gemm", js_gemm);
  export_fn(env, exports, "matmul", js_matmul);
  export_fn(env, exports, "matmulRegrouped", js_matmul_regrouped);
  export_fn(env, exports, "rmsnorm", js_rmsnorm);
  export_fn(env, exports, "rope", js_rope);
  export_fn(env, exports, "attention", js_attention);
  export_fn(env, exports, "swiglu", js_swiglu);
  export_fn(env, exports, "embedding", js_embedding);
  export_fn(env, exports, "add", js_add);
  export_fn(env, exports, "setThreads", js_set_threads);
  export_fn(env, exports, "threads", js_threads);
  export_fn(env, exports, "isa", js_isa);
  export_fn(env, exports, "setIsa", js_set_isa);
  export_fn(env, exports, "supportedIsas", js_supported_isas);
  export_fn(env, exports, "quantizeQ8", js_quantize_q8);
  export_fn(env, exports, "readProbe", js_read_probe);
  export_fn(env, exports, "sampleDraw", js_sample_draw);
  export_fn(env, exports, "mmapFile", js_mmap_file);
  engine_exports(env, exports);
  mmap_exports(env, exports);
  train_exports(env, exports);
  export_int(env, exports, "INT8_MAX_T", MATMUL_INT8_MAX_T);
  export_int(env, exports, "GEMM_MIN_T", MATMUL_GEMM_MIN_T);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
