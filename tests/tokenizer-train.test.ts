// The BPE trainer: same merges as a plain recount-everything reference, sentencepiece's vocabulary
// layout, the piece rules (length, digits, whitespace, scripts), character coverage with byte
// fallback, lossless round trips through our Tokenizer, and clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateStories } from '../src/data/stories.js';
import { trainBpe, WordCounts } from '../src/tokenizer/train.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { readTokenizerModel, writeTokenizerModel } from '../src/tokenizer/load.js';
import { PieceType, type SpmVocab } from '../src/tokenizer/vocab.js';
import { Llama2Error } from '../src/util/errors.js';

const SP = '\u2581';
const MAX_PIECE = 16;

const stories = generateStories({ seed: 21, count: 150 }).stories;
const extras = [
  'In 2024 there were 365 days and 12345 steps.',
  'Call 555-0199 or   wait   here  ',
  'x = [1, 2, 3]; y = {"k": 42}!',
  'supercalifragilisticexpialidocious '.repeat(6),
];

function counts(texts: string[]): WordCounts {
  const c = new WordCounts();
  for (const t of texts) c.addText(t);
  return c;
}

/**
 * Plain reference BPE for ASCII corpora: recount every pair of every word each merge, pick the
 * largest count (ties: the pair of older symbols). Pieces obey the same rules, written as regexes;
 * for ASCII, "one script" means all letters or no letters.
 */
