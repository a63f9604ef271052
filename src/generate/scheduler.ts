/**
 * The continuous-batching scheduler under batched generation (src/generate/batch.ts) and the
 * server (src/serve/): requests join at any time, each `step()` is one Model.forward over every
 * decoding row (one token each) plus at most `prefillChunk` prompt tokens of the requests still
 * being prefilled, so running rows keep flowing while a long prompt is read in pieces.
 *
 *   const s = new Scheduler(model, { maxRows: 8 });
 *   const t = s.submit({ prompt: ids, maxTokens: 64, sampler: { temperature: 0 }, onToken: (k, ev) => …, onDone: (k, r) => … });
 *   while (!s.idle) { s.step(); await turn(); }     // t.cancel() between steps frees its rows at once
 *
 * Contract:
 * - A request's prompt (token ids, BOS included by the caller) is prefilled once into a prefix
 *   cache; its n samples start from copies of it (the last sample to start adopts it). Sample k
 *   draws from its own Sampler seeded by hashSeed(seed, k), so its ids do not depend on what else
 *   is running (greedy, temperature 0, is argmax of its logits).
 * - Slots: at most maxRows samples hold a slot (running, or admitted and waiting for their
 *   prompt's prefill); requests wait in arrival order for free slots, sample by sample.
 * - A row ends at a stop id ('stop'; not part of ids), when onToken returns a length to keep
 *   ('stop'), after its limit (min(maxTokens, context − P)) or at cancel ('abort', ids so far;
 *   samples not started have none). onDone is called once per sample.
 * - logprobs: ln p(token) of the raw logits at temperature 1 (before penalties and filters), and
 *   samplingLogprobs under the distribution drawn from (0 for greedy); topLogprobs > 0 adds the K
 *   most likely ids with their raw ln p to each token event.
 * - KV caches come from a pool and go back when a row ends; the decode loop allocates no
 *   per-token buffers beyond the callbacks' events.
 *
 * What it is not: text (no tokenizer: stop strings live in onToken), threads or an event loop
 * (the caller awaits between steps), or reference-model scoring (batch.ts).
 *
 * Legend: R = rows decoding at once, S = prefill segments of a step, V = vocab, P = prompt tokens.
 */
import type { KVCache, Model, Segment } from '../model/forward.js';
import { copyKVCache } from '../model/forward.js';
import { Sampler, type SamplerOptions } from './sampler.js';
import { Llama2Error } from '../util/errors.js';
import { hashSeed } from '../util/rng.js';
import { CachePool, logSoftmaxAt, logSumExp } from './batch-parts.js';

export type SeqFinishReason = 'stop' | 'length' | 'abort';

export interface SeqResult {
  ids: number[];
  finishReason: SeqFinishReason;
  /** (ids.length) ln p of each token under the policy: log-softmax of the raw logits (temperature 1) */
  logprobs?: Float32Array;
  /** (ids.length) ln p of each token under the sampling distribution (0 for greedy) */
  samplingLogprobs?: Float32Array;
}

/** one sampled token, as onToken sees it */
export interface TokenEvent {
  id: number;
  /** raw ln p of id (NaN unless the request asked for logprobs or topLogprobs) */
  logprob: number;
  /** the topLogprobs most likely ids, most likely first, with their raw ln p */
  top?: { id: number; logprob: number }[];
}

export interface SeqRequest {
  /** token ids, BOS included by the caller */
  prompt: readonly number[];
  /** samples of this prompt (default 1) */
  n?: number;
  /** sample k draws from a sampler seeded by hashSeed(seed, k) (default 0) */
  seed?: number;
  /** most new tokens per sample (clamped to the context) */
  maxTokens: number;
  /** sampler options but the seed (defaults: DEFAULT_SAMPLER) */
  sampler?: Partial<Omit<SamplerOptions, 'seed'>>;
  /** ids that end a row (not part of its ids) */
  stopIds?: readonly number[];
  /** per-token log-probs in the results (see the file header) */
  logprobs?: boolean;
  /** the K most likely ids per token event (default 0) */
  topLogprobs?: number;
  /** after each token is appended to sample k's ids: a length of ids to keep ends the row ('stop') */
  onToken?: (k: number, ev: TokenEvent, ids: readonly number[]) => number | null | undefined | void;
  /** once per sample, with its final result */
  onDone?: (k: number, result: SeqResult) => void;
}

export interface SchedulerOptions {
  /** most samples holding a slot at once (default 32) */
  maxRows?: number;
  /** most prompt tokens per forward call (default 512) */
  prefillChunk?: number;
}

