/**
 * Killing a real `llama2 pretrain` process: SIGKILL right after a checkpoint (possibly while the
 * next one is being written) leaves a resumable run, and SIGINT finishes the step, saves a
 * checkpoint and exits 130. In both cases the resumed run ends with weights byte-identical to an
 * uninterrupted run of the same config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildStoriesData } from '../src/data/stories-data.js';
import { pretrain, type PretrainResult } from '../src/recipes/pretrain.js';
import { PRETRAIN, type PretrainConfig as TrainConfig } from '../src/recipes/pretrain.js';

const TRAIN_DEFAULTS = PRETRAIN.defaults;
import { latestCheckpoint } from '../src/train/checkpoint.js';
import { selectBackend } from '../src/backend/select.js';
import { repoRoot } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-signals-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const data = buildStoriesData({ dir: join(dir, 'data'), count: 100, seed: 7, vocabSize: 384, seqLen: 16, valFraction: 0.05 });
const backend = selectBackend({ threads: 2 });
const STEPS = 150;

/** A model of a few thousand parameters; a step takes milliseconds, a checkpoint a bit more. */
const SHAPE = { dim: 16, n_layers: 1, n_heads: 2, batch_size: 2, steps: STEPS, warmup_steps: 5, lr: 1e-2, eval_every: 0, ckpt_every: 3, log_every: 5 };

function config(out: string): TrainConfig {
  return { ...TRAIN_DEFAULTS, ...SHAPE, data_dir: data.dir, out_dir: join(dir, out) };
}

function cliArgs(out: string): string[] {
  const a = ['pretrain', '--data-dir', data.dir, '--out-dir', join(dir, out)];
  for (const [k, v] of Object.entries(SHAPE)) a.push(`--${k.replaceAll('_', '-')}=${v}`);
  return a;
}

interface Child {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** node's argv for the CLI, compiled or through tsx (like tests/helpers/cli.ts) */
function cliArgv(args: string[]): string[] {
  const root = repoRoot();
  const compiled = new URL('.', import.meta.url).pathname.includes('/dist/');
  return compiled ? [join(root, 'dist', 'src', 'cli', 'main.js'), ...args] : ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args];
}

/** Starts the CLI and sends `sig` when stderr matches `when`. */
function runAndSignal(args: string[], when: RegExp, sig: NodeJS.Signals): Promise<Child> {
  const root = repoRoot();
  const argv = cliArgv(args);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (s: string) => {
      stderr += s;
      if (!sent && when.test(stderr)) {
        sent = true;
        p.kill(sig);
      }
    });
    p.stdout.resume();
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stderr });
    });
  });
}

let straight: PretrainResult | null = null;
async function straightRun(): Promise<PretrainResult> {
  straight ??= await pretrain({ config: config('straight'), data, backend });
  return straight;
}

function sameWeights(a: string, b: string): boolean {
  return readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors')));
}

test('SIGKILL mid-run: the last complete checkpoint is intact, resumes, and ends where an uninterrupted run ends', async () => {
  const c = await runAndSignal(cliArgs('killed'), /saved checkpoint .*step 3\)/, 'SIGKILL');
  assert.equal(c.signal, 'SIGKILL', `the child was not killed (status ${c.status}); it may have finished first:\n${c.stderr}`);
  const at = latestCheckpoint(config('killed').out_dir);
  assert.ok(at && at.step >= 3 && at.step < STEPS, `latest checkpoint after the kill: ${JSON.stringify(at)}`);
  const r = await pretrain({ config: config('killed'), data, backend, resume: true });
  assert.equal(r.status, 'completed');
  assert.equal(r.step, STEPS);
  const s = await straightRun();
  assert.ok(sameWeights(r.checkpoint!, s.checkpoint!), 'resumed weights differ from the uninterrupted run');
});

test('SIGINT: finishes the step, saves a resumable checkpoint, exits 130 with a message', async () => {
  const c = await runAndSignal(cliArgs('interrupted'), /step 5\/150/, 'SIGINT');
  assert.equal(c.status, 130, `expected exit status 130, got ${c.status} (signal ${c.signal}):\n${c.stderr}`);
  assert.match(c.stderr, /interrupted at step \d+: checkpoint saved; continue with: llama2 pretrain .*--resume/);
  const at = latestCheckpoint(config('interrupted').out_dir);
  assert.ok(at && at.step >= 5 && at.step < STEPS, `latest checkpoint after SIGINT: ${JSON.stringify(at)}`);
  const r = await pretrain({ config: config('interrupted'), data, backend, resume: true });
  assert.equal(r.step, STEPS);
  const s = await straightRun();
  assert.ok(sameWeights(r.checkpoint!, s.checkpoint!), 'resumed weights differ from the uninterrupted run');
});

test('SIGTERM (containers, systemd, job schedulers) saves a resumable checkpoint exactly as SIGINT does', async () => {
  const c = await runAndSignal(cliArgs('terminated'), /step 5\/150/, 'SIGTERM');
  assert.equal(c.status, 130, `expected exit status 130, got ${c.status} (signal ${c.signal}):\n${c.stderr}`);
  assert.match(c.stderr, /SIGTERM: finishing this step and saving a checkpoint/);
  const at = latestCheckpoint(config('terminated').out_dir);
  assert.ok(at && at.step >= 5 && at.step < STEPS, `latest checkpoint after SIGTERM: ${JSON.stringify(at)}`);
  const r = await pretrain({ config: config('terminated'), data, backend, resume: true });
  assert.equal(r.step, STEPS);
  assert.ok(sameWeights(r.checkpoint!, (await straightRun()).checkpoint!), 'resumed weights differ from the uninterrupted run');
});

test('a run that fails before its first checkpoint leaves no out_dir behind', () => {
  const out = join(dir, 'never');
  const r = spawnSync(process.execPath, cliArgv(['pretrain', '--data-dir', join(dir, 'no-such-data'), '--out-dir', out, '--quiet']), { cwd: repoRoot(), encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^error: .*no-such-data/m);
  assert.ok(!existsSync(out), `${out} was left behind`);
});
