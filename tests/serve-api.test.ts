/**
 * `llama2 serve` through the official `openai` client against in-process references on the same
 * file (tests/fixtures/gguf/stories15M-Q8_0.gguf): greedy text = generate(), seeded samples =
 * generate() seeded hashSeed(seed, k), stop strings cut where the greedy text holds them,
 * log-probs = float64 log-softmax of a full forward, tokenize = the Tokenizer; every error case
 * raises the client's typed error with our message; rewards = scoreDialogs on reward models
 * written with writeHfDir; /health answers while the engine worker is busy with a long prefill.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { AuthenticationError, BadRequestError } from 'openai';
import { fixture } from './helpers/cli.js';
import { failingServer, startServer, type Served } from './helpers/serve.js';
import { openModel } from '../src/open.js';
import { generate } from '../src/generate/generate.js';
import { renderPrompt, type Message } from '../src/chat/format.js';
import { hashSeed } from '../src/util/rng.js';
import { loadModelFile } from '../src/formats/load.js';
import { writeHfDir } from '../src/formats/hf.js';
import { f32Tensor } from '../src/tensor.js';
import { combinedReward, scoreDialogs, toUnit } from '../src/chat/reward-score.js';
import { randn } from './helpers/random.js';

const MODEL = fixture('gguf', 'stories15M-Q8_0.gguf');
const KEY = 'test-key';
/** float32 kernels against a float64 log-softmax */
const LOGPROB_TOL = 2e-3;

const ref = openModel(MODEL);
const tok = ref.tokenizer!;
const dir = mkdtempSync(join(tmpdir(), 'serve-api-'));
let srv: Served;
let client: OpenAI;
let modelId: string;
const dialog: Message[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Tell me a story about a cat.' }];

/** a reward model: the 2000-piece oracle model with a score.weight head of seed `seed` */
function rewardModel(name: string, seed: number): string {
  const base = loadModelFile(fixture('oracle', 'e_tok2k_chat', 'hf'), { mmap: false, tokenizer: fixture('oracle', 'tokenizer', 'tokenizer.model') });
  const out = join(dir, name);
  const C = base.config.dim;
  writeHfDir(out, base.config, { ...base.weights, heads: { 'score.weight': f32Tensor(randn(C, seed, 0.5), [1, C]) } }, { vocab: base.vocab! });
  return out;
}

before(async () => {
  srv = await startServer(['--model', MODEL, '--api-key', KEY, '--parallel', '4', '--max-body', '65536',
    '--rm-helpful', rewardModel('rm-h', 1), '--rm-safety', rewardModel('rm-s', 2)]);
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY, maxRetries: 0 });
  modelId = (await client.models.list()).data[0]!.id;
});
after(async () => {
  await srv?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const greedyRef = async (maxTokens: number) => generate(ref.model, tok, renderPrompt(tok, dialog), { temperature: 0, maxTokens });

test('models, chat (whole and streamed) = in-process greedy generate, usage counted', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['stories15M-Q8_0']);
  const meta = (models.data[0] as unknown as { meta: { backend: string; n_ctx: number } }).meta;
  assert.equal(meta.backend, ref.model.backend.name, 'the addon loads in the engine worker as it does here');
  assert.equal(meta.n_ctx, 256);
  const want = await greedyRef(24);
  const r = await client.chat.completions.create({ model: modelId, messages: dialog, temperature: 0, max_tokens: 24 });
  assert.equal(r.choices[0]!.message.content, want.text);
  assert.equal(r.choices[0]!.finish_reason, want.finishReason === 'length' ? 'length' : 'stop');
  assert.deepEqual(r.usage, { prompt_tokens: want.promptIds.length, completion_tokens: want.ids.length, total_tokens: want.promptIds.length + want.ids.length });
  const stream = await client.chat.completions.create({ model: modelId, messages: dialog, temperature: 0, max_tokens: 24, stream: true, stream_options: { include_usage: true } });
  let text = '', chunks = 0, finish: string | null = null, usage: unknown = null;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) { text += ch.delta.content ?? ''; finish = ch.finish_reason ?? finish; }
  }
  assert.equal(text, want.text);
  assert.ok(chunks > 10, `streamed in pieces (${chunks} chunks)`);
  assert.equal(finish, r.choices[0]!.finish_reason);
  assert.deepEqual(usage, r.usage);
});

