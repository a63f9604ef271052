/**
 * Training kernels against the oracle's unit fixtures (tests/fixtures/oracle/units): RMSNorm near
 * eps, RoPE (Meta layout) up to position 4095, SiLU, a stable cross-entropy, the stable ranking
 * loss, three AdamW steps with tiny gradients, and global-norm clipping, on the reference backend
 * and (when the addon is built) the native one. Plus the learning-rate schedule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { f32Tensor } from '../src/tensor.js';
import { oracleDir } from './helpers/oracle-case.js';
import { TOL_ROPE, TOL_UNITS, maxRelErr } from './helpers/oracle-metrics.js';
import type { Backend } from '../src/backend/types.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend } from '../src/backend/native.js';
import { Tape, constantVar } from '../src/train/tape.js';
import { crossEntropy } from '../src/train/loss.js';
import { rankingLoss } from '../src/train/reward.js';
import { paramFromTensor } from '../src/train/params.js';
import { AdamW, clipGradNorm } from '../src/train/optim.js';
import { lrAt } from '../src/train/schedule.js';

const U = new SafetensorsFile(join(oracleDir(), 'units', 'units.safetensors'));
const BACKENDS: Backend[] = nativeBackend ? [refBackend, nativeBackend] : [refBackend];

/** The units metric: max |cand − ref| / max |ref|. */
function unit(key: string, cand: ArrayLike<number>, ref: ArrayLike<number>, tol = TOL_UNITS): void {
  const m = maxRelErr(cand, ref, 1e-30);
  assert.ok(m.metric <= tol, `${key}: metric ${m.metric} > ${tol} (max abs ${m.maxAbs} at ${m.at})`);
}

for (const be of BACKENDS) {
  test(`units on ${be.name}: rmsnorm with rows of rms 1e-4..100, eps 1e-5 and 1e-6`, () => {
    const x = U.f32('rmsnorm.x');
    const w = U.f32('rmsnorm.weight');
    const T = U.entry('rmsnorm.x').shape[0]!;
    for (const eps of ['1e-05', '1e-06']) {
      const y = new Float32Array(x.length);
      be.rmsnorm(y, x, w, T, Number(eps));
      unit(`rmsnorm.y_eps${eps}`, y, U.f32(`rmsnorm.y_eps${eps}`));
    }
  });

  test(`units on ${be.name}: rope in Meta layout, theta 1e4 and 1e6, positions up to 4095`, () => {
    const x = U.f32('rope.x_meta');
    const pos = Int32Array.from(U.ints('rope.positions'));
    for (const theta of ['10000', '1e+06']) {
      const y = new Float32Array(x.length);
      be.ropeRotate(y, x, pos.length, 1, 64, pos, Number(theta), false, false);
      unit(`rope.y_meta_theta${theta}`, y, U.f32(`rope.y_meta_theta${theta}`), TOL_ROPE);
    }
  });

  test(`units on ${be.name}: silu`, () => {
    const x = U.f32('silu.x');
    const y = new Float32Array(x.length);
    be.swigluForward(y, x, new Float32Array(x.length).fill(1), x.length);
    unit('silu.y', y, U.f32('silu.y'));
  });

  test(`units on ${be.name}: cross-entropy stays finite for |logits| up to 1e4`, () => {
    const [N, V] = U.entry('xent.logits').shape as [number, number];
    const tape = new Tape(be);
    for (const consumeLogits of [false, true]) {
      const r = crossEntropy(tape, constantVar(U.f32('xent.logits'), [N, V]), Int32Array.from(U.ints('xent.targets')), undefined, { consumeLogits });
      unit('xent.nll', r.nll, U.f64('xent.nll'));
    }
  });
}

test('units: ranking loss softplus(margin − diff), finite at diff = ±1000', () => {
  const d = U.f64('ranking.diff');
  const tape = new Tape();
  for (const [tag, m] of [['m0', 0], ['m1', 1], ['m3', 3], ['m2_3', 2 / 3]] as const) {
    const r = rankingLoss(tape, constantVar(Float32Array.from(d), [d.length]), constantVar(new Float32Array(d.length), [d.length]),
      new Float64Array(d.length).fill(m));
    assert.ok(r.perPair.every(Number.isFinite), `ranking.loss_${tag} not finite`);
    unit(`ranking.loss_${tag}`, r.perPair, U.f64(`ranking.loss_${tag}`));
  }
});

for (const be of BACKENDS) test(`units on ${be.name}: three AdamW steps (wd only on the 2-D parameter, tiny gradients near eps)`, () => {
  const mk = (k: string) => paramFromTensor(k, f32Tensor(Float32Array.from(U.f64(`adamw.p0.${k}`)), U.entry(`adamw.p0.${k}`).shape));
  const params = [mk('w2d'), mk('w1d')];
  assert.deepEqual(params.map((p) => p.decay), [true, false]);
  const opt = new AdamW(params, { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, be);
  for (let t = 1; t <= 3; t++) {
    for (const p of params) p.grad.set(U.f64(`adamw.g${t}.${p.name}`));
    opt.step();
    for (const p of params) unit(`adamw.p${t}.${p.name}`, p.f32, U.f64(`adamw.p${t}.${p.name}`));
  }
  const st = opt.optimizerState();
  assert.equal(st.step, 3);
  for (const p of params) {
    unit(`adamw.m3.${p.name}`, st.m[p.name]!, U.f64(`adamw.m3.${p.name}`));
    unit(`adamw.v3.${p.name}`, st.v[p.name]!, U.f64(`adamw.v3.${p.name}`));
  }
});

for (const be of BACKENDS) test(`units on ${be.name}: global-norm clipping over two tensors`, () => {
  const mk = (k: string) => {
    const p = paramFromTensor(k, f32Tensor(new Float32Array(U.f64(`clip.${k}`).length), U.entry(`clip.${k}`).shape));
    p.grad.set(U.f64(`clip.${k}`));
    return p;
  };
  const params = [mk('a'), mk('b')];
  const r = clipGradNorm(params, 1.0, be);
  unit('clip.total_norm', [r.norm], U.f64('clip.total_norm'));
  unit('clip.coef', [r.coef], U.f64('clip.coef'));
  unit('clip.a_clipped', params[0]!.grad, U.f64('clip.a_clipped'));
  unit('clip.b_clipped', params[1]!.grad, U.f64('clip.b_clipped'));
  // below the limit nothing changes
  const before = Float32Array.from(params[0]!.grad);
  assert.equal(clipGradNorm(params, 10, be).coef, 1);
  assert.deepEqual(params[0]!.grad, before);
});

test('schedule: linear warm-up, cosine to 10% of peak, then flat', () => {
  const o = { peak: 1e-3, warmup: 10, total: 110 };
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-15, `${a} vs ${b}`);
  close(lrAt(0, o), 1e-4);
  close(lrAt(4, o), 5e-4);
  close(lrAt(9, o), 1e-3);
  close(lrAt(10, o), 1e-3);
  close(lrAt(60, o), 0.55e-3); // halfway down the cosine: (peak + floor)/2
  close(lrAt(110, o), 1e-4);
  close(lrAt(1000, o), 1e-4);
  close(lrAt(60, { ...o, minRatio: 0 }), 0.5e-3);
  for (let s = 10; s < 110; s++) assert.ok(lrAt(s + 1, o) <= lrAt(s, o), `not decreasing at ${s}`);
  assert.throws(() => lrAt(0, { peak: 1, warmup: 5, total: 2 }), /total ≥ warmup/);
});
