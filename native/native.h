/*
 * The native backend's internal API: what addon.c (the N-API glue) calls, and what the kernel
 * files call of each other. Shapes follow src/backend/types.ts; all matrices are row-major.
 * This is not the ISA-specific kernel table (common.h) and holds no N-API types.
 */
#ifndef LLAMA2_NATIVE_H
#define LLAMA2_NATIVE_H

#include <stdint.h>
#include "common.h"

/* ---- thread pool (pool.c) */
typedef void (*pool_fn)(void *arg, int ith, int nth);
int pool_set_threads(int n); /* 0 on success */
int pool_threads(void);
/* runs fn(arg, i, nth) for i in 0..nth-1 on the pool (caller is thread 0); nth ≤ pool_threads() */
void pool_run(pool_fn fn, void *arg, int nth);

/* ---- ISA dispatch (dispatch.c) */
int isa_supported(isa_t isa);
int isa_select(isa_t isa); /* 0 on success */
isa_t isa_current(void);
const char *isa_name(isa_t isa);

/* ---- scratch memory that stays with the calling thread, grown on demand (pool.c) */
/* 64-byte aligned; slot < 4. On failure returns NULL and raises a flag that the caller of the
 * kernel (addon.c) turns into an exception: kernels just skip work they cannot allocate for. */
void *scratch_get(int slot, size_t bytes);
int scratch_take_oom(void); /* returns and clears the flag */

/* ---- GEMM (gemm.c): C (M, N) (+)= op(A) · op(B) with element strides */
typedef struct {
  const float *a; long am, ak; /* op(A)[m, k] = a[m·am + k·ak] */
  const float *b; long bk, bn; /* op(B)[k, n] = b[k·bk + n·bn] */
  /* or, when b_raw is set, op(B) in 16-bit floats (b_dt: DT_F16 / DT_BF16) with k contiguous
   * (bk = 1): op(B)[k, n] is the value at b_raw + 2·(k + n·bn), converted as B is packed */
  const uint8_t *b_raw; int b_dt;
  float *c; long ldc;          /* C[m, n] = c[m·ldc + n] */
  int M, N, K;
  int accumulate;
} gemm_args;
void gemm_st(const gemm_args *g);            /* one thread */
void gemm_mt(const gemm_args *g, int nth);   /* split over the pool */
enum { GEMM_NT = 0, GEMM_NN = 1, GEMM_TN = 2 };
void gemm_layout(float *c, const float *a, const float *b, int M, int N, int K, int layout, int accumulate);

/* ---- decoding rows (quant_decode.c through the ISA table) */
static inline void dequant_row(int dt, const uint8_t *src, long n, float *dst) { K_ACTIVE->dequant_row(dt, src, n, dst); }

/* ---- matmul (matmul.c): y (T, N) = x (T, K) · Wᵀ, W (N, K) raw bytes of dtype dt */
/* rows [8·g0, 8·g1) of a Q4_0 / Q8_0 matrix (dt) with K columns → its X8 layout (repack.c) */
void x8_repack(int dt, const uint8_t *src, uint8_t *dst, int K, int g0, int g1);
/* rows [8·g0, 8·g1) of a Q4_K matrix → DT_Q4_KX8 (repack.c) */
void q4_kx8_repack(const uint8_t *src, uint8_t *dst, int K, int g0, int g1);
void matmul(float *y, const float *x, const uint8_t *w, int dt, int N, int K, int T);
/* one product of matmul_parts: y (T, N) at row stride ldy (+)= x · Wᵀ; accumulate: add into y */
typedef struct { const uint8_t *w; int dt, N; float *y; long ldy; int accumulate; } mm_part;
#define MATMUL_MAX_PARTS 4
/* up to MATMUL_MAX_PARTS products over the same x (T, K) in one parallel job (x quantized once) */
void matmul_parts(const mm_part *parts, int nparts, const float *x, int K, int T);
/* largest T that uses the int8 activation path for quantized weights: every T (as llama.cpp) */
#define MATMUL_INT8_MAX_T 0x7fffffff
/* smallest T at which F32/F16/BF16 weights go through the GEMM instead of row dots */
#define MATMUL_GEMM_MIN_T 4

/* ---- one draw of the token sampler on a logits row w (V), modified in place (sample.c) */
int sample_draw(float *w, int V, float temperature, int top_k, float top_p, float min_p, double r, double *kept_mass);

/* ---- per-row, elementwise and attention kernels (ops.c, attention.c) */
void rmsnorm(float *y, const float *x, const float *g, int T, int C, double eps);
int rope(float *x, int T, int nHeads, int hs, const int32_t *pos, double theta); /* 0 ok, -1 oom */
/* RoPE cos/sin cache (len, hs/2), angles in double; shared by inference and training kernels. */
typedef struct { float *cos, *sin; int hs, len; double theta; } rope_cache_t;
extern rope_cache_t g_rope;
int rope_table(int hs, double theta, int minLen); /* grows g_rope to >= minLen positions; 0 ok, -1 oom */
void attention(float *out, const float *q, const float *k, const float *v, int T, int pos0,
               int nHeads, int nKv, int hs);
/* one sequence's run for attention_segments: as attention()'s arguments */
typedef struct { float *out; const float *q, *k, *v; int T, pos0; } att_seg;
/* attention() for every segment, short runs (decode) together in one parallel job; 0, −1 if out of memory */
int attention_segments(const att_seg *segs, int nseg, int nHeads, int nKv, int hs);
void swiglu(float *g, const float *u, long n);
void add_vec(float *x, const float *y, long n);
void embedding(float *out, const uint8_t *table, int dt, int C, const int32_t *ids, int T);

/* ---- memory-bandwidth probe (ops.c): Σ p[i]² over n floats, `reps` times, split over the pool */
double read_probe(const float *p, size_t n, int reps);

#endif
