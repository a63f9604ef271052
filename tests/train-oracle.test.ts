/**
 * The training core against the PyTorch oracle (tests/fixtures/oracle, ../shared/oracle), every
 * training key of all five cases: train.loss / loss_masked / nll, grad.* of every parameter,
 * grad_sft.*, grad.global_norm / clip_coef, adamw.* and adamw_clip.* (one AdamW step), the 5-step
 * trajectory, reward scores / ranking losses and reward_grad.*.
 *
 * Runs on the reference backend and, when the addon is built, on the native backend (2 threads),
 * with the same tolerances. The reference run swaps in `blockGemm`, a GEMM that sums every output
 * element in the same order and precision as refBackend.gemm (checked bit for bit below) but
 * computes 2×4 outputs per pass, so the naive GEMM no longer dominates the test's time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CASES } from './helpers/oracle-case.js';
import {
  TOL_GRAD, TOL_LOGITS, TOL_REWARD, TOL_SCALAR, TOL_TRAJ, gradMetric, intsI32, loadTrainCase, maxRelErr, paramMetric,
  type TrainCase,
} from './helpers/oracle-metrics.js';
import type { Backend, GemmLayout } from '../src/backend/types.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend, nativeLoadError } from '../src/backend/native.js';
import { Tape } from '../src/train/tape.js';
import { trainModel, lmLoss, type TrainModel } from '../src/train/model.js';
import { paramFromTensor, zeroGrads } from '../src/train/params.js';
import { AdamW, clipCoefficient } from '../src/train/optim.js';
import { MARGIN_LARGE, MARGIN_SMALL, marginsFor, rankingLoss, rewardScores, type RankingResult } from '../src/train/reward.js';

/**
 * refBackend.gemm computed in 2×4 blocks of C: every C[m, n] is still Σ_k in order k = 0..K-1 of
 * float64 products of the float32 operands (exact), starting from 0, then (added to C and)
 * rounded once, so the result is bit-identical (checked below); it is only ~3× faster in V8.
 */
function blockGemm(c: Float32Array, a: Float32Array, b: Float32Array, M: number, N: number, K: number, layout: GemmLayout, accumulate: boolean): void {
  const [am, ak] = layout === 'TN' ? [1, M] : [K, 1];
  const [bk, bn] = layout === 'NT' ? [1, K] : [N, 1];
  const put = (i: number, s: number): void => {
    c[i] = accumulate ? c[i]! + s : s;
  };
  for (let m = 0; m < M; m += 2) {
    const two = m + 1 < M;
    const a0 = m * am;
    const a1 = two ? a0 + am : a0;
    for (let n = 0; n < N; n += 4) {
      const w = Math.min(4, N - n); // columns n .. n+w-1; missing ones re-read column n
      const b1 = w > 1 ? bn : 0;
      const b2 = w > 2 ? 2 * bn : 0;
      const b3 = w > 3 ? 3 * bn : 0;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let k = 0, bo = n * bn; k < K; k++, bo += bk) {
        const x0 = a[a0 + k * ak]!;
        const x1 = a[a1 + k * ak]!;
        const y0 = b[bo]!, y1 = b[bo + b1]!, y2 = b[bo + b2]!, y3 = b[bo + b3]!;
        s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
        s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
      }
      const o = m * N + n;
      const rows: [number, number[]][] = two ? [[o, [s00, s01, s02, s03]], [o + N, [s10, s11, s12, s13]]] : [[o, [s00, s01, s02, s03]]];
      for (const [r, sums] of rows) for (let j = 0; j < w; j++) put(r + j, sums[j]!);
    }
  }
}

const targets: { name: string; be: Backend }[] = [{ name: 'ref', be: { ...refBackend, gemm: blockGemm } }];
if (nativeBackend) targets.push({ name: 'native', be: nativeBackend });
else test('native backend (addon not loaded)', { skip: `native addon not loaded: ${nativeLoadError}` }, () => {});

test('blockGemm is refBackend.gemm bit for bit (every layout, accumulate or not)', () => {
  let s = 7;
  const rnd = (n: number) => Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 3);
  for (const layout of ['NT', 'NN', 'TN'] as const) {
    for (const [M, N, K] of [[1, 1, 1], [3, 5, 7], [17, 9, 33], [4, 8, 2]] as const) {
      for (const accumulate of [false, true]) {
        const a = rnd(M * K);
        const b = rnd(K * N);
        const c0 = rnd(M * N);
        const want = Float32Array.from(c0);
        const got = Float32Array.from(c0);
        refBackend.gemm(want, a, b, M, N, K, layout, accumulate);
        blockGemm(got, a, b, M, N, K, layout, accumulate);
        assert.deepEqual(got, want, `${layout} ${M}x${N}x${K} accumulate=${accumulate}`);
      }
    }
  }
});

