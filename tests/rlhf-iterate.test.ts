/**
 * Two tiny RLHF iterations end to end (the oracle's e_tok2k_chat as the SFT model): V1 = a
 * preference batch, both reward models, rejection sampling; V2 = a batch from V1's policy, reward
 * models on both batches, RS pooling V1's best answers, PPO on top; then targeted context
 * distillation. The lineage names every input of every version; a rerun skips what is done.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ITERATE, iterate } from '../src/recipes/iterate.js';
import { writeHfDir } from '../src/formats/hf.js';
import { loadModelFile } from '../src/formats/load.js';
import { writeChatWorld } from '../src/world/synth.js';
import { readTokenizerModel } from '../src/tokenizer/load.js';
import { selectBackend } from '../src/backend/select.js';
import { oracleDir } from './helpers/oracle-case.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'iterate-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

test('two tiny iterations (RS, then RS + PPO) and context distillation; lineage; a rerun skips finished steps', async () => {
  const policy = join(dir, 'sft');
  const base = loadModelFile(join(oracleDir(), 'e_tok2k_chat', 'hf'), { mmap: false });
  writeHfDir(policy, base.config, base.weights, { vocab: readTokenizerModel(join(oracleDir(), 'tokenizer', 'tokenizer.model')) });
  writeChatWorld(join(dir, 'world'), { seed: 8, sft: 0, trainPrompts: 32, testPrompts: 8 });
  const train = readFileSync(join(dir, 'world', 'prompts.train.jsonl'), 'utf8').trim().split('\n');
  writeFileSync(join(dir, 'pref.jsonl'), train.slice(0, 24).join('\n') + '\n');
  writeFileSync(join(dir, 'rl.jsonl'), train.slice(24).join('\n') + '\n');
  const config = {
    ...ITERATE.defaults, sft: policy, pref_prompts: join(dir, 'pref.jsonl'), pref_per_version: 12, rl_prompts: join(dir, 'rl.jsonl'),
    eval_prompts: join(dir, 'world', 'prompts.test.jsonl'), eval_n: 8, versions: 2, ppo_versions: 1, rs_k: 2, ppo_steps: 2, reward_epochs: 1,
    safety_distill: true, out_dir: join(dir, 'run'),
  };
  const be = selectBackend({ threads: 2 });
  const r = await iterate({ config, backend: be });
  assert.equal(r.interrupted, false);
  assert.deepEqual(r.versions.map((v) => v.name), ['SFT', 'RS-V1', 'PPO-V2', '+ context distillation']);
  for (const v of r.versions) {
    assert.ok(v.helpfulness >= 0 && v.helpfulness <= 1 && v.violation_rate >= 0 && Number.isFinite(v.rm_helpful) && Number.isFinite(v.rm_safety), JSON.stringify(v));
  }
  const lineage = JSON.parse(readFileSync(join(dir, 'run', 'lineage.json'), 'utf8')) as Record<string, { preference_batches: { lines: number; sha256: string }[]; rs_pool: unknown[]; ppo: boolean; from: string }>;
  assert.deepEqual(Object.keys(lineage), ['RS-V1', 'PPO-V2', 'distilled']);
  assert.equal(lineage['RS-V1']!.preference_batches.length, 1);
  assert.equal(lineage['PPO-V2']!.preference_batches.length, 2, 'V2 reward models train on both batches');
  assert.equal(lineage['PPO-V2']!.rs_pool.length, 2, "V2's rejection sampling pools V1's best answers");
  assert.equal(lineage['PPO-V2']!.from, join(dir, 'run', 'v1', 'rs', 'sft', 'latest'));
  assert.ok(lineage['PPO-V2']!.ppo);
  const prefs2 = readFileSync(join(dir, 'run', 'v2', 'prefs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { meta: { batch: number } });
  assert.ok(prefs2.every((p) => p.meta.batch === 2));
  const graded = readFileSync(join(dir, 'run', 'eval.SFT.graded.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { messages: { role: string }[]; grade: { score: number } });
  assert.equal(graded.length, 8);
  assert.ok(graded.every((g) => g.messages[g.messages.length - 1]!.role === 'assistant' && g.grade.score >= 0));
  // llama2 eval with both reward models gives the SFT row's gold and mean rewards (V1's reward models)
  const cli = runCli(['eval', '--model', policy, '--prompts', join(dir, 'world', 'prompts.test.jsonl'), '--threads', '2', '--quiet', '--json',
    '--rm-helpful', join(dir, 'run', 'v1', 'rm-helpful', 'latest'), '--rm-safety', join(dir, 'run', 'v1', 'rm-safety', 'latest')]);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /mean rewards: R_helpful/);
  const ev = JSON.parse(cli.stdout.trim().split('\n').pop()!) as { helpfulness: number; rm_helpful: number; rm_safety: number; rm_combined: number };
  const sftRow = r.versions[0]!;
  assert.equal(ev.helpfulness, sftRow.helpfulness);
  assert.ok(Math.abs(ev.rm_helpful - sftRow.rm_helpful) < 1e-6 && Math.abs(ev.rm_safety - sftRow.rm_safety) < 1e-6, JSON.stringify({ ev, sftRow }));
  assert.ok(ev.rm_combined > 0 && ev.rm_combined < 1);
  assert.match(runCli(['eval', '--model', policy, '--prompts', join(dir, 'world', 'prompts.test.jsonl'), '--rm-safety', 'x']).stderr, /--rm-helpful and --rm-safety go together/);
  // rerun: everything is there, nothing is trained again
  const events: string[] = [];
  const again = await iterate({ config, backend: be, onEvent: (e) => events.push(e.kind) });
  assert.deepEqual(again.versions.map((v) => v.helpfulness), r.versions.map((v) => v.helpfulness));
  assert.ok(!events.includes('step'), 'no training step runs on a rerun');
});