export interface SchedulerStats {
  /** prompt tokens run, and the forward calls that held some */
  prefillTokens: number;
  prefillCalls: number;
  /** forward calls without prompt tokens, and the row tokens of every call */
  decodeSteps: number;
  decodeTokens: number;
  peakRows: number;
  /** time of the forward calls that held prompt tokens */
  prefillMs: number;
}

/** a handle on a submitted request */
export interface Ticket {
  /** ends its rows ('abort', ids so far) and its samples not started (no ids); idempotent */
  cancel(): void;
}

interface Req {
  spec: SeqRequest;
  what: string;
  n: number;
  seed: number;
  limit: number;
  stopIds: ReadonlySet<number>;
  top: number;
  wantLp: boolean;
  /** samples given a slot, started as rows, finished */
  admitted: number;
  started: number;
  finished: number;
  /** the prompt's cache (capacity P + limit − 1) and how many prompt tokens it holds */
  prefix: KVCache | null;
  fed: number;
  /** logits (V) after the prompt, and their logsumexp */
  first: Float32Array | null;
  firstLse: number;
  rows: Set<Row>;
  cancelled: boolean;
}

interface Row {
  req: Req;
  k: number;
  cache: KVCache;
  sampler: Sampler;
  ids: number[];
  lp: number[];
  slp: number[];
  /** this step's logits: a view of the forward buffer (bufRow ≥ 0) or req.first */
  logits: Float32Array;
  bufRow: number;
  next: number;
  seg: { tokens: Int32Array; cache: KVCache };
}

const DEFAULT_MAX_ROWS = 32;
const DEFAULT_PREFILL_CHUNK = 512;

