/** `llama2 tokenize`: text → token ids as the model sees them. */
import type { CommandSpec, FlagValues } from './args.js';
import { bool, str } from './args.js';
import { requireModelPath, wantJson } from './common.js';
import { loadModelFile } from '../formats/load.js';
import { loadVocab } from '../tokenizer/load.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { Llama2Error } from '../util/errors.js';

export const spec: CommandSpec = {
  name: 'tokenize',
  summary: 'Tokenize text with a model\'s tokenizer.',
  usage: 'llama2 tokenize --model PATH [--json] [--no-bos] TEXT',
  positionals: ['TEXT'],
  flags: [
    { name: 'model', short: 'm', type: 'string', meta: 'PATH', help: 'model (its tokenizer is used) or a tokenizer file itself' },
    { name: 'tokenizer', type: 'string', meta: 'FILE', help: 'tokenizer file to use instead of the model\'s' },
    { name: 'bos', type: 'boolean', default: true, help: 'prepend BOS (--no-bos to omit)' },
    { name: 'eos', type: 'boolean', default: false, help: 'append EOS' },
    { name: 'json', type: 'boolean', default: false, help: 'print {"ids": [...]} (else one "id piece" per line)' },
  ],
};

const TOKENIZER_FILE = /(tokenizer\.(model|json)|tokenizer\.bin)$/;

export function tokenizerFromFlags(f: FlagValues, cmd: string): Tokenizer {
  const explicit = str(f, 'tokenizer');
  if (explicit) return new Tokenizer(loadVocab(explicit));
  const p = requireModelPath(f, cmd);
  if (TOKENIZER_FILE.test(p)) return new Tokenizer(loadVocab(p));
  const m = loadModelFile(p);
  if (!m.vocab) throw new Llama2Error(`--model ${p}: no tokenizer found with the model; pass --tokenizer FILE`);
  return new Tokenizer(m.vocab);
}

export async function run(f: FlagValues, positionals: string[]): Promise<void> {
  const text = positionals[0];
  if (text === undefined) throw new Llama2Error('tokenize: expected the TEXT to tokenize as an argument');
  const tok = tokenizerFromFlags(f, 'tokenize');
  const ids = tok.encode(text, { bos: bool(f, 'bos'), eos: bool(f, 'eos') });
  if (wantJson(f)) process.stdout.write(JSON.stringify({ ids }) + '\n');
  else for (const id of ids) process.stdout.write(`${id}\t${JSON.stringify(tok.idToPiece(id))}\n`);
}
