/**
 * Conformance of the training kernels (the "training kernels" of src/backend/types.ts) and of the
 * GEMM shapes training uses, on every available backend: the reference (src/backend/ref.ts, the
 * spec) and the native addon at every ISA level this CPU supports with 1, 2 and 3 threads.
 * Native results are compared with the reference on awkward shapes (odd sizes, one row, several
 * attention blocks, GQA, null gradients); AdamW must match it bit for bit. Every backend must also
 * satisfy properties any correct kernel has (gradient rows of a softmax sum to zero, rotations
 * invert, the training attention agrees with the inference one). Native results must be
 * bit-identical across thread counts, down to whole training steps (resumed runs compare losses
 * exactly). When the addon is not built, the native runs are skipped with a notice.
 *
 * Legend: R = rows, V = vocab, T = positions, C = width, NH/NKV = heads, HS = head size.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { AttnShape, Backend, GemmLayout } from '../src/backend/types.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend } from '../src/backend/native.js';
import { makeConfig } from '../src/model/config.js';
import { Tape } from '../src/train/tape.js';
import { initModelWeights, zeroGrads } from '../src/train/params.js';
import { lmLoss, trainModel } from '../src/train/model.js';
import { AdamW, clipCoefficient } from '../src/train/optim.js';
import { rng, randn } from './helpers/random.js';
import { expectClose, maxAbs } from './helpers/compare.js';
import { kernelTargets } from './helpers/targets.js';

/** f32 kernels vs the float64 reference, relative to the scale of the terms. */
const F32_REL_TOL = 2e-5;
/** a vectorised exp (~2 ulp) vs Math.exp, relative. */
const EXP_REL_TOL = 1e-6;
/** attention gradients (f32 products over T·HS terms) vs float64, relative to the largest gradient. */
const ATTN_GRAD_TOL = 1e-4;

const targets = kernelTargets('training kernels', () => [1, 2, 3]);

/** `fn` run on the reference backend (the expected values), once per key for all targets */
const memo = new Map<string, unknown>();
function ref<T>(key: string, fn: (be: Backend) => T): T {
  if (!memo.has(key)) memo.set(key, fn(refBackend));
  return memo.get(key) as T;
}

const ATTN_SHAPES: AttnShape[] = [
  { B: 1, T: 1, NH: 1, NKV: 1, HS: 2 },
  { B: 2, T: 5, NH: 4, NKV: 2, HS: 8 },
  { B: 1, T: 70, NH: 2, NKV: 1, HS: 16 },
  { B: 2, T: 130, NH: 3, NKV: 3, HS: 10 },
];

