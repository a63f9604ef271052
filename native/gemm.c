/*
 * The blocked f32 GEMM driver: C (M, N) (+)= op(A) (M, K) · op(B) (K, N), any element strides.
 *
 * Goto/BLIS structure: K is cut into slices of at most KC (equal sizes, fixed by K alone), op(B)
 * is packed per slice into NR-column slivers, op(A) into MR-row slivers in blocks of MC rows, and
 * the ISA's micro-kernel (kernels_t.gemm_tile) computes one MR×NR tile of C over one slice. Edge
 * tiles go through a small buffer, so any M, N, K works. op(B) may also be 16-bit floats (F16 /
 * BF16 weights, gemm_args.b_raw), converted to f32 as it is packed; the ISA's packing kernel
 * (kernels_t.pack_nt) does whole slivers of the NT layout by 8×8 transposes. This file knows no
 * ISA: it only calls K_ACTIVE.
 *
 * Threads (gemm_mt) split C into chunks, either row ranges (all columns) or column ranges (all
 * rows), whichever keeps the packing cheap for the shape, and take chunks from a shared counter,
 * so a thread slowed by a busy core just takes fewer. The operand every chunk reads in full (op(B)
 * for row chunks, op(A) for column chunks) is packed once, by all threads together, before the
 * chunks start, when it is small enough to sit in the last-level cache; the other operand is
 * packed by each chunk as it goes. Every element of C is computed by one thread, summing the K
 * slices in order, so results do not depend on the thread count or on which thread ran what.
 *
 * Legend: M, N = rows, columns of C; K = the summed dimension; MR×NR = micro-tile.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "native.h"
#if defined(__SSE2__)
#include <emmintrin.h> /* baseline x86-64: the 4×4 transposes of the packing routines */
#endif

#define KC 256            /* K slice: an MR×KC A sliver plus a KC×NR B sliver fit a 32 KiB L1 (4×24: 25 KiB) */
#define KC_ONE 320        /* K up to this stays one slice (no C reload for K = dim 288; still fits L1) */
#define MC 144            /* rows of an A block (in L2); a multiple of every MR (4, 6) */
#define MR_MAX 16
#define NR_MAX 64
#define SHARED_MAX_FLOATS (3L << 20) /* pack the shared operand up front when it is ≤ 12 MiB */
#define MIN_FLOPS_PER_THREAD 400000.0 /* below ~4 µs of work a thread costs more than it saves */
#define MIN_CHUNK_FLOPS 4.0e6         /* a chunk below ~50 µs of work is not worth its packing */
#define MAX_PANEL_COLS 256            /* columns of a chunk's packed B panel when A is shared */
#define PACK_GROUP 16                 /* slivers packed through all slices at a time (shared operand) */

/* ---- packing */

