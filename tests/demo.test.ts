/**
 * The training commands end to end in child processes: `llama2 demo --quick` (corpus → tokenizer →
 * shards → training → samples → report, leaving a checkpoint `llama2 generate` runs), the CLI
 * chain data synth stories → tokenizer train → data prepare → pretrain with their --json forms,
 * and one-line errors for user mistakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from './helpers/cli.js';
import { generateStories } from '../src/data/stories.js';
import { readTokenizerModel } from '../src/tokenizer/load.js';
import { helpText, parseArgs, type CommandSpec, type FlagValues } from '../src/cli/args.js';
import * as pretrainCmd from '../src/cli/pretrain.js';
import * as dataCmd from '../src/cli/data.js';
import * as tokCmd from '../src/cli/tokenizer-train.js';
import * as demoCmd from '../src/cli/demo.js';
import { Llama2Error } from '../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'demo-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const NATIVE_NOTICE = 'llama2: native backend unavailable';

function ok(r: CliResult): CliResult {
  assert.equal(r.status, 0, `exit ${r.status}; stderr:\n${r.stderr}`);
  return r;
}

function lastJson(r: CliResult): Record<string, unknown> {
  const lines = ok(r).stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

function userError(r: CliResult, re: RegExp): void {
  assert.equal(r.status, 1, `expected exit 1, got ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith(NATIVE_NOTICE));
  assert.equal(lines.length, 1, `expected one error line:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, re);
}

test('demo --quick (the --stories demo, tiny): trains, samples, reports bits/char against the entropy floor, leaves a runnable checkpoint', () => {
  const out = join(dir, 'demo');
  const r = ok(runCli(['demo', '--quick', '--out', out, '--samples', '2', '--max-tokens', '24']));
  assert.match(r.stdout, /--- sample 1 \(temperature 0\.8\) ---\nOnce upon a time,/);
  assert.match(r.stdout, /--- sample 2 /);
  assert.match(r.stdout, /validation: \d\.\d{4} bits\/char vs the corpus's true entropy 0\.\d{4} bits\/char/);
  assert.match(r.stdout, /compute: .*FLOP\/token .*MFU/);
  assert.match(r.stdout, /energy: .*kWh .*kgCO2eq at 0\.4235 kg\/kWh/);
  assert.match(r.stdout, /· loss \(nats\/token\) \(train\)/, 'the text plot');
  assert.match(r.stderr, /stories: 200 stories, \d+ chars, true entropy/);
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, number | string>;
  assert.equal(s['status'], 'completed');
  assert.equal(s['steps'], 20);
  assert.ok((s['final_val_bpc'] as number) > (s['entropy_floor_bpc'] as number), `val ${s['final_val_bpc']} vs floor ${s['entropy_floor_bpc']}`);
  for (const f of ['data/tokenizer.model', 'data/tokenizer.json', 'data/meta.json', 'data/stories.jsonl', 'metrics.jsonl', 'loss.svg', 'latest/model.safetensors']) {
    assert.ok(existsSync(join(out, f)), `missing ${f}`);
  }
  const g = lastJson(runCli(['generate', '--model', join(out, 'latest'), '--prompt', 'Once upon a time', '--max-tokens', '5', '--temperature', '0', '--json']));
  assert.equal((g['ids'] as number[]).length, 5);
  // a second demo run reuses the prepared data and starts training over
  const again = ok(runCli(['demo', '--quick', '--out', out, '--samples', '0', '--steps', '2']));
  assert.match(again.stderr, /reusing the prepared stories/);
  assert.match(again.stdout, /pretrain: completed, step 2,/);
});

test('CLI chain: data synth stories → tokenizer train → data prepare → pretrain, each with --json', () => {
  const syn = lastJson(runCli(['data', 'synth', 'stories', '--out', join(dir, 's.jsonl'), '--count', '80', '--seed', '2', '--json']));
  const expected = generateStories({ seed: 2, count: 80 });
  assert.equal(syn['bits_per_char'], expected.bitsPerChar);
  assert.equal(syn['count'], 80);
  const text = ok(runCli(['data', 'synth', 'stories', '--out', join(dir, 's.txt'), '--count', '5']));
  assert.match(text.stdout, /true entropy: \d\.\d{4} bits\/char/);

  const tok = lastJson(runCli(['tokenizer', 'train', '--input', join(dir, 's.jsonl'), '--vocab-size', '320', '--out', join(dir, 'tok'), '--json']));
  assert.equal(tok['vocab_size'], 320);
  assert.equal(tok['documents'], 80);
  assert.equal(readTokenizerModel(join(dir, 'tok', 'tokenizer.model')).pieces.length, 320);
  assert.ok(existsSync(join(dir, 'tok', 'tokenizer.json')));

  const prep = lastJson(runCli(['data', 'prepare', '--input', join(dir, 's.jsonl'), '--tokenizer', join(dir, 'tok', 'tokenizer.json'), '--out', join(dir, 'shards'), '--seq-len', '16', '--val-fraction', '0.1', '--json']));
  assert.equal(prep['seq_len'], 16);
  assert.equal(prep['vocab_size'], 320);
  assert.ok(existsSync(join(dir, 'shards', 'tokenizer.model')), 'prepare puts the tokenizer next to the shards');

  // the tokenizer is found next to the shards: no --tokenizer needed
  const sum = lastJson(runCli(['pretrain', '--data-dir', join(dir, 'shards'), '--out-dir', join(dir, 'run'), '--dim=16', '--n-layers=1', '--n-heads=2',
    '--batch-size=2', '--steps=4', '--warmup-steps=1', '--eval-every=2', '--ckpt-every=0', '--json', '--quiet']));
  assert.equal(sum['status'], 'completed');
  assert.equal(sum['steps'], 4);
  assert.equal(sum['tokens'], 4 * 2 * 16);
  assert.equal(sum['entropy_floor_bpc'], null, 'prepared data carries no entropy unless the config gives one');
  assert.ok(typeof sum['final_val_bpc'] === 'number');
});

/** Runs a command module in-process (parse + run) and expects a Llama2Error matching `re`. */
async function rejectsIn(mod: { spec: CommandSpec; run(f: FlagValues, p: string[]): Promise<void> }, argv: string[], re: RegExp): Promise<void> {
  await assert.rejects(async () => {
    const a = parseArgs(mod.spec, argv);
    await mod.run(a.flags, a.positionals);
  }, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, `expected a Llama2Error, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `not one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

test('user mistakes are one-line errors', async () => {
  userError(runCli(['pretrain', '--batch-size=eight']), /--batch-size: expected an integer ≥ 1, found "eight"/);
  await rejectsIn(pretrainCmd, ['--no-such-key=1'], /unknown option "--no-such-key"/);
  await rejectsIn(pretrainCmd, ['--config', join(dir, 'missing.json')], /config .*missing\.json: cannot read/);
  await rejectsIn(pretrainCmd, ['--stop-after', '0'], /--stop-after: expected an integer ≥ 1/);
  await rejectsIn(dataCmd, ['synth', 'stories'], /--out FILE is required/);
  await rejectsIn(dataCmd, ['synth', 'stories', '--out', 'x.csv'], /expected a \.jsonl or \.txt file name/);
  await rejectsIn(dataCmd, ['synth', 'poems', '--out', 'x.jsonl'], /expected "llama2 data synth stories"/);
  await rejectsIn(dataCmd, ['prepare', '--input', 'a.jsonl', '--count', '3'], /--count does not apply here/);
  await rejectsIn(dataCmd, [], /expected a subcommand "synth stories", "synth chat", "prepare" or "gatt"/);
  await rejectsIn(tokCmd, ['encode'], /expected the subcommand "train"/);
  await rejectsIn(tokCmd, ['train', '--input', join(dir, 's.jsonl'), '--out', join(dir, 't2')], /--vocab-size N is required/);
  await rejectsIn(demoCmd, ['--stories', '--samples', '-1'], /--samples: expected an integer ≥ 0/);
  await rejectsIn(demoCmd, ['--steps', '5'], /demo: --steps applies to --stories only/);
  const help = helpText(pretrainCmd.spec);
  assert.match(help, /--batch-size N/);
  assert.match(help, /--resume/);
  assert.match(help, /--cpu-watts X\|null/);
});
