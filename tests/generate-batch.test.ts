/**
 * Batched sampling (src/generate/batch.ts) against references: the PyTorch oracle's greedy
 * continuations, one-by-one `generate` (greedy and seeded sampling), float64 log-softmax of a full
 * forward over prompt + ids (policy, sampling distribution and reference model), and counts of the
 * tokens the model was given — through the reference backend and, when built, the native engine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from './helpers/cli.js';
import { loadCase, metaWeights, relMaxErr } from './helpers/oracle-case.js';
import { openModel } from '../src/open.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend } from '../src/backend/native.js';
import type { Backend } from '../src/backend/types.js';
import { Model, type ForwardOptions, type Segment } from '../src/model/forward.js';
import { generate } from '../src/generate/generate.js';
import { argmax } from '../src/generate/sampler.js';
import { generateBatch, type BatchSample, type BatchStats } from '../src/generate/batch.js';
import { f32Tensor, toFloat32 } from '../src/tensor.js';
import { hashSeed } from '../src/util/rng.js';
import { Llama2Error } from '../src/util/errors.js';

/** log-probs against float64 log-softmax of float32 logits: check_candidate.md's logprob class */
const LOGPROB_TOL = 1e-4;

const BACKENDS: Array<[string, Backend]> = [['ref', refBackend]];
if (nativeBackend) BACKENDS.push(['native', nativeBackend]);

/** float64 ln softmax(row / temperature)[id], restricted to the `keep` most probable ids when given */
function logSoftmax64(row: Float32Array, id: number, temperature = 1, keep?: number): number {
  const z = Array.from(row, (v) => v / temperature);
  const max = Math.max(...z);
  let ids = z.map((_, i) => i);
  if (keep !== undefined) ids = ids.sort((a, b) => z[b]! - z[a]! || a - b).slice(0, keep);
  let s = 0;
  for (const i of ids) s += Math.exp(z[i]! - max);
  return z[id]! - max - Math.log(s);
}

/** logits (len, V) of a full forward over prompt + ids at the positions that predict ids */
function fullLogits(model: Model, prompt: readonly number[], ids: readonly number[]): Float32Array[] {
  const all = model.step([...prompt, ...ids], model.newCache(prompt.length + ids.length), 'all');
  const V = model.config.vocab_size;
  return ids.map((_, j) => all.subarray((prompt.length - 1 + j) * V, (prompt.length + j) * V));
}

function expectLogprobs(what: string, got: Float32Array | undefined, want: number[]): void {
  assert.ok(got, `${what}: missing`);
  assert.equal(got.length, want.length, `${what}: length`);
  const e = relMaxErr(got, want);
  assert.ok(e.metric <= LOGPROB_TOL, `${what}: metric ${e.metric} at ${e.at} (got ${got[e.at]}, want ${want[e.at]}) > ${LOGPROB_TOL}`);
}

/** greedy ids one sequence at a time, the plain loop of tests/model-oracle.test.ts */
function greedyOneByOne(model: Model, prompt: readonly number[], n: number): number[] {
  const cache = model.newCache(prompt.length + n);
  let logits = model.step(prompt, cache, 'last');
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(argmax(logits));
    if (i + 1 < n) logits = model.step([out[i]!], cache, 'last');
  }
  return out;
}

/** counts the tokens given to model.forward (a spy on the instance) */
function countTokens(model: Model): { tokens: number; calls: number } {
  const count = { tokens: 0, calls: 0 };
  const orig = model.forward.bind(model);
  model.forward = (segs: readonly Segment[], opts?: ForwardOptions) => {
    count.calls++;
    for (const s of segs) count.tokens += s.tokens.length;
    return orig(segs, opts);
  };
  return count;
}

