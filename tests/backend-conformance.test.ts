/**
 * Backend conformance: ONE suite, run against every available backend — the reference backend,
 * and the native addon at every ISA level this CPU supports with 1, 2 (and 3) threads. Native
 * results are compared with the reference (src/backend/ref.ts, the spec) on awkward shapes;
 * every backend, ref included, must also satisfy properties that hold for any correct kernel
 * (layouts agree, accumulate adds, rotations compose, a single key is copied, …).
 * When the addon is not built, the native runs are skipped with a visible notice.
 *
 * Legend: T = rows, K = in features, N = out features, NH/NKV = heads, HS = head size.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, GemmLayout } from '../src/backend/types.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend, nativeLoadError, type NativeIsa } from '../src/backend/native.js';
import { matmulQ8Exact, q8RoundingBound, quantizeQ8Acts } from '../src/backend/q8act.js';
import { DTYPE_LAYOUT, f32ToBf16, f32ToF16, toFloat32, f32Tensor, type DType, type WeightTensor } from '../src/tensor.js';
import { quantizeTensor } from '../src/formats/quants.js';
import { selectBackend } from '../src/backend/select.js';
import { Llama2Error } from '../src/util/errors.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { rng, randn } from './helpers/random.js';
import { expectClose } from './helpers/compare.js';
import { kernelTargets } from './helpers/targets.js';

/** f32-accumulating kernels vs float64 ones, relative to Σ|terms| of each output. */
const F32_REL_TOL = 1e-5;
/** kernels that follow ref operation by operation (rmsnorm, rope), relative to the value's scale. */
const ELEMENTWISE_REL_TOL = 1e-6;
/** silu·mul with a float exp (~2 ulp) vs float64, relative to |value|, plus an absolute floor. */
const SWIGLU_REL_TOL = 1e-6;
const SWIGLU_ABS_FLOOR = 1e-30;
/** attention output vs float64, relative to max |v|. */
const ATTENTION_TOL = 1e-5;
/** int8 path vs its exact float64 value (same int8 activations), relative to Σ_b d_b Σ |w·q|. */
const INT8_EXACT_TOL = 1e-5;

// ---------------------------------------------------------------------------------------------
// targets

const targets = kernelTargets('backend', (_isa, last) => (last ? [1, 2, 3] : [1, 2]));

// ---------------------------------------------------------------------------------------------
// data and comparison helpers

/** Σ_k |op(A)[m,k]·op(B)[k,n]| for every (m, n): the scale of f32 rounding in a product. */
function absProduct(a: Float32Array, b: Float32Array, M: number, N: number, K: number, layout: GemmLayout): Float32Array {
  const out = new Float32Array(M * N);
  refBackend.gemm(out, a.map(Math.abs), b.map(Math.abs), M, N, K, layout, false);
  return out;
}

/** Random valid blocks of any dtype: random bytes with every f16 scale field set to a sane value. */
function randomBlocks(dtype: DType, N: number, K: number, seed: number): WeightTensor {
  const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
  const r = rng(seed);
  const data = new Uint8Array((N * K / blockSize) * typeSize);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
  const put16 = (p: number, h: number) => { data[p] = h & 0xff; data[p + 1] = h >> 8; };
  const scale = (lo: number, hi: number, signed: boolean) => (signed && r() < 0.5 ? -1 : 1) * (lo + (hi - lo) * r());
  const scaleFields: Partial<Record<DType, Array<[number, boolean]>>> = {
    Q4_0: [[0, true]], Q4_1: [[0, true], [2, true]], Q5_0: [[0, true]], Q5_1: [[0, true], [2, true]], Q8_0: [[0, true]],
    Q2_K: [[80, false], [82, false]], Q3_K: [[108, false]], Q4_K: [[0, false], [2, false]], Q5_K: [[0, false], [2, false]],
    Q6_K: [[208, false]],
  };
  if (dtype === 'F32') return f32Tensor(randn(N * K, seed), [N, K]);
  if (dtype === 'F16' || dtype === 'BF16') {
    const v = randn(N * K, seed);
    for (let i = 0; i < v.length; i++) put16(2 * i, dtype === 'F16' ? f32ToF16(v[i]!) : f32ToBf16(v[i]!));
  } else {
    for (let b = 0; b < data.length / typeSize; b++) {
      for (const [off, signed] of scaleFields[dtype]!) put16(b * typeSize + off, f32ToF16(scale(0.001, 0.05, signed)));
    }
  }
  return { dtype, shape: [N, K], data };
}

