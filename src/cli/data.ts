/**
 * `llama2 data synth stories` and `llama2 data prepare`: thin command wrappers over
 * src/data (writeStoriesCorpus, prepareData), plus `buildStoriesData`, the whole built-in data
 * pipeline (corpus → tokenizer → shards) that `llama2 pretrain` (data_dir "builtin:stories") and
 * `llama2 demo` run.
 *
 *   llama2 data synth stories --out stories.jsonl --count 10000 --seed 1        (prints the entropy)
 *   llama2 data prepare --input stories.jsonl --tokenizer tok/tokenizer.model --out data/stories \
 *                       --seq-len 256 --val-fraction 0.02
 *
 * prepare also writes the tokenizer into the output directory as tokenizer.model, so a pretrain
 * config needs only `data_dir`.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, list, num, str } from './args.js';
import { generateStory, streamStories, writeStoriesCorpus, END_MARKER_CHARS, type CorpusFormat } from '../data/stories.js';
import { prepareData } from '../data/prepare.js';
import { readShardMeta, type ShardMeta } from '../data/shards.js';
import { hashSeed } from '../util/rng.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadVocab, writeTokenizerJson, writeTokenizerModel } from '../tokenizer/load.js';
import { trainBpe, WordCounts } from '../tokenizer/train.js';
import type { PretrainData } from '../train/pretrain.js';
import { Llama2Error, check } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { CHAT_FLAGS, runSynthChat } from './data-chat.js';

export const spec: CommandSpec = {
  name: 'data',
  summary: 'Make training data: the built-in stories corpus, and token shards from corpus files.',
  usage: 'llama2 data synth stories --out FILE [--count N] [--seed S]\n       llama2 data synth chat --out DIR [--seed S] [--sft N] [--train-prompts N] [--test-prompts N]\n       llama2 data prepare --input FILE[,FILE...] --tokenizer T --out DIR [--seq-len N] [--val-fraction F]',
  positionals: ['synth stories | prepare'],
  rest: true,
  flags: [
    { name: 'out', short: 'o', type: 'string', meta: 'PATH', help: 'synth: corpus file (.jsonl or .txt); prepare: output directory (required)' },
    { name: 'count', type: 'int', meta: 'N', help: 'synth: number of stories (default 10000)' },
    { name: 'seed', type: 'int', meta: 'S', help: 'synth: corpus seed; prepare: seed of the train/validation split (default 1)' },
    { name: 'input', short: 'i', type: 'list', meta: 'FILE,...', help: 'prepare: corpus files, .txt (blank-line separated) or .jsonl (more may follow as arguments)' },
    { name: 'tokenizer', type: 'string', meta: 'FILE', help: 'prepare: tokenizer.model / tokenizer.json / tokenizer.bin (required)' },
    { name: 'seq-len', type: 'int', meta: 'N', help: 'prepare: training context; rows hold N+1 tokens (default 256)' },
    { name: 'val-fraction', type: 'number', meta: 'F', help: 'prepare: share of documents held out for validation (default 0.02)' },
    { name: 'text-key', type: 'string', meta: 'KEY', help: 'prepare: JSONL field holding the text (default "text")' },
    { name: 'json', type: 'boolean', default: false, help: 'print one JSON object with the result' },
    ...CHAT_FLAGS,
  ],
  notes: 'synth prints the corpus\'s true entropy in bits per character: the loss floor no model can beat.',
};

const SYNTH_FLAGS = new Set(['out', 'count', 'seed', 'json']);
const PREPARE_FLAGS = new Set(['out', 'input', 'tokenizer', 'seq-len', 'val-fraction', 'seed', 'text-key', 'json']);

/** Rejects flags that belong to the other subcommand. */
function onlyFlags(f: FlagValues, allowed: Set<string>, sub: string): void {
  for (const [k, v] of Object.entries(f)) {
    if (v !== undefined && !allowed.has(k) && !(k === 'json' && v === false)) throw new Llama2Error(`data ${sub}: --${k} does not apply here (see llama2 data --help)`);
  }
}

