/**
 * The reference backend: every kernel in plain TypeScript, written for clarity. It is the
 * executable specification that faster backends are tested against (tests/backend-conformance),
 * so it favours obvious loops over speed, but stays linear in the work and allocates per call,
 * never per element. Sums accumulate in float64 (JS numbers).
 *
 * Legend: T = rows, K = in features, N = out features, C = dim, NH/NKV = heads, HS = head size.
 */
import type { AdamWUpdate, AttnShape, Backend, GemmLayout } from './types.js';
import { DTYPE_LAYOUT, decodeRange, type WeightTensor } from '../tensor.js';
import { checkAttnShapeStarts } from './attn-starts.js';

/** Decodes `rows` rows of `w` starting at row `r0` into dst (rows, K). */
function decodeRows(w: WeightTensor, r0: number, rows: number, K: number, dst: Float32Array): void {
  decodeRange(w, r0 * K, rows * K, dst, 0);
}

/** How many weight rows to decode at once: enough to amortise the call, small enough for cache. */
const ROW_TILE = 16;

function matmul(y: Float32Array, x: Float32Array, w: WeightTensor, T: number): void {
  const [N, K] = w.shape as [number, number];
  if (w.shape.length !== 2) throw new Error(`matmul: weight must be 2-D, got [${w.shape.join(', ')}]`);
  if (x.length < T * K || y.length < T * N) throw new Error(`matmul: buffers too small for T=${T} K=${K} N=${N}`);
  const blk = DTYPE_LAYOUT[w.dtype].blockSize;
  if (K % blk !== 0) throw new Error(`matmul: K=${K} is not a multiple of the ${w.dtype} block size ${blk}`);
  const f32 = w.dtype === 'F32' && w.data.byteOffset % 4 === 0
    ? new Float32Array(w.data.buffer, w.data.byteOffset, N * K) : null;
  const tile = new Float32Array(ROW_TILE * K); // (ROW_TILE, K) decoded weight rows
  for (let n0 = 0; n0 < N; n0 += ROW_TILE) {
    const rows = Math.min(ROW_TILE, N - n0);
    let wr: Float32Array;
    let wOff: number;
    if (f32) { wr = f32; wOff = n0 * K; } else { decodeRows(w, n0, rows, K, tile); wr = tile; wOff = 0; }
    for (let t = 0; t < T; t++) {
      const xo = t * K;
      for (let r = 0; r < rows; r++) {
        const wo = wOff + r * K;
        let s = 0;
        for (let k = 0; k < K; k++) s += x[xo + k]! * wr[wo + k]!;
        y[t * N + n0 + r] = s;
      }
    }
  }
}

function gemm(
  c: Float32Array, a: Float32Array, b: Float32Array, M: number, N: number, K: number,
  layout: GemmLayout, accumulate: boolean,
): void {
  // element strides of op(A)[m, k] and op(B)[k, n]
  const [am, ak] = layout === 'TN' ? [1, M] : [K, 1];
  const [bk, bn] = layout === 'NT' ? [1, K] : [N, 1];
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[m * am + k * ak]! * b[k * bk + n * bn]!;
      c[m * N + n] = accumulate ? c[m * N + n]! + s : s;
    }
  }
}

function rmsnorm(y: Float32Array, x: Float32Array, g: Float32Array, T: number, eps: number): void {
  const C = g.length;
  for (let t = 0; t < T; t++) {
    const o = t * C;
    let ss = 0;
    for (let i = 0; i < C; i++) ss += x[o + i]! * x[o + i]!;
    const inv = 1 / Math.sqrt(ss / C + eps);
    // Meta computes (x * rsqrt(mean + eps)) in float32, then multiplies by the weight
    for (let i = 0; i < C; i++) y[o + i] = Math.fround(x[o + i]! * inv) * g[i]!;
  }
}

/** cos/sin tables per (HS, theta), grown on demand; angles computed in float64. */
const ropeTables = new Map<string, { cos: Float32Array; sin: Float32Array; len: number }>();
export function ropeTable(headSize: number, theta: number, minLen: number): { cos: Float32Array; sin: Float32Array } {
  const key = `${headSize}:${theta}`;
  let tab = ropeTables.get(key);
  if (!tab || tab.len < minLen) {
    const len = Math.max(minLen, 2 * (tab?.len ?? 256));
    const half = headSize / 2;
    const cos = new Float32Array(len * half); // (len, HS/2)
    const sin = new Float32Array(len * half);
    for (let i = 0; i < half; i++) {
      const freq = 1 / Math.pow(theta, (2 * i) / headSize);
      for (let p = 0; p < len; p++) {
        const a = p * freq;
        cos[p * half + i] = Math.cos(a);
        sin[p * half + i] = Math.sin(a);
      }
    }
    tab = { cos, sin, len };
    ropeTables.set(key, tab);
  }
  return tab;
}

function rope(x: Float32Array, T: number, nHeads: number, headSize: number, pos: Int32Array, theta: number): void {
  ropeRotate(x, x, T, nHeads, headSize, pos, theta, false, false); // in place: each pair is read before it is written
}

