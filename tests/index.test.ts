/** The public API: the package entry exports what its examples use, and they run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as api from '../src/index.js';
import { fixture } from './helpers/cli.js';

test('the documented example runs through the public exports', async () => {
  const { model, tokenizer } = api.openModel(fixture('gguf', 'stories15M-Q8_0.gguf'), { backend: api.refBackend });
  const ids = tokenizer!.encode('Once upon a time', { bos: true });
  const r = await api.generate(model, tokenizer!, ids, { maxTokens: 4, temperature: 0, stopAtEos: false });
  assert.equal(r.ids.length, 4);
  const out = await api.generateBatch(model, [{ prompt: ids, n: 2, seed: 7 }, { prompt: ids.slice(0, 2) }], {
    maxTokens: 3, eosId: tokenizer!.eosId, temperature: 0, logprobs: true, reference: model,
  });
  assert.deepEqual(out[0]![0]!.ids, r.ids.slice(0, 3), 'greedy batch = greedy generate');
  assert.deepEqual(out[0]![1]!.ids, r.ids.slice(0, 3));
  assert.equal(out[1]!.length, 1);
  out[0]![0]!.logprobs!.forEach((lp, t) => assert.ok(Math.abs(lp - out[0]![0]!.refLogprobs![t]!) < 1e-4, 'the policy as its own reference'));
  assert.equal(api.ffnHiddenDim(api.preset('llama2-7b')), 11008);
  assert.deepEqual(tokenizer!.encode('Hello world', { bos: true }), [1, 15043, 3186]);
  assert.equal(tokenizer!.decode([15043, 3186]), 'Hello world');
});
