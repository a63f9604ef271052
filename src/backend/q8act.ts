/**
 * The int8 activation quantization of the native backend, written out in TypeScript as its spec
 * (native/common.h q8a_block, native/quant_dot*.c), and the exact value the int8 matmul path
 * computes. Used by tests/backend-conformance to check that path exactly, and to derive the
 * tolerance of the int8 path against the float reference. Not a kernel anyone should run.
 *
 * Per block of 32 activations: amax = max |x|, d = amax/127, id = d ? 1/d : 0 (all f32),
 * q[i] = round-half-even(f32(x[i]·id)). Then for a weight row w (decoded to f32):
 *   y = Σ_b d_b · Σ_{i∈b} w[i]·q[i]
 * which the native code evaluates as integer dot products times block scales, in f32.
 */
export const Q8_BLOCK = 32;

const fr = Math.fround;

/** round to nearest, ties to even (the default rounding mode of the native code) */
export function roundHalfEven(v: number): number {
  const r = Math.round(v); // ties toward +∞
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface Q8Acts {
  d: Float32Array; // (T, K/32) block scales
  qs: Int8Array; // (T, K)
}

/** Quantizes x (T, K) row by row; K must be a multiple of 32. */
export function quantizeQ8Acts(x: Float32Array, T: number, K: number): Q8Acts {
  if (K % Q8_BLOCK !== 0) throw new Error(`quantizeQ8Acts: K=${K} is not a multiple of ${Q8_BLOCK}`);
  const nb = K / Q8_BLOCK;
  const d = new Float32Array(T * nb);
  const qs = new Int8Array(T * K);
  for (let b = 0; b < T * nb; b++) {
    const o = b * Q8_BLOCK;
    let amax = 0;
    for (let i = 0; i < Q8_BLOCK; i++) amax = Math.max(amax, Math.abs(x[o + i]!));
    const db = fr(amax / 127);
    const id = db !== 0 ? fr(1 / db) : 0;
    for (let i = 0; i < Q8_BLOCK; i++) qs[o + i] = roundHalfEven(fr(x[o + i]! * id));
    d[b] = db;
  }
  return { d, qs };
}

/**
 * y (T, N) = the int8 path's value in float64: Σ_b d_b Σ_{i∈b} wf[n, i]·q[t, i], with
 * wf (N, K) the weight decoded to f32. Also returns `mag` (T, N) = Σ_b d_b Σ |wf·q|, the scale
 * that f32 rounding errors of the native evaluation are relative to.
 */
export function matmulQ8Exact(x: Float32Array, wf: Float32Array, N: number, K: number, T: number): { y: Float64Array; mag: Float64Array } {
  const { d, qs } = quantizeQ8Acts(x, T, K);
  const nb = K / Q8_BLOCK;
  const y = new Float64Array(T * N);
  const mag = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      let m = 0;
      for (let b = 0; b < nb; b++) {
        let sb = 0;
        let mb = 0;
        for (let i = b * Q8_BLOCK; i < (b + 1) * Q8_BLOCK; i++) {
          const p = wf[n * K + i]! * qs[t * K + i]!;
          sb += p;
          mb += Math.abs(p);
        }
        s += d[t * nb + b]! * sb;
        m += d[t * nb + b]! * mb;
      }
      y[t * N + n] = s;
      mag[t * N + n] = m;
    }
  }
  return { y, mag };
}

/**
 * Per output, the bound on |Σ w·x − Σ w·(d·q)| that int8 rounding of x allows: each |x − d·q| is
 * at most half a step d/2 (times 1 + 1e-4 for the f32 rounding of 1/d and x·id), so
 *   bound[t, n] = Σ_b (d_b/2)(1 + 1e-4) Σ_{i∈b} |wf[n, i]|.
 */
export const Q8_HALF_STEP_SLACK = 1 + 1e-4;
export function q8RoundingBound(x: Float32Array, wf: Float32Array, N: number, K: number, T: number): Float64Array {
  const { d } = quantizeQ8Acts(x, T, K);
  const nb = K / Q8_BLOCK;
  const bound = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let b = 0; b < nb; b++) {
        let a = 0;
        for (let i = b * Q8_BLOCK; i < (b + 1) * Q8_BLOCK; i++) a += Math.abs(wf[n * K + i]!);
        s += (d[t * nb + b]! / 2) * Q8_HALF_STEP_SLACK * a;
      }
      bound[t * N + n] = s;
    }
  }
  return bound;
}
