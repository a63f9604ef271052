/**
 * The pure PPO pieces (src/rl/ppo-math.ts, src/rl/ppo-loss.ts) against the oracle's unit cases
 * (tests/fixtures/oracle/ppo/units.*: max |d| / max |ref| ≤ 1e-5 over every element, outputs 0 off
 * the mask), the losses' gradients against float64 finite differences, hand-computed cases, the
 * micro-batch split of a token-weighted mean, and the errors a caller can hit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { Llama2Error } from '../src/util/errors.js';
import {
  combinedRewards, gae, klRewards, lastIndex, logit, maskedMean, responseMask, sequenceScores, whiten,
} from '../src/rl/ppo-math.js';
import { entropyRows, policyLoss, valueLoss } from '../src/rl/ppo-loss.js';
import { oracleDir } from './helpers/oracle-case.js';
import { KeyCheck } from './helpers/ppo-case.js';

const dir = join(oracleDir(), 'ppo');
const U = new SafetensorsFile(join(dir, 'units.safetensors'));
const outputs = (JSON.parse(readFileSync(join(dir, 'units.json'), 'utf8')) as { outputs: string[] }).outputs;
const x = (name: string) => U.f64(name);
const width = (name: string) => U.entry(name).shape[1]!;

/** finite-difference step and tolerance (float64 both sides) */
const FD_H = 1e-7;
const TOL_FD = 1e-6;

test('units: every output of units.json matches the oracle', () => {
  const kc = new KeyCheck();
  const got = new Map<string, ArrayLike<number>>();
  got.set('whiten.y_masked', whiten(x('whiten.x'), x('whiten.mask')));
  got.set('whiten.y_masked_keep_mean', whiten(x('whiten.x'), x('whiten.mask'), false));
  got.set('whiten.y_all', whiten(x('whiten.x')));
  got.set('whiten.small_y', whiten(x('whiten.small_x')));
  const W = width('gae.mask');
  for (const [g, l] of [[1, 0.95], [0.9, 0.8]] as const) {
    const r = gae(x('gae.rewards'), x('gae.values'), x('gae.mask'), W, g, l);
    got.set(`gae.adv_raw_g${g}_l${l}`, r.advantages);
    got.set(`gae.returns_g${g}_l${l}`, r.returns);
    got.set(`gae.adv_g${g}_l${l}`, whiten(r.advantages, x('gae.mask')));
  }
  got.set('logit.y_eps1e-06', x('logit.p').map((p) => logit(p)));
  got.set('gating.R_c', combinedRewards(x('gating.r_safety'), x('gating.r_helpful'), U.ints('gating.is_safety_prompt')));
  const kl = klRewards(x('kl.logp'), x('kl.logp_ref'), x('kl.mask'), x('kl.score'), 0.05, width('kl.mask'));
  got.set('kl.k1', kl.k1);
  got.set('kl.rewards_beta0.05', kl.rewards);
  const pg = policyLoss(x('pg.logp'), x('pg.logp_old'), x('pg.adv'), x('pg.mask'), 0.2);
  got.set('pg.loss', [pg.loss]);
  got.set('pg.clipfrac', [pg.clipfrac]);
  got.set('pg.ratio', pg.ratio);
  const vf = valueLoss(x('vf.values'), x('vf.values_old'), x('vf.returns'), x('vf.mask'), 0.2);
  got.set('vf.loss', [vf.loss]);
  got.set('vf.clipfrac', [vf.clipfrac]);
  got.set('entropy.h', entropyRows(x('entropy.logits'), width('entropy.logits')));
  assert.deepEqual([...got.keys()].sort(), [...outputs].sort(), 'every output key of units.json is computed');
  for (const k of outputs) {
    const shape = U.entry(k).shape;
    kc.check(k, 'units', got.get(k)!, x(k), undefined, shape.length === 2 ? shape[1] : undefined);
  }
  console.log(`PPO units: ${kc.summary()}`);
});

