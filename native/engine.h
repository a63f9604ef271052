/*
 * The native inference engine's record (engine.c): a model's shape and borrowed weight pointers,
 * plus its activation buffers. Filled by addon.c from the JavaScript weight arrays; this header has
 * no N-API types and no code.
 */
#ifndef LLAMA2_NATIVE_ENGINE_H
#define LLAMA2_NATIVE_ENGINE_H

#include <stdint.h>

typedef struct { const uint8_t *data; int dt, N, K; } eng_weight; /* (N, K) of dtype dt */

typedef struct {
  eng_weight wq, wk, wv, wo, w1, w2, w3;
  const float *attn_norm, *ffn_norm; /* (C) */
} eng_layer;

typedef struct {
  int dim, n_layers, n_heads, n_kv, hs, hidden, vocab;
  double eps, theta;
  eng_weight tok, out;   /* (V, C) each; the same memory when tied */
  const float *norm;     /* (C) */
  eng_layer *layers;     /* (n_layers) */
  float *buf;            /* activation buffers for buf_t tokens */
  int buf_t;
  struct eng_copy **copies; /* regrouped weight copies in use (shared with other engines) */
  int n_copies;
} engine_t;

/* one run of new tokens of one sequence: n tokens at positions pos0.., appended to its caches */
typedef struct {
  int n, pos0;
  float *const *k, *const *v; /* per layer (S, NKV·HS), S ≥ pos0 + n */
} eng_segment;

/*
 * Regrouped copies of weight matrices (addon_engine.c makes them), shared by every engine built
 * over the same source bytes, so two models over one file hold one copy. find: the copy of
 * (src, dt, N, K) with one more reference, or NULL; add: registers a new one (base/size: its
 * mapping, data: the bytes) with one reference, NULL when out of memory (then unmaps it);
 * release: drops a reference and unmaps the last. JS-thread only.
 */
typedef struct eng_copy eng_copy;
eng_copy *engine_copy_find(const uint8_t *src, int dt, int N, int K);
eng_copy *engine_copy_add(const uint8_t *src, int dt, int N, int K, void *base, size_t size, const uint8_t *data);
const uint8_t *engine_copy_data(const eng_copy *c);
void engine_copy_release(eng_copy *c);

engine_t *engine_new(int n_layers);
void engine_free(engine_t *e);
/*
 * Forward over T = Σ n tokens (ids, segment after segment). logits (nlogits, V) for the rows
 * listed in logit_rows (ascending token indices); hidden (T, C) when not NULL. 0, or −1 when out
 * of memory (the caches may then hold partial rows past their lengths, which are not used).
 */
int engine_forward(engine_t *e, const int32_t *ids, int T, const eng_segment *segs, int nseg,
                   const int32_t *logit_rows, int nlogits, float *logits, float *hidden);

#endif