/* op(A)[m0.., k0..] (mc, kc) → MR-row slivers: dst[sliver][k][i], zero-padded to MR rows */
static void pack_a(const gemm_args *g, int m0, int mc, int k0, int kc, int MR, float *dst) {
  const float *src = g->a + (long)m0 * g->am + (long)k0 * g->ak;
  const long sliver = (long)kc * MR;
  int done = 0; /* rows packed by a fast path */
  if (MR == 6 && g->am == 1) { /* columns of op(A) contiguous (TN): six values per k */
    done = mc / 6 * 6;
    for (int i0 = 0; i0 < done; i0 += 6) {
      const float *s = src + i0;
      float *d = dst + (i0 / 6) * sliver;
      for (int k = 0; k < kc; k++, d += 6, s += g->ak) {
        d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; d[3] = s[3]; d[4] = s[4]; d[5] = s[5];
      }
    }
  } else if (MR == 6 && g->ak == 1) { /* six rows read side by side (NT, NN) */
    done = mc / 6 * 6;
    for (int i0 = 0; i0 < done; i0 += 6) {
      const float *r0 = src + (long)i0 * g->am, *r1 = r0 + g->am, *r2 = r1 + g->am, *r3 = r2 + g->am, *r4 = r3 + g->am, *r5 = r4 + g->am;
      float *d = dst + (i0 / 6) * sliver;
      int k = 0;
#if defined(__SSE2__)
      for (; k + 4 <= kc; k += 4, d += 24) { /* rows 0-3 by a 4×4 transpose, rows 4-5 interleaved */
        __m128 a0 = _mm_loadu_ps(r0 + k), a1 = _mm_loadu_ps(r1 + k), a2 = _mm_loadu_ps(r2 + k), a3 = _mm_loadu_ps(r3 + k);
        const __m128 a4 = _mm_loadu_ps(r4 + k), a5 = _mm_loadu_ps(r5 + k);
        _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
        const __m128 lo = _mm_unpacklo_ps(a4, a5), hi = _mm_unpackhi_ps(a4, a5);
        _mm_storeu_ps(d, a0); _mm_storel_pi((__m64 *)(d + 4), lo);
        _mm_storeu_ps(d + 6, a1); _mm_storeh_pi((__m64 *)(d + 10), lo);
        _mm_storeu_ps(d + 12, a2); _mm_storel_pi((__m64 *)(d + 16), hi);
        _mm_storeu_ps(d + 18, a3); _mm_storeh_pi((__m64 *)(d + 22), hi);
      }
#endif
      for (; k < kc; k++, d += 6) {
        d[0] = r0[k]; d[1] = r1[k]; d[2] = r2[k]; d[3] = r3[k]; d[4] = r4[k]; d[5] = r5[k];
      }
    }
  }
  if (MR == 4 && g->am == 1) { /* TN: four contiguous values per k */
    done = mc / 4 * 4;
    for (int i0 = 0; i0 < done; i0 += 4) {
      const float *s = src + i0;
      float *d = dst + (i0 / 4) * sliver;
      for (int k = 0; k < kc; k++, d += 4, s += g->ak) memcpy(d, s, sizeof(float) * 4);
    }
  } else if (MR == 4 && g->ak == 1) { /* NT, NN: four rows by 4×4 transposes */
    done = mc / 4 * 4;
    for (int i0 = 0; i0 < done; i0 += 4) {
      const float *r0 = src + (long)i0 * g->am, *r1 = r0 + g->am, *r2 = r1 + g->am, *r3 = r2 + g->am;
      float *d = dst + (i0 / 4) * sliver;
      int k = 0;
#if defined(__SSE2__)
      for (; k + 4 <= kc; k += 4, d += 16) {
        __m128 a0 = _mm_loadu_ps(r0 + k), a1 = _mm_loadu_ps(r1 + k), a2 = _mm_loadu_ps(r2 + k), a3 = _mm_loadu_ps(r3 + k);
        _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
        _mm_storeu_ps(d, a0); _mm_storeu_ps(d + 4, a1); _mm_storeu_ps(d + 8, a2); _mm_storeu_ps(d + 12, a3);
      }
#endif
      for (; k < kc; k++, d += 4) { d[0] = r0[k]; d[1] = r1[k]; d[2] = r2[k]; d[3] = r3[k]; }
    }
  }
  for (int i0 = done; i0 < mc; i0 += MR) { /* any layout, and the last partial sliver */
    const int rows = mc - i0 < MR ? mc - i0 : MR;
    float *d = dst + (i0 / MR) * sliver;
    for (int i = 0; i < rows; i++) {
      const float *r = src + (long)(i0 + i) * g->am;
      for (int k = 0; k < kc; k++) d[(long)k * MR + i] = r[(long)k * g->ak];
    }
    for (int i = rows; i < MR; i++)
      for (int k = 0; k < kc; k++) d[(long)k * MR + i] = 0.0f;
  }
}

/* op(B)[k0.., n0..] (kc, nc) → NR-column slivers: dst[sliver][k][j], zero-padded to NR columns */
static void pack_b_generic(const gemm_args *g, int k0, int kc, int n0, int nc, int NR, float *dst);

