/**
 * A SentencePiece-style BPE trainer with Llama's settings: byte_fallback, split_digits,
 * add_dummy_prefix, identity normalization, max piece length 16, split_by_unicode_script,
 * allow_whitespace_only_pieces, character_coverage. The result is an SpmVocab laid out as
 * sentencepiece lays out a trained BPE model:
 *
 *   0 <unk> (UNKNOWN), 1 <s>, 2 </s> (CONTROL)              score 0
 *   3..258 <0x00>..<0xFF> (BYTE)                             score 0
 *   merged pieces in the order they were learned (NORMAL)    score 0, -1, -2, ...
 *   the covered characters, most frequent first (NORMAL)     scores going on from the merges
 *
 *   const counts = new WordCounts();
 *   counts.addText(corpusText);                 // lines = sentences, as spm_train reads a file
 *   const { vocab } = trainBpe(counts, { vocabSize: 512 });
 *   writeTokenizerModel('tokenizer.model', vocab);
 *
 * Training data: each line is a sentence (newlines never reach a piece; at encode time they fall
 * back to the <0x0A> byte, as in Llama); unlike spm_train, long lines are not skipped. A sentence
 * is normalized like the encoder does (" " → "▁", a "▁" in front) and cut into words, each a run
 * of "▁" followed by non-"▁" characters, so pieces never cross a word: "▁" only at the start of a
 * piece, or a piece of "▁" only. A piece never mixes Unicode scripts (Hiragana/Katakana count as
 * Han; combining marks go with anything), never holds a digit unless it is that one digit, and is
 * at most `maxPieceLength` characters long. Characters outside the coverage never merge and get no
 * piece (the encoder spells them as bytes).
 *
 * Algorithm: count words once; lay the distinct words out as linked lists of symbols; keep, per
 * pair, its count (weighted by word counts) and the positions where it may occur; a max-heap of
 * (count, pair) with lazy invalidation picks each merge, which then touches only its own sites
 * and their neighbours. Ties on count go to the pair of older symbols (sentencepiece breaks them
 * differently; any order gives a valid model). Two different pairs that spell the same string
 * ("aa"+"a", "a"+"aa") share one piece.
 *
 * What it is not: the encoder (tokenizer.ts), a unigram trainer, or a file writer (load.ts).
 */
import { Llama2Error, check } from '../util/errors.js';
import { PieceType, type SpmVocab } from './vocab.js';

const SPACE = '\u2581'; // "▁"

export interface BpeTrainOptions {
  /** total pieces, counting the 3 special and 256 byte pieces */
  vocabSize: number;
  /** share of character occurrences that get a piece of their own (default 0.9995) */
  characterCoverage?: number;
  /** longest piece in characters (default 16) */
  maxPieceLength?: number;
  /** keep every digit a piece of its own (default true) */
  splitDigits?: boolean;
  /** default true: fail when the corpus cannot fill vocabSize; false: return a smaller vocabulary */
  hardVocabLimit?: boolean;
}

export interface BpeTrainStats {
  sentences: number;
  words: number;
  distinctWords: number;
  /** characters with a piece of their own */
  characters: number;
  /** share of character occurrences they cover */
  coverage: number;
  merges: number;
  seconds: number;
}

/** Word counts of a corpus, built incrementally (memory grows with distinct words only). */
export class WordCounts {
  readonly counts = new Map<string, number>();
  sentences = 0;
  words = 0;

  /** Adds a text; each line is one sentence, empty lines are skipped. */
  addText(text: string): void {
    for (const line of text.split('\n')) if (line.length > 0) this.addSentence(line);
  }

  /** Adds one sentence (no newline inside), normalized as the encoder does. */
  addSentence(sentence: string, weight = 1): void {
    const norm = SPACE + sentence.replaceAll(' ', SPACE);
    this.sentences++;
    for (const w of norm.match(WORD)!) {
      this.counts.set(w, (this.counts.get(w) ?? 0) + weight);
      this.words += weight;
    }
  }
}
/** a run of "▁" and the non-"▁" characters after it, or a leading run without "▁" */
const WORD = /\u2581+[^\u2581]*|[^\u2581]+/g;

