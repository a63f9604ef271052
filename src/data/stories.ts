/**
 * The built-in stories corpus (`llama2 data synth stories`): TinyStories-like children's stories
 * from a seeded probabilistic grammar (story-grammar.ts) that knows the exact probability of every
 * story it tells, so the corpus's true entropy is known and a model's validation loss can be
 * compared with the best any model could do.
 *
 *   const { stories, bitsPerChar } = generateStories({ seed: 1, count: 1000 });
 *   writeStoriesCorpus('stories.jsonl', { seed: 1, count: 100_000, format: 'jsonl' });
 *
 * Determinism: story i of seed s comes from its own generator seeded with hashSeed(s, i), so it
 * does not depend on `count` or on the stories before it.
 *
 * Entropy convention: a story's information is −log2 P(story) (the sum over its choices); each
 * story counts `text.length + 1` characters, the 1 being its end marker (the EOS token in prepared
 * data, the blank line in .txt, the newline in .jsonl). The grammar is unambiguous and no story is
 * the beginning of another (story-teller.ts), so the end marker carries no extra information and
 *   bitsPerChar = Σ −log2 P(story_i) / Σ (length_i + 1).
 * Stories are pure ASCII, so characters = bytes = UTF-16 units. They contain single "\n" between
 * paragraphs and never a blank line.
 *
 * What it is not: a tokenizer or a data loader (prepare.ts turns a corpus into token shards).
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { check, Llama2Error } from '../util/errors.js';
import { hashSeed, Rng } from '../util/rng.js';
import { tellStory } from './story-grammar.js';
import { NotAStoryError, ReadingTeller, SamplingTeller } from './story-teller.js';

/** Characters each story's end marker adds to the count. */
export const END_MARKER_CHARS = 1;

export interface Story {
  text: string;
  /** −log2 P(story) */
  bits: number;
}

export interface StoriesOptions {
  /** non-negative integer */
  seed: number;
  /** number of stories (positive integer) */
  count: number;
  /** index of the first story (default 0) */
  start?: number;
}

export interface CorpusEntropy {
  totalBits: number;
  /** Σ (length + END_MARKER_CHARS) */
  totalChars: number;
  bitsPerChar: number;
}

function checkOptions(o: StoriesOptions): void {
  check(Number.isSafeInteger(o.seed) && o.seed >= 0, `stories: expected seed to be a non-negative integer but found ${o.seed}`);
  check(Number.isSafeInteger(o.count) && o.count >= 1, `stories: expected count to be a positive integer but found ${o.count}`);
  const start = o.start ?? 0;
  check(Number.isSafeInteger(start) && start >= 0, `stories: expected start to be a non-negative integer but found ${start}`);
}

/** Story `index` of corpus `seed`. */
export function generateStory(seed: number, index: number): Story {
  const t = new SamplingTeller(new Rng(hashSeed(seed, index)));
  tellStory(t);
  return { text: t.text(), bits: t.bits };
}

/** Stories start..start+count-1, one at a time (constant memory). */
export function* streamStories(o: StoriesOptions): Generator<Story> {
  checkOptions(o);
  const start = o.start ?? 0;
  for (let i = 0; i < o.count; i++) yield generateStory(o.seed, start + i);
}

/** `count` stories in memory with the corpus entropy. */
export function generateStories(o: StoriesOptions): { stories: string[] } & CorpusEntropy {
  const stories: string[] = [];
  const acc = entropyAccumulator();
  for (const s of streamStories(o)) {
    stories.push(s.text);
    acc.add(s);
  }
  return { stories, ...acc.result() };
}

export function entropyAccumulator(): { add(s: Story): void; result(): CorpusEntropy } {
  let totalBits = 0;
  let totalChars = 0;
  return {
    add(s) {
      totalBits += s.bits;
      totalChars += s.text.length + END_MARKER_CHARS;
    },
    result: () => ({ totalBits, totalChars, bitsPerChar: totalChars > 0 ? totalBits / totalChars : 0 }),
  };
}

/**
 * Reads a story back with the grammar: its information −log2 P(story) and the number of choices.
 * Throws Llama2Error when the text is not a story of this grammar.
 */
export function readStory(text: string): { bits: number; picks: number } {
  const t = new ReadingTeller(text);
  try {
    tellStory(t);
  } catch (e) {
    if (e instanceof NotAStoryError) throw new Llama2Error(`stories: ${e.message}`);
    throw e;
  }
  check(t.pos === text.length, () => `stories: not a story of the grammar: the story ends at character ${t.pos} but the text goes on: ${JSON.stringify(text.slice(t.pos, t.pos + 30))}`);
  return { bits: t.bits, picks: t.picks };
}

export type CorpusFormat = 'jsonl' | 'txt';

export interface WriteCorpusOptions extends StoriesOptions {
  /** 'jsonl': one {"text": ...} per line; 'txt': stories separated by a blank line */
  format: CorpusFormat;
}

export interface CorpusSummary extends CorpusEntropy {
  path: string;
  format: CorpusFormat;
  seed: number;
  count: number;
  bytes: number;
}

const FLUSH_BYTES = 1 << 20;

/** Writes a corpus file atomically (temp file + rename), streaming; returns its entropy. */
export function writeStoriesCorpus(path: string, o: WriteCorpusOptions): CorpusSummary {
  checkOptions(o);
  check(o.format === 'jsonl' || o.format === 'txt', `stories: expected format "jsonl" or "txt" but found ${JSON.stringify(o.format)}`);
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new Llama2Error(`stories: cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const acc = entropyAccumulator();
  let bytes = 0;
  let pending: string[] = [];
  let pendingLen = 0;
  const flush = (): void => {
    const b = Buffer.from(pending.join(''), 'utf8');
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    bytes += b.length;
    pending = [];
    pendingLen = 0;
  };
  try {
    let first = true;
    for (const s of streamStories(o)) {
      acc.add(s);
      const rec = o.format === 'jsonl' ? JSON.stringify({ text: s.text }) + '\n' : (first ? '' : '\n') + s.text + '\n';
      first = false;
      pending.push(rec);
      pendingLen += rec.length;
      if (pendingLen >= FLUSH_BYTES) flush();
    }
    flush();
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  return { path, format: o.format, seed: o.seed, count: o.count, bytes, ...acc.result() };
}
