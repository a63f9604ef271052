/*
 * The blocked f32 GEMM driver: C (M, N) (+)= op(A) (M, K) · op(B) (K, N), any element strides.
 *
 * Goto/BLIS structure: B is packed in column panels of NR-column slivers, A in MC×KC blocks of
 * MR-row slivers, and the ISA's micro-kernel (kernels_t.gemm_tile) computes one MR×NR tile of C
 * over a K slice of at most KC. Edge tiles go through a small buffer, so any M, N, K works.
 * Threads take tiles of C from a shared counter (no barrier; a thread slowed by a busy core just
 * takes fewer tiles) and pack their own operands. This file knows no ISA: it only calls K_ACTIVE.
 */
#include <stdatomic.h>
#include "native.h"

#define KC 320            /* K slice: a 6×KC A sliver plus a KC×16 B sliver fit a 32 KiB L1 */
#define MC 144            /* rows of an A block (in L2); a multiple of every MR (4, 6) */
#define NC 2048           /* widest column panel; a multiple of every NR (4, 8, 16, 32) */
#define B_PANEL_BYTES (8 << 20) /* a packed full-K panel of B (in L3; slivers stream through L1) */
#define MR_MAX 16
#define NR_MAX 64
#define MIN_FLOPS_PER_THREAD 400000.0 /* below ~4 µs of work a thread costs more than it saves */

/* op(A)[m0.., k0..] (mc, kc) → MR-row slivers: dst[sliver][k][i], zero-padded to MR rows */
static void pack_a(const gemm_args *g, int m0, int mc, int k0, int kc, int MR, float *dst) {
  const long sliver = (long)kc * MR;
  const float *src = g->a + (long)m0 * g->am + (long)k0 * g->ak;
  if (g->ak == 1) { /* rows of A contiguous in k: read each row once */
    for (int i = 0; i < mc; i++) {
      const float *s = src + (long)i * g->am;
      float *d = dst + (i / MR) * sliver + i % MR;
      for (int k = 0; k < kc; k++) d[k * MR] = s[k];
    }
  } else { /* columns of A contiguous in m (TN): read each column segment once */
    for (int k = 0; k < kc; k++) {
      const float *s = src + (long)k * g->ak;
      for (int i = 0; i < mc; i++) dst[(i / MR) * sliver + (long)k * MR + i % MR] = s[(long)i * g->am];
    }
  }
  for (int i = mc; i < (mc + MR - 1) / MR * MR; i++) /* zero rows of the last sliver */
    for (int k = 0; k < kc; k++) dst[(i / MR) * sliver + (long)k * MR + i % MR] = 0.0f;
}

/* op(B)[k0.., n0..] (kc, nc) → NR-column slivers: dst[sliver][k][j], zero-padded to NR columns */
static void pack_b(const gemm_args *g, int k0, int kc, int n0, int nc, int NR, float *dst) {
  for (int j0 = 0; j0 < nc; j0 += NR, dst += (long)kc * NR) {
    const int cols = nc - j0 < NR ? nc - j0 : NR;
    const float *src = g->b + (long)k0 * g->bk + (long)(n0 + j0) * g->bn;
    if (g->bn == 1) { /* rows of op(B) contiguous in n */
      for (int k = 0; k < kc; k++) {
        const float *s = src + (long)k * g->bk;
        for (int j = 0; j < cols; j++) dst[k * NR + j] = s[j];
        for (int j = cols; j < NR; j++) dst[k * NR + j] = 0.0f;
      }
    } else {
      for (int j = 0; j < cols; j++) {
        const float *s = src + (long)j * g->bn;
        for (int k = 0; k < kc; k++) dst[k * NR + j] = s[(long)k * g->bk];
      }
      for (int j = cols; j < NR; j++)
        for (int k = 0; k < kc; k++) dst[k * NR + j] = 0.0f;
    }
  }
}

/*
 * Work is cut into tiles of C (mt × nt), handed out from an atomic counter in column-panel-major
 * order. A thread packs the full-K panel of B for a column panel once and keeps it while its
 * tiles stay in that panel; each tile packs its own A block per K slice.
 */
typedef struct {
  const gemm_args *g;
  int mt, nt, mtiles, ntiles, kstep;
  _Atomic int next; /* next tile: panel · mtiles + row block */
} gemm_job;

/* C (mc, nc) (+)= A block · B panel slice, both packed; edge tiles through a small buffer */
static void macro_kernel(const kernels_t *kt, const float *ap, const float *bp, int mc, int nc, int kc,
                         float *c, long ldc, int acc) {
  const int MR = kt->mr, NR = kt->nr;
  float tmp[MR_MAX * NR_MAX] __attribute__((aligned(64)));
  for (int jr = 0; jr < nc; jr += NR) {
    const int nr = nc - jr < NR ? nc - jr : NR;
    const float *bs = bp + (long)jr * kc;
    for (int ir = 0; ir < mc; ir += MR) {
      const int mr = mc - ir < MR ? mc - ir : MR;
      const float *as = ap + (long)ir * kc;
      float *cp = c + (long)ir * ldc + jr;
      if (mr == MR && nr == NR) {
        kt->gemm_tile(kc, as, bs, cp, ldc, acc);
      } else {
        kt->gemm_tile(kc, as, bs, tmp, NR, 0);
        for (int i = 0; i < mr; i++)
          for (int j = 0; j < nr; j++)
            cp[(long)i * ldc + j] = acc ? cp[(long)i * ldc + j] + tmp[i * NR + j] : tmp[i * NR + j];
      }
    }
  }
}

