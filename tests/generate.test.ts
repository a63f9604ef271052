/**
 * The generation loop: streaming equals the final text, stop strings, abort, limits, EOS — through
 * the reference backend and, when the addon is built, the native one (its engine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from './helpers/cli.js';
import { openModel } from '../src/open.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend } from '../src/backend/native.js';
import type { Backend } from '../src/backend/types.js';
import { generate, generateStream } from '../src/generate/generate.js';
import { createKVCache } from '../src/model/forward.js';
import { Llama2Error } from '../src/util/errors.js';

const BACKENDS: Array<[string, Backend]> = [['ref', refBackend]];
if (nativeBackend) BACKENDS.push(['native', nativeBackend]);

for (const [name, backend] of BACKENDS) {
  const opened = openModel(fixture('gguf', 'stories15M-Q8_0.gguf'), { backend });
  const model = opened.model;
  const tok = opened.tokenizer!;
  const prompt = tok.encode('Once upon a time', { bos: true });

  test(`${name}: step writes into a caller's logits buffer the values it would return in a new one`, () => {
    const fresh = model.step(prompt, model.newCache(16), 'last');
    const out = new Float32Array(model.config.vocab_size + 5).fill(NaN);
    const got = model.step(prompt, model.newCache(16), 'last', out);
    assert.equal(got.buffer, out.buffer);
    assert.deepEqual(got, fresh);
    const all = model.step(prompt, model.newCache(16), 'all', out); // too small for (T, V): a new buffer
    assert.notEqual(all.buffer, out.buffer);
    assert.deepEqual(all.subarray((prompt.length - 1) * model.config.vocab_size), fresh);
  });

  test(`${name}: streamed pieces concatenate to the result text, which is decode(ids)`, async () => {
    const it = generateStream(model, tok, prompt, { temperature: 1, topP: 1, seed: 9, maxTokens: 24, stopAtEos: false });
    let streamed = '';
    for (;;) {
      const r = await it.next();
      if (r.done) {
        assert.equal(streamed, r.value.text);
        assert.equal(r.value.text, tok.decode(r.value.ids));
        assert.equal(r.value.ids.length, 24);
        assert.equal(r.value.finishReason, 'length');
        assert.ok(r.value.timings.prefillTokPerSec > 0 && r.value.timings.decodeTokPerSec > 0);
        break;
      }
      // a piece never ends inside a surrogate pair (i.e. never splits a character)
      const last = r.value.text.charCodeAt(r.value.text.length - 1);
      assert.ok(!(last >= 0xd800 && last <= 0xdbff), 'piece ends with a lone high surrogate');
      streamed += r.value.text;
    }
  });

  test(`${name}: a stop string ends generation before it; the text before it is kept`, async () => {
    const full = await generate(model, tok, prompt, { temperature: 0, maxTokens: 30, stopAtEos: false });
    assert.ok(full.text.length > 10, `greedy text too short to test: ${JSON.stringify(full.text)}`);
    const stop = full.text.slice(6, 9);
    const at = full.text.indexOf(stop);
    const r = await generate(model, tok, prompt, { temperature: 0, maxTokens: 30, stopAtEos: false, stop: [stop] });
    assert.equal(r.finishReason, 'stop');
    assert.equal(r.text, full.text.slice(0, at));
    assert.deepEqual(r.ids, full.ids.slice(0, r.ids.length), 'same greedy tokens up to the stop');
  });

  test(`${name}: an AbortSignal stops generation and returns what was made so far`, async () => {
    const ac = new AbortController();
    const it = generateStream(model, tok, prompt, { temperature: 0, maxTokens: 50, stopAtEos: false, signal: ac.signal });
    let n = 0;
    for (;;) {
      const r = await it.next();
      if (r.done) {
        assert.equal(r.value.finishReason, 'abort');
        assert.equal(r.value.ids.length, 3);
        break;
      }
      if (++n === 3) ac.abort();
    }
  });

  test(`${name}: limits: max tokens, the context, and prompts that do not fit`, async () => {
    const small = openModel(fixture('gguf', 'stories15M-Q8_0.gguf'), { backend, ctx: 10 }).model;
    const r = await generate(small, tok, prompt, { temperature: 0, stopAtEos: false });
    assert.equal(prompt.length + r.ids.length, 10, 'generation fills the context and stops');
    assert.equal(r.finishReason, 'length');
    const z = await generate(model, tok, prompt, { temperature: 0, maxTokens: 0 });
    assert.deepEqual(z.ids, []);
    const long = Array.from({ length: 10 }, () => 100);
    await assert.rejects(generate(small, tok, long, {}), (e: unknown) => e instanceof Llama2Error && /do not fit the model's context of 10/.test(e.message));
    await assert.rejects(generate(model, tok, [], {}), Llama2Error);
  });

  test(`${name}: prefill in chunks gives the same tokens as one prefill`, async () => {
    const a = await generate(model, tok, prompt, { temperature: 0, maxTokens: 8, stopAtEos: false });
    const b = await generate(model, tok, prompt, { temperature: 0, maxTokens: 8, stopAtEos: false, prefillChunk: 2 });
    assert.deepEqual(b.ids, a.ids);
  });
}

test('without a tokenizer (codec null): the same ids, text null, EOS only when named, no stop strings', async () => {
  const opened = openModel(fixture('gguf', 'stories15M-Q8_0.gguf'), { backend: refBackend });
  const tok = opened.tokenizer!;
  const prompt = tok.encode('Once upon a time', { bos: true });
  const withTok = await generate(opened.model, tok, prompt, { temperature: 0, maxTokens: 12, stopAtEos: false });
  const chunks: string[] = [];
  const it = generateStream(opened.model, null, prompt, { temperature: 0, maxTokens: 12 });
  let r = await it.next();
  for (; !r.done; r = await it.next()) chunks.push(r.value.text);
  assert.deepEqual(r.value.ids, withTok.ids, 'no EOS id named: nothing stops early');
  assert.equal(r.value.text, null);
  assert.deepEqual(chunks, withTok.ids.map(() => ''));
  // naming one of the generated ids as EOS stops right before it
  const eos = withTok.ids[5]!;
  const first = withTok.ids.indexOf(eos);
  const itStopped = generateStream(opened.model, null, prompt, { temperature: 0, maxTokens: 12, eosId: eos });
  let s = await itStopped.next();
  while (!s.done) s = await itStopped.next();
  assert.deepEqual(s.value.ids, withTok.ids.slice(0, first));
  assert.equal(s.value.finishReason, 'eos');
  await assert.rejects(generateStream(opened.model, null, prompt, { stop: ['x'] }).next(), /stop strings: they need a tokenizer/);
});

test('the KV cache is sized by what generation needs; one larger than memory is a clear error', async () => {
  const opened = openModel(fixture('gguf', 'stories15M-Q8_0.gguf'), { backend: refBackend, ctx: 1_000_000_000 });
  const { model } = opened;
  const tok = opened.tokenizer!;
  const prompt = tok.encode('Once upon a time', { bos: true });
  const r = await generate(model, tok, prompt, { temperature: 0, maxTokens: 3, stopAtEos: false }); // a context of 1e9, a cache of 8
  assert.equal(r.ids.length, 3);
  await assert.rejects(generate(model, tok, prompt, { temperature: 0 }), (e: unknown) =>
    e instanceof Llama2Error && /KV cache: 1000000000 positions need 12\.57 TiB .* but this machine has .* of memory; use a smaller context \(--ctx\) or fewer new tokens \(--max-tokens\)/.test(e.message));
  assert.throws(() => createKVCache(model.config, 0), /at least 1 position/);
  assert.throws(() => createKVCache(model.config, 2 ** 40), Llama2Error);
});
