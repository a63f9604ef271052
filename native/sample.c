/*
 * One draw of the token sampler (src/generate/sampler.ts, Sampler.draw) on a logits row, for the
 * native backend: softmax(w / T), then top-k, Meta's nucleus top-p and min-p, then one draw with a
 * uniform r ∈ [0, 1) walking the kept ids in ascending order. The TypeScript sampler is the
 * reference; this computes the same selection with the ISA's vector exp (~20 µs instead of
 * ~1.5 ms for a 32000-token vocabulary), so the two can differ only where float rounding of a
 * probability decides a boundary.
 *
 * Order: a candidate's key is (bits(1.0f) − bits(p)) · 2^idbits + id, so ascending keys are
 * p descending with ties by id (the order Meta's sampler sorts in). Selections are O(n): one pass
 * sums mass and count per bucket of the key's top bits (buckets in key order, ~0.5% of p wide),
 * a walk over the buckets finds the one holding the boundary, and a quickselect runs inside that
 * bucket only (a quickselect over all 32000 keys of a flat distribution mispredicts a branch per
 * key per pass, ~0.5 ms).
 * The kept ids' probability mass is reported (kept_mass, when not NULL), so the caller can give
 * the drawn token's probability under the renormalised distribution: w[id] / mass.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "native.h"

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* the order key of token i with probability p ≤ 1: p descending, ties by id ascending */
static inline uint64_t key_of(float p, int i, int id_bits) {
  return ((uint64_t)(f32_bits(1.0f) - f32_bits(p)) << id_bits) | (uint64_t)i;
}

static inline void swap_k(uint64_t *a, float *p, long i, long j) {
  const uint64_t t = a[i]; a[i] = a[j]; a[j] = t;
  if (p) { const float q = p[i]; p[i] = p[j]; p[j] = q; }
}

static uint64_t pivot_of(const uint64_t *a, long lo, long hi) {
  const uint64_t x = a[lo], y = a[(lo + hi) >> 1], z = a[hi - 1];
  return x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
}

/* keys of a[lo..hi) below pivot to the front (with their p); returns the end; *mass = their Σp */
static long partition(uint64_t *a, float *p, long lo, long hi, uint64_t pivot, double *mass) {
  long i = lo;
  double m = 0.0;
  for (long j = lo; j < hi; j++)
    if (a[j] < pivot) {
      if (p) m += p[j];
      swap_k(a, p, i++, j);
    }
  if (mass) *mass = m;
  return i;
}

/* moves the pivot (in a[i..hi)) to position i */
static void place_pivot(uint64_t *a, float *p, long i, long hi, uint64_t pivot) {
  for (long j = i; j < hi; j++)
    if (a[j] == pivot) { swap_k(a, p, i, j); return; }
}

/* the k-th smallest (1-based) of the distinct keys a[0..n) */
static uint64_t kth_smallest(uint64_t *a, long n, long k) {
  long lo = 0, hi = n;
  for (;;) {
    const uint64_t pv = pivot_of(a, lo, hi);
    const long i = partition(a, NULL, lo, hi, pv, NULL), rank = i - lo + 1;
    if (k == rank) return pv;
    if (k < rank) hi = i;
    else { place_pivot(a, NULL, i, hi, pv); k -= rank; lo = i + 1; }
  }
}

/* Meta's nucleus rule: the key of the first token dropped (the mass before it exceeds top_p), or
 * UINT64_MAX when none is */
static uint64_t nucleus_bound(uint64_t *a, float *p, long n, double top_p) {
  long lo = 0, hi = n;
  double before = 0.0, mass;
  uint64_t bound = UINT64_MAX;
  while (lo < hi) {
    const uint64_t pv = pivot_of(a, lo, hi);
    const long i = partition(a, p, lo, hi, pv, &mass);
    if (before + mass > top_p) { bound = pv; hi = i; }
    else { place_pivot(a, p, i, hi, pv); before += mass + p[i]; lo = i + 1; }
  }
  return bound;
}

