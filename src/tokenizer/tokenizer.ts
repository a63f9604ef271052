/**
 * The Llama tokenizer: SentencePiece BPE (sentencepiece 0.1.x `bpe_model.cc` +
 * `SentencePieceProcessor::Encode/Decode`) over an SpmVocab, whatever file it came from.
 *
 *   const tok = new Tokenizer(loadVocab('tokenizer.model'));
 *   tok.encode('Hello world', { bos: true });   // [1, ...]
 *   tok.decode(ids);                            // 'Hello world'
 *
 * encode: identity normalization (no NFKC), " " → "▁", a "▁" prepended to non-empty text
 * (add_dummy_prefix), user-defined pieces matched first and never merged, then BPE merges by piece
 * score (highest first, leftmost on ties), UNUSED pieces split back, and every character without a
 * piece becomes its UTF-8 `<0xNN>` byte pieces (byte fallback) or, without byte pieces, the unk id
 * (one per run of such characters, as sentencepiece does). Text such as "<s>" is plain text, never
 * a control token. Digits are not split here: a Llama vocabulary simply has no
 * multi-digit pieces (split_digits is a training option).
 * decode: control ids vanish, unk renders as " ⁇ ", runs of byte pieces are decoded as UTF-8 with
 * every stray byte rendered as U+FFFD, "▁" becomes " ", and the "▁" that starts the first visible
 * piece is dropped (it is the dummy prefix).
 *
 * Not here: reading files (load.ts), streaming decode (stream.ts), chat formatting (src/chat).
 */
import { check, Llama2Error } from '../util/errors.js';
import { bpeMerge, buildMergeTable, type MergeTable } from './bpe.js';
import { decodeByteRun, pushUtf8 } from './utf8.js';
import { PieceType, type SpmVocab } from './vocab.js';

export const SPACE_SYMBOL = '\u2581'; // "▁"
/** sentencepiece's default unk_surface */
export const UNK_SURFACE = ' \u2047 '; // " ⁇ "

export interface EncodeOptions {
  /** prepend the BOS id (default false, as sentencepiece; Llama's generate passes true) */
  bos?: boolean;
  /** append the EOS id (default false) */
  eos?: boolean;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

export class Tokenizer {
  readonly vocab: SpmVocab;
  /** pieces BPE can produce: NORMAL, USER_DEFINED, UNUSED (sentencepiece's `pieces_`) */
  private readonly mergeable = new Map<string, number>();
  /** CONTROL, UNKNOWN, BYTE pieces (sentencepiece's `reserved_id_map_`), looked up first */
  private readonly reserved = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1); // byte value → id of `<0xNN>`
  private readonly byteValue: Int16Array; // id → byte value, -1 when not a BYTE piece
  private readonly byteFallback: boolean;
  /** user-defined pieces by first UTF-16 unit, longest first; null when there are none */
  private readonly userDefined: Map<number, string[]> | null;
  private readonly table: MergeTable;
  /** mergeable id → id to emit (a reserved piece of the same spelling wins, as in sentencepiece) */
  private readonly outputId: Int32Array;

  constructor(vocab: SpmVocab) {
    const n = vocab.pieces.length;
    check(n > 0, 'tokenizer vocabulary: expected at least one piece but found none');
    check(vocab.scores.length === n && vocab.types.length === n, () =>
      `tokenizer vocabulary: expected ${n} scores and types (one per piece) but found ${vocab.scores.length} scores and ${vocab.types.length} types`);
    for (const [name, id] of [['bosId', vocab.bosId], ['eosId', vocab.eosId], ['unkId', vocab.unkId], ['padId', vocab.padId]] as const) {
      check(Number.isInteger(id) && id >= -1 && id < n, () => `tokenizer vocabulary: expected ${name} in -1..${n - 1} but found ${id}`);
    }
    this.vocab = vocab;
    this.byteValue = new Int16Array(n).fill(-1);
    const userDefined = new Map<number, string[]>();
    for (let id = 0; id < n; id++) {
      const piece = vocab.pieces[id]!;
      const type = vocab.types[id]!;
      const isMergeable = type === PieceType.NORMAL || type === PieceType.USER_DEFINED || type === PieceType.UNUSED;
      const map = isMergeable ? this.mergeable : this.reserved;
      if (!map.has(piece)) map.set(piece, id); // first definition wins (sentencepiece refuses duplicates)
      if (type === PieceType.USER_DEFINED && piece.length > 0) {
        const list = userDefined.get(piece.charCodeAt(0)) ?? [];
        list.push(piece);
        userDefined.set(piece.charCodeAt(0), list);
      }
      const m = type === PieceType.BYTE ? BYTE_PIECE.exec(piece) : null;
      if (m) {
        const b = parseInt(m[1]!, 16);
        this.byteValue[id] = b;
        if (this.byteIds[b]! < 0) this.byteIds[b] = id;
      }
    }
    for (const list of userDefined.values()) list.sort((a, b) => b.length - a.length);
    this.userDefined = userDefined.size > 0 ? userDefined : null;
    this.byteFallback = this.byteIds.some((id) => id >= 0);
    this.table = buildMergeTable(vocab.pieces, vocab.types, vocab.scores);
    this.outputId = Int32Array.from(vocab.pieces, (p, id) => this.reserved.get(p) ?? id);
  }

