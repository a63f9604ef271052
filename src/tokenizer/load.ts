/**
 * One entry point for tokenizer files: `loadVocab(path)` picks the reader by file name, then by
 * content, and a directory is searched for tokenizer.model, tokenizer.json, tokenizer.bin in that
 * order. The readers and writers of each format are re-exported here.
 *
 *   const tok = new Tokenizer(loadVocab('llama-2-7b-chat/tokenizer.model'));
 *
 * GGUF vocabularies are read with the GGUF model file (src/formats), not here.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Llama2Error } from '../util/errors.js';
import { FileReader } from '../util/fs.js';
import { decodeUtf8 } from '../util/utf8.js';
import { parseTokenizerJson, readTokenizerJson } from './hf-json.js';
import { parseLlama2cTokenizer, readLlama2cTokenizer } from './llama2c.js';
import { parseTokenizerModel, readTokenizerModel } from './spm-model.js';
import type { SpmVocab } from './vocab.js';

export { parseTokenizerModel, readTokenizerModel, serializeTokenizerModel, writeTokenizerModel } from './spm-model.js';
export { parseTokenizerJson, readTokenizerJson, serializeTokenizerJson, writeTokenizerJson } from './hf-json.js';
export { parseLlama2cTokenizer, readLlama2cTokenizer, serializeLlama2cTokenizer, writeLlama2cTokenizer } from './llama2c.js';

const DIRECTORY_ORDER = ['tokenizer.model', 'tokenizer.json', 'tokenizer.bin'];
const EXPECTED = 'a SentencePiece tokenizer.model, a Hugging Face tokenizer.json or a llama2.c tokenizer.bin';

export type TokenizerFileKind = 'spm-model' | 'hf-json' | 'llama2c-bin';

/** Reads any supported tokenizer file (or a model directory holding one) into an SpmVocab. */
export function loadVocab(path: string): SpmVocab {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new Llama2Error(`tokenizer ${path}: cannot open (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(e)}); expected ${EXPECTED}`);
  }
  if (st.isDirectory()) {
    const found = DIRECTORY_ORDER.find((n) => existsSync(join(path, n)));
    if (found === undefined) throw new Llama2Error(`tokenizer ${path}: directory has none of ${DIRECTORY_ORDER.join(', ')}`);
    return loadVocab(join(path, found));
  }
  const kind = kindByName(path) ?? kindByContent(path);
  if (kind === 'spm-model') return readTokenizerModel(path);
  if (kind === 'hf-json') return readTokenizerJson(path);
  return readLlama2cTokenizer(path);
}

function kindByName(path: string): TokenizerFileKind | null {
  const name = basename(path).toLowerCase();
  if (name.endsWith('.model')) return 'spm-model';
  if (name.endsWith('.json')) return 'hf-json';
  if (name.endsWith('.bin')) return 'llama2c-bin';
  return null;
}

/** Sniffs the first bytes: '{' → JSON, a ModelProto pieces tag (0x0a) → protobuf, else llama2.c. */
function kindByContent(path: string): TokenizerFileKind {
  const f = new FileReader(path, `tokenizer ${path}`);
  let head: Uint8Array;
  try {
    head = f.read(0, Math.min(16, f.size), 'the first bytes');
  } finally {
    f.close();
  }
  const text = Buffer.from(head).toString('latin1').trimStart();
  if (text.startsWith('{')) return 'hf-json';
  if (head[0] === 0x0a) return 'spm-model';
  if (head.length >= 4) {
    const maxLen = Buffer.from(head).readInt32LE(0);
    if (maxLen > 0 && maxLen <= 1 << 16) return 'llama2c-bin';
  }
  throw new Llama2Error(`tokenizer ${path}: unrecognized file (first bytes ${Buffer.from(head.subarray(0, 8)).toString('hex')}); expected ${EXPECTED}`);
}

/** Parses tokenizer bytes already in memory, by the kind given or sniffed (name is for errors). */
export function parseVocab(bytes: Uint8Array, name: string, kind?: TokenizerFileKind): SpmVocab {
  const k = kind ?? kindByName(name);
  if (k === 'hf-json' || (k === null && Buffer.from(bytes.subarray(0, 16)).toString('latin1').trimStart().startsWith('{'))) {
    return parseTokenizerJson(decodeUtf8(bytes, `tokenizer.json ${name}`), name);
  }
  if (k === 'spm-model' || (k === null && bytes[0] === 0x0a)) return parseTokenizerModel(bytes, name);
  return parseLlama2cTokenizer(bytes, name);
}
