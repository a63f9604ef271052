/**
 * The PPO loss on the training tape (src/rl/ppo-tape.ts) against central finite differences of a
 * naive float64 model (tests/helpers/float64-ops.ts) and the float64 losses: a tiny GQA model with
 * a value head with bias, three rows of different lengths, ratios and values on both sides of
 * their clip ranges. Also: micro-batches give the minibatch's gradients and step, and the value
 * head's storage, decay and errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../src/backend/types.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend, nativeLoadError } from '../src/backend/native.js';
import { makeConfig } from '../src/model/config.js';
import type { ModelWeights } from '../src/model/weights.js';
import { f32Tensor } from '../src/tensor.js';
import { Llama2Error } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { Tape } from '../src/train/tape.js';
import { cloneWeights, initModelWeights, zeroGrads } from '../src/train/params.js';
import { trainModel } from '../src/train/model.js';
import { AdamW } from '../src/train/optim.js';
import {
  PPO_LOSS_DEFAULTS, VALUE_HEAD_BIAS, VALUE_HEAD_WEIGHT, ensureValueHead, ppoMinibatchLoss, ppoMinibatchStep, ppoParams, valueHeadOf,
  type PpoTargets,
} from '../src/rl/ppo-tape.js';
import { policyLoss, valueLoss } from '../src/rl/ppo-loss.js';
import { padRollout, rolloutForward, type RolloutSample } from '../src/rl/rollout.js';
import { linear64, llamaHidden64, logprobs64 } from './helpers/float64-ops.js';
import { gradMetric } from './helpers/oracle-metrics.js';
import { randn } from './helpers/random.js';

/** analytic (float32 tape) vs finite differences (float64): max |diff| / max |fd| per parameter */
const TOL_FD = 1e-3;
const FD_H = 1e-6;
/** two float32 computations of the same gradient in a different order */
const TOL_F32 = 1e-5;

const cfg = makeConfig({ dim: 8, n_layers: 2, n_heads: 2, n_kv_heads: 1, vocab_size: 13, multiple_of: 4, max_seq_len: 16 });

/** A tiny model with non-unit norms and a value head with bias. */
function tinyWeights(): ModelWeights {
  const w = initModelWeights(cfg, 11, { std: 0.4 });
  [w.norm, ...w.layers.flatMap((l) => [l.attention_norm, l.ffn_norm])].forEach((t, k) => {
    const a = new Float32Array(t.data.buffer, t.data.byteOffset, t.shape[0]!);
    randn(a.length, 100 + k, 0.3).forEach((z, i) => { a[i] = 1 + z; });
  });
  w.heads = {
    [VALUE_HEAD_WEIGHT]: f32Tensor(randn(cfg.dim, 7, 0.5), [1, cfg.dim]),
    [VALUE_HEAD_BIAS]: f32Tensor(Float32Array.of(0.3), [1]),
  };
  return w;
}

/** rows of 2+4, 3+2 and 1+5 tokens */
const samples: RolloutSample[] = [[[1, 4, 7], [9, 2]], [[1, 5], [3, 12, 8, 6]], [[1], [11, 4, 4, 0, 10]]].map(([p, r]) => ({
  prompt: p!, response: r!, rSafety: 0.5, rHelpful: 0.5, safetyPrompt: false,
}));
const cycle = (xs: number[], k: number) => xs[k % xs.length]!;

/**
 * Rollout targets around the model's current log-probs and values: ratios e^{±0.5} (outside the
 * clip range), e^{±0.05} (inside); V − V_old of ±0.5 (clipped) and ±0.05 (not).
 */
function targetsFor(weights: ModelWeights): PpoTargets {
  const layout = padRollout(samples);
  const fwd = rolloutForward(trainModel(cfg, weights), valueHeadOf(weights, cfg), layout);
  const logpOld = new Float64Array(fwd.logp.length);
  const valuesOld = new Float64Array(fwd.logp.length);
  const advantages = new Float64Array(fwd.logp.length);
  const returns = new Float64Array(fwd.logp.length);
  let k = 0;
  layout.mask.forEach((m, i) => {
    if (!m) return;
    logpOld[i] = fwd.logp[i]! - cycle([0.5, -0.5, 0.05, -0.04, 0.4, -0.6, 0.02], k);
    valuesOld[i] = fwd.values[i]! - cycle([0.5, -0.05, -0.5, 0.03], k);
    advantages[i] = cycle([1.2, -0.7, 0.4, -1.5, 0.9], k);
    returns[i] = fwd.values[i]! + cycle([0.8, -0.3, 0.1, 1.1, -0.9, 0.6], k);
    k++;
  });
  return { T: layout.T, tokens: layout.tokens, attnLen: layout.attnLen, mask: layout.mask, logpOld, valuesOld, advantages, returns };
}