/** central differences of f at x along each coordinate */
function numGrad(f: (v: Float64Array) => number, v: Float64Array): Float64Array {
  return v.map((_, i) => {
    const p = Float64Array.from(v);
    const m = Float64Array.from(v);
    p[i] = p[i]! + FD_H;
    m[i] = m[i]! - FD_H;
    return (f(p) - f(m)) / (2 * FD_H);
  });
}

test('policy and value losses: gradients match finite differences on every branch (clipped, unclipped, masked)', () => {
  const logp = x('pg.logp'), old = x('pg.logp_old'), adv = x('pg.adv'), pm = x('pg.mask');
  const pg = policyLoss(logp, old, adv, pm);
  const fdP = numGrad((v) => policyLoss(v, old, adv, pm).loss, logp);
  for (let i = 0; i < logp.length; i++) assert.ok(Math.abs(pg.dlogp[i]! - fdP[i]!) <= TOL_FD, `d pg/d logp[${i}]: ${pg.dlogp[i]} vs ${fdP[i]}`);
  // the clipped branch gives no gradient: entries 0 (A > 0, ratio 1.5) and 2 (A < 0, ratio 0.7)
  assert.deepEqual([pg.dlogp[0], pg.dlogp[2], pg.dlogp[9]], [0, 0, 0]);
  assert.ok(pg.dlogp[3] !== 0, 'A < 0 with ratio 1.4 is not clipped: it has a gradient');
  const v = x('vf.values'), vo = x('vf.values_old'), R = x('vf.returns'), vm = x('vf.mask');
  const vf = valueLoss(v, vo, R, vm);
  const fdV = numGrad((u) => valueLoss(u, vo, R, vm).loss, v);
  for (let i = 0; i < v.length; i++) assert.ok(Math.abs(vf.dvalues[i]! - fdV[i]!) <= TOL_FD, `d vf/d V[${i}]: ${vf.dvalues[i]} vs ${fdV[i]}`);
});

test('losses by hand: two tokens, one clipped; token-weighted means; micro-batch parts add up', () => {
  // ratio e^0.5 ≈ 1.6487 with A = 2 → clipped at 1.2 (loss −2.4); ratio 1 with A = −1 → loss 1
  const r = policyLoss([0.5, -0.3], [0, -0.3], [2, -1], [1, 1], 0.2);
  assert.ok(Math.abs(r.loss - (-2.4 + 1) / 2) < 1e-15, `loss ${r.loss}`);
  assert.equal(r.clipfrac, 0.5);
  assert.ok(Math.abs(r.approxKl - 0.5 * 0.25 / 2) < 1e-15);
  assert.deepEqual(Array.from(r.dlogp), [0, 0.5]); // (1/2)·(−A·ratio) for the unclipped token
  // value: V − V_old = 0.5 clipped to 0.2; (V − R)² = 0.25 < (V_clip − R)² = 0.64 → clipped branch
  const v = valueLoss([1.5, 0], [1, 0], [2, 1], [1, 1], 0.2);
  assert.ok(Math.abs(v.loss - 0.5 * (0.64 + 1) / 2) < 1e-15, `value loss ${v.loss}`);
  assert.equal(v.clipfrac, 0.5);
  // one mean over all tokens of the minibatch, not a mean of row means: rows of 3 and 1 tokens
  const logp = [0.1, -0.2, 0.3, 0.05], old = [0, 0, 0, 0], adv = [1, -2, 0.5, 3], mask = [1, 1, 1, 1];
  const whole = policyLoss(logp, old, adv, mask);
  const a = policyLoss(logp.slice(0, 3), old.slice(0, 3), adv.slice(0, 3), mask.slice(0, 3), 0.2, 4);
  const b = policyLoss(logp.slice(3), old.slice(3), adv.slice(3), mask.slice(3), 0.2, 4);
  assert.ok(Math.abs(a.loss + b.loss - whole.loss) < 1e-15);
  const rowMeans = (policyLoss(logp.slice(0, 3), old.slice(0, 3), adv.slice(0, 3), mask.slice(0, 3)).loss +
    policyLoss(logp.slice(3), old.slice(3), adv.slice(3), mask.slice(3)).loss) / 2;
  assert.ok(Math.abs(rowMeans - whole.loss) > 0.1, 'the example tells the two means apart');
});

