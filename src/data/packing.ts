/**
 * Packing tokenized chat samples into fixed-length training rows of T positions (inputs x, targets
 * y = the next token, loss weights w on the targets). Sample i has L_i tokens (ids and the SFT mask
 * of chat/format.ts renderDialog) and contributes L_i − 1 positions: x = ids[0..L−1),
 * y = ids[1..L), w = mask[1..L). Three ways, as `--packing`:
 *
 *   block   (default) whole samples side by side, next-fit, until the next one does not fit; each
 *           is its own segment (positions restart, attention stays inside it: the training model's
 *           packedLayout), the rest of the row is padding. Packing changes no sample's loss.
 *   concat  the Llama 2 paper's plain concatenation: one token stream (every sample opens with BOS
 *           and each answer closes with EOS, so the separator is there), cut into rows of T
 *           positions; attention crosses sample boundaries. The last row is padded.
 *   none    one sample per row, padded.
 * Padding positions hold token 0 with weight 0. Samples longer than T + 1 tokens must be cut or
 * dropped by the caller (block and none need every sample to fit a row).
 *
 * An epoch's rows follow a sample order (the caller's seeded permutation), so a row's contents are
 * a pure function of (order, row index): resuming needs only the step counter.
 *
 * Legend: T = positions per row, L = tokens of a sample.
 */
import { Llama2Error } from '../util/errors.js';

export type Packing = 'block' | 'concat' | 'none';
export const PACKINGS: readonly Packing[] = ['block', 'concat', 'none'];

export interface TokenSample {
  ids: Int32Array; // (L)
  /** 1 where ids[i] is a token to learn (the target of position i − 1) */
  mask: Uint8Array; // (L)
}

export interface EpochRows {
  readonly rows: number;
  /** the loss weight row r carries (its answer tokens), without filling it */
  answers(r: number): number;
  /**
   * Writes row r into x, y, w at offset `off` (T entries each) and returns its segment lengths
   * (block: one per sample, padding excluded; the other packings: []).
   */
  fill(r: number, x: Int32Array, y: Int32Array, w: Float32Array, off: number): number[];
}

/** Rows of one epoch over samples taken in `order`. */
export function packEpoch(samples: readonly TokenSample[], order: ArrayLike<number>, T: number, packing: Packing): EpochRows {
  if (!(Number.isInteger(T) && T > 0)) throw new Llama2Error(`packing: T must be a positive integer, found ${T}`);
  for (let k = 0; k < order.length; k++) {
    const L = samples[order[k]!]!.ids.length;
    if (L < 2) throw new Llama2Error(`packing: sample ${order[k]} has ${L} token(s); a sample needs at least 2`);
    if (packing !== 'concat' && L - 1 > T) throw new Llama2Error(`packing: sample ${order[k]} has ${L} tokens, more than a row of T + 1 = ${T + 1}`);
  }
  return packing === 'concat' ? concatRows(samples, order, T) : groupRows(samples, order, T, packing);
}

/** block / none: rows as lists of whole samples. */
function groupRows(samples: readonly TokenSample[], order: ArrayLike<number>, T: number, packing: Packing): EpochRows {
  const rows: number[][] = [];
  let cur: number[] = [];
  let used = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    const n = samples[i]!.ids.length - 1;
    if (cur.length > 0 && (packing === 'none' || used + n > T)) {
      rows.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(i);
    used += n;
  }
  if (cur.length > 0) rows.push(cur);
  const weight = (i: number): number => {
    const m = samples[i]!.mask;
    let n = 0;
    for (let j = 1; j < m.length; j++) n += m[j]!;
    return n;
  };
  return {
    rows: rows.length,
    answers: (r) => rows[r]!.reduce((n, i) => n + weight(i), 0),
    fill(r, x, y, w, off) {
      const row = rows[r]!;
      const lengths: number[] = [];
      let t = 0;
      for (const i of row) {
        const s = samples[i]!;
        const n = s.ids.length - 1;
        for (let j = 0; j < n; j++) {
          x[off + t + j] = s.ids[j]!;
          y[off + t + j] = s.ids[j + 1]!;
          w[off + t + j] = s.mask[j + 1]!;
        }
        t += n;
        lengths.push(n);
      }
      pad(x, y, w, off + t, off + T);
      return packing === 'block' ? lengths : [];
    },
  };
}

/** concat: one stream of tokens cut into rows of T positions (T + 1 tokens, overlapping by one). */
function concatRows(samples: readonly TokenSample[], order: ArrayLike<number>, T: number): EpochRows {
  const start = new Float64Array(order.length + 1); // stream offset of each sample in order
  for (let k = 0; k < order.length; k++) start[k + 1] = start[k]! + samples[order[k]!]!.ids.length;
  const total = start[order.length]!;
  const rows = Math.max(1, Math.ceil((total - 1) / T));
  const maskSum = new Float64Array(total + 1); // maskSum[p] = Σ mask over stream positions < p
  for (let k = 0, p = 0; k < order.length; k++) {
    for (const m of samples[order[k]!]!.mask) {
      maskSum[p + 1] = maskSum[p]! + m;
      p++;
    }
  }
  /** index k of the sample holding stream position p (start[k] ≤ p < start[k+1]) */
  const sampleAt = (p: number): number => {
    let lo = 0;
    let hi = order.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (start[mid]! <= p) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  return {
    rows,
    // targets of row r are stream positions p0 + 1 … p0 + n
    answers: (r) => maskSum[Math.min(total, r * T + T + 1)]! - maskSum[r * T + 1]!,
    fill(r, x, y, w, off) {
      const p0 = r * T;
      const n = Math.min(T, total - 1 - p0); // positions with a target in this row
      let k = sampleAt(p0);
      const tokenAt = (p: number): [number, number] => {
        while (p >= start[k + 1]!) k++;
        const s = samples[order[k]!]!;
        const j = p - start[k]!;
        return [s.ids[j]!, s.mask[j]!];
      };
      for (let t = 0; t < n; t++) {
        x[off + t] = tokenAt(p0 + t)[0];
        const [id, m] = tokenAt(p0 + t + 1);
        y[off + t] = id;
        w[off + t] = m;
      }
      pad(x, y, w, off + n, off + T);
      return [];
    },
  };
}

function pad(x: Int32Array, y: Int32Array, w: Float32Array, from: number, to: number): void {
  x.fill(0, from, to);
  y.fill(0, from, to);
  w.fill(0, from, to);
}