test('seeds: choice k of n = generate seeded hashSeed(seed, k); the same seed twice gives the same text', async () => {
  const opts = { temperature: 1, top_p: 0.9, max_tokens: 16 };
  const r = await client.chat.completions.create({ model: modelId, messages: dialog, ...opts, n: 3, seed: 42 });
  assert.equal(r.choices.length, 3);
  let tokens = 0;
  for (const [k, ch] of r.choices.entries()) {
    const want = await generate(ref.model, tok, renderPrompt(tok, dialog), { temperature: 1, topP: 0.9, maxTokens: 16, seed: hashSeed(42, k) });
    assert.equal(ch.message.content, want.text, `choice ${k}`);
    tokens += want.ids.length;
  }
  assert.equal(r.usage!.completion_tokens, tokens);
  assert.notEqual(r.choices[0]!.message.content, r.choices[1]!.message.content);
  const again = await client.chat.completions.create({ model: modelId, messages: dialog, ...opts, seed: 42 });
  assert.equal(again.choices[0]!.message.content, r.choices[0]!.message.content);
});

test('stop strings end the text before their first occurrence', async () => {
  const g = (await greedyRef(40)).text;
  const stop = g.slice(12, 15);
  const r = await client.chat.completions.create({ model: modelId, messages: dialog, temperature: 0, max_tokens: 40, stop: ['never-there', stop] });
  assert.equal(r.choices[0]!.message.content, g.slice(0, g.indexOf(stop)));
  assert.equal(r.choices[0]!.finish_reason, 'stop');
});