export async function run(f: FlagValues, positionals: string[]): Promise<void> {
  const [sub, what, ...more] = positionals;
  if (sub === 'synth' && what === 'chat') return runSynthChat(f, more);
  if (sub === 'synth') {
    check(what === 'stories' && more.length === 0, `data synth: expected "llama2 data synth stories" or "llama2 data synth chat", found "data synth ${[what, ...more].filter(Boolean).join(' ')}"`);
    onlyFlags(f, SYNTH_FLAGS, 'synth stories');
    const out = str(f, 'out');
    check(out, 'data synth stories: --out FILE is required (.jsonl or .txt)');
    const format: CorpusFormat = out.toLowerCase().endsWith('.txt') ? 'txt' : out.toLowerCase().endsWith('.jsonl') ? 'jsonl' : badExt(out);
    const r = writeStoriesCorpus(out, { seed: num(f, 'seed') ?? 1, count: num(f, 'count') ?? 10000, format });
    if (bool(f, 'json')) {
      process.stdout.write(JSON.stringify({ path: r.path, format: r.format, seed: r.seed, count: r.count, bytes: r.bytes, chars: r.totalChars, bits: r.totalBits, bits_per_char: r.bitsPerChar }) + '\n');
    } else {
      process.stdout.write(`wrote ${r.count} stories (${r.bytes} bytes) to ${r.path}\ntrue entropy: ${r.bitsPerChar.toFixed(4)} bits/char (${r.totalChars} chars)\n`);
    }
    return;
  }
  if (sub === 'prepare') {
    onlyFlags(f, PREPARE_FLAGS, 'prepare');
    const inputs = [...list(f, 'input'), ...[what, ...more].filter((s): s is string => s !== undefined)];
    check(inputs.length > 0, 'data prepare: --input FILE is required (.txt or .jsonl)');
    const out = str(f, 'out');
    check(out, 'data prepare: --out DIR is required');
    const tokPath = str(f, 'tokenizer');
    check(tokPath, 'data prepare: --tokenizer FILE is required (tokenizer.model, tokenizer.json or tokenizer.bin)');
    const vocab = loadVocab(tokPath);
    const meta = prepareData({
      inputs, tokenizer: new Tokenizer(vocab), outDir: out, seqLen: num(f, 'seq-len') ?? 256,
      valFraction: num(f, 'val-fraction') ?? 0.02, seed: num(f, 'seed') ?? 1, textKey: str(f, 'text-key'),
    });
    writeTokenizerModel(join(out, 'tokenizer.model'), vocab);
    if (bool(f, 'json')) process.stdout.write(JSON.stringify({ out, ...meta }) + '\n');
    else process.stdout.write(describeMeta(out, meta) + '\n');
    return;
  }
  throw new Llama2Error(`data: expected a subcommand "synth stories" or "prepare", found ${sub === undefined ? 'none' : `"${sub}"`}`);
}

function badExt(p: string): never {
  throw new Llama2Error(`data synth stories: --out ${p}: expected a .jsonl or .txt file name`);
}