function referenceMerges(lines: string[], vocabSize: number): string[] {
  const words = new Map<string, number>();
  for (const line of lines) {
    if (line === '') continue;
    const norm = SP + line.split(' ').join(SP);
    let w = '';
    for (let i = 0; i < norm.length; i++) {
      const c = norm[i]!;
      if (i > 0 && c === SP && norm[i - 1] !== SP) {
        words.set(w, (words.get(w) ?? 0) + 1);
        w = '';
      }
      w += c;
    }
    words.set(w, (words.get(w) ?? 0) + 1);
  }
  const freq = new Map<string, number>();
  for (const [w, n] of words) for (const c of w) freq.set(c, (freq.get(c) ?? 0) + n);
  const chars = [...freq.entries()].sort((a, b) => b[1] - a[1] || a[0].codePointAt(0)! - b[0].codePointAt(0)!).map((e) => e[0]);
  const id = new Map(chars.map((c, i) => [c, i]));
  const str = [...chars];
  const valid = (s: string): boolean => {
    if ([...s].length > MAX_PIECE) return false;
    if (!/^\u2581+$/.test(s) && !/^\u2581?[^\u2581]+$/.test(s)) return false;
    if (/[0-9]/.test(s)) return false; // only ever called on two or more characters
    const core = s.replace(/^\u2581+/, '');
    return /^[A-Za-z]*$/.test(core) || /^[^A-Za-z]*$/.test(core);
  };
  const segs = [...words.entries()].map(([w, n]) => ({ s: [...w].map((c) => id.get(c)!), n }));
  const merges: string[] = [];
  const want = vocabSize - 259 - chars.length;
  while (merges.length < want) {
    const count = new Map<string, number>();
    for (const { s, n } of segs) {
      for (let i = 0; i + 1 < s.length; i++) {
        if (!valid(str[s[i]!]! + str[s[i + 1]!]!)) continue;
        const k = `${s[i]},${s[i + 1]}`;
        count.set(k, (count.get(k) ?? 0) + n);
      }
    }
    let best: [number, number] | null = null;
    let bestN = 0;
    for (const [k, n] of count) {
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (n > bestN || (n === bestN && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestN = n;
      }
    }
    if (!best) break;
    const merged = str[best[0]]! + str[best[1]]!;
    let c = str.indexOf(merged);
    if (c < 0) {
      c = str.push(merged) - 1;
      merges.push(merged);
    }
    for (const seg of segs) {
      const out: number[] = [];
      for (let i = 0; i < seg.s.length; i++) {
        if (i + 1 < seg.s.length && seg.s[i] === best[0] && seg.s[i + 1] === best[1]) {
          out.push(c);
          i++;
        } else out.push(seg.s[i]!);
      }
      seg.s = out;
    }
  }
  return merges;
}

function firstDiff(a: string[], b: string[]): string {
  const i = a.findIndex((x, k) => x !== b[k]);
  return i < 0 ? `lengths ${a.length} vs ${b.length}` : `first difference at ${i}: ${JSON.stringify(a.slice(i, i + 5))} vs ${JSON.stringify(b.slice(i, i + 5))}`;
}

test('merges equal the plain reference trainer', () => {
  const texts = [...stories.slice(0, 40), ...extras];
  const V = 500;
  const { vocab, stats } = trainBpe(counts(texts), { vocabSize: V, characterCoverage: 1 });
  const ours = vocab.pieces.slice(259, 259 + stats.merges);
  const ref = referenceMerges(texts.flatMap((t) => t.split('\n')), V);
  assert.deepEqual(ours, ref, firstDiff(ours, ref));
});

test('vocabulary layout is sentencepiece BPE: specials, 256 bytes, merges, then characters', () => {
  const { vocab, stats } = trainBpe(counts([...stories, ...extras]), { vocabSize: 800 });
  const { pieces, types, scores } = vocab;
  assert.equal(pieces.length, 800);
  assert.deepEqual(pieces.slice(0, 3), ['<unk>', '<s>', '</s>']);
  assert.deepEqual([...types.slice(0, 3)], [PieceType.UNKNOWN, PieceType.CONTROL, PieceType.CONTROL]);
  assert.deepEqual([vocab.unkId, vocab.bosId, vocab.eosId, vocab.padId], [0, 1, 2, -1]);
  assert.ok(vocab.addDummyPrefix);
  for (let b = 0; b < 256; b++) {
    assert.equal(pieces[3 + b], `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    assert.equal(types[3 + b], PieceType.BYTE);
  }
  for (let i = 0; i < 259; i++) assert.equal(scores[i], 0);
  for (let i = 259; i < 800; i++) {
    assert.equal(types[i], PieceType.NORMAL);
    assert.equal(scores[i], -(i - 259), `score of ${i}`);
  }
  assert.equal(new Set(pieces).size, pieces.length, 'duplicate pieces');
  const chars = pieces.slice(259 + stats.merges);
  assert.equal(chars.length, stats.characters);
  for (const c of chars) assert.equal([...c].length, 1, `character piece ${JSON.stringify(c)}`);
  assert.equal(chars[0], SP, 'the most frequent character is "▁"');
  for (const p of pieces.slice(259, 259 + stats.merges)) assert.ok([...p].length >= 2, `merged piece ${JSON.stringify(p)}`);
});

test('pieces obey the rules: length, digits, whitespace, one script', () => {
  const mixed = [...stories.slice(0, 80), ...extras, 'supercalifragilisticexpialidocious '.repeat(100),
    '        indented(code);\n'.repeat(40), 'カタカナ漢字です。 カタカナ漢字です。', 'Привет мир abc', 'mixed漢字Latin mixed漢字Latin'];
  const { vocab, stats } = trainBpe(counts(mixed), { vocabSize: 1000, characterCoverage: 1, hardVocabLimit: false });
  const merged = vocab.pieces.slice(259, 259 + stats.merges);
  assert.ok(merged.some((p) => [...p].length === MAX_PIECE), 'the long word should reach the length cap');
  for (const p of merged) {
    const bad = [...p].length > MAX_PIECE ? 'too long'
      : /\p{Nd}/u.test(p) ? 'digit in a merged piece'
      : !/^\u2581+$/u.test(p) && !/^\u2581?[^\u2581]+$/u.test(p) ? '"▁" inside'
      : /\p{Script=Latin}/u.test(p) && /[^\p{Script=Latin}\u2581]/u.test(p) ? 'Latin mixed with another script'
      : /\p{Script=Cyrillic}/u.test(p) && /[^\p{Script=Cyrillic}\u2581]/u.test(p) ? 'Cyrillic mixed'
      : null;
    assert.equal(bad, null, `${JSON.stringify(p)}: ${bad}`);
  }
  assert.ok(merged.includes(SP.repeat(4)), 'whitespace-only pieces are learned from runs of spaces');
});

test('encode/decode round trips the training text and unseen text; digits stay single pieces', () => {
  const texts = [...stories, ...extras];
  const tok = new Tokenizer(trainBpe(counts(texts), { vocabSize: 700, characterCoverage: 1 }).vocab);
  for (const t of [...texts.flatMap((x) => x.split('\n')), 'Zebra 😀 naïve 9876', '  lead and trail  ', 'tab\there']) {
    const ids = tok.encode(t);
    assert.equal(tok.decode(ids), t, `round trip of ${JSON.stringify(t.slice(0, 60))}`);
  }
  const ids = tok.encode('2024');
  assert.deepEqual(ids.map((i) => tok.vocab.pieces[i]), [SP, '2', '0', '2', '4']);
});

test('characters beyond the coverage get no piece and fall back to bytes', () => {
  const texts = [...stories.slice(0, 50), 'café'];
  const { vocab, stats } = trainBpe(counts(texts), { vocabSize: 500, characterCoverage: 0.9995 });
  assert.ok(stats.coverage < 1 && stats.coverage >= 0.9995, `coverage ${stats.coverage}`);
  assert.ok(!vocab.pieces.some((p) => p.includes('é')), 'rare "é" got a piece');
  const tok = new Tokenizer(vocab);
  const ids = tok.encode('é');
  assert.deepEqual(ids.slice(-2).map((i) => vocab.pieces[i]), ['<0xC3>', '<0xA9>']);
  assert.equal(tok.decode(tok.encode('café au lait')), 'café au lait');
  const full = trainBpe(counts(texts), { vocabSize: 500, characterCoverage: 1 });
  assert.ok(full.vocab.pieces.includes('é'));
});

test('training is deterministic and the model file round trips', () => {
  const a = trainBpe(counts(stories), { vocabSize: 512 }).vocab;
  const b = trainBpe(counts(stories), { vocabSize: 512 }).vocab;
  assert.deepEqual(a.pieces, b.pieces);
  const dir = mkdtempSync(join(tmpdir(), 'bpe-'));
  try {
    const path = join(dir, 'tokenizer.model');
    writeTokenizerModel(path, a);
    const back: SpmVocab = readTokenizerModel(path);
    assert.deepEqual(back.pieces, a.pieces);
    assert.deepEqual([...back.scores], [...a.scores]);
    assert.deepEqual([...back.types], [...a.types]);
    assert.deepEqual([back.unkId, back.bosId, back.eosId, back.addDummyPrefix], [0, 1, 2, true]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('errors: vocabulary too small, corpus too small for the vocabulary, empty corpus', () => {
  const c = counts(stories.slice(0, 20));
  assert.throws(() => trainBpe(c, { vocabSize: 280 }), (e) => e instanceof Llama2Error && /too small/.test(e.message));
  assert.throws(() => trainBpe(c, { vocabSize: 30000 }), (e) => e instanceof Llama2Error && /supports at most/.test(e.message));
  const soft = trainBpe(c, { vocabSize: 30000, hardVocabLimit: false });
  assert.ok(soft.vocab.pieces.length < 30000 && soft.vocab.pieces.length > 300);
  assert.throws(() => trainBpe(counts(['', '\n\n']), { vocabSize: 300 }), /empty/);
  assert.throws(() => trainBpe(c, { vocabSize: 500, characterCoverage: 0 }), /character_coverage/);
});