static void pack_b(const gemm_args *g, int k0, int kc, int n0, int nc, int NR, float *dst) {
  const kernels_t *kt = K_ACTIVE;
  /* NT (each column of op(B) contiguous in k), f32 or 16-bit: whole slivers through the ISA's
   * packing kernel, the last partial one through the generic code */
  if (!kt->pack_nt || NR % 8 != 0 || !(g->b_raw || (g->bk == 1 && g->bn != 1))) {
    pack_b_generic(g, k0, kc, n0, nc, NR, dst);
    return;
  }
  const int dt = g->b_raw ? g->b_dt : DT_F32, es = dt == DT_F32 ? 4 : 2;
  const uint8_t *base = g->b_raw ? g->b_raw : (const uint8_t *)g->b;
  const long rs = (long)es * g->bn;
  for (int j0 = 0; j0 < nc; j0 += NR, dst += (long)kc * NR) {
    const uint8_t *src = base + (long)es * ((long)(n0 + j0) * g->bn + k0);
    if (nc - j0 < NR) {
      pack_b_generic(g, k0, kc, n0 + j0, nc - j0, NR, dst);
      break;
    }
    /* NR short strided reads are more streams than the hardware prefetchers follow: request the
     * next sliver's rows into L2 while this one is transposed (not L1: rows a power of two apart
     * share one L1 set, so NR of them would evict each other) */
    if (j0 + 2 * NR <= nc)
      for (int j = 0; j < NR; j++)
        for (int k = 0; k < kc * es; k += 64) __builtin_prefetch(src + (long)(NR + j) * rs + k, 0, 2);
    kt->pack_nt(dt, src, rs, kc, NR, dst);
  }
}

static void pack_b_generic(const gemm_args *g, int k0, int kc, int n0, int nc, int NR, float *dst) {
  if (g->b_raw) { /* 16-bit floats: NR columns at a time converted to f32 (L1), then packed as f32 */
    float *tmp = scratch_get(2, sizeof(float) * (size_t)NR * kc); /* (NR, kc) */
    if (!tmp) return;
    gemm_args v = *g;
    v.b_raw = NULL; v.b = tmp; v.bk = 1; v.bn = kc;
    for (int j0 = 0; j0 < nc; j0 += NR, dst += (long)kc * NR) {
      const int cols = nc - j0 < NR ? nc - j0 : NR;
      for (int j = 0; j < cols; j++)
        dequant_row(g->b_dt, g->b_raw + 2 * ((long)(n0 + j0 + j) * g->bn + k0), kc, tmp + (long)j * kc);
      pack_b_generic(&v, 0, kc, 0, cols, NR, dst);
    }
    return;
  }
  for (int j0 = 0; j0 < nc; j0 += NR, dst += (long)kc * NR) {
    const int cols = nc - j0 < NR ? nc - j0 : NR;
    const float *src = g->b + (long)k0 * g->bk + (long)(n0 + j0) * g->bn;
    if (g->bn == 1) { /* rows of op(B) contiguous in n (NN, TN) */
      if (cols == 16 && NR == 16) { /* a constant size: inlined */
        for (int k = 0; k < kc; k++) memcpy(dst + (long)k * 16, src + (long)k * g->bk, sizeof(float) * 16);
      } else if (cols == NR) {
        for (int k = 0; k < kc; k++) memcpy(dst + (long)k * NR, src + (long)k * g->bk, sizeof(float) * NR);
      } else {
        for (int k = 0; k < kc; k++) {
          const float *s = src + (long)k * g->bk;
          for (int j = 0; j < cols; j++) dst[(long)k * NR + j] = s[j];
          for (int j = cols; j < NR; j++) dst[(long)k * NR + j] = 0.0f;
        }
      }
    } else if (cols == NR && NR % 4 == 0 && g->bk == 1) { /* NT: NR rows of B, 4×4 transposes */
      int k = 0;
#if defined(__SSE2__)
      for (; k + 4 <= kc; k += 4) {
        for (int j = 0; j < NR; j += 4) {
          const float *s = src + (long)j * g->bn + k;
          __m128 a0 = _mm_loadu_ps(s), a1 = _mm_loadu_ps(s + g->bn), a2 = _mm_loadu_ps(s + 2 * g->bn), a3 = _mm_loadu_ps(s + 3 * g->bn);
          _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
          float *d = dst + (long)k * NR + j;
          _mm_storeu_ps(d, a0); _mm_storeu_ps(d + NR, a1); _mm_storeu_ps(d + 2 * NR, a2); _mm_storeu_ps(d + 3 * NR, a3);
        }
      }
#endif
      for (; k < kc; k++)
        for (int j = 0; j < NR; j++) dst[(long)k * NR + j] = src[(long)j * g->bn + k];
    } else { /* columns of op(B) contiguous in k (NT): the sliver (kc × NR) stays in L1 */
      for (int j = 0; j < cols; j++) {
        const float *s = src + (long)j * g->bn;
        for (int k = 0; k < kc; k++) dst[(long)k * NR + j] = s[(long)k * g->bk];
      }
      for (int j = cols; j < NR; j++)
        for (int k = 0; k < kc; k++) dst[(long)k * NR + j] = 0.0f;
    }
  }
}

