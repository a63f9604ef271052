/**
 * The pretraining loop in-process on a tiny model and corpus: the loss goes down, the run leaves
 * metrics.jsonl / summary.json / loss.svg / checkpoints as documented, and user mistakes (reusing
 * an out_dir, resuming with a different config, mismatched tokenizer) are one-line errors.
 * Resume exactness and signals: checkpoint*.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildStoriesData } from '../src/data/stories-data.js';
import { pretrain } from '../src/recipes/pretrain.js';
import type { RunEvent as PretrainEvent } from '../src/train/run.js';
import { BUILTIN_STORIES, PRETRAIN, type PretrainConfig as TrainConfig } from '../src/recipes/pretrain.js';

const TRAIN_DEFAULTS = PRETRAIN.defaults;
import { readMetrics, type EvalRecord, type TrainRecord } from '../src/train/metrics.js';
import { trainFlopsPerToken } from '../src/train/compute.js';
import { lrAt } from '../src/train/schedule.js';
import { selectBackend } from '../src/backend/select.js';
import { Llama2Error } from '../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pretrain-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const data = buildStoriesData({ dir: join(dir, 'data'), count: 120, seed: 5, vocabSize: 384, seqLen: 32, valFraction: 0.05 });
const backend = selectBackend({ threads: 2 });

/** A 60k-parameter model: each step takes milliseconds. */
function tiny(out: string, over: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...TRAIN_DEFAULTS, data_dir: BUILTIN_STORIES, out_dir: join(dir, out), dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2,
    batch_size: 4, steps: 30, warmup_steps: 3, lr: 1e-2, eval_every: 10, eval_batches: 2, ckpt_every: 10, keep_checkpoints: 2, ...over,
  };
}

/** the loss must fall by at least this many nats from the first step to the last evaluation */
const MIN_DROP_NATS = 0.5;

