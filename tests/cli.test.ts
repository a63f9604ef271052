/**
 * The `llama2` command end to end, in child processes: the JSON forms scripts rely on, results
 * equal to the library's, and one-line errors (no stack traces) for user mistakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, runCli } from './helpers/cli.js';
import { openModel } from '../src/open.js';
import { refBackend } from '../src/backend/ref.js';
import { scoreWindows } from '../src/cli/perplexity.js';
import { argmax } from '../src/generate/sampler.js';
import { parseArgs } from '../src/cli/args.js';
import { loadVocab } from '../src/tokenizer/load.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { Llama2Error } from '../src/util/errors.js';

const GGUF = fixture('gguf', 'stories15M-Q8_0.gguf');
const HF_E = fixture('oracle', 'e_tok2k_chat', 'hf');
const TOK_E = fixture('oracle', 'tokenizer', 'tokenizer.model');
const REF = { LLAMA2_BACKEND: 'ref' };

function json(r: { status: number | null; stdout: string; stderr: string }): Record<string, unknown> {
  assert.equal(r.status, 0, `exit ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

/** One line on stderr starting with "error:", exit status 1, and the line matches `re`. */
function assertUserError(r: { status: number | null; stderr: string }, re: RegExp): void {
  assert.equal(r.status, 1, `expected exit 1, got ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('llama2: native backend unavailable'));
  assert.equal(lines.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, re);
}

test('generate --json with --prompt-ids is greedy-identical to the engine', () => {
  const out = json(runCli(['generate', '--model', GGUF, '--prompt-ids', '1,9038,2501,263,931', '--temperature', '0', '--max-tokens', '8', '--ignore-eos', '--json'], { env: REF }));
  assert.deepEqual(out['prompt_ids'], [1, 9038, 2501, 263, 931]);
  const ids = out['ids'] as number[];
  assert.equal(ids.length, 8);
  assert.equal(typeof out['text'], 'string');
  const t = out['timings'] as Record<string, number>;
  assert.ok(t['prefill_tokens_per_s']! > 0 && t['decode_tokens_per_s']! > 0);
  assert.ok(t['load_ms']! >= 0 && t['load_ms']! < 60_000, 'load_ms: time to open the model');
  // the same greedy continuation in-process
  const { model } = openModel(GGUF, { backend: refBackend });
  const cache = model.newCache(64);
  let logits = model.step([1, 9038, 2501, 263, 931], cache);
  const want: number[] = [];
  for (let i = 0; i < 8; i++) {
    want.push(argmax(logits));
    logits = model.step([want[i]!], cache);
  }
  assert.deepEqual(ids, want);
});

test('generate --prompt: text is tokenized with BOS; a seed makes sampling reproducible', () => {
  const args = ['generate', '--model', GGUF, '--prompt', 'Once upon a time', '--temperature', '0.9', '--max-tokens', '6', '--seed', '42', '--json'];
  const a = json(runCli(args, { env: REF }));
  const b = json(runCli(args, { env: REF }));
  assert.deepEqual(a['ids'], b['ids']);
  assert.equal(a['text'], b['text']);
  const { tokenizer } = openModel(GGUF, { backend: refBackend });
  assert.deepEqual(a['prompt_ids'], tokenizer!.encode('Once upon a time', { bos: true }));
  const c = json(runCli([...args.slice(0, -3), '--seed', '43', '--json'], { env: REF }));
  assert.equal((c['ids'] as number[]).length <= 6, true);
});

test('tokenize --json gives ids with BOS, --no-bos without', () => {
  const a = json(runCli(['tokenize', '--model', GGUF, '--json', 'Hello world! 123']));
  // the real Llama-2 vocabulary: ▁Hello ▁world ! ▁ 1 2 3
  assert.deepEqual(a['ids'], [1, 15043, 3186, 29991, 29871, 29896, 29906, 29941]);
  const b = json(runCli(['tokenize', '--model', GGUF, '--json', '--no-bos', 'Hello world! 123']));
  assert.deepEqual(b['ids'], [15043, 3186, 29991, 29871, 29896, 29906, 29941]);
});

test('perplexity --json: windows after BOS, every token scored', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llama2-ppl-'));
  const file = join(dir, 'text.txt');
  writeFileSync(file, 'The quick brown fox jumps over the lazy dog. Xin chào! 12345 — the end.\n');
  const out = json(runCli(['perplexity', '--model', HF_E, '--tokenizer', TOK_E, '--file', file, '--ctx', '7', '--json'], { env: REF }));
  const { model, tokenizer } = openModel(HF_E, { tokenizer: TOK_E, backend: refBackend });
  const ids = tokenizer!.encode(readFileSync(file, 'utf8'), { bos: false });
  assert.equal(out['tokens'], ids.length);
  // independent computation: a full forward of [BOS, window] per window, no cache reuse
  const V = model.config.vocab_size;
  let nll = 0;
  for (let w0 = 0; w0 < ids.length; w0 += 7) {
    const seq = [tokenizer!.bosId, ...ids.slice(w0, w0 + 7)];
    const logits = model.step(seq, model.newCache(seq.length), 'all');
    for (let t = 0; t + 1 < seq.length; t++) {
      const row = Array.from(logits.subarray(t * V, (t + 1) * V));
      const m = Math.max(...row);
      nll += m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) - row[seq[t + 1]!]!;
    }
  }
  assert.ok(Math.abs((out['nll'] as number) - nll / ids.length) < 1e-5, `nll ${String(out['nll'])} vs ${nll / ids.length}`);
  assert.ok(Math.abs((out['ppl'] as number) - Math.exp(nll / ids.length)) < 1e-3);
  assert.equal(scoreWindows(model, 1, ids, 7).tokens, ids.length);
});

test('info --json describes the model', () => {
  const out = json(runCli(['info', '--model', GGUF, '--json']));
  const c = out['config'] as Record<string, number>;
  assert.equal(c['dim'], 288);
  assert.equal(c['n_layers'], 6);
  assert.equal(c['hidden_dim'], 768);
  assert.equal(out['tied_embeddings'], true);
  assert.deepEqual(out['tensor_types'], { Q8_0: 43, F32: 13 });
  assert.equal((out['tokenizer'] as Record<string, number>)['pieces'], 32000);
  assert.ok((out['memory_estimate_bytes'] as number) > (out['weight_bytes'] as number));
});

test('--help lists every option with its default', () => {
  for (const cmd of ['generate', 'chat', 'tokenize', 'perplexity', 'info']) {
    const r = runCli([cmd, '--help']);
    assert.equal(r.status, 0, cmd);
    assert.match(r.stdout, /usage: llama2/);
  }
  const g = runCli(['generate', '--help']).stdout;
  assert.match(g, /--top-p NUMBER\s+.*\(default: 0\.9\)/);
  assert.match(g, /--temperature NUMBER\s+.*\(default: 0\.6\)/);
});

test('user mistakes give one clear error line', () => {
  assertUserError(runCli(['generate', '--prompt', 'x']), /--model is required/);
  assertUserError(runCli(['generate', '--model', GGUF, '--prompt', 'x', '--top-p', '2']), /--top-p: expected a number in \(0, 1\]/);
  assertUserError(runCli(['generate', '--model', GGUF, '--prompt', 'x', '--temperature', '-1']), /--temperature/);
  assertUserError(runCli(['generate', '--model', GGUF, '--prompt', 'x', '--top-k', 'many']), /--top-k: expected an integer, found "many"/);
  assertUserError(runCli(['generate', '--model', GGUF, '--prompt', 'x', '--bogus']), /unknown option "--bogus"/);
  assertUserError(runCli(['generate', '--model', GGUF, '--prompt-ids', '1,99999']), /--prompt-ids: expected token ids in 0\.\.31999, found "99999"/);
  assertUserError(runCli(['generate', '--model', '/nonexistent/model.gguf', '--prompt', 'x']), /no such file/);
  assertUserError(
    runCli(['generate', '--model', GGUF, '--ctx', '8', '--prompt', 'a rather long prompt that does not fit in eight tokens']),
    /prompt: \d+ tokens do not fit the model's context of 8 tokens/,
  );
  assertUserError(runCli(['frobnicate']), /unknown command "frobnicate"/);
  const dir = mkdtempSync(join(tmpdir(), 'llama2-bad-'));
  const trunc = join(dir, 'trunc.gguf');
  writeFileSync(trunc, readFileSync(GGUF).subarray(0, 100_000));
  assertUserError(runCli(['info', '--model', trunc]), /trunc\.gguf.*truncated|truncated.*trunc\.gguf/);
  const notModel = join(dir, 'notes.txt');
  writeFileSync(notModel, 'hello');
  assertUserError(runCli(['info', '--model', notModel]), /unrecognised model file/);
});

test('chat with stdin not a terminal answers one message in the Llama-2 chat format', async () => {
  const { renderPrompt } = await import('../src/chat/format.js');
  const out = json(runCli(['chat', '--model', GGUF, '--system', 'Be brief.', '--temperature', '0', '--max-tokens', '4', '--json'], { input: 'Hi there\n', env: REF }));
  const { tokenizer } = openModel(GGUF, { backend: refBackend });
  const want = renderPrompt(tokenizer!, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there\n' }]);
  assert.deepEqual(out['prompt_ids'], want);
  assert.ok((out['ids'] as number[]).length <= 4);
  // a plain-text answer without --json
  const r = runCli(['chat', '--model', GGUF, '--temperature', '0', '--max-tokens', '3'], { input: 'Hello', env: REF });
  assert.equal(r.status, 0, r.stderr);
});

test('a model without a tokenizer is a clear error for text commands', () => {
  assertUserError(runCli(['generate', '--model', HF_E, '--prompt', 'hi']), /no tokenizer found with the model; pass --tokenizer/);
  assertUserError(runCli(['chat', '--model', HF_E], { input: 'hi' }), /no tokenizer found/);
});

test('both llama.cpp-written GGUF files tokenize and generate (Q8_0; Q4_K + Q6_K mix)', () => {
  for (const f of ['stories15M-Q8_0.gguf', 'tinyk-Q4_K_M.gguf']) {
    const out = json(runCli(['generate', '--model', fixture('gguf', f), '--prompt', 'The little dog', '--temperature', '0', '--max-tokens', '5', '--ignore-eos', '--json']));
    assert.deepEqual((out['prompt_ids'] as number[]).slice(0, 1), [1], f);
    assert.equal((out['ids'] as number[]).length, 5, f);
  }
});

test('generate --prompt-ids needs no tokenizer: ids out, text null; the same ids as with one', () => {
  const args = ['generate', '--model', HF_E, '--prompt-ids', '1,2,3', '--temperature', '0', '--max-tokens', '20', '--json'];
  const bare = json(runCli(args, { env: REF }));
  assert.equal(bare['text'], null);
  assert.deepEqual(bare['prompt_ids'], [1, 2, 3]);
  const ids = bare['ids'] as number[];
  assert.ok(ids.length > 0 && ids.length <= 20);
  const withTok = json(runCli([...args, '--tokenizer', TOK_E], { env: REF }));
  assert.deepEqual(withTok['ids'], ids);
  assert.equal(typeof withTok['text'], 'string');
  assertUserError(runCli(['generate', '--model', HF_E, '--prompt-ids', '1,2', '--stop', 'x']), /no tokenizer found with the model/);
});

test('generate: --prompt-ids items are checked one by one; --prompt-file reads a UTF-8 file', () => {
  assertUserError(runCli(['generate', '--model', GGUF, '--prompt-ids', '1,,2']), /--prompt-ids: expected comma-separated token ids \(decimal integers\), found "" \(item 2 of 3\)/);
  assertUserError(runCli(['generate', '--model', GGUF, '--prompt-ids', '0x10']), /--prompt-ids: expected comma-separated token ids \(decimal integers\), found "0x10"/);
  const dir = mkdtempSync(join(tmpdir(), 'llama2-prompt-'));
  const file = join(dir, 'prompt.txt');
  const text = '\ufeffOnce upon a time\u0000 there was\n'.repeat(3);
  writeFileSync(file, text);
  const out = json(runCli(['generate', '--model', GGUF, '--prompt-file', file, '--temperature', '0', '--max-tokens', '2', '--json'], { env: REF }));
  const { tokenizer } = openModel(GGUF, { backend: refBackend, prepare: false });
  assert.deepEqual(out['prompt_ids'], tokenizer!.encode(text, { bos: true }));
  writeFileSync(file, Buffer.concat([Buffer.from('line one\nline two é\n'), Buffer.from([0xe9, 0x74, 0xe9])]));
  assertUserError(runCli(['generate', '--model', GGUF, '--prompt-file', file]), /--prompt-file .*prompt\.txt: expected UTF-8 text but found invalid bytes \(e9 74\) at byte 21 \(line 3\)/);
  assertUserError(runCli(['generate', '--model', GGUF, '--prompt', 'x', '--prompt-file', file]), /give exactly one of .* \(found --prompt and --prompt-file\)/);
});

test('tokenize: TEXT, --file, stdin (NUL bytes included), and any tokenizer file as --model', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llama2-tok-'));
  const text = 'a\u0000b\nHello world! 123';
  const { tokenizer } = openModel(GGUF, { backend: refBackend, prepare: false });
  const want = tokenizer!.encode(text, { bos: true });
  const file = join(dir, 'in.txt');
  writeFileSync(file, text);
  assert.deepEqual(json(runCli(['tokenize', '--model', GGUF, '--json', '--file', file]))['ids'], want);
  assert.deepEqual(json(runCli(['tokenize', '--model', GGUF, '--json'], { input: text }))['ids'], want);
  const anyName = join(dir, 'spm.model'); // not named tokenizer.model
  copyFileSync(TOK_E, anyName);
  const tokE = new Tokenizer(loadVocab(TOK_E));
  assert.deepEqual(json(runCli(['tokenize', '--model', anyName, '--json', 'Hi there']))['ids'], tokE.encode('Hi there', { bos: true }));
  writeFileSync(file, Buffer.from([0x61, 0x0a, 0xc0, 0xaf]));
  assertUserError(runCli(['tokenize', '--model', GGUF, '--file', file]), /in\.txt: expected UTF-8 text but found invalid bytes \(c0 af\) at byte 2 \(line 2\)/);
});

test('sizes from the command line or the file that would not fit are clear errors, not stack traces', () => {
  assertUserError(runCli(['generate', '--model', GGUF, '--ctx', '1000000000', '--prompt-ids', '1']), /KV cache: 1000000000 positions need 12\.57 TiB/);
  assertUserError(runCli(['info', '--model', GGUF, '--ctx', '0']), /--ctx: expected an integer ≥ 1, found 0/);
  assertUserError(runCli(['info', '--model', GGUF, '--ctx', '-3']), /--ctx: expected an integer ≥ 1, found -3/);
  const big = 'hello world '.repeat(60_000); // 720 KB on stdin
  assertUserError(runCli(['chat', '--model', GGUF, '--max-tokens', '2'], { input: big, env: REF }), /chat: the last user turn needs \d+ tokens but only \d+ fit/);
  // a tokenizer smaller than the model's vocabulary is refused at load, naming both sizes
  assert.throws(() => openModel(GGUF, { tokenizer: TOK_E, backend: refBackend, prepare: false }), (e: unknown) =>
    e instanceof Llama2Error && /has 2000 pieces but the model's vocabulary has 32000 rows/.test(e.message));
});

test('perplexity: non-UTF-8 input is refused with its byte offset; progress comes after every forward call', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llama2-ppl-bad-'));
  const file = join(dir, 'latin1.txt');
  writeFileSync(file, Buffer.from('caf\xe9 au lait\n', 'latin1'));
  assertUserError(runCli(['perplexity', '--model', GGUF, '--file', file]), /--file .*latin1\.txt: expected UTF-8 text but found invalid bytes \(e9 20 61 75\) at byte 3 \(line 1\)/);
  const { model, tokenizer } = openModel(HF_E, { tokenizer: TOK_E, backend: refBackend });
  const ids = tokenizer!.encode('The quick brown fox jumps over the lazy dog. '.repeat(40), { bos: false });
  const seen: number[] = [];
  const r = scoreWindows(model, tokenizer!.bosId, ids, 300, (d) => seen.push(d));
  // windows of 300 scored 128 positions per call: 128, 256, 300, 428, ...
  const want: number[] = [];
  for (let w0 = 0; w0 < ids.length; w0 += 300) {
    const len = Math.min(300, ids.length - w0);
    for (let c = 128; c < len + 128; c += 128) want.push(w0 + Math.min(c, len));
  }
  assert.deepEqual(seen, want);
  assert.equal(seen[seen.length - 1], r.tokens);
});

test('parseArgs: tens of thousands of arguments after "--"', () => {
  const many = Array.from({ length: 300_000 }, (_, i) => String(i));
  const p = parseArgs({ name: 't', summary: '', usage: '', flags: [], rest: true }, ['--', ...many]);
  assert.equal(p.positionals.length, many.length);
});
