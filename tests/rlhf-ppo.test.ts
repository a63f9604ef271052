/**
 * PPO end to end on a tiny model: a reward model trained here to prefer one short answer, the
 * policy (the oracle's e_tok2k_chat) moves toward it — the rollout reward rises — with every step's
 * statistics logged and gold evaluations beside it; a stopped run resumes bit-identically.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PPO, ppo, type PpoConfig } from '../src/recipes/ppo.js';
import { REWARD, trainReward } from '../src/recipes/reward.js';
import { SFT, sft } from '../src/recipes/sft.js';
import { writeHfDir } from '../src/formats/hf.js';
import { loadModelFile } from '../src/formats/load.js';
import { writeChatWorld } from '../src/world/synth.js';
import { readTokenizerModel } from '../src/tokenizer/load.js';
import { readMetrics, type GoldRecord } from '../src/train/metrics.js';
import { selectBackend } from '../src/backend/select.js';
import { Rng } from '../src/util/rng.js';
import { oracleDir } from './helpers/oracle-case.js';

const dir = mkdtempSync(join(tmpdir(), 'ppo-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const be = selectBackend({ threads: 2 });
const policy = join(dir, 'policy');
const base = loadModelFile(join(oracleDir(), 'e_tok2k_chat', 'hf'), { mmap: false });
writeHfDir(policy, base.config, base.weights, { vocab: readTokenizerModel(join(oracleDir(), 'tokenizer', 'tokenizer.model')) });
writeChatWorld(join(dir, 'world'), { seed: 6, sft: 0, trainPrompts: 16, testPrompts: 8 });
const prompts = join(dir, 'world', 'prompts.train.jsonl');

/**
 * The policy PPO starts from: the tiny model fine-tuned so that about a third of its answers are
 * "Yes." and the rest random words (a reward model that wants "Yes." then has something to find).
 */
async function startingPolicy(): Promise<string> {
  const rng = new Rng(8);
  const words = ['cat', 'dog', 'red', 'ball', 'tree', 'blue', 'sun', 'run', 'big', 'small'];
  const lines = readFileSync(prompts, 'utf8').trim().split('\n').flatMap((l, i) => [0, 1, 2].map((k) => {
    const { messages } = JSON.parse(l) as { messages: unknown[] };
    const answer = (i + k) % 3 === 0 ? 'Yes.' : Array.from({ length: 2 + rng.below(3) }, () => words[rng.below(words.length)]).join(' ');
    return JSON.stringify({ messages: [...messages, { role: 'assistant', content: answer }] });
  }));
  writeFileSync(join(dir, 'start.jsonl'), lines.join('\n') + '\n');
  await sft({ config: { ...SFT.defaults, init: policy, data: [join(dir, 'start.jsonl')], out_dir: join(dir, 'start'), lr: 3e-3, epochs: 4, val_fraction: 0, eval_every: 0, ckpt_every: 0, warmup_steps: 2, batch_size: 8 }, backend: be });
  return join(dir, 'start', 'latest');
}

/** a reward model that prefers the answer "Yes." to anything else */
async function yesRewardModel(): Promise<string> {
  const rng = new Rng(4);
  const words = ['cat', 'dog', 'red', 'ball', 'tree', 'blue', 'sun', 'run', 'big', 'small'];
  const lines = Array.from({ length: 160 }, (_, i) => JSON.stringify({
    prompt: [{ role: 'user', content: `question ${i}` }], chosen: [{ role: 'assistant', content: 'Yes.' }],
    rejected: [{ role: 'assistant', content: Array.from({ length: 3 + rng.below(5) }, () => words[rng.below(words.length)]).join(' ') }],
    meta: { level: 'significantly_better', safety_bin: 'both_safe', is_safety_prompt: false, batch: 1, models: ['x'], source: 'simulated' },
  }));
  writeFileSync(join(dir, 'yes.jsonl'), lines.join('\n') + '\n');
  await trainReward({ config: { ...REWARD.defaults, init: policy, data: [join(dir, 'yes.jsonl')], out_dir: join(dir, 'rm'), lr: 2e-3, epochs: 2, val_fraction: 0, eval_every: 0, ckpt_every: 0, batch_size: 8 }, backend: be });
  return join(dir, 'rm', 'latest');
}

function config(out: string, rm: string, over: Partial<PpoConfig> = {}): PpoConfig {
  return {
    ...PPO.defaults, policy: join(dir, 'start', 'latest'), rm_helpful: rm, rm_safety: rm, prompts: [prompts], eval_prompts: join(dir, 'world', 'prompts.test.jsonl'), eval_n: 8,
    out_dir: join(dir, out), rollout_batch: 8, minibatch: 4, max_tokens: 6, lr: 2e-3, temperature: 1, eval_every: 4, ckpt_every: 2, ...over,
  };
}

