/**
 * The kernel interface every backend implements. The reference backend (ref.ts) is the executable
 * spec; faster backends (native) have the same signatures and are tested against it by the
 * conformance suite (tests/backend-conformance.test.ts).
 *
 * Legend: T = rows (tokens), C = dim, K = input features, N = output features, NH = query heads,
 * NKV = key/value heads, HS = head size, S = cache rows. All activations are row-major Float32Array.
 * Conventions follow Meta's llama/model.py: RoPE rotates interleaved pairs (x[2i], x[2i+1]);
 * query head h reads kv head floor(h / (NH / NKV)).
 */
import type { WeightTensor } from '../tensor.js';
import type { LlamaConfig } from '../model/config.js';
import type { ModelWeights } from '../model/weights.js';

/** Operand layouts of `gemm`: N = as stored (row-major), T = transposed. */
export type GemmLayout = 'NT' | 'NN' | 'TN';

export interface Backend {
  readonly name: string;

  /**
   * f32 GEMM for prefill and training, C (M, N) (+)= op(A) · op(B):
   *   'NT': A (M, K), B (N, K)  → A·Bᵀ   (forward through a linear layer)
   *   'NN': A (M, K), B (K, N)  → A·B    (gradient w.r.t. a linear layer's input)
   *   'TN': A (K, M), B (K, N)  → Aᵀ·B   (gradient w.r.t. a linear layer's weight)
   * accumulate: add into C instead of overwriting it.
   */
  gemm(
    c: Float32Array, a: Float32Array, b: Float32Array, M: number, N: number, K: number,
    layout: GemmLayout, accumulate: boolean,
  ): void;

  /** y (T, N) = x (T, K) · Wᵀ, W (N, K) stored in any dtype. Overwrites y. */
  matmul(y: Float32Array, x: Float32Array, w: WeightTensor, T: number): void;

  /** y (T, C) = x / sqrt(mean(x²) + eps) · g, per row; g (C). y may alias x. */
  rmsnorm(y: Float32Array, x: Float32Array, g: Float32Array, T: number, eps: number): void;

  /**
   * In-place rotary embedding of x (T, nHeads*HS): row t is at absolute position pos[t];
   * pair i of each head turns by pos · theta^(-2i/HS).
   */
  rope(x: Float32Array, T: number, nHeads: number, headSize: number, pos: Int32Array, theta: number): void;

  /**
   * Causal attention for one sequence. q (T, NH*HS) holds the queries of positions
   * pos0 .. pos0+T-1; kCache / vCache (S, NKV*HS) already hold rows 0 .. pos0+T-1.
   * out (T, NH*HS) = softmax(q·kᵀ/sqrt(HS) over keys 0..pos) · v.
   */
  attention(
    out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array,
    T: number, pos0: number, nHeads: number, nKvHeads: number, headSize: number,
  ): void;

  /** gate (n) ← silu(gate) · up, elementwise. */
  swiglu(gate: Float32Array, up: Float32Array, n: number): void;

  /** out (T, C) = table[ids[t]], table (V, C) in any dtype. */
  embedding(out: Float32Array, table: WeightTensor, ids: Int32Array): void;

  /** x (n) += y (n). */
  add(x: Float32Array, y: Float32Array, n: number): void;

  /**
   * Optional: a whole forward pass in one call (the native engine). src/model/forward.ts uses it
   * when present; it must compute what forward.ts computes with the kernels above.
   */
  prepareModel?(model: PreparedModelInput): PreparedModel;
  /**
   * Optional: one draw of the token sampler (src/generate/sampler.ts) on logits w, which it
   * overwrites: softmax(w / temperature), top-k, top-p, min-p, then the kept id at uniform r.
   * The same selection as the TypeScript sampler up to float rounding of the probabilities.
   * mass[0], when given, receives the total probability of the kept ids (so the drawn id's
   * probability under the renormalised distribution is w[id] / mass[0]).
   */
  sampleDraw?(w: Float32Array, temperature: number, topK: number, topP: number, minP: number, r: number, mass?: Float64Array): number;

  // ---- training kernels (src/train). Backward kernels ACCUMULATE (+=) into the gradients they
  // are given; a null gradient is not wanted. R = rows, V = vocab, B = sequences of T positions.

  /**
   * Fused softmax cross-entropy, rows r < R = targets.length of x (R, V), in place:
   * x[r] ← exp(x[r] − max_r), inv[r] = 1 / Σ_v exp(x[r, v] − max_r),
   * nll[r] = logsumexp(x[r]) − x[r, targets[r]].
   */
  xentForward(x: Float32Array, targets: Int32Array, nll: Float32Array, inv: Float64Array, V: number): void;

  /** Backward over the exps xentForward left in x, in place: x[r, v] ← coef[r]·(x[r, v]·inv[r] − δ(v, targets[r])). */
  xentBackward(x: Float32Array, inv: Float64Array, targets: Int32Array, coef: Float64Array, V: number): void;

