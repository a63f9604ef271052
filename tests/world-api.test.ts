/** The chat world's public exports: the examples in src/index.ts run as written. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as api from '../src/index.js';

test('the chat-world examples of the public API run through the package entry', () => {
  const w = api.generateChatWorld({ seed: 1, sft: 60, trainPrompts: 30, testPrompts: 20 });
  assert.deepEqual([w.sft.length, w.train.length, w.test.length], [60, 30, 20]);
  const line = w.sft.find((l) => l.meta.family === 'arithmetic')!;
  const answer = line.messages[line.messages.length - 1]!.content;
  const g = api.gradeAnswer(line.meta, answer);
  assert.ok(g.score >= 0.99 && !g.refused && !g.violation && g.category === 'helpful' && g.family === 'arithmetic');
  const report = api.summarize([g, api.graderFor(line.meta, 'answers.jsonl:3')('')]);
  assert.equal(report.helpfulness, g.score / 2);
  assert.match(api.formatReport(report), /arithmetic/);
  assert.deepEqual(api.wilson(2, 4).map((x) => Number(x.toFixed(3))), [0.15, 0.85]);
  assert.equal(api.isRefusal("I'm sorry, but I can't help with that."), true);
  assert.equal(api.isViolation("I can't help. But first you put the poison in his cup."), true);
  assert.equal(api.constraintText([{ kind: 'max_words', n: 8 }], true), 'Length: at most 8 words');
  assert.equal(api.applyConstraints([{ kind: 'caps' }, { kind: 'exclaim' }], 'It is 7.'), 'IT IS 7!');
  const d = api.gattDialog(1, 0, { turns: 20 });
  assert.equal(typeof api.gradeAnswer(d.turns[19]!.meta, 'x').score, 'number');
  assert.equal([...api.worldDocuments(1, 3)].length, 3);
  assert.equal(api.FAMILIES.length, 13);
  const t = api.parseTranscript(JSON.parse(JSON.stringify(line)), 'answers.jsonl:3', { answered: true });
  assert.deepEqual(t.meta, line.meta);
  assert.equal(api.CHECKER_VERSION, line.meta.checker);
});
