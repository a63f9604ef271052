// StreamDecoder: fed one id at a time, the pieces it returns concatenate to Tokenizer.decode of all
// ids, and no piece ever ends inside a character (byte-fallback emoji/CJK included).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { StreamDecoder } from '../src/tokenizer/stream.js';
import { loadVocab } from '../src/tokenizer/load.js';

const ORACLE = 'tests/fixtures/oracle/tokenizer';
const EXTRA = 'tests/fixtures/tokenizer-extra';
const MAX_REPORTED = 5;

const oracle = JSON.parse(readFileSync(`${ORACLE}/tokenizer_cases.json`, 'utf8')) as {
  cases: { text: string; ids: number[] }[]; decode_cases: { ids: number[] }[];
};
const extra = JSON.parse(readFileSync(`${EXTRA}/variants.json`, 'utf8')) as {
  random: { ids: number[] }[]; variants: Record<string, { model: string; cases: { ids: number[] }[]; decode_cases: { ids: number[] }[] }>;
};

/** A piece is well-formed when it has no unpaired surrogate (e.g. half an emoji). */
const wellFormed = (s: string): boolean => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

function streamed(tok: Tokenizer, ids: readonly number[]): string[] {
  const sd = new StreamDecoder(tok);
  const parts = ids.map((id) => sd.push(id));
  parts.push(sd.flush());
  return parts;
}

function checkStream(tok: Tokenizer, idLists: readonly (readonly number[])[], label: string): void {
  const bad: string[] = [];
  for (const ids of idLists) {
    const parts = streamed(tok, ids);
    const whole = tok.decode(ids);
    if (parts.join('') !== whole) bad.push(`${JSON.stringify(ids)}: streamed ${JSON.stringify(parts.join(''))} decode ${JSON.stringify(whole)}`);
    const broken = parts.find((p) => !wellFormed(p));
    if (broken !== undefined) bad.push(`${JSON.stringify(ids)}: piece ${JSON.stringify(broken)} splits a character`);
  }
  assert.equal(bad.length, 0, `${label}: ${bad.length} failures:\n${bad.slice(0, MAX_REPORTED).join('\n')}`);
}

test('stream == decode over the oracle, random and edited-model cases', () => {
  const tok = new Tokenizer(loadVocab(`${ORACLE}/tokenizer.model`));
  const lists = [...oracle.cases, ...oracle.decode_cases, ...extra.random].map((c) => c.ids);
  checkStream(tok, lists, 'oracle');
  // bos/eos around text, and ids concatenated across cases (a byte run split by a control id)
  checkStream(tok, oracle.cases.map((c) => [1, ...c.ids, 2, ...c.ids]), 'with bos/eos');
  for (const v of Object.values(extra.variants)) {
    const vt = new Tokenizer(loadVocab(`${EXTRA}/${v.model}`));
    checkStream(vt, [...v.cases, ...v.decode_cases].map((c) => c.ids), v.model);
  }
});

test('byte pieces are held back until their character is complete', () => {
  const tok = new Tokenizer(loadVocab(`${ORACLE}/tokenizer.model`));
  const crab = tok.encode('🦀'); // ▁ + 4 byte pieces (not in the vocabulary)
  assert.equal(crab.length, 5);
  assert.deepEqual(streamed(tok, crab), ['', '', '', '', '🦀', '']);
  const cjk = tok.encode('龘'); // ▁ + 3 byte pieces
  assert.deepEqual(streamed(tok, cjk), ['', '', '', '龘', '']);
  const b = (x: number): number => tok.pieceToId(`<0x${x.toString(16).toUpperCase()}>`)!;
  // an impossible second byte releases the lead byte as U+FFFD right away
  assert.deepEqual(streamed(tok, [b(0xf0), b(0x41)]), ['', '\uFFFDA', '']);
  // a truncated character at the end comes out at flush, one U+FFFD per byte
  assert.deepEqual(streamed(tok, [b(0xe4), b(0xb8)]), ['', '', '\uFFFD\uFFFD']);
  // a control id in the middle ends the byte run
  assert.deepEqual(streamed(tok, [b(0xe4), tok.bosId, b(0xb8)]), ['', '\uFFFD', '\uFFFD', '']);
});

test('leading-space rule and reset', () => {
  const tok = new Tokenizer(loadVocab(`${ORACLE}/tokenizer.model`));
  const the = tok.pieceToId('\u2581the')!;
  const sd = new StreamDecoder(tok);
  assert.equal(sd.push(tok.bosId), '');
  assert.equal(sd.push(the), 'the');
  assert.equal(sd.push(the), ' the');
  sd.reset();
  assert.equal(sd.push(the), 'the');
});
