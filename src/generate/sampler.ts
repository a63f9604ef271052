/**
 * Token sampling from a logits row: greedy, temperature, top-k, top-p (nucleus), min-p, and
 * repetition / frequency / presence penalties, driven by a seeded PRNG so a run is reproducible.
 *
 * Order of operations (Meta's generation.py for temperature and top-p; llama.cpp's penalties):
 *   penalties on raw logits → temperature 0 ⇒ argmax; else softmax(logits / T) → top-k → top-p → min-p
 *   → renormalise → draw.
 * This file knows nothing about tokenizers or models.
 */
import { Llama2Error } from '../util/errors.js';
import { Rng } from '../util/rng.js';

export interface SamplerOptions {
  /** 0 = greedy (argmax). Meta's chat default is 0.6. */
  temperature: number;
  /** keep the k most likely tokens; 0 = off */
  topK: number;
  /** keep the smallest set whose probability reaches p (Meta: 0.9); 1 = off */
  topP: number;
  /** drop tokens with probability < minP · p(max); 0 = off */
  minP: number;
  /** llama.cpp-style: divide positive / multiply negative logits of recent tokens; 1 = off */
  repetitionPenalty: number;
  /** OpenAI-style: logit −= frequencyPenalty · count; 0 = off */
  frequencyPenalty: number;
  /** OpenAI-style: logit −= presencePenalty if the token appeared; 0 = off */
  presencePenalty: number;
  /** how many recent tokens the penalties look at; −1 = all */
  penaltyLastN: number;
  /** PRNG seed; the same seed, prompt and options give the same tokens */
  seed: number;
}

export const DEFAULT_SAMPLER: Readonly<SamplerOptions> = {
  temperature: 0.6,
  topK: 0,
  topP: 0.9,
  minP: 0,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  penaltyLastN: 64,
  seed: 0,
};

/** Checks ranges; `flag` maps an option name to how the user wrote it (e.g. "--top-p"). */
export function validateSampler(o: SamplerOptions, flag: (k: keyof SamplerOptions) => string = (k) => k): void {
  const bad = (k: keyof SamplerOptions, want: string) => {
    throw new Llama2Error(`${flag(k)}: expected ${want}, found ${String(o[k])}`);
  };
  const finite = (k: keyof SamplerOptions) => {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) bad(k, 'a finite number');
  };
  (Object.keys(DEFAULT_SAMPLER) as (keyof SamplerOptions)[]).forEach(finite);
  if (o.temperature < 0) bad('temperature', 'a number ≥ 0 (0 = greedy)');
  if (!Number.isInteger(o.topK) || o.topK < 0) bad('topK', 'an integer ≥ 0 (0 = off)');
  if (!(o.topP > 0 && o.topP <= 1)) bad('topP', 'a number in (0, 1] (1 = off)');
  if (!(o.minP >= 0 && o.minP < 1)) bad('minP', 'a number in [0, 1) (0 = off)');
  if (!(o.repetitionPenalty > 0)) bad('repetitionPenalty', 'a number > 0 (1 = off)');
  if (!Number.isInteger(o.penaltyLastN) || o.penaltyLastN < -1) bad('penaltyLastN', 'an integer ≥ −1 (−1 = all)');
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) bad('seed', 'an integer in [0, 4294967295]');
}

export { Rng };

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let bv = row[0]!;
  for (let i = 1; i < row.length; i++) if (row[i]! > bv) { bv = row[i]!; best = i; }
  return best;
}

const ONE_BITS = 0x3f800000; // bits of 1.0f; probabilities are ≤ 1

/** Median of three keys of a[lo..hi) (the pivot of the selections below). */
function pivotOf(a: Float64Array, lo: number, hi: number): number {
  const x = a[lo]!, y = a[(lo + hi) >> 1]!, z = a[hi - 1]!;
  return x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
}

/**
 * Moves the keys of a[lo..hi) below `pivot` to the front, carrying pr (their probabilities, when
 * given) along; returns where they end and adds their probabilities into mass[0].
 */
function partition(a: Float64Array, pr: Float64Array | null, lo: number, hi: number, pivot: number, mass?: number[]): number {
  let i = lo;
  let m = 0;
  for (let j = lo; j < hi; j++) {
    const k = a[j]!;
    if (k < pivot) {
      a[j] = a[i]!; a[i] = k;
      if (pr) { const q = pr[j]!; pr[j] = pr[i]!; pr[i] = q; m += q; }
      i++;
    }
  }
  if (mass) mass[0] = m;
  return i;
}

/** Swaps the pivot (somewhere in a[i..)) to position i, with its probability. */
function placePivot(a: Float64Array, pr: Float64Array | null, i: number, p: number): void {
  const j = a.indexOf(p, i);
  a[j] = a[i]!; a[i] = p;
  if (pr) { const q = pr[j]!; pr[j] = pr[i]!; pr[i] = q; }
}