for (const [name, backend] of BACKENDS) {
  test(`${name}: batched greedy = the oracle's greedy ids and one-by-one greedy, rows joining as others finish`, async () => {
    for (const cname of ['b_gqa', 'd_stories260k'] as const) {
      const oc = loadCase(cname);
      const model = new Model(oc.config, metaWeights(oc), backend);
      const p0 = oc.inputs.ints('greedy.prompt0'), p1 = oc.inputs.ints('greedy.prompt1');
      const requests = [
        { prompt: p0, maxTokens: 20 }, { prompt: p0.slice(0, 2), maxTokens: 5 }, { prompt: p1, maxTokens: 20 },
        { prompt: p1.slice(0, 5), maxTokens: 9 }, { prompt: [...p1, ...p0], maxTokens: 3 },
      ];
      let stats: BatchStats | undefined;
      const out = await generateBatch(model, requests, { maxTokens: 99, temperature: 0, maxRows: 2, onStats: (s) => { stats = s; } });
      assert.deepEqual(out[0]![0]!.ids, oc.expected.ints('greedy.ids0'), `${cname} greedy.ids0`);
      assert.deepEqual(out[2]![0]!.ids, oc.expected.ints('greedy.ids1'), `${cname} greedy.ids1`);
      requests.forEach((r, i) => {
        assert.deepEqual(out[i]![0]!.ids, greedyOneByOne(model, r.prompt, r.maxTokens), `${cname} request ${i}`);
        assert.equal(out[i]![0]!.finishReason, 'length');
      });
      // prompts cut into 3-token pieces, several prompts' pieces per prefill call: the same ids
      const chunked = await generateBatch(model, requests, { maxTokens: 99, temperature: 0, maxRows: 3, prefillChunk: 3 });
      assert.deepEqual(chunked.map((r) => r[0]!.ids), out.map((r) => r[0]!.ids), `${cname} prefill in 3-token calls`);
      assert.equal(stats!.peakRows, 2);
      assert.equal(stats!.prefillTokens, requests.reduce((a, r) => a + r.prompt.length, 0));
      assert.ok(stats!.cachesAllocated <= 3, `caches reused: ${stats!.cachesAllocated} made for 5 rows, 2 at a time`);
    }
  });

  test(`${name}: log-probs = float64 log-softmax of a full forward over prompt + ids`, async () => {
    const oc = loadCase('b_gqa');
    const model = new Model(oc.config, metaWeights(oc), backend);
    const prompts = [[1, 5, 9, 200], [1], [1, 77, 3, 3, 3, 12, 250, 8]];
    const out = await generateBatch(model, prompts.map((prompt, i) => ({ prompt, n: i + 1, seed: 40 + i })), {
      maxTokens: 12, temperature: 0.9, topP: 1, logprobs: true, maxRows: 3,
    });
    out.forEach((samples, i) => samples.forEach((s, k) => {
      const logits = fullLogits(model, prompts[i]!, s.ids);
      expectLogprobs(`request ${i} sample ${k} logprobs`, s.logprobs, s.ids.map((id, j) => logSoftmax64(logits[j]!, id)));
      // plain temperature sampling: the sampling distribution is softmax(logits / 0.9)
      expectLogprobs(`request ${i} sample ${k} samplingLogprobs`, s.samplingLogprobs, s.ids.map((id, j) => logSoftmax64(logits[j]!, id, 0.9)));
    }));
  });

  test(`${name}: forward with per-segment logit tails gives the rows of a full forward`, () => {
    const oc = loadCase('a_tiny_mha');
    const model = new Model(oc.config, metaWeights(oc), backend);
    const a = [1, 2, 3, 4, 5], b = [9, 8, 7];
    const full = [model.step(a, model.newCache(8), 'all'), model.step(b, model.newCache(8), 'all')];
    const V = oc.config.vocab_size;
    const r = model.forward([{ tokens: a, cache: model.newCache(8) }, { tokens: b, cache: model.newCache(8) }], { logits: [3, 0] });
    assert.equal(r.logits[1]!.length, 0);
    assert.ok(relMaxErr(r.logits[0]!, full[0]!.subarray(2 * V)).metric <= 1e-5);
    assert.throws(() => model.forward([{ tokens: a, cache: model.newCache(8) }], { logits: [6] }), /segment 0 has 5 tokens.*found 6/);
  });
}

/**
 * Models with a tokenizer (for `generate`): the oracle's chat case (vocab 2000, F32) on every
 * backend; stories15M (vocab 32000, Q8_0: the int8 kernels) on the native one only, where it is fast
 */
const WITH_TOKENIZER: Array<[string, Backend, () => ReturnType<typeof openModel>]> = BACKENDS.map(([name, backend]) =>
  [`${name} e_tok2k_chat`, backend, () => openModel(fixture('oracle', 'e_tok2k_chat', 'hf'), { backend, tokenizer: fixture('oracle', 'tokenizer', 'tokenizer.model') })]);
if (nativeBackend) WITH_TOKENIZER.push(['native stories15M', nativeBackend, () => openModel(fixture('gguf', 'stories15M-Q8_0.gguf'), { backend: nativeBackend! })]);

