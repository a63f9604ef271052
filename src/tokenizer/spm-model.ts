/**
 * SentencePiece `tokenizer.model` (a serialized ModelProto) ⇄ SpmVocab.
 *
 *   ModelProto      1: repeated SentencePiece { 1: piece, 2: score (float), 3: type (enum, default NORMAL) }
 *                   2: TrainerSpec   { 3: model_type (UNIGRAM=1 default, BPE=2, WORD=3, CHAR=4),
 *                                      24: treat_whitespace_as_suffix, 35: byte_fallback,
 *                                      40..43: unk/bos/eos/pad id, 45..48: unk/bos/eos/pad piece, ... }
 *                   3: NormalizerSpec { 1: name, 2: precompiled_charsmap, 3: add_dummy_prefix (default true),
 *                                       4: remove_extra_whitespaces (default true), 5: escape_whitespaces (default true) }
 *
 * Only what the Llama tokenizer is gets accepted: BPE, identity normalization, no whitespace
 * squeezing; anything else is refused with a Llama2Error rather than tokenized differently.
 * The writer produces a model python's sentencepiece loads (tests check the ids agree).
 * Not here: the tokenizer itself (tokenizer.ts) or other file formats (hf-json.ts, llama2c.ts).
 */
import { readFileSync } from 'node:fs';
import { Llama2Error, quote } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { protoFields, ProtoWriter, WIRE, type ProtoField } from './protobuf.js';
import { PieceType, type SpmVocab } from './vocab.js';

const MODEL_TYPES: Record<number, string> = { 1: 'UNIGRAM', 2: 'BPE', 3: 'WORD', 4: 'CHAR' };
const BPE = 2;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // keep U+FEFF: Llama-2 has it as a piece

interface TrainerSpec {
  modelType: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
}

interface NormalizerSpec {
  name: string;
  charsmapBytes: number;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export function readTokenizerModel(path: string): SpmVocab {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Llama2Error(`tokenizer.model ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return parseTokenizerModel(bytes, path);
}

/** Parses a serialized ModelProto; `name` (usually the path) appears in errors. */
export function parseTokenizerModel(bytes: Uint8Array, name: string): SpmVocab {
  const what = `tokenizer.model ${name}`;
  const pieces: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const trainer: ProtoField[] = []; // a message field given twice is merged, later values winning
  const normalizer: ProtoField[] = [];
  for (const f of protoFields(bytes, what)) {
    if (f.field === 1) {
      expectWire(f, WIRE.LEN, what, 'pieces');
      const p = parsePiece(bytes, f, what, pieces.length);
      pieces.push(p.piece);
      scores.push(p.score);
      types.push(p.type);
    } else if (f.field === 2) {
      expectWire(f, WIRE.LEN, what, 'trainer_spec');
      trainer.push(f);
    } else if (f.field === 3) {
      expectWire(f, WIRE.LEN, what, 'normalizer_spec');
      normalizer.push(f);
    }
  }
  if (pieces.length === 0) {
    throw new Llama2Error(`${what}: expected a SentencePiece model (ModelProto with pieces) but found no pieces — is this really a tokenizer.model?`);
  }
  const ts = parseTrainerSpec(bytes, trainer, what);
  const ns = parseNormalizerSpec(bytes, normalizer, what);
  if (ts.modelType !== BPE) {
    const t = MODEL_TYPES[ts.modelType] ?? `type ${ts.modelType}`;
    throw new Llama2Error(`${what}: trainer_spec.model_type is ${t}; only BPE models (the Llama tokenizer) are supported`);
  }
  if (ns.charsmapBytes > 0 || ns.removeExtraWhitespaces || !ns.escapeWhitespaces || ts.treatWhitespaceAsSuffix) {
    throw new Llama2Error(
      `${what}: normalizer ${quote(ns.name)} (precompiled_charsmap ${ns.charsmapBytes} bytes, remove_extra_whitespaces ${ns.removeExtraWhitespaces}, ` +
        `escape_whitespaces ${ns.escapeWhitespaces}, treat_whitespace_as_suffix ${ts.treatWhitespaceAsSuffix}) is not supported; ` +
        `expected Llama's identity normalization (no charsmap, remove_extra_whitespaces false, escape_whitespaces true)`,
    );
  }
  const ids = new Map<string, number>();
  let unkId = -1;
  let byteCount = 0;
  pieces.forEach((p, id) => {
    if (ids.has(p)) throw new Llama2Error(`${what}: piece ${quote(p)} is defined twice (ids ${ids.get(p)} and ${id})`);
    ids.set(p, id);
    if (types[id] === PieceType.UNKNOWN) {
      if (unkId >= 0) throw new Llama2Error(`${what}: expected one unknown piece but found two (ids ${unkId} and ${id})`);
      unkId = id;
    }
    if (types[id] === PieceType.BYTE) {
      if (!/^<0x[0-9A-F]{2}>$/.test(p)) throw new Llama2Error(`${what}: byte piece ${id} is ${quote(p)}; expected the form <0xNN>`);
      byteCount++;
    }
  });
  if (unkId < 0) throw new Llama2Error(`${what}: expected an unknown piece (type UNKNOWN, usually <unk>) but found none`);
  if (byteCount > 0 && !ts.byteFallback) {
    throw new Llama2Error(`${what}: has ${byteCount} byte pieces but trainer_spec.byte_fallback is false`);
  }
  if (ts.byteFallback) {
    for (let b = 0; b < 256; b++) {
      const p = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
      if (types[ids.get(p) ?? -1] !== PieceType.BYTE) {
        throw new Llama2Error(`${what}: trainer_spec.byte_fallback is true but byte piece ${p} is missing`);
      }
    }
  }
  const controlId = (piece: string): number => {
    const id = ids.get(piece);
    return id !== undefined && types[id] === PieceType.CONTROL ? id : -1;
  };
  return {
    pieces,
    scores: Float32Array.from(scores),
    types: Uint8Array.from(types),
    bosId: controlId(ts.bosPiece),
    eosId: controlId(ts.eosPiece),
    unkId,
    padId: controlId(ts.padPiece),
    addDummyPrefix: ns.addDummyPrefix,
    addBos: true, // Llama's convention; sentencepiece itself never adds BOS
    addEos: false,
  };
}

