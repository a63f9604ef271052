/**
 * Reward modelling (Llama 2 paper, section 3.2.2): the trunk is the language model without its
 * output layer; a `score.weight` (1, C) head without bias reads the final-RMSNorm'ed hidden state
 * at the last real token (index length−1) of each right-padded row. Pairs are trained with the
 * binary ranking loss with a rating-dependent margin:
 *   loss = −log σ(r_chosen − r_rejected − m(rating)) = softplus(−(d − m))
 * Ratings index [significantly better, better, slightly better, negligibly better / unsure].
 *
 * The safety reward model also has an auxiliary loss (safetyAuxLoss below).
 *
 * Not here: the trunk forward (model.ts), the data pipeline, PPO.
 *
 * Legend: B = rows (pairs), T = padded length, C = dim.
 */
import { Llama2Error } from '../util/errors.js';
import { LEVELS } from '../data/preferences.js';
import type { Tape, Var } from './tape.js';
import type { LossResult } from './loss.js';
import { forwardHidden, type TrainModel } from './model.js';

/** The paper's four ratings, indexed like the margin tables (data/preferences.ts LEVELS: the same order). */
export const RATING_NAMES = LEVELS;
/** Llama 2 paper, Table 27, indexed like RATING_NAMES. */
export const MARGIN_SMALL: readonly number[] = [1, 2 / 3, 1 / 3, 0];
export const MARGIN_LARGE: readonly number[] = [3, 2, 1, 0];

/** Margins of each pair from its rating index (throws on an unknown rating). */
export function marginsFor(ratings: ArrayLike<number>, table: readonly number[]): Float64Array {
  const m = new Float64Array(ratings.length);
  for (let i = 0; i < ratings.length; i++) {
    const r = ratings[i]!;
    const v = table[r];
    if (v === undefined) throw new Llama2Error(`reward: rating ${r} of pair ${i} is not an index into ${table.length} margins (0..${table.length - 1})`);
    m[i] = v;
  }
  return m;
}

/** softplus(z) = log(1 + e^z), finite for any z. */
export function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** r (B) = score · hidden[b*T + lengths[b] − 1] for hidden (B*T, C) and score (1, C). */
export function lastTokenScores(tape: Tape, hidden: Var, T: number, lengths: ArrayLike<number>, score: Var): Var {
  const C = score.data.length;
  const B = lengths.length;
  if (hidden.data.length !== B * T * C) throw new Llama2Error(`reward: hidden has ${hidden.data.length} values, expected B×T×C = ${B}×${T}×${C}`);
  const idx = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const len = lengths[b]!;
    if (!(Number.isInteger(len) && len >= 1 && len <= T)) throw new Llama2Error(`reward: length ${len} of row ${b} must be in 1..${T}`);
    idx[b] = (b * T + len - 1) * C;
  }
  const r = tape.output([B], hidden, score);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let i = 0; i < C; i++) s += score.data[i]! * hidden.data[idx[b]! + i]!;
    r.data[b] = s;
  }
  tape.record(r, (dr) => {
    const dh = hidden.requiresGrad ? tape.grad(hidden) : null;
    const dw = score.requiresGrad ? tape.grad(score) : null;
    for (let b = 0; b < B; b++) {
      const g = dr[b]!;
      const o = idx[b]!;
      for (let i = 0; i < C; i++) {
        if (dh) dh[o + i] = dh[o + i]! + g * score.data[i]!;
        if (dw) dw[i] = dw[i]! + g * hidden.data[o + i]!;
      }
    }
  });
  return r;
}

/** Scalar rewards (B) of right-padded token rows (B*T) with their lengths. */
export function rewardScores(tape: Tape, m: TrainModel, score: Var, tokens: Int32Array, lengths: ArrayLike<number>, T: number): Var {
  const hidden = forwardHidden(tape, m, tokens, lengths.length, T);
  return lastTokenScores(tape, hidden, T, lengths, score);
}

export interface RankingResult extends LossResult {
  /** per-pair losses softplus(−(d − m)), float64 */
  perPair: Float64Array;
}

