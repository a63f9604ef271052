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
  assert.equal(api.ffnHiddenDim(api.preset('llama2-7b')), 11008);
  assert.deepEqual(tokenizer!.encode('Hello world', { bos: true }), [1, 15043, 3186]);
  assert.equal(tokenizer!.decode([15043, 3186]), 'Hello world');
});
