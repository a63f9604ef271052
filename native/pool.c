/*
 * The persistent thread pool of the native backend, and per-thread scratch memory.
 *
 * Threads are created once (pool_set_threads) and reused by every kernel. A job of nth slots
 * (fn(arg, slot, nth) for slot 0..nth-1) is published by bumping a generation counter; the caller
 * runs slot 0, and every other slot is *claimed* by whoever gets to it first: a worker, or the
 * caller itself once its own slot is done. So a worker that the OS has not scheduled (the cores
 * are shared with other processes) never holds the caller up: it finds the job's slots taken and
 * touches nothing. The caller waits only for slots that were claimed and are still running.
 * Each slot runs exactly once, but not necessarily on a distinct thread: kernels must not wait for
 * each other inside a job (none does). Idle workers spin on the generation for up to SPIN_NS (so
 * back-to-back decode kernels start within ~0.1 µs), then sleep on a condition variable (an idle
 * process costs no CPU). This file is not thread-safe against two concurrent callers: addon.c
 * serialises all kernel calls with one mutex.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include "native.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

#define MAX_THREADS 256
#define SPIN_NS 100000 /* how long an idle worker spins before sleeping (100 µs) */

static pthread_t g_workers[MAX_THREADS];
static int g_threads = 1; /* including the caller */

static _Atomic uint64_t g_gen;   /* job generation */
/* the current job's slots: (generation mod 2^32) << 32 | nth << 16 | next unclaimed slot */
static _Atomic uint64_t g_claim;
static _Atomic int g_done;       /* slots ≥ 1 of the current job that have finished */
static _Atomic int g_sleepers;   /* workers blocked on g_cv */
static _Atomic int g_stop;
static pool_fn g_fn;
static void *g_arg;
static uint64_t g_start_gen; /* generation when the workers were created */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

/* ---- scratch: a few growable buffers per thread */
typedef struct { void *p; size_t n; } scratch_slot;
static _Thread_local scratch_slot t_scratch[4];
static _Atomic int g_oom; /* set when a scratch allocation failed; addon.c reports it */

int scratch_take_oom(void) { return atomic_exchange(&g_oom, 0); }

void *scratch_get(int slot, size_t bytes) {
  scratch_slot *s = &t_scratch[slot];
  if (s->n >= bytes) return s->p;
  free(s->p);
  size_t n = bytes + bytes / 4 + 4096;
  n = (n + 63) & ~(size_t)63;
  s->p = aligned_alloc(64, n);
  s->n = s->p ? n : 0;
  if (!s->p) atomic_store(&g_oom, 1);
  return s->p;
}

static void scratch_free_all(void) {
  for (int i = 0; i < 4; i++) { free(t_scratch[i].p); t_scratch[i].p = NULL; t_scratch[i].n = 0; }
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* waits until the generation differs from `seen`; returns it (or seen when stopping) */
static uint64_t wait_for_job(uint64_t seen) {
  const uint64_t t0 = now_ns();
  for (unsigned i = 1;; i++) {
    uint64_t g = atomic_load_explicit(&g_gen, memory_order_acquire);
    if (g != seen || atomic_load_explicit(&g_stop, memory_order_relaxed)) return g;
    cpu_relax();
    if ((i & 63) == 0 && now_ns() - t0 > SPIN_NS) break;
  }
  pthread_mutex_lock(&g_mu);
  atomic_fetch_add(&g_sleepers, 1); /* seq_cst: ordered against the dispatcher's g_gen bump */
  uint64_t g;
  while ((g = atomic_load(&g_gen)) == seen && !atomic_load(&g_stop)) pthread_cond_wait(&g_cv, &g_mu);
  atomic_fetch_sub(&g_sleepers, 1);
  pthread_mutex_unlock(&g_mu);
  return g;
}

/* claims the next slot of job `gen` (and its nth); −1 when that job is over or fully claimed */
static int claim(uint64_t gen, int *nth) {
  uint64_t c = atomic_load_explicit(&g_claim, memory_order_acquire);
  for (;;) {
    if ((c >> 32) != (gen & 0xffffffffu)) return -1;
    const int n = (int)((c >> 16) & 0xffff), next = (int)(c & 0xffff);
    if (next >= n) return -1;
    if (atomic_compare_exchange_weak_explicit(&g_claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire)) {
      *nth = n;
      return next;
    }
  }
}

/* runs every slot of job `gen` this thread can still claim */
static void run_claimed(uint64_t gen) {
  int nth, slot;
  while ((slot = claim(gen, &nth)) >= 0) {
    g_fn(g_arg, slot, nth); /* published before g_claim (release), valid until the slot is done */
    atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
  }
}

static void *worker_main(void *p) {
  (void)p;
  uint64_t seen = g_start_gen; /* not a fresh load: a job may already be waiting */
  for (;;) {
    seen = wait_for_job(seen);
    if (atomic_load(&g_stop)) break;
    run_claimed(seen);
  }
  scratch_free_all();
  return NULL;
}

static void stop_workers(void) {
  pthread_mutex_lock(&g_mu);
  atomic_store(&g_stop, 1);
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  for (int i = 1; i < g_threads; i++) pthread_join(g_workers[i], NULL);
  atomic_store(&g_stop, 0);
  g_threads = 1;
}

int pool_set_threads(int n) {
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  if (n == g_threads) return 0;
  stop_workers();
  g_start_gen = atomic_load(&g_gen);
  for (int i = 1; i < n; i++) {
    if (pthread_create(&g_workers[i], NULL, worker_main, (void *)(intptr_t)i) != 0) {
      g_threads = i; /* keep the ones that started */
      return -1;
    }
    g_threads = i + 1;
  }
  return 0;
}

int pool_threads(void) { return g_threads; }

void pool_run(pool_fn fn, void *arg, int nth) {
  if (nth > g_threads) nth = g_threads;
  if (nth <= 1) { fn(arg, 0, 1); return; }
  g_fn = fn;
  g_arg = arg;
  atomic_store_explicit(&g_done, 0, memory_order_relaxed);
  const uint64_t gen = atomic_load(&g_gen) + 1;
  atomic_store_explicit(&g_claim, ((gen & 0xffffffffu) << 32) | ((uint64_t)nth << 16) | 1u, memory_order_release);
  atomic_store(&g_gen, gen); /* seq_cst: publishes the job; ordered against g_sleepers below */
  if (atomic_load(&g_sleepers) > 0) {
    pthread_mutex_lock(&g_mu);
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
  }
  fn(arg, 0, nth);
  run_claimed(gen); /* the slots no worker has taken yet */
  for (unsigned i = 1; atomic_load_explicit(&g_done, memory_order_acquire) < nth - 1; i++) {
    cpu_relax();
    if ((i & 1023) == 0) sched_yield();
  }
}
