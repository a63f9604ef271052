// Tokenizer file readers and writers: tokenizer.model (protobuf), tokenizer.json (HF) and
// tokenizer.bin (llama2.c) give the same vocabulary as the oracle's table, writers round-trip,
// loadVocab finds files by name, directory and content, and broken files are Llama2Errors naming
// the file. (That python's sentencepiece loads writeTokenizerModel's output and encodes the same
// was checked during development; the committed variants under tokenizer-extra/ are python-made.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadVocab, parseLlama2cTokenizer, parseTokenizerJson, parseTokenizerModel, readLlama2cTokenizer, readTokenizerJson,
  readTokenizerModel, serializeLlama2cTokenizer, serializeTokenizerJson, serializeTokenizerModel, writeLlama2cTokenizer,
  writeTokenizerJson, writeTokenizerModel,
} from '../src/tokenizer/load.js';
import { ProtoWriter } from '../src/tokenizer/protobuf.js';
import { PieceType, type SpmVocab } from '../src/tokenizer/vocab.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { readGgufModel } from '../src/formats/gguf.js';
import { Llama2Error } from '../src/util/errors.js';

const ORACLE = 'tests/fixtures/oracle/tokenizer';
const EXTRA = 'tests/fixtures/tokenizer-extra';
const MODEL = `${ORACLE}/tokenizer.model`;
const TYPE_NAMES: Record<string, number> = { normal: 1, unknown: 2, control: 3, user_defined: 4, unused: 5, byte: 6 };

/** Fails with the first differing field / piece. Scores are compared bit for bit (-0 ≠ 0). */
function assertSameVocab(a: SpmVocab, b: SpmVocab, label: string): void {
  for (const k of ['bosId', 'eosId', 'unkId', 'padId', 'addDummyPrefix', 'addBos', 'addEos'] as const) {
    assert.equal(a[k], b[k], `${label}: ${k}`);
  }
  assert.equal(a.pieces.length, b.pieces.length, `${label}: number of pieces`);
  const bad = a.pieces.flatMap((p, i) =>
    p !== b.pieces[i] || a.types[i] !== b.types[i] || !Object.is(a.scores[i], b.scores[i])
      ? [`${i}: ${JSON.stringify(p)} type ${a.types[i]} score ${a.scores[i]} vs ${JSON.stringify(b.pieces[i])} type ${b.types[i]} score ${b.scores[i]}`]
      : []);
  assert.equal(bad.length, 0, `${label}: ${bad.length} pieces differ, first: ${bad.slice(0, 3).join('; ')}`);
}

