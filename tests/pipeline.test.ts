/**
 * `llama2 pipeline` on a tiny model, end to end: every stage runs through its recipe and the summary
 * has the keys of the stages' own JSON; a rerun skips every stage; a changed key redoes its stage and
 * those after it; an interrupted run resumes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PIPELINE, runPipeline, type PipelineConfig } from '../src/recipes/pipeline.js';
import { Llama2Error } from '../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pipeline-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const tiny = (out: string, over: Partial<PipelineConfig> = {}): PipelineConfig => ({
  ...PIPELINE.defaults, sft_dialogs: 120, pref_prompts: 24, rl_prompts: 8, test_prompts: 8, pretrain_steps: 12, dim: 32, n_layers: 2,
  vocab_size: 384, seq_len: 256, stories_count: 150, world_docs: 150, gatt_dialogs: 6, gatt_eval_dialogs: 3, versions: 2, ppo_versions: 1,
  rs_k: 2, ppo_steps: 2, reward_epochs: 1, reward_eval_pairs: 8, threads: 2, out_dir: out, ...over,
});

test('the whole recipe on a tiny model: summary, manifests, a rerun skips, a changed key redoes what depends on it', async () => {
  const out = join(dir, 'run');
  const s = await runPipeline({ config: tiny(out) });
  assert.deepEqual(s.stages.map((x) => x.name), ['world', 'pretrain', 'sft', 'gatt', 'rlhf', 'rewards']);
  assert.ok(s.stages.every((x) => !x.skipped && x.wall_s > 0 && x.kwh > 0));
  assert.deepEqual(s.versions.map((v) => v.name), ['pretrained', 'SFT', 'RS-V1', 'PPO-V2', '+ context distillation']);
  for (const v of s.versions) assert.ok(v.helpfulness >= 0 && v.helpfulness <= 1 && Number.isFinite(v.rm_helpful) && Number.isFinite(v.rm_safety), JSON.stringify(v));
  assert.deepEqual(Object.keys(s.gatt.with), ['2', '4', '6', '20']);
  assert.ok(s.reward_models.helpful.accuracy >= 0 && 'significantly_better' in s.reward_models.helpful.by_level, JSON.stringify(s.reward_models));
  assert.ok(s.pretrain.val_bits_per_char !== null && s.pretrain.val_bits_per_char > 0);
  const saved = JSON.parse(readFileSync(join(out, 'pipeline.json'), 'utf8')) as { versions: unknown[]; carbon: { kwh: number } };
  assert.equal(saved.versions.length, 5);
  assert.ok(Math.abs(saved.carbon.kwh - s.stages.reduce((a, x) => a + x.kwh, 0)) < 1e-12);
  const m = JSON.parse(readFileSync(join(out, 'world', 'manifest.json'), 'utf8')) as { outputs: { files: { path: string; sha256: string }[] } };
  assert.ok(m.outputs.files.every((f) => /^[0-9a-f]{64}$/.test(f.sha256)));
  assert.ok(existsSync(join(out, 'rlhf', 'lineage.json')));
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(s.report === join(out, 'report.html') && html.includes('<svg') && !/<script/i.test(html));

  // a rerun: nothing trains again, the same numbers
  const steps: string[] = [];
  const again = await runPipeline({ config: tiny(out), onEvent: (e) => { if (e.kind === 'step') steps.push(e.kind); } });
  assert.ok(again.stages.every((x) => x.skipped));
  assert.equal(steps.length, 0);
  assert.deepEqual(again.versions, s.versions);

  // more PPO steps: world, pretraining, SFT and GAtt are kept; RLHF and the reward evaluation are redone
  const more = await runPipeline({ config: tiny(out, { ppo_steps: 3 }) });
  assert.deepEqual(more.stages.map((x) => x.skipped), [true, true, true, true, false, false]);
});

test('an interrupted pipeline stops with a message and a rerun resumes from the stage it was in', async () => {
  const out = join(dir, 'stop');
  const ac = new AbortController();
  let stepsSeen = 0;
  await assert.rejects(
    runPipeline({ config: tiny(out, { pretrain_steps: 40 }), signal: ac.signal, onEvent: (e) => { if (e.kind === 'step' && ++stepsSeen === 5) ac.abort(); } }),
    (e: unknown) => e instanceof Llama2Error && /interrupted during stage "pretrain"/.test(e.message),
  );
  assert.ok(existsSync(join(out, 'pretrain', 'latest.json')), 'the interrupted stage left a checkpoint');
  assert.ok(!existsSync(join(out, 'pretrain', 'manifest.json')));
  let resumed = false;
  const s = await runPipeline({ config: tiny(out, { pretrain_steps: 40 }), onEvent: (e) => { if (e.kind === 'start' && e.stage === 'pretrain' && e.resumedFrom) resumed = true; } });
  assert.ok(resumed, 'pretraining resumed from its checkpoint');
  assert.equal(s.stages[0]!.skipped, true);
  assert.equal(s.versions.length, 5);
});
