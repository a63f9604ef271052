// prepare → shards → reader: rows equal the tokenized documents, the split is by document and
// seeded, batches are deterministic permutations, shards stay bounded, and bad input fails clearly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateStories, writeStoriesCorpus } from '../src/data/stories.js';
import { codePoints, readDocuments } from '../src/data/documents.js';
import { prepareData, vocabHash, type PrepareTokenizer } from '../src/data/prepare.js';
import { lossToBitsPerChar, openShards, type ShardMeta } from '../src/data/shards.js';
import { hashSeed } from '../src/util/rng.js';
import { trainBpe, WordCounts } from '../src/tokenizer/train.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { PieceType, type SpmVocab } from '../src/tokenizer/vocab.js';
import { Llama2Error } from '../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'prepare-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const STORIES = 120;
const corpus = join(dir, 'stories.jsonl');
writeStoriesCorpus(corpus, { seed: 8, count: STORIES, format: 'jsonl' });
const counts = new WordCounts();
for (const s of generateStories({ seed: 8, count: STORIES }).stories) counts.addText(s);
const tok = new Tokenizer(trainBpe(counts, { vocabSize: 400 }).vocab);

/** the token stream of each split, built independently of prepare's packer */
function expectedStreams(paths: string[], seed: number, valFraction: number): { train: number[]; val: number[]; valDocs: number } {
  const out = { train: [] as number[], val: [] as number[], valDocs: 0 };
  let i = 0;
  for (const p of paths) {
    for (const d of readDocuments(p)) {
      const isVal = hashSeed(seed, i++) / 2 ** 32 < valFraction;
      if (isVal) out.valDocs++;
      out[isVal ? 'val' : 'train'].push(...tok.encode(d.text, { bos: true, eos: true }));
    }
  }
  return out;
}

/** rows read back, overlaps removed → the packed stream prefix */
function streamFromRows(rows: Int32Array, n: number, T: number): number[] {
  const s: number[] = [];
  for (let r = 0; r < n; r++) {
    const row = rows.subarray(r * (T + 1), (r + 1) * (T + 1));
    if (r > 0) assert.equal(row[0], s[s.length - 1], `row ${r} does not start with the last token of row ${r - 1}`);
    s.push(...(r === 0 ? row : row.subarray(1)));
  }
  return s;
}

test('rows read back equal the tokenized documents, split by document', () => {
  const T = 32;
  const out = join(dir, 'p1');
  const meta = prepareData({ inputs: [corpus], tokenizer: tok, outDir: out, seqLen: T, valFraction: 0.2, seed: 3, shardTokens: 4000 });
  const want = expectedStreams([corpus], 3, 0.2);
  assert.deepEqual(meta, JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as ShardMeta);
  assert.equal(meta.dtype, 'uint16');
  assert.equal(meta.vocab_size, 400);
  assert.equal(meta.tokenizer_hash, vocabHash(tok.vocab));
  assert.equal(meta.splits.val.docs, want.valDocs);
  assert.equal(meta.splits.train.docs + meta.splits.val.docs, STORIES);
  assert.ok(want.valDocs > 10 && want.valDocs < 40, `validation docs ${want.valDocs} of ${STORIES} at 0.2`);
  for (const split of ['train', 'val'] as const) {
    const sm = meta.splits[split];
    const stream = want[split];
    assert.equal(sm.tokens, stream.length);
    assert.equal(sm.rows, Math.floor((stream.length - 1) / T));
    assert.equal(sm.tokens_dropped, stream.length - 1 - sm.rows * T);
    for (const sh of sm.shards) assert.ok(sh.rows * (T + 1) <= 4000, `shard ${sh.file} has ${sh.rows} rows`);
    assert.ok(split === 'val' || sm.shards.length > 1, 'several shards expected');
    const r = openShards(out, split, { shuffle: false });
    const rows = r.rows(Array.from({ length: r.numRows }, (_, i) => i));
    const got = streamFromRows(rows, r.numRows, T);
    assert.deepEqual(got, stream.slice(0, got.length), `${split} stream`);
    assert.equal(r.charsPerToken, sm.chars / sm.tokens);
    r.close();
  }
  const chars = [...readDocuments(corpus)].reduce((a, d) => a + codePoints(d.text) + 1, 0);
  assert.equal(meta.splits.train.chars + meta.splits.val.chars, chars);
});