function expectWire(f: ProtoField, wire: number, what: string, field: string): void {
  if (f.wire !== wire) throw new Llama2Error(`${what}: corrupt protobuf: ${field} (field ${f.field}) at byte ${f.at} has wire type ${f.wire}, expected ${wire}`);
}

function parsePiece(buf: Uint8Array, f: ProtoField, what: string, index: number): { piece: string; score: number; type: number } {
  let piece: string | null = null;
  let score = 0;
  let type: number = PieceType.NORMAL;
  for (const g of subFields(buf, f, what)) {
    if (g.field === 1) {
      expectWire(g, WIRE.LEN, what, `pieces[${index}].piece`);
      piece = text(g, what, `pieces[${index}].piece`);
    } else if (g.field === 2) {
      expectWire(g, WIRE.I32, what, `pieces[${index}].score`);
      score = new DataView(g.bytes.buffer, g.bytes.byteOffset, 4).getFloat32(0, true);
    } else if (g.field === 3) {
      expectWire(g, WIRE.VARINT, what, `pieces[${index}].type`);
      type = g.int32;
      if (type < PieceType.NORMAL || type > PieceType.BYTE) {
        throw new Llama2Error(`${what}: pieces[${index}].type is ${type}; expected 1..6 (NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE)`);
      }
    }
  }
  if (piece === null) throw new Llama2Error(`${what}: pieces[${index}] at byte ${f.at} has no piece text`);
  return { piece, score, type };
}

/** The fields of a nested message (all its occurrences, in order), with offsets into the whole file. */
function* subFields(buf: Uint8Array, fs: ProtoField | ProtoField[], what: string): Generator<ProtoField> {
  for (const f of Array.isArray(fs) ? fs : [fs]) {
    const base = f.bytes.byteOffset - buf.byteOffset;
    yield* protoFields(buf, what, base, base + f.bytes.length);
  }
}

