/**
 * The rollout batch helper (src/rl/rollout.ts): padding and the response mask, the gated score,
 * KL rewards with the score on the last response token, GAE and whitening on a hand-made two-row
 * example (every expected number written out); samples from generateBatch through a tiny model
 * (the engine's log-probs agree with the training forward; the reference's with a reference
 * forward); chunked forwards; and the errors a caller can hit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refBackend } from '../src/backend/ref.js';
import { makeConfig } from '../src/model/config.js';
import { Model } from '../src/model/forward.js';
import { generateBatch } from '../src/generate/batch.js';
import { Llama2Error } from '../src/util/errors.js';
import { cloneWeights, initModelWeights } from '../src/train/params.js';
import { trainModel } from '../src/train/model.js';
import { ensureValueHead } from '../src/rl/ppo-tape.js';
import { buildRollout, finishRollout, padRollout, rolloutForward, type RolloutForward, type RolloutSample } from '../src/rl/rollout.js';
import * as api from '../src/index.js';

const close = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol;
const expectAll = (what: string, got: ArrayLike<number>, want: number[], tol = 1e-12) => {
  assert.equal(got.length, want.length, `${what}: length`);
  want.forEach((w, i) => assert.ok(close(got[i]!, w, tol), `${what}[${i}]: got ${got[i]} want ${w}`));
};

// row 0: prompt of 3, response of 2, not a safety prompt, r_s ≥ 0.15 → R_c = r_helpful = 0.8
// row 1: prompt of 1, response of 4, a safety prompt → R_c = r_safety = 0.2
const handSamples: RolloutSample[] = [
  { prompt: [1, 5, 6], response: [7, 8], refLogprobs: [-1.5, -2], rSafety: 0.5, rHelpful: 0.8, safetyPrompt: false },
  { prompt: [1], response: [9, 3, 4, 2], refLogprobs: [-0.5, -1, -1, -0.2], rSafety: 0.2, rHelpful: 0.9, safetyPrompt: true },
];

test('hand-made rollout: layout, mask, score, KL rewards on the response, GAE, whitening, statistics', () => {
  const layout = padRollout(handSamples);
  assert.equal(layout.T, 5);
  assert.deepEqual(Array.from(layout.tokens), [1, 5, 6, 7, 8, 1, 9, 3, 4, 2]);
  assert.deepEqual(Array.from(layout.attnLen), [5, 5]);
  // entry t belongs to token t+1: row 0's response tokens 7, 8 are predicted at t = 2, 3
  assert.deepEqual(Array.from(layout.mask), [0, 0, 1, 1, 1, 1, 1, 1]);
  // a forward's outputs, written by hand ((B, W) = (2, 4), 0 off the mask)
  const fwd: RolloutForward = {
    logp: Float64Array.of(0, 0, -1, -2, -0.5, -0.5, -1, -0.1),
    values: Float64Array.of(0, 0, 0.2, 0.4, 0, 0, 0, 0),
    entropy: Float64Array.of(0, 0, 1, 2, 1, 1, 1, 1),
    logpRef: null,
  };
  const b = finishRollout(layout, fwd, handSamples, { beta: 0.1, gamma: 1, lam: 1 });
  expectAll('R_c', b.rc, [0.8, 0.2]);
  expectAll('logit', b.logitRc, [Math.log(4), -Math.log(4)]);
  const s = Math.log(4) / Math.sqrt(Math.log(4) ** 2 + 1e-8); // whiten(±ln 4): mean 0, variance ln²4
  expectAll('score', b.score, [s, -s]);
  expectAll('logp_ref', b.logpRef, [0, 0, -1.5, -2, -0.5, -1, -1, -0.2]);
  expectAll('k1', b.k1, [0, 0, 0.5, 0, 0, 0.5, 0, 0.1]);
  expectAll('rewards', b.rewards, [0, 0, -0.05, s, 0, -0.05, 0, -0.01 - s]);
  // γ = λ = 1: A_t = Σ_{k ≥ t} r_k − V_t (V = 0 after the last token); returns = A + V
  const A = [0, 0, -0.05 + s - 0.2, s - 0.4, -0.06 - s, -0.06 - s, -0.01 - s, -0.01 - s];
  expectAll('advantages_raw', b.advantagesRaw, A);
  expectAll('returns', b.returns, [0, 0, -0.05 + s, s, -0.06 - s, -0.06 - s, -0.01 - s, -0.01 - s]);
  const on = A.slice(2);
  const mean = on.reduce((x, y) => x + y) / 6;
  const sd = Math.sqrt(on.reduce((x, y) => x + (y - mean) ** 2, 0) / 6 + 1e-8);
  expectAll('advantages', b.advantages, [0, 0, ...on.map((a) => (a - mean) / sd)]);
  assert.deepEqual(b.valuesOld, fwd.values);
  assert.deepEqual(b.logpOld, fwd.logp, "logp_old defaults to the forward's");
  assert.ok(close(b.stats.meanRc, 0.5) && close(b.stats.meanKl, 0.55) && close(b.stats.meanNonScoreReward, -0.055));
  assert.ok(close(b.stats.meanResponseLength, 3) && close(b.stats.meanEntropy, 7 / 6) && b.stats.maxLogpDrift === null);
  // the samples' own log-probs as logp_old: k1 follows them, the drift is reported
  const withLp = handSamples.map((x, i) => ({ ...x, logprobs: i === 0 ? [-1.25, -2] : [-0.5, -0.5, -1, -0.1] }));
  const c = finishRollout(layout, fwd, withLp, { beta: 0.1, logpOld: 'samples' });
  expectAll('k1 (samples)', c.k1, [0, 0, 0.25, 0, 0, 0.5, 0, 0.1]);
  assert.ok(close(c.stats.maxLogpDrift!, 0.25));
});

test('errors name the sample and what is wrong', () => {
  const l2 = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof Llama2Error && re.test(e.message), String(re));
  const s0 = handSamples[0]!;
  l2(() => padRollout([s0, { ...s0, response: [] }]), /rollout sample 1: the response is empty/);
  l2(() => padRollout([{ ...s0, prompt: [] }]), /rollout sample 0: the prompt is empty/);
  l2(() => padRollout([s0], 4), /T = 4 is shorter than the longest sample \(5 tokens\)/);
  const layout = padRollout(handSamples);
  const fwd: RolloutForward = { logp: new Float64Array(8), values: new Float64Array(8), entropy: new Float64Array(8), logpRef: null };
  l2(() => finishRollout(layout, fwd, [s0, { ...handSamples[1]!, refLogprobs: [0, 0] }], { beta: 0.1 }),
    /rollout sample 1: refLogprobs .* has 2 entries, expected one per response token \(4\)/);
  l2(() => finishRollout(layout, fwd, [s0, { ...handSamples[1]!, refLogprobs: undefined }], { beta: 0.1 }), /rollout sample 1: no refLogprobs \(or pass a reference model\)/);
  l2(() => finishRollout(layout, fwd, [s0, { ...handSamples[1]!, rHelpful: 2.3 }], { beta: 0.1 }), /rollout sample 1: rHelpful must be a probability in \[0, 1\].*found 2.3/);
  l2(() => finishRollout(layout, fwd, handSamples, { beta: 0.1, logpOld: 'samples' }), /logpOld 'samples' needs logprobs on every sample/);
  l2(() => finishRollout(layout, fwd, handSamples, { beta: -1 }), /beta .* must be ≥ 0, found -1/);
  const cfg = makeConfig({ dim: 8, n_layers: 1, n_heads: 2, vocab_size: 9, multiple_of: 4, max_seq_len: 16 });
  const w = initModelWeights(cfg, 1);
  l2(() => rolloutForward(trainModel(cfg, w), ensureValueHead(w, cfg, 1), layout), /rollout row 1: token 9 at position 1 is outside the vocabulary \(0..8\)/);
});

test('samples from generateBatch: the engine and the training forward agree; the reference forward equals refLogprobs; chunking changes nothing', async () => {
  const cfg = makeConfig({ dim: 16, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 40, multiple_of: 8, max_seq_len: 32 });
  const pw = initModelWeights(cfg, 3, { std: 0.3 });
  const rw = cloneWeights(pw);
  rw.norm.data.set(new Uint8Array(new Float32Array(cfg.dim).fill(1.3).buffer)); // the reference differs from the policy
  const prompts = [[1, 5, 9], [1, 20], [1, 7, 7, 30, 2]];
  const out = await generateBatch(new Model(cfg, pw, refBackend), prompts.map((prompt, i) => ({ prompt, n: 2, seed: i })), {
    maxTokens: 6, temperature: 1, logprobs: true, reference: new Model(cfg, rw, refBackend),
  });
  const samples: RolloutSample[] = out.flatMap((req, i) => req.map((s, k) => ({
    prompt: prompts[i]!, response: s.ids, logprobs: s.logprobs, refLogprobs: s.refLogprobs,
    rSafety: 0.1 + 0.1 * k, rHelpful: 0.3 + 0.1 * i, safetyPrompt: i === 2,
  })));
  const policy = trainModel(cfg, pw);
  const head = ensureValueHead(pw, cfg, 4);
  const a = buildRollout(policy, head, samples, { beta: 0.05 });
  assert.ok(a.stats.maxLogpDrift! < 1e-5, `engine vs training log-probs: ${a.stats.maxLogpDrift}`);
  const b = buildRollout(policy, head, samples, { beta: 0.05, reference: trainModel(cfg, rw, { frozen: true }), rowsPerForward: 1, logpOld: 'samples' });
  let dRef = 0;
  let kl = 0;
  a.mask.forEach((m, i) => { if (m) { dRef = Math.max(dRef, Math.abs(a.logpRef[i]! - b.logpRef[i]!)); kl += Math.abs(a.k1[i]!); } });
  assert.ok(dRef < 1e-5, `refLogprobs vs the reference's training forward: ${dRef}`);
  assert.ok(kl > 0.01, 'the reference differs from the policy');
  for (const k of ['valuesOld', 'advantages', 'returns', 'entropy'] as const) {
    a[k].forEach((v, i) => assert.ok(Math.abs(v - b[k][i]!) < 1e-4, `${k}[${i}]: ${v} vs ${b[k][i]} (chunked)`));
  }
  assert.equal(a.B, 6);
  assert.ok(close(a.stats.meanResponseLength, 6));
});

test('the public API example: rollout, then minibatch steps that lower the loss on that batch', () => {
  const config = api.makeConfig({ dim: 16, n_layers: 1, n_heads: 2, vocab_size: 20, multiple_of: 8, max_seq_len: 16 });
  const weights = api.initModelWeights(config, 2, { std: 0.2 });
  const backend = api.refBackend;
  const policy = api.trainModel(config, weights);
  const head = api.ensureValueHead(weights, config, 1);
  assert.ok(weights.heads?.[api.VALUE_HEAD_WEIGHT], 'stored in weights.heads');
  const samples: api.RolloutSample[] = [0, 1, 2, 3].map((i) => ({
    prompt: [1, 3 + i], response: [5 + i, 9, 11 + i], refLogprobs: [-3, -3, -3], rSafety: 0.5, rHelpful: 0.2 + 0.2 * i, safetyPrompt: false,
  }));
  const batch = api.buildRollout(policy, head, samples, { beta: 0.01, backend });
  const opt = new api.AdamW(api.ppoParams(policy, head), { lr: 1e-2 }, backend);
  const tape = new api.Tape(backend);
  const losses = [0, 1, 2, 3, 4].map(() => api.ppoMinibatchStep(tape, policy, head, opt, batch, [0, 1, 2, 3], { ...api.PPO_LOSS_DEFAULTS, maxGradNorm: 1 }).totalLoss);
  assert.ok(losses[4]! < losses[0]! - 0.05, `PPO steps lower the loss on their batch: ${losses.map((l) => l.toFixed(4)).join(', ')}`);
  const score = api.sequenceScores([0.9, 0.1], [0.2, 0.8], [true, false]).score;
  assert.ok(close(score[0]!, 1, 1e-8) && close(score[1]!, -1, 1e-8));
});
