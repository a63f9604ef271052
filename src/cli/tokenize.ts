/**
 * `llama2 tokenize`: text → token ids as the model sees them. The text is the TEXT argument, a
 * file (--file), or stdin; the tokenizer is a model's, or a tokenizer file named by --model or
 * --tokenizer. Not here: the tokenizer itself (src/tokenizer).
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, str } from './args.js';
import { readTextInput, requireModelPath, wantJson } from './common.js';
import { detectFormat, loadModelFile } from '../formats/load.js';
import { loadVocab } from '../tokenizer/load.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { Llama2Error } from '../util/errors.js';

export const spec: CommandSpec = {
  name: 'tokenize',
  summary: 'Tokenize text with a model\'s tokenizer.',
  usage: 'llama2 tokenize --model PATH [--json] [--no-bos] (TEXT | --file FILE | < FILE)',
  positionals: ['TEXT'],
  flags: [
    { name: 'model', short: 'm', type: 'string', meta: 'PATH', help: 'model (its tokenizer is used) or a tokenizer file itself' },
    { name: 'tokenizer', type: 'string', meta: 'FILE', help: 'tokenizer file to use instead of the model\'s' },
    { name: 'file', short: 'f', type: 'string', meta: 'FILE', help: 'tokenize the text of a UTF-8 file ("-": stdin) instead of TEXT' },
    { name: 'bos', type: 'boolean', default: true, help: 'prepend BOS (--no-bos to omit)' },
    { name: 'eos', type: 'boolean', default: false, help: 'append EOS' },
    { name: 'json', type: 'boolean', default: false, help: 'print {"ids": [...]} (else one "id piece" per line)' },
  ],
  notes:
    'With neither TEXT nor --file, the text is read from stdin (all of it, NUL bytes included); it must be UTF-8.\n' +
    '--model may name a tokenizer file whatever its name: a SentencePiece .model, a tokenizer.json, a llama2.c\n' +
    'tokenizer .bin (a .bin without "tokenizer" in its name is taken for a llama2.c model).',
};

/** Names that are tokenizer files rather than models: any .model, a .json other than a model's, *tokenizer*.bin. */
function looksLikeTokenizer(path: string): boolean {
  const name = basename(path).toLowerCase();
  if (name.endsWith('.model')) return true;
  if (name.endsWith('.json')) return !['config.json', 'params.json'].includes(name) && !name.endsWith('.index.json');
  return name.endsWith('.bin') && name.includes('tokenizer');
}

const isFile = (p: string): boolean => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

export function tokenizerFromFlags(f: FlagValues, cmd: string): Tokenizer {
  const explicit = str(f, 'tokenizer');
  if (explicit) return new Tokenizer(loadVocab(explicit));
  const p = requireModelPath(f, cmd);
  if (isFile(p) && looksLikeTokenizer(p)) return new Tokenizer(loadVocab(p));
  try {
    detectFormat(p);
  } catch (e) {
    if (!isFile(p)) throw e;
    try {
      return new Tokenizer(loadVocab(p)); // a tokenizer file under another name (sniffed by content)
    } catch {
      throw e; // neither: the model reader's message says what a model file should be
    }
  }
  const m = loadModelFile(p);
  if (!m.vocab) throw new Llama2Error(`--model ${p}: no tokenizer found with the model; pass --tokenizer FILE`);
  return new Tokenizer(m.vocab);
}

/** The text to tokenize: TEXT, --file, or stdin when it is not a terminal. */
async function inputText(f: FlagValues, positionals: string[]): Promise<string> {
  const file = str(f, 'file');
  const text = positionals[0];
  if (text !== undefined && file !== undefined) throw new Llama2Error('tokenize: give the text either as TEXT or with --file FILE, not both');
  if (text !== undefined) return text;
  if (file !== undefined) return readTextInput(file, '--file');
  if (process.stdin.isTTY) throw new Llama2Error('tokenize: expected the TEXT to tokenize as an argument, --file FILE, or text on stdin');
  return readTextInput('-', 'tokenize');
}

export async function run(f: FlagValues, positionals: string[]): Promise<void> {
  const tok = tokenizerFromFlags(f, 'tokenize');
  const text = await inputText(f, positionals);
  const ids = tok.encode(text, { bos: bool(f, 'bos'), eos: bool(f, 'eos') });
  if (wantJson(f)) process.stdout.write(JSON.stringify({ ids }) + '\n');
  else process.stdout.write(ids.map((id) => `${id}\t${JSON.stringify(tok.idToPiece(id))}\n`).join(''));
}
