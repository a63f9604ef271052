/**
 * The continuous-batching scheduler (src/generate/scheduler.ts) against one-by-one `generate`:
 * a request that joins while others decode gets the ids it gets alone (greedy and seeded
 * sampling), a long prompt prefilled in chunks inside the decode steps leaves the running rows a
 * token every step, a cancel ends a request's rows at once and its slot goes to the next request,
 * and top log-probs are the K largest of a float64 log-softmax.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCase, metaWeights } from './helpers/oracle-case.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend } from '../src/backend/native.js';
import { Model, type ForwardOptions, type Segment } from '../src/model/forward.js';
import { generateStream } from '../src/generate/generate.js';
import { Scheduler, topLogprobs, type SeqRequest, type SeqResult } from '../src/generate/scheduler.js';
import { hashSeed } from '../src/util/rng.js';

const oc = loadCase('b_gqa');
const model = new Model(oc.config, metaWeights(oc), nativeBackend ?? refBackend);
const p0 = oc.inputs.ints('greedy.prompt0'), p1 = oc.inputs.ints('greedy.prompt1');

/** ids alone: generate() with the sampler seeded as the scheduler seeds sample k */
async function alone(prompt: readonly number[], maxTokens: number, temperature: number, seed = 0, k = 0): Promise<number[]> {
  const it = generateStream(model, null, prompt, { maxTokens, temperature, topP: 0.9, seed: hashSeed(seed, k), stopAtEos: false });
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value.ids;
  }
}

function track(s: Scheduler, spec: Omit<SeqRequest, 'onDone'>) {
  const out: SeqResult[] = [];
  const ticket = s.submit({ ...spec, onDone: (k, r) => { out[k] = r; } });
  return { out, ticket };
}

test('scheduler: requests joining between steps get the ids they get alone (greedy and seeded n)', async () => {
  const s = new Scheduler(model, { maxRows: 4, prefillChunk: 4 });
  const a = track(s, { prompt: p0, maxTokens: 24, sampler: { temperature: 0 } });
  for (let i = 0; i < 5; i++) s.step();
  const b = track(s, { prompt: p1, n: 2, seed: 9, maxTokens: 16, sampler: { temperature: 1, topP: 0.9 } });
  s.step();
  const c = track(s, { prompt: [...p1, ...p0], maxTokens: 12, sampler: { temperature: 0 } });
  while (!s.idle) s.step();
  assert.deepEqual(a.out[0]!.ids, await alone(p0, 24, 0));
  assert.deepEqual(b.out[0]!.ids, await alone(p1, 16, 1, 9, 0));
  assert.deepEqual(b.out[1]!.ids, await alone(p1, 16, 1, 9, 1));
  assert.deepEqual(c.out[0]!.ids, await alone([...p1, ...p0], 12, 0));
  assert.ok(a.out.concat(b.out, c.out).every((r) => r.finishReason === 'length'));
});

test('scheduler: a long prompt is prefilled in chunks while running rows get a token every step', () => {
  const s = new Scheduler(model, { maxRows: 4, prefillChunk: 5 });
  const calls: number[] = [];
  const orig = model.forward.bind(model);
  model.forward = (segs: readonly Segment[], opts?: ForwardOptions) => {
    calls.push(segs.reduce((n, g) => n + g.tokens.length, 0));
    return orig(segs, opts);
  };
  try {
    let runningTokens = 0, longTokens = 0;
    s.submit({ prompt: p0.slice(0, 3), maxTokens: 40, sampler: { temperature: 0 }, onToken: () => { runningTokens++; } });
    s.step(); // its prefill
    s.step(); // its first token
    const long = Array.from({ length: 23 }, (_, i) => (i * 7) % oc.config.vocab_size);
    s.submit({ prompt: long, maxTokens: 2, sampler: { temperature: 0 }, onToken: () => { longTokens++; } });
    const before = runningTokens;
    let steps = 0;
    while (longTokens === 0) { s.step(); steps++; }
    assert.equal(steps, Math.ceil(23 / 5) + 1, 'five chunks of ≤ 5 prompt tokens, then its first token');
    assert.equal(runningTokens - before, steps, 'the running row got a token at every step of the prefill');
    assert.ok(calls.every((n) => n <= 5 + 2), `no call holds more than the chunk plus one token per row: ${calls.join(',')}`);
    assert.equal(s.stats.prefillTokens, 3 + 23);
  } finally {
    Reflect.deleteProperty(model, 'forward');
  }
});

test('scheduler: a cancel ends the rows at once and gives the slot to the next request', async () => {
  const s = new Scheduler(model, { maxRows: 1 });
  const a = track(s, { prompt: p0, n: 2, maxTokens: 50, sampler: { temperature: 0 } });
  const b = track(s, { prompt: p1, maxTokens: 6, sampler: { temperature: 0 } });
  for (let i = 0; i < 4; i++) s.step();
  assert.equal(s.running, 1);
  assert.equal(b.out.length, 0, 'b waits: the only slot is taken');
  a.ticket.cancel();
  assert.equal(a.out[0]!.finishReason, 'abort');
  assert.deepEqual(a.out[0]!.ids, (await alone(p0, 50, 0)).slice(0, a.out[0]!.ids.length));
  assert.ok(a.out[0]!.ids.length >= 2, 'the tokens so far are kept');
  assert.deepEqual([a.out[1]!.ids, a.out[1]!.finishReason], [[], 'abort'], 'the sample never started has none');
  a.ticket.cancel(); // idempotent
  while (!s.idle) s.step();
  assert.deepEqual(b.out[0]!.ids, await alone(p1, 6, 0));
});

test('topLogprobs: the K largest of a float64 log-softmax, largest first', () => {
  const row = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i * 1.7) * 3 + (i === 123 ? 5 : 0));
  const max = Math.max(...row);
  const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
  const order = Array.from(row.keys()).sort((x, y) => row[y]! - row[x]!);
  const got = topLogprobs(row, lse, 5);
  assert.deepEqual(got.map((t) => t.id), order.slice(0, 5));
  got.forEach((t) => assert.ok(Math.abs(t.logprob - (row[t.id]! - lse)) < 1e-9));
  assert.equal(topLogprobs(row, lse, 1)[0]!.id, 123);
});
