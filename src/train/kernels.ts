/**
 * Forward/backward kernel pairs for training over flat row-major Float32Arrays: embedding,
 * RMSNorm, RoPE, SwiGLU, log-softmax rows. Backward kernels ACCUMULATE into the gradient buffers
 * they are given (+=), so several consumers of one value can share its gradient.
 *
 * These are the O(T·C) element-wise parts; the Backend interface has no backward kernels, so they
 * live here in plain TypeScript (sums in float64). The GEMM-shaped work (linear layers,
 * attention scores) goes through backend.gemm in ops.ts / attention.ts. No tape, no allocation.
 *
 * Legend: T = rows (tokens), C = features, V = vocab, NH = heads in the row, HS = head size.
 */
import { ropeTable } from '../backend/ref.js';

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
// RMSNorm: y = x · r · g, r = 1/sqrt(mean(x²) + eps)

/** y (T, C) from x (T, C) and g (C); saves r (T) for the backward. */
export function rmsnormForward(y: Float32Array, rstd: Float32Array, x: Float32Array, g: Float32Array, T: number, eps: number): void {
  const C = g.length;
  for (let t = 0; t < T; t++) {
    const o = t * C;
    let ss = 0;
    for (let i = 0; i < C; i++) ss += x[o + i]! * x[o + i]!;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[t] = r;
    // Meta rounds x·r to the activation dtype before the weight multiply
    for (let i = 0; i < C; i++) y[o + i] = Math.fround(x[o + i]! * r) * g[i]!;
  }
}

/**
 * dx += r·g·dy − x·r³·Σ(dy·g·x)/C ;  dg += Σ_t dy·x·r.  Either gradient may be null (not needed).
 */
export function rmsnormBackward(
  dx: Float32Array | null, dg: Float32Array | null, dy: Float32Array, x: Float32Array, g: Float32Array,
  rstd: Float32Array, T: number,
): void {
  const C = g.length;
  for (let t = 0; t < T; t++) {
    const o = t * C;
    const r = rstd[t]!;
    if (dx) {
      let dot = 0;
      for (let i = 0; i < C; i++) dot += dy[o + i]! * g[i]! * x[o + i]!;
      const k = (dot * r * r * r) / C;
      for (let i = 0; i < C; i++) dx[o + i] = dx[o + i]! + r * g[i]! * dy[o + i]! - k * x[o + i]!;
    }
    if (dg) for (let i = 0; i < C; i++) dg[i] = dg[i]! + dy[o + i]! * x[o + i]! * r;
  }
}

// ---------------------------------------------------------------------------------------------
// RoPE (Meta layout: pair i of a head is dims (2i, 2i+1), angle pos · theta^(-2i/HS))

/**
 * y (T, NH*HS) = rotate(x) by +angle (dir = 1) or −angle (dir = −1, the backward: the
 * transpose of a rotation is the opposite rotation). y may alias x; accumulate adds into y.
 */
export function ropeRotate(
  y: Float32Array, x: Float32Array, T: number, nHeads: number, headSize: number, pos: Int32Array, theta: number,
  dir: 1 | -1, accumulate: boolean,
): void {
  let maxPos = 0;
  for (let t = 0; t < T; t++) maxPos = Math.max(maxPos, pos[t]!);
  const { cos, sin } = ropeTable(headSize, theta, maxPos + 1);
  const half = headSize / 2;
  const W = nHeads * headSize;
  for (let t = 0; t < T; t++) {
    const c0 = pos[t]! * half;
    for (let h = 0; h < nHeads; h++) {
      const o = t * W + h * headSize;
      for (let i = 0; i < half; i++) {
        const a = x[o + 2 * i]!;
        const b = x[o + 2 * i + 1]!;
        const c = cos[c0 + i]!;
        const s = dir * sin[c0 + i]!;
        const ya = a * c - b * s;
        const yb = a * s + b * c;
        if (accumulate) {
          y[o + 2 * i] = y[o + 2 * i]! + ya;
          y[o + 2 * i + 1] = y[o + 2 * i + 1]! + yb;
        } else {
          y[o + 2 * i] = ya;
          y[o + 2 * i + 1] = yb;
        }
      }
    }
  }
}

export function ropeForward(y: Float32Array, x: Float32Array, T: number, nHeads: number, headSize: number, pos: Int32Array, theta: number): void {
  ropeRotate(y, x, T, nHeads, headSize, pos, theta, 1, false);
}

/** dx += rotate(dy) by −angle. */
export function ropeBackward(dx: Float32Array, dy: Float32Array, T: number, nHeads: number, headSize: number, pos: Int32Array, theta: number): void {
  ropeRotate(dx, dy, T, nHeads, headSize, pos, theta, -1, true);
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: h = silu(a) · b, silu(a) = a·σ(a)

/** h (n) = silu(a)·b; saves σ(a) (n) for the backward when sig is given. */
export function swigluForward(h: Float32Array, a: Float32Array, b: Float32Array, n: number, sig?: Float32Array): void {
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const sg = 1 / (1 + Math.exp(-x));
    if (sig) sig[i] = sg;
    h[i] = x * sg * b[i]!;
  }
}

/** da += dh·b·σ(a)·(1 + a·(1 − σ(a))) ; db += dh·silu(a), with σ(a) saved by the forward. Either may be null. */
export function swigluBackward(
  da: Float32Array | null, db: Float32Array | null, dh: Float32Array, a: Float32Array, b: Float32Array, sig: Float32Array, n: number,
): void {
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const sg = sig[i]!;
    const g = dh[i]!;
    if (da) da[i] = da[i]! + g * b[i]! * sg * (1 + x * (1 - sg));
    if (db) db[i] = db[i]! + g * x * sg;
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

/**
 * Cross-entropy rows that consume their logits: x (rows of V) is overwritten with
 * e[v] = exp(x[v] − max) and inv[r] = 1/Σe is saved, so the backward needs no second exp pass.
 * Returns nll[r] = logsumexp(x_r) − x_r[target_r] in nll.
 */
export function xentForwardInPlace(x: Float32Array, inv: Float64Array, nll: Float32Array, targets: Int32Array, V: number): void {
  for (let r = 0; r < targets.length; r++) {
    const o = r * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (x[o + v]! > max) max = x[o + v]!;
    const xt = x[o + targets[r]!]!;
    let s = 0;
    for (let v = 0; v < V; v++) {
      const e = Math.exp(x[o + v]! - max);
      x[o + v] = e;
      s += e;
    }
    inv[r] = 1 / s;
    nll[r] = max + Math.log(s) - xt;
  }
}

/** dx[r, v] = c_r·(softmax_r[v] − δ(v, target_r)) over the exps left by xentForwardInPlace, in place. */
export function xentBackwardInPlace(x: Float32Array, inv: Float64Array, targets: Int32Array, c: ArrayLike<number>, V: number): void {
  for (let r = 0; r < targets.length; r++) {
    const o = r * V;
    const cr = c[r]!;
    if (cr === 0) {
      x.fill(0, o, o + V);
      continue;
    }
    const k = cr * inv[r]!;
    for (let v = 0; v < V; v++) x[o + v] = x[o + v]! * k;
    x[o + targets[r]!] = x[o + targets[r]!]! - cr;
  }
}
