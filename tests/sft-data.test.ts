/**
 * SFT data: the chat JSONL formats (messages, TRL prompt–completion, HH-RLHF), bad lines, the
 * answer-only loss mask (train_on last for Ghost Attention), fitting long dialogs, and the three
 * packings (block / concat / none) against plain re-derivations of what each row must hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseChatRecord, parseHhText, readChatFile } from '../src/data/chat-data.js';
import { packEpoch, type TokenSample } from '../src/data/packing.js';
import { tokenizeSamples } from '../src/recipes/sft.js';
import { renderDialog } from '../src/chat/format.js';
import { readTokenizerModel } from '../src/tokenizer/load.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { Llama2Error } from '../src/util/errors.js';
import { Rng, permutation } from '../src/util/rng.js';
import { oracleDir } from './helpers/oracle-case.js';

const dir = mkdtempSync(join(tmpdir(), 'sft-data-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const tok = new Tokenizer(readTokenizerModel(join(oracleDir(), 'tokenizer', 'tokenizer.model')));

const userErr = (f: () => unknown, ...res: RegExp[]) =>
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, String(e));
    for (const re of res) assert.match(e.message, re);
    return true;
  });

test('formats: messages (text parts too), prompt-completion (strings or messages), HH-RLHF text and chosen', () => {
  const m = parseChatRecord({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi ' }, { type: 'text', text: 'there' }] }, { role: 'assistant', content: 'Hello.' }], meta: { id: 7 } }, 'f:1');
  assert.deepEqual(m.messages.map((x) => x.content), ['Be brief.', 'Hi there', 'Hello.']);
  assert.equal(m.trainOn, 'all');
  assert.deepEqual(m.meta, { id: 7 });
  const pc = parseChatRecord({ prompt: 'What is 2 plus 2?', completion: '4' }, 'f:2');
  assert.deepEqual(pc.messages, [{ role: 'user', content: 'What is 2 plus 2?' }, { role: 'assistant', content: '4' }]);
  assert.equal(pc.trainOn, 'last', 'prompt-completion learns the completion only');
  const pcm = parseChatRecord({ prompt: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }], completion: [{ role: 'assistant', content: 'd' }] }, 'f:3');
  assert.equal(pcm.messages.length, 4);
  const hh = '\n\nHuman: Where is Tom?\n\nAssistant: In the park.\n\nHuman: Why?\n\nAssistant: He likes it.';
  assert.deepEqual(parseHhText(hh, 'x').map((x) => [x.role, x.content]), [['user', 'Where is Tom?'], ['assistant', 'In the park.'], ['user', 'Why?'], ['assistant', 'He likes it.']]);
  assert.equal(parseChatRecord({ text: hh }, 'f:4').messages.length, 4);
  assert.equal(parseChatRecord({ chosen: hh, rejected: '\n\nHuman: x\n\nAssistant: no' }, 'f:5').messages[3]!.content, 'He likes it.');
  assert.equal(parseChatRecord({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], train_on: 'last' }, 'f:6').trainOn, 'last');
});

test('bad lines name FILE:LINE, what was expected and what was found; --skip-bad counts them', () => {
  userErr(() => parseChatRecord({ messages: [{ role: 'user', content: 'q' }] }, 'd.jsonl:3'), /^d\.jsonl:3: /, /end with an assistant turn/);
  userErr(() => parseChatRecord({ messages: [{ role: 'bot', content: 'q' }] }, 'd.jsonl:4'), /messages\[0\]: expected role "system", "user" or "assistant", found "bot"/);
  userErr(() => parseChatRecord({ messages: [{ role: 'assistant', content: 'q' }, { role: 'user', content: 'x' }] }, 'd:5'), /expected user/);
  userErr(() => parseChatRecord({ input: 'x' }, 'd:6'), /expected "messages", "prompt" \+ "completion", or an HH-RLHF/, /"input"/);
  userErr(() => parseChatRecord({ text: 'no speakers here' }, 'd:7'), /HH-RLHF transcript/);
  userErr(() => parseChatRecord({ prompt: 'p', completion: 3 }, 'd:8'), /"completion"/);
  userErr(() => parseChatRecord({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], train_on: 'first' }, 'd:9'), /"train_on"/);
  const f = join(dir, 'mixed.jsonl');
  writeFileSync(f, [
    JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }),
    '{"messages": [',
    '',
    JSON.stringify({ prompt: 'p', completion: 'c' }),
    JSON.stringify({ nothing: 1 }),
  ].join('\n') + '\n');
  userErr(() => [...readChatFile(f)], new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: invalid JSON`));
  const bad: string[] = [];
  const ok = [...readChatFile(f, { skipBad: true, onBad: (m) => bad.push(m) })];
  assert.equal(ok.length, 2);
  assert.deepEqual(bad.map((m) => /:(\d+):/.exec(m)![1]), ['2', '5']);
});

test('the loss mask: answers (and their EOS) only; train_on last keeps the final answer; long dialogs are fitted', () => {
  const msgs = [
    { role: 'system' as const, content: 'Answer in capitals.' },
    { role: 'user' as const, content: 'What colour is the sky?' }, { role: 'assistant' as const, content: 'BLUE.' },
    { role: 'user' as const, content: 'And the grass?' }, { role: 'assistant' as const, content: 'GREEN.' },
  ];
  const r = renderDialog(tok, msgs);
  const [all] = tokenizeSamples(tok, [{ messages: msgs, trainOn: 'all', meta: null, where: 'x' }], 1000).out;
  assert.deepEqual([...all!.mask], r.lossMask, 'train_on all is renderDialog\'s mask');
  const learned = (s: TokenSample) => tok.decode([...s.ids].filter((_, i) => s.mask[i] === 1 && s.ids[i] !== tok.eosId)).trim();
  assert.equal(learned(all!).replace(/\s+/g, ' '), 'BLUE. GREEN.');
  const [last] = tokenizeSamples(tok, [{ messages: msgs, trainOn: 'last', meta: null, where: 'x' }], 1000).out;
  assert.equal(learned(last!), 'GREEN.');
  assert.equal(last!.mask.filter((v) => v === 1).length, r.lossMask.slice(r.ids.lastIndexOf(tok.bosId)).filter((v) => v === 1).length);
  // a dialog longer than the row loses its oldest turn, keeping the system prompt
  const first = renderDialog(tok, msgs.slice(0, 3)).ids.length;
  const fitted = tokenizeSamples(tok, [{ messages: msgs, trainOn: 'all', meta: null, where: 'x' }], r.ids.length - 1);
  assert.equal(fitted.shortened, 1);
  const f0 = fitted.out[0]!;
  assert.ok(f0.ids.length < r.ids.length && f0.ids.length !== first);
  assert.match(tok.decode([...f0.ids]), /Answer in capitals\.[\s\S]*And the grass\?/);
  assert.doesNotMatch(tok.decode([...f0.ids]), /sky/);
  // nothing of the answer fits: dropped
  const none = tokenizeSamples(tok, [{ messages: msgs.slice(0, 3), trainOn: 'all', meta: null, where: 'x' }], 12);
  assert.deepEqual([none.out.length, none.dropped], [0, 1]);
});

/** random samples of lengths 2..maxLen with random masks */
function randomSamples(n: number, maxLen: number, seed: number): TokenSample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const L = 2 + rng.below(maxLen - 1);
    return { ids: Int32Array.from({ length: L }, () => 3 + rng.below(90)), mask: Uint8Array.from({ length: L }, (_, i) => (i > 0 && rng.below(2) ? 1 : 0)) };
  });
}

