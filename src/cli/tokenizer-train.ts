/**
 * `llama2 tokenizer train`: trains a SentencePiece-style BPE tokenizer (src/tokenizer/train.ts)
 * on corpus files and writes tokenizer.model (SentencePiece protobuf) and tokenizer.json
 * (Hugging Face) into a directory.
 *
 *   llama2 tokenizer train --input stories.jsonl --vocab-size 1024 --out tok/
 *
 * Documents are read as `llama2 data prepare` reads them (.txt: blank-line separated; .jsonl:
 * one {"text": ...} per line); each line of a document is one training sentence.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, list, num, str } from './args.js';
import { readDocuments } from '../data/documents.js';
import { writeTokenizerJson, writeTokenizerModel } from '../tokenizer/load.js';
import { trainBpe, WordCounts } from '../tokenizer/train.js';
import { Llama2Error, check } from '../util/errors.js';

export const spec: CommandSpec = {
  name: 'tokenizer',
  summary: 'Train a BPE tokenizer (Llama / SentencePiece layout) on corpus files.',
  usage: 'llama2 tokenizer train --input FILE[,FILE...] --vocab-size N --out DIR [options]',
  positionals: ['train'],
  rest: true,
  flags: [
    { name: 'input', short: 'i', type: 'list', meta: 'FILE,...', help: 'corpus files, .txt (blank-line separated) or .jsonl (more may follow as arguments)' },
    { name: 'vocab-size', type: 'int', meta: 'N', help: 'pieces in all, counting 3 special and 256 byte pieces (required)' },
    { name: 'out', short: 'o', type: 'string', meta: 'DIR', help: 'directory for tokenizer.model and tokenizer.json (required)' },
    { name: 'character-coverage', type: 'number', default: 0.9995, help: 'share of character occurrences that get a piece of their own' },
    { name: 'max-docs', type: 'int', meta: 'N', help: 'train on the first N documents only (default: all)' },
    { name: 'text-key', type: 'string', default: 'text', help: 'JSONL field holding the text' },
    { name: 'json', type: 'boolean', default: false, help: 'print one JSON object with the result' },
  ],
};

export async function run(f: FlagValues, positionals: string[]): Promise<void> {
  const [sub, ...more] = positionals;
  if (sub !== 'train') throw new Llama2Error(`tokenizer: expected the subcommand "train", found ${sub === undefined ? 'none' : `"${sub}"`} (to encode text, use llama2 tokenize)`);
  const inputs = [...list(f, 'input'), ...more];
  check(inputs.length > 0, 'tokenizer train: --input FILE is required (.txt or .jsonl)');
  const vocabSize = num(f, 'vocab-size');
  check(vocabSize !== undefined, 'tokenizer train: --vocab-size N is required (e.g. 512 for a tiny model, 32000 for Llama 2)');
  const out = str(f, 'out');
  check(out, 'tokenizer train: --out DIR is required');
  const maxDocs = num(f, 'max-docs');
  check(maxDocs === undefined || maxDocs >= 1, `--max-docs: expected an integer ≥ 1, found ${maxDocs}`);
  const counts = new WordCounts();
  let docs = 0;
  outer: for (const path of inputs) {
    for (const d of readDocuments(path, str(f, 'text-key'))) {
      if (maxDocs !== undefined && docs >= maxDocs) break outer;
      counts.addText(d.text);
      docs++;
    }
  }
  check(docs > 0, () => `tokenizer train: no documents in ${inputs.join(', ')}`);
  const { vocab, stats } = trainBpe(counts, { vocabSize, characterCoverage: num(f, 'character-coverage') });
  mkdirSync(out, { recursive: true });
  const model = join(out, 'tokenizer.model');
  const json = join(out, 'tokenizer.json');
  writeTokenizerModel(model, vocab);
  writeTokenizerJson(json, vocab);
  if (bool(f, 'json')) {
    process.stdout.write(JSON.stringify({
      out, files: [model, json], vocab_size: vocab.pieces.length, documents: docs, sentences: stats.sentences, words: stats.words,
      distinct_words: stats.distinctWords, characters: stats.characters, coverage: stats.coverage, merges: stats.merges, seconds: stats.seconds,
    }) + '\n');
  } else {
    process.stdout.write(
      `trained ${vocab.pieces.length} pieces (${stats.merges} merges, ${stats.characters} characters covering ${(stats.coverage * 100).toFixed(2)}%) ` +
        `on ${docs} documents in ${stats.seconds.toFixed(1)}s\nwrote ${model} and ${json}\n`,
    );
  }
}
