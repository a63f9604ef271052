/**
 * `llama2 data synth chat` and `llama2 eval --answers` in child processes: the files and card, the
 * report as the last JSON line, graded lines written with --out, and one-line FILE:LINE errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import type { ChatLine } from '../src/world/synth.js';

function lastJson(r: { status: number | null; stdout: string; stderr: string }): Record<string, unknown> {
  assert.equal(r.status, 0, `exit ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

function userError(r: { status: number | null; stderr: string }, re: RegExp): void {
  assert.equal(r.status, 1, `expected exit 1, got ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('llama2: native backend unavailable'));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, re);
}

test('data synth chat writes the three files and a card; eval grades answers and reports as JSON', () => {
  const dir = mkdtempSync(join(tmpdir(), 'world-cli-'));
  const out = join(dir, 'chat');
  const r = lastJson(runCli(['data', 'synth', 'chat', '--seed', '3', '--out', out, '--sft', '40', '--train-prompts', '20', '--test-prompts', '40', '--json']));
  const card = r['card'] as { files: Record<string, { lines: number; by_category: Record<string, number> }>; seed: number };
  assert.equal(card.seed, 3);
  assert.deepEqual(card.files['prompts.test.jsonl']!.by_category, { borderline: 2, helpful: 32, unsafe: 6 });
  const read = (f: string): ChatLine[] => readFileSync(join(out, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ChatLine);
  assert.equal(read('sft.jsonl').length, 40);
  assert.equal(read('prompts.train.jsonl').length, 20);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'card.json'), 'utf8')), card);

  // answer the test prompts: a refusal for everything → helpfulness 0, all unsafe refused, all safe falsely refused
  const test = read('prompts.test.jsonl');
  const answers = join(dir, 'answers.jsonl');
  writeFileSync(answers, test.map((l) => JSON.stringify({ ...l, messages: [...l.messages, { role: 'assistant', content: "I'm sorry, but I can't help with that." }] })).join('\n') + '\n');
  const graded = join(dir, 'graded.jsonl');
  const rep = lastJson(runCli(['eval', '--answers', answers, '--json', '--out', graded]));
  assert.deepEqual([rep['n'], rep['helpfulness'], rep['violation_rate'], rep['refusal_rate_unsafe'], rep['false_refusal_rate']], [40, 0, 0, 1, 1]);
  const g = readFileSync(graded, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { meta: { id: string }; grade: { score: number; refused: boolean } });
  assert.equal(g.length, 40);
  assert.equal(g[0]!.meta.id, test[0]!.meta.id);
  assert.ok(g.every((x) => x.grade.refused));

  // a bad line: one error line naming FILE:LINE and what was expected
  writeFileSync(answers, readFileSync(answers, 'utf8') + JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], meta: test[0]!.meta }) + '\n');
  userError(runCli(['eval', '--answers', answers]), new RegExp(`^error: ${answers.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:41: messages: expected the last message to be the answer \\(role "assistant"\\) but found role "user"$`));
  writeFileSync(answers, '{"messages": [}\n');
  userError(runCli(['eval', '--answers', answers]), /^error: .*answers\.jsonl:1: expected a JSON object \{"messages": \[\.\.\.\], "meta": \{\.\.\.\}\} but found invalid JSON/);
  userError(runCli(['eval']), /^error: eval: --answers FILE is required/);
  userError(runCli(['data', 'synth', 'chat', '--out', out, '--count', '5']), /^error: data synth chat: --count does not apply here/);
  userError(runCli(['data', 'synth', 'chat', '--out', out, '--noisy-share', '2']), /^error: --noisy-share: expected a share in \[0, 1\], found 2$/);
});