for (const [name, backend, open] of WITH_TOKENIZER) {
  const opened = open();
  const model = opened.model;
  const tok = opened.tokenizer!;
  const prompts = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park. They saw'].map((t) => tok.encode(t, { bos: true }));

  test(`${name}: greedy batch = one-by-one generate (EOS stops), n samples of a prompt alike`, async () => {
    const maxTokens = [14, 6, 10];
    const out = await generateBatch(model, prompts.map((prompt, i) => ({ prompt, maxTokens: maxTokens[i], n: i === 0 ? 2 : 1 })), {
      maxTokens: 99, temperature: 0, eosId: tok.eosId, maxRows: 2,
    });
    for (let i = 0; i < prompts.length; i++) {
      const one = await generate(model, tok, prompts[i]!, { temperature: 0, maxTokens: maxTokens[i] });
      for (const s of out[i]!) {
        assert.deepEqual(s.ids, one.ids, `prompt ${i}`);
        assert.equal(s.finishReason, one.finishReason === 'eos' ? 'stop' : one.finishReason);
      }
    }
  });

  test(`${name}: sample k of a request = generate seeded hashSeed(seed, k), alone or in any batch`, async () => {
    const opts = { maxTokens: 10, temperature: 0.8, topP: 0.9, eosId: tok.eosId, logprobs: true } as const;
    const reqs = prompts.map((prompt, i) => ({ prompt, n: 3 - i, seed: 100 + i }));
    const together = await generateBatch(model, reqs, { ...opts, maxRows: 6 });
    const twoRows = await generateBatch(model, [...reqs].reverse(), { ...opts, maxRows: 2 });
    for (let i = 0; i < reqs.length; i++) {
      const alone = await generateBatch(model, [reqs[i]!], { ...opts, maxRows: 1 });
      for (let k = 0; k < reqs[i]!.n; k++) {
        const one = await generate(model, tok, reqs[i]!.prompt, { temperature: 0.8, topP: 0.9, maxTokens: 10, seed: hashSeed(100 + i, k) });
        const ids = [together[i]![k]!.ids, twoRows[reqs.length - 1 - i]![k]!.ids, alone[0]![k]!.ids];
        for (const got of ids) assert.deepEqual(got, one.ids, `request ${i} sample ${k}`);
      }
    }
    assert.notDeepEqual(together[0]![0]!.ids, together[0]![1]!.ids, 'samples of one request differ');
  });

  test(`${name}: top-k sampling log-probs; reference log-probs = the reference model's full forward`, async () => {
    // the reference: the same weights with the final norm halved (flatter logits), a different model
    const w = model.weights;
    const reference = new Model(model.config, { ...w, norm: f32Tensor(toFloat32(w.norm).map((v) => v / 2), w.norm.shape) }, backend);
    let stats: BatchStats | undefined;
    const out = await generateBatch(model, [{ prompt: prompts[0]!, n: 2, seed: 3 }, { prompt: prompts[2]!, seed: 4 }], {
      maxTokens: 8, temperature: 1.3, topK: 5, logprobs: true, reference, maxRows: 2, onStats: (s) => { stats = s; },
    });
    const reqPrompts = [prompts[0]!, prompts[2]!];
    out.forEach((samples, i) => samples.forEach((s, k) => {
      const what = `request ${i} sample ${k}`;
      const logits = fullLogits(model, reqPrompts[i]!, s.ids);
      expectLogprobs(`${what} logprobs`, s.logprobs, s.ids.map((id, j) => logSoftmax64(logits[j]!, id)));
      expectLogprobs(`${what} samplingLogprobs`, s.samplingLogprobs, s.ids.map((id, j) => logSoftmax64(logits[j]!, id, 1.3, 5)));
      const refLogits = fullLogits(reference, reqPrompts[i]!, s.ids);
      expectLogprobs(`${what} refLogprobs`, s.refLogprobs, s.ids.map((id, j) => logSoftmax64(refLogits[j]!, id)));
      assert.ok(relMaxErr(s.refLogprobs!, s.logprobs!).metric > 1e-2, 'the reference is another model');
    }));
    // the reference ran each prompt once (but its last token) and each sample's ids but the last
    const idsRun = out.flat().reduce((a, s) => a + s.ids.length, 0);
    assert.equal(stats!.referenceTokens, prompts[0]!.length - 1 + prompts[2]!.length - 1 + idsRun);
  });

  test(`${name}: n samples share one prefill; stop ids and the stop callback end rows`, async () => {
    const count = countTokens(model);
    let stats: BatchStats | undefined;
    const seen: string[] = [];
    const out = await generateBatch(model, [{ prompt: prompts[2]!, n: 4, seed: 1, maxTokens: 7 }], {
      maxTokens: 99, temperature: 1, stopIds: [], maxRows: 3, prefillChunk: 5, onStats: (s) => { stats = s; },
      onRow: (i, k, r) => seen.push(`${i}.${k}:${r.ids.length}`),
    });
    const P = prompts[2]!.length;
    assert.equal(stats!.prefillTokens, P);
    assert.equal(stats!.prefillCalls, Math.ceil(P / 5), 'prefill in chunks of 5 tokens');
    // the prompt once, then each sample's tokens but its last
    assert.equal(count.tokens, P + out[0]!.reduce((a, s) => a + s.ids.length - 1, 0));
    assert.equal(count.calls, stats!.prefillCalls + stats!.decodeSteps);
    assert.deepEqual(seen.sort(), ['0.0:7', '0.1:7', '0.2:7', '0.3:7']);
    Reflect.deleteProperty(model, 'forward'); // back to the class's method

    const greedy = (await generateBatch(model, [{ prompt: prompts[0]! }], { maxTokens: 12, temperature: 0 }))[0]![0]!.ids;
    const stopId = greedy[4]!;
    const atStop = greedy.indexOf(stopId);
    const byId = await generateBatch(model, [{ prompt: prompts[0]! }], { maxTokens: 12, temperature: 0, stopIds: [stopId], logprobs: true });
    assert.deepEqual(byId[0]![0]!.ids, greedy.slice(0, atStop));
    assert.equal(byId[0]![0]!.finishReason, 'stop');
    assert.equal(byId[0]![0]!.logprobs!.length, atStop);
    // the callback: stop once the row holds greedy[6], keeping the ids before it
    const byFn = await generateBatch(model, [{ prompt: prompts[0]! }, { prompt: prompts[1]!, maxTokens: 3 }], {
      maxTokens: 12, temperature: 0, logprobs: true,
      stop: (ids) => (ids[ids.length - 1] === greedy[6] ? ids.length - 1 : null),
    });
    const cut = greedy.indexOf(greedy[6]!);
    assert.deepEqual(byFn[0]![0]!.ids, greedy.slice(0, cut));
    assert.equal(byFn[0]![0]!.finishReason, 'stop');
    assert.equal(byFn[0]![0]!.logprobs!.length, cut);
    assert.equal(byFn[1]![0]!.ids.length, 3);
  });
}