test('logprobs and top_logprobs = float64 log-softmax of a full forward over prompt + answer', async () => {
  const r = await client.chat.completions.create({ model: modelId, messages: dialog, temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0]!.logprobs!.content!;
  const want = await greedyRef(8);
  assert.equal(content.length, want.ids.length);
  const prompt = want.promptIds;
  const V = ref.model.config.vocab_size;
  const all = ref.model.step([...prompt, ...want.ids], ref.model.newCache(prompt.length + want.ids.length), 'all');
  want.ids.forEach((id, j) => {
    const row = Array.from(all.subarray((prompt.length - 1 + j) * V, (prompt.length + j) * V));
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    const order = row.map((_, i) => i).sort((a, b) => row[b]! - row[a]!);
    const got = content[j]!;
    assert.ok(Math.abs(got.logprob - (row[id]! - lse)) < LOGPROB_TOL, `token ${j}: ${got.logprob} vs ${row[id]! - lse}`);
    assert.equal(got.top_logprobs.length, 3);
    got.top_logprobs.forEach((t, i) => {
      assert.ok(Math.abs(t.logprob - (row[order[i]!]! - lse)) < LOGPROB_TOL, `token ${j} top ${i}`);
      assert.deepEqual(t.bytes, [...Buffer.from(tok.surface(order[i]!, false), 'utf8')]);
    });
    assert.equal(got.token, got.top_logprobs[0]!.token, 'greedy picks the most likely token');
  });
});

test('completions: text and token-id prompts, several prompts, legacy logprobs', async () => {
  const ids = tok.encode('Once upon a time', { bos: true });
  const want = await generate(ref.model, tok, ids, { temperature: 0, maxTokens: 10 });
  const byText = await client.completions.create({ model: modelId, prompt: 'Once upon a time', temperature: 0, max_tokens: 10, logprobs: 2 });
  assert.equal(byText.choices[0]!.text, want.text);
  assert.equal(byText.usage!.prompt_tokens, ids.length);
  const lp = byText.choices[0]!.logprobs!;
  assert.equal(lp.tokens!.length, want.ids.length);
  assert.equal(lp.tokens!.join('').trimStart(), want.text.trimStart(), 'the tokens spell the text (the first keeps its "▁" space)');
  assert.equal(Object.keys(lp.top_logprobs![0]!).length, 2);
  const byIds = await client.completions.create({ model: modelId, prompt: [ids, [1, 450]], temperature: 0, max_tokens: 10 });
  assert.equal(byIds.choices.length, 2);
  assert.equal(byIds.choices[0]!.text, want.text);
  assert.equal(byIds.choices[1]!.text, (await generate(ref.model, tok, [1, 450], { temperature: 0, maxTokens: 10 })).text);
});

test('tokenize / detokenize in llama.cpp shapes = the Tokenizer', async () => {
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${srv.url}${path}`, { method: 'POST', headers: { Authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() as Record<string, unknown> };
  };
  const text = 'Héllo wörld, 12 cats 😺';
  assert.deepEqual((await post('/tokenize', { content: text })).body, { tokens: tok.encode(text) });
  assert.deepEqual((await post('/tokenize', { content: text, add_special: true })).body, { tokens: tok.encode(text, { bos: true }) });
  assert.deepEqual((await post('/detokenize', { tokens: tok.encode(text) })).body, { content: text });
  const bad = await post('/detokenize', { tokens: [1, 99999] });
  assert.equal(bad.status, 400);
  assert.match(String((bad.body['error'] as { message: string }).message), /tokens\[1\]: token id 99999 is outside the vocabulary/);
});

test('errors: the client raises its typed errors with our messages and the field named', async () => {
  const bad = async (p: Promise<unknown>, type: typeof BadRequestError, re: RegExp, param?: string | null, code?: string) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
      assert.match(e.message, re);
      if (param !== undefined) assert.equal(e.param, param);
      if (code !== undefined) assert.equal(e.code, code);
      return true;
    });
  };
  const msgs = dialog;
  await bad(client.chat.completions.create({ model: modelId, messages: msgs, temperature: 'hot' as unknown as number }), BadRequestError, /temperature: .*expected number/, 'temperature');
  await bad(client.chat.completions.create({ model: 'gpt-9', messages: msgs }), BadRequestError, /unknown model "gpt-9"/, 'model', 'model_not_found');
  await bad(client.chat.completions.create({ model: modelId, messages: msgs, n: 5 }), BadRequestError, /n: expected at most 4/, 'n');
  await bad(client.chat.completions.create({ model: modelId, messages: msgs, max_tokens: 500 }), BadRequestError, /maximum context length is 256 tokens/, 'messages', 'context_length_exceeded');
  await bad(client.chat.completions.create({ model: modelId, messages: [{ role: 'assistant', content: 'hi' }] }), BadRequestError, /expected user/, 'messages');
  await bad(client.chat.completions.create({ model: modelId, messages: [{ role: 'tool', content: 'x', tool_call_id: 'a' }] as never }), BadRequestError, /messages\[0\]\.role/, 'messages[0].role');
  await bad(client.completions.create({ model: modelId, prompt: [1, 99999] }), BadRequestError, /prompt\[1\]: token id 99999/, 'prompt');
  const wrongKey = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'nope', maxRetries: 0 });
  await bad(wrongKey.models.list(), AuthenticationError as unknown as typeof BadRequestError, /Incorrect API key/, null, 'invalid_api_key');
  // what the client cannot send: no key, malformed JSON, an oversize body
  const raw = async (init: RequestInit, path = '/v1/chat/completions') => {
    const r = await fetch(`${srv.url}${path}`, { method: 'POST', ...init });
    return { status: r.status, body: await r.json() as { error: { message: string; type: string } } };
  };
  const none = await raw({ body: '{}' });
  assert.equal(none.status, 401);
  assert.match(none.body.error.message, /Missing API key/);
  const auth = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };
  const malformed = await raw({ headers: auth, body: '{"messages": [' });
  assert.equal(malformed.status, 400);
  assert.match(malformed.body.error.message, /malformed JSON/);
  assert.equal(malformed.body.error.type, 'invalid_request_error');
  const huge = await raw({ headers: auth, body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(70_000) }] }) });
  assert.equal(huge.status, 413);
  assert.match(huge.body.error.message, /larger than the server's limit of 65536 bytes/);
  const health = await fetch(`${srv.url}/health`);
  assert.deepEqual([health.status, await health.json()], [200, { status: 'ok' }], '/health needs no key');
  assert.doesNotMatch(srv.stderr(), /at .*\.js:\d+/, 'no stack trace in the log');
});

test('rewards: raw scores = scoreDialogs of each reward model, unit = logistic, combined = the safety gate', async () => {
  const conv: Message[] = [{ role: 'user', content: 'How do I bake bread?' }, { role: 'assistant', content: 'Mix flour, water, yeast; knead; bake.' }];
  const r = await fetch(`${srv.url}/v1/rewards`, { method: 'POST', headers: { Authorization: `Bearer ${KEY}` }, body: JSON.stringify({ messages: conv, safety_prompt: false }) });
  const body = await r.json() as { object: string; scores: { helpful: number; safety: number }; unit: { helpful: number; safety: number }; combined: number; safety_prompt: boolean };
  assert.equal(r.status, 200);
  const want = (name: string) => {
    const rm = openModel(join(dir, name));
    return scoreDialogs(rm.model, rm.tokenizer!, [conv])[0]!;
  };
  const h = want('rm-h'), s = want('rm-s');
  assert.ok(Math.abs(body.scores.helpful - h) < 1e-4 && Math.abs(body.scores.safety - s) < 1e-4, JSON.stringify(body));
  assert.ok(Math.abs(body.unit.helpful - toUnit(h)) < 1e-4);
  assert.equal(body.combined, combinedReward({ helpful: body.unit.helpful, safety: body.unit.safety, safetyPrompt: false }));
  assert.equal(body.object, 'reward');
});

test('--model-b: two models side by side, each request to the one it names', async () => {
  const two = await startServer(['--model', MODEL, '--model-b', MODEL, '--parallel', '2']);
  try {
    const c = new OpenAI({ baseURL: `${two.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    assert.deepEqual((await c.models.list()).data.map((m) => m.id), ['stories15M-Q8_0', 'stories15M-Q8_0-b']);
    const want = (await greedyRef(12)).text;
    const [a, b] = await Promise.all(['stories15M-Q8_0', 'stories15M-Q8_0-b'].map((model) =>
      c.chat.completions.create({ model, messages: dialog, temperature: 0, max_tokens: 12 })));
    assert.deepEqual([a!.model, a!.choices[0]!.message.content, b!.model, b!.choices[0]!.message.content], ['stories15M-Q8_0', want, 'stories15M-Q8_0-b', want]);
  } finally {
    await two.stop();
  }
});

test('startup errors: a reward model without a score head, one reward model alone', async () => {
  const noHead = await failingServer(['--model', MODEL, '--rm-helpful', MODEL, '--rm-safety', MODEL]);
  assert.equal(noHead.code, 1);
  assert.match(noHead.stderr, /error: --rm-helpful .*stories15M-Q8_0\.gguf: the model has no "score\.weight" head/);
  const alone = await failingServer(['--model', MODEL, '--rm-helpful', MODEL]);
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, /--rm-helpful and --rm-safety go together/);
});