test('block and none: whole samples, positions and weights as each alone; answers() matches the filled weights', () => {
  const T = 24;
  const samples = randomSamples(40, T + 1, 3);
  const order = permutation(samples.length, new Rng(5));
  for (const packing of ['block', 'none'] as const) {
    const e = packEpoch(samples, order, T, packing);
    const seen: number[] = [];
    const x = new Int32Array(T), y = new Int32Array(T), w = new Float32Array(T);
    let k = 0;
    for (let r = 0; r < e.rows; r++) {
      const segs = e.fill(r, x, y, w, 0);
      const lengths = packing === 'block' ? segs : [samples[order[k]!]!.ids.length - 1];
      if (packing === 'none') assert.deepEqual(segs, []);
      assert.ok(lengths.reduce((a, b) => a + b, 0) <= T);
      let t = 0;
      for (const n of lengths) {
        const s = samples[order[k]!]!;
        assert.equal(n, s.ids.length - 1);
        assert.deepEqual([...x.subarray(t, t + n)], [...s.ids.subarray(0, n)]);
        assert.deepEqual([...y.subarray(t, t + n)], [...s.ids.subarray(1)]);
        assert.deepEqual([...w.subarray(t, t + n)], [...s.mask.subarray(1)]);
        seen.push(order[k]!);
        k++;
        t += n;
      }
      assert.ok(w.subarray(t).every((v) => v === 0) && x.subarray(t).every((v) => v === 0), 'padding has weight 0');
      assert.equal(e.answers(r), w.reduce((a, b) => a + b, 0));
    }
    assert.deepEqual(seen, [...order], `${packing}: every sample once, in order`);
    if (packing === 'none') assert.equal(e.rows, samples.length);
    else assert.ok(e.rows < samples.length * 0.8, `block packs several per row (${e.rows} rows for ${samples.length} samples)`);
  }
  assert.throws(() => packEpoch(randomSamples(1, 40, 1).map((s) => ({ ids: new Int32Array(40), mask: s.mask })), [0], 8, 'block'), /more than a row/);
});

test('concat: one stream cut into rows of T, targets shifted by one, the last row padded', () => {
  const T = 16;
  const samples = randomSamples(25, 30, 9);
  const order = permutation(samples.length, new Rng(2));
  const ids = [...order].flatMap((i) => [...samples[i]!.ids]);
  const mask = [...order].flatMap((i) => [...samples[i]!.mask]);
  const e = packEpoch(samples, order, T, 'concat');
  assert.equal(e.rows, Math.ceil((ids.length - 1) / T));
  const x = new Int32Array(T), y = new Int32Array(T), w = new Float32Array(T);
  for (let r = 0; r < e.rows; r++) {
    assert.deepEqual(e.fill(r, x, y, w, 0), []);
    for (let t = 0; t < T; t++) {
      const p = r * T + t;
      if (p + 1 < ids.length) {
        assert.deepEqual([x[t], y[t], w[t]], [ids[p], ids[p + 1], mask[p + 1]], `row ${r} position ${t}`);
      } else assert.deepEqual([x[t], y[t], w[t]], [0, 0, 0]);
    }
    assert.equal(e.answers(r), w.reduce((a, b) => a + b, 0));
  }
});
