/*
 * matmul: y (T, N) = x (T, K) · Wᵀ with W (N, K) stored in any dtype, read in place.
 *
 * Strategy by dtype and T (threads always split the N weight rows):
 *   F32, T ≥ MATMUL_GEMM_MIN_T      → the packed GEMM straight on W (gemm.c)
 *   F32 / F16 / BF16, small T       → row dots with x in f32 (f16/bf16 converted in registers)
 *   quantized (Q4_0 … Q8_0, Q2_K … Q6_K), T ≤ MATMUL_INT8_MAX_T
 *                                   → x quantized to int8 blocks once (q8a), integer row dots
 *   everything else (large T; unaligned F32)
 *                                   → decode a tile of W rows to f32, multiply by GEMM / row dots
 * Each weight row is read once per call whatever T is: row dots loop over T with the row in cache.
 * Threads take chunks of rows from a shared counter.
 * This file is not the kernels themselves (kernels_*.c, quant_dot*.c).
 */
#include <stdatomic.h>
#include "native.h"

typedef enum { MM_DOT_F32, MM_DOT_F16, MM_DOT_BF16, MM_DOT_Q8, MM_DECODE_DOT, MM_DECODE_GEMM } mm_mode;

typedef struct {
  float *y;              /* (T, N) */
  const float *x;        /* (T, K) */
  const uint8_t *w;      /* (N, rowBytes) */
  const q8a_block *xa;   /* (T, K/32) when mode == MM_DOT_Q8 */
  size_t rb;             /* bytes per weight row */
  int dt, N, K, T, tile; /* tile: rows decoded at once (MM_DECODE_GEMM) */
  int chunk;             /* rows a thread takes at a time */
  _Atomic int next;      /* first row not yet taken */
  mm_mode mode;
} mm_job;

static void mm_rows(const mm_job *j, int n0, int n1) {
  const kernels_t *kt = K_ACTIVE;
  const int N = j->N, K = j->K, T = j->T;
  switch (j->mode) {
    case MM_DOT_F32:
      for (int n = n0; n < n1; n++) {
        const float *wr = (const float *)(j->w + (size_t)n * j->rb);
        for (int t = 0; t < T; t++) j->y[(long)t * N + n] = kt->dot_f32(K, wr, j->x + (long)t * K);
      }
      return;
    case MM_DOT_F16:
    case MM_DOT_BF16: {
      float (*dot)(int, const uint8_t *, const float *) = j->mode == MM_DOT_F16 ? kt->dot_f16 : kt->dot_bf16;
      for (int n = n0; n < n1; n++)
        for (int t = 0; t < T; t++) j->y[(long)t * N + n] = dot(K, j->w + (size_t)n * j->rb, j->x + (long)t * K);
      return;
    }
    case MM_DOT_Q8: {
      const q8_dot_fn dot = kt->q8_dot[j->dt];
      const int nb = K / QK;
      for (int n = n0; n < n1; n++)
        for (int t = 0; t < T; t++) j->y[(long)t * N + n] = dot(K, j->w + (size_t)n * j->rb, j->xa + (long)t * nb);
      return;
    }
    case MM_DECODE_DOT: {
      float *row = scratch_get(2, sizeof(float) * (size_t)K); /* (K) */
      if (!row) return;
      for (int n = n0; n < n1; n++) {
        dequant_row(j->dt, j->w + (size_t)n * j->rb, K, row);
        for (int t = 0; t < T; t++) j->y[(long)t * N + n] = kt->dot_f32(K, row, j->x + (long)t * K);
      }
      return;
    }
    case MM_DECODE_GEMM: {
      float *tile = scratch_get(2, sizeof(float) * (size_t)j->tile * K); /* (tile, K) */
      if (!tile) return;
      for (int r0 = n0; r0 < n1; r0 += j->tile) {
        const int rows = n1 - r0 < j->tile ? n1 - r0 : j->tile;
        for (int r = 0; r < rows; r++) dequant_row(j->dt, j->w + (size_t)(r0 + r) * j->rb, K, tile + (long)r * K);
        gemm_args g = { 0 };
        g.a = j->x; g.am = K; g.ak = 1;
        g.b = tile; g.bk = 1; g.bn = K;
        g.c = j->y + r0; g.ldc = N;
        g.M = T; g.N = rows; g.K = K;
        gemm_st(&g);
      }
      return;
    }
  }
}