/** Worst metric per key class, printed per case for the record. */
type Worst = Record<string, { metric: number; key: string }>;
function note(w: Worst, cls: string, key: string, metric: number): void {
  if (!w[cls] || metric > w[cls]!.metric) w[cls] = { metric, key };
}

function scalarMetric(cand: number, ref: number): number {
  return Math.abs(cand - ref) / Math.max(1, Math.abs(ref));
}

function batch(tc: TrainCase) {
  const [B, T] = tc.inputs.entry('train.inputs').shape as [number, number];
  return {
    B, T,
    x: intsI32(tc.inputs, 'train.inputs'),
    y: intsI32(tc.inputs, 'train.targets'),
    mask: tc.inputs.f32('train.loss_mask'),
  };
}

function adamwOf(m: TrainModel, tc: TrainCase, be: Backend): AdamW {
  const o = tc.optimizer;
  return new AdamW(m.params, { lr: o.lr, beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weight_decay }, be);
}

for (const { name: bname, be } of targets) for (const name of CASES) {
  test(`oracle ${name} on ${bname}: losses, gradients, AdamW, clipping, trajectory, reward`, () => {
    if (be === nativeBackend) nativeBackend.setThreads(2);
    const tc = loadTrainCase(name);
    const E = tc.expected;
    const worst: Worst = {};
    const { B, T, x, y, mask } = batch(tc);
    const tape = new Tape(be);

    // ---- five steps: loss → backward → clip 1.0 → AdamW. Step 0 is also where train.loss,
    // train.nll, grad.*, grad.global_norm / clip_coef and adamw_clip.* are checked.
    const m = trainModel(tc.config, tc.weights());
    const opt = adamwOf(m, tc, be);
    const losses: number[] = [];
    const norms: number[] = [];
    let grads = new Map<string, Float32Array>();
    for (let step = 0; step <= 5; step++) {
      tape.reset();
      zeroGrads(m.params);
      const ce = lmLoss(tape, m, x, y, B, T);
      losses.push(ce.value);
      if (step === 5) break;
      if (step === 0) {
        const sl = scalarMetric(ce.value, E.f64('train.loss')[0]!);
        note(worst, 'scalar', 'train.loss', sl);
        assert.ok(sl <= TOL_SCALAR, `train.loss ${ce.value} vs ${E.f64('train.loss')[0]}: metric ${sl}`);
        const nm = maxRelErr(ce.nll, E.f32('train.nll'));
        note(worst, 'logprob', 'train.nll', nm.metric);
        assert.ok(nm.metric <= TOL_LOGITS, `train.nll metric ${nm.metric} at ${nm.at}`);
      }
      tape.backward(ce.loss);
      if (step === 0) {
        grads = new Map(m.params.map((p) => [p.name, Float32Array.from(p.grad)]));
        const gradNames = tc.keys('grad.').filter((k) => k !== 'global_norm' && k !== 'clip_coef');
        assert.equal(gradNames.length, m.params.length, 'one grad.* key per parameter');
        for (const n of gradNames) {
          const g = grads.get(n);
          assert.ok(g, `no parameter named ${n}`);
          const gm = gradMetric(g, E.f32(`grad.${n}`));
          note(worst, 'grad', `grad.${n}`, gm.metric);
          assert.ok(gm.metric <= TOL_GRAD, `grad.${n}: metric ${gm.metric} (max abs ${gm.maxAbs} at ${gm.at})`);
        }
      }
      // clipping folded into the AdamW step (the gradients themselves stay unclipped)
      const clip = clipCoefficient(m.params, tc.optimizer.grad_clip_max_norm, be);
      norms.push(clip.norm);
      opt.step(tc.optimizer.lr, clip.coef);
      if (step === 0) {
        for (const [key, v] of [['grad.global_norm', clip.norm], ['grad.clip_coef', clip.coef]] as const) {
          const sm = scalarMetric(v, E.f64(key)[0]!);
          note(worst, 'scalar', key, sm);
          assert.ok(sm <= TOL_SCALAR, `${key} ${v} vs ${E.f64(key)[0]}: metric ${sm}`);
        }
        const coefRef = E.f64('grad.clip_coef')[0]!;
        for (const n of tc.keys('adamw_clip.')) {
          const p = m.params.find((q) => q.name === n)!;
          const pm = paramMetric(p.f32, E.f32(`adamw_clip.${n}`), E.f32(`grad.${n}`), coefRef, tc.optimizer.lr);
          note(worst, 'param', `adamw_clip.${n}`, pm.metric);
          assert.ok(pm.ok, `adamw_clip.${n}: metric ${pm.metric} at ${pm.at}, ill-conditioned ${pm.ill}`);
        }
      }
    }
    for (const [key, got] of [['train.trajectory_loss', losses], ['train.trajectory_grad_norm', norms]] as const) {
      const tm = maxRelErr(got, E.f64(key));
      note(worst, 'trajectory', key, tm.metric);
      assert.ok(tm.metric <= TOL_TRAJ, `${key}: metric ${tm.metric} at step ${tm.at}; got ${got.join(', ')}`);
    }

    // ---- adamw.*: one step from the initial weights with the unclipped step-0 gradients
    const m2 = trainModel(tc.config, tc.weights());
    for (const p of m2.params) p.grad.set(grads.get(p.name)!);
    adamwOf(m2, tc, be).step();
    for (const n of tc.keys('adamw.')) {
      const p = m2.params.find((q) => q.name === n)!;
      const pm = paramMetric(p.f32, E.f32(`adamw.${n}`), E.f32(`grad.${n}`), 1, tc.optimizer.lr);
      note(worst, 'param', `adamw.${n}`, pm.metric);
      assert.ok(pm.ok, `adamw.${n}: metric ${pm.metric} at ${pm.at}, ill-conditioned ${pm.ill}`);
    }

    // ---- masked (SFT) loss and its gradients
    tape.reset();
    const m3 = trainModel(tc.config, tc.weights());
    const sft = lmLoss(tape, m3, x, y, B, T, mask);
    const sm = scalarMetric(sft.value, E.f64('train.loss_masked')[0]!);
    note(worst, 'scalar', 'train.loss_masked', sm);
    assert.ok(sm <= TOL_SCALAR, `train.loss_masked ${sft.value} vs ${E.f64('train.loss_masked')[0]}: metric ${sm}`);
    tape.backward(sft.loss);
    for (const n of tc.keys('grad_sft.')) {
      const gm = gradMetric(m3.params.find((q) => q.name === n)!.grad, E.f32(`grad_sft.${n}`));
      note(worst, 'grad', `grad_sft.${n}`, gm.metric);
      assert.ok(gm.metric <= TOL_GRAD, `grad_sft.${n}: metric ${gm.metric} (max abs ${gm.maxAbs} at ${gm.at})`);
    }

    // ---- reward model: scores, ranking losses, gradients of the small-margin mean loss
    tape.reset();
    const m5 = trainModel(tc.config, tc.weights());
    const score = paramFromTensor('score.weight', tc.scoreWeight());
    const Tc = tc.inputs.entry('reward.chosen').shape[1]!;
    const Tr = tc.inputs.entry('reward.rejected').shape[1]!;
    const rc = rewardScores(tape, m5, score, intsI32(tc.inputs, 'reward.chosen'), tc.inputs.ints('reward.chosen_lengths'), Tc);
    const rr = rewardScores(tape, m5, score, intsI32(tc.inputs, 'reward.rejected'), tc.inputs.ints('reward.rejected_lengths'), Tr);
    const ratings = tc.inputs.ints('reward.rating');
    const checkReward = (key: string, got: ArrayLike<number>): void => {
      const rm = maxRelErr(got, E.f64(key));
      note(worst, 'reward', key, rm.metric);
      assert.ok(rm.metric <= TOL_REWARD, `${key}: metric ${rm.metric} at ${rm.at}`);
    };
    checkReward('reward.chosen_scores', rc.data);
    checkReward('reward.rejected_scores', rr.data);
    let small: RankingResult | null = null;
    for (const [tag, table] of [['no_margin', null], ['margin_small', MARGIN_SMALL], ['margin_large', MARGIN_LARGE]] as const) {
      const r = rankingLoss(tape, rc, rr, table ? marginsFor(ratings, table) : undefined);
      checkReward(`reward.loss_${tag}`, r.perPair);
      checkReward(`reward.mean_loss_${tag}`, [r.value]);
      if (tag === 'margin_small') small = r;
    }
    tape.backward(small!.loss);
    for (const n of tc.keys('reward_grad.')) {
      const g = n === 'score.weight' ? score.grad : m5.params.find((q) => q.name === n)!.grad;
      const gm = gradMetric(g, E.f32(`reward_grad.${n}`));
      note(worst, 'grad', `reward_grad.${n}`, gm.metric);
      assert.ok(gm.metric <= TOL_GRAD, `reward_grad.${n}: metric ${gm.metric} (max abs ${gm.maxAbs} at ${gm.at})`);
    }

    console.log(`${name} on ${bname}: ` + Object.entries(worst).map(([c, w]) => `${c} ${w.metric.toExponential(2)} (${w.key})`).join('; '));
  });
}