/* ---- the plan of one call */

typedef struct {
  const gemm_args *g;
  int MR, NR;
  int kslices, kstep;   /* K = kslices slices of kstep (the last one may be shorter) */
  int byRows;           /* chunks are row ranges (1) or column ranges (0) */
  int chunk, nchunks;   /* rows (or columns) per chunk, a multiple of MR (or NR) */
  int Mpad, Npad;       /* M, N rounded up to MR, NR */
  float *shared;        /* the packed shared operand (all slices), or NULL: each chunk packs both */
  _Atomic int next;     /* next chunk */
} gemm_job;

/* first k and length of slice p */
static inline int slice_k0(const gemm_job *j, int p) { return p * j->kstep; }
static inline int slice_kc(const gemm_job *j, int p) {
  const int k0 = p * j->kstep;
  return j->g->K - k0 < j->kstep ? j->g->K - k0 : j->kstep;
}

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
      /* prefetch the next tile's rows of C (a cold C, like logits, would otherwise stall its stores) */
      const float *nx = ir + MR < mc ? cp + (long)MR * ldc : c + jr + NR;
      for (int i = 0; i < MR; i++) __builtin_prefetch(nx + (long)i * ldc, 1, 3);
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

/*
 * C[m0..m1, n0..n1] over all K. With op(B) shared (packed for every slice): per block of MC rows,
 * every slice in turn, so the C block stays in cache while it sums. Otherwise per slice, the B
 * panel is packed here once, then every A block of the chunk goes through the macro kernel.
 */