/* index of the first maximum of w (V ≥ 1): four independent running maxima, so the loop is not
 * one compare chain */
static int first_max(const float *w, int V) {
  float m[4] = { w[0], w[0], w[0], w[0] };
  int at[4] = { 0, 0, 0, 0 };
  int i = 0;
  for (; i + 4 <= V; i += 4)
    for (int j = 0; j < 4; j++)
      if (w[i + j] > m[j]) { m[j] = w[i + j]; at[j] = i + j; }
  int best = 0;
  for (int j = 1; j < 4; j++)
    if (m[j] > m[best] || (m[j] == m[best] && at[j] < at[best])) best = j;
  int arg = at[best];
  for (; i < V; i++) if (w[i] > w[arg]) arg = i;
  return arg;
}

/* buffers kept between calls (calls are serialised by the addon's lock) */
static uint64_t *g_keys;
static float *g_probs;
static int *g_ids;
static long g_cap;

static int ensure(long n) {
  if (n <= g_cap) return 1;
  free(g_keys); free(g_probs); free(g_ids);
  g_keys = malloc(sizeof(uint64_t) * (size_t)n);
  g_probs = malloc(sizeof(float) * (size_t)n);
  g_ids = malloc(sizeof(int) * (size_t)n);
  g_cap = g_keys && g_probs && g_ids ? n : 0;
  return g_cap > 0;
}

#define BUCKET_SHIFT 16 /* of bits(1.0f) − bits(p): 2^16 ulps of the f32 mantissa, 1/128 octave */
#define NBUCKETS (1 << (30 - BUCKET_SHIFT)) /* p ∈ (0, 1]: the difference stays below 2^30 */
static double g_mass[NBUCKETS];
static long g_count[NBUCKETS];

/* the bucket of a candidate key (key >> id_bits is bits(1.0f) − bits(p)) */
static inline int bucket_of(uint64_t key, int id_bits) { return (int)((key >> id_bits) >> BUCKET_SHIFT); }

/* moves the candidates of bucket b to the front of keys/probs; returns how many */
static long gather(uint64_t *keys, float *probs, long n, int b, int id_bits) {
  long m = 0;
  for (long c = 0; c < n; c++)
    if (bucket_of(keys[c], id_bits) == b) { swap_k(keys, probs, m++, c); }
  return m;
}

/* nucleus_bound over all n candidates, through the bucket holding the first dropped token */
static uint64_t nucleus_bound_bucketed(uint64_t *keys, float *probs, long n, double top_p, int id_bits) {
  int lo_b = NBUCKETS, hi_b = -1;
  for (long c = 0; c < n; c++) {
    const int b = bucket_of(keys[c], id_bits);
    g_mass[b] += probs[c];
    if (b < lo_b) lo_b = b;
    if (b > hi_b) hi_b = b;
  }
  double before = 0.0;
  int edge = -1;
  for (int b = lo_b; b <= hi_b; b++) {
    if (edge < 0 && before + g_mass[b] > top_p) edge = b;
    if (edge < 0) before += g_mass[b];
    g_mass[b] = 0.0; /* cleared for the next call */
  }
  if (edge < 0) return UINT64_MAX;
  const long m = gather(keys, probs, n, edge, id_bits);
  const uint64_t bound = nucleus_bound(keys, probs, m, top_p - before);
  if (bound != UINT64_MAX) return bound;
  /* every token of the edge bucket is kept: the first one after it is dropped (the mass before
   * it, that of the edge bucket and all earlier ones, exceeds top_p) */
  uint64_t next = UINT64_MAX;
  for (long c = m; c < n; c++)
    if (bucket_of(keys[c], id_bits) > edge && keys[c] < next) next = keys[c];
  return next;
}

