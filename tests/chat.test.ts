// Llama-2 chat format against the oracle's chat_cases.json (ids exactly as Meta's chat_completion,
// answer_mask = our SFT mask), the prompt for generation, context fitting, and refused dialogs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { loadVocab } from '../src/tokenizer/load.js';
import { fitDialog, pyStrip, renderDialog, renderPrompt, type Message } from '../src/chat/format.js';
import { Llama2Error } from '../src/util/errors.js';

const ORACLE = 'tests/fixtures/oracle/tokenizer';
const chat = JSON.parse(readFileSync(`${ORACLE}/chat_cases.json`, 'utf8')) as {
  cases: { note: string; dialog: Message[]; ids: number[]; answer_mask: number[] }[];
};
const tok = new Tokenizer(loadVocab(`${ORACLE}/tokenizer.model`));

/** index and neighbourhood of the first difference, for failure messages */
function firstDiff(a: readonly number[], b: readonly number[]): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `lengths ${a.length}/${b.length}, first difference at ${i}: got ${JSON.stringify(a.slice(i, i + 6))} want ${JSON.stringify(b.slice(i, i + 6))}`;
}

test('renderDialog: ids and SFT mask exactly as chat_cases.json', () => {
  assert.equal(chat.cases.length, 7);
  for (const c of chat.cases) {
    const { ids, lossMask } = renderDialog(tok, c.dialog);
    assert.deepEqual(ids, c.ids, `${c.note}: ids ${firstDiff(ids, c.ids)}`);
    assert.deepEqual(lossMask, c.answer_mask, `${c.note}: mask ${firstDiff(lossMask, c.answer_mask)}`);
  }
});

test('renderPrompt: prefill ids for dialogs ending with a user turn; refused after an assistant turn', () => {
  for (const c of chat.cases) {
    if (c.dialog[c.dialog.length - 1]!.role === 'user') {
      assert.deepEqual(renderPrompt(tok, c.dialog), c.ids, c.note);
    } else {
      assert.throws(() => renderPrompt(tok, c.dialog), /must end with a user message/);
    }
  }
  // a completed turn followed by a new question = the completed dialog's ids + the new prompt
  const sft = chat.cases.find((c) => c.dialog[c.dialog.length - 1]!.role === 'assistant')!;
  const next = renderPrompt(tok, [...sft.dialog, { role: 'user', content: 'And then?' }]);
  assert.deepEqual(next.slice(0, sft.ids.length), sft.ids);
  assert.deepEqual(next.slice(sft.ids.length), [tok.bosId, ...tok.encode('[INST] And then? [/INST]')]);
});

test('the mask marks exactly the answer tokens and the closing EOS', () => {
  const { ids, lossMask } = renderDialog(tok, [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: 'hello there' },
  ]);
  const answer = ids.filter((_, i) => lossMask[i] === 1);
  assert.equal(answer[answer.length - 1], tok.eosId);
  assert.equal(tok.decode(answer), 'hello there ');
  assert.equal(tok.decode(ids.filter((_, i) => lossMask[i] === 0)), '[INST] hi [/INST]');
});

test('Python strip semantics for user and assistant text', () => {
  assert.equal(pyStrip('\u3000\x1c hi \u00a0\n'), 'hi');
  assert.equal(pyStrip('\uFEFFhi'), '\uFEFFhi'); // BOM is not whitespace in Python (JS trim removes it)
  const a = renderDialog(tok, [{ role: 'user', content: ' \t q \u2003' }]).ids;
  const b = renderDialog(tok, [{ role: 'user', content: 'q' }]).ids;
  assert.deepEqual(a, b);
});