function attention(
  out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array,
  T: number, pos0: number, nHeads: number, nKvHeads: number, headSize: number,
): void {
  const rep = nHeads / nKvHeads;
  const qW = nHeads * headSize;
  const kvW = nKvHeads * headSize;
  const scale = 1 / Math.sqrt(headSize);
  const scores = new Float64Array(pos0 + T); // (S)
  const acc = new Float64Array(headSize); // (HS)
  for (let t = 0; t < T; t++) {
    const nKeys = pos0 + t + 1; // causal: keys 0 .. pos0+t
    for (let h = 0; h < nHeads; h++) {
      const qo = t * qW + h * headSize;
      const kvo = Math.floor(h / rep) * headSize;
      let max = -Infinity;
      for (let s = 0; s < nKeys; s++) {
        const ko = s * kvW + kvo;
        let d = 0;
        for (let i = 0; i < headSize; i++) d += q[qo + i]! * kCache[ko + i]!;
        d *= scale;
        scores[s] = d;
        if (d > max) max = d;
      }
      let sum = 0;
      for (let s = 0; s < nKeys; s++) {
        const e = Math.exp(scores[s]! - max);
        scores[s] = e;
        sum += e;
      }
      acc.fill(0);
      for (let s = 0; s < nKeys; s++) {
        const p = scores[s]! / sum;
        const vo = s * kvW + kvo;
        for (let i = 0; i < headSize; i++) acc[i] = acc[i]! + p * vCache[vo + i]!;
      }
      for (let i = 0; i < headSize; i++) out[qo + i] = acc[i]!;
    }
  }
}

function swiglu(gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}

function embedding(out: Float32Array, table: WeightTensor, ids: Int32Array): void {
  const [V, C] = table.shape as [number, number];
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (!(id >= 0 && id < V)) throw new RangeError(`embedding: token id ${id} is outside the vocabulary (0..${V - 1})`);
    decodeRange(table, id * C, C, out, t * C);
  }
}

function add(x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) x[i] = x[i]! + y[i]!;
}

// ---------------------------------------------------------------------------------------------
// training kernels (the spec of types.ts "training kernels"); backward kernels accumulate

function xentForward(x: Float32Array, targets: Int32Array, nll: Float32Array, inv: Float64Array, V: number): void {
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

function xentBackward(x: Float32Array, inv: Float64Array, targets: Int32Array, coef: Float64Array, V: number): void {
  for (let r = 0; r < targets.length; r++) {
    const o = r * V;
    const c = coef[r]!;
    if (c === 0) {
      x.fill(0, o, o + V);
      continue;
    }
    const k = c * inv[r]!;
    for (let v = 0; v < V; v++) x[o + v] = x[o + v]! * k;
    x[o + targets[r]!] = x[o + targets[r]!]! - c;
  }
}

function adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, u: AdamWUpdate): void {
  const { decay, beta1, c1, beta2, c2, stepSize, invSqrtBc2, eps } = u;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]!;
    const mi = beta1 * m[i]! + c1 * gi;
    const vi = beta2 * v[i]! + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) * invSqrtBc2 + eps);
  }
}

function sumSquares(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return s;
}

function rmsnormBackward(
  dx: Float32Array | null, dg: Float32Array | null, dy: Float32Array, x: Float32Array, g: Float32Array, T: number, eps: number,
): void {
  const C = g.length;
  for (let t = 0; t < T; t++) {
    const o = t * C;
    let ss = 0;
    for (let i = 0; i < C; i++) ss += x[o + i]! * x[o + i]!;
    const r = 1 / Math.sqrt(ss / C + eps);
    if (dx) {
      let dot = 0;
      for (let i = 0; i < C; i++) dot += dy[o + i]! * g[i]! * x[o + i]!;
      const k = (dot * r * r * r) / C;
      for (let i = 0; i < C; i++) dx[o + i] = dx[o + i]! + r * g[i]! * dy[o + i]! - k * x[o + i]!;
    }
    if (dg) for (let i = 0; i < C; i++) dg[i] = dg[i]! + dy[o + i]! * x[o + i]! * r;
  }
}

function swigluForward(h: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    h[i] = (x / (1 + Math.exp(-x))) * b[i]!;
  }
}

function swigluBackward(da: Float32Array | null, db: Float32Array | null, dh: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const sg = 1 / (1 + Math.exp(-x));
    if (da) da[i] = da[i]! + dh[i]! * b[i]! * sg * (1 + x * (1 - sg));
    if (db) db[i] = db[i]! + dh[i]! * x * sg;
  }
}

function ropeRotate(
  y: Float32Array, x: Float32Array, T: number, nHeads: number, headSize: number, pos: Int32Array, theta: number,
  inverse: boolean, accumulate: boolean,
): void {
  let maxPos = 0;
  for (let t = 0; t < T; t++) maxPos = Math.max(maxPos, pos[t]!);
  const { cos, sin } = ropeTable(headSize, theta, maxPos + 1);
  const half = headSize / 2;
  const W = nHeads * headSize;
  const dir = inverse ? -1 : 1;
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
        y[o + 2 * i] = accumulate ? y[o + 2 * i]! + ya : ya;
        y[o + 2 * i + 1] = accumulate ? y[o + 2 * i + 1]! + yb : yb;
      }
    }
  }
}

