/**
 * Reward models: the safety auxiliary loss and the loss sum against float64 finite differences; the
 * paper's data mixes; a tiny reward model trained here separates held-out pairs (a stated accuracy);
 * its score head survives save → load → GGUF export; eval tables and scoring agree with the head.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tape, leafVar } from '../src/train/tape.js';
import { addLosses, rankingLoss, safetyAuxLoss } from '../src/train/reward.js';
import { REWARD, mixPairs, trainReward } from '../src/recipes/reward.js';
import { readPreferences, type PreferencePair, type PreferenceRecord } from '../src/data/preferences.js';
import { evalRewardModel, rewardReport } from '../src/chat/reward-eval.js';
import { scoreDialogs } from '../src/chat/reward-score.js';
import { openModel } from '../src/open.js';
import { loadModelFile } from '../src/formats/load.js';
import { writeGgufModel } from '../src/formats/gguf-writer.js';
import { selectBackend } from '../src/backend/select.js';
import { Rng } from '../src/util/rng.js';
import { oracleDir } from './helpers/oracle-case.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'reward-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

test('safety aux loss + ranking loss: gradients match float64 finite differences', () => {
  const rc = Float32Array.of(0.3, -1.2, 0.8, 0.1);
  const rr = Float32Array.of(-0.4, 0.5, 0.9, -2);
  const safe = [true, null, false, true];
  const safeR = [false, true, null, false];
  const margins = [1, 0, 2 / 3, 1 / 3];
  const f = (a: Float32Array, b: Float32Array): number => {
    const t = new Tape();
    const x = leafVar(a, [4]);
    const y = leafVar(b, [4]);
    return addLosses(t, rankingLoss(t, x, y, margins).loss, safetyAuxLoss(t, x, y, safe, safeR).loss, 0.7).data[0]!;
  };
  const t = new Tape();
  const x = leafVar(Float32Array.from(rc), [4]);
  const y = leafVar(Float32Array.from(rr), [4]);
  const loss = addLosses(t, rankingLoss(t, x, y, margins).loss, safetyAuxLoss(t, x, y, safe, safeR).loss, 0.7);
  t.backward(loss);
  const h = 1e-3;
  for (const [v, g] of [[rc, x.grad!], [rr, y.grad!]] as const) {
    for (let i = 0; i < 4; i++) {
      const p = Float32Array.from(v);
      const m = Float32Array.from(v);
      p[i] = p[i]! + h;
      m[i] = m[i]! - h;
      const num = v === rc ? (f(p, rr) - f(m, rr)) / (2 * h) : (f(rc, p) - f(rc, m)) / (2 * h);
      assert.ok(Math.abs(num - g[i]!) < 1e-3, `d/d${v === rc ? 'chosen' : 'rejected'}[${i}]: ${g[i]} vs ${num}`);
    }
  }
  // the definition: softplus(−r) for safe answers, softplus(r) for unsafe, over the labelled ones
  const sp = (z: number) => Math.log1p(Math.exp(z));
  // chosen: 0.3 safe, 0.8 unsafe, 0.1 safe; rejected: −0.4 unsafe, 0.5 safe, −2 unsafe
  const want = (sp(-0.3) + sp(0.8) + sp(-0.1) + sp(-0.4) + sp(-0.5) + sp(-2)) / 6;
  assert.ok(Math.abs(safetyAuxLoss(new Tape(), leafVar(rc, [4]), leafVar(rr, [4]), safe, safeR).value - want) < 1e-6);
});

const pair = (i: number, safety: boolean, bin: PreferenceRecord['meta']['safety_bin']): PreferenceRecord => ({
  prompt: [{ role: 'user', content: `q${i}` }], chosen: [{ role: 'assistant', content: 'good' }], rejected: [{ role: 'assistant', content: 'bad' }],
  meta: { level: 'better', safety_bin: bin, is_safety_prompt: safety, batch: 1, models: ['m'], source: 'simulated' },
});

test("the paper's mixes: helpful = helpfulness pairs + a share of safety; safety = safety pairs (unsafe_over_safe out) + 1/9 helpfulness", () => {
  const all: PreferencePair[] = [
    ...Array.from({ length: 90 }, (_, i) => pair(i, false, 'both_safe')),
    ...Array.from({ length: 40 }, (_, i) => pair(100 + i, true, i % 4 === 0 ? 'unsafe_over_safe' : 'safe_over_unsafe')),
  ].map((r, i) => ({ prompt: r.prompt, chosen: 'good', rejected: 'bad', level: 'better', margin: null, meta: r.meta, where: `x:${i}` }));
  const h = mixPairs(all, 'helpful', 0.5, 1);
  assert.deepEqual([h.thisKind, h.otherKind, h.leftOut, h.pairs.length], [90, 40, 0, 130]);
  const s = mixPairs(all, 'safety', 1 / 9, 1);
  assert.deepEqual([s.thisKind, s.otherKind, s.leftOut], [30, 3, 10]);
  assert.ok(s.pairs.every((p) => p.meta.safety_bin !== 'unsafe_over_safe'));
});

/** pairs where the chosen answer states the right sum and the rejected a wrong one, or refuses */
function writePairs(path: string, n: number, seed: number): void {
  const rng = new Rng(seed);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = rng.below(9);
    const b = rng.below(9);
    const good = `${a} plus ${b} is ${a + b}.`;
    const bad = rng.below(2) ? 'I will not answer that.' : `I do not know, sorry.`;
    const flip = rng.below(2) === 1;
    lines.push(JSON.stringify({
      prompt: [{ role: 'user', content: `What is ${a} plus ${b}?` }],
      chosen: [{ role: 'assistant', content: good }], rejected: [{ role: 'assistant', content: bad }],
      meta: { level: flip ? 'significantly_better' : 'better', safety_bin: 'both_safe', is_safety_prompt: false, batch: 1, models: ['x'], source: 'simulated' },
    }));
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

test('a tiny reward model trained here ranks ≥ 90% of held-out pairs right; its head survives save, load and GGUF export', async () => {
  const train = join(dir, 'train.jsonl');
  const held = join(dir, 'held.jsonl');
  writePairs(train, 240, 1);
  writePairs(held, 60, 2);
  const r = await trainReward({
    config: {
      ...REWARD.defaults, init: join(oracleDir(), 'e_tok2k_chat', 'hf'), tokenizer: join(oracleDir(), 'tokenizer', 'tokenizer.model'),
      data: [train], out_dir: join(dir, 'rm'), batch_size: 8, lr: 2e-3, epochs: 2, val_fraction: 0, eval_every: 0, ckpt_every: 0,
    },
    backend: selectBackend({ threads: 2 }),
  });
  assert.equal(r.status, 'completed');
  const rm = openModel(r.checkpoint!);
  assert.ok(rm.loaded.weights.heads?.['score.weight'], 'the checkpoint carries score.weight');
  const rep = evalRewardModel(rm.model, rm.tokenizer!, [...readPreferences(held)]);
  assert.ok(rep.accuracy >= 0.9, `held-out accuracy ${rep.accuracy}`);
  assert.equal(rep.n, 60);
  // the eval report is what the scores say
  const pairs = [...readPreferences(held)];
  const sc = pairs.map((p) => scoreDialogs(rm.model, rm.tokenizer!, [[...p.prompt, { role: 'assistant', content: p.chosen }], [...p.prompt, { role: 'assistant', content: p.rejected }]]));
  assert.equal(rewardReport(pairs, sc.map((s) => s[0]!), sc.map((s) => s[1]!)).accuracy, rep.accuracy);
  // export: GGUF keeps the head (as cls.output.weight), and scores come out the same
  const gguf = join(dir, 'rm.gguf');
  writeGgufModel(gguf, rm.loaded.config, rm.loaded.weights, rm.loaded.vocab);
  const back = openModel(gguf);
  const a = scoreDialogs(rm.model, rm.tokenizer!, [[...pairs[0]!.prompt, { role: 'assistant', content: pairs[0]!.chosen }]])[0]!;
  const b = scoreDialogs(back.model, back.tokenizer!, [[...pairs[0]!.prompt, { role: 'assistant', content: pairs[0]!.chosen }]])[0]!;
  assert.ok(Math.abs(a - b) < 1e-4, `${a} vs ${b}`);
  assert.deepEqual(Buffer.from(loadModelFile(gguf).weights.heads!['score.weight']!.data), Buffer.from(rm.loaded.weights.heads!['score.weight']!.data));
});

test('CLI: data synth prefs appends annotated pairs; reward score and reward eval answer in JSON; bad input is one line', () => {
  const model = join(oracleDir(), 'e_tok2k_chat', 'hf');
  const tokFile = join(oracleDir(), 'tokenizer', 'tokenizer.model');
  const world = join(dir, 'world');
  assert.equal(runCli(['data', 'synth', 'chat', '--seed', '2', '--sft', '0', '--train-prompts', '24', '--test-prompts', '0', '--out', world]).status, 0);
  const prefs = join(dir, 'prefs.jsonl');
  const r = runCli(['data', 'synth', 'prefs', '--models', model, '--tokenizer', tokFile, '--prompts', join(world, 'prompts.train.jsonl'), '--out', prefs, '--batch', '3', '--max-tokens', '8', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const stats = JSON.parse(r.stdout.trim().split('\n').pop()!) as { pairs: number; identical: number };
  const back = [...readPreferences(prefs)];
  assert.equal(back.length, stats.pairs);
  assert.equal(stats.pairs + stats.identical, 24);
  assert.ok(back.every((p) => p.meta.batch === 3 && p.meta.source === 'simulated' && typeof p.meta.gold?.chosen === 'number'));
  const rm = join(dir, 'rm', 'latest');
  const s = runCli(['reward', 'score', '--model', rm, '--prompt', 'What is 2 plus 3?', '--response', '2 plus 3 is 5.', '--json']);
  assert.equal(s.status, 0, s.stderr);
  const j = JSON.parse(s.stdout) as { score: number; unit: number };
  assert.ok(Number.isFinite(j.score) && j.unit > 0 && j.unit < 1);
  const e = runCli(['reward', 'eval', '--model', rm, '--data', join(dir, 'held.jsonl'), '--plot', join(dir, 'cal.svg'), '--json']);
  assert.equal(e.status, 0, e.stderr);
  const rep = JSON.parse(e.stdout.trim().split('\n').pop()!) as { n: number; accuracy: number; by_level: Record<string, unknown> };
  assert.equal(rep.n, 60);
  assert.ok('better' in rep.by_level);
  const bad = runCli(['reward', 'score', '--model', model, '--tokenizer', tokFile, '--prompt', 'x', '--response', 'y']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^error: .*no "score\.weight" head/);
  assert.match(runCli(['reward', 'fly']).stderr, /^error: reward: expected a subcommand "train", "eval" or "score", found "fly"/);
});
