/**
 * Checkpoints in-process: N steps straight equal N/2 + resume + N/2 exactly (every loss, every
 * evaluation, the final weights and optimizer bytes); the backend is deterministic run to run
 * (and, for the native one, across thread counts); a checkpoint is a model `loadModelFile` opens
 * and generates from; leftovers of a killed save are ignored and cleaned.
 * Killing a real training process: checkpoint-signals.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildStoriesData } from '../src/data/stories-data.js';
import { pretrain } from '../src/recipes/pretrain.js';
import { BUILTIN_STORIES, PRETRAIN, type PretrainConfig as TrainConfig } from '../src/recipes/pretrain.js';

const TRAIN_DEFAULTS = PRETRAIN.defaults;
import { latestCheckpoint, loadCheckpoint, readTrainerState } from '../src/train/checkpoint.js';
import { readMetrics, type MetricRecord } from '../src/train/metrics.js';
import { selectBackend } from '../src/backend/select.js';
import { nativeBackend } from '../src/backend/native.js';
import { loadModelFile } from '../src/formats/load.js';
import { Model } from '../src/model/forward.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { generate } from '../src/generate/generate.js';
import { Llama2Error } from '../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'checkpoint-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const data = buildStoriesData({ dir: join(dir, 'data'), count: 120, seed: 6, vocabSize: 384, seqLen: 32, valFraction: 0.05 });
const backend = selectBackend({ threads: 2 });

function cfg(out: string, over: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...TRAIN_DEFAULTS, data_dir: BUILTIN_STORIES, out_dir: join(dir, out), dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2,
    batch_size: 3, grad_accum: 2, steps: 12, warmup_steps: 3, lr: 1e-2, eval_every: 4, eval_batches: 2, ckpt_every: 5, ...over,
  };
}

/** What must be identical between runs: everything but wall-clock fields. */
function stable(rs: MetricRecord[]): unknown[] {
  return rs.map((r) => (r.type === 'train' ? { ...r, tokens_per_s: 0, elapsed_s: 0 } : r));
}

function firstDiff(a: unknown[], b: unknown[]): string {
  const i = a.findIndex((x, k) => JSON.stringify(x) !== JSON.stringify(b[k]));
  return i < 0 ? (a.length === b.length ? 'none' : `lengths ${a.length} vs ${b.length}`) : `record ${i}: ${JSON.stringify(a[i])} vs ${JSON.stringify(b[i])}`;
}

function bytes(ckpt: string, file: string): Buffer {
  return readFileSync(join(ckpt, file));
}

test('N steps straight = N/2 steps + resume + N/2 steps, bit for bit', async () => {
  const a = await pretrain({ config: cfg('straight'), data, backend });
  const half = await pretrain({ config: cfg('resumed'), data, backend, stopAfter: 6 });
  assert.equal(half.status, 'stopped');
  assert.equal(latestCheckpoint(cfg('resumed').out_dir)?.step, 6);
  const b = await pretrain({ config: cfg('resumed'), data, backend, resume: true });
  assert.equal(b.status, 'completed');
  const ra = stable(readMetrics(join(cfg('straight').out_dir, 'metrics.jsonl')));
  const rb = stable(readMetrics(join(cfg('resumed').out_dir, 'metrics.jsonl')));
  assert.equal(ra.length, 12 + 3);
  assert.deepEqual(rb, ra, `metrics differ: first difference ${firstDiff(rb, ra)}`);
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'config.json', 'tokenizer.model']) {
    assert.ok(bytes(a.checkpoint!, f).equals(bytes(b.checkpoint!, f)), `${f} differs between the straight and the resumed run`);
  }
  const sa = readTrainerState(a.checkpoint!);
  const sb = readTrainerState(b.checkpoint!);
  assert.deepEqual([sb.step, sb.tokens, sb.data.next_batch, sb.lr, sb.last_loss], [sa.step, sa.tokens, sa.data.next_batch, sa.lr, sa.last_loss]);
  assert.equal(b.summary.tokens, a.summary.tokens, 'token counts carry over the resume');
});