/** The total PPO loss of all rows in float64 from weights by name (the oracle's formulas). */
function loss64(w: Map<string, Float64Array>, t: PpoTargets): number {
  const B = t.attnLen.length, T = t.T, W = T - 1, C = cfg.dim;
  const hidden = llamaHidden64(cfg, (n) => w.get(n)!, t.tokens, B, T); // (B*T, C)
  const logits = linear64(hidden, w.get('output.weight')!, C); // (B*T, V)
  const targets = Int32Array.from({ length: B * T }, (_, n) => (n % T < T - 1 ? t.tokens[n + 1]! : 0));
  const lp = logprobs64(logits, targets, cfg.vocab_size);
  const vw = w.get(VALUE_HEAD_WEIGHT)!, vb = w.get(VALUE_HEAD_BIAS)![0]!;
  const at: number[] = [];
  const pos: number[] = [];
  t.mask.forEach((m, i) => { if (m) { at.push(i); pos.push(Math.floor(i / W) * T + (i % W)); } });
  const value = (n: number) => { let s = vb; for (let c = 0; c < C; c++) s += vw[c]! * hidden[n * C + c]!; return s; };
  const pick = (a: ArrayLike<number>) => Float64Array.from(at, (i) => a[i]!);
  const ones = new Float64Array(at.length).fill(1);
  const pl = policyLoss(Float64Array.from(pos, (n) => lp[n]!), pick(t.logpOld), pick(t.advantages), ones);
  const vl = valueLoss(Float64Array.from(pos, value), pick(t.valuesOld), pick(t.returns), ones);
  return pl.loss + PPO_LOSS_DEFAULTS.vfCoef * vl.loss;
}

const backends: { name: string; be: Backend }[] = [{ name: 'ref', be: refBackend }];
if (nativeBackend) backends.push({ name: 'native', be: nativeBackend });
else test('PPO tape on native (addon not loaded)', { skip: `native addon not loaded: ${nativeLoadError}` }, () => {});

for (const { name, be } of backends) {
  test(`PPO loss on the tape (${name}): gradients of every parameter kind and the value head match float64 finite differences`, () => {
    if (be === nativeBackend) nativeBackend.setThreads(2);
    const weights = tinyWeights();
    const t = targetsFor(weights);
    const m = trainModel(cfg, weights);
    const head = valueHeadOf(weights, cfg);
    const params = ppoParams(m, head);
    const tape = new Tape(be);
    zeroGrads(params);
    const r = ppoMinibatchLoss(tape, m, head, t, [0, 1, 2]);
    tape.backward(r.loss);
    assert.ok(r.clipfrac > 0 && r.clipfrac < 1 && r.vfClipfrac > 0 && r.vfClipfrac < 1,
      `both branches of both losses occur (clipfrac ${r.clipfrac}, vf ${r.vfClipfrac})`);
    const base = new Map(params.map((p) => [p.name, Float64Array.from(p.f32)]));
    const l0 = loss64(base, t);
    assert.ok(Math.abs(r.totalLoss - l0) <= 1e-5 * Math.max(1, Math.abs(l0)), `loss ${r.totalLoss} vs float64 ${l0}`);
    const rng = new Rng(3);
    const used = [...new Set(t.tokens)];
    for (const p of params) {
      // 4 elements of each parameter (of a used token's row for the embedding)
      const C = p.shape[p.shape.length - 1]!;
      const idx = Array.from({ length: 4 }, () => (p.name === 'tok_embeddings.weight' ? used[rng.below(used.length)]! * C + rng.below(C) : rng.below(p.f32.length)));
      const fd = idx.map((i) => {
        const w = new Map(base);
        const a = Float64Array.from(base.get(p.name)!);
        w.set(p.name, a);
        a[i] = base.get(p.name)![i]! + FD_H;
        const lp = loss64(w, t);
        a[i] = base.get(p.name)![i]! - FD_H;
        return (lp - loss64(w, t)) / (2 * FD_H);
      });
      const gm = gradMetric(idx.map((i) => p.grad[i]!), fd);
      assert.ok(gm.metric <= TOL_FD, `${p.name}[${idx[gm.at]}]: analytic ${p.grad[idx[gm.at]!]} vs finite difference ${fd[gm.at]} (metric ${gm.metric})`);
    }
  });
}

