/**
 * Causal grouped-query self-attention for training, forward and backward, over a batch of B rows
 * of T positions each (no KV cache — that is the inference engine's job in model/forward.ts).
 * A row is one sequence, or with AttnShape.starts several packed segments, each attending only
 * to itself (block-diagonal causal attention: query t sees keys starts[t] ≤ j ≤ t), so packing
 * changes no segment's outputs or gradients.
 *
 * Per (row b, query head h), with kv head j = floor(h / (NH/NKV)) and s = 1/sqrt(HS):
 *   S = Q·Kᵀ·s (T, T), causal (block-diagonal) mask, P = softmax(S), O = P·V
 *
 * The work is the backend's (Backend.attentionTrain / attentionTrainBackward, specified in
 * src/backend/ref.ts): the forward saves only lse = log Σ exp(S) per query row and head (B·NH·T
 * floats), and the backward recomputes P = exp(S − lse) flash-attention style:
 *   dV_j += Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dO ⊙ O))·s,  dQ = dS·K,  dK_j += dSᵀ·Q.
 * The native backend does it in blocks of query rows, never holding B·NH·T·T scores.
 *
 * Legend: B = rows, T = positions, NH / NKV = query / kv heads, HS = head size.
 */
import type { AttnShape, Backend } from '../backend/types.js';

export type { AttnShape };

/** Floats of the log-sum-exp the forward saves for the backward: (B, NH, T). */
export function attnLseSize(s: AttnShape): number {
  return s.B * s.NH * s.T;
}

/** out (B*T, NH*HS) = attention of q (B*T, NH*HS), k, v (B*T, NKV*HS), already rotated; fills lse. */
export function attentionForward(
  be: Backend, out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, s: AttnShape,
): void {
  be.attentionTrain(out, lse, q, k, v, s);
}

/**
 * dq (B*T, NH*HS), dk, dv (B*T, NKV*HS) += the gradients for dout (B*T, NH*HS), given the
 * forward's inputs q, k, v, its output `out` and its lse. Any of dq/dk/dv may be null.
 */
export function attentionBackward(
  be: Backend, dq: Float32Array | null, dk: Float32Array | null, dv: Float32Array | null, dout: Float32Array,
  q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, s: AttnShape,
): void {
  if (dq || dk || dv) be.attentionTrainBackward(dq, dk, dv, dout, q, k, v, out, lse, s);
}