function text(g: ProtoField, what: string, field: string): string {
  try {
    return utf8.decode(g.bytes);
  } catch {
    throw new Llama2Error(`${what}: ${field} at byte ${g.at} is not valid UTF-8`);
  }
}

function parseTrainerSpec(buf: Uint8Array, f: ProtoField[], what: string): TrainerSpec {
  const ts: TrainerSpec = {
    modelType: 1, byteFallback: false, treatWhitespaceAsSuffix: false,
    unkPiece: '<unk>', bosPiece: '<s>', eosPiece: '</s>', padPiece: '<pad>',
  };
  for (const g of subFields(buf, f, what)) {
    const str = (): string => text(g, what, `trainer_spec field ${g.field}`);
    if (g.field === 3 && g.wire === WIRE.VARINT) ts.modelType = g.int32;
    else if (g.field === 24 && g.wire === WIRE.VARINT) ts.treatWhitespaceAsSuffix = g.value !== 0;
    else if (g.field === 35 && g.wire === WIRE.VARINT) ts.byteFallback = g.value !== 0;
    else if (g.field === 45 && g.wire === WIRE.LEN) ts.unkPiece = str();
    else if (g.field === 46 && g.wire === WIRE.LEN) ts.bosPiece = str();
    else if (g.field === 47 && g.wire === WIRE.LEN) ts.eosPiece = str();
    else if (g.field === 48 && g.wire === WIRE.LEN) ts.padPiece = str();
  }
  return ts;
}

function parseNormalizerSpec(buf: Uint8Array, f: ProtoField[], what: string): NormalizerSpec {
  const ns: NormalizerSpec = { name: '', charsmapBytes: 0, addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true };
  for (const g of subFields(buf, f, what)) {
    if (g.field === 1 && g.wire === WIRE.LEN) ns.name = text(g, what, 'normalizer_spec.name');
    else if (g.field === 2 && g.wire === WIRE.LEN) ns.charsmapBytes = g.bytes.length;
    else if (g.field === 3 && g.wire === WIRE.VARINT) ns.addDummyPrefix = g.value !== 0;
    else if (g.field === 4 && g.wire === WIRE.VARINT) ns.removeExtraWhitespaces = g.value !== 0;
    else if (g.field === 5 && g.wire === WIRE.VARINT) ns.escapeWhitespaces = g.value !== 0;
  }
  return ns;
}

/** The bytes of a tokenizer.model for `vocab` (BPE, identity normalization). */
export function serializeTokenizerModel(vocab: SpmVocab): Uint8Array {
  if (vocab.unkId < 0) throw new Llama2Error('tokenizer.model: sentencepiece requires an unknown piece, but the vocabulary has none (unkId -1)');
  const m = new ProtoWriter();
  vocab.pieces.forEach((piece, id) => {
    m.message(1, new ProtoWriter().string(1, piece).float(2, vocab.scores[id]!).int(3, vocab.types[id]!));
  });
  const byteFallback = vocab.types.some((t) => t === PieceType.BYTE);
  const trainer = new ProtoWriter().int(3, BPE).int(4, vocab.pieces.length).int(35, byteFallback);
  trainer.int(40, vocab.unkId).int(41, vocab.bosId).int(42, vocab.eosId).int(43, vocab.padId);
  const special: [number, number][] = [[45, vocab.unkId], [46, vocab.bosId], [47, vocab.eosId], [48, vocab.padId]];
  for (const [field, id] of special) if (id >= 0) trainer.string(field, vocab.pieces[id]!);
  m.message(2, trainer);
  const normalizer = new ProtoWriter().string(1, 'identity').bytes(2, new Uint8Array(0));
  normalizer.int(3, vocab.addDummyPrefix).int(4, false).int(5, true);
  m.message(3, normalizer);
  return m.finish();
}

export function writeTokenizerModel(path: string, vocab: SpmVocab): void {
  writeFileAtomic(path, serializeTokenizerModel(vocab));
}
