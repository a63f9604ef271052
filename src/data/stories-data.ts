/**
 * The built-in data pipeline of pretraining (data_dir "builtin:stories"): the seeded story corpus
 * (src/data/stories.ts), optionally mixed with the chat world's documents (src/world/documents.ts),
 * a BPE tokenizer trained on it, and token shards with a validation split — plus the stories' true
 * entropy on that split, the floor no model can beat. An identical earlier build in the same
 * directory is reused.
 *
 *   const d = buildStoriesData({ dir: 'runs/demo/data', count: 4000, seed: 1, vocabSize: 1024, seqLen: 256, valFraction: 0.02 });
 *   d.tokenizer, d.dir (shards), d.entropyFloorBpc
 *
 * What it is not: the story generator (stories.ts), the tokenizer trainer (tokenizer/train.ts) or
 * shard preparation (prepare.ts); this only chains them.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { generateStory, streamStories, writeStoriesCorpus, END_MARKER_CHARS } from './stories.js';
import { prepareData } from './prepare.js';
import { readShardMeta, type ShardMeta } from './shards.js';
import { hashSeed } from '../util/rng.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { writeTokenizerJson, writeTokenizerModel } from '../tokenizer/load.js';
import { trainBpe, WordCounts } from '../tokenizer/train.js';
import { writeFileAtomic } from '../util/fs.js';
import { worldDocuments } from '../world/documents.js';
import { B_INST, B_SYS, E_INST, E_SYS } from '../chat/format.js';

/** Where a pretraining run's shards and tokenizer are. */
export interface PretrainData {
  dir: string;
  tokenizer: string;
  /** true entropy of the validation text, bits per character (null: unknown) */
  entropyFloorBpc: number | null;
  /**
   * when other text is mixed into the validation split: the first `rows` validation rows hold only
   * the text the floor is for (the stories come first in the split's stream), at `charsPerToken`
   */
  floorText?: { rows: number; charsPerToken: number } | null;
}

export interface StoriesDataOptions {
  /** directory for the corpus, tokenizer and shards */
  dir: string;
  count: number;
  seed: number;
  vocabSize: number;
  seqLen: number;
  valFraction: number;
  /** stories the tokenizer is trained on (the first ones; default min(count, 4000)) */
  tokenizerStories?: number;
  /**
   * documents of the chat world (src/world/documents.ts: its tasks told as prose) mixed into the
   * corpus, so a base model knows the world's language before SFT; default 0. Their entropy is not
   * known, so with any the floor is the validation stories' (floorText: the rows that hold them).
   */
  worldDocs?: number;
  onProgress?: (message: string) => void;
}

export interface StoriesData extends PretrainData {
  corpus: string;
  /** entropy of the whole corpus, bits/char */
  corpusBitsPerChar: number;
  /** true when an identical earlier build was found and reused */
  reused: boolean;
  meta: ShardMeta;
}

const SOURCE_FILE = 'source.json';
const SOURCE_VERSION = 3;

interface SourceRecord {
  version: number;
  options: { count: number; seed: number; vocab_size: number; seq_len: number; val_fraction: number; tokenizer_stories: number; world_docs: number };
  corpus_bits_per_char: number;
  val_bits_per_char: number | null;
}

/** Chat-format markers (chat/format.ts) added to the tokenizer's training text with world documents, so they get pieces of their own. */
const CHAT_MARKERS = `${B_INST} ${B_SYS}You are kind.${E_SYS}Hello! ${E_INST} Hi. `;

/**
 * Entropy of the validation split in bits/char: the stories prepare assigned to it (document i
 * goes to validation when hashSeed(seed, i)/2^32 < valFraction), each −log2 P(story) from the
 * grammar. Checked against the split's character count; null when they disagree.
 */
function valSplitEntropy(o: StoriesDataOptions, meta: ShardMeta): number | null {
  const expected = (o.worldDocs ?? 0) > 0 ? meta.splits.val.by_input?.[0]?.chars : meta.splits.val.chars;
  const cut = o.valFraction * 0x100000000;
  let bits = 0;
  let chars = 0;
  for (let i = 0; i < o.count; i++) {
    if (hashSeed(o.seed, i) >= cut) continue;
    const s = generateStory(o.seed, i);
    bits += s.bits;
    chars += s.text.length + END_MARKER_CHARS;
  }
  return chars > 0 && chars === expected ? bits / chars : null;
}

/**
 * With chat-world documents after the stories: the validation rows whose every target is a story
 * token (row r holds stream[rT .. rT+T], so rows r < ⌊(S − 1)/T⌋ for S story tokens) and the
 * stories' chars per token; null without world documents (the whole split is stories) or counts.
 */
export function floorTextOf(meta: ShardMeta, worldDocs: number): StoriesData['floorText'] {
  const b = meta.splits.val.by_input?.[0];
  if (worldDocs === 0 || !b || b.tokens === 0) return null;
  const rows = Math.floor((b.tokens - 1) / meta.seq_len);
  return rows > 0 ? { rows, charsPerToken: b.chars / b.tokens } : null;
}

