/**
 * Gradient checks of every fused training op: the analytic backward (float32, on the reference
 * backend) against central finite differences of an independent, naive float64 forward written
 * here. Each check differentiates L = Σ R ⊙ op(inputs) for a random R, on tiny shapes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tape, leafVar, type Var } from '../src/train/tape.js';
import { add, attention, embedding, linear, rmsnorm, rope, swiglu } from '../src/train/ops.js';
import { crossEntropy, tokenLogprobs, weightedSum } from '../src/train/loss.js';
import { lastTokenScores, rankingLoss } from '../src/train/reward.js';
import { uniform as makeRng } from '../src/util/rng.js';
import { gradMetric } from './helpers/oracle-metrics.js';
import { attention64, linear64, logprobs64, rmsnorm64, rope64 } from './helpers/float64-ops.js';

/** analytic (float32) vs finite differences (float64): max |diff| / max |fd| */
const TOL_FD = 1e-4;
const H = 1e-6;

const rand = makeRng(12345);
function randn(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * (rand() + rand() + rand() - 1.5) * 2;
  return a;
}

/**
 * Checks d/d(inputs) of Σ R·f(inputs) where `f64` recomputes the op in float64 from the inputs
 * and `build` runs the op on a tape; returns the worst metric.
 */
function check(
  what: string, shaped: (Float32Array | [Float32Array, number[]])[], build: (tape: Tape, xs: Var[]) => Var,
  f64: (xs: Float64Array[]) => ArrayLike<number>,
): number {
  const tape = new Tape();
  const inputs = shaped.map((s) => (Array.isArray(s) ? s[0] : s));
  const xs = shaped.map((s) => (Array.isArray(s) ? leafVar(Float32Array.from(s[0]), s[1]) : leafVar(Float32Array.from(s), [s.length])));
  const out = build(tape, xs);
  const R = Float64Array.from(randn(out.data.length));
  tape.backward(weightedSum(tape, out, R).loss);
  const base = inputs.map((d) => Float64Array.from(d));
  const L = (ys: Float64Array[]): number => {
    const o = f64(ys);
    let s = 0;
    for (let i = 0; i < R.length; i++) s += R[i]! * o[i]!;
    return s;
  };
  // the float64 forward must agree with the op's own forward
  const fo = f64(base);
  const fwd = gradMetric(out.data, fo);
  assert.ok(fwd.metric <= 1e-5, `${what}: forward differs from the float64 one: ${fwd.metric} at ${fwd.at}`);
  let worst = 0;
  inputs.forEach((d, i) => {
    const fd = new Float64Array(d.length);
    for (let j = 0; j < d.length; j++) {
      const ys = base.map((b) => Float64Array.from(b));
      ys[i]![j] = base[i]![j]! + H;
      const lp = L(ys);
      ys[i]![j] = base[i]![j]! - H;
      fd[j] = (lp - L(ys)) / (2 * H);
    }
    const g = xs[i]!.grad ?? new Float32Array(d.length);
    const m = gradMetric(g, fd);
    worst = Math.max(worst, m.metric);
    assert.ok(m.metric <= TOL_FD, `${what}: input ${i} gradient metric ${m.metric} at ${m.at} (analytic ${g[m.at]}, fd ${fd[m.at]})`);
  });
  return worst;
}

// ---- the checks

test('grad check: linear (input and weight)', () => {
  check('linear', [[randn(3 * 5), [3, 5]], [randn(4 * 5), [4, 5]]], (t, [x, w]) => linear(t, x!, w!),
    ([x, w]) => linear64(x!, w!, 5));
});

test('grad check: embedding (table rows, repeated ids)', () => {
  const ids = Int32Array.from([2, 0, 2, 3]);
  check('embedding', [[randn(5 * 3), [5, 3]]], (t, [tab]) => embedding(t, tab!, ids),
    ([tab]) => Float64Array.from({ length: ids.length * 3 }, (_, i) => tab![ids[Math.floor(i / 3)]! * 3 + (i % 3)]!));
});

test('grad check: rmsnorm (input and weight), normal rows and rows near eps', () => {
  for (const scale of [1, 3e-3]) {
    check(`rmsnorm x${scale}`, [[randn(4 * 6, scale), [4, 6]], randn(6)], (t, [x, g]) => rmsnorm(t, x!, g!, 1e-5),
      ([x, g]) => rmsnorm64(x!, g!, 1e-5));
  }
});

test('grad check: rope (Meta layout pairs, two heads, theta 1e4 and 1e6)', () => {
  const pos = Int32Array.from([0, 1, 5, 300]);
  for (const theta of [1e4, 1e6]) {
    check(`rope ${theta}`, [[randn(4 * 2 * 6), [4, 12]]], (t, [x]) => rope(t, x!, 2, 6, pos, theta),
      ([x]) => rope64(x!, 2, 6, pos, theta));
  }
});

test('grad check: causal attention, MHA and GQA (query head h reads kv head h // rep), B = 2', () => {
  for (const [NH, NKV] of [[2, 2], [4, 2], [3, 1]] as const) {
    const B = 2, T = 5, HS = 4;
    check(`attention ${NH}/${NKV}`, [randn(B * T * NH * HS), randn(B * T * NKV * HS), randn(B * T * NKV * HS)],
      (t, [q, k, v]) => attention(t, q!, k!, v!, { B, T, NH, NKV, HS }),
      ([q, k, v]) => attention64(q!, k!, v!, B, T, NH, NKV, HS));
  }
});