  get vocabSize(): number { return this.vocab.pieces.length; }
  get bosId(): number { return this.vocab.bosId; }
  get eosId(): number { return this.vocab.eosId; }
  get unkId(): number { return this.vocab.unkId; }
  get padId(): number { return this.vocab.padId; }
  get addDummyPrefix(): boolean { return this.vocab.addDummyPrefix; }

  idToPiece(id: number): string {
    this.checkId(id);
    return this.vocab.pieces[id]!;
  }

  /** The id of a piece spelled exactly so (control pieces included), or undefined. */
  pieceToId(piece: string): number | undefined {
    return this.reserved.get(piece) ?? this.mergeable.get(piece);
  }

  isControl(id: number): boolean { return this.vocab.types[id] === PieceType.CONTROL; }
  isByte(id: number): boolean { return (this.byteValue[id] ?? -1) >= 0; }
  /** The byte a `<0xNN>` piece stands for, or -1. */
  byteOf(id: number): number { return this.byteValue[id] ?? -1; }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (opts.bos) {
      check(this.bosId >= 0, 'tokenizer: BOS requested but the vocabulary has no BOS piece');
      ids.push(this.bosId);
    }
    if (text.length > 0) this.encodeText(text, ids);
    if (opts.eos) {
      check(this.eosId >= 0, 'tokenizer: EOS requested but the vocabulary has no EOS piece');
      ids.push(this.eosId);
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    const out: string[] = [];
    const bytes: number[] = [];
    let atStart = this.vocab.addDummyPrefix;
    for (const id of ids) {
      this.checkId(id);
      const b = this.byteValue[id]!;
      if (b >= 0) {
        bytes.push(b);
        atStart = false;
        continue;
      }
      if (bytes.length > 0) {
        decodeByteRun(bytes, 0, bytes.length, true, out);
        bytes.length = 0;
      }
      out.push(this.surface(id, atStart));
      if (!this.isControl(id)) atStart = false;
    }
    if (bytes.length > 0) decodeByteRun(bytes, 0, bytes.length, true, out);
    return out.join('');
  }

  /**
   * The text of one non-byte piece. `atStart`: no visible piece came before it, so the dummy-prefix
   * "▁" it starts with is dropped.
   */
  surface(id: number, atStart: boolean): string {
    const type = this.vocab.types[id];
    if (type === PieceType.CONTROL) return '';
    if (type === PieceType.UNKNOWN) return UNK_SURFACE;
    let piece = this.vocab.pieces[id]!;
    if (atStart && piece.startsWith(SPACE_SYMBOL)) piece = piece.slice(1);
    return piece.replaceAll(SPACE_SYMBOL, ' ');
  }

