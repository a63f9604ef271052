/**
 * PPO against the PyTorch oracle (tests/fixtures/oracle/ppo; ../shared/oracle/check_candidate.md,
 * PPO section): every key with its class's metric and limit, following the fixture's procedure —
 * rollout at θ_old (log-probs, values, entropy, reference log-probs), the gated and whitened
 * sequence score, KL rewards, GAE and advantages whitened once over the batch for β = 0.01 and 0.1,
 * minibatch 1 at θ_old (losses, gradients of every parameter and the value head, clip
 * coefficient), one AdamW step, then minibatch 2 at θ_1 with clipped ratios and clipped values.
 *
 * Runs on the reference backend and, when the addon is built, on the native backend (2 threads).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../src/backend/types.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend, nativeLoadError } from '../src/backend/native.js';
import { Tape } from '../src/train/tape.js';
import { trainModel } from '../src/train/model.js';
import { zeroGrads } from '../src/train/params.js';
import { AdamW } from '../src/train/optim.js';
import { PPO_LOSS_DEFAULTS, ppoMinibatchLoss, ppoMinibatchStep, ppoParams, valueHeadOf, VALUE_HEAD_WEIGHT } from '../src/rl/ppo-tape.js';
import { finishRollout, padRollout, rolloutForward, type RolloutBatch } from '../src/rl/rollout.js';
import { TOL_PARAM, paramMetric } from './helpers/oracle-metrics.js';
import { KeyCheck, loadPpoCase } from './helpers/ppo-case.js';

const targets: { name: string; be: Backend }[] = [{ name: 'ref', be: refBackend }];
if (nativeBackend) targets.push({ name: 'native', be: nativeBackend });
else test('PPO oracle on native (addon not loaded)', { skip: `native addon not loaded: ${nativeLoadError}` }, () => {});

/** the fixture names the value head v_head.weight; ModelWeights.heads calls it v_head.summary.weight */
const fixtureName = (name: string) => (name === VALUE_HEAD_WEIGHT ? 'v_head.weight' : name);