test('batch: an abort ends active rows with their tokens so far and unstarted samples with none', async () => {
  const { model, tokenizer } = openModel(fixture('gguf', 'stories15M-Q8_0.gguf'), { backend: nativeBackend ?? refBackend });
  const prompt = tokenizer!.encode('Once upon a time', { bos: true });
  const ac = new AbortController();
  let steps = 0;
  const out = await generateBatch(model, [{ prompt, n: 2 }, { prompt, n: 3 }], {
    maxTokens: 50, temperature: 0, stopIds: [], maxRows: 2, signal: ac.signal,
    stop: () => { if (++steps === 8) ac.abort(); return null; },
  });
  const reasons = out.map((r) => r.map((s: BatchSample) => `${s.finishReason}:${s.ids.length}`));
  assert.deepEqual(reasons, [['abort:4', 'abort:4'], ['abort:0', 'abort:0', 'abort:0']]);
});

test('batch: mistakes are Llama2Errors naming the request and the field', async () => {
  const oc = loadCase('a_tiny_mha');
  const model = new Model(oc.config, metaWeights(oc), refBackend);
  const ctx = oc.config.max_seq_len;
  const run = (reqs: Parameters<typeof generateBatch>[1], o: Partial<Parameters<typeof generateBatch>[2]> = {}) =>
    generateBatch(model, reqs, { maxTokens: 4, ...o });
  await assert.rejects(run([{ prompt: [1] }, { prompt: new Array(ctx).fill(1) }]), (e: unknown) =>
    e instanceof Llama2Error && /batch request 1: the prompt's 128 tokens do not fit the model's context of 128 tokens/.test(e.message));
  await assert.rejects(run([{ prompt: [] }]), /batch request 0: expected a prompt of at least one token/);
  await assert.rejects(run([{ prompt: [1, 999] }]), /batch request 0: prompt\[1\]: expected an integer in 0..255, found 999/);
  await assert.rejects(run([{ prompt: [1], n: 0 }]), /batch request 0: n: expected an integer ≥ 1, found 0/);
  await assert.rejects(run([{ prompt: [1] }], { maxRows: 0 }), /batch maxRows: expected an integer ≥ 1, found 0/);
  await assert.rejects(run([{ prompt: [1] }], { topP: 2 }), /topP: expected a number in \(0, 1\]/);
  const other = loadCase('b_gqa');
  await assert.rejects(run([{ prompt: [1] }], { reference: new Model(other.config, metaWeights(other), refBackend) }),
    /batch reference: expected a model with the policy's vocabulary of 256 tokens, found 300/);
  await assert.rejects(run([{ prompt: [1] }], { stop: () => 9 }), /batch stop\(\): the length to keep: expected an integer in 0..1, found 9/);
  // nothing to generate: no forward at all
  const none = await run([{ prompt: [1, 2], n: 2, maxTokens: 0 }], { logprobs: true });
  assert.deepEqual(none[0]!.map((s) => [s.ids.length, s.finishReason, s.logprobs!.length]), [[0, 'length', 0], [0, 'length', 0]]);
  // a prompt that fills all but one position of the context: one token, then 'length'
  const full = await run([{ prompt: new Array(ctx - 1).fill(1) }], { temperature: 0 });
  assert.deepEqual([full[0]![0]!.ids.length, full[0]![0]!.finishReason], [1, 'length']);
});
