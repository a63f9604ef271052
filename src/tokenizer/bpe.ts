/**
 * The SentencePiece BPE merge loop: a doubly linked list of symbols over the normalized string and
 * a 4-ary min-heap of candidate pairs ordered by (rank of the merged piece's score, left index),
 * i.e. highest score first, leftmost on ties. Each merge pushes at most two new pairs, so N symbols
 * cost O(N log N) — no rescans, and no strings are built in the loop. The text is first cut where
 * no piece could ever span the boundary (two characters never adjacent inside any piece); the runs
 * between cuts merge independently, which gives the same result with small, cache-resident heaps.
 *
 * Symbols carry integer keys instead of text: the id of the mergeable piece they spell, a private
 * key (>= vocab size) for a lone character that occurs inside some piece but is not one itself, or
 * -1 for a symbol that can never merge. `(left key, right key) → merged id` is a sorted table
 * (CSR rows per left key), precomputed from every way of cutting every piece in two.
 * A heap entry is stale when either side was absorbed or grew after it was pushed; as in
 * sentencepiece this shows as a mismatch between the stored merged length and the sides' lengths.
 *
 * What it is not: it knows nothing about ids on output, byte fallback or normalization
 * (tokenizer.ts does those).
 */
import { PieceType } from './vocab.js';

/** What the merge loop needs from a vocabulary (built once per tokenizer by buildMergeTable). */
export interface MergeTable {
  /** code point → key of the one-character symbol: its piece id, or a private key >= the number of
   * pieces when the character only occurs inside pieces (absent: the character never merges) */
  readonly charKey: Map<number, number>;
  /** for left key a: candidate right keys rights[rowStart[a] .. rowStart[a+1]), ascending */
  readonly rowStart: Int32Array;
  readonly rights: Int32Array;
  /** merged piece id for each entry of `rights` */
  readonly merged: Int32Array;
  /** per id: 0 for the highest score, 1 for the next distinct score, ... */
  readonly rank: Int32Array;
  /** per id: 1 for UNUSED pieces (null when there are none) */
  readonly unused: Uint8Array | null;
  /** keyA * K + keyB for every two characters A, B that stand side by side in some piece
   * (K = number of keys): a boundary between any other two characters can never be merged over */
  readonly bigrams: Set<number>;
  readonly numKeys: number;
}

const isMergeable = (t: number): boolean => t === PieceType.NORMAL || t === PieceType.USER_DEFINED || t === PieceType.UNUSED;