test('resume after extending steps continues the same run (a longer schedule from the checkpoint)', async () => {
  const c = cfg('extend', { steps: 6, ckpt_every: 0 });
  await pretrain({ config: c, data, backend });
  const r = await pretrain({ config: { ...c, steps: 8 }, data, backend, resume: true });
  assert.equal(r.step, 8);
  const steps = readMetrics(join(c.out_dir, 'metrics.jsonl')).filter((x) => x.type === 'train').map((x) => x.step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('native backend: the same losses with 1 and 2 threads (GEMM tiles are never split along K)', { skip: nativeBackend === null ? 'native addon not built' : false }, async () => {
  const losses: number[][] = [];
  const native = nativeBackend!; // whatever LLAMA2_BACKEND says: this test is about the native GEMM
  for (const threads of [1, 2]) {
    native.setThreads(threads);
    const r = await pretrain({ config: cfg(`threads${threads}`, { steps: 3, eval_every: 0, ckpt_every: 0, dim: 64, seq_len: 32, threads }), data, backend: native });
    losses.push(r.metrics.train().map((x) => x.loss));
  }
  native.setThreads(2);
  assert.deepEqual(losses[1], losses[0]);
});

test('a checkpoint is a model: loadModelFile opens it with its tokenizer, and it generates what the trained weights generate', async () => {
  const r = await pretrain({ config: cfg('model', { steps: 4, eval_every: 0, ckpt_every: 0 }), data, backend });
  const loaded = loadModelFile(join(r.checkpoint!, '..', 'latest'));
  assert.equal(loaded.format, 'hf');
  assert.ok(loaded.vocab, 'the checkpoint carries its tokenizer');
  assert.deepEqual(loaded.vocab!.pieces, r.vocab.pieces);
  const fromDisk = new Model(loaded.config, loaded.weights, backend);
  const inMemory = new Model(r.model.config, r.model.weights, backend);
  const tok = new Tokenizer(loaded.vocab!);
  const ids = tok.encode('Once upon a time', { bos: true });
  const la = fromDisk.step(Int32Array.from(ids), fromDisk.newCache(ids.length), 'all');
  const lb = inMemory.step(Int32Array.from(ids), inMemory.newCache(ids.length), 'all');
  assert.deepEqual(Array.from(la), Array.from(lb), 'logits from the checkpoint differ from the trained weights');
  const ga = await generate(fromDisk, tok, ids, { temperature: 0, maxTokens: 12 });
  const gb = await generate(inMemory, tok, ids, { temperature: 0, maxTokens: 12 });
  assert.ok(ga.ids.length > 0);
  assert.deepEqual(ga.ids, gb.ids);
  const ck = loadCheckpoint(r.checkpoint!);
  assert.equal(ck.optimizer.step, 4);
  assert.equal(Object.keys(ck.optimizer.m).length, r.model.params.length);
});

test('an unfinished save (.tmp- directory) and a checkpoint newer than latest.json are removed on resume; a broken latest.json is a clear error', async () => {
  const c = cfg('atomic', { steps: 4, eval_every: 0, ckpt_every: 2 });
  await pretrain({ config: c, data, backend, stopAfter: 2 });
  const junk = join(c.out_dir, 'ckpt-000003.tmp-999999');
  mkdirSync(junk);
  writeFileSync(join(junk, 'model.safetensors'), 'half a file');
  const orphan = join(c.out_dir, 'ckpt-000003'); // renamed into place, but latest.json not yet updated
  cpSync(join(c.out_dir, 'ckpt-000002'), orphan, { recursive: true });
  const notices: string[] = [];
  const r = await pretrain({ config: c, data, backend, resume: true, onEvent: (e) => { if (e.kind === 'notice') notices.push(e.message); } });
  assert.equal(r.status, 'completed');
  assert.ok(!existsSync(junk), 'the stale temp directory is removed');
  assert.ok(notices.some((m) => m.includes('ckpt-000003.tmp-999999')), `notices: ${notices.join('; ')}`);
  assert.ok(notices.some((m) => m.startsWith('removed ckpt-000003 ')), `notices: ${notices.join('; ')}`);
  assert.ok(!existsSync(orphan), 'ckpt_every 2: no checkpoint of step 3 in the resumed run');
  writeFileSync(join(c.out_dir, 'latest.json'), '{"checkpoint": "ckpt-000099", "step": 99}');
  await assert.rejects(pretrain({ config: { ...c, steps: 200 }, data, backend, resume: true }), (e: unknown) =>
    e instanceof Llama2Error && /latest\.json/.test(e.message) && /ckpt-000099/.test(e.message) && /does not exist/.test(e.message));
});