/** The k-th smallest (1-based) of the distinct keys a[0..n), 1 ≤ k ≤ n; reorders a. */
export function kthSmallest(a: Float64Array, n: number, k: number): number {
  let lo = 0, hi = n;
  for (;;) {
    const p = pivotOf(a, lo, hi);
    const i = partition(a, null, lo, hi, p); // [lo, i) < p; p itself is in [i, hi)
    const rank = i - lo + 1; // p's rank inside [lo, hi)
    if (k === rank) return p;
    if (k < rank) hi = i;
    else {
      placePivot(a, null, i, p); // continue after p
      k -= rank; lo = i + 1;
    }
  }
}

/**
 * Meta's nucleus rule over distinct keys in ascending order (most probable first): a token is
 * dropped once the mass of the tokens before it exceeds topP. Returns the key of the first
 * dropped token (the kept ones are the keys below it), or Infinity when none is dropped. pr[i]
 * is the probability of key a[i].
 * Weighted quickselect, O(n) expected; reorders a.
 */
export function nucleusBound(a: Float64Array, pr: Float64Array, n: number, topP: number): number {
  let lo = 0, hi = n, before = 0, bound = Infinity;
  const mass = [0];
  while (lo < hi) {
    const p = pivotOf(a, lo, hi);
    const i = partition(a, pr, lo, hi, p, mass);
    if (before + mass[0]! > topP) { // p is dropped; an earlier key may be the first dropped
      bound = p;
      hi = i;
    } else { // p is kept, and everything below it
      placePivot(a, pr, i, p);
      before += mass[0]! + pr[i]!;
      lo = i + 1;
    }
  }
  return bound;
}

/**
 * A faster implementation of one draw (Backend.sampleDraw, e.g. the native backend's): given the
 * penalised logits (overwritten with probabilities) and the uniform r, the id `draw` would pick, up
 * to float rounding of the probabilities; mass[0], when given, receives the kept ids' total
 * probability.
 */
export type DrawAccelerator = (
  w: Float32Array, temperature: number, topK: number, topP: number, minP: number, r: number, mass?: Float64Array,
) => number;

/** Stateful sampler: owns the PRNG and the history the penalties look at. */
export class Sampler {
  readonly opts: SamplerOptions;
  private readonly rng: Rng;
  private readonly accel: DrawAccelerator | undefined;
  private history: number[] = [];
  /**
   * ln of the probability the last `sample` call gave the id it drew, under the distribution it
   * drew from (penalties, temperature, top-k / top-p / min-p, renormalised over the kept ids);
   * 0 for greedy, whose distribution is a point mass.
   */
  lastLogProb = 0;
  private readonly mass = new Float64Array(1);
  private work = new Float32Array(0);
  private keys = new Float64Array(0);
  private probs = new Float64Array(0);

  /** `accel`: optional faster draw (the same PRNG draw feeds it, so seeds mean the same) */
  constructor(opts: Partial<SamplerOptions> = {}, accel?: DrawAccelerator) {
    this.opts = { ...DEFAULT_SAMPLER, ...opts };
    validateSampler(this.opts);
    this.rng = new Rng(this.opts.seed);
    this.accel = accel;
  }

  /** Tokens the penalties should see (e.g. the prompt); sampled tokens are added by `sample`. */
  observe(ids: readonly number[]): void {
    for (const id of ids) this.history.push(id);
  }

  /** Picks the next token from a logits row (V); the row is not modified. */
  sample(logits: Float32Array): number {
    const o = this.opts;
    if (o.temperature === 0 && !this.penalised()) { // greedy on the row itself: no working copy
      const id = argmax(logits);
      this.history.push(id);
      this.lastLogProb = 0;
      return id;
    }
    const V = logits.length;
    if (this.work.length !== V) this.work = new Float32Array(V);
    const w = this.work;
    w.set(logits);
    this.applyPenalties(w);
    let id: number;
    this.mass[0] = 1;
    if (o.temperature === 0) id = argmax(w);
    else if (this.accel) id = this.accel(w, o.temperature, o.topK, o.topP, o.minP, this.rng.next(), this.mass);
    else id = this.draw(w);
    // greedy: a point mass; a draw leaves the probabilities in w and the kept mass in this.mass
    this.lastLogProb = o.temperature === 0 ? 0 : Math.log(w[id]! / this.mass[0]!);
    this.history.push(id);
    return id;
  }

  private penalised(): boolean {
    const o = this.opts;
    return o.repetitionPenalty !== 1 || o.frequencyPenalty !== 0 || o.presencePenalty !== 0;
  }

