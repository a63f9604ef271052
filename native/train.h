/*
 * The training kernels of the native backend (what src/backend/types.ts lists under "training
 * kernels"): fused cross-entropy, AdamW, sum of squares, RMSNorm backward, SwiGLU forward and
 * backward, RoPE rotation, and batched causal attention (plain or packed) forward and backward.
 * addon_train.c is their N-API glue; src/backend/ref.ts holds the reference each one is tested
 * against.
 *
 * Conventions: backward kernels ACCUMULATE (+=) into gradients and skip a NULL gradient; every
 * reduction has a fixed order that depends on neither the thread count nor scheduling, so a
 * training run is bit-identical from run to run. Inner loops go through a small per-ISA table
 * (train_rows_t: scalar in train_ops.c, AVX2 in train_avx2.c). No N-API types here.
 *
 * Legend: R = rows, V = vocabulary, T = rows (tokens), C = row width, n = elements,
 * B = sequences, NH / NKV = query / key-value heads, HS = head size.
 */
#ifndef LLAMA2_NATIVE_TRAIN_H
#define LLAMA2_NATIVE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

/* the AdamW update's constants, in this order (see src/train/optim.ts):
 * decay, beta1, c1 = (1 − β1)·scale, beta2, c2 = (1 − β2)·scale², stepSize, invSqrtBc2, eps */
enum { HP_DECAY, HP_B1, HP_C1, HP_B2, HP_C2, HP_STEP, HP_INVBC2, HP_EPS, HP_COUNT };

/* row-level loops one ISA level provides */
typedef struct {
  float (*max)(int n, const float *x);
  /* x ← exp(x − shift); returns Σ of the new x (in double) */
  double (*exp_sum)(int n, float *x, float shift);
  /* x ← x · s */
  void (*scale)(int n, float *x, float s);
  /* h = silu(a) · b */
  void (*swiglu_fwd)(int n, float *h, const float *a, const float *b);
  /* da += dh·b·σ(a)·(1 + a·(1 − σ(a))), db += dh·silu(a); either may be NULL */
  void (*swiglu_bwd)(int n, float *da, float *db, const float *dh, const float *a, const float *b);
  /* AdamW over n elements in float64 arithmetic (bit-identical to the reference) */
  void (*adamw)(long n, float *w, const float *g, float *m, float *v, const double *hp);
  /* Σ x² in double, in a fixed order */
  double (*sumsq)(long n, const float *x);
  /* Σ a·b (float, any fixed order) */
  float (*dot)(int n, const float *a, const float *b);
  /* softmax backward of one row: ds ← p·(ds − d)·scale (ds holds dP on entry) */
  void (*dsoftmax)(int n, float *ds, const float *p, float d, float scale);
} train_rows_t;

void train_rows_scalar(train_rows_t *t);
#if defined(__x86_64__) || defined(_M_X64)
void train_rows_avx2(train_rows_t *t); /* train_avx2.c, needs AVX2 + FMA */
#endif
/* the table for the ISA level in use (dispatch.c's choice) */
const train_rows_t *train_rows(void);

/* per-thread scratch of the training kernels (slots 0..3, separate from pool.c's), 64-byte
 * aligned, grown on demand; NULL when out of memory (the kernel raises train_oom) */
void *train_scratch(int slot, size_t bytes);
void train_set_oom(void);
int train_take_oom(void); /* returns and clears the flag */

/* ---- train_ops.c */
void xent_forward(float *x, const int32_t *targets, float *nll, double *inv, int R, int V);
void xent_backward(float *x, const double *inv, const int32_t *targets, const double *coef, int R, int V);
void adamw_update(float *w, const float *g, float *m, float *v, long n, const double *hp);
double sum_squares(const float *x, long n);
void rmsnorm_backward(float *dx, float *dg, const float *dy, const float *x, const float *g, int T, int C, double eps);
void swiglu_forward(float *h, const float *a, const float *b, long n);
void swiglu_backward(float *da, float *db, const float *dh, const float *a, const float *b, long n);
/* y (T, nHeads·HS) (+)= x rotated by +angle (or −angle when inverse); y may alias x unless
 * accumulating. 0 ok, −1 out of memory */
int rope_rotate(float *y, const float *x, int T, int nHeads, int hs, const int32_t *pos, double theta,
                int inverse, int accumulate);

/* ---- train_attn.c: causal attention over B rows of T positions, optionally packed: starts (B·T)
 * gives the index within its row of the first position of each position's segment, and query t
 * sees keys starts[b·T + t] ≤ j ≤ t (block-diagonal causal attention); NULL = plain causal.
 * starts must be valid (starts[b·T] = 0, starts[b·T + t] ∈ {starts[b·T + t − 1], t}); the
 * caller checks it (addon_train.c). */
typedef struct { int B, T, NH, NKV, HS; const int32_t *starts; } attn_shape;
/* out (B·T, NH·HS); lse (B, NH, T) = log Σ exp of each query row's scaled scores over its keys */
void attn_train_forward(float *out, float *lse, const float *q, const float *k, const float *v, attn_shape s);
/* dq (B·T, NH·HS), dk, dv (B·T, NKV·HS) += gradients for dout; any may be NULL */
void attn_train_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                         const float *v, const float *out, const float *lse, attn_shape s);

#endif
