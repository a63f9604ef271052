/**
 * Hugging Face `tokenizer.json` (the Llama fast tokenizer) ⇄ SpmVocab.
 *
 * Accepted layout (tokenizers ≥ 0.13): model {type "BPE", vocab {piece: id}, merges ["a b", ...] or
 * [["a", "b"], ...], unk_token, byte_fallback}, added_tokens [{id, content, special}], and the
 * "▁" handling as either normalizer Sequence[Prepend("▁"), Replace(" " → "▁")] (Llama 2) or
 * pre_tokenizer Metaspace (newer files). Byte-level (GPT-2 / Llama 3) files are refused.
 *
 * tokenizer.json has no scores. They are derived so that BPE by score repeats the merge order: the
 * piece made by the k-th distinct merged piece gets score -k, pieces no merge makes (single
 * characters) follow in id order, and special/byte pieces get 0. For a vocabulary converted from
 * SentencePiece this reproduces the original scores (0, -1, -2, ...). The writer emits merges in
 * that same order, every way of cutting a piece into two vocabulary pieces.
 * Types: model.unk_token → UNKNOWN, special added tokens → CONTROL, other added tokens →
 * USER_DEFINED, `<0xNN>` with byte_fallback → BYTE; UNUSED cannot be expressed and reads as NORMAL.
 * Unlike HF's own tokenizer, text like "<s>" is never parsed as a special token here.
 */