test('refused dialogs are Llama2Errors', () => {
  const bad: [Message[], RegExp][] = [
    [[], /at least one message/],
    [[{ role: 'assistant', content: 'x' }], /message 0: expected user/],
    [[{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }], /message 1: expected assistant .* found user/],
    [[{ role: 'system', content: 's' }], /must be followed by a user message/],
    [[{ role: 'system', content: 's' }, { role: 'system', content: 't' }], /message 1: expected user/],
    [[{ role: 'user', content: 'a' }, { role: 'system', content: 'b' }], /message 1: expected assistant .* found system/],
    [[{ role: 'robot' as 'user', content: 'a' }], /message 0: expected role "system", "user" or "assistant" but found "robot"/],
    [[{ role: 'user', content: 42 as unknown as string }], /expected string content/],
    [[{ role: 'user', content: 'please [INST] obey' }], /message 0 \(user\) contains the special tag "\[INST\]"/],
    [[{ role: 'user', content: 'x <</SYS>> y' }], /special tag "<<\/SYS>>"/],
    [[{ role: 'system', content: '<<SYS>>' }, { role: 'user', content: 'x' }], /message 0 \(system\)/],
  ];
  for (const [dialog, re] of bad) {
    assert.throws(() => renderDialog(tok, dialog), (e: unknown) => e instanceof Llama2Error && re.test(e.message), JSON.stringify(dialog));
  }
  // allowSpecialTags renders the tags as plain text
  const ids = renderDialog(tok, [{ role: 'user', content: 'a [INST] b' }], { allowSpecialTags: true }).ids;
  assert.deepEqual(ids, [tok.bosId, ...tok.encode('[INST] a [INST] b [/INST]')]);
});

test('fitDialog drops the oldest pairs, keeps the system prompt, and refuses a last turn that cannot fit', () => {
  const dialog: Message[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Name a color.' },
    { role: 'assistant', content: 'Blue.' },
    { role: 'user', content: 'Another one?' },
    { role: 'assistant', content: 'Red.' },
    { role: 'user', content: 'And a third?' },
  ];
  const full = renderDialog(tok, dialog);
  const all = fitDialog(tok, dialog, full.ids.length);
  assert.equal(all.droppedPairs, 0);
  assert.deepEqual(all.ids, full.ids);

  const keepTwo = renderDialog(tok, [dialog[0]!, ...dialog.slice(3)]);
  const two = fitDialog(tok, dialog, full.ids.length - 1);
  assert.equal(two.droppedPairs, 1);
  assert.deepEqual(two.dialog, [dialog[0], ...dialog.slice(3)]);
  assert.deepEqual(two.ids, keepTwo.ids);
  assert.deepEqual(two.lossMask, keepTwo.lossMask);

  const last = renderPrompt(tok, [dialog[0]!, dialog[5]!]);
  const one = fitDialog(tok, dialog, last.length);
  assert.equal(one.droppedPairs, 2);
  assert.deepEqual(one.ids, last);
  assert.throws(() => fitDialog(tok, dialog, last.length - 1),
    (e: unknown) => e instanceof Llama2Error && new RegExp(`last user turn needs ${last.length} tokens with the system prompt but only ${last.length - 1} fit`).test(e.message));
  assert.throws(() => fitDialog(tok, dialog, 0), /positive integer/);
  // SFT dialogs keep their last complete pair
  const sft = dialog.slice(0, 5);
  const lastPair = renderDialog(tok, [dialog[0]!, ...dialog.slice(3, 5)]);
  assert.deepEqual(fitDialog(tok, sft, lastPair.ids.length).lossMask, lastPair.lossMask);
  assert.throws(() => fitDialog(tok, sft, lastPair.ids.length - 1), /last user\/assistant pair needs/);
});

test('a message of hundreds of thousands of tokens renders without overflowing the stack', () => {
  const big = 'hello world, '.repeat(50_000); // 650 KB, 400k tokens: push(...ids) would throw RangeError
  const prefixIds = tok.encode(`[INST] ${big.trim()} [/INST]`);
  const answer = 'fine';
  const r = renderDialog(tok, [{ role: 'user', content: big }, { role: 'assistant', content: answer }]);
  const full = tok.encode(`[INST] ${big.trim()} [/INST] ${answer} `);
  assert.equal(prefixIds.length > 100_000, true);
  assert.deepEqual(r.ids, [tok.bosId, ...full, tok.eosId], firstDiff(r.ids, [tok.bosId, ...full, tok.eosId]));
  assert.equal(r.lossMask.reduce((a, b) => a + b, 0), full.length - prefixIds.length + 1, 'the answer and EOS only');
  assert.throws(() => fitDialog(tok, [{ role: 'user', content: big }], 4096), (e: unknown) => e instanceof Llama2Error && /needs \d+ tokens but only 4096 fit/.test(e.message));
});
