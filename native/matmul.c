/*
 * matmul: y (T, N) = x (T, K) · Wᵀ with W (N, K) stored in any dtype, read in place; and
 * matmul_parts, several such products over one x in one parallel job (the engine's Q|K|V and
 * gate|up projections), each optionally adding into its output (residual connections).
 *
 * Strategy by dtype and T (threads always split the weight rows):
 *   quantized (Q4_0 … Q8_0, Q2_K … Q6_K), any T
 *                                   → x quantized to int8 blocks once (q8a, common.h), then the
 *                                     ISA's multi-row kernel (q8_rows) or per-row integer dots
 *   F32 / F16 / BF16, T ≥ MATMUL_GEMM_MIN_T
 *                                   → the packed GEMM straight on W (gemm.c; 16-bit floats are
 *                                     converted as the GEMM packs them)
 *   F32 / F16 / BF16, small T       → row dots with x in f32 (f16/bf16 converted in registers),
 *                                     four rows (four memory streams) at a time at T = 1
 *   unaligned F32, types without an integer dot
 *                                   → decode a tile of W rows to f32, multiply by GEMM / row dots
 * Each weight row is read once per call whatever T is: row kernels loop over T with the row in
 * cache. The work items (chunks of consecutive rows) are split into one contiguous span per
 * thread, which each thread walks front to back: one sequential memory stream per thread, which
 * the hardware prefetchers follow across chunk boundaries (a shared counter interleaving the
 * threads' chunks cost ~15% of the bandwidth on 1–3 MB matrices). A thread done with its span
 * takes chunks from the back of the others', so one slowed by a busy core holds nobody up.
 * This file is not the kernels themselves
 * (kernels_*.c, quant_dot*.c, quant_mm_*.c).
 */
#include <stdatomic.h>
#include <stdint.h>
#include "native.h"

#define MATMUL_MAX_SPANS 64 /* threads that share one matmul; more than this sit it out */

typedef enum { MM_DOT_F32, MM_DOT_F16, MM_DOT_BF16, MM_Q8_ROWS, MM_Q8_DOT, MM_DECODE_DOT, MM_DECODE_GEMM, MM_GEMM } mm_mode;

typedef struct {
  mm_part p;
  size_t rb;      /* bytes per weight row */
  mm_mode mode;
  int chunk;      /* rows per work item */
  int first;      /* index of this part's first work item */
} mm_job_part;

typedef struct {
  mm_job_part parts[MATMUL_MAX_PARTS];
  int nparts, items;
  const float *x;     /* (T, K) */
  q8a_rows xq;        /* x quantized, when a part needs it */
  int K, T, tile;     /* tile: rows decoded at once (MM_DECODE_GEMM) */
  int nspans;
  /* span s: items [front, back) still to do, packed as back << 32 | front */
  _Atomic uint64_t span[MATMUL_MAX_SPANS];
} mm_job;

static inline void put(float *y, float v, int acc) { *y = acc ? *y + v : v; }

/* rows [n0, n1) of a float-dtype part at T = 1, four adjacent rows at a time (x loaded once per four) */
static void dot4_rows(const kernels_t *kt, int dt, const mm_part *p, size_t rb, int K, const float *x, int n0, int n1,
                      int acc) {
  float o4[4];
  int n = n0;
  for (; n + 4 <= n1; n += 4) {
    kt->dot4(dt, K, p->w + (size_t)n * rb, rb, x, o4);
    for (int r = 0; r < 4; r++) put(p->y + n + r, o4[r], acc);
  }
  for (; n < n1; n++) {
    const uint8_t *w = p->w + (size_t)n * rb;
    const float v = dt == DT_F32 ? kt->dot_f32(K, (const float *)w, x) : dt == DT_F16 ? kt->dot_f16(K, w, x) : kt->dot_bf16(K, w, x);
    put(p->y + n, v, acc);
  }
}

/* rows [n0, n1) of a float-dtype part at T = 1 as four sequential memory streams a quarter of the
 * range apart (row i with rows i + q, i + 2q, i + 3q through one dot4). One stream per thread
 * leaves DRAM bandwidth unused: on the development machine, 768-wide F16 rows went from 13 to
 * 21 GB/s on one thread (18–27 → 28–31 on two), 288-wide F32 rows from 14 to 19–23, and
 * 4096-wide rows (four adjacent rows were already four streams) gained 0–10%. */
