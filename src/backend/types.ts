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
}