/** asserts a Llama2Error whose message names `name` and matches `re` */
function throwsNaming(fn: () => unknown, name: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, `expected a Llama2Error, got ${String(e)}`);
    assert.ok(e.message.includes(name), `message should name ${name}: ${e.message}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'llama2-ts-tokenizer-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('tokenizer.model matches the oracle vocabulary table', () => {
  const v = readTokenizerModel(MODEL);
  const table = (JSON.parse(readFileSync(`${ORACLE}/tokenizer_cases.json`, 'utf8')) as {
    vocab: { id: number; piece: string; score: number; type: string }[];
  }).vocab;
  assert.equal(v.pieces.length, table.length);
  const bad = table.filter((e) => v.pieces[e.id] !== e.piece || v.scores[e.id] !== e.score || v.types[e.id] !== TYPE_NAMES[e.type]);
  assert.equal(bad.length, 0, `first differing: ${JSON.stringify(bad.slice(0, 3))}`);
  assert.deepEqual([v.bosId, v.eosId, v.unkId, v.padId, v.addDummyPrefix], [1, 2, 0, -1, true]);
});

test('the python-made tokenizer.json and tokenizer.bin give the same vocabulary (scores included)', () => {
  const model = readTokenizerModel(MODEL);
  assertSameVocab(readTokenizerJson(`${EXTRA}/tokenizer.json`), model, 'tokenizer.json');
  assertSameVocab(readLlama2cTokenizer(`${EXTRA}/tokenizer.bin`), model, 'tokenizer.bin');
  assertSameVocab(readLlama2cTokenizer(`${EXTRA}/tokenizer.bin`, 2000), model, 'tokenizer.bin with vocabSize');
  assert.equal(readLlama2cTokenizer(`${EXTRA}/tokenizer.bin`, 300).pieces.length, 300);
});

test('writers round-trip: vocab → file → vocab, and rewriting is byte-identical', () => {
  const model = readTokenizerModel(MODEL);
  const variants = ['no_byte_fallback', 'user_defined_unused', 'no_dummy_prefix'].map((n) => readTokenizerModel(`${EXTRA}/variants/${n}.model`));
  withTmp((dir) => {
    for (const [i, v] of [model, ...variants].entries()) {
      writeTokenizerModel(join(dir, `${i}.model`), v);
      assertSameVocab(readTokenizerModel(join(dir, `${i}.model`)), v, `model ${i}`);
      assert.deepEqual(serializeTokenizerModel(readTokenizerModel(join(dir, `${i}.model`))), serializeTokenizerModel(v));
    }
    writeTokenizerJson(join(dir, 'tokenizer.json'), model);
    assertSameVocab(readTokenizerJson(join(dir, 'tokenizer.json')), model, 'json');
    writeLlama2cTokenizer(join(dir, 'tokenizer.bin'), model);
    assertSameVocab(readLlama2cTokenizer(join(dir, 'tokenizer.bin')), model, 'bin');
    assert.deepEqual(readFileSync(join(dir, 'tokenizer.bin')), readFileSync(`${EXTRA}/tokenizer.bin`), 'same bytes as llama2.c-style export');
  });
  // our merges list equals the python-made file's (same rule: pieces by score, cuts by ids)
  const ours = JSON.parse(serializeTokenizerJson(model)) as { model: { merges: string[] } };
  const theirs = JSON.parse(readFileSync(`${EXTRA}/tokenizer.json`, 'utf8')) as { model: { merges: string[] } };
  assert.deepEqual(ours.model.merges, theirs.model.merges);
  // user-defined pieces and a missing dummy prefix survive tokenizer.json (UNUSED cannot: HF has no such type)
  const ud = variants[1]!;
  const back = parseTokenizerJson(serializeTokenizerJson(ud), 'x');
  assert.deepEqual(Array.from(back.types).map((t, i) => (t === PieceType.NORMAL && ud.types[i] === PieceType.UNUSED ? PieceType.UNUSED : t)), Array.from(ud.types));
  assert.equal(parseTokenizerJson(serializeTokenizerJson(variants[2]!), 'x').addDummyPrefix, false);
  assert.deepEqual(parseLlama2cTokenizer(serializeLlama2cTokenizer(model), 'x').pieces, model.pieces);
});

test('loadVocab: by name, in a directory, and by content', () => {
  const model = readTokenizerModel(MODEL);
  assertSameVocab(loadVocab(ORACLE), model, 'directory');
  withTmp((dir) => {
    for (const [src, name] of [[MODEL, 'a'], [`${EXTRA}/tokenizer.json`, 'b'], [`${EXTRA}/tokenizer.bin`, 'c']] as const) {
      copyFileSync(src, join(dir, name));
      assertSameVocab(loadVocab(join(dir, name)), model, `sniffed ${src}`);
    }
    writeFileSync(join(dir, 'weird'), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    throwsNaming(() => loadVocab(join(dir, 'weird')), 'weird', /unrecognized file .*expected a SentencePiece tokenizer\.model/);
    throwsNaming(() => loadVocab(join(dir, 'missing.model')), 'missing.model', /no such file/);
    throwsNaming(() => loadVocab(dir), dir, /none of tokenizer\.model/);
  });
});

test('broken tokenizer.model files are Llama2Errors naming the file', () => {
  const bytes = readFileSync(MODEL);
  const name = 'my.model';
  throwsNaming(() => parseTokenizerModel(bytes.subarray(0, 1000), name), name, /truncated or corrupt protobuf/);
  throwsNaming(() => parseTokenizerModel(bytes.subarray(0, bytes.length - 3), name), name, /truncated or corrupt protobuf/);
  throwsNaming(() => parseTokenizerModel(new Uint8Array(0), name), name, /found no pieces/);
  throwsNaming(() => parseTokenizerModel(Buffer.from('{"model": {}}'), name), name, /protobuf|no pieces/);
  throwsNaming(() => parseTokenizerModel(Buffer.from([0x0f, 0x01]), name), name, /unsupported wire type 7/);
  // later occurrences of a message field merge into it: switch the model type / normalizer
  const append = (field: number, m: ProtoWriter): Uint8Array => Buffer.concat([bytes, new ProtoWriter().message(field, m).finish()]);
  throwsNaming(() => parseTokenizerModel(append(2, new ProtoWriter().int(3, 1)), name), name, /model_type is UNIGRAM; only BPE/);
  throwsNaming(() => parseTokenizerModel(append(3, new ProtoWriter().bytes(2, new Uint8Array(10))), name), name, /precompiled_charsmap 10 bytes/);
  throwsNaming(() => parseTokenizerModel(append(3, new ProtoWriter().int(4, true)), name), name, /remove_extra_whitespaces true/);
  throwsNaming(() => parseTokenizerModel(append(2, new ProtoWriter().int(35, false)), name), name, /byte pieces but trainer_spec\.byte_fallback is false/);
  throwsNaming(() => parseTokenizerModel(append(1, new ProtoWriter().string(1, 'he')), name), name, /"he" is defined twice/);
  throwsNaming(() => parseTokenizerModel(append(1, new ProtoWriter().string(1, 'x').int(3, 9)), name), name, /type is 9; expected 1\.\.6/);
  throwsNaming(() => readTokenizerModel('tests/fixtures/no-such.model'), 'no-such.model', /cannot read/);
  assert.throws(() => writeTokenizerModel('/nonexistent/x.model', { ...readTokenizerModel(MODEL), unkId: -1 }), /requires an unknown piece/);
});

test('broken tokenizer.json files are Llama2Errors naming the field', () => {
  const good = JSON.parse(readFileSync(`${EXTRA}/tokenizer.json`, 'utf8')) as Record<string, any>;
  const name = 'tok.json';
  const edit = (f: (j: any) => void): string => {
    const j = structuredClone(good);
    f(j);
    return JSON.stringify(j);
  };
  throwsNaming(() => parseTokenizerJson('{"model": {"type": "BPE", "vocab": {', name), name, /malformed JSON/);
  throwsNaming(() => parseTokenizerJson('[1, 2]', name), name, /top level: expected an object/);
  throwsNaming(() => parseTokenizerJson(edit((j) => (j.model.type = 'Unigram')), name), name, /model\.type: expected "BPE".*found "Unigram"/);
  throwsNaming(() => parseTokenizerJson(edit((j) => (j.model.vocab = ['a', 'b'])), name), name, /model\.vocab: expected an object/);
  throwsNaming(() => parseTokenizerJson(edit((j) => (j.model.vocab.he = 'x')), name), name, /model\.vocab\["he"\]: expected a non-negative integer id/);
  throwsNaming(() => parseTokenizerJson(edit((j) => delete j.model.vocab.he), name), name, /without gaps/);
  throwsNaming(() => parseTokenizerJson(edit((j) => (j.model.merges[3] = 42)), name), name, /model\.merges\[3\]: expected "left right"/);
  throwsNaming(() => parseTokenizerJson(edit((j) => (j.model.merges[0] = 'zz qq')), name), name, /model\.merges\[0\]: expected pieces of model\.vocab/);
  throwsNaming(() => parseTokenizerJson(edit((j) => (j.model.merges = 'x')), name), name, /model\.merges: expected an array/);
  throwsNaming(() => parseTokenizerJson(edit((j) => (j.added_tokens = [{ id: 1 }])), name), name, /added_tokens\[0\]: expected an object with a string "content"/);
  throwsNaming(() => parseTokenizerJson(edit((j) => (j.pre_tokenizer = { type: 'ByteLevel' })), name), name, /pre_tokenizer: "ByteLevel" is not supported/);
  throwsNaming(() => parseTokenizerJson(edit((j) => (j.normalizer = null)), name), name, /nothing replaces " " with "▁"/);
  // the newer Metaspace form is accepted
  const meta = parseTokenizerJson(edit((j) => {
    j.normalizer = null;
    j.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
  }), name);
  assert.equal(meta.addDummyPrefix, true);
  assert.equal(parseTokenizerJson(edit((j) => (j.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'never' }, j.normalizer = null)), name).addDummyPrefix, false);
  // merges as [left, right] pairs (tokenizers >= 0.20)
  const pairs = parseTokenizerJson(edit((j) => (j.model.merges = j.model.merges.map((m: string) => m.split(' ')))), name);
  assertSameVocab(pairs, readTokenizerModel(MODEL), 'pair merges');
});

test('broken tokenizer.bin files are Llama2Errors naming the file', () => {
  const bytes = readFileSync(`${EXTRA}/tokenizer.bin`);
  const name = 'tok.bin';
  throwsNaming(() => parseLlama2cTokenizer(bytes.subarray(0, bytes.length - 2), name), name, /file is truncated: token 1999 needs bytes/);
  throwsNaming(() => parseLlama2cTokenizer(bytes, name, 2001), name, /file is truncated: token 2000/);
  throwsNaming(() => parseLlama2cTokenizer(bytes.subarray(0, 2), name), name, /file has 2 bytes/);
  const bad = Buffer.from(bytes);
  bad.writeInt32LE(0, 0);
  throwsNaming(() => parseLlama2cTokenizer(bad, name), name, /max_token_length in 1\.\.65536 but found 0/);
  bad.writeInt32LE(2, 0);
  throwsNaming(() => parseLlama2cTokenizer(bad, name), name, /token \d+ has length \d+; expected 0\.\.2/);
  throwsNaming(() => parseLlama2cTokenizer(bytes, name, 0), name, /positive vocabulary size/);
  throwsNaming(() => readLlama2cTokenizer('tests/fixtures/none.bin'), 'none.bin', /no such file/);
});

test('U+FEFF, Llama-2 piece 30143, survives every vocabulary reader and encodes as sentencepiece does', () => {
  // a leading byte-order mark is what a default TextDecoder strips: each reader must keep it
  const BOM_ID = 30143;
  const TEXT = '\ufeffBOM at start';
  const WANT = [1, 29871, BOM_ID, 29933, 6488, 472, 1369]; // sentencepiece and llama.cpp agree
  const gguf = readGgufModel('tests/fixtures/gguf/stories15M-Q8_0.gguf', { mmap: false }).vocab!;
  assert.equal(gguf.pieces[BOM_ID], '\ufeff', 'GGUF string reader');
  assert.deepEqual(new Tokenizer(gguf).encode(TEXT, { bos: true }), WANT);
  const fromFiles: [string, SpmVocab][] = [
    ['tokenizer.model', parseTokenizerModel(serializeTokenizerModel(gguf), 'x.model')],
    ['tokenizer.json', parseTokenizerJson(serializeTokenizerJson(gguf), 'x.json')],
    ['tokenizer.bin', parseLlama2cTokenizer(serializeLlama2cTokenizer(gguf), 'x.bin')],
  ];
  for (const [kind, v] of fromFiles) {
    assert.equal(v.pieces[BOM_ID], '\ufeff', kind);
    assert.deepEqual(v.pieces, gguf.pieces, kind);
  }
  assert.deepEqual(new Tokenizer(fromFiles[0]![1]).encode(TEXT, { bos: true }), WANT, 'tokenizer.model');
});
