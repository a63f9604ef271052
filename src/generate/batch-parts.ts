/**
 * The parts of batched generation (src/generate/batch.ts) that are not the decode loop: a pool of
 * KV caches that finished rows hand back to the rows that join later, packed forward calls (many
 * token runs, each with its own cache, at most a budget of tokens a call, a run longer than that
 * continued in the next call), log-softmax at given tokens, and the reference model's pass over
 * finished rows.
 *
 * Not a scheduler and not sampling: batch.ts decides what runs when.
 *
 * Legend: T = tokens of a call, R = rows that get logits, V = vocab, P = prompt tokens.
 */
import type { KVCache, Model, Segment } from '../model/forward.js';
import { copyKVCache } from '../model/forward.js';
import type { Backend } from '../backend/types.js';

/** KV caches to reuse: capacities rounded up to CACHE_STEP positions so later rows fit old caches. */
export class CachePool {
  private readonly free: KVCache[] = [];
  /** caches made so far (a test of reuse) */
  allocated = 0;

  /** keeps at most `maxFree` idle caches (the smallest is dropped first) */
  constructor(private readonly model: Model, private readonly maxFree: number) {}

  /** an empty cache for at least `positions` positions: the smallest idle one that fits, else a new one */
  take(positions: number): KVCache {
    let best = -1;
    this.free.forEach((c, i) => {
      if (c.capacity >= positions && (best < 0 || c.capacity < this.free[best]!.capacity)) best = i;
    });
    if (best >= 0) return this.free.splice(best, 1)[0]!;
    this.allocated++;
    const ctx = this.model.config.max_seq_len;
    return this.model.newCache(Math.min(ctx, Math.max(positions, Math.ceil(positions / CACHE_STEP) * CACHE_STEP)));
  }

  give(cache: KVCache): void {
    cache.length = 0;
    this.free.push(cache);
    if (this.free.length > this.maxFree) {
      let small = 0;
      this.free.forEach((c, i) => { if (c.capacity < this.free[small]!.capacity) small = i; });
      this.free.splice(small, 1);
    }
  }
}

const CACHE_STEP = 64;

/**
 * A run of tokens for packed(): appended to `cache`; `logits` says which of its positions get
 * logits ('last': only the run's last token, 'all': every token, 'none'); `take` receives them,
 * (rows, V) starting at token `from` of the run, once per call the run was part of.
 */
export interface PackedRun {
  tokens: ArrayLike<number>;
  cache: KVCache;
  logits: 'last' | 'all' | 'none';
  take?: (from: number, logits: Float32Array) => void;
}

/**
 * Runs `runs` through `model` in forward calls of at most `budget` tokens, runs side by side as
 * segments (in order; a run cut by the budget goes on in the next call). `between` is awaited
 * after each call (event-loop turns); it returns false to stop early. Returns the calls made.
 */
export async function packed(model: Model, runs: readonly PackedRun[], budget: number, between: () => Promise<boolean>): Promise<number> {
  const V = model.config.vocab_size;
  const done = new Int32Array(runs.length); // tokens of each run already fed
  let out = new Float32Array(0);
  let first = 0, calls = 0;
  for (;;) {
    while (first < runs.length && done[first] === runs[first]!.tokens.length) first++;
    if (first === runs.length) break;
    const segs: Segment[] = [];
    const who: number[] = [];
    const tails: number[] = [];
    let left = budget, rows = 0;
    for (let i = first; i < runs.length && left > 0; i++) {
      const r = runs[i]!;
      const n = Math.min(left, r.tokens.length - done[i]!);
      if (n <= 0) continue;
      segs.push({ tokens: Array.prototype.slice.call(r.tokens, done[i]!, done[i]! + n) as number[], cache: r.cache });
      who.push(i);
      const tail = r.logits === 'all' ? n : r.logits === 'last' && done[i]! + n === r.tokens.length ? 1 : 0;
      tails.push(tail);
      rows += tail;
      left -= n;
    }
    if (out.length < rows * V) out = new Float32Array(rows * V); // (R, V), reused by later calls
    const res = model.forward(segs, { logits: tails, logitsOut: out });
    calls++;
    who.forEach((i, s) => {
      const r = runs[i]!;
      const n = segs[s]!.tokens.length;
      if (tails[s]! > 0) r.take?.(r.logits === 'all' ? done[i]! : r.tokens.length - 1, res.logits[s]!);
      done[i] = done[i]! + n;
    });
    if (!(await between())) break;
  }
  return calls;
}