for (const tg of targets) {
  describe(`training kernels on ${tg.name}`, () => {
    const be = tg.be;
    before(tg.setup);

    test('xentForward / xentBackward: vs ref, huge logits, zero and negative coefficients, rows sum to 0', () => {
      for (const [R, V, scale] of [[1, 1, 1], [3, 7, 1], [5, 33, 30], [4, 1000, 3], [64, 2000, 1]] as const) {
        const x0 = randn(R * V, R * 31 + V, scale);
        if (R > 2) for (let v = 0; v < V; v++) x0[2 * V + v] = 1e4 * Math.sin(v); // |logits| up to 1e4
        const targets = Int32Array.from({ length: R }, (_, r) => (r * 7919) % V);
        const coef = Float64Array.from({ length: R }, (_, r) => (r === 1 ? 0 : r % 3 === 2 ? -0.5 : 1 / R));
        const run = (b: Backend) => {
          const x = x0.slice();
          const nll = new Float32Array(R);
          const inv = new Float64Array(R);
          b.xentForward(x, targets, nll, inv, V);
          const exps = x.slice();
          b.xentBackward(x, inv, targets, coef, V);
          return { nll, inv, exps, grad: x };
        };
        const got = run(be);
        const what = `xent R=${R} V=${V}`;
        const want = ref(what, run);
        expectClose(`${what} nll`, got.nll, want.nll, (i) => 1e-6 * (1 + Math.abs(want.nll[i]!)));
        expectClose(`${what} inv`, got.inv, want.inv, (i) => 1e-5 * want.inv[i]!);
        expectClose(`${what} exps`, got.exps, want.exps, (i) => EXP_REL_TOL * want.exps[i]! + 1e-12);
        expectClose(`${what} grad`, got.grad, want.grad, (i) => 2e-6 * Math.abs(coef[Math.floor(i / V)]!) + 1e-12);
        for (let r = 0; r < R; r++) {
          let s = 0;
          for (let v = 0; v < V; v++) s += got.grad[r * V + v]!;
          assert.ok(Math.abs(s) <= 1e-5 * Math.abs(coef[r]!) + 1e-12, `${what}: row ${r} of the gradient sums to ${s}`);
        }
      }
    });

    test('adamw: bit-identical to the reference (float64 arithmetic), decayed or not', () => {
      for (const n of [1, 3, 4, 5, 1001, 70001]) {
        for (const decay of [1, 1 - 3e-4 * 0.1]) {
          const w0 = randn(n, n, 0.02);
          const g = randn(n, n + 1, 1e-3);
          g[0] = 0;
          const m0 = randn(n, n + 2, 1e-4);
          const v0 = randn(n, n + 3, 1e-4).map((x) => x * x);
          const u = { decay, beta1: 0.9, c1: 0.1 * 0.7, beta2: 0.95, c2: 0.05 * 0.49, stepSize: 3e-4 / (1 - 0.9 ** 3), invSqrtBc2: 1 / Math.sqrt(1 - 0.95 ** 3), eps: 1e-8 };
          const run = (b: Backend) => {
            const w = w0.slice();
            const m = m0.slice();
            const v = v0.slice();
            b.adamw(w, g, m, v, u);
            return { w, m, v };
          };
          assert.deepEqual(run(be), ref(`adamw ${n} ${decay}`, run), `adamw n=${n} decay=${decay}`);
        }
      }
    });

    test('sumSquares: vs float64 over lengths that cross the reduction blocks', () => {
      for (const n of [0, 1, 5, 65536 * 2 + 3]) {
        const x = randn(n, n + 9, 3);
        const want = ref(`sumsq ${n}`, (b) => b.sumSquares(x));
        const got = be.sumSquares(x);
        assert.ok(Math.abs(got - want) <= 1e-12 * want, `sumSquares n=${n}: ${got} vs ${want}`);
      }
    });

    test('rmsnormBackward: vs ref, dx / dg null, rows near eps', () => {
      for (const [T, C] of [[1, 5], [3, 288], [130, 33]] as const) {
        const x = randn(T * C, T + C);
        for (let i = 0; i < C; i++) x[i] = x[i]! * 1e-4; // first row near eps
        const g = randn(C, C, 0.5).map((v) => 1 + v);
        const dy = randn(T * C, T * C);
        for (const [wantDx, wantDg] of [[true, true], [true, false], [false, true]]) {
          const run = (b: Backend) => {
            const dx = wantDx ? randn(T * C, 5) : null;
            const dg = wantDg ? randn(C, 6) : null;
            b.rmsnormBackward(dx, dg, dy, x, g, T, 1e-5);
            return { dx, dg };
          };
          const got = run(be);
          const want = ref(`rmsnorm ${T} ${C} ${wantDx} ${wantDg}`, run);
          if (want.dx) {
            const tol = F32_REL_TOL * (1 + maxAbs(want.dx));
            expectClose(`rmsnorm T=${T} C=${C} dx`, got.dx!, want.dx, () => tol);
          }
          if (want.dg) {
            const tol = F32_REL_TOL * (1 + maxAbs(want.dg));
            expectClose(`rmsnorm T=${T} C=${C} dg`, got.dg!, want.dg, () => tol);
          }
        }
      }
    });

    test('swigluForward / swigluBackward: vs ref, saturated gates, null gradients', () => {
      for (const n of [1, 7, 8, 9, 100003]) {
        const a = randn(n, n, 4);
        if (n > 2) { a[0] = 100; a[1] = -100; }
        const b = randn(n, n + 1);
        const dh = randn(n, n + 2);
        const h = new Float32Array(n);
        const hr = new Float32Array(n);
        be.swigluForward(h, a, b, n);
        refBackend.swigluForward(hr, a, b, n); // cheap: not memoised
        expectClose(`swiglu n=${n}`, h, hr, (i) => 1e-6 * Math.abs(hr[i]!) + 1e-30);
        for (const [wa, wb] of [[true, true], [true, false], [false, true]]) {
          const run = (bk: Backend) => {
            const da = wa ? randn(n, 11) : null;
            const db = wb ? randn(n, 12) : null;
            bk.swigluBackward(da, db, dh, a, b, n);
            return { da, db };
          };
          const got = run(be);
          const want = ref(`swiglu ${n} ${wa} ${wb}`, run);
          if (want.da) expectClose(`swiglu n=${n} da`, got.da!, want.da, (i) => 1e-6 * (1 + Math.abs(want.da![i]!)));
          if (want.db) expectClose(`swiglu n=${n} db`, got.db!, want.db, (i) => 1e-6 * (1 + Math.abs(want.db![i]!)));
        }
      }
    });

    test('ropeRotate: vs ref and the inference rope, inverse undoes it, accumulate adds', () => {
      const T = 9;
      const NH = 3;
      const HS = 8;
      const x = randn(T * NH * HS, 77);
      const pos = Int32Array.from({ length: T }, (_, t) => (t * 37) % 500);
      const y = new Float32Array(x.length);
      be.ropeRotate(y, x, T, NH, HS, pos, 1e4, false, false);
      const yr = ref('rope', (b) => { const o = new Float32Array(x.length); b.ropeRotate(o, x, T, NH, HS, pos, 1e4, false, false); return o; });
      expectClose('rope vs ref', y, yr, () => 1e-6);
      const inPlace = x.slice();
      be.rope(inPlace, T, NH, HS, pos, 1e4);
      expectClose('rope vs inference rope', y, inPlace, () => 1e-6);
      const back = y.slice();
      be.ropeRotate(back, back, T, NH, HS, pos, 1e4, true, false);
      expectClose('inverse(rope(x)) = x', back, x, () => 1e-5);
      const acc = x.slice();
      be.ropeRotate(acc, y, T, NH, HS, pos, 1e4, true, true);
      expectClose('accumulate: x + inverse(rope(x)) = 2x', acc, x.map((v) => 2 * v), () => 2e-5);
    });

    test('attentionTrain: vs ref and vs the inference attention per sequence, lse', () => {
      for (const s of ATTN_SHAPES) {
        const { B, T, NH, NKV, HS } = s;
        const q = randn(B * T * NH * HS, T + 1);
        const k = randn(B * T * NKV * HS, T + 2);
        const v = randn(B * T * NKV * HS, T + 3);
        const run = (b: Backend) => {
          const out = new Float32Array(q.length);
          const lse = new Float32Array(B * NH * T);
          b.attentionTrain(out, lse, q, k, v, s);
          return { out, lse };
        };
        const got = run(be);
        const want = ref(`attention ${JSON.stringify(s)}`, run);
        const what = `attention B=${B} T=${T} NH=${NH} NKV=${NKV} HS=${HS}`;
        const tol = 1e-5 * maxAbs(v);
        expectClose(`${what} out`, got.out, want.out, () => tol);
        expectClose(`${what} lse`, got.lse, want.lse, (i) => 1e-6 * (1 + Math.abs(want.lse[i]!)));
        const qn = T * NH * HS;
        const kn = T * NKV * HS;
        for (let b = 0; b < B; b++) {
          const inf = new Float32Array(qn);
          be.attention(inf, q.subarray(b * qn, (b + 1) * qn), k.subarray(b * kn, (b + 1) * kn), v.subarray(b * kn, (b + 1) * kn), T, 0, NH, NKV, HS);
          expectClose(`${what} vs inference attention, sequence ${b}`, got.out.subarray(b * qn, (b + 1) * qn), inf, () => tol);
        }
      }
    });

    test('attentionTrainBackward: vs ref for every null pattern of dq / dk / dv', () => {
      for (const s of ATTN_SHAPES) {
        const { B, T, NH, NKV, HS } = s;
        const q = randn(B * T * NH * HS, T + 11);
        const k = randn(B * T * NKV * HS, T + 12);
        const v = randn(B * T * NKV * HS, T + 13);
        const dout = randn(q.length, T + 14);
        const fwd = ref(`attention ${JSON.stringify(s)} bwd input`, (b) => {
          const out = new Float32Array(q.length);
          const lse = new Float32Array(B * NH * T);
          b.attentionTrain(out, lse, q, k, v, s);
          return { out, lse };
        });
        for (const mask of [[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]) {
          const run = (b: Backend) => {
            const g = [randn(q.length, 21), randn(k.length, 22), randn(v.length, 23)];
            const [dq, dk, dv] = g.map((x, i) => (mask[i] ? x : null));
            b.attentionTrainBackward(dq!, dk!, dv!, dout, q, k, v, fwd.out, fwd.lse, s);
            return [dq, dk, dv];
          };
          const got = run(be);
          const want = ref(`attention backward ${JSON.stringify(s)} ${mask}`, run);
          for (let i = 0; i < 3; i++) {
            if (!want[i]) continue;
            const scale = maxAbs(want[i]!);
            expectClose(`attention backward B=${B} T=${T} NH=${NH} NKV=${NKV} ${['dq', 'dk', 'dv'][i]}`, got[i]!, want[i]!, () => ATTN_GRAD_TOL * scale);
          }
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// the GEMM shapes of training and thread-count independence (native only)

const nb = nativeBackend;
describe('native: GEMM training paths and bit-identical results across thread counts', { skip: nb ? false : 'native addon not loaded' }, () => {
  /** C[m, n] of op(A)·op(B) in float64 (a sample of outputs) */
  function entry(a: Float32Array, b: Float32Array, M: number, N: number, K: number, layout: GemmLayout, m: number, n: number): { v: number; mag: number } {
    const [am, ak] = layout === 'TN' ? [1, M] : [K, 1];
    const [bk, bn] = layout === 'NT' ? [1, K] : [N, 1];
    let v = 0;
    let mag = 0;
    for (let k = 0; k < K; k++) {
      const p = a[m * am + k * ak]! * b[k * bk + n * bn]!;
      v += p;
      mag += Math.abs(p);
    }
    return { v, mag };
  }

  test('gemm: row and column chunks, shared and per-chunk packing, several K slices', () => {
    const shapes: [number, number, number][] = [[50, 3000, 40], [300, 37, 1500], [24, 80, 40000], [256, 288, 288], [7, 5000, 300]];
    for (const [M, N, K] of shapes) {
      const a = randn(M * K, M + K); // read as (M, K) or (K, M) by the layout
      const b = randn(K * N, N + K); // (K, N) or (N, K)
      const c0 = randn(M * N, 3);
      for (const layout of ['NT', 'NN', 'TN'] as const) {
        const results: Float32Array[] = [];
        for (const th of [1, 2, 3]) {
          nb!.setThreads(th);
          const c = c0.slice();
          nb!.gemm(c, a, b, M, N, K, layout, true);
          results.push(c);
        }
        assert.deepEqual(results[1], results[0], `gemm ${layout} ${M}x${N}x${K}: 2 threads differ from 1`);
        assert.deepEqual(results[2], results[0], `gemm ${layout} ${M}x${N}x${K}: 3 threads differ from 1`);
        const r = rng(M * N);
        for (let s = 0; s < 64; s++) {
          const m = Math.floor(r() * M);
          const n = Math.floor(r() * N);
          const e = entry(a, b, M, N, K, layout, m, n);
          const got = results[0]![m * N + n]!;
          const want = c0[m * N + n]! + e.v;
          assert.ok(Math.abs(got - want) <= F32_REL_TOL * (e.mag + Math.abs(c0[m * N + n]!)), `gemm ${layout} ${M}x${N}x${K} C[${m}, ${n}] = ${got}, want ${want}`);
        }
      }
    }
  });

  test('training steps: identical losses and weights with 1, 2 and 3 threads, and run to run', () => {
    const cfg = makeConfig({ dim: 48, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 300, multiple_of: 16, max_seq_len: 80 });
    const B = 3;
    const T = 70;
    const r = rng(5);
    const x = Int32Array.from({ length: B * T }, () => Math.floor(r() * cfg.vocab_size));
    const y = Int32Array.from({ length: B * T }, () => Math.floor(r() * cfg.vocab_size));
    const run = (threads: number) => {
      nb!.setThreads(threads);
      const m = trainModel(cfg, initModelWeights(cfg, 9));
      const opt = new AdamW(m.params, { lr: 1e-3 }, nb!);
      const tape = new Tape(nb!);
      const losses: number[] = [];
      for (let step = 0; step < 3; step++) {
        tape.reset();
        zeroGrads(m.params);
        const l = lmLoss(tape, m, x, y, B, T);
        losses.push(l.value);
        tape.backward(l.loss);
        opt.step(undefined, clipCoefficient(m.params, 1.0, nb!).coef);
      }
      return { losses, weights: m.params.map((p) => Float32Array.from(p.f32)) };
    };
    const one = run(1);
    for (const th of [1, 2, 3]) {
      const other = run(th);
      assert.deepEqual(other.losses, one.losses, `losses with ${th} threads: ${other.losses} vs ${one.losses}`);
      other.weights.forEach((w, i) => assert.deepEqual(w, one.weights[i], `weights of parameter ${i} with ${th} threads`));
    }
  });
});