/* the k-th smallest key (1 ≤ k ≤ n), through the bucket that holds it */
static uint64_t kth_smallest_bucketed(uint64_t *keys, float *probs, long n, long k, int id_bits) {
  int lo_b = NBUCKETS, hi_b = -1;
  for (long c = 0; c < n; c++) {
    const int b = bucket_of(keys[c], id_bits);
    g_count[b]++;
    if (b < lo_b) lo_b = b;
    if (b > hi_b) hi_b = b;
  }
  long below = 0;
  int edge = -1;
  for (int b = lo_b; b <= hi_b; b++) {
    if (edge < 0 && below + g_count[b] >= k) edge = b;
    if (edge < 0) below += g_count[b];
    g_count[b] = 0;
  }
  const long m = gather(keys, probs, n, edge, id_bits);
  return kth_smallest(keys, m, k - below);
}

int sample_draw(float *w, int V, float temperature, int top_k, float top_p, float min_p, double r, double *kept_mass) {
  if (V <= 0) return -1;
  const int arg = first_max(w, V); /* the most probable token */
  const float max = w[arg];
  /* p = softmax(w / T): exp((w − max) / T) by the ISA's exp, then normalised */
  const float inv_t = 1.0f / temperature;
  for (int i = 0; i < V; i++) w[i] *= inv_t;
  const float sum = K_ACTIVE->exp_shift_sum(V, w, max * inv_t);
  const float inv_sum = 1.0f / sum;
  for (int i = 0; i < V; i++) w[i] *= inv_sum;
  if (top_k == 0 && top_p >= 1.0f && min_p == 0.0f) { /* plain draw */
    double total = 0.0, acc = 0.0;
    for (int i = 0; i < V; i++) total += w[i];
    if (kept_mass) *kept_mass = total;
    const double x = r * total;
    for (int i = 0; i < V; i++) { acc += w[i]; if (x < acc) return i; }
    return V - 1;
  }
  /* candidates: only p ≥ (1 − top_p)/(V − 1) can be inside the nucleus; min-p cuts at min_p · p(max) */
  const float cutoff = top_p < 1.0f ? (1.0f - top_p) / (float)(V > 1 ? V - 1 : 1) : 0.0f;
  const float min_cut = cutoff > min_p * w[arg] ? cutoff : min_p * w[arg];
  int id_bits = 1;
  while ((1L << id_bits) < V) id_bits++;
  if (!ensure(V)) { /* no memory for the selection: the most probable token, as a point mass */
    if (kept_mass) *kept_mass = w[arg];
    return arg;
  }
  uint64_t *keys = g_keys;
  float *probs = g_probs;
  int *ids = g_ids;
  long n = 0;
  for (int i = 0; i < V; i++) { /* branch-free: a flat distribution makes the test a coin flip */
    keys[n] = key_of(w[i], i, id_bits);
    probs[n] = w[i];
    ids[n] = i;
    n += w[i] >= min_cut;
  }
  uint64_t bound = UINT64_MAX; /* kept: keys below bound */
  if (top_p < 1.0f) bound = nucleus_bound_bucketed(keys, probs, n, top_p, id_bits);
  if (top_k > 0 && top_k < n) {
    /* keys were reordered: rebuild them from the ids (the same values) */
    for (long c = 0; c < n; c++) { keys[c] = key_of(w[ids[c]], ids[c], id_bits); probs[c] = w[ids[c]]; }
    const uint64_t kb = kth_smallest_bucketed(keys, probs, n, top_k, id_bits) + 1;
    if (kb < bound) bound = kb;
  }
  /* the draw walks the kept ids in ascending order */
  double total = 0.0;
  for (long c = 0; c < n; c++) {
    const int i = ids[c];
    const int kept = key_of(w[i], i, id_bits) < bound;
    total += kept ? (double)w[i] : 0.0;
  }
  if (kept_mass) *kept_mass = total;
  const double x = r * total;
  double acc = 0.0;
  int last = -1;
  for (long c = 0; c < n; c++) {
    const int i = ids[c];
    const int kept = key_of(w[i], i, id_bits) < bound;
    acc += kept ? (double)w[i] : 0.0;
    last = kept ? i : last;
    if (kept && x < acc) return i;
  }
  return last >= 0 ? last : arg;
}
