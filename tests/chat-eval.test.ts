/**
 * A model answering and being graded: batched chat answers equal one-by-one generation of the
 * rendered prompt, gold evaluation grades exactly those answers, Ghost Attention data keeps the
 * instruction in the first turn only with the loss on the last answer, and the Table-30 shares are
 * what re-checking the kept transcripts gives. The model is the oracle's tiny e_tok2k_chat (random
 * weights, the real 2000-piece tokenizer): its answers are nonsense, the plumbing is what is tested.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openModel } from '../src/open.js';
import { renderPrompt, type Message } from '../src/chat/format.js';
import { answerDialogs } from '../src/chat/answer.js';
import { evaluateModel } from '../src/chat/evaluate.js';
import { buildGattData, evalGatt } from '../src/chat/gatt.js';
import { generate } from '../src/generate/generate.js';
import { generateChatWorld } from '../src/world/synth.js';
import { parseTranscript } from '../src/world/meta.js';
import { gradeAnswer } from '../src/world/grade.js';
import { checkConstraints } from '../src/world/constraints.js';
import { gattDialog } from '../src/world/gatt.js';
import { oracleDir } from './helpers/oracle-case.js';

const opened = openModel(join(oracleDir(), 'e_tok2k_chat', 'hf'), { tokenizer: join(oracleDir(), 'tokenizer', 'tokenizer.model') });
const model = opened.model;
const tok = opened.tokenizer!;

test('batched greedy answers equal one-by-one generation of the rendered prompt; system override', async () => {
  const dialogs: Message[][] = [
    [{ role: 'user', content: 'What is 2 plus 3?' }],
    [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }, { role: 'assistant', content: 'Hi.' }, { role: 'user', content: 'Spell cat.' }],
    [{ role: 'user', content: 'Tell me a story about a red ball.' }],
  ];
  const out = await answerDialogs(model, tok, dialogs, { maxTokens: 12, temperature: 0, maxRows: 2 });
  for (const [i, d] of dialogs.entries()) {
    const prompt = renderPrompt(tok, d);
    const g = await generate(model, tok, prompt, { temperature: 0, maxTokens: 12 });
    assert.deepEqual(out[i]![0]!.ids, g.ids, `dialog ${i}`);
    assert.equal(out[i]![0]!.text, tok.decode(g.ids).trim());
    assert.deepEqual(out[i]![0]!.prompt, prompt);
  }
  const sys = await answerDialogs(model, tok, [dialogs[1]!], { maxTokens: 4, temperature: 0, system: 'Answer in capitals.' });
  assert.deepEqual(sys[0]![0]!.prompt, renderPrompt(tok, [{ role: 'system', content: 'Answer in capitals.' }, ...dialogs[1]!.slice(1)]));
  const many = await answerDialogs(model, tok, [dialogs[0]!], { maxTokens: 6, temperature: 1, samples: 3, seed: 5 });
  assert.equal(many[0]!.length, 3);
});

test('evaluateModel grades exactly the answers it produced, K samples per prompt', async () => {
  const world = generateChatWorld({ seed: 3, sft: 0, trainPrompts: 0, testPrompts: 12 });
  const prompts = world.test.map((l, i) => parseTranscript(l, `p:${i}`, { answered: false }));
  const r = await evaluateModel(model, tok, prompts, { maxTokens: 8, samples: 2, temperature: 0.8, seed: 1 });
  assert.equal(r.graded.length, 24);
  assert.equal(r.report.n, 24);
  for (const g of r.graded) {
    const answer = g.messages[g.messages.length - 1]!.content;
    assert.deepEqual(g.grade, gradeAnswer(g.meta, answer, g.messages.slice(0, -1)));
  }
  const safe = r.graded.filter((g) => g.meta.category !== 'unsafe');
  assert.ok(Math.abs(r.report.helpfulness - safe.reduce((s, g) => s + g.grade.score, 0) / safe.length) < 1e-12);
});

test('GAtt data: the instruction only as the first turn\'s system message, one sample per answered turn, loss on the last answer', async () => {
  const { records, stats } = await buildGattData(model, tok, { dialogs: 4, turns: 6, seed: 2, samples: 2, maxTokens: 8 });
  assert.equal(stats.dialogs, 4);
  assert.equal(stats.sampled + stats.rewritten, stats.samples);
  assert.equal(records.length, stats.samples);
  for (const rec of records as { messages: Message[]; train_on: string; meta: { gatt: { dialog: number; turn: number } } }[]) {
    const d = gattDialog(2, rec.meta.gatt.dialog, { turns: 6 });
    assert.equal(rec.train_on, 'last');
    assert.deepEqual(rec.messages[0], { role: 'system', content: d.system });
    const users = rec.messages.filter((m) => m.role === 'user');
    assert.equal(users.length, rec.meta.gatt.turn);
    users.forEach((u, k) => assert.equal(u.content, d.turns[k]!.user, 'user turns carry no instruction'));
    for (const a of rec.messages.filter((m) => m.role === 'assistant')) assert.equal(checkConstraints(d.constraints, a.content), 1, 'every kept answer follows the instruction');
  }
});

test('GAtt evaluation: the shares at turns 2, 4, 6 are what re-checking the transcripts gives', async () => {
  const r = await evalGatt(model, tok, { dialogs: 5, turns: 6, seed: 4, maxTokens: 8, keep: true });
  assert.deepEqual(Object.keys(r.at), ['2', '4', '6']);
  assert.equal(r.curve.length, 6);
  for (const t of [2, 4, 6]) {
    let ok = 0;
    r.transcripts!.forEach((m, i) => {
      const answers = m.filter((x) => x.role === 'assistant');
      if (checkConstraints(gattDialog(4, i, { turns: 6 }).constraints, answers[t - 1]!.content) >= 1) ok++;
    });
    assert.equal(r.at[String(t)], ok / 5, `turn ${t}`);
  }
});