static void run_tiles(gemm_job *job) {
  const kernels_t *kt = K_ACTIVE;
  const gemm_args *g = job->g;
  const int NR = kt->nr, MR = kt->mr, K = g->K;
  const int ntPad = (job->nt + NR - 1) / NR * NR, mtPad = (job->mt + MR - 1) / MR * MR;
  float *bp = scratch_get(0, sizeof(float) * (size_t)K * ntPad);          /* (K slices, nt/NR, kc, NR) */
  float *ap = scratch_get(1, sizeof(float) * (size_t)job->kstep * mtPad); /* (mt/MR, kc, MR) */
  if (!bp || !ap) return; /* out of memory: reported by addon.c */
  const int total = job->mtiles * job->ntiles;
  int panel = -1;
  for (;;) {
    const int t = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
    if (t >= total) break;
    const int jt = t / job->mtiles, it = t % job->mtiles;
    const int n0 = jt * job->nt, nc = g->N - n0 < job->nt ? g->N - n0 : job->nt;
    const int m0 = it * job->mt, mc = g->M - m0 < job->mt ? g->M - m0 : job->mt;
    const int ncPad = (nc + NR - 1) / NR * NR;
    if (jt != panel) {
      for (int pc = 0; pc < K; pc += job->kstep)
        pack_b(g, pc, K - pc < job->kstep ? K - pc : job->kstep, n0, nc, NR, bp + (long)pc * ncPad);
      panel = jt;
    }
    for (int pc = 0; pc < K; pc += job->kstep) {
      const int kc = K - pc < job->kstep ? K - pc : job->kstep;
      pack_a(g, m0, mc, pc, kc, MR, ap);
      macro_kernel(kt, ap, bp + (long)pc * ncPad, mc, nc, kc, g->c + (long)m0 * g->ldc + n0, g->ldc,
                   g->accumulate || pc > 0);
    }
  }
}

static void gemm_worker(void *arg, int ith, int nth) {
  (void)ith; (void)nth;
  run_tiles(arg);
}

/* zero-size cases; returns 1 when there is nothing left to do */
static int gemm_trivial(const gemm_args *g) {
  if (g->M <= 0 || g->N <= 0) return 1;
  if (g->K > 0) return 0;
  if (!g->accumulate)
    for (int m = 0; m < g->M; m++)
      for (int n = 0; n < g->N; n++) g->c[(long)m * g->ldc + n] = 0.0f;
  return 1;
}

static void plan(gemm_job *job, const gemm_args *g, int nth) {
  const int MR = K_ACTIVE->mr, NR = K_ACTIVE->nr;
  const int kslices = (g->K + KC - 1) / KC;
  job->g = g;
  job->kstep = (g->K + kslices - 1) / kslices; /* equal K slices: no short last slice */
  int nt = (int)(B_PANEL_BYTES / (4 * (long)g->K)) / NR * NR;
  nt = nt < NR ? NR : nt > NC ? NC : nt;
  job->nt = nt;
  job->ntiles = (g->N + nt - 1) / nt;
  int mt = MC;
  const int want = 4 * nth; /* enough tiles to balance threads that run at different speeds */
  if (nth > 1 && job->ntiles * ((g->M + mt - 1) / mt) < want) {
    const int mblocks = (want + job->ntiles - 1) / job->ntiles;
    mt = ((g->M + mblocks - 1) / mblocks + MR - 1) / MR * MR;
    if (mt < 4 * MR) mt = 4 * MR;
  }
  job->mt = mt;
  job->mtiles = (g->M + mt - 1) / mt;
  atomic_store(&job->next, 0);
}

void gemm_st(const gemm_args *g) {
  if (gemm_trivial(g)) return;
  gemm_job job;
  plan(&job, g, 1);
  run_tiles(&job);
}

void gemm_mt(const gemm_args *g, int nth) {
  if (gemm_trivial(g)) return;
  const double flops = 2.0 * g->M * (double)g->N * g->K;
  const int want = (int)(flops / MIN_FLOPS_PER_THREAD);
  if (want < nth) nth = want < 1 ? 1 : want;
  gemm_job job;
  plan(&job, g, nth);
  if (nth > job.mtiles * job.ntiles) nth = job.mtiles * job.ntiles;
  if (nth <= 1) run_tiles(&job);
  else pool_run(gemm_worker, &job, nth);
}

void gemm_layout(float *c, const float *a, const float *b, int M, int N, int K, int layout, int accumulate) {
  gemm_args g = { 0 };
  g.a = a; g.b = b; g.c = c; g.ldc = N;
  g.M = M; g.N = N; g.K = K; g.accumulate = accumulate;
  if (layout == GEMM_TN) { g.am = 1; g.ak = M; } else { g.am = K; g.ak = 1; }
  if (layout == GEMM_NT) { g.bk = 1; g.bn = K; } else { g.bk = N; g.bn = 1; }
  gemm_mt(&g, pool_threads());
}