/* threads take chunks of rows from a shared counter: one slowed by a busy core takes fewer */
static void mm_worker(void *arg, int ith, int nth) {
  mm_job *j = arg;
  (void)ith; (void)nth;
  for (;;) {
    const int n0 = atomic_fetch_add_explicit(&j->next, j->chunk, memory_order_relaxed);
    if (n0 >= j->N) break;
    mm_rows(j, n0, j->N - n0 < j->chunk ? j->N : n0 + j->chunk);
  }
}

/* about 2·10^5 multiply-adds (~10 µs of row dots) per thread before another thread pays off */
#define MM_MIN_WORK_PER_THREAD 200000.0

void matmul(float *y, const float *x, const uint8_t *w, int dt, int N, int K, int T) {
  if (N <= 0 || T <= 0) return;
  if (K <= 0) {
    for (long i = 0; i < (long)T * N; i++) y[i] = 0.0f;
    return;
  }
  mm_job j = { 0 };
  j.y = y; j.x = x; j.w = w; j.dt = dt; j.N = N; j.K = K; j.T = T;
  j.rb = dt_row_bytes(dt, K);
  const int f32_aligned = dt == DT_F32 && ((uintptr_t)w & 3) == 0;

  if (f32_aligned && T >= MATMUL_GEMM_MIN_T) {
    gemm_args g = { 0 };
    g.a = x; g.am = K; g.ak = 1;
    g.b = (const float *)w; g.bk = 1; g.bn = K;
    g.c = y; g.ldc = N;
    g.M = T; g.N = N; g.K = K;
    gemm_mt(&g, pool_threads());
    return;
  }
  if (f32_aligned) j.mode = MM_DOT_F32;
  else if (dt == DT_F16 && T < MATMUL_GEMM_MIN_T) j.mode = MM_DOT_F16;
  else if (dt == DT_BF16 && T < MATMUL_GEMM_MIN_T) j.mode = MM_DOT_BF16;
  else if (dt_has_q8_dot(dt) && T <= MATMUL_INT8_MAX_T && K_ACTIVE->q8_dot[dt]) j.mode = MM_DOT_Q8;
  else if (T < MATMUL_GEMM_MIN_T) j.mode = MM_DECODE_DOT;
  else j.mode = MM_DECODE_GEMM;

  if (j.mode == MM_DOT_Q8) {
    const int nb = K / QK;
    q8a_block *xa = scratch_get(3, sizeof(q8a_block) * (size_t)T * nb); /* (T, K/32) */
    if (!xa) return;
    for (int t = 0; t < T; t++) K_ACTIVE->quantize_q8a(K, x + (long)t * K, xa + (long)t * nb);
    j.xa = xa;
  }
  if (j.mode == MM_DECODE_GEMM) {
    int tile = 262144 / K; /* ~1 MiB of decoded rows: the packing of x is shared by that many */
    tile = tile < 32 ? 32 : tile > 256 ? 256 : tile;
    j.tile = tile / 16 * 16;
  }
  int nth = pool_threads();
  const int want = (int)((double)N * K * T / MM_MIN_WORK_PER_THREAD);
  if (want < nth) nth = want < 1 ? 1 : want;
  /* decode tiles stay whole; row dots go in chunks of ~1/16 of a thread's share (≤ 64 rows) */
  int chunk = N / (16 * nth);
  chunk = chunk < 1 ? 1 : chunk > 64 ? 64 : chunk;
  j.chunk = j.mode == MM_DECODE_GEMM ? j.tile : chunk;
  atomic_store(&j.next, 0);
  pool_run(mm_worker, &j, nth);
}