test('/health answers within milliseconds while the engine worker runs a long prefill (reference kernels)', async () => {
  const slow = await startServer(['--model', MODEL, '--parallel', '1', '--prefill-chunk', '512'], { LLAMA2_BACKEND: 'ref' });
  try {
    const prompt = Array.from({ length: 180 }, (_, i) => (i === 0 ? 1 : 300 + i));
    let finished = false;
    const t0 = performance.now();
    const job = fetch(`${slow.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt, max_tokens: 1 }) }).then(async (r) => { await r.text(); finished = true; });
    let worst = 0, probes = 0;
    await new Promise((r) => setTimeout(r, 100));
    while (!finished && probes < 200) {
      const t = performance.now();
      const h = await fetch(`${slow.url}/health`);
      assert.equal(h.status, 200);
      if (!finished) { worst = Math.max(worst, performance.now() - t); probes++; }
      await new Promise((r) => setTimeout(r, 20));
    }
    await job;
    const total = performance.now() - t0;
    assert.ok(probes >= 5 && total > 500, `the prefill took ${total.toFixed(0)} ms with ${probes} probes: too short to show anything`);
    // blocked, /health would wait for the whole prefill; answered from a free event loop it takes a
    // small share of it however loaded the machine is (a ratio, not a wall-clock limit)
    assert.ok(worst < total / 5, `/health took up to ${worst.toFixed(0)} ms during a ${total.toFixed(0)} ms prefill`);
  } finally {
    await slow.stop();
  }
});
