/**
 * The training core's contracts beyond the oracle numbers: parameters share memory with the
 * weights the inference engine reads, initialisation, tied heads, gradient accumulation, arena
 * reuse, optimizer-state round trip, frozen (no-grad) evaluation and its log-probs against the
 * oracle's fwd.logits / fwd.logprobs, and the errors users can hit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeConfig } from '../src/model/config.js';
import { namedWeights } from '../src/model/weights.js';
import { Model } from '../src/model/forward.js';
import { refBackend } from '../src/backend/ref.js';
import { Llama2Error } from '../src/util/errors.js';
import { Tape } from '../src/train/tape.js';
import { cloneWeights, initModelWeights, paramsOf, zeroGrads } from '../src/train/params.js';
import { forwardLogits, lmLoss, sequenceLogprobs, trainModel } from '../src/train/model.js';
import { AdamW, clipGradNorm } from '../src/train/optim.js';
import { crossEntropy } from '../src/train/loss.js';
import { constantVar } from '../src/train/tape.js';
import { CASES } from './helpers/oracle-case.js';
import { TOL_LOGITS, gradMetric, intsI32, loadTrainCase, logitsMetric, maxRelErr } from './helpers/oracle-metrics.js';

const cfg = makeConfig({ dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 50, multiple_of: 16, max_seq_len: 64 });
const TOL_F32 = 1e-5; // two float32 computations of the same quantity in a different order

function batch(seed: number, B: number, T: number): { x: Int32Array; y: Int32Array } {
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  let s = seed;
  for (let i = 0; i < B * T; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    x[i] = s % cfg.vocab_size;
    y[i] = (s >>> 8) % cfg.vocab_size;
  }
  return { x, y };
}

test('init: deterministic, N(0, 0.02) matrices, scaled residual projections, unit norms', () => {
  const a = initModelWeights(cfg, 7);
  const b = initModelWeights(cfg, 7);
  const c = initModelWeights(cfg, 8);
  const pa = paramsOf(a);
  assert.deepEqual(pa.map((p) => p.name), [...namedWeights(a)].map(([n]) => n));
  assert.deepEqual(paramsOf(b)[2]!.f32, pa[2]!.f32);
  assert.notDeepEqual(paramsOf(c)[2]!.f32, pa[2]!.f32);
  const std = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
  const big = initModelWeights({ ...cfg, vocab_size: 2000 }, 1);
  assert.ok(Math.abs(std(paramsOf(big)[0]!.f32) - 0.02) < 0.001, `embedding std ${std(paramsOf(big)[0]!.f32)}`);
  const wo = pa.find((p) => p.name === 'layers.0.attention.wo.weight')!;
  assert.ok(Math.abs(std(wo.f32) - 0.01) < 0.002, `wo std ${std(wo.f32)} (expected 0.02/sqrt(2·2) = 0.01)`);
  assert.ok(pa.find((p) => p.name === 'norm.weight')!.f32.every((v) => v === 1));
  assert.deepEqual(pa.map((p) => p.decay), pa.map((p) => p.shape.length >= 2));
});

test('params are the weights: an AdamW step is seen by the inference engine without copies', () => {
  const w = initModelWeights(cfg, 3);
  const m = trainModel(cfg, w);
  assert.equal(m.params[1]!.f32.buffer, w.layers[0]!.attention_norm.data.buffer);
  assert.deepEqual(paramsOf(w), m.params); // the same Param objects (one gradient buffer per weight)
  assert.equal(paramsOf(w)[3], m.params[3]);
  const T = 6;
  const { x, y } = batch(1, 1, T);
  const tape = new Tape(refBackend);
  tape.backward(lmLoss(tape, m, x, y, 1, T).loss);
  new AdamW(m.params, { lr: 1e-2 }).step();
  tape.reset();
  const train = forwardLogits(new Tape(refBackend, false), m, x, 1, T).logits.data;
  const engine = new Model(cfg, w, refBackend);
  const infer = engine.step(x, engine.newCache(T), 'all');
  const d = maxRelErr(train, infer);
  assert.ok(d.metric <= TOL_F32, `training and inference logits differ after the update: ${d.metric}`);
});

test('tied output head: one parameter whose gradient is the sum of both uses', () => {
  const tied = initModelWeights(cfg, 5, { tied: true });
  assert.equal(tied.output, tied.tok_embeddings);
  const mt = trainModel(cfg, tied);
  assert.equal(mt.params.length, paramsOf(tied).length);
  assert.ok(!mt.params.some((p) => p.name === 'output.weight'));
  const untiedW = cloneWeights(tied);
  const mu = trainModel(cfg, { ...untiedW, output: cloneWeights(tied).tok_embeddings });
  const T = 5;
  const { x, y } = batch(2, 2, T);
  for (const m of [mt, mu]) {
    const tape = new Tape();
    tape.backward(lmLoss(tape, m, x, y, 2, T).loss);
  }
  const sum = Float32Array.from(mu.tok.grad, (g, i) => g + mu.output.grad[i]!);
  const d = gradMetric(mt.tok.grad, sum);
  assert.ok(d.metric <= TOL_F32, `tied gradient ≠ embedding + output gradients: ${d.metric}`);
});

test('gradient accumulation: two half batches with seed 1/2 equal one full batch', () => {
  const B = 4, T = 5;
  const { x, y } = batch(3, B, T);
  const full = trainModel(cfg, initModelWeights(cfg, 11));
  const tape = new Tape();
  tape.backward(lmLoss(tape, full, x, y, B, T).loss);
  const acc = trainModel(cfg, initModelWeights(cfg, 11));
  for (const h of [0, 1]) {
    tape.reset();
    const sl = (a: Int32Array) => a.subarray(h * 2 * T, (h + 1) * 2 * T);
    tape.backward(lmLoss(tape, acc, sl(x), sl(y), 2, T).loss, 0.5);
  }
  full.params.forEach((p, i) => {
    const d = gradMetric(acc.params[i]!.grad, p.grad);
    assert.ok(d.metric <= TOL_F32, `${p.name}: accumulated gradient differs by ${d.metric}`);
  });
});

test('arena: a second identical step allocates nothing and gives the same loss and gradients', () => {
  const m = trainModel(cfg, initModelWeights(cfg, 12));
  const { x, y } = batch(4, 2, 8);
  const tape = new Tape();
  const run = () => {
    tape.reset();
    zeroGrads(m.params);
    const r = lmLoss(tape, m, x, y, 2, 8);
    tape.backward(r.loss);
    return { value: r.value, g: Float32Array.from(m.params[2]!.grad) };
  };
  const a = run();
  const bytes = tape.arena.bytes;
  const b = run();
  assert.equal(tape.arena.bytes, bytes);
  assert.equal(a.value, b.value);
  assert.deepEqual(a.g, b.g);
});

test('optimizer state: save, continue, restore and continue again reproduce the same weights', () => {
  const { x, y } = batch(5, 2, 6);
  const w = initModelWeights(cfg, 13);
  const m = trainModel(cfg, w);
  const opt = new AdamW(m.params, { lr: 1e-3, eps: 1e-8 });
  const tape = new Tape();
  const step = (mm: typeof m, o: AdamW) => {
    tape.reset();
    zeroGrads(mm.params);
    tape.backward(lmLoss(tape, mm, x, y, 2, 6).loss);
    clipGradNorm(mm.params, 1);
    o.step();
  };
  step(m, opt);
  step(m, opt);
  const saved = opt.optimizerState();
  const snapshot = cloneWeights(w);
  step(m, opt);
  step(m, opt);
  const m2 = trainModel(cfg, snapshot);
  const opt2 = new AdamW(m2.params, { lr: 1e-3, eps: 1e-8 });
  opt2.loadOptimizerState(saved);
  assert.equal(opt2.t, 2);
  step(m2, opt2);
  step(m2, opt2);
  m.params.forEach((p, i) => assert.deepEqual(m2.params[i]!.f32, p.f32, `${p.name} differs after resume`));
  const bad = { ...saved, m: { ...saved.m, 'norm.weight': new Float32Array(3) } };
  assert.throws(() => opt2.loadOptimizerState(bad), (e) => e instanceof Llama2Error && /norm\.weight/.test(e.message));
});

test('user errors: non-F32 weights, an empty loss mask, a target outside the vocabulary', () => {
  const w = initModelWeights(cfg, 1);
  const f16 = { ...w, norm: { dtype: 'F16' as const, shape: [cfg.dim], data: new Uint8Array(cfg.dim * 2) } };
  assert.throws(() => paramsOf(f16), (e) => e instanceof Llama2Error && /"norm.weight" is F16/.test(e.message));
  const tape = new Tape();
  const logits = constantVar(new Float32Array(2 * 4), [2, 4]);
  assert.throws(() => crossEntropy(tape, logits, Int32Array.from([0, 1]), [0, 0]), (e) => e instanceof Llama2Error && /selects no positions/.test(e.message));
  assert.throws(() => crossEntropy(tape, logits, Int32Array.from([0, 4])), (e) => e instanceof Llama2Error && /target 4/.test(e.message));
  const odd = new Uint8Array(cfg.dim * 4 + 1).subarray(1); // F32 bytes at an odd offset
  assert.throws(() => paramsOf({ ...w, norm: { dtype: 'F32', shape: [cfg.dim], data: odd } }), (e) => e instanceof Llama2Error && /aligned/.test(e.message));
});

/** Rows longer than this are left to the inference tests (the reference GEMM makes T = 512 slow). */
const MAX_ROW = 128;

