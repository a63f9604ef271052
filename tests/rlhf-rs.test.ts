/**
 * Rejection sampling end to end on a tiny model (the oracle's e_tok2k_chat as the policy; two reward
 * models made from it with random score heads): the kept answer is the R_c-best of its K samples (as
 * the reward models score it), best-of-N curves are what the samples say, earlier pools join the
 * fine-tuning data, and a rerun reuses the samples.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RS, bestOfN, rejectionSampling, type RsConfig } from '../src/recipes/rs.js';
import { writeHfDir } from '../src/formats/hf.js';
import { loadModelFile } from '../src/formats/load.js';
import { openModel } from '../src/open.js';
import { scoreAnswers } from '../src/chat/reward-score.js';
import { writeChatWorld } from '../src/world/synth.js';
import { f32Tensor } from '../src/tensor.js';
import { readTokenizerModel } from '../src/tokenizer/load.js';
import { selectBackend } from '../src/backend/select.js';
import { randn } from './helpers/random.js';
import { oracleDir } from './helpers/oracle-case.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const policy = join(dir, 'policy');
const vocab = readTokenizerModel(join(oracleDir(), 'tokenizer', 'tokenizer.model'));
const base = loadModelFile(join(oracleDir(), 'e_tok2k_chat', 'hf'), { mmap: false });
writeHfDir(policy, base.config, base.weights, { vocab });
for (const [name, seed] of [['rm-h', 1], ['rm-s', 2]] as const) {
  writeHfDir(join(dir, name), base.config, { ...base.weights, heads: { 'score.weight': f32Tensor(randn(base.config.dim, seed, 0.5), [1, base.config.dim]) } }, { vocab });
}
writeChatWorld(join(dir, 'world'), { seed: 5, sft: 0, trainPrompts: 10, testPrompts: 0 });
const prompts = join(dir, 'world', 'prompts.train.jsonl');

function config(out: string, over: Partial<RsConfig> = {}): RsConfig {
  return {
    ...RS.defaults, policy, rm_helpful: join(dir, 'rm-h'), rm_safety: join(dir, 'rm-s'), prompts: [prompts], k: 3, max_tokens: 8,
    out_dir: join(dir, out), steps: 2, warmup_steps: 0, batch_size: 4, eval_every: 0, ckpt_every: 0, val_fraction: 0, ...over,
  };
}

test('the kept answer is the R_c-best of its samples; best-of-N is monotone in N; the pool joins; a rerun reuses the samples', async () => {
  const be = selectBackend({ threads: 2 });
  const r = await rejectionSampling({ config: config('rs1'), backend: be });
  assert.equal(r.report.prompts, 10);
  assert.equal(r.report.samples, 30);
  const samples = readFileSync(join(dir, 'rs1', 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: number; sample: number; answer: string; reward: number });
  const best = readFileSync(join(dir, 'rs1', 'best.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { messages: { role: string; content: string }[]; meta: { rs: { reward: number; sample: number } } });
  assert.equal(best.length, 10);
  // the rewards in samples.jsonl are what the two reward models give (R_c of their unit scores)
  const p = openModel(policy);
  const rms = { helpful: openModel(join(dir, 'rm-h')).model, safety: openModel(join(dir, 'rm-s')).model };
  const lines = readFileSync(prompts, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { messages: { role: 'user' | 'assistant' | 'system'; content: string }[]; meta: { category: string } });
  const again = scoreAnswers(rms, p.tokenizer!, samples.map((s) => ({ dialog: lines[s.prompt]!.messages, answer: s.answer, safetyPrompt: lines[s.prompt]!.meta.category === 'unsafe' })));
  samples.forEach((s, i) => assert.ok(Math.abs(s.reward - again[i]!.combined) < 1e-6, `sample ${i}: ${s.reward} vs ${again[i]!.combined}`));
  best.forEach((b, i) => {
    const mine = samples.filter((s) => s.prompt === i);
    const top = Math.max(...mine.map((s) => s.reward));
    assert.equal(b.meta.rs.reward, top);
    assert.equal(b.messages[b.messages.length - 1]!.content, mine[b.meta.rs.sample]!.answer);
  });
  const curve = r.report.best_of_n;
  assert.equal(curve.length, 3);
  for (let n = 1; n < 3; n++) assert.ok(curve[n]!.reward_max >= curve[n - 1]!.reward_max - 1e-12);
  assert.ok(curve[0]!.gold_max !== null, 'chat-world prompts are graded');
  assert.deepEqual(bestOfN([{ answers: ['a', 'b'], rewards: [0.2, 0.6], gold: [1, 0] }], 2).map((b) => [b.reward_max, b.gold_of_reward_best]), [[0.2, 1], [0.6, 0]]);
  assert.equal(r.sft.status, 'completed');
  assert.equal(JSON.parse(readFileSync(join(dir, 'rs1', 'sft', 'latest', 'trainer_state.json'), 'utf8')).config.data.length, 1);
  // iteration 2 pools iteration 1's best answers; a rerun of iteration 1 reuses its samples
  const r2 = await rejectionSampling({ config: config('rs2', { pool: [join(dir, 'rs1', 'best.jsonl')], iteration: 2, seed: 9 }), backend: be });
  assert.deepEqual(r2.report.pool, { new: 10, earlier: 10 });
  const events: string[] = [];
  await rejectionSampling({ config: config('rs1', { steps: 3 }), backend: be, resume: true, onEvent: (e) => { if (e.kind === 'notice') events.push(e.message); } });
  assert.ok(events.some((m) => /reusing the samples/.test(m)), events.join('\n'));
});

test('select gold keeps the gold-best sample (ties: the higher reward), and samples are drawn afresh for it', async () => {
  const be = selectBackend({ threads: 2 });
  const events: string[] = [];
  await rejectionSampling({ config: config('rs1', { select: 'gold', steps: 4 }), backend: be, resume: true, onEvent: (e) => { if (e.kind === 'notice') events.push(e.message); } });
  assert.ok(!events.some((m) => /reusing the samples/.test(m)), 'a different selection is a different manifest');
  const samples = readFileSync(join(dir, 'rs1', 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: number; sample: number; reward: number; gold: number });
  const best = readFileSync(join(dir, 'rs1', 'best.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { meta: { rs: { gold: number; reward: number; sample: number } } });
  best.forEach((b, i) => {
    const mine = samples.filter((s) => s.prompt === i);
    const g = Math.max(...mine.map((s) => s.gold));
    assert.equal(b.meta.rs.gold, g, `prompt ${i}`);
    assert.equal(b.meta.rs.reward, Math.max(...mine.filter((s) => s.gold === g).map((s) => s.reward)));
  });
});