static void dot4_quarters(const kernels_t *kt, int dt, const mm_part *p, size_t rb, int K, const float *x, int n0, int n1,
                          int acc) {
  const int q = (n1 - n0) / 4;
  float o4[4];
  for (int i = 0; i < q; i++) {
    kt->dot4(dt, K, p->w + (size_t)(n0 + i) * rb, (size_t)q * rb, x, o4);
    for (int r = 0; r < 4; r++) put(p->y + n0 + i + r * q, o4[r], acc);
  }
  dot4_rows(kt, dt, p, rb, K, x, n0 + 4 * q, n1, acc);
}

/* bytes at the start of a chunk to request at once: the kernels' own prefetches run ahead of the
 * rows in use, so without this the first rows of every chunk would wait on DRAM line by line */
#define CHUNK_HEAD_PREFETCH 8192

static void part_rows(const mm_job *j, const mm_job_part *jp, int n0, int n1) {
  const kernels_t *kt = K_ACTIVE;
  const mm_part *p = &jp->p;
  const int K = j->K, T = j->T, acc = p->accumulate;
  const long ldy = p->ldy;
  if (T < MATMUL_GEMM_MIN_T) {
    const uint8_t *head = p->w + (size_t)n0 * jp->rb;
    const size_t n = (size_t)(n1 - n0) * jp->rb < CHUNK_HEAD_PREFETCH ? (size_t)(n1 - n0) * jp->rb : CHUNK_HEAD_PREFETCH;
    for (size_t o = 0; o < n; o += 64) __builtin_prefetch(head + o, 0, 3);
  }
  switch (jp->mode) {
    case MM_DOT_F32:
      if (T == 1 && kt->dot4) {
        dot4_quarters(kt, DT_F32, p, jp->rb, K, j->x, n0, n1, acc);
        return;
      }
      for (int n = n0; n < n1; n++) {
        const float *wr = (const float *)(p->w + (size_t)n * jp->rb);
        for (int t = 0; t < T; t++) put(p->y + t * ldy + n, kt->dot_f32(K, wr, j->x + (long)t * K), acc);
      }
      return;
    case MM_DOT_F16:
    case MM_DOT_BF16: {
      float (*dot)(int, const uint8_t *, const float *) = jp->mode == MM_DOT_F16 ? kt->dot_f16 : kt->dot_bf16;
      if (T == 1 && kt->dot4) {
        dot4_quarters(kt, jp->mode == MM_DOT_F16 ? DT_F16 : DT_BF16, p, jp->rb, K, j->x, n0, n1, acc);
        return;
      }
      for (int n = n0; n < n1; n++)
        for (int t = 0; t < T; t++) put(p->y + t * ldy + n, dot(K, p->w + (size_t)n * jp->rb, j->x + (long)t * K), acc);
      return;
    }
    case MM_Q8_ROWS:
      kt->q8_rows[p->dt](K, p->w + (size_t)n0 * jp->rb, jp->rb, n1 - n0, &j->xq, T, p->y + n0, ldy, acc);
      return;
    case MM_Q8_DOT: {
      const q8_dot_fn dot = kt->q8_dot[p->dt];
      const int nb = K / QK;
      for (int n = n0; n < n1; n++)
        for (int t = 0; t < T; t++) put(p->y + t * ldy + n, dot(K, p->w + (size_t)n * jp->rb, j->xq.xa + (long)t * nb), acc);
      return;
    }
    case MM_DECODE_DOT: {
      float *row = scratch_get(2, sizeof(float) * (size_t)K); /* (K) */
      if (!row) return;
      for (int n = n0; n < n1; n++) {
        dequant_row(p->dt, p->w + (size_t)n * jp->rb, K, row);
        for (int t = 0; t < T; t++) put(p->y + t * ldy + n, kt->dot_f32(K, row, j->x + (long)t * K), acc);
      }
      return;
    }
    case MM_DECODE_GEMM: {
      float *tile = scratch_get(2, sizeof(float) * (size_t)j->tile * K); /* (tile, K) */
      if (!tile) return;
      for (int r0 = n0; r0 < n1; r0 += j->tile) {
        const int rows = n1 - r0 < j->tile ? n1 - r0 : j->tile;
        for (int r = 0; r < rows; r++) dequant_row(p->dt, p->w + (size_t)(r0 + r) * jp->rb, K, tile + (long)r * K);
        gemm_args g = { 0 };
        g.a = j->x; g.am = K; g.ak = 1;
        g.b = tile; g.bk = 1; g.bn = K;
        g.c = p->y + r0; g.ldc = ldy;
        g.M = T; g.N = rows; g.K = K;
        g.accumulate = acc;
        gemm_st(&g);
      }
      return;
    }
    case MM_GEMM:
      return; /* run by matmul_parts itself */
  }
}