test('a minibatch step in micro-batches of one row: the same gradients, statistics and update', () => {
  const w0 = tinyWeights();
  const t = targetsFor(w0);
  const run = (microRows: number | undefined) => {
    const w = cloneWeights(w0);
    const m = trainModel(cfg, w);
    const head = valueHeadOf(w, cfg);
    const opt = new AdamW(ppoParams(m, head), { lr: 1e-2 });
    const s = ppoMinibatchStep(new Tape(), m, head, opt, t, [2, 0, 1], { ...PPO_LOSS_DEFAULTS, maxGradNorm: 0.5, ...(microRows ? { microRows } : {}) });
    return { s, params: opt.params };
  };
  const whole = run(undefined);
  const micro = run(1);
  for (const k of Object.keys(whole.s) as (keyof typeof whole.s)[]) {
    assert.ok(Math.abs(whole.s[k] - micro.s[k]) <= TOL_F32 * Math.max(1, Math.abs(whole.s[k])), `${k}: ${whole.s[k]} vs ${micro.s[k]}`);
  }
  assert.ok(whole.s.clipCoef < 1, `the clip is active (norm ${whole.s.gradNorm})`);
  whole.params.forEach((p, j) => {
    const q = micro.params[j]!;
    assert.ok(gradMetric(q.grad, p.grad).metric <= TOL_F32, `${p.name} gradient`);
    assert.ok(gradMetric(q.f32, p.f32).metric <= TOL_F32, `${p.name} after the step`);
  });
  assert.equal(whole.params.find((p) => p.name === VALUE_HEAD_WEIGHT)!.decay, true, 'the value head (1, C) decays, as in the oracle');
  assert.equal(whole.params.find((p) => p.name === VALUE_HEAD_BIAS)!.decay, false);
});

test('critic warm-up: a criticOnly step moves the value head alone (policy weights and moments untouched)', () => {
  const w0 = tinyWeights();
  const t = targetsFor(w0);
  const w = cloneWeights(w0);
  const m = trainModel(cfg, w);
  const head = valueHeadOf(w, cfg);
  const opt = new AdamW(ppoParams(m, head), { lr: 1e-2 });
  const before = opt.params.map((p) => Float32Array.from(p.f32));
  const s = ppoMinibatchStep(new Tape(), m, head, opt, t, [0, 1, 2], { ...PPO_LOSS_DEFAULTS, maxGradNorm: 1, criticOnly: true });
  assert.ok(s.valueLoss > 0 && Number.isFinite(s.gradNorm));
  const heads = new Set([head.weight, ...(head.bias ? [head.bias] : [])]);
  const state = opt.optimizerState();
  opt.params.forEach((p, j) => {
    const moved = p.f32.some((x, i) => x !== before[j]![i]);
    if (heads.has(p)) assert.ok(moved, `${p.name} (value head) is updated`);
    else {
      assert.ok(!moved, `${p.name} (policy) stays bit-identical`);
      assert.ok(state.m[p.name]!.every((x) => x === 0), `${p.name}: no moments accumulate while frozen`);
    }
  });
  assert.equal(opt.t, 1, 'the step count advances');
  // a normal step afterwards moves the policy too
  ppoMinibatchStep(new Tape(), m, head, opt, t, [0, 1, 2], { ...PPO_LOSS_DEFAULTS, maxGradNorm: 1 });
  assert.ok(opt.params.filter((p) => !heads.has(p)).some((p, j) => p.f32.some((x, i) => x !== before[opt.params.indexOf(p)]![i])), 'then the policy moves');
});

test('value head: stored under its HF name, added when missing, errors name the head', () => {
  const w = initModelWeights(cfg, 1);
  assert.throws(() => valueHeadOf(w, cfg), (e: unknown) => e instanceof Llama2Error && /no "v_head.summary.weight" head/.test(e.message));
  const head = ensureValueHead(w, cfg, 9);
  assert.equal(head.weight.f32.buffer, w.heads![VALUE_HEAD_WEIGHT]!.data.buffer, 'the Param is the stored tensor');
  assert.equal(head.bias, null);
  assert.deepEqual(Array.from(ensureValueHead(initModelWeights(cfg, 1), cfg, 9).weight.f32), Array.from(head.weight.f32), 'seeded');
  assert.equal(ensureValueHead(w, cfg, 10).weight, head.weight, 'an existing head is kept');
  w.heads![VALUE_HEAD_WEIGHT] = f32Tensor(new Float32Array(2 * cfg.dim), [2, cfg.dim]);
  assert.throws(() => valueHeadOf(w, cfg), (e: unknown) => e instanceof Llama2Error && /has shape \[2, 8\]; a value head is \[1, 8\]/.test(e.message));
  const t = targetsFor(tinyWeights());
  const m = trainModel(cfg, tinyWeights());
  assert.throws(() => ppoMinibatchLoss(new Tape(), m, valueHeadOf(tinyWeights(), cfg), t, [0, 3]),
    (e: unknown) => e instanceof Llama2Error && /row 3 is not in the rollout batch of 3 rows/.test(e.message));
});