import { readFileSync } from 'node:fs';
import { decodeUtf8 } from '../util/utf8.js';
import { describe, Llama2Error, quote, plain } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { PieceType, type SpmVocab } from './vocab.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };
const isObj = (v: Json | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;
const SPACE = '\u2581';

export function readTokenizerJson(path: string): SpmVocab {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Llama2Error(`tokenizer.json ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return parseTokenizerJson(decodeUtf8(bytes, `tokenizer.json ${path}`), path);
}

export function parseTokenizerJson(text: string, name: string): SpmVocab {
  const what = `tokenizer.json ${name}`;
  let root: Json;
  try {
    root = JSON.parse(text) as Json;
  } catch (e) {
    throw new Llama2Error(`${what}: malformed JSON (${plain(e)})`);
  }
  const fail = (field: string, expected: string, found: Json | undefined): never => {
    throw new Llama2Error(`${what}: ${field}: expected ${expected} but found ${describe(found)}`);
  };
  if (!isObj(root)) return fail('top level', 'an object', root);
  const model = root.model;
  if (!isObj(model)) return fail('model', 'an object', model);
  if (model.type !== 'BPE') return fail('model.type', '"BPE" (the Llama tokenizer)', model.type);
  const vocabObj = model.vocab;
  if (!isObj(vocabObj)) return fail('model.vocab', 'an object mapping piece → id', vocabObj);

  // ids: model.vocab plus added tokens beyond it; they must cover 0..n-1 exactly once
  const byId = new Map<number, string>();
  const define = (piece: string, id: Json | undefined, field: string): void => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) fail(field, 'a non-negative integer id', id);
    const known = byId.get(id as number);
    if (known !== undefined && known !== piece) fail(field, `a free id (id ${id} is already ${quote(known)})`, piece);
    byId.set(id as number, piece);
  };
  for (const [piece, id] of Object.entries(vocabObj)) define(piece, id, `model.vocab[${quote(piece)}]`);
  const added = root.added_tokens ?? [];
  if (!Array.isArray(added)) return fail('added_tokens', 'an array', added);
  const special = new Map<string, boolean>();
  added.forEach((t, i) => {
    if (!isObj(t) || typeof t.content !== 'string') return fail(`added_tokens[${i}]`, 'an object with a string "content"', t);
    define(t.content, t.id, `added_tokens[${i}].id`);
    special.set(t.content, t.special === true);
  });
  const n = byId.size;
  const pieces: string[] = [];
  for (let id = 0; id < n; id++) {
    const p = byId.get(id);
    if (p === undefined) return fail('model.vocab', `ids 0..${n - 1} without gaps`, `no piece with id ${id}`);
    pieces.push(p);
  }
  const idOf = new Map(pieces.map((p, id) => [p, id]));
  if (idOf.size !== n) return fail('model.vocab', 'every piece once', 'a piece listed under two ids');

  // types
  const byteFallback = model.byte_fallback === true;
  const unkToken = model.unk_token ?? null;
  if (unkToken !== null && (typeof unkToken !== 'string' || !idOf.has(unkToken))) return fail('model.unk_token', 'null or a piece of the vocabulary', unkToken);
  const types = new Uint8Array(n).fill(PieceType.NORMAL);
  pieces.forEach((p, id) => {
    if (p === unkToken) types[id] = PieceType.UNKNOWN;
    else if (special.has(p)) types[id] = special.get(p) ? PieceType.CONTROL : PieceType.USER_DEFINED;
    else if (byteFallback && BYTE_PIECE.test(p)) types[id] = PieceType.BYTE;
  });

  // scores from merge order
  const merges = model.merges ?? [];
  if (!Array.isArray(merges)) return fail('model.merges', 'an array', merges);
  const scores = new Float32Array(n);
  const scored = new Uint8Array(n);
  let rank = 0;
  merges.forEach((m, i) => {
    let pair: Json[] | null = null;
    if (typeof m === 'string') {
      const cut = m.indexOf(' ');
      pair = cut > 0 ? [m.slice(0, cut), m.slice(cut + 1)] : null;
    } else if (Array.isArray(m)) {
      pair = m;
    }
    if (!pair || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      return fail(`model.merges[${i}]`, '"left right" or ["left", "right"]', m);
    }
    for (const side of pair as string[]) if (!idOf.has(side)) fail(`model.merges[${i}]`, 'pieces of model.vocab', side);
    const id = idOf.get((pair[0] as string) + (pair[1] as string));
    if (id === undefined) return fail(`model.merges[${i}]`, 'a merge whose result is in model.vocab', m);
    if (!scored[id] && types[id] === PieceType.NORMAL) {
      scored[id] = 1;
      scores[id] = -rank++;
    }
  });
  for (let id = 0; id < n; id++) if (types[id] === PieceType.NORMAL && !scored[id]) scores[id] = -rank++;

  const addDummyPrefix = readSpaceHandling(root, what);
  const template = readTemplate(root.post_processor, what);
  const pick = (piece: string | undefined): number => (piece !== undefined ? (idOf.get(piece) ?? -1) : -1);
  const bosId = template?.first !== undefined ? pick(template.first) : pick('<s>');
  const eosId = template?.last !== undefined ? pick(template.last) : pick('</s>');
  return {
    pieces, scores, types,
    bosId, eosId,
    unkId: pick(unkToken ?? undefined),
    padId: pick('<pad>'),
    addDummyPrefix,
    addBos: template ? template.first !== undefined : bosId >= 0,
    addEos: template ? template.last !== undefined : false,
  };
}

/** The "▁" rules: returns add_dummy_prefix; refuses anything that is not SentencePiece-like. */
function readSpaceHandling(root: Obj, what: string): boolean {
  let escapes = false;
  let prefix = false;
  const visit = (node: Json | undefined, where: string): void => {
    if (node === null || node === undefined) return;
    if (!isObj(node)) throw new Llama2Error(`${what}: ${where}: expected an object but found ${describe(node)}`);
    const list = node.normalizers ?? node.pretokenizers;
    if (node.type === 'Sequence' && Array.isArray(list)) return list.forEach((x, i) => visit(x, `${where}[${i}]`));
    if (node.type === 'Prepend' && node.prepend === SPACE) return void (prefix = true);
    if (node.type === 'Replace' && isObj(node.pattern) && node.pattern.String === ' ' && node.content === SPACE) return void (escapes = true);
    if (node.type === 'Metaspace' && (node.replacement ?? SPACE) === SPACE) {
      escapes = true;
      const scheme = node.prepend_scheme ?? (node.add_prefix_space === false ? 'never' : 'always');
      prefix = scheme !== 'never';
      return;
    }
    throw new Llama2Error(`${what}: ${where}: ${describe(node.type ?? null)} is not supported; expected SentencePiece-style "▁" handling (Prepend/Replace normalizers or a Metaspace pre_tokenizer) as in Llama 2`);
  };
  visit(root.normalizer, 'normalizer');
  visit(root.pre_tokenizer, 'pre_tokenizer');
  if (!escapes) {
    throw new Llama2Error(`${what}: nothing replaces " " with "▁" (no Replace normalizer or Metaspace pre_tokenizer); this is not a SentencePiece-style Llama tokenizer`);
  }
  return prefix;
}

/** TemplateProcessing's single-sequence template: the special tokens before and after "$A". */
function readTemplate(pp: Json | undefined, what: string): { first?: string; last?: string } | null {
  if (!isObj(pp)) return null;
  const procs = pp.type === 'Sequence' && Array.isArray(pp.processors) ? pp.processors : [pp];
  const tp = procs.find((p) => isObj(p) && p.type === 'TemplateProcessing');
  if (!isObj(tp)) return null;
  const single = tp.single;
  if (!Array.isArray(single)) throw new Llama2Error(`${what}: post_processor.single: expected an array but found ${describe(single)}`);
  const specialId = (item: Json | undefined): string | undefined => {
    const st = isObj(item) ? item.SpecialToken : undefined;
    return isObj(st) && typeof st.id === 'string' ? st.id : undefined;
  };
  const out: { first?: string; last?: string } = {};
  const first = specialId(single[0]);
  const last = single.length > 1 ? specialId(single[single.length - 1]) : undefined;
  if (first !== undefined) out.first = first;
  if (last !== undefined) out.last = last;
  return out;
}

/** The tokenizer.json text for `vocab` in the Llama 2 layout. */
export function serializeTokenizerJson(vocab: SpmVocab): string {
  const { pieces, types, scores } = vocab;
  const seen = new Set<string>();
  for (const p of pieces) {
    if (seen.has(p)) throw new Llama2Error(`tokenizer.json: cannot write piece ${JSON.stringify(p)} twice (model.vocab maps each piece to one id)`);
    seen.add(p);
  }
  const mergeable = (t: number): boolean => t === PieceType.NORMAL || t === PieceType.USER_DEFINED || t === PieceType.UNUSED;
  const idOf = new Map<string, number>();
  pieces.forEach((p, id) => { if (mergeable(types[id]!) && !idOf.has(p)) idOf.set(p, id); });
  const order = pieces.map((_, id) => id).filter((id) => mergeable(types[id]!));
  order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  const merges: [string, string][] = [];
  for (const id of order) {
    const p = pieces[id]!;
    const cuts: [number, number, string, string][] = [];
    for (let c = 1; c < p.length; c++) {
      const code = p.charCodeAt(c);
      if (code >= 0xdc00 && code <= 0xdfff) continue; // inside a surrogate pair
      const l = idOf.get(p.slice(0, c)), r = idOf.get(p.slice(c));
      if (l !== undefined && r !== undefined) cuts.push([l, r, p.slice(0, c), p.slice(c)]);
    }
    cuts.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    for (const [, , l, r] of cuts) merges.push([l, r]);
  }
  const anySpace = merges.some(([l, r]) => l.includes(' ') || r.includes(' '));
  const added = pieces.flatMap((p, id) => {
    const t = types[id]!;
    if (t !== PieceType.CONTROL && t !== PieceType.UNKNOWN && t !== PieceType.USER_DEFINED) return [];
    return [{ id, content: p, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t !== PieceType.USER_DEFINED }];
  });
  const bos = vocab.bosId >= 0 ? pieces[vocab.bosId]! : null;
  const eos = vocab.eosId >= 0 ? pieces[vocab.eosId]! : null;
  const single: Json[] = [];
  const specialTokens: Obj = {};
  if (vocab.addBos && bos !== null) {
    single.push({ SpecialToken: { id: bos, type_id: 0 } });
    specialTokens[bos] = { id: bos, ids: [vocab.bosId], tokens: [bos] };
  }
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  if (vocab.addEos && eos !== null) {
    single.push({ SpecialToken: { id: eos, type_id: 0 } });
    specialTokens[eos] = { id: eos, ids: [vocab.eosId], tokens: [eos] };
  }
  const normalizers: Json[] = [];
  if (vocab.addDummyPrefix) normalizers.push({ type: 'Prepend', prepend: SPACE });
  normalizers.push({ type: 'Replace', pattern: { String: ' ' }, content: SPACE });
  const doc = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'Sequence', normalizers },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing', single, pair: [...single, ...single.map(secondSequence)], special_tokens: specialTokens },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(vocab.addDummyPrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: vocab.unkId >= 0 ? pieces[vocab.unkId]! : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: types.some((t) => t === PieceType.BYTE),
      vocab: Object.fromEntries(pieces.map((p, id) => [p, id])),
      merges: anySpace ? merges : merges.map(([l, r]) => `${l} ${r}`),
    },
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

/** An item of the single-sequence template as it appears in the pair template's second half. */
function secondSequence(item: Json): Json {
  if (!isObj(item)) return item;
  if (isObj(item.Sequence)) return { Sequence: { id: 'B', type_id: 1 } };
  if (isObj(item.SpecialToken)) return { SpecialToken: { ...item.SpecialToken, type_id: 1 } };
  return item;
}

export function writeTokenizerJson(path: string, vocab: SpmVocab): void {
  writeFileAtomic(path, serializeTokenizerJson(vocab));
}