test('grad check: packed (block-diagonal causal) attention: segments of 1, 2 and 3, padding, GQA', () => {
  // row 0: segments [0,1) [1,3) [3,6) [6,7); row 1: [0,3) [3,4) [4,7)
  const starts = Int32Array.from([0, 1, 1, 3, 3, 3, 6, 0, 0, 0, 3, 4, 4, 4]);
  for (const [NH, NKV] of [[2, 2], [4, 2]] as const) {
    const B = 2, T = 7, HS = 4;
    check(`packed attention ${NH}/${NKV}`, [randn(B * T * NH * HS), randn(B * T * NKV * HS), randn(B * T * NKV * HS)],
      (t, [q, k, v]) => attention(t, q!, k!, v!, { B, T, NH, NKV, HS, starts }),
      ([q, k, v]) => attention64(q!, k!, v!, B, T, NH, NKV, HS, starts));
  }
});

test('grad check: swiglu and residual add (including x + x)', () => {
  check('swiglu', [randn(12, 3), randn(12)], (t, [a, b]) => swiglu(t, a!, b!),
    ([a, b]) => a!.map((z, i) => (z / (1 + Math.exp(-z))) * b![i]!));
  check('add', [randn(7), randn(7)], (t, [a, b]) => add(t, a!, b!), ([a, b]) => a!.map((z, i) => z + b![i]!));
  check('add self', [randn(7)], (t, [a]) => add(t, a!, a!), ([a]) => a!.map((z) => 2 * z));
  // a chain where one add's gradient buffer is handed on: (a + b) + a
  check('add chain', [randn(5), randn(5)], (t, [a, b]) => add(t, add(t, a!, b!), a!), ([a, b]) => a!.map((z, i) => 2 * z + b![i]!));
});

test('grad check: cross-entropy (plain, masked; consumed, in place and not), token log-probs', () => {
  const N = 4, V = 6;
  const tg = Int32Array.from([1, 5, 0, 1]);
  const mask = [1, 0, 1, 1];
  const ce64 = (x: Float64Array, w: number[]) => {
    const lp = logprobs64(x, tg, V);
    let s = 0;
    for (let n = 0; n < N; n++) s -= w[n]! * lp[n]!;
    return [s / w.reduce((a, z) => a + z, 0)];
  };
  for (const m of [undefined, mask]) {
    // logits from a linear layer: the loss is their only reader, so backward overwrites them
    check(`ce mask=${!!m} in place`, [[randn(N * 3), [N, 3]], [randn(V * 3), [V, 3]]],
      (t, [x, w]) => crossEntropy(t, linear(t, x!, w!), tg, m).loss,
      ([x, w]) => ce64(linear64(x!, w!, 3), m ?? [1, 1, 1, 1]));
    // logits consumed by the loss from the forward on (what lmLoss does)
    check(`ce mask=${!!m} consumed`, [[randn(N * 3), [N, 3]], [randn(V * 3), [V, 3]]],
      (t, [x, w]) => crossEntropy(t, linear(t, x!, w!), tg, m, { consumeLogits: true }).loss,
      ([x, w]) => ce64(linear64(x!, w!, 3), m ?? [1, 1, 1, 1]));
    // logits also read by another op: the gradient goes to a separate buffer
    check(`ce mask=${!!m} shared`, [[randn(N * V, 3), [N, V]]], (t, [x]) => {
      const lg = x!;
      const lp = tokenLogprobs(t, lg, tg);
      const ce = crossEntropy(t, lg, tg, m).loss;
      return add(t, ce, weightedSum(t, lp, [0.5, 0, 0, 0]).loss);
    }, ([x]) => [ce64(x!, m ?? [1, 1, 1, 1])[0]! + 0.5 * logprobs64(x!, tg, V)[0]!]);
  }
  check('logprobs', [[randn(N * V, 3), [N, V]]], (t, [x]) => tokenLogprobs(t, x!, tg), ([x]) => logprobs64(x!, tg, V));
});

test('grad check: reward head on the last real token and the margin ranking loss', () => {
  const B = 3, T = 4, C = 5;
  const lengths = [4, 1, 2];
  const score64 = (h: Float64Array, w: Float64Array) =>
    lengths.map((len, b) => { let s = 0; for (let i = 0; i < C; i++) s += w[i]! * h[(b * T + len - 1) * C + i]!; return s; });
  check('lastTokenScores', [[randn(B * T * C), [B * T, C]], [randn(C), [1, C]]], (t, [h, w]) => lastTokenScores(t, h!, T, lengths, w!),
    ([h, w]) => score64(h!, w!));
  const margins = [1, 2 / 3, 0];
  check('rankingLoss', [randn(3, 2), randn(3, 2)], (t, [c, r]) => rankingLoss(t, c!, r!, margins).loss, ([c, r]) => {
    let s = 0;
    for (let i = 0; i < 3; i++) s += Math.log1p(Math.exp(-(c![i]! - r![i]! - margins[i]!)));
    return [s / 3];
  });
});