/** v as an integer in min..max, else a Llama2Error naming `what` */
export function checkInt(v: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const want = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in ${min}..${max}`;
    throw new Llama2Error(`${what}: expected ${want}, found ${String(v)}`);
  }
  return v;
}

/** The K largest of `logits` (V) as raw log-probs (logit − lse), largest first. */
export function topLogprobs(logits: Float32Array, lse: number, K: number): { id: number; logprob: number }[] {
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (ids.length === K && v <= logits[ids[K - 1]!]!) continue;
    let j = Math.min(ids.length, K - 1);
    while (j > 0 && logits[ids[j - 1]!]! < v) { if (j < K) ids[j] = ids[j - 1]!; j--; }
    ids[j] = i;
  }
  return ids.map((id) => ({ id, logprob: logits[id]! - lse }));
}

export class Scheduler {
  readonly maxRows: number;
  readonly prefillChunk: number;
  readonly stats: SchedulerStats = { prefillTokens: 0, prefillCalls: 0, decodeSteps: 0, decodeTokens: 0, peakRows: 0, prefillMs: 0 };
  private readonly pool: CachePool;
  /** requests with samples not yet given a slot, in arrival order */
  private readonly queue: Req[] = [];
  /** requests whose prompt is being prefilled, in admission order */
  private readonly prefilling: Req[] = [];
  /** requests prefilled with admitted samples not yet started */
  private readonly ready: Req[] = [];
  private rows: Row[] = [];
  /** samples admitted but not started */
  private reserved = 0;
  private buf: Float32Array; // (R + S, V) the forward's logits, reused every step
  private readonly targets: Int32Array;
  private readonly lpBuf: Float32Array;

  constructor(readonly model: Model, o: SchedulerOptions = {}) {
    this.maxRows = checkInt(o.maxRows ?? DEFAULT_MAX_ROWS, 'batch maxRows', 1);
    this.prefillChunk = checkInt(o.prefillChunk ?? DEFAULT_PREFILL_CHUNK, 'batch prefillChunk', 1);
    this.pool = new CachePool(model, this.maxRows + 1);
    const V = model.config.vocab_size;
    this.buf = new Float32Array((this.maxRows + 1) * V);
    this.targets = new Int32Array(this.maxRows);
    this.lpBuf = new Float32Array(this.maxRows);
  }

  /** nothing queued, prefilling or decoding */
  get idle(): boolean {
    return this.queue.length === 0 && this.prefilling.length === 0 && this.ready.length === 0 && this.rows.length === 0;
  }

  /** rows decoding now */
  get running(): number {
    return this.rows.length;
  }

  /** KV caches made so far (the rest were reused) */
  get cachesAllocated(): number {
    return this.pool.allocated;
  }

  /** Queues a request (checked at once: a Llama2Error names `what` and the field). */
  submit(spec: SeqRequest, what = 'request'): Ticket {
    const ctx = this.model.config.max_seq_len, V = this.model.config.vocab_size;
    const p = spec.prompt;
    if (!Array.isArray(p) || p.length === 0) throw new Llama2Error(`${what}: expected a prompt of at least one token id (e.g. BOS), found ${Array.isArray(p) ? 'none' : typeof p}`);
    const P = p.length;
    if (P >= ctx) throw new Llama2Error(`${what}: the prompt's ${P} tokens do not fit the model's context of ${ctx} tokens (leave room for at least one new token)`);
    p.forEach((id, t) => checkInt(id, `${what}: prompt[${t}]`, 0, V - 1));
    const maxTok = checkInt(spec.maxTokens, `${what}: maxTokens`, 0);
    const seed = checkInt(spec.seed ?? 0, `${what}: seed`, 0);
    new Sampler({ ...spec.sampler, seed }); // validates the sampler options up front
    const top = checkInt(spec.topLogprobs ?? 0, `${what}: topLogprobs`, 0, V);
    const req: Req = {
      spec, what, n: checkInt(spec.n ?? 1, `${what}: n`, 1), seed, limit: Math.min(maxTok, ctx - P),
      stopIds: new Set(spec.stopIds ?? []), top, wantLp: spec.logprobs ?? false,
      admitted: 0, started: 0, finished: 0, prefix: null, fed: 0, first: null, firstLse: 0, rows: new Set(), cancelled: false,
    };
    this.queue.push(req);
    return { cancel: () => this.cancel(req) };
  }

  /** Cancels every request (see Ticket.cancel). */
  cancelAll(): void {
    for (const r of new Set([...this.rows.map((row) => row.req), ...this.ready, ...this.prefilling, ...this.queue])) this.cancel(r);
  }

  /**
   * One step: admit waiting samples into free slots, start the rows whose prompt is ready, sample
   * a token for every row, then one forward over the rows that go on and the next prompt tokens.
   */
  step(): void {
    this.admit();
    this.start();
    this.sampleRows();
    this.forward();
  }

  private finish(req: Req, k: number, r: SeqResult): void {
    req.finished++;
    req.spec.onDone?.(k, r);
  }

  private empty(req: Req, reason: SeqFinishReason): SeqResult {
    return req.wantLp ? { ids: [], finishReason: reason, logprobs: new Float32Array(0), samplingLogprobs: new Float32Array(0) } : { ids: [], finishReason: reason };
  }

  private endRow(row: Row, reason: SeqFinishReason, keep = row.ids.length): void {
    const r: SeqResult = { ids: row.ids.slice(0, keep), finishReason: reason };
    if (row.req.wantLp) {
      r.logprobs = Float32Array.from(row.lp.slice(0, keep));
      r.samplingLogprobs = Float32Array.from(row.slp.slice(0, keep));
    }
    this.pool.give(row.cache);
    row.req.rows.delete(row);
    this.finish(row.req, row.k, r);
  }

  private cancel(req: Req): void {
    if (req.cancelled || req.finished === req.n) return;
    req.cancelled = true;
    const drop = (list: Req[]) => { const i = list.indexOf(req); if (i >= 0) list.splice(i, 1); };
    drop(this.queue); drop(this.prefilling); drop(this.ready);
    if (req.rows.size > 0) {
      this.rows = this.rows.filter((row) => row.req !== req);
      for (const row of [...req.rows]) this.endRow(row, 'abort');
    }
    this.reserved -= req.admitted - req.started;
    if (req.prefix) { this.pool.give(req.prefix); req.prefix = null; }
    req.first = null;
    for (let k = req.started; k < req.n; k++) this.finish(req, k, this.empty(req, 'abort'));
    req.started = req.admitted = req.n;
  }

  private admit(): void {
    while (this.queue.length > 0 && this.rows.length + this.reserved < this.maxRows) {
      const req = this.queue[0]!;
      if (req.limit === 0) { // nothing to generate: every sample is done at once
        this.queue.shift();
        req.admitted = req.started = req.n;
        for (let k = 0; k < req.n; k++) this.finish(req, k, this.empty(req, 'length'));
        continue;
      }
      if (req.admitted === 0) {
        req.prefix = this.pool.take(req.spec.prompt.length + req.limit - 1);
        this.prefilling.push(req);
      } else if (req.first && req.started === req.admitted) this.ready.push(req);
      req.admitted++;
      this.reserved++;
      if (req.admitted === req.n) this.queue.shift();
    }
  }

  /** rows for the admitted samples of prefilled requests */
  private start(): void {
    for (const req of this.ready.splice(0)) {
      const P = req.spec.prompt.length;
      for (; req.started < req.admitted; req.started++) {
        const k = req.started;
        let cache = req.prefix!;
        if (k < req.n - 1) { // all but the last sample copy the prompt's cache; the last adopts it
          cache = this.pool.take(P + req.limit - 1);
          copyKVCache(req.prefix!, cache, P);
        }
        const be = this.model.backend;
        const sampler = new Sampler({ ...req.spec.sampler, seed: hashSeed(req.seed, k) }, be.sampleDraw ? be.sampleDraw.bind(be) : undefined);
        sampler.observe(req.spec.prompt);
        const row: Row = { req, k, cache, sampler, ids: [], lp: [], slp: [], logits: req.first!, bufRow: -1, next: -1, seg: { tokens: new Int32Array(1), cache } };
        this.rows.push(row);
        req.rows.add(row);
        this.reserved--;
        if (k === req.n - 1) { req.prefix = null; req.first = null; } // the rows keep their own references
      }
    }
    this.stats.peakRows = Math.max(this.stats.peakRows, this.rows.length);
  }

  private sampleRows(): void {
    const be = this.model.backend, V = this.model.config.vocab_size;
    // sample every row first: the log-probs below overwrite the forward buffer
    let nBuf = 0, wantLp = false;
    const tops = new Map<Row, { id: number; logprob: number }[]>();
    for (const row of this.rows) {
      row.next = row.sampler.sample(row.logits);
      if (row.bufRow >= 0) { this.targets[row.bufRow] = row.next; nBuf = Math.max(nBuf, row.bufRow + 1); }
      const req = row.req;
      if (req.wantLp || req.top > 0) wantLp = true;
      if (req.top > 0) tops.set(row, topLogprobs(row.logits, row.bufRow >= 0 ? logSumExp(be, row.logits) : req.firstLse, req.top));
    }
    if (wantLp && nBuf > 0) logSoftmaxAt(be, this.buf, this.targets.subarray(0, nBuf), this.lpBuf, V);
    let w = 0;
    for (const row of this.rows) {
      const req = row.req, id = row.next;
      if (req.stopIds.has(id)) { this.endRow(row, 'stop'); continue; }
      row.ids.push(id);
      const lp = req.wantLp || req.top > 0 ? (row.bufRow >= 0 ? this.lpBuf[row.bufRow]! : row.logits[id]! - req.firstLse) : NaN;
      if (req.wantLp) {
        row.lp.push(lp);
        row.slp.push(row.sampler.lastLogProb);
      }
      const top = tops.get(row);
      const keep = req.spec.onToken?.(row.k, top ? { id, logprob: lp, top } : { id, logprob: lp }, row.ids);
      if (keep !== null && keep !== undefined) {
        this.endRow(row, 'stop', checkInt(keep, `${req.what}: onToken: the length to keep`, 0, row.ids.length));
        continue;
      }
      if (row.ids.length >= req.limit) { this.endRow(row, 'length'); continue; }
      this.rows[w++] = row;
    }
    this.rows.length = w;
  }

  /** one forward over the rows that go on (a token each) and up to prefillChunk prompt tokens */
  private forward(): void {
    const V = this.model.config.vocab_size;
    const segs: Segment[] = [];
    const tails: number[] = [];
    this.rows.forEach((row, i) => {
      row.seg.tokens[0] = row.next;
      row.seg.cache = row.cache;
      segs.push(row.seg);
      tails.push(1);
      row.bufRow = i;
    });
    const R = this.rows.length;
    const parts: [Req, number][] = []; // prefilling requests fed this call, and their tokens
    let left = this.prefillChunk;
    for (const req of this.prefilling) {
      if (left === 0) break;
      const P = req.spec.prompt.length;
      const n = Math.min(left, P - req.fed);
      segs.push({ tokens: req.spec.prompt.slice(req.fed, req.fed + n), cache: req.prefix! });
      tails.push(req.fed + n === P ? 1 : 0);
      parts.push([req, n]);
      left -= n;
    }
    if (segs.length === 0) return;
    const nLogits = tails.reduce((a, b) => a + b, 0);
    if (this.buf.length < nLogits * V) this.buf = new Float32Array(nLogits * V);
    const t0 = performance.now();
    const res = this.model.forward(segs, { logits: tails, logitsOut: this.buf });
    this.rows.forEach((row, i) => { row.logits = res.logits[i]!; });
    this.stats.decodeTokens += R;
    if (parts.length === 0) { this.stats.decodeSteps++; return; }
    this.stats.prefillCalls++;
    this.stats.prefillMs += performance.now() - t0;
    parts.forEach(([req, n], j) => {
      req.fed += n;
      this.stats.prefillTokens += n;
      if (req.fed < req.spec.prompt.length) return;
      req.first = res.logits[R + j]!.slice(); // (V): sampled by each of the request's samples
      req.firstLse = logSumExp(this.model.backend, req.first);
      this.prefilling.splice(this.prefilling.indexOf(req), 1);
      this.ready.push(req);
    });
  }
}