/**
 * out[r] = ln softmax(logits row r)[targets[r]] for r < targets.length, through the backend's fused
 * cross-entropy kernel (one call for all rows). Overwrites the logits (R, V) with exps.
 */
export function logSoftmaxAt(be: Backend, logits: Float32Array, targets: Int32Array, out: Float32Array, V: number): void {
  const nll = new Float32Array(targets.length);
  be.xentForward(logits, targets, nll, new Float64Array(targets.length), V);
  for (let r = 0; r < targets.length; r++) out[r] = -nll[r]!;
}

/** ln Σ exp(row) (V), on a copy of the row (the kernel overwrites its input) */
export function logSumExp(be: Backend, row: Float32Array): number {
  const lp = new Float32Array(1);
  logSoftmaxAt(be, row.slice(), new Int32Array(1), lp, row.length);
  return row[0]! - lp[0]!;
}

/** a finished row for the reference pass: its prompt and sampled ids, and where the result goes */
export interface ToScore {
  prompt: readonly number[];
  ids: readonly number[];
  /** receives the reference log-probs (ids.length) */
  done: (refLogprobs: Float32Array) => void;
}

/**
 * The reference model's log-softmax at every sampled token of `items`: each distinct prompt is
 * run once (its first P − 1 tokens, no logits) and copied per sample, whose run is the prompt's
 * last token then its ids but the last (every position gets logits); all of it in packed calls of
 * at most `budget` tokens. Returns the tokens run.
 */
export async function scoreWithReference(
  ref: Model, pool: CachePool, items: readonly ToScore[], budget: number, between: () => Promise<boolean>,
): Promise<number> {
  const V = ref.config.vocab_size;
  // group the items by prompt (the samples of one request share it)
  const groups = new Map<readonly number[], ToScore[]>();
  for (const it of items) {
    const g = groups.get(it.prompt);
    if (g) g.push(it);
    else groups.set(it.prompt, [it]);
  }
  let tokens = 0;
  const prefixes: PackedRun[] = [];
  const runs: PackedRun[] = [];
  const caches: KVCache[] = [];
  for (const [prompt, g] of groups) {
    const P = prompt.length;
    let prefix: KVCache | null = null;
    if (P > 1) {
      prefix = pool.take(P - 1 + Math.max(...g.map((it) => it.ids.length)));
      prefixes.push({ tokens: prompt.slice(0, -1), cache: prefix, logits: 'none' });
      tokens += P - 1;
    }
    g.forEach((it, j) => {
      // the last sample adopts the prompt's cache, the others copy it (once it is filled, below)
      const cache = prefix && j === g.length - 1 ? prefix : pool.take(P - 1 + it.ids.length);
      caches.push(cache);
      const toks = [prompt[P - 1]!, ...it.ids.slice(0, -1)]; // position P − 1 predicts ids[0]
      tokens += toks.length;
      const lp = new Float32Array(it.ids.length);
      runs.push({
        tokens: toks, cache, logits: 'all',
        take: (from, logits) => {
          const rows = logits.length / V;
          logSoftmaxAt(ref.backend, logits, Int32Array.from(it.ids.slice(from, from + rows)), lp.subarray(from, from + rows), V);
          if (from + rows === toks.length) it.done(lp);
        },
      });
    });
  }
  if (!(await packedOk(ref, prefixes, budget, between))) return tokens;
  let r = 0;
  for (const [prompt, g] of groups) {
    const prefix = prompt.length > 1 ? runs[r + g.length - 1]!.cache : null;
    for (let j = 0; j < g.length - 1; j++) if (prefix) copyKVCache(prefix, runs[r + j]!.cache, prompt.length - 1);
    r += g.length;
  }
  await packed(ref, runs, budget, between);
  for (const c of caches) pool.give(c);
  return tokens;
}

/** packed(), telling whether it ran to the end (between() never said stop) */
async function packedOk(model: Model, runs: readonly PackedRun[], budget: number, between: () => Promise<boolean>): Promise<boolean> {
  let ok = true;
  await packed(model, runs, budget, async () => (ok = await between()));
  return ok;
}
