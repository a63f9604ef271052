/**
 * The few training kernels that are not the backend's, in plain TypeScript over flat row-major
 * Float32Arrays: the embedding lookup and its backward (row copies and adds), and log-softmax
 * rows for per-token log-probabilities (RLHF, reward; not on the pretraining path). Backward
 * kernels ACCUMULATE into the gradient buffers they are given (+=). Sums in float64.
 *
 * Everything heavy (RMSNorm, RoPE, SwiGLU, attention, the fused cross-entropy, AdamW) is a Backend
 * kernel (src/backend/types.ts "training kernels"; the reference in src/backend/ref.ts), so the
 * native backend runs it natively. No tape, no allocation.
 *
 * Legend: T = rows (tokens), C = features, V = vocab.
 */

// ---------------------------------------------------------------------------------------------
// embedding

/** out (T, C) = table[ids[t]]. */
export function embeddingForward(out: Float32Array, table: Float32Array, ids: Int32Array, C: number): void {
  const V = table.length / C;
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (!(id >= 0 && id < V)) throw new RangeError(`embedding: token id ${id} is outside the vocabulary (0..${V - 1})`);
    out.set(table.subarray(id * C, id * C + C), t * C);
  }
}

/** dTable[ids[t]] += dout[t]. */
export function embeddingBackward(dTable: Float32Array, dout: Float32Array, ids: Int32Array, C: number): void {
  for (let t = 0; t < ids.length; t++) {
    const o = ids[t]! * C;
    const s = t * C;
    for (let i = 0; i < C; i++) dTable[o + i] = dTable[o + i]! + dout[s + i]!;
  }
}

// ---------------------------------------------------------------------------------------------
// log-softmax rows

/** logsumexp of row r of x (rows of V), stable for any magnitude. */
export function rowLogSumExp(x: Float32Array, r: number, V: number): number {
  const o = r * V;
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (x[o + v]! > max) max = x[o + v]!;
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(x[o + v]! - max);
  return max + Math.log(s);
}

/**
 * Backward of w_r·logp[r, target_r] for every row, into dx (rows of V):
 *   dx[r, v] (+)= w_r·(δ(v, target_r) − softmax(x_r)[v]).
 * dx may alias x (overwrite, accumulate = false): each row is read before it is written.
 */
export function logprobRowsBackward(
  dx: Float32Array, x: Float32Array, lse: Float64Array, targets: Int32Array, w: ArrayLike<number>, V: number, accumulate: boolean,
): void {
  for (let r = 0; r < targets.length; r++) {
    const o = r * V;
    const wr = w[r]!;
    const l = lse[r]!;
    if (wr === 0) {
      if (!accumulate) dx.fill(0, o, o + V);
      continue;
    }
    if (accumulate) {
      for (let v = 0; v < V; v++) dx[o + v] = dx[o + v]! - wr * Math.exp(x[o + v]! - l);
    } else {
      for (let v = 0; v < V; v++) dx[o + v] = -wr * Math.exp(x[o + v]! - l);
    }
    dx[o + targets[r]!] = dx[o + targets[r]!]! + wr;
  }
}
