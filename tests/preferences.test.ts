/**
 * Preference pairs in every form reward training reads (ours, TRL string / implicit-prompt, HH-RLHF
 * text pairs), bad lines, the atomic append, and inference-side reward scoring (the score head on
 * the last token's final hidden state; the paper's safety gate).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendPreference, parsePreference, readPreferences, type PreferenceRecord } from '../src/data/preferences.js';
import { combinedReward, scoreDialogs, toUnit } from '../src/chat/reward-score.js';
import { renderDialog } from '../src/chat/format.js';
import { openModel } from '../src/open.js';
import { f32Tensor } from '../src/tensor.js';
import { Model } from '../src/model/forward.js';
import { refBackend } from '../src/backend/ref.js';
import { Llama2Error } from '../src/util/errors.js';
import { randn } from './helpers/random.js';
import { oracleDir } from './helpers/oracle-case.js';

const dir = mkdtempSync(join(tmpdir(), 'prefs-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const rec: PreferenceRecord = {
  prompt: [{ role: 'user', content: 'What is 2 plus 2?' }],
  chosen: [{ role: 'assistant', content: '4.' }],
  rejected: [{ role: 'assistant', content: '5.' }],
  meta: { level: 'better', safety_bin: 'both_safe', is_safety_prompt: false, batch: 1, models: ['sft'], source: 'simulated', gold: { chosen: 1, rejected: 0 } },
};

test('every form: ours, TRL strings, TRL implicit prompt, HH-RLHF text pairs, with margins', () => {
  const a = parsePreference(rec, 'x:1');
  assert.deepEqual([a.prompt, a.chosen, a.rejected, a.level, a.margin], [rec.prompt, '4.', '5.', 'better', null]);
  const s = parsePreference({ prompt: 'Hi?', chosen: 'Hello!', rejected: 'Go away.', margin: 1.5 }, 'x:2');
  assert.deepEqual([s.prompt, s.chosen, s.rejected, s.level, s.margin], [[{ role: 'user', content: 'Hi?' }], 'Hello!', 'Go away.', null, 1.5]);
  const conv = [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }];
  const imp = parsePreference({ chosen: [...conv, { role: 'assistant', content: 'good' }], rejected: [...conv, { role: 'assistant', content: 'bad' }] }, 'x:3');
  assert.deepEqual([imp.prompt.length, imp.chosen, imp.rejected], [3, 'good', 'bad']);
  const hh = parsePreference({ chosen: '\n\nHuman: Why?\n\nAssistant: Because.', rejected: '\n\nHuman: Why?\n\nAssistant: No.' }, 'x:4');
  assert.deepEqual([hh.prompt, hh.chosen, hh.rejected], [[{ role: 'user', content: 'Why?' }], 'Because.', 'No.']);
});

test('bad lines name FILE:LINE and what was expected; skipBad counts them', () => {
  const err = (v: unknown, re: RegExp) => assert.throws(() => parsePreference(v, 'p.jsonl:7'), (e: unknown) => e instanceof Llama2Error && e.message.startsWith('p.jsonl:7: ') && re.test(e.message));
  err({ prompt: 'x', chosen: 'y' }, /"chosen" and "rejected"/);
  err({ ...rec, meta: { ...rec.meta, level: 'much_better' } }, /meta\.level: expected one of significantly_better/);
  err({ ...rec, meta: { ...rec.meta, safety_bin: 'ok' } }, /meta\.safety_bin/);
  err({ ...rec, chosen: [{ role: 'assistant', content: 'a' }, { role: 'user', content: 'b' }] }, /one assistant message/);
  err({ chosen: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'x' }], rejected: [{ role: 'user', content: 'b' }, { role: 'assistant', content: 'y' }] }, /share every turn/);
  err({ ...rec, margin: 'big' }, /"margin" to be a number/);
  const f = join(dir, 'mixed.jsonl');
  writeFileSync(f, JSON.stringify(rec) + '\n{nope\n' + JSON.stringify({ prompt: 'q', chosen: 'a', rejected: 'b' }) + '\n');
  assert.throws(() => [...readPreferences(f)], /mixed\.jsonl:2: invalid JSON/);
  const badLines: string[] = [];
  assert.equal([...readPreferences(f, { skipBad: true, onBad: (m) => badLines.push(m) })].length, 2);
  assert.equal(badLines.length, 1);
});

test('appendPreference adds whole lines the reader reads back, and refuses a record it would not read', () => {
  const f = join(dir, 'append.jsonl');
  appendPreference(f, rec);
  appendPreference(f, { ...rec, meta: { ...rec.meta, level: 'slightly_better', batch: 2 } });
  const back = [...readPreferences(f)];
  assert.deepEqual(back.map((p) => [p.level, p.meta.batch]), [['better', 1], ['slightly_better', 2]]);
  assert.throws(() => appendPreference(f, { ...rec, chosen: [] }), Llama2Error);
  assert.equal(readFileSync(f, 'utf8').split('\n').length, 3, 'the refused record left the file as it was');
});

test('scoreDialogs: the head on the last token\'s final hidden state, batched or not; the safety gate', () => {
  const o = openModel(join(oracleDir(), 'e_tok2k_chat', 'hf'), { tokenizer: join(oracleDir(), 'tokenizer', 'tokenizer.model') });
  const C = o.model.config.dim;
  const head = randn(C, 3, 0.5);
  const weights = { ...o.loaded.weights, heads: { 'score.weight': f32Tensor(head, [1, C]) } };
  const rm = new Model(o.loaded.config, weights, refBackend);
  const tok = o.tokenizer!;
  const dialogs = [
    [{ role: 'user' as const, content: 'Hi' }, { role: 'assistant' as const, content: 'Hello!' }],
    [{ role: 'system' as const, content: 'Be kind.' }, { role: 'user' as const, content: 'Spell cat.' }, { role: 'assistant' as const, content: 'C-A-T.' }],
  ];
  const batched = scoreDialogs(rm, tok, dialogs);
  const single = dialogs.map((d) => scoreDialogs(rm, tok, [d], { batchTokens: 1 })[0]!);
  for (const [i, d] of dialogs.entries()) {
    const ids = renderDialog(tok, d).ids;
    const h = rm.forward([{ tokens: ids, cache: rm.newCache(ids.length) }], { logits: 'none', hidden: true }).hidden[0]!;
    let want = 0;
    for (let c = 0; c < C; c++) want += head[c]! * h[(ids.length - 1) * C + c]!;
    assert.ok(Math.abs(batched[i]! - want) < 1e-4 && Math.abs(single[i]! - want) < 1e-4, `dialog ${i}: ${batched[i]} ${single[i]} vs ${want}`);
  }
  assert.throws(() => scoreDialogs(o.model, tok, dialogs), /no "score\.weight" head/);
  assert.throws(() => scoreDialogs(rm, tok, [[{ role: 'user', content: 'x' }]]), /must end with the assistant answer/);
  assert.equal(toUnit(0), 0.5);
  assert.equal(combinedReward({ helpful: 0.9, safety: 0.5, safetyPrompt: false }), 0.9);
  assert.equal(combinedReward({ helpful: 0.9, safety: 0.1, safetyPrompt: false }), 0.1, 'unsafe answers are gated by the safety score');
  assert.equal(combinedReward({ helpful: 0.9, safety: 0.6, safetyPrompt: true }), 0.6, 'safety prompts use the safety score');
});