test('sequence scores, KL rewards and GAE by hand', () => {
  // gate: safety prompt → r_s; r_s < 0.15 → r_s; r_s = 0.15 → r_h (strict)
  assert.deepEqual(Array.from(combinedRewards([0.9, 0.1, 0.15], [0.2, 0.8, 0.7], [true, false, false])), [0.9, 0.1, 0.7]);
  assert.deepEqual(Array.from(combinedRewards([0.2], [0.7], [false], 0.3)), [0.2], 'a custom threshold');
  assert.ok(Math.abs(logit(0.5)) < 1e-16 && Math.abs(logit(0.9) - Math.log(9)) < 1e-14);
  assert.ok(Math.abs(logit(1) - Math.log(1e6 - 1)) < 1e-9 && Math.abs(logit(0) + Math.log(1e6 - 1)) < 1e-9, 'clamped at 1e-6');
  const s = sequenceScores([0.9, 0.1], [0.2, 0.8], [true, false]);
  // logits ±ln 9: whitened to ±1/sqrt(1 + 1e-8/ln²9)
  const want = 1 / Math.sqrt(1 + 1e-8 / Math.log(9) ** 2);
  assert.ok(Math.abs(s.score[0]! - want) < 1e-15 && Math.abs(s.score[1]! + want) < 1e-15, `${s.score}`);
  // one row, W = 4, response at t = 1..2 (P = 2, R = 2)
  const mask = responseMask([2], [2], 5);
  assert.deepEqual(Array.from(mask), [0, 1, 1, 0]);
  assert.deepEqual(Array.from(lastIndex(mask, 4)), [2]);
  const { k1, rewards } = klRewards([9, -1, -2, 9], [9, -1.5, -1, 9], mask, [3], 0.1, 4);
  assert.deepEqual(Array.from(k1), [0, 0.5, -1, 0]);
  assert.deepEqual(Array.from(rewards, (r) => r + 0), [0, -0.05, 0.1 + 3, 0]); // (+ 0: −0 → 0)
  // GAE with γ = 1, λ = 0.5: A_2 = r_2 − V_2; A_1 = r_1 + V_2 − V_1 + 0.5·A_2
  const V = [7, 0.5, 1, 7];
  const g = gae(rewards, V, mask, 4, 1, 0.5);
  const A2 = 3.1 - 1;
  const A1 = -0.05 + 1 - 0.5 + 0.5 * A2;
  assert.ok(Math.abs(g.advantages[2]! - A2) < 1e-15 && Math.abs(g.advantages[1]! - A1) < 1e-15, `${g.advantages}`);
  assert.deepEqual([g.advantages[0], g.advantages[3], g.returns[0], g.returns[3]], [0, 0, 0, 0]);
  assert.ok(Math.abs(g.returns[1]! - (A1 + 0.5)) < 1e-15);
  assert.ok(Math.abs(maskedMean([1, 2, 3, 4], mask) - 2.5) < 1e-15);
});

test('errors name what is wrong', () => {
  const throwsL2 = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof Llama2Error && re.test(e.message));
  throwsL2(() => responseMask([0], [2], 5), /row 0 has prompt length 0 and response length 2/);
  throwsL2(() => responseMask([3], [3], 5), /P \+ R ≤ T = 5/);
  throwsL2(() => lastIndex([1, 0, 0, 0], 2), /row 1 has no response token/);
  throwsL2(() => klRewards([0, 0], [0], [1, 1], [0], 0.1, 2), /logp_ref has 1 values, expected 2/);
  throwsL2(() => gae([0, 0, 0], [0, 0, 0], [1, 1, 1], 2), /3 values do not form rows of width W = 2/);
  throwsL2(() => whiten([1, 2], [0, 0]), /selects no entries/);
  throwsL2(() => policyLoss([0], [0], [1], [0]), /no tokens to average over/);
  throwsL2(() => valueLoss([0, 1], [0], [0, 0], [1, 1]), /values_old has 1 values, the mask 2/);
});