static void run_chunk(gemm_job *j, int m0, int m1, int n0, int n1) {
  const kernels_t *kt = K_ACTIVE;
  const gemm_args *g = j->g;
  const int MR = j->MR, NR = j->NR;
  const int nc = n1 - n0, ncPad = (nc + NR - 1) / NR * NR;
  const int sharedB = j->shared && j->byRows, sharedA = j->shared && !j->byRows;
  float *bp = NULL, *ap = NULL;
  if (!sharedB && !(bp = scratch_get(0, sizeof(float) * (size_t)j->kstep * ncPad))) return; /* (nc/NR, kc, NR) */
  if (!sharedA && !(ap = scratch_get(1, sizeof(float) * (size_t)j->kstep * MC))) return;     /* (MC/MR, kc, MR) */
  if (sharedB) {
    for (int ic = m0; ic < m1; ic += MC) {
      const int mc = m1 - ic < MC ? m1 - ic : MC;
      for (int p = 0; p < j->kslices; p++) {
        const int k0 = slice_k0(j, p), kc = slice_kc(j, p);
        pack_a(g, ic, mc, k0, kc, MR, ap);
        macro_kernel(kt, ap, j->shared + (long)k0 * j->Npad + (long)(n0 / NR) * kc * NR, mc, nc, kc,
                     g->c + (long)ic * g->ldc + n0, g->ldc, g->accumulate || p > 0);
      }
    }
    return;
  }
  for (int p = 0; p < j->kslices; p++) {
    const int k0 = slice_k0(j, p), kc = slice_kc(j, p);
    pack_b(g, k0, kc, n0, nc, NR, bp);
    for (int ic = m0; ic < m1; ic += MC) {
      const int mc = m1 - ic < MC ? m1 - ic : MC;
      const float *a;
      if (sharedA) {
        a = j->shared + (long)k0 * j->Mpad + (long)(ic / MR) * kc * MR;
      } else {
        pack_a(g, ic, mc, k0, kc, MR, ap);
        a = ap;
      }
      macro_kernel(kt, a, bp, mc, nc, kc, g->c + (long)ic * g->ldc + n0, g->ldc, g->accumulate || p > 0);
    }
  }
}

static void chunk_worker(void *arg, int ith, int nth) {
  gemm_job *j = arg;
  const gemm_args *g = j->g;
  (void)ith; (void)nth;
  for (;;) {
    const int c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (c >= j->nchunks) break;
    const int lo = c * j->chunk;
    if (j->byRows) run_chunk(j, lo, g->M - lo < j->chunk ? g->M : lo + j->chunk, 0, g->N);
    else run_chunk(j, 0, g->M, lo, g->N - lo < j->chunk ? g->N : lo + j->chunk);
  }
}

/* packs the shared operand, slivers split evenly over the threads (a copy: any split is exact) */
static void pack_shared_worker(void *arg, int ith, int nth) {
  gemm_job *j = arg;
  const gemm_args *g = j->g;
  const int unit = j->byRows ? j->NR : j->MR;
  const int total = j->byRows ? g->N : g->M;
  const int slivers = (total + unit - 1) / unit;
  const int s0 = (int)((long)slivers * ith / nth), s1 = (int)((long)slivers * (ith + 1) / nth);
  if (s1 <= s0) return;
  /* PACK_GROUP slivers through every slice before the next ones: the source rows of a group stay
   * few enough pages for the TLB (all of them per slice would miss it on every row) */
  for (int b0 = s0; b0 < s1; b0 += PACK_GROUP) {
    const int b1 = b0 + PACK_GROUP < s1 ? b0 + PACK_GROUP : s1;
    const int lo = b0 * unit, len = (b1 * unit < total ? b1 * unit : total) - lo;
    for (int p = 0; p < j->kslices; p++) {
      const int k0 = slice_k0(j, p), kc = slice_kc(j, p);
      if (j->byRows) pack_b(g, k0, kc, lo, len, unit, j->shared + (long)k0 * j->Npad + (long)b0 * kc * unit);
      else pack_a(g, lo, len, k0, kc, unit, j->shared + (long)k0 * j->Mpad + (long)b0 * kc * unit);
    }
  }
}

/* the shared buffer: one per process, used only by the thread that calls gemm_mt */
static float *g_shared;
static size_t g_shared_n;

