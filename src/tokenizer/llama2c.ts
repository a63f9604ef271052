/**
 * llama2.c `tokenizer.bin` ⇄ SpmVocab.
 *
 *   int32 max_token_length
 *   vocab_size × { float32 score, int32 len, len bytes of UTF-8 }      (little-endian)
 *
 * The count is not stored (llama2.c takes it from the model header), so without `vocabSize` the
 * reader reads to the end of the file. llama2.c's exporter writes every "▁" as " " and BOS/EOS as
 * "\n<s>\n" / "\n</s>\n"; the reader undoes both and the writer does both. Types are not stored
 * either: "<unk>" (or id 0) is UNKNOWN, "<s>"/"</s>" CONTROL, "<0xNN>" BYTE, the rest NORMAL.
 */
import { Llama2Error } from '../util/errors.js';
import { FileReader, writeFileAtomic } from '../util/fs.js';
import { PieceType, type SpmVocab } from './vocab.js';

const MAX_TOKEN_LENGTH_LIMIT = 1 << 16; // sanity bound for the header
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;
const WRAPPED_SPECIAL = /^\n(<[^\n]*>)\n$/; // how llama2.c writes BOS and EOS
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // keep U+FEFF: Llama-2 has it as a piece

export function readLlama2cTokenizer(path: string, vocabSize?: number): SpmVocab {
  const f = new FileReader(path, `tokenizer.bin ${path}`);
  try {
    return parseLlama2cTokenizer(f.read(0, f.size, 'the file'), path, vocabSize);
  } finally {
    f.close();
  }
}

export function parseLlama2cTokenizer(bytes: Uint8Array, name: string, vocabSize?: number): SpmVocab {
  const what = `tokenizer.bin ${name}`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) throw new Llama2Error(`${what}: expected a llama2.c tokenizer (int32 max_token_length first) but the file has ${bytes.length} bytes`);
  const maxLen = dv.getInt32(0, true);
  if (maxLen <= 0 || maxLen > MAX_TOKEN_LENGTH_LIMIT) {
    throw new Llama2Error(`${what}: expected max_token_length in 1..${MAX_TOKEN_LENGTH_LIMIT} but found ${maxLen}; this is not a llama2.c tokenizer.bin`);
  }
  if (vocabSize !== undefined && !(Number.isInteger(vocabSize) && vocabSize > 0)) {
    throw new Llama2Error(`${what}: expected a positive vocabulary size but was given ${vocabSize}`);
  }
  const pieces: string[] = [];
  const scores: number[] = [];
  const special = new Set<number>(); // ids written as "\n<...>\n"
  let pos = 4;
  while (vocabSize === undefined ? pos < bytes.length : pieces.length < vocabSize) {
    const id = pieces.length;
    if (pos + 8 > bytes.length) {
      throw new Llama2Error(`${what}: file is truncated: token ${id} needs its score and length at bytes ${pos}..${pos + 8} but the file has ${bytes.length} bytes`);
    }
    const score = dv.getFloat32(pos, true);
    const len = dv.getInt32(pos + 4, true);
    if (len < 0 || len > maxLen) throw new Llama2Error(`${what}: token ${id} has length ${len}; expected 0..${maxLen} (max_token_length)`);
    if (pos + 8 + len > bytes.length) {
      throw new Llama2Error(`${what}: file is truncated: token ${id} needs bytes ${pos + 8}..${pos + 8 + len} but the file has ${bytes.length} bytes`);
    }
    let text: string;
    try {
      text = utf8.decode(bytes.subarray(pos + 8, pos + 8 + len));
    } catch {
      throw new Llama2Error(`${what}: token ${id} at byte ${pos + 8} is not valid UTF-8`);
    }
    const wrapped = WRAPPED_SPECIAL.exec(text);
    pieces.push(wrapped ? wrapped[1]! : text.replaceAll(' ', '\u2581'));
    if (wrapped) special.add(id);
    scores.push(score);
    pos += 8 + len;
  }
  const types = Uint8Array.from(pieces, (p, id) => {
    if (p === '<unk>' || (id === 0 && !pieces.includes('<unk>'))) return PieceType.UNKNOWN;
    if (p === '<s>' || p === '</s>' || special.has(id)) return PieceType.CONTROL;
    return BYTE_PIECE.test(p) ? PieceType.BYTE : PieceType.NORMAL;
  });
  const idOf = (p: string): number => pieces.indexOf(p);
  return {
    pieces,
    scores: Float32Array.from(scores),
    types,
    bosId: idOf('<s>'),
    eosId: idOf('</s>'),
    unkId: types.indexOf(PieceType.UNKNOWN),
    padId: -1,
    addDummyPrefix: true, // llama2.c's encoder always prepends the dummy prefix
    addBos: true,
    addEos: false,
  };
}

/** The bytes of a llama2.c tokenizer.bin for `vocab`, mangled as llama2.c's exporter does. */
export function serializeLlama2cTokenizer(vocab: SpmVocab): Uint8Array {
  const encoded = vocab.pieces.map((p, id) => {
    const t = id === vocab.bosId || id === vocab.eosId ? `\n${p}\n` : p.replaceAll('\u2581', ' ');
    return Buffer.from(t, 'utf8');
  });
  const maxLen = encoded.reduce((m, b) => Math.max(m, b.length), 1);
  const out = Buffer.alloc(4 + encoded.reduce((s, b) => s + 8 + b.length, 0));
  out.writeInt32LE(maxLen, 0);
  let pos = 4;
  encoded.forEach((b, id) => {
    out.writeFloatLE(vocab.scores[id]!, pos);
    out.writeInt32LE(b.length, pos + 4);
    out.set(b, pos + 8);
    pos += 8 + b.length;
  });
  return out;
}

export function writeLlama2cTokenizer(path: string, vocab: SpmVocab): void {
  writeFileAtomic(path, serializeLlama2cTokenizer(vocab));
}