// ---- unicode script classes --------------------------------------------------------------------

const SCRIPTS = [
  'Latin', 'Greek', 'Cyrillic', 'Armenian', 'Hebrew', 'Arabic', 'Syriac', 'Thaana', 'Devanagari', 'Bengali',
  'Gurmukhi', 'Gujarati', 'Oriya', 'Tamil', 'Telugu', 'Kannada', 'Malayalam', 'Sinhala', 'Thai', 'Lao', 'Tibetan',
  'Myanmar', 'Georgian', 'Hangul', 'Ethiopic', 'Cherokee', 'Khmer', 'Mongolian', 'Han', 'Bopomofo', 'Common',
].map((name) => new RegExp(`^\\p{Script=${name}}$`, 'u'));
const HAN = SCRIPTS.findIndex((r) => r.source.includes('Han'));
const KANA = /^[\p{Script=Hiragana}\p{Script=Katakana}\u30fc]$/u;
const INHERITED = /^\p{Script=Inherited}$/u;
const DIGIT = /^\p{Nd}$/u;
/** script class of a character: an index, ANY_SCRIPT for combining marks, or 1000+ for others */
const ANY_SCRIPT = -1;
const scriptCache = new Map<string, number>();
function scriptOf(ch: string): number {
  let s = scriptCache.get(ch);
  if (s === undefined) {
    if (KANA.test(ch)) s = HAN;
    else if (INHERITED.test(ch)) s = ANY_SCRIPT;
    else {
      s = SCRIPTS.findIndex((r) => r.test(ch));
      if (s < 0) s = 1000 + (ch.codePointAt(0)! >> 7); // an unlisted script: its 128-code-point block
    }
    scriptCache.set(ch, s);
  }
  return s;
}

// ---- symbols -----------------------------------------------------------------------------------

/** whitespace shape of a symbol: no "▁", one "▁" then other characters, only "▁" */
const WS_NONE = 0;
const WS_LEAD = 1;
const WS_ALL = 2;

class Symbols {
  readonly str: string[] = [];
  readonly len: number[] = []; // in code points
  readonly ws: number[] = [];
  readonly script: number[] = [];
  readonly frozen: boolean[] = []; // digits and the unknown symbol never merge
  readonly byString = new Map<string, number>();

  add(str: string, len: number, ws: number, script: number, frozen: boolean): number {
    const id = this.str.length;
    this.str.push(str);
    this.len.push(len);
    this.ws.push(ws);
    this.script.push(script);
    this.frozen.push(frozen);
    this.byString.set(str, id);
    return id;
  }

  /** can a and b merge into one piece? */
  canMerge(a: number, b: number, maxLen: number): boolean {
    if (this.frozen[a] || this.frozen[b] || this.len[a]! + this.len[b]! > maxLen) return false;
    const wa = this.ws[a]!;
    const wb = this.ws[b]!;
    if (wb !== WS_NONE) return wa === WS_ALL && wb === WS_ALL; // "▁" only at the start, or all "▁"
    if (wa === WS_ALL && this.len[a] !== 1) return false; // "▁▁x"
    const sa = this.script[a]!;
    const sb = this.script[b]!;
    return sa === ANY_SCRIPT || sb === ANY_SCRIPT || sa === sb;
  }

  /** adds (or finds) the symbol spelled by a+b; returns [id, isNew] */
  merge(a: number, b: number): [number, boolean] {
    const str = this.str[a]! + this.str[b]!;
    const old = this.byString.get(str);
    if (old !== undefined) return [old, false];
    const wa = this.ws[a]!;
    const ws = wa === WS_ALL && this.ws[b] === WS_ALL ? WS_ALL : wa === WS_ALL || wa === WS_LEAD ? WS_LEAD : WS_NONE;
    const sa = this.script[a]!;
    return [this.add(str, this.len[a]! + this.len[b]!, ws, sa === ANY_SCRIPT ? this.script[b]! : sa, false), true];
  }
}

// ---- pair heap ---------------------------------------------------------------------------------