for (const name of CASES) {
  test(`oracle ${name}: frozen forward (no tape) logits and per-token log-probs of the padded batch`, () => {
    const tc = loadTrainCase(name);
    const m = trainModel(tc.config, tc.weights(), { frozen: true });
    const T0 = tc.inputs.entry('fwd.tokens').shape[1]!;
    const all = intsI32(tc.inputs, 'fwd.tokens');
    const rows = tc.inputs.ints('fwd.lengths').map((len, b) => ({ len, b })).filter((r) => r.len <= MAX_ROW);
    const B = rows.length;
    const T = Math.max(...rows.map((r) => r.len));
    const lengths = rows.map((r) => r.len);
    const V = tc.config.vocab_size;
    const tokens = new Int32Array(B * T); // (B, T) the kept rows, cut to T
    rows.forEach((r, i) => tokens.set(all.subarray(r.b * T0, r.b * T0 + T), i * T));
    const pick = (ref: Float32Array, width: number, T1: number, Tr: number) => {
      const out = new Float32Array(B * Tr * width);
      rows.forEach((r, i) => out.set(ref.subarray(r.b * T1 * width, (r.b * T1 + Tr) * width), i * Tr * width));
      return out;
    };
    const tape = new Tape(refBackend, false);
    const lm = logitsMetric(forwardLogits(tape, m, tokens, B, T).logits.data, pick(tc.expected.f32('fwd.logits'), V, T0, T), lengths, T, V);
    assert.ok(lm.metric <= TOL_LOGITS, `fwd.logits: metric ${lm.metric} at ${lm.at}`);
    // log p(tokens[t+1] | tokens[..t]): targets are the inputs shifted by one (last target unused)
    tape.reset();
    const targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) targets[b * T + t] = tokens[b * T + t + 1]!;
    const lp = sequenceLogprobs(tape, m, tokens, targets, B, T);
    assert.equal(lp.requiresGrad, false);
    const got = new Float32Array(B * (T - 1));
    for (let b = 0; b < B; b++) got.set(lp.data.subarray(b * T, b * T + T - 1), b * (T - 1));
    const pm = logitsMetric(got, pick(tc.expected.f32('fwd.logprobs'), 1, T0 - 1, T - 1), lengths, T - 1, 1, 1);
    assert.ok(pm.metric <= TOL_LOGITS, `fwd.logprobs: metric ${pm.metric} at ${pm.at}`);
  });
}
