/**
 * Causal grouped-query self-attention for training, forward and backward, over a batch of B rows
 * of T positions each (every row starts at position 0; no KV cache — that is the inference
 * engine's job in model/forward.ts).
 *
 * Per (row b, query head h), with kv head j = floor(h / (NH/NKV)) and s = 1/sqrt(HS):
 *   S = Q·Kᵀ·s (T, T), causal mask, P = softmax(S), O = P·V
 *
 * Forward: backend.attention, row by row (the same fused kernel the inference engine uses; it
 * never materialises P). Nothing is saved: q, k, v and the output are the op's own immutable
 * inputs/outputs.
 * Backward: per head, P is recomputed (S = Q·Kᵀ by backend.gemm, then a causal softmax) in a
 * (T, T) scratch, flash-attention style, and
 *   dV_j += Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dO ⊙ O))·s,  dQ = dS·K,  dK_j += dSᵀ·Q
 * each product one backend.gemm (TN, NT, NN, TN) on head-major (T, HS) copies. Memory: two T·T
 * scratch matrices in all, never B·NH·T·T; the price is one extra Q·Kᵀ product per head.
 *
 * Legend: B = rows, T = positions, NH / NKV = query / kv heads, HS = head size.
 */
import type { Backend } from '../backend/types.js';

export interface AttnShape {
  B: number;
  T: number;
  NH: number;
  NKV: number;
  HS: number;
}

/** out (B*T, NH*HS) = attention of q (B*T, NH*HS), k, v (B*T, NKV*HS), already rotated. */
export function attentionForward(be: Backend, out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, s: AttnShape): void {
  const { B, T, NH, NKV, HS } = s;
  const qn = T * NH * HS;
  const kn = T * NKV * HS;
  for (let b = 0; b < B; b++) {
    be.attention(out.subarray(b * qn, (b + 1) * qn), q.subarray(b * qn, (b + 1) * qn),
      k.subarray(b * kn, (b + 1) * kn), v.subarray(b * kn, (b + 1) * kn), T, 0, NH, NKV, HS);
  }
}

/** Floats of scratch the backward needs. */
export function attnBackwardScratchSize(s: AttnShape): number {
  return 2 * s.T * s.T + 8 * s.T * s.HS;
}

/** Copies head h of row b of x (B*T, nH*HS) into dst (T, HS). */
function headOf(dst: Float32Array, x: Float32Array, b: number, h: number, T: number, nH: number, HS: number): void {
  const W = nH * HS;
  for (let t = 0; t < T; t++) {
    const src = (b * T + t) * W + h * HS;
    dst.set(x.subarray(src, src + HS), t * HS);
  }
}

/** x (B*T, nH*HS), head h of row b += src (T, HS). */
function addToHead(x: Float32Array, src: Float32Array, b: number, h: number, T: number, nH: number, HS: number): void {
  const W = nH * HS;
  for (let t = 0; t < T; t++) {
    const dst = (b * T + t) * W + h * HS;
    const o = t * HS;
    for (let i = 0; i < HS; i++) x[dst + i] = x[dst + i]! + src[o + i]!;
  }
}

/** Raw scores in p (T, T) → causal softmax probabilities of scaled scores (0 above the diagonal). */
function causalSoftmax(p: Float32Array, T: number, scale: number): void {
  for (let i = 0; i < T; i++) {
    const r = i * T;
    let max = -Infinity;
    for (let j = 0; j <= i; j++) max = Math.max(max, p[r + j]!);
    let sum = 0;
    for (let j = 0; j <= i; j++) {
      const e = Math.exp((p[r + j]! - max) * scale);
      p[r + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = 0; j <= i; j++) p[r + j] = p[r + j]! * inv;
    p.fill(0, r + i + 1, r + T);
  }
}

/**
 * dq (B*T, NH*HS), dk, dv (B*T, NKV*HS) += the gradients for dout (B*T, NH*HS), given the
 * forward's inputs q, k, v and output `out`. Any of dq/dk/dv may be null.
 * scratch: attnBackwardScratchSize floats (contents unspecified).
 */
export function attentionBackward(
  be: Backend, dq: Float32Array | null, dk: Float32Array | null, dv: Float32Array | null, dout: Float32Array,
  q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, s: AttnShape, scratch: Float32Array,
): void {
  const { B, T, NH, NKV, HS } = s;
  const rep = NH / NKV;
  const scale = 1 / Math.sqrt(HS);
  const TH = T * HS;
  let o = 0;
  const take = (n: number): Float32Array => scratch.subarray(o, (o += n));
  const P = take(T * T); // (T, T) probabilities
  const dP = take(T * T); // (T, T) dP, then dS
  const Q = take(TH); // (T, HS) each
  const O = take(TH);
  const dO = take(TH);
  const dQ = take(TH);
  const K = take(TH);
  const V = take(TH);
  const dK = take(TH);
  const dV = take(TH);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < NKV; j++) {
      headOf(K, k, b, j, T, NKV, HS);
      headOf(V, v, b, j, T, NKV, HS);
      dK.fill(0);
      dV.fill(0);
      for (let h = j * rep; h < (j + 1) * rep; h++) {
        headOf(Q, q, b, h, T, NH, HS);
        headOf(dO, dout, b, h, T, NH, HS);
        be.gemm(P, Q, K, T, T, HS, 'NT', false); // raw scores (T, T)
        causalSoftmax(P, T, scale);
        if (dv) be.gemm(dV, P, dO, T, HS, T, 'TN', true); // dV += Pᵀ·dO
        if (!dq && !dk) continue;
        headOf(O, out, b, h, T, NH, HS);
        be.gemm(dP, dO, V, T, T, HS, 'NT', false); // dP = dO·Vᵀ
        for (let i = 0; i < T; i++) {
          let d = 0; // D_i = Σ_j P_ij·dP_ij = dO_i·O_i
          for (let c = 0; c < HS; c++) d += dO[i * HS + c]! * O[i * HS + c]!;
          const r = i * T;
          for (let jj = 0; jj <= i; jj++) dP[r + jj] = P[r + jj]! * (dP[r + jj]! - d) * scale;
          dP.fill(0, r + i + 1, r + T);
        }
        if (dq) {
          be.gemm(dQ, dP, K, T, HS, T, 'NN', false); // dQ = dS·K
          addToHead(dq, dQ, b, h, T, NH, HS);
        }
        if (dk) be.gemm(dK, dP, Q, T, HS, T, 'TN', true); // dK += dSᵀ·Q
      }
      if (dk) addToHead(dk, dK, b, j, T, NKV, HS);
      if (dv) addToHead(dv, dV, b, j, T, NKV, HS);
    }
  }
}