  /**
   * One AdamW element update of w with gradient g and moments m, v (all length n), in float64
   * arithmetic in exactly this order, each result stored as float32:
   *   m' = β1·m + c1·g ;  v' = β2·v + c2·g·g ;  w' = w·decay − (stepSize·m') / (sqrt(v')·invSqrtBc2 + eps)
   */
  adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, u: AdamWUpdate): void;

  /** Σ x² in float64 (the order of the sum is the backend's, but fixed). */
  sumSquares(x: Float32Array): number;

  /**
   * RMSNorm backward for y = x·r·g, r = 1/sqrt(mean(x²) + eps) per row of x (T, C), g (C):
   *   dx += r·g·dy − x·r³·Σ(dy·g·x)/C ;  dg += Σ_t dy·x·r.
   */
  rmsnormBackward(
    dx: Float32Array | null, dg: Float32Array | null, dy: Float32Array, x: Float32Array, g: Float32Array, T: number, eps: number,
  ): void;

  /** h (n) = silu(a)·b (out of place; the inference `swiglu` overwrites its gate). */
  swigluForward(h: Float32Array, a: Float32Array, b: Float32Array, n: number): void;

  /** da += dh·b·σ(a)·(1 + a·(1 − σ(a))) ;  db += dh·silu(a). */
  swigluBackward(da: Float32Array | null, db: Float32Array | null, dh: Float32Array, a: Float32Array, b: Float32Array, n: number): void;

  /**
   * y (T, nHeads*HS) (+)= x rotated as `rope` does (by −angle when inverse: the backward, since a
   * rotation's transpose is the opposite rotation). y may alias x unless accumulating.
   */
  ropeRotate(
    y: Float32Array, x: Float32Array, T: number, nHeads: number, headSize: number, pos: Int32Array, theta: number,
    inverse: boolean, accumulate: boolean,
  ): void;

  /**
   * Causal GQA self-attention of B rows of T positions: q (B*T, NH*HS), k, v (B*T, NKV*HS) →
   * out (B*T, NH*HS). Query t of row b sees the keys j of its row with st ≤ j ≤ t, where
   * st = s.starts[b*T + t] (the first position of t's segment; 0 without s.starts: plain causal,
   * as `attention` computes per sequence). lse (B, NH, T) receives log Σ_j exp(q·k_j/sqrt(HS))
   * of every query row over those keys, for the backward. Invalid starts (see AttnShape) are a
   * Llama2Error naming the position.
   */
  attentionTrain(out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, s: AttnShape): void;

  /**
   * Its backward: dq, dk, dv += the gradients for dout, given the forward's inputs, output and lse.
   * With P = exp(q·kᵀ/sqrt(HS) − lse) (over the keys each query sees) and D = rowsum(dout ⊙ out):
   *   dv += Pᵀ·dout ;  dS = P ⊙ (dout·vᵀ − D)/sqrt(HS) ;  dq += dS·k ;  dk += dSᵀ·q
   * (per query head h and its kv head h / (NH/NKV)).
   */
  attentionTrainBackward(
    dq: Float32Array | null, dk: Float32Array | null, dv: Float32Array | null, dout: Float32Array, q: Float32Array,
    k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, s: AttnShape,
  ): void;
}

/**
 * The shape of a training attention call: B rows of T positions, NH / NKV heads of HS, and
 * optionally where the segments of packed rows begin (block-diagonal causal attention).
 */
export interface AttnShape {
  B: number;
  T: number;
  NH: number;
  NKV: number;
  HS: number;
  /**
   * (B*T) starts[b*T + t] = the index within row b of the first position of t's segment, so
   * query t attends keys starts[b*T + t] ≤ j ≤ t. Absent: one segment per row (all zeros).
   * Valid when every row begins a segment (starts[b*T] = 0) and each later position either
   * continues the previous one's segment or begins its own: starts[b*T + t] ∈ {starts[b*T + t − 1], t}.
   * Example: a row of T = 6 packing samples of 2 and 3 tokens and 1 padding → [0, 0, 2, 2, 2, 5].
   */
  starts?: Int32Array;
}

/** The constants of one AdamW step for `Backend.adamw` (src/train/optim.ts computes them). */
export interface AdamWUpdate {
  /** 1 − lr·weightDecay for decayed parameters, else 1 */
  decay: number;
  beta1: number;
  /** (1 − β1)·gradScale */
  c1: number;
  beta2: number;
  /** (1 − β2)·gradScale² */
  c2: number;
  /** lr / (1 − β1ᵗ) */
  stepSize: number;
  /** 1 / sqrt(1 − β2ᵗ) */
  invSqrtBc2: number;
  eps: number;
}

/** What prepareModel borrows: the model's shape, its weights, and float32 norm vectors (C). */
export interface PreparedModelInput {
  config: LlamaConfig;
  weights: ModelWeights;
  attnNorm: readonly Float32Array[];
  ffnNorm: readonly Float32Array[];
  finalNorm: Float32Array;
  /**
   * Whether the engine may keep its own copy of Q4_0 matrices regrouped for its kernels (same
   * values, ~2× fewer instructions per weight): 'mapped' (default) only for memory-mapped model
   * files, whose pages it then releases, so resident memory stays about the file's size;
   * 'always' also for in-memory weights (a second copy); 'never'. The environment variable
   * LLAMA2_REPACK=0 turns the default into 'never'.
   */
  repack?: 'never' | 'mapped' | 'always';
}

/** One run of new tokens of one sequence for PreparedModel.forward. */
export interface PreparedSegment {
  /** tokens, and the cache length before them (their first position) */
  n: number;
  pos0: number;
  /** per layer (S, NKV*HS), S ≥ pos0 + n; rows pos0 .. pos0+n-1 get written */
  k: readonly Float32Array[];
  v: readonly Float32Array[];
}

export interface PreparedModel {
  /**
   * ids (T) of all segments in order; logits (rows, V) for the ascending token indices in
   * logitRows; hidden (T, C) of final-normed states when given. Ids must be in the vocabulary.
   */
  forward(ids: Int32Array, segments: readonly PreparedSegment[], logitRows: Int32Array, logits: Float32Array, hidden: Float32Array | null): void;
}