export function buildMergeTable(pieces: readonly string[], types: Uint8Array, scores: Float32Array): MergeTable {
  const V = pieces.length;
  const pieceId = new Map<string, number>();
  for (let id = 0; id < V; id++) if (isMergeable(types[id]!) && !pieceId.has(pieces[id]!)) pieceId.set(pieces[id]!, id);
  const charKey = new Map<number, number>();
  let nextKey = V;
  for (const [piece, id] of pieceId) {
    const chars = Array.from(piece);
    if (chars.length === 1) charKey.set(chars[0]!.codePointAt(0)!, id);
  }
  for (const piece of pieceId.keys()) {
    for (const ch of piece) {
      const cp = ch.codePointAt(0)!;
      if (!charKey.has(cp)) charKey.set(cp, nextKey++);
    }
  }
  /** the key of the symbol spelled piece[from..to), or -1 when no symbol can be spelled so */
  const keyOf = (piece: string, from: number, to: number): number => {
    const cp = piece.codePointAt(from)!;
    if (to - from === (cp > 0xffff ? 2 : 1)) return charKey.get(cp) ?? -1; // single-character pieces included
    return pieceId.get(piece.slice(from, to)) ?? -1;
  };
  const K = nextKey;
  const bigrams = new Set<number>();
  for (const piece of pieceId.keys()) {
    let prevKey = -1;
    for (const ch of piece) {
      const k = charKey.get(ch.codePointAt(0)!)!;
      if (prevKey >= 0) bigrams.add(prevKey * K + k);
      prevKey = k;
    }
  }
  // (left key, right key) → merged id for every cut of every piece, as a table sorted by pair
  const mergedOf = new Map<number, number>(); // left * K + right → merged id
  for (const [piece, id] of pieceId) {
    for (let cut = 1; cut < piece.length; cut++) {
      const c = piece.charCodeAt(cut);
      if (c >= 0xdc00 && c <= 0xdfff) continue; // inside a surrogate pair
      const a = keyOf(piece, 0, cut);
      const b = a < 0 ? -1 : keyOf(piece, cut, piece.length);
      if (b >= 0) mergedOf.set(a * K + b, id); // one piece per spelling, so no clashes
    }
  }
  const pairs = Float64Array.from(mergedOf.keys()).sort(); // (P) ascending: by left key, then right key
  const rowStart = new Int32Array(K + 1);
  const rights = new Int32Array(pairs.length);
  const merged = new Int32Array(pairs.length);
  pairs.forEach((pair, j) => {
    const a = Math.floor(pair / K);
    rowStart[a + 1]!++;
    rights[j] = pair - a * K;
    merged[j] = mergedOf.get(pair)!;
  });
  for (let a = 0; a < K; a++) rowStart[a + 1]! += rowStart[a]!;

  const distinct = Array.from(new Set(Array.from(scores).filter((x) => !Number.isNaN(x)))).sort((x, y) => y - x);
  const rankOf = new Map(distinct.map((s, r) => [s, r]));
  const rank = Int32Array.from(scores, (s) => rankOf.get(s) ?? distinct.length);
  let unused: Uint8Array | null = null;
  for (let id = 0; id < V; id++) if (types[id] === PieceType.UNUSED) (unused ??= new Uint8Array(V))[id] = 1;
  return { charKey, rowStart, rights, merged, rank, unused, bigrams, numKeys: K };
}