  private applyPenalties(w: Float32Array): void {
    const o = this.opts;
    if (!this.penalised()) return;
    const h = o.penaltyLastN === -1 ? this.history : this.history.slice(Math.max(0, this.history.length - o.penaltyLastN));
    const counts = new Map<number, number>();
    for (const id of h) if (id >= 0 && id < w.length) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, n] of counts) {
      let v = w[id]!;
      if (o.repetitionPenalty !== 1) v = v > 0 ? v / o.repetitionPenalty : v * o.repetitionPenalty;
      v -= o.frequencyPenalty * n + o.presencePenalty;
      w[id] = v;
    }
  }

  /** softmax(w / T), then top-k / top-p / min-p filtering, then one draw. */
  private draw(w: Float32Array): number {
    const o = this.opts;
    const V = w.length;
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (w[i]! > max) max = w[i]!;
    let sum = 0;
    for (let i = 0; i < V; i++) {
      const e = Math.exp((w[i]! - max) / o.temperature);
      w[i] = e;
      sum += e;
    }
    for (let i = 0; i < V; i++) w[i] = w[i]! / sum; // probabilities
    if (o.topK === 0 && o.topP >= 1 && o.minP === 0) return this.pick(w, null, V);

    // Candidates: tokens that can survive the filters. Only tokens with p ≥ (1 − topP)/(V − 1)
    // can be inside the nucleus, which prunes most of V for a peaked distribution.
    const cutoff = o.topP < 1 ? (1 - o.topP) / Math.max(1, V - 1) : 0;
    const minCut = Math.max(cutoff, o.minP * w[argmax(w)]!);
    const idBits = Math.max(1, Math.ceil(Math.log2(V)));
    if (idBits > 21) return this.drawSorted(w, minCut); // keys below would pass 2^53
    // Each candidate is one float64 key, (bits of 1.0f − bits of p) · 2^idBits + id: for
    // non-negative floats the bit pattern grows with the value, so ascending keys are the
    // order Meta's sampler sorts in (p descending, ties by id), and every key is a distinct
    // integer below 2^53. The kept set is the keys below a bound found by selection, O(n),
    // instead of sorting 32000 candidates (~3 ms) for a flat distribution.
    const scale = 2 ** idBits;
    const bits = new Uint32Array(w.buffer, w.byteOffset, V);
    if (this.keys.length < V) { this.keys = new Float64Array(V); this.probs = new Float64Array(V); }
    const keys = this.keys, probs = this.probs;
    let n = 0;
    for (let i = 0; i < V; i++) {
      if (w[i]! >= minCut) { keys[n] = (ONE_BITS - bits[i]!) * scale + i; probs[n++] = w[i]!; }
    }
    let bound = Infinity; // kept: candidates with key < bound
    if (o.topP < 1) bound = nucleusBound(keys, probs, n, o.topP);
    if (o.topK > 0 && o.topK < n) bound = Math.min(bound, kthSmallest(keys, n, o.topK) + 1);
    // the draw walks ids in ascending order: the same distribution as walking the sorted list
    let total = 0;
    for (let i = 0; i < V; i++) if (w[i]! >= minCut && (ONE_BITS - bits[i]!) * scale + i < bound) total += w[i]!;
    this.mass[0] = total;
    const r = this.rng.next() * total;
    let acc = 0, last = -1;
    for (let i = 0; i < V; i++) {
      if (!(w[i]! >= minCut && (ONE_BITS - bits[i]!) * scale + i < bound)) continue;
      acc += w[i]!;
      last = i;
      if (r < acc) return i;
    }
    if (last >= 0) return last;
    const arg = argmax(w); // nothing kept (cannot happen with finite logits): the most probable id
    this.mass[0] = w[arg]!;
    return arg;
  }

  /** draw() for vocabularies over 2^21 tokens: a comparator sort of the candidates. */
  private drawSorted(w: Float32Array, minCut: number): number {
    const o = this.opts;
    const cand: number[] = [];
    for (let i = 0; i < w.length; i++) if (w[i]! >= minCut) cand.push(i);
    cand.sort((a, b) => w[b]! - w[a]! || a - b);
    let keep = cand.length;
    if (o.topK > 0) keep = Math.min(keep, o.topK);
    if (o.topP < 1) {
      // Meta: drop a token when the mass before it already exceeds p
      let cum = 0;
      for (let i = 0; i < keep; i++) {
        if (cum > o.topP) { keep = i; break; }
        cum += w[cand[i]!]!;
      }
    }
    return this.pick(w, cand, Math.max(1, keep));
  }

  /** Draws from w restricted to cand[0..n) (or all of w when cand is null), renormalised. */
  private pick(w: Float32Array, cand: number[] | null, n: number): number {
    let total = 0;
    for (let i = 0; i < n; i++) total += w[cand ? cand[i]! : i]!;
    this.mass[0] = total;
    const r = this.rng.next() * total;
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const id = cand ? cand[i]! : i;
      acc += w[id]!;
      if (r < acc) return id;
    }
    return cand ? cand[n - 1]! : n - 1;
  }
}