static float *shared_buffer(size_t n) {
  if (g_shared_n >= n) return g_shared;
  free(g_shared);
  g_shared_n = 0;
  g_shared = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
  if (g_shared) g_shared_n = n;
  return g_shared;
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

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

/*
 * Chooses K slices, the chunk direction and size. Row chunks (sharing op(B)) unless C is much
 * wider than tall; chunk count ≈ 8 per thread (balance on a shared machine) but never chunks
 * below MIN_CHUNK_FLOPS, and large when the unshared operand must be repacked per chunk.
 */
static void plan(gemm_job *j, const gemm_args *g, int nth, int useShared) {
  const int MR = K_ACTIVE->mr, NR = K_ACTIVE->nr;
  j->g = g;
  j->MR = MR;
  j->NR = NR;
  j->kslices = g->K <= KC_ONE ? 1 : (g->K + KC - 1) / KC;
  j->kstep = (g->K + j->kslices - 1) / j->kslices;
  j->kslices = (g->K + j->kstep - 1) / j->kstep;
  j->Mpad = round_up(g->M, MR);
  j->Npad = round_up(g->N, NR);
  j->byRows = g->N <= 2 * g->M;
  const long sharedFloats = j->byRows ? (long)g->K * j->Npad : (long)g->K * j->Mpad;
  const int unit = j->byRows ? MR : NR;
  const int total = j->byRows ? g->M : g->N;
  const int other = j->byRows ? g->N : g->M;
  const int want = nth > 1 ? 8 * nth : 1; /* small last chunks: little idle time at the end */
  const double flopsPerUnit = 2.0 * unit * other * (double)g->K;
  int chunk = round_up((total + want - 1) / want, unit);
  const int minUnits = (int)(MIN_CHUNK_FLOPS / flopsPerUnit) + 1;
  if (chunk < minUnits * unit) chunk = minUnits * unit;
  j->shared = useShared && sharedFloats <= SHARED_MAX_FLOATS ? shared_buffer((size_t)sharedFloats) : NULL;
  if (!j->shared) {
    /* each chunk repacks the big operand: keep chunks ≥ 512 rows/columns of the other one */
    if (!j->byRows && chunk < 2 * MC) chunk = round_up(2 * MC, unit);
    if (chunk < 512) chunk = round_up(512, unit);
  }
  /* column chunks pack their B panel per slice: at most MAX_PANEL_COLS columns, so the panel
   * stays in L2 and its source rows in the TLB (one thread would otherwise take all N at once) */
  if (!j->byRows && j->shared && chunk > MAX_PANEL_COLS) chunk = round_up(MAX_PANEL_COLS, unit);
  if (chunk > round_up(total, unit)) chunk = round_up(total, unit);
  j->chunk = chunk;
  j->nchunks = (total + chunk - 1) / chunk;
  atomic_store(&j->next, 0);
}

static void gemm_run(const gemm_args *g, int nth, int useShared) {
  gemm_job job;
  plan(&job, g, nth, useShared);
  if (nth > job.nchunks) nth = job.nchunks;
  if (job.shared) {
    if (nth <= 1) pack_shared_worker(&job, 0, 1);
    else pool_run(pack_shared_worker, &job, nth);
  }
  if (nth <= 1) chunk_worker(&job, 0, 1);
  else pool_run(chunk_worker, &job, nth);
}

void gemm_st(const gemm_args *g) {
  if (gemm_trivial(g)) return;
  gemm_run(g, 1, 0); /* may run inside a pool worker: no shared buffer, no pool */
}

void gemm_mt(const gemm_args *g, int nth) {
  if (gemm_trivial(g)) return;
  const double flops = 2.0 * g->M * (double)g->N * g->K;
  const int want = (int)(flops / MIN_FLOPS_PER_THREAD);
  if (want < nth) nth = want < 1 ? 1 : want;
  gemm_run(g, nth, 1);
}

void gemm_layout(float *c, const float *a, const float *b, int M, int N, int K, int layout, int accumulate) {
  gemm_args g = { 0 };
  g.a = a; g.b = b; g.c = c; g.ldc = N;
  g.M = M; g.N = N; g.K = K; g.accumulate = accumulate;
  if (layout == GEMM_TN) { g.am = 1; g.ak = M; } else { g.am = K; g.ak = 1; }
  if (layout == GEMM_NT) { g.bk = 1; g.bn = K; } else { g.bk = N; g.bn = 1; }
  gemm_mt(&g, pool_threads());
}