test('a short run: the loss falls; metrics, evaluations, summary, plot and checkpoints are written', async () => {
  const events: PretrainEvent['kind'][] = [];
  const c = tiny('run');
  const r = await pretrain({ config: c, data, backend, onEvent: (e) => events.push(e.kind) });
  assert.equal(r.status, 'completed');
  assert.equal(r.step, 30);
  const recs = readMetrics(join(c.out_dir, 'metrics.jsonl'));
  const train = recs.filter((x): x is TrainRecord => x.type === 'train');
  const evals = recs.filter((x): x is EvalRecord => x.type === 'eval');
  assert.deepEqual(train.map((x) => x.step), Array.from({ length: 30 }, (_, i) => i + 1));
  assert.deepEqual(evals.map((x) => x.step), [10, 20, 30]);
  for (const x of train) {
    assert.equal(x.lr, lrAt(x.step - 1, { peak: c.lr, warmup: c.warmup_steps, total: c.steps, minRatio: c.min_lr_ratio }), `lr at step ${x.step}`);
    assert.ok(x.grad_norm > 0 && x.tokens === 4 * 32 && x.tokens_per_s > 0, JSON.stringify(x));
  }
  const first = train[0]!.loss;
  const lastEval = evals[evals.length - 1]!;
  assert.ok(Math.abs(first - Math.log(384)) < 0.3, `initial loss ${first} should be near ln(V) = ${Math.log(384).toFixed(3)}`);
  assert.ok(lastEval.val_loss < first - MIN_DROP_NATS, `validation loss ${lastEval.val_loss} did not fall ${MIN_DROP_NATS} below the first step's ${first}`);
  assert.ok(lastEval.val_bpc !== null && lastEval.val_bpc > data.entropyFloorBpc!, `val bpc ${lastEval.val_bpc} vs floor ${data.entropyFloorBpc}`);
  assert.ok(Math.abs(lastEval.val_ppl - Math.exp(lastEval.val_loss)) < 1e-9 * lastEval.val_ppl);

  const s = JSON.parse(readFileSync(join(c.out_dir, 'summary.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(s['status'], 'completed');
  assert.equal(s['tokens'], 30 * 4 * 32);
  assert.equal(s['flops_per_token'], trainFlopsPerToken(r.model.config, 32));
  assert.equal(s['total_flops'], trainFlopsPerToken(r.model.config, 32) * 30 * 4 * 32);
  assert.equal(s['final_val_loss'], lastEval.val_loss);
  assert.equal(s['entropy_floor_bpc'], data.entropyFloorBpc);
  for (const k of ['mfu', 'energy_kwh', 'co2_kg', 'wall_seconds', 'train_seconds']) assert.ok((s[k] as number) > 0, `${k} = ${String(s[k])}`);
  assert.match(readFileSync(join(c.out_dir, 'loss.svg'), 'utf8'), /<svg[^]*<\/svg>/);

  // keep_checkpoints 2: steps 20 and 30 remain; latest.json and the link name step 30
  assert.deepEqual(readdirSync(c.out_dir).filter((n) => n.startsWith('ckpt-')).sort(), ['ckpt-000020', 'ckpt-000030']);
  assert.deepEqual(JSON.parse(readFileSync(join(c.out_dir, 'latest.json'), 'utf8')), { checkpoint: 'ckpt-000030', step: 30 });
  assert.equal(readlinkSync(join(c.out_dir, 'latest')), 'ckpt-000030');
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.model', 'optimizer.safetensors', 'trainer_state.json']) {
    assert.ok(existsSync(join(c.out_dir, 'ckpt-000030', f)), `checkpoint lacks ${f}`);
  }
  assert.deepEqual([...new Set(events)], ['start', 'step', 'eval', 'checkpoint']);
});

test('grad_accum: one step over A micro-batches of B rows counts A·B·T tokens', async () => {
  const c = tiny('accum', { steps: 2, warmup_steps: 1, grad_accum: 3, eval_every: 0, ckpt_every: 0 });
  const r = await pretrain({ config: c, data, backend });
  assert.equal(r.summary.tokens, 2 * 3 * 4 * 32);
  const st = JSON.parse(readFileSync(join(r.checkpoint!, 'trainer_state.json'), 'utf8')) as { data: { next_batch: number } };
  assert.equal(st.data.next_batch, 2 * 3, 'the data position counts micro-batches');
});

async function rejects(p: Promise<unknown>, ...res: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, `expected a Llama2Error, got ${String(e)}`);
    for (const re of res) assert.match(e.message, re);
    return true;
  });
}

test('an out_dir holding a run needs --resume or --overwrite; resume refuses a different config', async () => {
  const c = tiny('guard', { steps: 4, eval_every: 0, ckpt_every: 2 });
  await pretrain({ config: c, data, backend, stopAfter: 2 });
  await rejects(pretrain({ config: c, data, backend }), /already holds a training run/, /step 2/, /--resume/, /--overwrite/);
  await rejects(pretrain({ config: { ...c, lr: 5e-3 }, data, backend, resume: true }), /config key "lr"/, /0\.005/, /0\.01/);
  await rejects(pretrain({ config: { ...c, dim: 64 }, data, backend, resume: true }), /config key "dim"/);
  const again = await pretrain({ config: c, data, backend, overwrite: true });
  assert.equal(again.status, 'completed');
  assert.equal(readMetrics(join(c.out_dir, 'metrics.jsonl')).filter((x) => x.type === 'train').length, 4, 'overwrite starts the log over');
  await rejects(pretrain({ config: { ...c, steps: 4 }, data, backend, resume: true }), /already at or past steps 4/);
});

test('one process per out_dir: a live train.lock is refused, a dead one (killed run) is taken over', async () => {
  const c = tiny('locked', { steps: 2, warmup_steps: 1, eval_every: 0, ckpt_every: 0 });
  mkdirSync(c.out_dir, { recursive: true });
  writeFileSync(join(c.out_dir, 'train.lock'), `${process.ppid}\n`); // alive: the test runner's parent
  await rejects(pretrain({ config: c, data, backend }), /in use by another training process/, new RegExp(`pid ${process.ppid}`));
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  writeFileSync(join(c.out_dir, 'train.lock'), `${dead}\n`);
  const r = await pretrain({ config: c, data, backend });
  assert.equal(r.status, 'completed');
  assert.ok(!existsSync(join(c.out_dir, 'train.lock')), 'the lock is released at the end');
});

