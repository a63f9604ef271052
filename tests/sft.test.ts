/**
 * The SFT recipe end to end on a tiny model (the oracle's e_tok2k_chat: dim 64, the real
 * 2000-piece tokenizer): the answer loss falls, resume is bit-identical, gradient accumulation
 * only changes how a step is batched (the loss is token-weighted over the whole step), the
 * checkpoint chats, bad data is a FILE:LINE error (or counted with skip_bad).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SFT, sft, type SftConfig } from '../src/recipes/sft.js';
import { readMetrics, type TrainRecord } from '../src/train/metrics.js';
import { loadModelFile } from '../src/formats/load.js';
import { selectBackend } from '../src/backend/select.js';
import { Llama2Error } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { oracleDir } from './helpers/oracle-case.js';

const dir = mkdtempSync(join(tmpdir(), 'sft-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const backend = selectBackend({ threads: 2 });
const INIT = join(oracleDir(), 'e_tok2k_chat', 'hf');
const TOKENIZER = join(oracleDir(), 'tokenizer', 'tokenizer.model');

/** n arithmetic dialogs, a third of them with a system prompt and a second turn */
function writeDialogs(path: string, n: number, seed: number): string {
  const rng = new Rng(seed);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = rng.below(10);
    const b = rng.below(10);
    const msgs = [{ role: 'user', content: `What is ${a} plus ${b}?` }, { role: 'assistant', content: `${a} plus ${b} is ${a + b}.` }];
    if (i % 3 === 0) msgs.unshift({ role: 'system', content: 'Answer with the sum.' });
    if (i % 3 === 1) msgs.push({ role: 'user', content: 'And twice that?' }, { role: 'assistant', content: `Twice that is ${2 * (a + b)}.` });
    lines.push(JSON.stringify({ messages: msgs }));
  }
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}
const DATA = writeDialogs(join(dir, 'sft.jsonl'), 60, 1);

function config(out: string, over: Partial<SftConfig> = {}): SftConfig {
  return {
    ...SFT.defaults, init: INIT, tokenizer: TOKENIZER, data: [DATA], out_dir: join(dir, out), seq_len: 64, batch_size: 4,
    lr: 3e-3, warmup_steps: 2, eval_every: 10, ckpt_every: 5, val_fraction: 0.1, ...over,
  };
}

test('the answer loss falls; metrics count answer tokens; the checkpoint loads with its tokenizer', async () => {
  const r = await sft({ config: config('run', { epochs: 3 }), backend });
  assert.equal(r.status, 'completed');
  const train = readMetrics(join(dir, 'run', 'metrics.jsonl')).filter((m): m is TrainRecord => m.type === 'train');
  assert.equal(train.length, r.step);
  const first = train.slice(0, 3).reduce((s, m) => s + m.loss, 0) / 3;
  const last = train.slice(-3).reduce((s, m) => s + m.loss, 0) / 3;
  assert.ok(last < first - 1, `the loss on answers must fall by > 1 nat: ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(train.every((m) => (m.answer_tokens ?? 0) > 0 && m.answer_tokens! < m.tokens));
  const s = r.summary;
  assert.equal(s.stage, 'sft');
  assert.equal(s.answer_tokens, train.reduce((a, m) => a + m.answer_tokens!, 0));
  assert.ok(s.samples.train > 40 && s.samples.val > 0 && s.samples.train + s.samples.val === 60, JSON.stringify(s.samples));
  assert.ok(s.final_val_loss !== null && s.co2_kg > 0);
  const m = loadModelFile(r.checkpoint!);
  assert.equal(m.vocab?.pieces.length, 2000, 'the checkpoint carries the tokenizer');
  const state = JSON.parse(readFileSync(join(r.checkpoint!, 'trainer_state.json'), 'utf8')) as { stage: string; data: { packing: string } };
  assert.deepEqual([state.stage, state.data.packing], ['sft', 'block']);
});

test('resume after a stop is bit-identical to an uninterrupted run', async () => {
  const straight = await sft({ config: config('straight', { steps: 8 }), backend });
  const stopped = await sft({ config: config('resumed', { steps: 8 }), backend, stopAfter: 3 });
  assert.equal(stopped.status, 'stopped');
  const resumed = await sft({ config: config('resumed', { steps: 8 }), backend, resume: true });
  assert.equal(resumed.step, 8);
  assert.ok(readFileSync(join(resumed.checkpoint!, 'model.safetensors')).equals(readFileSync(join(straight.checkpoint!, 'model.safetensors'))));
  await assert.rejects(sft({ config: config('resumed', { steps: 9, lr: 1e-3 }), backend, resume: true }), /config key "lr"/);
});

test('grad_accum only re-batches a step: B=4 ×1 and B=2 ×2 give the same update (token-weighted loss)', async () => {
  for (const packing of ['block', 'none', 'concat'] as const) {
    const one = await sft({ config: config(`acc1-${packing}`, { steps: 1, warmup_steps: 0, batch_size: 4, grad_accum: 1, packing, val_fraction: 0 }), backend });
    const two = await sft({ config: config(`acc2-${packing}`, { steps: 1, warmup_steps: 0, batch_size: 2, grad_accum: 2, packing, val_fraction: 0 }), backend });
    assert.ok(Math.abs(one.summary.final_train_loss! - two.summary.final_train_loss!) < 1e-5, `${packing}: ${one.summary.final_train_loss} vs ${two.summary.final_train_loss}`);
    const a = loadModelFile(one.checkpoint!).weights.layers[0]!.wq.data;
    const b = loadModelFile(two.checkpoint!).weights.layers[0]!.wq.data;
    const fa = new Float32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
    const fb = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    let max = 0;
    for (let i = 0; i < fa.length; i++) max = Math.max(max, Math.abs(fa[i]! - fb[i]!));
    assert.ok(max < 1e-6, `${packing}: weights differ by ${max}`);
  }
});

test('bad data: FILE:LINE errors, skip_bad counts; required keys and out-of-range values are clean errors', async () => {
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, readFileSync(DATA, 'utf8') + '{"prompt": "no completion"}\n');
  await assert.rejects(sft({ config: config('bad', { data: [bad] }), backend }), (e: unknown) => e instanceof Llama2Error && e.message.startsWith(`${bad}:61: `));
  const r = await sft({ config: config('bad', { data: [bad], skip_bad: true, steps: 2 }), backend, overwrite: true });
  assert.equal(r.summary.samples.bad_lines, 1);
  await assert.rejects(sft({ config: config('noinit', { init: null }) }), /init is required/);
  await assert.rejects(sft({ config: config('nodata', { data: [] }) }), /data is required/);
  assert.throws(() => SFT.applyOverrides(SFT.defaults, [['packing', 'zigzag']]), /--packing: expected one of "block", "concat", "none", found "zigzag"/);
  await assert.rejects(sft({ config: config('toolong', { seq_len: 4096 }) }), /seq_len 4096 exceeds the model's context 256/);
});