/* runs work item `item` (a chunk of rows of one part) */
static void run_item(const mm_job *j, int item) {
  int i = j->nparts - 1;
  while (j->parts[i].first > item) i--;
  const mm_job_part *jp = &j->parts[i];
  const int n0 = (item - jp->first) * jp->chunk;
  const int n1 = n0 + jp->chunk < jp->p.N ? n0 + jp->chunk : jp->p.N;
  part_rows(j, jp, n0, n1);
}

/* takes the next item of span s from the front (own span) or the back (another's); −1 when empty */
static int take(mm_job *j, int s, int from_back) {
  uint64_t v = atomic_load_explicit(&j->span[s], memory_order_relaxed);
  for (;;) {
    const uint32_t front = (uint32_t)v, back = (uint32_t)(v >> 32);
    if (front >= back) return -1;
    const uint64_t nv = from_back ? ((uint64_t)(back - 1) << 32 | front) : ((uint64_t)back << 32 | (front + 1));
    if (atomic_compare_exchange_weak_explicit(&j->span[s], &v, nv, memory_order_relaxed, memory_order_relaxed))
      return (int)(from_back ? back - 1 : front);
  }
}

/* slot ith walks span ith, then helps with the others from their back ends */
static void mm_worker(void *arg, int ith, int nth) {
  mm_job *j = arg;
  (void)nth;
  for (int k = 0; k < j->nspans; k++) {
    const int s = (ith + k) % j->nspans;
    int item;
    while ((item = take(j, s, k != 0)) >= 0) run_item(j, item);
  }
}

/* ---- activation quantization: rows split over threads when there are many */

typedef struct { const float *x; q8a_block *xa; float *d, *nsd; int K, T; } quant_job;

static void quant_rows(const quant_job *q, int t0, int t1) {
  const int nb = q->K / QK;
  for (int t = t0; t < t1; t++) {
    q8a_block *b = q->xa + (long)t * nb;
    K_ACTIVE->quantize_q8a(q->K, q->x + (long)t * q->K, b);
    for (int i = 0; i < nb; i++) {
      q->d[(long)t * nb + i] = b[i].d;
      q->nsd[(long)t * nb + i] = -(float)b[i].sum * b[i].d;
    }
  }
}

static void quant_worker(void *arg, int ith, int nth) {
  const quant_job *q = arg;
  quant_rows(q, (int)((long)q->T * ith / nth), (int)((long)q->T * (ith + 1) / nth));
}

/* quantizes x (T, K) into the caller thread's scratch; 0 on success */
static int quantize_x(q8a_rows *out, const float *x, int K, int T) {
  const int nb = K / QK;
  const size_t nblk = (size_t)T * nb;
  uint8_t *mem = scratch_get(3, (sizeof(q8a_block) + 2 * sizeof(float)) * nblk + 128);
  if (!mem) return -1;
  quant_job q = { x, (q8a_block *)mem, NULL, NULL, K, T };
  q.d = (float *)(mem + ((sizeof(q8a_block) * nblk + 63) & ~(size_t)63));
  q.nsd = q.d + nblk;
  const int nth = T >= 16 ? pool_threads() : 1;
  if (nth > 1) pool_run(quant_worker, &q, nth);
  else quant_rows(&q, 0, T);
  out->xa = q.xa; out->d = q.d; out->nsd = q.nsd; out->nb = nb;
  return 0;
}

/* about 4·10^4 multiply-adds per thread before another thread pays off: measured at T = 1 on the
 * development machine, a second thread made a 288×288 matvec faster for every dtype (F32 from
 * DRAM 21 → 13 µs, F16 13 → 8, Q4_0 3.8 → 3.5; F16 in cache 6.7 → 4.7) and a 128×288 F32 one in
 * cache slower (3.3 → 3.8 µs) */
#define MM_MIN_WORK_PER_THREAD 40000.0

static mm_mode choose_mode(int dt, const uint8_t *w, int T) {
  const int f32_aligned = dt == DT_F32 && ((uintptr_t)w & 3) == 0;
  if (f32_aligned) return T >= MATMUL_GEMM_MIN_T ? MM_GEMM : MM_DOT_F32;
  if (dt == DT_F16) return T >= MATMUL_GEMM_MIN_T ? MM_GEMM : MM_DOT_F16;
  if (dt == DT_BF16) return T >= MATMUL_GEMM_MIN_T ? MM_GEMM : MM_DOT_BF16;
  if (dt_has_q8_dot(dt) && K_ACTIVE->q8_rows[dt]) return MM_Q8_ROWS;
  if (dt_has_q8_dot(dt) && K_ACTIVE->q8_dot[dt]) return MM_Q8_DOT;
  return T < MATMUL_GEMM_MIN_T ? MM_DECODE_DOT : MM_DECODE_GEMM;
}