test('data errors: an invalid shape fails before built-in data is built, a tokenizer that does not match the shards, seq_len too long', async () => {
  await rejects(pretrain({ config: tiny('e1', { dim: 30, n_heads: 4 }) }), /not divisible/);
  assert.ok(!existsSync(join(dir, 'e1', 'data')), 'no data is built for a model that cannot be made');
  const other = buildStoriesData({ dir: join(dir, 'other'), count: 60, seed: 9, vocabSize: 320, seqLen: 32, valFraction: 0.05 });
  await rejects(pretrain({ config: tiny('e2'), data: { ...data, tokenizer: other.tokenizer }, backend }), /does not match the shards/, /hash/);
  await rejects(pretrain({ config: tiny('e3', { seq_len: 64 }), data, backend }), /seq_len 64 is longer than the shards' rows/);
});

test('world documents mixed in: the floor stays known for the validation stories, which lead the split; the run reports their bits/char', async () => {
  const mixed = buildStoriesData({ dir: join(dir, 'mixed'), count: 120, seed: 5, vocabSize: 384, seqLen: 32, valFraction: 0.2, worldDocs: 120 });
  const val = mixed.meta.splits.val;
  const by = val.by_input!;
  assert.equal(by.length, 2);
  assert.deepEqual([by[0]!.docs + by[1]!.docs, by[0]!.chars + by[1]!.chars, by[0]!.tokens + by[1]!.tokens], [val.docs, val.chars, val.tokens], 'per-input counts add up');
  // the floor: −log2 P of the validation stories over their characters (the grammar's information)
  const { generateStory, END_MARKER_CHARS } = await import('../src/data/stories.js');
  const { hashSeed } = await import('../src/util/rng.js');
  let bits = 0, chars = 0;
  for (let i = 0; i < 120; i++) {
    if (hashSeed(5, i) >= 0.2 * 0x100000000) continue;
    const s = generateStory(5, i);
    bits += s.bits;
    chars += s.text.length + END_MARKER_CHARS;
  }
  assert.equal(chars, by[0]!.chars);
  assert.ok(mixed.entropyFloorBpc !== null && Math.abs(mixed.entropyFloorBpc - bits / chars) < 1e-12);
  assert.deepEqual(mixed.floorText, { rows: Math.floor((by[0]!.tokens - 1) / 32), charsPerToken: by[0]!.chars / by[0]!.tokens });
  assert.ok(mixed.floorText!.rows > 0 && mixed.floorText!.rows < val.rows, 'the stories rows are a proper prefix of the split');
  const again = buildStoriesData({ dir: join(dir, 'mixed'), count: 120, seed: 5, vocabSize: 384, seqLen: 32, valFraction: 0.2, worldDocs: 120 });
  assert.equal(again.reused, true);
  assert.deepEqual([again.entropyFloorBpc, again.floorText], [mixed.entropyFloorBpc, mixed.floorText], 'a reused build knows the same');

  const r = await pretrain({ config: tiny('mixed-run', { steps: 10, eval_every: 5 }), data: mixed, backend });
  const evals = readMetrics(join(dir, 'mixed-run', 'metrics.jsonl')).filter((x): x is EvalRecord => x.type === 'eval');
  assert.ok(evals.length >= 2 && evals.every((e) => typeof e.floor_text_bpc === 'number' && e.floor_text_bpc > mixed.entropyFloorBpc!));
  assert.equal(r.summary.floor_text_val_bpc, evals[evals.length - 1]!.floor_text_bpc);
  assert.notEqual(r.summary.floor_text_val_bpc, r.summary.final_val_bpc, 'the stories are measured apart from the mixed split');
  // stories alone: the floor text is the whole split
  const alone = await pretrain({ config: tiny('alone-run', { steps: 5, eval_every: 5 }), data, backend });
  assert.equal(alone.summary.floor_text_val_bpc, alone.summary.final_val_bpc);
});