/** Scaled scores p[j] = q_t·k_j/sqrt(HS) for the keys st ≤ j ≤ t one query sees, of one (row, head) (float64). */
function attnScores(
  p: Float64Array, q: Float32Array, k: Float32Array, qo: number, kvo: number, st: number, t: number, kvW: number, HS: number,
): void {
  const scale = 1 / Math.sqrt(HS);
  for (let j = st; j <= t; j++) {
    let d = 0;
    for (let i = 0; i < HS; i++) d += q[qo + i]! * k[kvo + j * kvW + i]!;
    p[j] = d * scale;
  }
}

/** The first key query t of row b sees: its segment's start (0 without starts: plain causal). */
function firstKey(s: AttnShape, b: number, t: number): number {
  return s.starts ? s.starts[b * s.T + t]! : 0;
}

function attentionTrain(out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, s: AttnShape): void {
  checkAttnShapeStarts(s, 'attentionTrain');
  const { B, T, NH, NKV, HS } = s;
  const qW = NH * HS;
  const kvW = NKV * HS;
  const p = new Float64Array(T); // (T) scores of one query row
  const acc = new Float64Array(HS);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const kvo = b * T * kvW + Math.floor(h / (NH / NKV)) * HS;
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * qW + h * HS;
        const st = firstKey(s, b, t);
        attnScores(p, q, k, qo, kvo, st, t, kvW, HS);
        let max = -Infinity;
        for (let j = st; j <= t; j++) max = Math.max(max, p[j]!);
        let sum = 0;
        for (let j = st; j <= t; j++) sum += (p[j] = Math.exp(p[j]! - max));
        lse[(b * NH + h) * T + t] = max + Math.log(sum);
        acc.fill(0);
        for (let j = st; j <= t; j++) for (let i = 0; i < HS; i++) acc[i] = acc[i]! + p[j]! * v[kvo + j * kvW + i]!;
        for (let i = 0; i < HS; i++) out[qo + i] = acc[i]! / sum;
      }
    }
  }
}

function attentionTrainBackward(
  dq: Float32Array | null, dk: Float32Array | null, dv: Float32Array | null, dout: Float32Array, q: Float32Array,
  k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, s: AttnShape,
): void {
  checkAttnShapeStarts(s, 'attentionTrainBackward');
  const { B, T, NH, NKV, HS } = s;
  const qW = NH * HS;
  const kvW = NKV * HS;
  const rep = NH / NKV;
  const scale = 1 / Math.sqrt(HS);
  const p = new Float64Array(T); // (T) scaled scores of one query row
  const gq = new Float64Array(HS); // (HS) dq of one query row
  const gk = new Float64Array(T * HS); // (T, HS) dk, dv of one kv head of one sequence
  const gv = new Float64Array(T * HS);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < NKV; j++) {
      const kvo = b * T * kvW + j * HS;
      gk.fill(0);
      gv.fill(0);
      for (let h = j * rep; h < (j + 1) * rep; h++) {
        for (let t = 0; t < T; t++) {
          const qo = (b * T + t) * qW + h * HS;
          const st = firstKey(s, b, t);
          attnScores(p, q, k, qo, kvo, st, t, kvW, HS);
          const l = lse[(b * NH + h) * T + t]!;
          let d = 0; // D_t = dout_t · out_t
          for (let i = 0; i < HS; i++) d += dout[qo + i]! * out[qo + i]!;
          gq.fill(0);
          for (let u = st; u <= t; u++) {
            const ko = kvo + u * kvW;
            const pu = Math.exp(p[u]! - l);
            let dp = 0;
            for (let i = 0; i < HS; i++) dp += dout[qo + i]! * v[ko + i]!;
            const ds = pu * (dp - d) * scale;
            for (let i = 0; i < HS; i++) {
              gv[u * HS + i] = gv[u * HS + i]! + pu * dout[qo + i]!;
              gk[u * HS + i] = gk[u * HS + i]! + ds * q[qo + i]!;
              gq[i] = gq[i]! + ds * k[ko + i]!;
            }
          }
          if (dq) for (let i = 0; i < HS; i++) dq[qo + i] = dq[qo + i]! + gq[i]!;
        }
      }
      for (let u = 0; u < T; u++) {
        const ko = kvo + u * kvW;
        for (let i = 0; i < HS; i++) {
          if (dk) dk[ko + i] = dk[ko + i]! + gk[u * HS + i]!;
          if (dv) dv[ko + i] = dv[ko + i]! + gv[u * HS + i]!;
        }
      }
    }
  }
}

export const refBackend: Backend = {
  name: 'ref', gemm, matmul, rmsnorm, rope, attention, swiglu, embedding, add,
  xentForward, xentBackward, adamw, sumSquares, rmsnormBackward, swigluForward, swigluBackward, ropeRotate,
  attentionTrain, attentionTrainBackward,
};
