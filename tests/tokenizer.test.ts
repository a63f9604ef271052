// Tokenizer exactness against sentencepiece 0.1.97: the oracle's 200 strings and 11 decode cases
// from each of the three file formats, 300 seeded random strings, and edited models (no byte
// fallback, user-defined + UNUSED pieces, no dummy prefix) — all produced by python sentencepiece
// (tests/fixtures/oracle/tokenizer, scripts/make-tokenizer-fixtures.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { loadVocab } from '../src/tokenizer/load.js';
import { Llama2Error } from '../src/util/errors.js';

const ORACLE = 'tests/fixtures/oracle/tokenizer';
const EXTRA = 'tests/fixtures/tokenizer-extra';
const SOURCES = [`${ORACLE}/tokenizer.model`, `${EXTRA}/tokenizer.json`, `${EXTRA}/tokenizer.bin`];
const MAX_REPORTED = 5; // mismatches printed per check

interface EncodeCase { text: string; ids: number[]; pieces?: string[]; decoded: string; note?: string }
interface DecodeCase { ids: number[]; decoded: string; note?: string }
const oracle = JSON.parse(readFileSync(`${ORACLE}/tokenizer_cases.json`, 'utf8')) as {
  cases: EncodeCase[]; decode_cases: DecodeCase[]; vocab_size: number; bos_id: number; eos_id: number; unk_id: number; pad_id: number;
};
const extra = JSON.parse(readFileSync(`${EXTRA}/variants.json`, 'utf8')) as {
  random: EncodeCase[]; variants: Record<string, { model: string; cases: EncodeCase[]; decode_cases: DecodeCase[] }>;
};

/** Encodes and decodes every case; fails listing the first mismatches. */
function checkCases(tok: Tokenizer, cases: readonly EncodeCase[], label: string): void {
  const bad: string[] = [];
  for (const c of cases) {
    const ids = tok.encode(c.text);
    if (JSON.stringify(ids) !== JSON.stringify(c.ids)) {
      bad.push(`encode ${JSON.stringify(c.text)}: got ${JSON.stringify(ids.map((i) => tok.idToPiece(i)))} want ${JSON.stringify(c.ids.map((i) => tok.idToPiece(i)))}`);
    }
    if (c.pieces && JSON.stringify(c.ids.map((i) => tok.idToPiece(i))) !== JSON.stringify(c.pieces)) bad.push(`pieces of ${JSON.stringify(c.text)}`);
    const text = tok.decode(c.ids);
    if (text !== c.decoded) bad.push(`decode ${JSON.stringify(c.ids)}: got ${JSON.stringify(text)} want ${JSON.stringify(c.decoded)}`);
  }
  assert.equal(bad.length, 0, `${label}: ${bad.length} mismatches of ${cases.length} cases:\n${bad.slice(0, MAX_REPORTED).join('\n')}`);
}

function checkDecodes(tok: Tokenizer, cases: readonly DecodeCase[], label: string): void {
  const bad = cases.filter((c) => tok.decode(c.ids) !== c.decoded)
    .map((c) => `${JSON.stringify(c.ids)} (${c.note ?? ''}): got ${JSON.stringify(tok.decode(c.ids))} want ${JSON.stringify(c.decoded)}`);
  assert.equal(bad.length, 0, `${label}: ${bad.length} decode mismatches:\n${bad.slice(0, MAX_REPORTED).join('\n')}`);
}

for (const src of SOURCES) {
  test(`oracle cases: encode/decode exact from ${src}`, () => {
    const tok = new Tokenizer(loadVocab(src));
    assert.equal(tok.vocabSize, oracle.vocab_size);
    assert.deepEqual([tok.bosId, tok.eosId, tok.unkId], [oracle.bos_id, oracle.eos_id, oracle.unk_id]);
    assert.equal(oracle.cases.length, 200);
    checkCases(tok, oracle.cases, src);
    checkDecodes(tok, oracle.decode_cases, src);
    checkCases(tok, extra.random, `${src} random strings`);
  });
}

for (const [name, v] of Object.entries(extra.variants)) {
  test(`edited model "${name}": encode/decode exact`, () => {
    const tok = new Tokenizer(loadVocab(`${EXTRA}/${v.model}`));
    checkCases(tok, v.cases, name);
    checkDecodes(tok, v.decode_cases, name);
  });
}

test('no byte fallback: a run of unknown characters becomes one unk id', () => {
  const tok = new Tokenizer(loadVocab(`${EXTRA}/variants/no_byte_fallback.model`));
  const ids = tok.encode('a龘靐齉b');
  assert.equal(ids.filter((i) => i === tok.unkId).length, 1, JSON.stringify(ids));
  assert.equal(tok.decode(ids), 'a \u2047 b');
});

test('bos/eos options, special text stays text, pieceToId/idToPiece', () => {
  const tok = new Tokenizer(loadVocab(SOURCES[0]!));
  const plain = tok.encode('hello');
  assert.deepEqual(tok.encode('hello', { bos: true, eos: true }), [tok.bosId, ...plain, tok.eosId]);
  assert.deepEqual(tok.encode('', { bos: true }), [tok.bosId]);
  assert.deepEqual(tok.encode(''), []);
  assert.ok(!tok.encode('<s></s><unk>').some((id) => id === tok.bosId || id === tok.eosId || id === tok.unkId));
  assert.equal(tok.pieceToId('<s>'), tok.bosId);
  assert.equal(tok.pieceToId('\u2581the'), 264);
  assert.equal(tok.pieceToId('no such piece'), undefined);
  assert.equal(tok.idToPiece(264), '\u2581the');
});

test('lone surrogates encode like U+FFFD', () => {
  const tok = new Tokenizer(loadVocab(SOURCES[0]!));
  assert.deepEqual(tok.encode('a\uD800b'), tok.encode('a\uFFFDb'));
  assert.deepEqual(tok.encode('\uDC00'), tok.encode('\uFFFD'));
  assert.deepEqual(tok.encode('x\uD83D'), tok.encode('x\uFFFD'));
});

test('bad ids and vocabularies are Llama2Errors', () => {
  const tok = new Tokenizer(loadVocab(SOURCES[0]!));
  assert.throws(() => tok.decode([5, 2000]), (e: unknown) => e instanceof Llama2Error && /token id 2000 .*0\.\.1999/.test(e.message));
  assert.throws(() => tok.decode([-1]), Llama2Error);
  assert.throws(() => tok.decode([1.5]), Llama2Error);
  const v = loadVocab(SOURCES[0]!);
  assert.throws(() => new Tokenizer({ ...v, scores: v.scores.subarray(1) }), /expected 2000 scores/);
  assert.throws(() => new Tokenizer({ ...v, bosId: 5000 }), /bosId in -1\.\.1999/);
  const noBos = new Tokenizer({ ...v, bosId: -1 });
  assert.throws(() => noBos.encode('x', { bos: true }), /no BOS/);
});