/** merged id for the pair (a, b), or -1 */
function lookupPair(t: MergeTable, a: number, b: number): number {
  let lo = t.rowStart[a]!;
  let hi = t.rowStart[a + 1]! - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = t.rights[mid]!;
    if (r === b) return t.merged[mid]!;
    if (r < b) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

const LEFT_RANGE = 2 ** 32; // heap key = rank * 2^32 + left index (exact below 2^53)
const ARITY = 4; // a 4-ary heap: half the levels of a binary one, and siblings share a cache line

/** Growable 4-ary min-heap of pairs: key (rank, left), right index, merged length. */
class PairHeap {
  private key = new Float64Array(1024);
  private right = new Int32Array(1024);
  private size = new Int32Array(1024);
  length = 0;

  push(key: number, right: number, size: number): void {
    if (this.length === this.key.length) {
      const grow = <T extends Float64Array | Int32Array>(a: T, b: T): T => (b.set(a), b);
      this.key = grow(this.key, new Float64Array(2 * this.length));
      this.right = grow(this.right, new Int32Array(2 * this.length));
      this.size = grow(this.size, new Int32Array(2 * this.length));
    }
    let i = this.length++;
    while (i > 0) { // sift the hole up
      const p = ((i - 1) / ARITY) | 0;
      if (this.key[p]! <= key) break;
      this.key[i] = this.key[p]!; this.right[i] = this.right[p]!; this.size[i] = this.size[p]!;
      i = p;
    }
    this.key[i] = key; this.right[i] = right; this.size[i] = size;
  }

  /** Removes the top entry; returns its fields through `out` ([left, right, size]). */
  pop(out: Int32Array): void {
    out[0] = this.key[0]! % LEFT_RANGE; out[1] = this.right[0]!; out[2] = this.size[0]!;
    const n = --this.length;
    if (n === 0) return;
    const key = this.key[n]!, right = this.right[n]!, size = this.size[n]!;
    let i = 0;
    for (;;) { // sift the hole down
      const first = ARITY * i + 1;
      if (first >= n) break;
      let c = first;
      const last = Math.min(first + ARITY, n);
      for (let j = first + 1; j < last; j++) if (this.key[j]! < this.key[c]!) c = j;
      if (this.key[c]! >= key) break;
      this.key[i] = this.key[c]!; this.right[i] = this.right[c]!; this.size[i] = this.size[c]!;
      i = c;
    }
    this.key[i] = key; this.right[i] = right; this.size[i] = size;
  }
}

/**
 * Runs BPE over `text` split into initial symbols at `bounds` (symbol k = [bounds[k], bounds[k+1]))
 * with keys `keys` (-1: never merges, e.g. a user-defined piece). Returns the final symbols as
 * [start, end, key] triples; key is a piece id when the symbol was produced by a merge.
 * `onUnusedPair` hears every pushed pair whose merged piece is UNUSED (sentencepiece records these
 * to split such pieces back afterwards).
 */
export function bpeMerge(
  text: string,
  bounds: Int32Array,
  keys: Int32Array,
  table: MergeTable,
  onUnusedPair?: (piece: string, left: string, right: string) => void,
): Int32Array {
  const n = bounds.length - 1;
  const start = bounds.slice(0, n); // (n) symbol start offsets
  const end = bounds.slice(1); // (n) symbol end offsets; end == start marks an absorbed symbol
  const key = keys.slice(0, n); // (n)
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    prev[k] = k - 1;
    next[k] = k + 1 < n ? k + 1 : -1;
  }
  const { rank, unused } = table;
  const heap = new PairHeap();

  const tryPair = (l: number, r: number): void => {
    if (l < 0 || r < 0) return;
    const a = key[l]!, b = key[r]!;
    if (a < 0 || b < 0) return;
    const id = lookupPair(table, a, b);
    if (id < 0) return;
    heap.push(rank[id]! * LEFT_RANGE + l, r, end[r]! - start[l]!);
    if (unused !== null && unused[id] && onUnusedPair) {
      onUnusedPair(text.slice(start[l]!, end[r]!), text.slice(start[l]!, end[l]!), text.slice(start[r]!, end[r]!));
    }
  };

  // Runs of symbols that no piece can span are independent: merge each run on its own, which
  // gives the same result and keeps the heap small (and in cache).
  const { bigrams, numKeys } = table;
  const top = new Int32Array(3);
  let segStart = 0;
  while (segStart < n) {
    let segEnd = segStart + 1;
    while (segEnd < n) {
      const a = key[segEnd - 1]!, b = key[segEnd]!;
      if (a < 0 || b < 0 || !bigrams.has(a * numKeys + b)) break;
      segEnd++;
    }
    for (let k = segStart + 1; k < segEnd; k++) tryPair(k - 1, k);
    segStart = segEnd;
    while (heap.length > 0) {
      heap.pop(top);
      const l = top[0]!, r = top[1]!;
      const ll = end[l]! - start[l]!, rl = end[r]! - start[r]!;
      if (ll === 0 || rl === 0 || ll + rl !== top[2]) continue; // stale
      key[l] = lookupPair(table, key[l]!, key[r]!);
      end[l] = end[r]!;
      const nr = next[r]!;
      next[l] = nr;
      if (nr >= 0) prev[nr] = l;
      end[r] = start[r]!;
      tryPair(prev[l]!, l);
      tryPair(l, nr);
    }
  }

  let count = 0;
  for (let k = n > 0 ? 0 : -1; k >= 0; k = next[k]!) count++;
  const out = new Int32Array(3 * count);
  let j = 0;
  for (let k = n > 0 ? 0 : -1; k >= 0; k = next[k]!) {
    out[j++] = start[k]!;
    out[j++] = end[k]!;
    out[j++] = key[k]!;
  }
  return out;
}