/** Max-heap of (count, key); larger count first, then smaller key. Entries may be stale. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** removes the top; returns [count, key] */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastC = this.counts.pop()!;
    const lastK = this.keys.pop()!;
    const n = this.counts.length;
    if (n > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < n && this.above(l, m)) m = l;
        if (r < n && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

// ---- training ----------------------------------------------------------------------------------

function requiredCharacters(counts: Map<string, number>, coverage: number): { chars: [string, number][]; covered: number } {
  const freq = new Map<string, number>();
  for (const [w, n] of counts) for (const ch of w) freq.set(ch, (freq.get(ch) ?? 0) + n);
  const all = [...freq.entries()].sort((x, y) => y[1] - x[1] || x[0].codePointAt(0)! - y[0].codePointAt(0)!);
  let total = 0;
  for (const [, n] of all) total += n;
  const chars: [string, number][] = [];
  let acc = 0;
  // as sentencepiece: take characters, most frequent first, while the share covered so far is below the target
  for (const e of all) {
    if (acc / total >= coverage) break;
    chars.push(e);
    acc += e[1];
  }
  return { chars, covered: total > 0 ? acc / total : 1 };
}

/** Trains a BPE vocabulary on the counted words. */
export function trainBpe(corpus: WordCounts, opts: BpeTrainOptions): { vocab: SpmVocab; stats: BpeTrainStats } {
  const t0 = performance.now();
  const coverage = opts.characterCoverage ?? 0.9995;
  const maxLen = opts.maxPieceLength ?? 16;
  const splitDigits = opts.splitDigits ?? true;
  check(Number.isInteger(opts.vocabSize) && opts.vocabSize > 0 && opts.vocabSize <= 0x7fffffff,
    `tokenizer training: expected vocab_size to be a positive integer but found ${opts.vocabSize}`);
  check(coverage > 0 && coverage <= 1, `tokenizer training: expected character_coverage in (0, 1] but found ${coverage}`);
  check(Number.isInteger(maxLen) && maxLen >= 1, `tokenizer training: expected max piece length >= 1 but found ${maxLen}`);
  check(corpus.counts.size > 0, 'tokenizer training: the corpus is empty (no non-empty lines)');

  const { chars, covered } = requiredCharacters(corpus.counts, coverage);
  const fixed = 3 + 256;
  const mergesWanted = opts.vocabSize - fixed - chars.length;
  check(mergesWanted >= 0, () =>
    `tokenizer training: vocab_size ${opts.vocabSize} is too small: 3 special + 256 byte pieces + ${chars.length} characters need at least ${fixed + chars.length}; raise vocab_size or lower character_coverage`);

  const sym = new Symbols();
  for (const [ch] of chars) {
    sym.add(ch, 1, ch === SPACE ? WS_ALL : WS_NONE, ch === SPACE ? ANY_SCRIPT : scriptOf(ch), splitDigits && DIGIT.test(ch));
  }
  const unk = sym.add('\u0000unk', 1, WS_NONE, ANY_SCRIPT, true);
  // pair key = a * shift + b: symbol ids stay below vocabSize, so for vocabularies up to 32768
  // pieces the keys are small integers (fast Map keys); larger ones still stay exact doubles
  let shift = 1;
  while (shift < Math.max(opts.vocabSize, sym.str.length + 1)) shift *= 2;
  const pairKey = (a: number, b: number): number => a * shift + b;

  // every distinct word's symbols, one after another, as doubly linked lists (-1 ends a word)
  let total = 0;
  for (const w of corpus.counts.keys()) total += w.length; // UTF-16 units >= code points
  const symAt = new Int32Array(total); // symbol at a position; -1 once merged into its left neighbour
  const next = new Int32Array(total);
  const prev = new Int32Array(total);
  const freqAt = new Float64Array(total); // count of the word the position belongs to
  let used = 0;
  for (const [w, n] of corpus.counts) {
    const start = used;
    for (const ch of w) {
      symAt[used] = sym.byString.get(ch) ?? unk;
      freqAt[used] = n;
      prev[used] = used === start ? -1 : used - 1;
      next[used] = used + 1;
      used++;
    }
    next[used - 1] = -1;
  }

  // pair → count, and pair → left positions where it may occur (entries go stale, checked on use)
  const pairCount = new Map<number, number>();
  const pairAt = new Map<number, number[]>();
  const addPair = (pos: number, f: number): void => {
    const q = next[pos]!;
    if (q < 0 || !sym.canMerge(symAt[pos]!, symAt[q]!, maxLen)) return;
    const key = pairKey(symAt[pos]!, symAt[q]!);
    pairCount.set(key, (pairCount.get(key) ?? 0) + f);
    const list = pairAt.get(key);
    if (list) list.push(pos);
    else pairAt.set(key, [pos]);
    changed.add(key);
  };
  const dropPair = (pos: number, f: number): void => {
    const q = next[pos]!;
    if (q < 0 || !sym.canMerge(symAt[pos]!, symAt[q]!, maxLen)) return;
    const key = pairKey(symAt[pos]!, symAt[q]!);
    pairCount.set(key, pairCount.get(key)! - f);
    changed.add(key);
  };
  const changed = new Set<number>(); // pairs whose count moved during one merge
  for (let pos = 0; pos < used; pos++) addPair(pos, freqAt[pos]!);
  changed.clear();
  const heap = new PairHeap();
  for (const [key, n] of pairCount) heap.push(n, key);

  const merged: number[] = []; // symbol ids of new pieces, in order
  while (merged.length < mergesWanted && heap.size > 0) {
    const [count, key] = heap.pop();
    if (pairCount.get(key) !== count || count <= 0) continue; // stale entry
    const a = Math.floor(key / shift);
    const b = key - a * shift;
    const [c, isNew] = sym.merge(a, b);
    if (isNew) merged.push(c);
    const sites = pairAt.get(key)!.sort((x, y) => x - y); // left to right within each word
    pairAt.delete(key);
    for (const pos of sites) {
      const q = next[pos]!;
      if (symAt[pos] !== a || q < 0 || symAt[q] !== b) continue; // gone since it was noted
      const f = freqAt[pos]!;
      const p = prev[pos]!;
      if (p >= 0) dropPair(p, f);
      dropPair(pos, f);
      dropPair(q, f);
      symAt[pos] = c; // pos absorbs q
      symAt[q] = -1;
      const r = next[q]!;
      next[pos] = r;
      if (r >= 0) prev[r] = pos;
      if (p >= 0) addPair(p, f);
      addPair(pos, f);
    }
    for (const k of changed) {
      const v = pairCount.get(k)!;
      if (v > 0) heap.push(v, k);
      else {
        pairCount.delete(k);
        pairAt.delete(k);
      }
    }
    changed.clear();
  }
  if (merged.length < mergesWanted && (opts.hardVocabLimit ?? true)) {
    throw new Llama2Error(
      `tokenizer training: this corpus supports at most ${fixed + chars.length + merged.length} pieces but vocab_size is ${opts.vocabSize}; ` +
      'use a smaller vocab_size or more varied text');
  }

  const pieces = ['<unk>', '<s>', '</s>'];
  const types = [PieceType.UNKNOWN, PieceType.CONTROL, PieceType.CONTROL] as number[];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(PieceType.BYTE);
    scores.push(0);
  }
  let rank = 0;
  for (const id of [...merged, ...chars.map(([ch]) => sym.byString.get(ch)!)]) {
    pieces.push(sym.str[id]!);
    types.push(PieceType.NORMAL);
    scores.push(-rank++);
  }
  const vocab: SpmVocab = {
    pieces,
    scores: Float32Array.from(scores),
    types: Uint8Array.from(types),
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    addDummyPrefix: true,
    addBos: true,
    addEos: false,
  };
  const stats: BpeTrainStats = {
    sentences: corpus.sentences,
    words: corpus.words,
    distinctWords: corpus.counts.size,
    characters: chars.length,
    coverage: covered,
    merges: merged.length,
    seconds: (performance.now() - t0) / 1000,
  };
  return { vocab, stats };
}