  checkId(id: number): void {
    if (!(Number.isInteger(id) && id >= 0 && id < this.vocab.pieces.length)) {
      throw new Llama2Error(`tokenizer: token id ${id} is outside the vocabulary (0..${this.vocab.pieces.length - 1})`);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // encoding

  private encodeText(text: string, ids: number[]): void {
    const s = this.normalize(text);
    const { bounds, keys } = this.initialSymbols(s);
    let revMerge: Map<string, [string, string]> | null = null;
    const onUnused = this.table.unused
      ? (piece: string, l: string, r: string) => void (revMerge ??= new Map()).set(piece, [l, r])
      : undefined;
    const syms = bpeMerge(s, bounds, keys, this.table, onUnused); // (3 * symbols): start, end, key
    const V = this.vocab.pieces.length;
    const run = { unk: false }; // the last id came from unknown text (runs of it share one unk id)
    for (let j = 0; j < syms.length; j += 3) {
      const key = syms[j + 2]!;
      const id = key >= 0 && key < V ? this.outputId[key]! : -1;
      if (id >= 0 && !this.table.unused?.[id]) { // the common case: no string work
        ids.push(id);
        run.unk = false;
      } else {
        this.emit(s.slice(syms[j]!, syms[j + 1]!), ids, revMerge, run);
      }
    }
  }

  /** identity normalization + whitespace escaping + dummy prefix; lone surrogates become U+FFFD */
  private normalize(text: string): string {
    const escaped = wellFormed(text).replaceAll(' ', SPACE_SYMBOL);
    return this.vocab.addDummyPrefix ? SPACE_SYMBOL + escaped : escaped;
  }

  /**
   * Splits into one symbol per code point, or per longest user-defined piece (which never merges:
   * key -1). Keys are those of bpe.ts: the symbol's piece id, a private key, or -1.
   */
  private initialSymbols(s: string): { bounds: Int32Array; keys: Int32Array } {
    const n = s.length;
    const bounds = new Int32Array(n + 1); // (symbols + 1) start offsets
    const keys = new Int32Array(n); // (symbols)
    const charKey = this.table.charKey;
    let k = 0;
    let i = 0;
    while (i < n) {
      bounds[k] = i;
      const cp = s.codePointAt(i)!; // normalize() left only valid surrogate pairs
      let len = cp > 0xffff ? 2 : 1;
      let key = charKey.get(cp) ?? -1;
      const candidates = this.userDefined?.get(s.charCodeAt(i));
      if (candidates) {
        const match = candidates.find((p) => s.startsWith(p, i));
        if (match !== undefined) {
          len = match.length;
          key = -1;
        }
      }
      keys[k] = key;
      i += len;
      k++;
    }
    bounds[k] = n;
    return { bounds: bounds.subarray(0, k + 1), keys: keys.subarray(0, k) };
  }

  /**
   * Appends the id(s) of one final symbol: split back if UNUSED, byte pieces if unknown and byte
   * fallback is on, else the unk id — once for a run of unknown symbols, as sentencepiece does.
   */
  private emit(piece: string, ids: number[], revMerge: Map<string, [string, string]> | null, run: { unk: boolean }): void {
    const id = this.reserved.get(piece) ?? this.mergeable.get(piece) ?? this.unkId;
    if (id >= 0 && this.table.unused?.[id]) {
      const split = revMerge?.get(piece);
      if (split) {
        this.emit(split[0], ids, revMerge, run);
        this.emit(split[1], ids, revMerge, run);
        return;
      }
    }
    if (id >= 0 && this.vocab.types[id] !== PieceType.UNKNOWN) {
      ids.push(id);
      run.unk = false;
      return;
    }
    if (this.byteFallback) {
      const bytes: number[] = [];
      for (const ch of piece) pushUtf8(ch.codePointAt(0)!, bytes);
      for (const b of bytes) ids.push(this.byteIds[b]! >= 0 ? this.byteIds[b]! : this.requireUnk(piece));
      run.unk = false;
      return;
    }
    if (!run.unk) ids.push(this.requireUnk(piece));
    run.unk = true;
  }

  private requireUnk(piece: string): number {
    if (this.unkId < 0) {
      const cp = piece.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      throw new Llama2Error(`tokenizer: cannot encode ${JSON.stringify(piece)} (U+${cp}): no piece, no byte pieces and no unknown piece in the vocabulary`);
    }
    return this.unkId;
  }
}

/** Replaces unpaired UTF-16 surrogates with U+FFFD (what a UTF-8 encoder would do). */
function wellFormed(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const pair = c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    if (pair) { i++; continue; }
    // slow path: rebuild (only for strings that actually hold a lone surrogate)
    const parts: string[] = [];
    for (const ch of s) {
      const cp = ch.codePointAt(0)!;
      parts.push(cp >= 0xd800 && cp <= 0xdfff ? '\uFFFD' : ch);
    }
    return parts.join('');
  }
  return s;
}
