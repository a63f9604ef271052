/**
 * `llama2 data synth stories` and `llama2 data prepare`: thin command wrappers over
 * src/data (writeStoriesCorpus, prepareData). The whole built-in pipeline (corpus → tokenizer →
 * shards) that pretraining runs is src/data/stories-data.ts.
 *
 *   llama2 data synth stories --out stories.jsonl --count 10000 --seed 1        (prints the entropy)
 *   llama2 data prepare --input stories.jsonl --tokenizer tok/tokenizer.model --out data/stories \
 *                       --seq-len 256 --val-fraction 0.02
 *
 * prepare also writes the tokenizer into the output directory as tokenizer.model, so a pretrain
 * config needs only `data_dir`.
 */
import { join } from 'node:path';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, list, num, str } from './args.js';
import { writeStoriesCorpus, type CorpusFormat } from '../data/stories.js';
import { prepareData } from '../data/prepare.js';
import { readShardMeta, type ShardMeta } from '../data/shards.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadVocab, writeTokenizerModel } from '../tokenizer/load.js';
import { Llama2Error, check } from '../util/errors.js';
import { CHAT_FLAGS, runSynthChat } from './data-chat.js';
import { GATT_FLAGS, runDataGatt } from './data-gatt.js';
import { PREFS_FLAGS, runSynthPrefs } from './data-prefs.js';

export const spec: CommandSpec = {
  name: 'data',
  summary: 'Make training data: the built-in stories corpus, and token shards from corpus files.',
  usage: 'llama2 data synth stories --out FILE [--count N] [--seed S]\n       llama2 data synth chat --out DIR [--seed S] [--sft N] [--train-prompts N] [--test-prompts N]\n       llama2 data prepare --input FILE[,FILE...] --tokenizer T --out DIR [--seq-len N] [--val-fraction F]\n       llama2 data gatt --model M --out FILE [--dialogs N] [--turns N] [--samples K]\n       llama2 data synth prefs --models A[,B] --prompts FILE --out FILE [--batch N] [--seed S]',
  positionals: ['synth stories|chat|prefs | prepare | gatt'],
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
    ...GATT_FLAGS,
    ...PREFS_FLAGS,
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
  if (sub === 'synth' && what === 'prefs') return runSynthPrefs(f, more);
  if (sub === 'gatt') return runDataGatt(f, [what, ...more].filter((x): x is string => x !== undefined));
  if (sub === 'synth') {
    check(what === 'stories' && more.length === 0, `data synth: expected "llama2 data synth stories", "chat" or "prefs", found "data synth ${[what, ...more].filter(Boolean).join(' ')}"`);
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
  throw new Llama2Error(`data: expected a subcommand "synth stories", "synth chat", "prepare" or "gatt", found ${sub === undefined ? 'none' : `"${sub}"`}`);
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