for (const { name: bname, be } of targets) {
  test(`PPO oracle on ${bname}: rollout, rewards, GAE, two minibatch steps, gradients, AdamW`, () => {
    if (be === nativeBackend) nativeBackend.setThreads(2);
    const pc = loadPpoCase();
    const E = pc.expected;
    const kc = new KeyCheck();
    const cfg = pc.config;
    const h = pc.hyper;
    const lossOpts = { clipEps: h.clip_eps, clipEpsV: h.clip_eps_v, vfCoef: h.vf_coef };
    assert.deepEqual(lossOpts, { ...PPO_LOSS_DEFAULTS }, 'the fixture uses the default loss settings');
    const pw = pc.policyWeights();
    const policy = trainModel(cfg, pw);
    const head = valueHeadOf(pw, cfg);
    const reference = trainModel(cfg, pc.referenceWeights(), { frozen: true });
    const samples = pc.samples();
    const [mb1, mb2] = pc.minibatches as [number[], number[]];

    // ---- 1. rollout at θ_old
    const T = E.entry('ppo.logp').shape[1]! + 1;
    const layout = padRollout(samples, T);
    const W = T - 1;
    const mask = layout.mask;
    assert.deepEqual(Array.from(mask), Array.from(pc.inputs.f32('ppo.response_mask')), 'response mask');
    assert.deepEqual(Array.from(layout.tokens), pc.inputs.ints('ppo.tokens'), 'padded tokens');
    const fwd = rolloutForward(policy, head, layout, { backend: be, reference, rowsPerForward: 3 });
    const tok = (key: string, got: ArrayLike<number>, cls: 'ppo_token' | 'ppo_step2' = 'ppo_token') => kc.check(key, cls, got, E.f64(key), mask, W);
    tok('ppo.logp', fwd.logp);
    tok('ppo.logp_ref', fwd.logpRef!);
    tok('ppo.values', fwd.values);
    tok('ppo.entropy_tokens', fwd.entropy);

    // ---- 2, 3. sequence score; per β: rewards, GAE, advantages whitened over the whole batch
    const batches = new Map<number, RolloutBatch>();
    for (const beta of h.betas_recorded) {
      const b = finishRollout(layout, fwd, samples, { beta, gamma: h.gamma, lam: h.lam });
      batches.set(beta, b);
      for (const k of ['rewards', 'advantages_raw', 'advantages', 'returns'] as const) {
        const got = { rewards: b.rewards, advantages_raw: b.advantagesRaw, advantages: b.advantages, returns: b.returns }[k];
        tok(`ppo.beta${beta}.${k}`, got);
      }
    }
    const b01 = batches.get(h.beta)!;
    tok('ppo.k1', b01.k1);
    for (const [key, got] of [['ppo.R_c', b01.rc], ['ppo.logit_R_c', b01.logitRc], ['ppo.score', b01.score]] as const) {
      kc.check(key, 'ppo_seq', got, E.f64(key));
    }

    // ---- 4. minibatch 1 at θ_old: the losses of both β; for β = 0.01 the gradients and the step
    const tape = new Tape(be);
    const scalar = (key: string, v: number, cls: 'ppo_scalar' | 'ppo_step2' = 'ppo_scalar') => kc.check(key, cls, [v], E.f64(key));
    for (const [beta, b] of batches) {
      tape.reset();
      const r = ppoMinibatchLoss(tape, policy, head, b, mb1, lossOpts);
      scalar(`ppo.beta${beta}.policy_loss`, r.policyLoss);
      scalar(`ppo.beta${beta}.value_loss`, r.valueLoss);
      scalar(`ppo.beta${beta}.total_loss`, r.totalLoss);
    }
    const params = ppoParams(policy, head);
    const o = pc.optimizer;
    const opt = new AdamW(params, { lr: o.lr, beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weight_decay }, be);
    const s1 = ppoMinibatchStep(tape, policy, head, opt, b01, mb1, { ...lossOpts, maxGradNorm: o.grad_clip_max_norm });
    scalar('ppo.step1.clipfrac', s1.clipfrac);
    scalar('ppo.step1.vf_clipfrac', s1.vfClipfrac);
    scalar('ppo.step1.entropy', s1.entropy);
    scalar('ppo.step1.grad_norm', s1.gradNorm);
    scalar('ppo.step1.clip_coef', s1.clipCoef);
    const gradKeys = [...E.entries.keys()].filter((k) => k.startsWith('ppo_grad.'));
    assert.deepEqual(gradKeys.map((k) => k.slice('ppo_grad.'.length)).sort(), params.map((p) => fixtureName(p.name)).sort(),
      'one ppo_grad.* key per parameter and the value head');
    for (const p of params) kc.check(`ppo_grad.${fixtureName(p.name)}`, 'grad', p.grad, E.f32(`ppo_grad.${fixtureName(p.name)}`));
    // ---- 5. θ_1 after clipping and AdamW
    const coefRef = E.f64('ppo.step1.clip_coef')[0]!;
    const adamKeys = [...E.entries.keys()].filter((k) => k.startsWith('ppo_adamw.')).map((k) => k.slice('ppo_adamw.'.length));
    assert.ok(adamKeys.length >= 8, `${adamKeys.length} ppo_adamw.* keys`);
    let worstParam = 0;
    for (const n of adamKeys) {
      const p = params.find((q) => fixtureName(q.name) === n);
      assert.ok(p, `ppo_adamw.${n}: no such parameter`);
      const pm = paramMetric(p.f32, E.f32(`ppo_adamw.${n}`), E.f32(`ppo_grad.${n}`), coefRef, o.lr);
      worstParam = Math.max(worstParam, pm.metric);
      assert.ok(pm.ok, `ppo_adamw.${n}: metric ${pm.metric} (limit ${TOL_PARAM}) at ${pm.at}, ill-conditioned ${pm.ill} (limit 2·lr + ${TOL_PARAM})`);
    }

    // ---- 6. at θ_1: every row's log-probs / values / ratios, then minibatch 2 (clipped ratios and values)
    const fwd2 = rolloutForward(policy, head, layout, { backend: be });
    tok('ppo.step2.logp', fwd2.logp, 'ppo_step2');
    tok('ppo.step2.values', fwd2.values, 'ppo_step2');
    tok('ppo.step2.ratio', fwd2.logp.map((lp, i) => Math.exp(lp - b01.logpOld[i]!) * mask[i]!), 'ppo_step2');
    tape.reset();
    zeroGrads(params);
    const r2 = ppoMinibatchLoss(tape, policy, head, b01, mb2, lossOpts);
    tape.backward(r2.loss);
    for (const [k, v] of [['policy_loss', r2.policyLoss], ['value_loss', r2.valueLoss], ['total_loss', r2.totalLoss],
      ['clipfrac', r2.clipfrac], ['vf_clipfrac', r2.vfClipfrac], ['entropy', r2.entropy]] as const) {
      scalar(`ppo.step2.${k}`, v, 'ppo_step2');
    }
    assert.deepEqual([r2.tokens, Math.round(r2.clipfrac * r2.tokens), Math.round(r2.vfClipfrac * r2.tokens)], [20, 3, 1],
      'minibatch 2: 20 tokens, 3 with the clipped branch active, 1 value-clipped');
    for (const k of [...E.entries.keys()].filter((x) => x.startsWith('ppo_grad2.'))) {
      const n = k.slice('ppo_grad2.'.length);
      const p = params.find((q) => fixtureName(q.name) === n);
      assert.ok(p, `${k}: no such parameter`);
      kc.check(k, 'grad', p.grad, E.f32(k));
    }
    console.log(`PPO oracle on ${bname}: ${kc.summary()}; param ${worstParam.toExponential(2)}`);
  });
}