void matmul_parts(const mm_part *parts, int nparts, const float *x, int K, int T) {
  if (T <= 0 || nparts <= 0) return;
  mm_job j;
  j.nparts = 0; j.items = 0; j.x = x; j.K = K; j.T = T; j.tile = 0;
  double work = 0.0;
  int need_q8 = 0;
  for (int i = 0; i < nparts && i < MATMUL_MAX_PARTS; i++) {
    const mm_part *p = &parts[i];
    if (p->N <= 0) continue;
    if (K <= 0) {
      if (!p->accumulate)
        for (int t = 0; t < T; t++)
          for (int n = 0; n < p->N; n++) p->y[t * p->ldy + n] = 0.0f;
      continue;
    }
    const mm_mode mode = choose_mode(p->dt, p->w, T);
    if (mode == MM_GEMM) { /* large f32 products: the GEMM splits them over the pool itself */
      gemm_args g = { 0 };
      g.a = x; g.am = K; g.ak = 1;
      if (p->dt == DT_F32) g.b = (const float *)p->w;
      else { g.b_raw = p->w; g.b_dt = p->dt; } /* F16 / BF16: converted while packed */
      g.bk = 1; g.bn = K;
      g.c = p->y; g.ldc = p->ldy;
      g.M = T; g.N = p->N; g.K = K;
      g.accumulate = p->accumulate;
      gemm_mt(&g, pool_threads());
      continue;
    }
    mm_job_part *jp = &j.parts[j.nparts++];
    jp->p = *p;
    jp->rb = dt_row_bytes(p->dt, K);
    jp->mode = mode;
    if (mode == MM_Q8_ROWS || mode == MM_Q8_DOT) need_q8 = 1;
    work += (double)p->N * K * T;
  }
  if (j.nparts == 0) return;
  if (need_q8 && quantize_x(&j.xq, x, K, T) != 0) return;

  int nth = pool_threads();
  const int want = (int)(work / MM_MIN_WORK_PER_THREAD);
  if (want < nth) nth = want < 1 ? 1 : want;
  if (j.parts[0].mode == MM_DECODE_GEMM || j.nparts > 1) {
    int tile = 262144 / K; /* ~1 MiB of decoded rows: the packing of x is shared by that many */
    tile = tile < 32 ? 32 : tile > 256 ? 256 : tile;
    j.tile = tile / 16 * 16;
  }
  for (int i = 0; i < j.nparts; i++) {
    mm_job_part *jp = &j.parts[i];
    int chunk;
    if (jp->mode == MM_DECODE_GEMM) {
      chunk = j.tile;
    } else {
      /* ~1/16 of a thread's share, at least 64 KiB of weights (a DRAM stream needs a few µs to get
       * going: smaller chunks made 2 threads no faster than 1 on 0.3–2 MB matrices), ≤ 256 rows
       * unless 64 KiB needs more */
      chunk = jp->p.N / (16 * nth);
      const int min_rows = (int)(65536 / (jp->rb ? jp->rb : 1)) + 1;
      if (chunk < min_rows) chunk = min_rows;
      if (chunk > 256) chunk = 256 > min_rows ? 256 : min_rows;
      const int per_thread = (jp->p.N + 2 * nth - 1) / (2 * nth); /* small (cached) matrices: ≥ 2 chunks a thread */
      if (chunk > per_thread) chunk = per_thread;
      chunk = (chunk + 7) & ~7; /* whole 8-row packs and 2-row tiles */
    }
    jp->chunk = chunk;
    jp->first = j.items;
    j.items += (jp->p.N + chunk - 1) / chunk;
  }
  if (nth > j.items) nth = j.items;
  if (nth > MATMUL_MAX_SPANS) nth = MATMUL_MAX_SPANS;
  j.nspans = nth;
  for (int s = 0; s < nth; s++) {
    const uint64_t front = (uint64_t)j.items * s / nth, back = (uint64_t)j.items * (s + 1) / nth;
    atomic_store_explicit(&j.span[s], back << 32 | front, memory_order_relaxed);
  }
  pool_run(mm_worker, &j, nth);
}

void matmul(float *y, const float *x, const uint8_t *w, int dt, int N, int K, int T) {
  if (N <= 0 || T <= 0) return;
  mm_part p = { w, dt, N, y, N, 0 };
  matmul_parts(&p, 1, x, K, T);
}
