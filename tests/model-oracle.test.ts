/**
 * The inference engine against the PyTorch oracle (tests/fixtures/oracle, ../shared/oracle):
 * full forward logits and log-probs, token-by-token and chunked KV-cache decoding, batched
 * segments, and greedy continuations, for all five cases in Meta and HF layout, through the
 * reference backend and, when the addon is built, the native backend (its one-call engine and its
 * kernel-by-kernel path) within the same tolerances.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CASES, loadCase, relMaxErr } from './helpers/oracle-case.js';
import { loadModelFile } from '../src/formats/load.js';
import { Model } from '../src/model/forward.js';
import { ffnHiddenDim } from '../src/model/config.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend, nativeLoadError } from '../src/backend/native.js';
import type { Backend } from '../src/backend/types.js';

const TOL_LOGITS = 1e-4; // check_candidate.md class "logits"
const TOL_LOGPROB = 1e-4;

function logSoftmaxAt(row: Float32Array, id: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - max);
  return row[id]! - max - Math.log(s);
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** ref (the spec); native through its whole-forward engine, and kernel by kernel (the engine's spec) */
interface Runner { name: string; be: Backend; fused: boolean }
const RUNNERS: Runner[] = [{ name: 'ref', be: refBackend, fused: false }];
if (nativeBackend) {
  RUNNERS.push({ name: 'native engine', be: nativeBackend, fused: true }, { name: 'native kernels', be: nativeBackend, fused: false });
} else {
  test('oracle through the native backend', { skip: `native addon not loaded: ${nativeLoadError}` }, () => {});
}

for (const [name, layout, run] of CASES.flatMap((c) => RUNNERS.flatMap((r) => [[c, 'meta', r], [c, 'hf', r]] as const))) {
  test(`oracle ${name}: forward, decode, chunked, batched, greedy (${layout} layout, ${run.name})`, () => {
    const oc = loadCase(name);
    const loaded = loadModelFile(join(oc.dir, layout));
    assert.equal(loaded.format, layout);
    for (const k of ['dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'norm_eps', 'rope_theta'] as const) {
      assert.equal(loaded.config[k], oc.config[k], `config.${k}`);
    }
    assert.equal(ffnHiddenDim(loaded.config), ffnHiddenDim(oc.config), 'FFN hidden size');
    const model = new Model({ ...loaded.config, max_seq_len: oc.config.max_seq_len }, loaded.weights, run.be, { fused: run.fused });
    const V = oc.config.vocab_size;
    const tokens = oc.inputs.ints('fwd.tokens');
    const lengths = oc.inputs.ints('fwd.lengths');
    const [B, T] = oc.inputs.entry('fwd.tokens').shape as [number, number];
    const expLogits = oc.expected.f32('fwd.logits'); // (B, T, V)
    const expLogprobs = oc.expected.f32('fwd.logprobs'); // (B, T-1)

    // each row on its own
    const rows: Float32Array[] = [];
    for (let b = 0; b < B; b++) {
      const len = lengths[b]!;
      const ids = tokens.slice(b * T, b * T + len);
      const logits = model.step(ids, model.newCache(len), 'all'); // (len, V)
      rows.push(logits);
      const m = relMaxErr(logits, expLogits.subarray(b * T * V, (b * T + len) * V));
      assert.ok(m.metric <= TOL_LOGITS, `fwd.logits row ${b}: metric ${m.metric} > ${TOL_LOGITS} (max abs ${m.maxAbs} at ${m.at})`);
      const lp: number[] = [];
      const ref: number[] = [];
      for (let t = 0; t + 1 < len; t++) {
        lp.push(logSoftmaxAt(logits.subarray(t * V, (t + 1) * V), ids[t + 1]!));
        ref.push(expLogprobs[b * (T - 1) + t]!);
      }
      const ml = relMaxErr(lp, ref);
      assert.ok(ml.metric <= TOL_LOGPROB, `fwd.logprobs row ${b}: metric ${ml.metric}`);
    }

    // all rows as segments of one call must give the same logits
    const caches = lengths.map((len) => model.newCache(len));
    const batched = model.forward(lengths.map((len, b) => ({ tokens: tokens.slice(b * T, b * T + len), cache: caches[b]! })));
    for (let b = 0; b < B; b++) {
      const m = relMaxErr(batched.logits[b]!, rows[b]!);
      assert.ok(m.metric <= 1e-6, `batched segment ${b} differs from its own forward: ${m.metric}`);
    }

    // token-by-token decoding
    const prompt = oc.inputs.ints('decode.prompt');
    const P = prompt.length;
    const expDecode = oc.expected.f32('decode.logits'); // (P, V)
    const cache = model.newCache(P);
    const dec = new Float32Array(P * V);
    for (let t = 0; t < P; t++) dec.set(model.step([prompt[t]!], cache, 'last'), t * V);
    const md = relMaxErr(dec, expDecode);
    assert.ok(md.metric <= TOL_LOGITS, `decode.logits: metric ${md.metric} (max abs ${md.maxAbs} at ${md.at})`);

    // chunked: prompt[:c] then one call with prompt[c:]
    const c = oc.inputs.ints('decode.chunk')[0]!;
    const cache2 = model.newCache(P);
    model.step(prompt.slice(0, c), cache2, 'none');
    const chunked = model.step(prompt.slice(c), cache2, 'all');
    const mc = relMaxErr(chunked, oc.expected.f32('decode.chunked_logits'));
    assert.ok(mc.metric <= TOL_LOGITS, `decode.chunked_logits: metric ${mc.metric}`);

    // greedy 20 steps, no stop at EOS
    for (const g of [0, 1]) {
      const p = oc.inputs.ints(`greedy.prompt${g}`);
      const want = oc.expected.ints(`greedy.ids${g}`);
      const gc = model.newCache(p.length + want.length);
      let logits = model.step(p, gc, 'last');
      const got: number[] = [];
      for (let i = 0; i < want.length; i++) {
        const id = argmax(logits);
        got.push(id);
        if (i + 1 < want.length) logits = model.step([id], gc, 'last');
      }
      assert.deepEqual(got, want, `greedy.ids${g}`);
    }
  });
}