test('the split depends on the seed, not on the tokenizer or seq_len; val_fraction 0 keeps everything', () => {
  const a = prepareData({ inputs: [corpus], tokenizer: tok, outDir: join(dir, 'p2a'), seqLen: 16, valFraction: 0.25, seed: 1 });
  const b = prepareData({ inputs: [corpus], tokenizer: tok, outDir: join(dir, 'p2b'), seqLen: 64, valFraction: 0.25, seed: 1 });
  const c = prepareData({ inputs: [corpus], tokenizer: tok, outDir: join(dir, 'p2c'), seqLen: 16, valFraction: 0.25, seed: 2 });
  assert.equal(a.splits.val.docs, b.splits.val.docs);
  assert.equal(a.splits.val.chars, b.splits.val.chars);
  assert.notEqual(a.splits.val.chars, c.splits.val.chars);
  const all = prepareData({ inputs: [corpus], tokenizer: tok, outDir: join(dir, 'p2d'), seqLen: 16, valFraction: 0, seed: 1 });
  assert.equal(all.splits.train.docs, STORIES);
  assert.equal(all.splits.val.rows, 0);
});

test('batches: (B, T+1), seeded, each epoch a permutation of all rows', () => {
  const T = 24;
  const out = join(dir, 'p3');
  prepareData({ inputs: [corpus], tokenizer: tok, outDir: out, seqLen: T, valFraction: 0.1, seed: 5, shardTokens: 3000 });
  const a = openShards(out, 'train', { seed: 9 });
  const b = openShards(out, 'train', { seed: 9 });
  const c = openShards(out, 'train', { seed: 10 });
  const B = 7;
  assert.equal(a.batch(3, B).length, B * (T + 1));
  assert.deepEqual(a.batch(3, B), b.batch(3, B));
  assert.notDeepEqual(a.batch(0, B), c.batch(0, B));
  // one epoch of single-row batches visits every row once
  const key = (x: Int32Array): string => x.join(',');
  const stored = new Set<string>();
  for (let i = 0; i < a.numRows; i++) stored.add(key(a.row(i)));
  const seen = new Map<string, number>();
  for (let s = 0; s < a.numRows; s++) {
    const k = key(a.batch(s, 1));
    assert.ok(stored.has(k));
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  assert.equal([...seen.values()].reduce((x, y) => x + y, 0), a.numRows);
  assert.equal(seen.size, stored.size);
  const v = openShards(out, 'val');
  assert.deepEqual(v.batch(0, 2), v.rows([0, 1]), 'validation reads in storage order');
  assert.equal(a.batchesPerEpoch(B), Math.ceil(a.numRows / B));
  for (const r of [a, b, c, v]) r.close();
  assert.ok(Math.abs(lossToBitsPerChar(Math.LN2 * 3, 3) - 1) < 1e-12);
});

test('txt input: blank-line separated documents, CRLF; several inputs; uint32 for large vocabularies', () => {
  const txt = join(dir, 'docs.txt');
  writeFileSync(txt, '\uFEFFfirst line\r\nsecond line\r\n\r\n \r\n\nthird doc\n\n\nfourth\tdoc  \n');
  assert.deepEqual([...readDocuments(txt)].map((d) => d.text), ['first line\nsecond line', 'third doc', 'fourth\tdoc  ']);
  // a character-level tokenizer over a 70000-piece vocabulary forces uint32 shards
  const pieces = ['<unk>', '<s>', '</s>', ...Array.from({ length: 69997 }, (_, i) => `p${i}`)];
  const big: SpmVocab = {
    pieces, scores: new Float32Array(pieces.length), types: new Uint8Array(pieces.length).fill(PieceType.NORMAL),
    unkId: 0, bosId: 1, eosId: 2, padId: -1, addDummyPrefix: true, addBos: true, addEos: false,
  };
  const charTok: PrepareTokenizer = {
    vocab: big,
    encode: (text, o) => [...(o.bos ? [1] : []), ...Array.from(text, (ch) => 65536 + ch.codePointAt(0)! % 4000), ...(o.eos ? [2] : [])],
  };
  const out = join(dir, 'p4');
  const meta = prepareData({ inputs: [txt, txt], tokenizer: charTok, outDir: out, seqLen: 8, valFraction: 0, seed: 0 });
  assert.equal(meta.dtype, 'uint32');
  assert.equal(meta.splits.train.docs, 6);
  const r = openShards(out, 'train', { shuffle: false });
  const row = r.row(0);
  assert.deepEqual([...row], [1, ...Array.from('first li', (ch) => 65536 + ch.codePointAt(0)! % 4000)]);
  r.close();
});

test('bad input fails with one clear Llama2Error', () => {
  const opts = { tokenizer: tok, outDir: join(dir, 'bad'), seqLen: 16, valFraction: 0.1, seed: 1 };
  const bad = (name: string, content: string): string => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  const expect = (inputs: string[], re: RegExp, more: object = {}): void => {
    assert.throws(() => prepareData({ ...opts, inputs, ...more }), (e) => e instanceof Llama2Error && re.test(e.message), `expected ${re}`);
  };
  expect([join(dir, 'missing.jsonl')], /missing\.jsonl: no such file/);
  expect([bad('x.csv', 'a,b')], /expected a \.txt or \.jsonl file but found "\.csv"/);
  expect([bad('m.jsonl', '{"text": "ok"}\n{"text": oops}\n')], /m\.jsonl:2: expected a JSON object per line but found invalid JSON/);
  expect([bad('k.jsonl', '{"text": "ok"}\n\n{"body": "no"}\n')], /k\.jsonl:3: expected a string field "text" but found no such field/);
  expect([bad('a.jsonl', '[1, 2]\n')], /a\.jsonl:1: expected a JSON object/);
  expect([bad('e.txt', '\n \n\n')], /the corpus is empty/);
  const latin1 = join(dir, 'u.txt');
  writeFileSync(latin1, Buffer.from([0x6f, 0x6b, 0x0a, 0xff, 0xfe]));
  expect([latin1], /u\.txt: expected UTF-8 text but found invalid bytes/);
  expect([corpus], /validation split .* fewer than one row/, { seqLen: 20000 });
  expect([corpus], /val_fraction/, { valFraction: 1 });
  expect([corpus], /seq_len/, { seqLen: 0 });
  expect([], /at least one input/);
  const good = prepareData({ ...opts, inputs: [bad('k2.jsonl', '{"body": "alt key"}\n{"body": "two"}\n')], textKey: 'body', valFraction: 0, seqLen: 4 });
  assert.equal(good.text_key, 'body');
  // readers: no meta, truncated shard
  assert.throws(() => openShards(join(dir, 'nowhere'), 'train'), /meta\.json not found/);
  const out = join(dir, 'p5');
  const meta = prepareData({ ...opts, inputs: [corpus], outDir: out });
  truncateSync(join(out, meta.splits.train.shards[0]!.file), 10);
  assert.throws(() => openShards(out, 'train'), (e) => e instanceof Llama2Error && /bytes but found 10 bytes/.test(e.message));
});

test('a bad byte deep in a large JSONL is reported at its own byte offset and line', () => {
  // 3 MiB of lines, so the bad byte sits in the third 1 MiB read and its line is far past the first
  const line = JSON.stringify({ text: 'A line of ordinary text, é and 😀 included, long enough to matter.' }) + '\n';
  const lineBytes = Buffer.byteLength(line);
  const before = Math.ceil((2.5 * 2 ** 20) / lineBytes);
  const head = Buffer.from(line.repeat(before));
  const badAt = head.length + 10; // inside the next line's text
  const file = join(dir, 'deep.jsonl');
  writeFileSync(file, Buffer.concat([head, Buffer.from(line).subarray(0, 10), Buffer.from([0xc3, 0x28]), Buffer.from(line.repeat(5000))]));
  const out = join(dir, 'deep-out');
  assert.throws(() => prepareData({ inputs: [file], tokenizer: tok, outDir: out, seqLen: 16, valFraction: 0, seed: 1 }), (e: unknown) => {
    assert.ok(e instanceof Llama2Error);
    assert.match(e.message, new RegExp(`deep\\.jsonl: expected UTF-8 text but found invalid bytes \\(c3 28.*\\) at byte ${badAt} \\(line ${before + 1}\\)$`));
    return true;
  });
  assert.equal(existsSync(out), false, 'a failed prepare leaves no output directory behind');
});

test('a failed prepare removes what it wrote: a new directory tree, or its shards in an existing one', () => {
  const bad = join(dir, 'late-bad.jsonl');
  writeFileSync(bad, Buffer.concat([readFileSync(corpus), Buffer.from('{"text": oops}\n')])); // fails at the last line
  const opts = { tokenizer: tok, seqLen: 8, valFraction: 0.1, seed: 1, shardTokens: 64 };
  const full = prepareData({ ...opts, inputs: [corpus], outDir: join(dir, 'late-good') });
  assert.ok(full.splits.train.shards.length > 3, 'shards are written long before the last line');
  const nested = join(dir, 'new-parent', 'child');
  assert.throws(() => prepareData({ ...opts, inputs: [bad], outDir: nested }), /late-bad\.jsonl:121: expected a JSON object/);
  assert.equal(existsSync(join(dir, 'new-parent')), false, 'the directories it made are gone');
  const existing = join(dir, 'existing');
  mkdirSync(existing);
  writeFileSync(join(existing, 'keep.txt'), 'mine');
  assert.throws(() => prepareData({ ...opts, inputs: [bad], outDir: existing }), /late-bad\.jsonl:121/);
  assert.deepEqual(readdirSync(existing), ['keep.txt'], 'only what was there before');
});