/** Corpus → tokenizer → shards in `dir` (reused when an identical build is already there). */
export function buildStoriesData(o: StoriesDataOptions): StoriesData {
  const say = o.onProgress ?? (() => {});
  const tokStories = Math.min(o.count, o.tokenizerStories ?? 4000);
  const worldDocs = o.worldDocs ?? 0;
  const corpus = join(o.dir, 'stories.jsonl');
  const worldCorpus = join(o.dir, 'world.jsonl');
  const tokenizer = join(o.dir, 'tokenizer.model');
  const options: SourceRecord['options'] = {
    count: o.count, seed: o.seed, vocab_size: o.vocabSize, seq_len: o.seqLen, val_fraction: o.valFraction, tokenizer_stories: tokStories, world_docs: worldDocs,
  };
  const sourcePath = join(o.dir, SOURCE_FILE);
  if (existsSync(sourcePath) && existsSync(join(o.dir, 'meta.json')) && existsSync(tokenizer)) {
    try {
      const prev = JSON.parse(readFileSync(sourcePath, 'utf8')) as SourceRecord;
      if (prev.version === SOURCE_VERSION && JSON.stringify(prev.options) === JSON.stringify(options)) {
        say(`reusing the prepared stories in ${o.dir}`);
        const meta = readShardMeta(o.dir);
        return { dir: o.dir, tokenizer, entropyFloorBpc: prev.val_bits_per_char, floorText: floorTextOf(meta, worldDocs), corpus, corpusBitsPerChar: prev.corpus_bits_per_char, reused: true, meta };
      }
    } catch {
      /* unreadable: build again */
    }
  }
  mkdirSync(o.dir, { recursive: true });
  rmSync(sourcePath, { force: true }); // written again only when this build completes
  let t = performance.now();
  const lap = (): string => {
    const s = ((performance.now() - t) / 1000).toFixed(1);
    t = performance.now();
    return `${s}s`;
  };
  const c = writeStoriesCorpus(corpus, { seed: o.seed, count: o.count, format: 'jsonl' });
  say(`stories: ${o.count} stories, ${c.totalChars} chars, true entropy of the whole corpus ${c.bitsPerChar.toFixed(4)} bits/char (${lap()})`);
  if (worldDocs > 0) {
    writeFileAtomic(worldCorpus, [...worldDocuments(o.seed, worldDocs)].map((text) => JSON.stringify({ text }) + '\n').join(''));
    say(`chat world: ${worldDocs} documents (${lap()})`);
  } else rmSync(worldCorpus, { force: true });
  const counts = new WordCounts();
  for (const s of streamStories({ seed: o.seed, count: tokStories })) counts.addText(s.text);
  const tokWorld = Math.min(worldDocs, tokStories);
  for (const d of worldDocuments(o.seed, tokWorld)) counts.addText(d);
  for (let i = 0; i < tokWorld; i++) counts.addText(CHAT_MARKERS);
  const { vocab, stats } = trainBpe(counts, { vocabSize: o.vocabSize });
  writeTokenizerModel(tokenizer, vocab);
  writeTokenizerJson(join(o.dir, 'tokenizer.json'), vocab);
  say(`tokenizer: ${vocab.pieces.length} pieces (${stats.merges} merges) from ${tokStories} stories${tokWorld ? ` and ${tokWorld} world documents` : ''} (${lap()})`);
  const inputs = worldDocs > 0 ? [corpus, worldCorpus] : [corpus];
  const meta = prepareData({ inputs, tokenizer: new Tokenizer(vocab), outDir: o.dir, seqLen: o.seqLen, valFraction: o.valFraction, seed: o.seed });
  say(`shards: ${meta.splits.train.tokens} train / ${meta.splits.val.tokens} val tokens, ${meta.splits.train.chars_per_token.toFixed(2)} chars/token (${lap()})`);
  const floorText = floorTextOf(meta, worldDocs);
  const valBpc = worldDocs > 0 ? (floorText ? valSplitEntropy(o, meta) : null) : valSplitEntropy(o, meta) ?? c.bitsPerChar;
  if (valBpc !== null) say(`validation split: true entropy ${valBpc.toFixed(4)} bits/char${floorText ? ` (its stories, the first ${floorText.rows} rows)` : ''}, the floor a model's validation loss is compared with`);
  const rec: SourceRecord = { version: SOURCE_VERSION, options, corpus_bits_per_char: c.bitsPerChar, val_bits_per_char: valBpc };
  writeFileAtomic(sourcePath, JSON.stringify(rec, null, 2) + '\n');
  return { dir: o.dir, tokenizer, entropyFloorBpc: valBpc, floorText, corpus, corpusBitsPerChar: c.bitsPerChar, reused: false, meta };
}
