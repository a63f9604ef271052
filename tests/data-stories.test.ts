// The stories corpus: determinism, exact information per story (checked by reading every story back
// with the grammar), the entropy bookkeeping, the corpus files, and the PRNG under it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateStories, generateStory, readStory, streamStories, writeStoriesCorpus, END_MARKER_CHARS } from '../src/data/stories.js';
import { readDocuments } from '../src/data/documents.js';
import { hashSeed, permutation, Rng } from '../src/util/rng.js';
import { choice, GrammarError, oneOf, prefixClash } from '../src/data/story-teller.js';
import * as W from '../src/data/story-words.js';
import { Llama2Error } from '../src/util/errors.js';

/** bits: the reader adds the same log2 terms in the same order, so only float noise is allowed */
const BITS_TOL = 1e-9;
/** the entropy the grammar is designed for (bits per character) */
const BPC_RANGE: [number, number] = [0.2, 1.0];

test('stories are deterministic per seed and do not depend on count or start', () => {
  const a = generateStories({ seed: 5, count: 20 });
  const b = generateStories({ seed: 5, count: 20 });
  assert.deepEqual(a.stories, b.stories);
  const c = generateStories({ seed: 6, count: 20 });
  assert.notDeepEqual(a.stories, c.stories);
  const tail = [...streamStories({ seed: 5, count: 5, start: 15 })].map((s) => s.text);
  assert.deepEqual(tail, a.stories.slice(15));
  assert.equal(generateStory(5, 3).text, a.stories[3]);
  assert.equal(new Set(a.stories).size, a.stories.length, 'stories repeat');
});

test('every story reads back with the grammar to the same information (the grammar is unambiguous)', () => {
  let worst = 0;
  let n = 0;
  for (const s of streamStories({ seed: 11, count: 300 })) {
    const r = readStory(s.text); // throws on an ambiguous pick or a text the grammar cannot make
    const err = Math.abs(r.bits - s.bits);
    if (err > worst) worst = err;
    assert.ok(err <= BITS_TOL, `story ${n}: generated ${s.bits} bits, read back ${r.bits}: ${JSON.stringify(s.text.slice(0, 80))}`);
    assert.ok(r.picks > 20, `story ${n} has only ${r.picks} choices`);
    n++;
  }
  assert.ok(worst <= BITS_TOL, `max |bits error| ${worst}`);
});

test('the corpus entropy is the sum of story information over characters plus end markers', () => {
  const r = generateStories({ seed: 2, count: 200 });
  let bits = 0;
  let chars = 0;
  for (let i = 0; i < r.stories.length; i++) {
    bits += readStory(r.stories[i]!).bits;
    chars += r.stories[i]!.length + END_MARKER_CHARS;
  }
  assert.ok(Math.abs(bits - r.totalBits) <= 1e-6 * bits, `total bits ${r.totalBits} vs re-read ${bits}`);
  assert.equal(r.totalChars, chars);
  assert.ok(Math.abs(r.bitsPerChar - bits / chars) < 1e-12);
  assert.ok(r.bitsPerChar > BPC_RANGE[0] && r.bitsPerChar < BPC_RANGE[1], `bits/char ${r.bitsPerChar} outside ${BPC_RANGE}`);
});

test('stories are ASCII, have paragraphs but no blank lines, and end with a sentence', () => {
  for (const s of generateStories({ seed: 3, count: 100 }).stories) {
    assert.match(s, /^[\x20-\x7e\n]+$/, `non-ASCII story ${JSON.stringify(s.slice(0, 60))}`);
    assert.ok(!s.includes('\n\n') && s.split('\n').length >= 3, `paragraphs of ${JSON.stringify(s.slice(0, 60))}`);
    assert.match(s, /[.!?"]$/);
    assert.match(s, /"[A-Z][^"]*[.!?,]"/, 'a story has dialogue');
  }
});

test('a changed story is not a story of the grammar', () => {
  const s = generateStory(9, 0).text;
  assert.ok(s.includes(' named '));
  assert.throws(() => readStory(s.replace(' named ', ' called ')), Llama2Error);
  assert.throws(() => readStory(s + ' The end.'), /text goes on/);
  assert.throws(() => readStory('Hello world.'), Llama2Error);
});

test('word lists are prefix-free, including every list a story builds from names', () => {
  assert.equal(prefixClash(['cat', 'dog', 'cow']), null);
  assert.deepEqual(prefixClash(['ball', 'balloon', 'kite']), ['ball', 'balloon']);
  assert.throws(() => oneOf('Tom', 'Tommy'), GrammarError);
  assert.throws(() => choice([{ text: 'a', w: 0 }]), GrammarError);
  // names can meet in one pick (subject, speaker) with each other and with pronouns
  const names = [...W.GIRL_NAMES.items, ...W.BOY_NAMES.items, ...W.PET_NAMES.items, ...W.PARENTS.items].map((i) => i.text);
  for (const pronouns of [['She', 'Her'], ['He', 'His']]) {
    assert.equal(prefixClash([...names, ...pronouns, 'The ', 'They', '"']), null);
  }
  assert.equal(new Set(names).size, names.length);
  // lists that follow "a" start with a consonant
  for (const list of [W.HERO_ADJ, W.PET_ADJ, W.TOY_QUALITY, W.HOUSE_ADJ, W.TOWN_ADJ]) {
    for (const it of list.items) assert.match(it.text, /^[^aeiou]/, `"a ${it.text}"`);
  }
});

test('writeStoriesCorpus writes jsonl and txt that read back as the same stories', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stories-'));
  try {
    const want = generateStories({ seed: 4, count: 30 });
    for (const format of ['jsonl', 'txt'] as const) {
      const path = join(dir, `c.${format}`);
      const sum = writeStoriesCorpus(path, { seed: 4, count: 30, format });
      assert.equal(sum.totalBits, want.totalBits);
      assert.equal(sum.bytes, readFileSync(path).length);
      const docs = [...readDocuments(path)].map((d) => d.text);
      assert.deepEqual(docs, want.stories, `${format} round trip`);
    }
    assert.deepEqual(readdirSync(dir).sort(), ['c.jsonl', 'c.txt'], 'temporary files left behind');
    assert.throws(() => writeStoriesCorpus(join(dir, 'x.txt'), { seed: -1, count: 3, format: 'txt' }), /seed/);
    assert.throws(() => writeStoriesCorpus(join(dir, 'x.txt'), { seed: 1, count: 0, format: 'txt' }), /count/);
    assert.throws(() => writeStoriesCorpus(join(dir, 'no/such/dir/x.txt'), { seed: 1, count: 1, format: 'txt' }), Llama2Error);
    assert.ok(!existsSync(join(dir, 'x.txt')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Rng: deterministic streams, exact range, permutations', () => {
  const a = new Rng(hashSeed(1, 2));
  const b = new Rng(hashSeed(1, 2));
  const xs = Array.from({ length: 8 }, () => a.nextU32());
  assert.deepEqual(Array.from({ length: 8 }, () => b.nextU32()), xs);
  assert.notEqual(hashSeed(1, 2), hashSeed(2, 1));
  assert.notEqual(hashSeed(2 ** 40), hashSeed(0));
  const counts = new Array(6).fill(0);
  const r = new Rng(7);
  for (let i = 0; i < 60000; i++) counts[r.below(6)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 600, `below(6) counts ${counts}`); // ~6 sigma
  assert.equal(new Rng(3).below(1), 0);
  const p = permutation(1000, new Rng(9));
  assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.notDeepEqual([...p.slice(0, 10)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});