test('the rollout reward rises under a reward model that wants "Yes."; every step logs its statistics; gold is graded beside the proxy', async () => {
  const rm = await yesRewardModel();
  await startingPolicy();
  const r = await ppo({ config: config('run', rm, { steps: 12 }), backend: be });
  assert.equal(r.status, 'completed');
  const recs = readMetrics(join(dir, 'run', 'metrics.jsonl'));
  const train = recs.filter((x) => x.type === 'train') as unknown as { reward: number; kl: number; clipfrac: number; entropy: number; response_length: number; policy_loss: number; value_loss: number }[];
  assert.equal(train.length, 12);
  for (const t of train) for (const k of ['reward', 'kl', 'clipfrac', 'entropy', 'response_length', 'policy_loss', 'value_loss'] as const) assert.ok(Number.isFinite(t[k]), k);
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const first = mean(train.slice(0, 4).map((t) => t.reward));
  const lastR = mean(train.slice(-4).map((t) => t.reward));
  assert.ok(lastR > first, `rollout reward ${first.toFixed(3)} → ${lastR.toFixed(3)}`);
  const golds = recs.filter((x): x is GoldRecord => x.type === 'gold');
  // the greedy answers to the fixed evaluation prompts, as the reward model scores them
  assert.ok(golds[golds.length - 1]!.reward > golds[0]!.reward + 0.05, `proxy reward of greedy answers ${golds.map((g) => g.reward.toFixed(3)).join(' → ')}`);
  assert.deepEqual(golds.map((g) => g.step), [0, 4, 8, 12]);
  assert.equal(r.summary.gold.length, 4);
  assert.ok(loadModelFile(r.checkpoint!).weights.heads?.['v_head.summary.weight'], 'the checkpoint carries the value head');
  assert.ok(readFileSync(join(dir, 'run', 'proxy.svg'), 'utf8').startsWith('<svg'));
});

test('a stopped PPO run resumes bit-identically', async () => {
  const rm = join(dir, 'rm', 'latest');
  const straight = await ppo({ config: config('straight', rm, { steps: 4, eval_prompts: null }), backend: be });
  const stopped = await ppo({ config: config('resumed', rm, { steps: 4, eval_prompts: null }), backend: be, stopAfter: 2 });
  assert.equal(stopped.status, 'stopped');
  const resumed = await ppo({ config: config('resumed', rm, { steps: 4, eval_prompts: null }), backend: be, resume: true });
  assert.equal(resumed.step, 4);
  for (const f of ['model.safetensors', 'optimizer.safetensors']) {
    assert.ok(readFileSync(join(resumed.checkpoint!, f)).equals(readFileSync(join(straight.checkpoint!, f))), `${f} differs after resume`);
  }
});

test('reward gold needs no reward models; critic warm-up steps leave the policy as it was', async () => {
  const start = join(dir, 'start', 'latest');
  const c = config('gold', 'unused', { rm_helpful: null, rm_safety: null, reward: 'gold', critic_warmup_steps: 2, steps: 3, ckpt_every: 1, eval_every: 0 });
  const r = await ppo({ config: c, backend: be, stopAfter: 2 });
  assert.equal(r.status, 'stopped');
  const before = loadModelFile(start, { mmap: false }).weights;
  const after = loadModelFile(r.checkpoint!, { mmap: false }).weights;
  const same = (a: { data: ArrayLike<number> }, b: { data: ArrayLike<number> }) => a.data.length === b.data.length && Array.from(a.data).every((x, i) => x === b.data[i]);
  assert.ok(same(before.tok_embeddings, after.tok_embeddings) && after.layers.every((l, i) => same(l.wq, before.layers[i]!.wq) && same(l.w2, before.layers[i]!.w2)), 'the policy is untouched by the warm-up steps');
  assert.ok(after.heads?.['v_head.summary.weight'], 'the value head is trained and saved');
  const rest = await ppo({ config: c, backend: be, resume: true });
  assert.equal(rest.step, 3);
  const moved = loadModelFile(rest.checkpoint!, { mmap: false }).weights;
  assert.ok(!same(before.tok_embeddings, moved.tok_embeddings) || !moved.layers.every((l, i) => same(l.wq, before.layers[i]!.wq)), 'the first PPO step after the warm-up moves the policy');
  const rewards = readMetrics(join(dir, 'gold', 'metrics.jsonl')).filter((x) => x.type === 'train').map((x) => (x as unknown as { reward: number }).reward);
  assert.ok(rewards.every((x) => x >= 0.05 - 1e-9 && x <= 0.95 + 1e-9), `gold rewards on [0.05, 0.95]: ${rewards.join(', ')}`);
  await assert.rejects(ppo({ config: { ...c, reward: 'models', out_dir: join(dir, 'gold2') }, backend: be }), /rm_helpful is required/);
});