const ALL_DTYPES: DType[] = ['F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

/** Ks to try per dtype: not multiples of 16 for the float types, 1..3 blocks otherwise. */
function ksFor(dtype: DType): [number, number] {
  const bs = DTYPE_LAYOUT[dtype].blockSize;
  return bs === 1 ? [17, 33] : bs === 32 ? [32, 96] : [256, 512];
}

/** memoised reference results: computed once per case, shared by every target */
const memo = new Map<string, unknown>();
function once<V>(key: string, make: () => V): V {
  if (!memo.has(key)) memo.set(key, make());
  return memo.get(key) as V;
}

// ---------------------------------------------------------------------------------------------
// the suite

for (const tg of targets) {
  describe(`backend ${tg.name}`, () => {
    const be = tg.be;
    before(tg.setup);

    test('gemm: all layouts, accumulate on/off, awkward sizes', () => {
      const shapes: Array<[number, number, number]> = [[1, 1, 1], [7, 13, 5], [1, 33, 17], [37, 29, 700], [150, 70, 300], [6, 2100, 9], [64, 48, 0]];
      for (const [M, N, K] of shapes) {
        const A = randn(M * K, M * 1000 + K); // (M, K)
        const B = randn(K * N, N * 1000 + K + 1); // (K, N)
        const Bt = new Float32Array(N * K); // (N, K)
        const At = new Float32Array(K * M); // (K, M)
        for (let k = 0; k < K; k++) { for (let n = 0; n < N; n++) Bt[n * K + k] = B[k * N + n]!; for (let m = 0; m < M; m++) At[k * M + m] = A[m * K + k]!; }
        const c0 = randn(M * N, 7);
        const mag = absProduct(A, B, M, N, K, 'NN');
        const operands: Record<GemmLayout, [Float32Array, Float32Array]> = { NT: [A, Bt], NN: [A, B], TN: [At, B] };
        const results: Float32Array[] = [];
        for (const layout of ['NT', 'NN', 'TN'] as const) {
          for (const acc of [false, true]) {
            const [a, b] = operands[layout];
            const got = c0.slice();
            be.gemm(got, a, b, M, N, K, layout, acc);
            const what = `gemm ${layout} M=${M} N=${N} K=${K} acc=${acc}`;
            const tol = (i: number) => F32_REL_TOL * (mag[i]! + (acc ? Math.abs(c0[i]!) : 0)) + 1e-30;
            if (!tg.isRef) {
              const want = once(what, () => { const w = c0.slice(); refBackend.gemm(w, a, b, M, N, K, layout, acc); return w; });
              expectClose(`${what} vs ref`, got, want, tol);
            }
            if (acc) expectClose(`${what}: accumulate = C + product`, got, results[results.length - 1]!.map((v, i) => v + c0[i]!), (i) => 2 * tol(i));
            results.push(got);
          }
        }
        expectClose(`gemm M=${M} N=${N} K=${K}: NT = NN`, results[0]!, results[2]!, (i) => 2 * F32_REL_TOL * mag[i]! + 1e-30);
        expectClose(`gemm M=${M} N=${N} K=${K}: TN = NN`, results[4]!, results[2]!, (i) => 2 * F32_REL_TOL * mag[i]! + 1e-30);
      }
    });

    test('matmul: every weight dtype, T = 1 … 33, quantized and random blocks', () => {
      for (const dtype of ALL_DTYPES) {
        const [k1, k2] = ksFor(dtype);
        const cases: Array<[number, number, number]> = [[1, k1, 1], [5, k2, 2], [37, k1, 5], [13, k2, 9], [7, k1, 20], [160, 1536, 1], [9, 2304, 1], [40, 1536, 9], [11, k2, 33]];
        for (const [ci, [N, K, T]] of cases.entries()) {
          for (const source of ['quantized', 'random'] as const) {
            const key = `${dtype} N=${N} K=${K} T=${T} ${source}`;
            const c = once(key, () => {
              const w = source === 'random' ? randomBlocks(dtype, N, K, ci * 31 + 5) : quantizeTensor(dtype, randn(N * K, ci + 11, 0.05), [N, K]);
              const x = randn(T * K, ci + 101); // (T, K)
              const want = new Float32Array(T * N);
              refBackend.matmul(want, x, w, T);
              const wf = toFloat32(w); // (N, K)
              const mag = new Float32Array(T * N);
              refBackend.gemm(mag, x.map(Math.abs), wf.map(Math.abs), T, N, K, 'NT', false);
              return { w, x, want, wf, mag };
            });
            const got = new Float32Array(T * N);
            be.matmul(got, c.x, c.w, T);
            if (nativeBackend && !tg.isRef && nativeBackend.matmulUsesInt8(dtype, T)) {
              const ex = once(`${key} q8`, () => ({ ...matmulQ8Exact(c.x, c.wf, N, K, T), bound: q8RoundingBound(c.x, c.wf, N, K, T) }));
              expectClose(`matmul ${key}: int8 path vs its exact value`, got, ex.y, (i) => INT8_EXACT_TOL * ex.mag[i]! + 1e-30);
              expectClose(`matmul ${key}: int8 path vs ref within the int8 rounding bound`, got, c.want,
                (i) => ex.bound[i]! + F32_REL_TOL * c.mag[i]! + 1e-30);
            } else if (!tg.isRef) {
              expectClose(`matmul ${key} vs ref`, got, c.want, (i) => F32_REL_TOL * c.mag[i]! + 1e-30);
            }
            if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') {
              // property: the decoded weights as an F32 tensor give the same product; so does one row at a time
              const viaF32 = new Float32Array(T * N);
              be.matmul(viaF32, c.x, f32Tensor(c.wf, [N, K]), T);
              expectClose(`matmul ${key}: = matmul of the f32-decoded weight`, got, viaF32, (i) => 2 * F32_REL_TOL * c.mag[i]! + 1e-30);
              const row = new Float32Array(N);
              for (const t of [0, T - 1]) {
                be.matmul(row, c.x.subarray(t * K, (t + 1) * K), c.w, 1);
                expectClose(`matmul ${key}: row ${t} alone = row ${t} of the batch`, row, got.subarray(t * N, (t + 1) * N),
                  (i) => 2 * F32_REL_TOL * c.mag[t * N + i]! + 1e-30);
              }
            }
          }
        }
      }
    });

    test('matmul through the engine\'s regrouped layouts (Q4_0, Q8_0, Q4_K by eight rows) = the exact int8-path value', { skip: tg.isRef }, () => {
      const nb = nativeBackend!;
      for (const dtype of ['Q4_0', 'Q8_0', 'Q4_K'] as const) {
        const [k1, k2] = ksFor(dtype);
        // group pairs (two groups per 512-bit register under VNNI) with an odd group left over, and
        // token tiles of every width: 40 rows = 2 pairs + 1 group; T = 17 = 8 + 8 + 1 (Q4_K: 4·4 + 1)
        const cases: Array<[number, number, number]> = [[8, k1, 1], [16, k2, 2], [40, k1, 5], [24, k2, 9], [160, 1536, 1], [40, 1536, 9], [8, k2, 33],
          [40, k2, 17], [32, k1, 7]];
        for (const [ci, [N, K, T]] of cases.entries()) {
          for (const source of ['quantized', 'random'] as const) {
            const key = `${dtype} N=${N} K=${K} T=${T} ${source} regrouped`;
            const c = once(key, () => {
              const w = source === 'random' ? randomBlocks(dtype, N, K, ci * 31 + 7) : quantizeTensor(dtype, randn(N * K, ci + 13, 0.05), [N, K]);
              const x = randn(T * K, ci + 103); // (T, K)
              return { w, x, ex: matmulQ8Exact(x, toFloat32(w), N, K, T) };
            });
            const got = new Float32Array(T * N);
            nb.matmulRegrouped(got, c.x, c.w, T);
            expectClose(`matmulRegrouped ${key} vs its exact value`, got, c.ex.y, (i) => INT8_EXACT_TOL * c.ex.mag[i]! + 1e-30);
          }
        }
      }
      assert.throws(() => nb.matmulRegrouped(new Float32Array(12), new Float32Array(32), quantizeTensor('Q4_0', randn(12 * 32, 1), [12, 32]), 1), /multiple of 8/);
    });

    test('matmul: F32 weight bytes at an unaligned offset', () => {
      const N = 9, K = 21, T = 5;
      const wf = randn(N * K, 3);
      const bytes = new Uint8Array(N * K * 4 + 1);
      bytes.set(new Uint8Array(wf.buffer), 1);
      const w: WeightTensor = { dtype: 'F32', shape: [N, K], data: bytes.subarray(1) };
      const x = randn(T * K, 4);
      const mag = absProduct(x, wf, T, N, K, 'NT');
      for (const t of [1, T]) {
        const got = new Float32Array(t * N);
        const want = new Float32Array(t * N);
        be.matmul(got, x, w, t);
        refBackend.matmul(want, x, f32Tensor(wf, [N, K]), t);
        expectClose(`matmul unaligned F32 T=${t}`, got, want, (i) => F32_REL_TOL * mag[i]! + 1e-30);
      }
    });

    const nbk = tg.isRef ? null : nativeBackend;
    if (nbk) {
      test('int8 activation quantizer = q8act.ts spec, bit for bit (ties round to even)', () => {
        const x = randn(32 * 9, 77);
        x.fill(0, 32, 64); // an all-zero block
        for (let i = 0; i < 32; i++) x[64 + i] = (i % 2 ? -1 : 1) * (i + 0.5); // alternating signs
        for (let i = 0; i < 32; i++) x[96 + i] = i === 0 ? 127 : (i % 4) - 1.5 + Math.floor(i / 4); // amax 127 → d = 1: x.5 ties
        const spec = quantizeQ8Acts(x, 1, x.length);
        const d = new Float32Array(9), qs = new Int8Array(x.length), sums = new Int32Array(9);
        nbk.quantizeQ8(x, d, qs, sums);
        expectClose('q8 block scales', d, spec.d, () => 0);
        expectClose('q8 values', qs, spec.qs, () => 0);
        for (let b = 0; b < 9; b++) assert.equal(sums[b], spec.qs.subarray(b * 32, b * 32 + 32).reduce((s, v) => s + v, 0), `sum of block ${b}`);
      });
    }

    test('rmsnorm: rows, aliasing, unit rms', () => {
      for (const [T, C] of [[1, 1], [3, 7], [2, 288], [120, 300]] as const) {
        const x = randn(T * C, T * 7 + C, 3);
        const g = randn(C, C + 1);
        const got = new Float32Array(T * C);
        be.rmsnorm(got, x, g, T, 1e-5);
        const inPlace = x.slice();
        be.rmsnorm(inPlace, inPlace, g, T, 1e-5);
        expectClose(`rmsnorm T=${T} C=${C}: in place = out of place`, inPlace, got, () => 0);
        if (!tg.isRef) {
          const want = new Float32Array(T * C);
          refBackend.rmsnorm(want, x, g, T, 1e-5);
          expectClose(`rmsnorm T=${T} C=${C} vs ref`, got, want, (i) => ELEMENTWISE_REL_TOL * Math.abs(want[i]!) + 1e-30);
        }
        const unit = new Float32Array(T * C);
        be.rmsnorm(unit, x, new Float32Array(C).fill(1), T, 0);
        for (let t = 0; t < T; t++) {
          const ms = unit.subarray(t * C, (t + 1) * C).reduce((s, v) => s + v * v, 0) / C;
          assert.ok(Math.abs(ms - 1) < 1e-5, `rmsnorm T=${T} C=${C}: row ${t} has mean square ${ms}, want 1`);
        }
      }
    });

    test('rope: vs ref, identity at 0, rotations compose, norms kept', () => {
      const cases: Array<[number, number, number, number[], number]> = [
        [1, 1, 2, [0], 10000], [5, 3, 8, [0, 1, 2, 100, 4000], 10000],
        [80, 8, 64, Array.from({ length: 80 }, (_, i) => 100 + i), 10000], [2, 4, 48, [7, 7], 500000],
      ];
      for (const [T, NH, HS, posArr, theta] of cases) {
        const pos = Int32Array.from(posArr);
        const x = randn(T * NH * HS, T + NH + HS);
        const got = x.slice();
        be.rope(got, T, NH, HS, pos, theta);
        const pairTol = (v: Float32Array) => (i: number) => ELEMENTWISE_REL_TOL * Math.hypot(v[i & ~1]!, v[i | 1]!) + 1e-30;
        if (!tg.isRef) {
          const want = x.slice();
          refBackend.rope(want, T, NH, HS, pos, theta);
          expectClose(`rope T=${T} NH=${NH} HS=${HS} vs ref`, got, want, pairTol(x));
        }
        for (let i = 0; i < x.length; i += 2) {
          const before0 = Math.hypot(x[i]!, x[i + 1]!), after = Math.hypot(got[i]!, got[i + 1]!);
          assert.ok(Math.abs(after - before0) <= 1e-6 * before0 + 1e-30, `rope: pair ${i / 2} norm ${before0} became ${after}`);
        }
        const zero = x.slice();
        be.rope(zero, T, NH, HS, new Int32Array(T), theta);
        expectClose('rope at position 0 is the identity', zero, x, pairTol(x));
        const twice = x.slice(); // rotate by 3 then by pos - 3 = rotate by pos (angles add)
        be.rope(twice, T, NH, HS, new Int32Array(T).fill(3), theta);
        be.rope(twice, T, NH, HS, pos.map((p) => Math.max(0, p - 3)), theta);
        const direct = x.slice();
        be.rope(direct, T, NH, HS, pos.map((p) => Math.max(0, p - 3) + 3), theta);
        expectClose(`rope T=${T} HS=${HS}: rotations compose`, twice, direct, (i) => 1e-5 * Math.hypot(x[i & ~1]!, x[i | 1]!) + 1e-30);
      }
    });

    test('attention: GQA 1/2/8, T = 1 and prefill, vs ref and against itself', () => {
      const cases: Array<[number, number, number, number, number]> = [ // T, pos0, NH, NKV, HS
        [1, 0, 4, 4, 8], [1, 5, 4, 2, 16], [1, 40, 8, 1, 48], [7, 0, 8, 8, 8], [7, 3, 8, 2, 48], [5, 20, 16, 2, 64], [3, 0, 2, 1, 1],
        // prefill through the native blocked path (T ≥ 16): partial last blocks, cached prefixes
        [16, 0, 4, 2, 8], [45, 0, 6, 6, 48], [70, 9, 8, 2, 64], [33, 100, 4, 1, 16],
      ];
      for (const [T, pos0, NH, NKV, HS] of cases) {
        const S = pos0 + T;
        const q = randn(T * NH * HS, T + NH, 2); // (T, NH*HS), large enough for peaked softmaxes
        const k = randn(S * NKV * HS, S + 1); // (S, NKV*HS)
        const v = randn(S * NKV * HS, S + 2);
        const vmax = v.reduce((m, a) => Math.max(m, Math.abs(a)), 0);
        const got = new Float32Array(T * NH * HS);
        be.attention(got, q, k, v, T, pos0, NH, NKV, HS);
        const what = `attention T=${T} pos0=${pos0} NH=${NH} NKV=${NKV} HS=${HS}`;
        if (!tg.isRef) {
          const want = new Float32Array(T * NH * HS);
          refBackend.attention(want, q, k, v, T, pos0, NH, NKV, HS);
          expectClose(`${what} vs ref`, got, want, () => ATTENTION_TOL * vmax);
        }
        const one = new Float32Array(NH * HS); // each prefill row = the same query decoded alone
        for (const t of [0, T - 1]) {
          be.attention(one, q.subarray(t * NH * HS), k, v, 1, pos0 + t, NH, NKV, HS);
          expectClose(`${what}: row ${t} = decode at ${pos0 + t}`, one, got.subarray(t * NH * HS, (t + 1) * NH * HS), () => ATTENTION_TOL * vmax);
        }
        if (pos0 === 0) { // the first query sees one key: its output is v[0] of its kv head
          for (let h = 0; h < NH; h++) {
            const kv = Math.floor(h / (NH / NKV));
            expectClose(`${what}: head ${h} at position 0 copies v`, got.subarray(h * HS, (h + 1) * HS), v.subarray(kv * HS, (kv + 1) * HS), () => 1e-6 * vmax);
          }
        }
      }
    });

    test('swiglu: vs the formula, including extreme gates', () => {
      for (const n of [1, 7, 1000, 70000]) {
        const g = randn(n, n, 4);
        if (n >= 7) g.set([0, 90, -90, 100, -100, 1e-8, -1e-8]);
        const u = randn(n, n + 1);
        const got = g.slice();
        be.swiglu(got, u, n);
        const want = g.map((a, i) => (a / (1 + Math.exp(-a))) * u[i]!);
        expectClose(`swiglu n=${n}`, got, want, (i) => SWIGLU_REL_TOL * Math.abs(want[i]!) + SWIGLU_ABS_FLOOR);
      }
    });

    test('add: exact', () => {
      for (const n of [1, 7, 1000, 70001]) {
        const x = randn(n, n), y = randn(n, n + 3);
        const got = x.slice();
        be.add(got, y, n);
        expectClose(`add n=${n}`, got, x.map((a, i) => a + y[i]!), () => 0);
      }
    });

    test('embedding: every dtype decodes exactly like the reference decoder', () => {
      for (const dtype of ALL_DTYPES) {
        const C = ksFor(dtype)[1];
        const V = 11;
        for (const source of ['quantized', 'random'] as const) {
          const table = source === 'random' ? randomBlocks(dtype, V, C, 9) : quantizeTensor(dtype, randn(V * C, 10), [V, C]);
          const ids = Int32Array.from([0, 10, 3, 3, 7]);
          const got = new Float32Array(ids.length * C);
          be.embedding(got, table, ids);
          const all = toFloat32(table); // (V, C)
          const want = new Float32Array(ids.length * C);
          ids.forEach((id, t) => want.set(all.subarray(id * C, (id + 1) * C), t * C));
          expectClose(`embedding ${dtype} ${source}`, got, want, () => 0);
        }
        assert.throws(() => be.embedding(new Float32Array(C), randomBlocks(dtype, V, C, 1), Int32Array.from([V])), RangeError);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// backend selection and the addon's extras

describe('selectBackend and native extras', () => {
  const saved = process.env['LLAMA2_BACKEND'];
  const withEnv = <V>(v: string | undefined, fn: () => V): V => {
    if (v === undefined) delete process.env['LLAMA2_BACKEND']; else process.env['LLAMA2_BACKEND'] = v;
    try { return fn(); } finally { if (saved === undefined) delete process.env['LLAMA2_BACKEND']; else process.env['LLAMA2_BACKEND'] = saved; }
  };

  test('LLAMA2_BACKEND=ref|native|<other>, default, and the threads option', () => {
    assert.equal(withEnv('ref', () => selectBackend()), refBackend);
    assert.throws(() => withEnv('gpu', () => selectBackend()), (e) => e instanceof Llama2Error && /LLAMA2_BACKEND.*"gpu"/.test(e.message));
    assert.throws(() => withEnv('ref', () => selectBackend({ threads: 0 })), Llama2Error);
    if (nativeBackend) {
      assert.equal(withEnv('native', () => selectBackend({ threads: 1 })), nativeBackend);
      assert.equal(nativeBackend.threads(), 1);
      assert.equal(withEnv(undefined, () => selectBackend({ threads: 2 })), nativeBackend);
      assert.equal(nativeBackend.threads(), 2);
    } else {
      assert.throws(() => withEnv('native', () => selectBackend()), (e) => e instanceof Llama2Error && e.message.includes(String(nativeLoadError)));
      assert.equal(withEnv(undefined, () => selectBackend()), refBackend);
    }
  });

  test('native: mmapFile maps a file without copying it, errors name the file', { skip: nativeBackend ? false : 'native addon not loaded' }, () => {
    const nb = nativeBackend!;
    const path = fileURLToPath(import.meta.url); // this test file (compiled or not) is a handy file to map
    const mapped = new Uint8Array(nb.mmapFile(path));
    assert.deepEqual(mapped, new Uint8Array(readFileSync(path)));
    assert.throws(() => nb.mmapFile(path + '.does-not-exist'), /mmapFile .*does-not-exist: cannot open/);
  });

  test('native: argument checks throw instead of touching memory out of bounds', { skip: nativeBackend ? false : 'native addon not loaded' }, () => {
    const nb = nativeBackend!;
    assert.throws(() => nb.gemm(new Float32Array(3), new Float32Array(4), new Float32Array(4), 2, 2, 2, 'NN', false), /gemm: c has 3 elements, needs M\*N = 4/);
    assert.throws(() => nb.matmul(new Float32Array(2), new Float32Array(32), { dtype: 'Q8_0', shape: [2, 32], data: new Uint8Array(33) }, 1), /matmul: w has 33 elements/);
    assert.throws(() => nb.matmul(new Float32Array(2), new Float32Array(33), { dtype: 'Q8_0', shape: [1, 33], data: new Uint8Array(34) }, 1), /not a multiple of the block size 32/);
    assert.throws(() => nb.attention(new Float32Array(8), new Float32Array(8), new Float32Array(8), new Float32Array(8), 1, 0, 3, 2, 2), /not a multiple of 2 kv heads/);
    assert.throws(() => nb.rope(new Float32Array(4), 1, 1, 4, Int32Array.from([-1]), 10000), RangeError);
    assert.throws(() => nb.setThreads(0), RangeError);
    assert.throws(() => nb.setIsa('sse9' as NativeIsa), /unknown ISA/);
  });
});