/** mean over pairs of softplus(−(r_c − r_r − m)); margins default to 0. */
export function rankingLoss(tape: Tape, chosen: Var, rejected: Var, margins?: ArrayLike<number>): RankingResult {
  const P = chosen.data.length;
  if (rejected.data.length !== P) throw new Llama2Error(`ranking loss: ${P} chosen scores but ${rejected.data.length} rejected`);
  if (margins && margins.length !== P) throw new Llama2Error(`ranking loss: ${margins.length} margins for ${P} pairs`);
  const perPair = new Float64Array(P);
  const z = new Float64Array(P); // −(d − m)
  let sum = 0;
  for (let i = 0; i < P; i++) {
    z[i] = -(chosen.data[i]! - rejected.data[i]! - (margins ? margins[i]! : 0));
    perPair[i] = softplus(z[i]!);
    sum += perPair[i]!;
  }
  const value = sum / P;
  const loss = tape.output([1], chosen, rejected);
  loss.data[0] = value;
  tape.record(loss, (dl) => {
    // d/dd softplus(−(d − m)) = −σ(−(d − m)) = −σ(z)
    for (let i = 0; i < P; i++) {
      const zi = z[i]!;
      const sig = zi >= 0 ? 1 / (1 + Math.exp(-zi)) : Math.exp(zi) / (1 + Math.exp(zi));
      const g = (-dl[0]! * sig) / P;
      if (chosen.requiresGrad) {
        const gc = tape.grad(chosen);
        gc[i] = gc[i]! + g;
      }
      if (rejected.requiresGrad) {
        const gr = tape.grad(rejected);
        gr[i] = gr[i]! - g;
      }
    }
  });
  return { loss, value, perPair };
}

/**
 * The safety auxiliary loss (Llama 2 paper, §A.3.6, our exact definition): each answer with a
 * safety label is a binary classification by its raw score — safe answers pushed above 0, unsafe
 * ones below (σ(r) = 0.5 is the decision boundary) — with the logistic loss, averaged over the
 * labelled answers:
 *   aux = mean over labelled answers of softplus(−r) (safe) or softplus(r) (unsafe)
 * `safe[i]` labels chosen[i], `safeRejected[i]` labels rejected[i]; null leaves an answer out (no
 * label). Why: the ranking loss only orders two answers; this gives the safety model an absolute
 * scale on which "unsafe" means a low score, what the safety gate R_safety < 0.15 needs.
 */
export function safetyAuxLoss(
  tape: Tape, chosen: Var, rejected: Var, safe: ArrayLike<boolean | null>, safeRejected: ArrayLike<boolean | null>,
): LossResult & { count: number } {
  const P = chosen.data.length;
  if (rejected.data.length !== P || safe.length !== P || safeRejected.length !== P) {
    throw new Llama2Error(`safety aux loss: ${P} chosen scores, ${rejected.data.length} rejected, ${safe.length} + ${safeRejected.length} labels`);
  }
  const terms: [Var, number, number][] = []; // (scores, index, sign: +1 safe, −1 unsafe)
  for (let i = 0; i < P; i++) {
    const a = safe[i];
    const b = safeRejected[i];
    if (a !== null && a !== undefined) terms.push([chosen, i, a ? 1 : -1]);
    if (b !== null && b !== undefined) terms.push([rejected, i, b ? 1 : -1]);
  }
  const n = terms.length;
  let sum = 0;
  for (const [v, i, sg] of terms) sum += softplus(-sg * v.data[i]!);
  const loss = tape.output([1], chosen, rejected);
  loss.data[0] = n > 0 ? sum / n : 0;
  tape.record(loss, (dl) => {
    // d/dr softplus(−s·r) = −s·σ(−s·r)
    for (const [v, i, sg] of terms) {
      if (!v.requiresGrad) continue;
      const z = -sg * v.data[i]!;
      const sig = z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
      const g = tape.grad(v);
      g[i] = g[i]! + (dl[0]! * -sg * sig) / n;
    }
  });
  return { loss, value: loss.data[0]!, count: n };
}

/** a + w·b for two scalar losses (one backward through both). */
export function addLosses(tape: Tape, a: Var, b: Var, w: number): Var {
  if (a.data.length !== 1 || b.data.length !== 1) throw new Llama2Error('addLosses: expected two scalar losses');
  const out = tape.output([1], a, b);
  out.data[0] = a.data[0]! + w * b.data[0]!;
  tape.record(out, (d) => {
    if (a.requiresGrad) tape.grad(a)[0]! += d[0]!;
    if (b.requiresGrad) tape.grad(b)[0]! += w * d[0]!;
  });
  return out;
}