export function describeMeta(dir: string, m: ShardMeta): string {
  const s = m.splits;
  return [
    `prepared ${dir}: vocab ${m.vocab_size}, seq_len ${m.seq_len}, ${m.dtype}`,
    `  train: ${s.train.docs} docs, ${s.train.tokens} tokens, ${s.train.rows} rows, ${s.train.chars_per_token.toFixed(2)} chars/token`,
    `  val:   ${s.val.docs} docs, ${s.val.tokens} tokens, ${s.val.rows} rows`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// the built-in stories pipeline

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
const SOURCE_VERSION = 1;

interface SourceRecord {
  version: number;
  options: { count: number; seed: number; vocab_size: number; seq_len: number; val_fraction: number; tokenizer_stories: number };
  corpus_bits_per_char: number;
  val_bits_per_char: number;
}

/**
 * Entropy of the validation split in bits/char: the stories prepare assigned to it (document i
 * goes to validation when hashSeed(seed, i)/2^32 < valFraction), each −log2 P(story) from the
 * grammar. Checked against the split's character count; null when they disagree.
 */
function valSplitEntropy(o: StoriesDataOptions, meta: ShardMeta): number | null {
  const cut = o.valFraction * 0x100000000;
  let bits = 0;
  let chars = 0;
  for (let i = 0; i < o.count; i++) {
    if (hashSeed(o.seed, i) >= cut) continue;
    const s = generateStory(o.seed, i);
    bits += s.bits;
    chars += s.text.length + END_MARKER_CHARS;
  }
  return chars > 0 && chars === meta.splits.val.chars ? bits / chars : null;
}

/** Corpus → tokenizer → shards in `dir` (reused when an identical build is already there). */
export function buildStoriesData(o: StoriesDataOptions): StoriesData {
  const say = o.onProgress ?? (() => {});
  const tokStories = Math.min(o.count, o.tokenizerStories ?? 4000);
  const corpus = join(o.dir, 'stories.jsonl');
  const tokenizer = join(o.dir, 'tokenizer.model');
  const options: SourceRecord['options'] = {
    count: o.count, seed: o.seed, vocab_size: o.vocabSize, seq_len: o.seqLen, val_fraction: o.valFraction, tokenizer_stories: tokStories,
  };
  const sourcePath = join(o.dir, SOURCE_FILE);
  if (existsSync(sourcePath) && existsSync(join(o.dir, 'meta.json')) && existsSync(tokenizer)) {
    try {
      const prev = JSON.parse(readFileSync(sourcePath, 'utf8')) as SourceRecord;
      if (prev.version === SOURCE_VERSION && JSON.stringify(prev.options) === JSON.stringify(options)) {
        say(`reusing the prepared stories in ${o.dir}`);
        return { dir: o.dir, tokenizer, entropyFloorBpc: prev.val_bits_per_char, corpus, corpusBitsPerChar: prev.corpus_bits_per_char, reused: true, meta: readShardMeta(o.dir) };
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
  say(`stories: ${o.count} stories, ${c.totalChars} chars, true entropy ${c.bitsPerChar.toFixed(4)} bits/char (${lap()})`);
  const counts = new WordCounts();
  for (const s of streamStories({ seed: o.seed, count: tokStories })) counts.addText(s.text);
  const { vocab, stats } = trainBpe(counts, { vocabSize: o.vocabSize });
  writeTokenizerModel(tokenizer, vocab);
  writeTokenizerJson(join(o.dir, 'tokenizer.json'), vocab);
  say(`tokenizer: ${vocab.pieces.length} pieces (${stats.merges} merges) from ${tokStories} stories (${lap()})`);
  const meta = prepareData({ inputs: [corpus], tokenizer: new Tokenizer(vocab), outDir: o.dir, seqLen: o.seqLen, valFraction: o.valFraction, seed: o.seed });
  say(`shards: ${meta.splits.train.tokens} train / ${meta.splits.val.tokens} val tokens, ${meta.splits.train.chars_per_token.toFixed(2)} chars/token (${lap()})`);
  const valBpc = valSplitEntropy(o, meta) ?? c.bitsPerChar;
  const rec: SourceRecord = { version: SOURCE_VERSION, options, corpus_bits_per_char: c.bitsPerChar, val_bits_per_char: valBpc };
  writeFileAtomic(sourcePath, JSON.stringify(rec, null, 2) + '\n');
  return { dir: o.dir, tokenizer, entropyFloorBpc: valBpc, corpus, corpusBitsPerChar: c.bitsPerChar, reused: false, meta };
}
