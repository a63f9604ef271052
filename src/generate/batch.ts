/**
 * Batched sampling with per-token log-probs: many continuations at once through Model.forward over
 * segments, the engine for evaluating a model on thousands of prompts, rejection sampling (best of
 * K samples per prompt) and PPO rollouts.
 *
 *   const out = await generateBatch(model, [{ prompt: ids, n: 4, seed: 7 }], { maxTokens: 64, eosId: 2, logprobs: true });
 *   out[0][k].ids; out[0][k].logprobs;   // request 0, sample k
 *
 * Contract:
 * - Every request's prompt (token ids, BOS included by the caller) is prefilled once; its n samples
 *   start from copies of that KV cache. Sample k of a request draws from its own Sampler seeded by
 *   hashSeed(seed, k) (src/util/rng.ts), so a request with a given seed gives the same ids alone or
 *   among others, whatever maxRows is (greedy, temperature 0, is argmax of each row's logits).
 * - Continuous batching: at most maxRows sequences decode at once; more wait and join as rows
 *   finish. Prompts that join together are prefilled in one forward over several segments, at
 *   most prefillChunk tokens a call; each decode step is one forward over every active row (one
 *   token each), so the rows share every weight read.
 * - A row stops at a stop id ('stop'; the id is not part of `ids`), when `stop(ids)` returns a
 *   length to keep ('stop'), after maxTokens tokens or at the end of the context ('length'), or on
 *   abort ('abort': the tokens so far; samples not started have none).
 * - logprobs: per token of `ids`, ln p(token) under the policy as the model gives it: log-softmax
 *   of the raw logits at temperature 1, before penalties and filters (what PPO's ratio and KL
 *   use). samplingLogprobs: ln p(token) under the distribution the sampler drew from (penalties,
 *   temperature, top-k / top-p / min-p, renormalised over the kept ids; 0 for greedy).
 * - reference: a frozen model (same vocabulary) scores the finished rows: refLogprobs are the
 *   log-softmax of its raw logits at the same positions, from one batched forward over the
 *   finished sequences (each request's prompt once, its samples as segments), not a second decode.
 *   Rows cut short by an abort get none.
 * - KV caches are sized per row (prompt + maxTokens, within the context) and reused by the rows
 *   that join later; the decode loop allocates no per-token buffers.
 *
 * What it is not: text handling (no tokenizer; stop strings go through `stop`), a server, or a
 * scheduler across calls.
 *
 * Legend: R = rows decoding at once, V = vocab, P = prompt tokens.
 */
import type { KVCache, Model, Segment } from '../model/forward.js';
import { copyKVCache } from '../model/forward.js';
import { Sampler, type SamplerOptions } from './sampler.js';
import { eventLoopTurns } from './generate.js';
import { Llama2Error } from '../util/errors.js';
import { hashSeed } from '../util/rng.js';
import { CachePool, logSoftmaxAt, logSumExp, packed, scoreWithReference, type PackedRun, type ToScore } from './batch-parts.js';

export interface BatchRequest {
  /** token ids, BOS included by the caller */
  prompt: readonly number[];
  /** samples of this prompt (default 1): the prompt is prefilled once, its KV cache copied per sample */
  n?: number;
  /** sample k draws from a sampler seeded by hashSeed(seed, k) (default: options.seed, else 0) */
  seed?: number;
  /** most new tokens of each sample (default options.maxTokens) */
  maxTokens?: number;
}

export interface BatchOptions extends Partial<SamplerOptions> {
  /** most new tokens per sample (a request's maxTokens overrides it) */
  maxTokens: number;
  /** the model's EOS id: the default stop id */
  eosId?: number;
  /** ids that end a row (not part of its ids); default [eosId] when given, else none */
  stopIds?: readonly number[];
  /** a per-row stop test after each token (e.g. a stop string): the length of ids to keep, or null to go on */
  stop?: (ids: readonly number[]) => number | null;
  /** per-token log-probs of the sampled tokens (see the file header); default false */
  logprobs?: boolean;
  /** a frozen reference model whose log-probs of the same tokens are returned too */
  reference?: Model;
  /** most sequences decoding at once (default 32) */
  maxRows?: number;
  /** most prompt tokens per prefill forward call (default 512) */
  prefillChunk?: number;
  signal?: AbortSignal;
  /** called once per finished sample, with its final result */
  onRow?: (requestIndex: number, sampleIndex: number, result: BatchSample) => void;
  /** called at the end with counts and timings */
  onStats?: (stats: BatchStats) => void;
}

export type BatchFinishReason = 'stop' | 'length' | 'abort';

export interface BatchSample {
  ids: number[];
  finishReason: BatchFinishReason;
  /** (ids.length) ln p of each token under the policy: log-softmax of the raw logits (temperature 1) */
  logprobs?: Float32Array;
  /** (ids.length) ln p of each token under the sampling distribution (0 for greedy) */
  samplingLogprobs?: Float32Array;
  /** (ids.length) the reference model's log-softmax at the same positions */
  refLogprobs?: Float32Array;
}

export interface BatchStats {
  /** prompt tokens run through the model (each request's prompt once) and the forward calls for them */
  prefillTokens: number;
  prefillCalls: number;
  /** decode forward calls and the tokens they ran (one per active row each) */
  decodeSteps: number;
  decodeTokens: number;
  /** most rows decoding at once */
  peakRows: number;
  /** tokens run through the reference model */
  referenceTokens: number;
  /** KV caches made for the policy (the rest were reused) */
  cachesAllocated: number;
  prefillMs: number;
  decodeMs: number;
  referenceMs: number;
}

/** what generateBatch tracks per request */
interface RequestState {
  index: number;
  prompt: readonly number[];
  n: number;
  seed: number;
  /** tokens each sample may generate: min(maxTokens, context − P) */
  limit: number;
  /** the prefilled prompt (capacity P + limit − 1); the last sample to start adopts it */
  prefix: KVCache | null;
  /** logits (V) after the prompt, and their logsumexp */
  first: Float32Array | null;
  firstLse: number;
  /** samples started so far */
  started: number;
  results: BatchSample[];
}

/** one sequence being decoded */
interface Row {
  req: RequestState;
  k: number;
  cache: KVCache;
  sampler: Sampler;
  ids: number[];
  lp: number[];
  slp: number[];
  /** its logits for this step: a view of the decode buffer (bufRow ≥ 0) or of req.first */
  logits: Float32Array;
  bufRow: number;
  /** the token it samples this step */
  next: number;
  /** the one-token segment it feeds to the decode forward */
  seg: { tokens: Int32Array; cache: KVCache };
}

const DEFAULT_MAX_ROWS = 32;
const DEFAULT_PREFILL_CHUNK = 512;

function checkInt(v: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const want = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in ${min}..${max}`;
    throw new Llama2Error(`${what}: expected ${want}, found ${String(v)}`);
  }
  return v;
}

const noLogprobs = (): Pick<BatchSample, 'logprobs' | 'samplingLogprobs'> => ({ logprobs: new Float32Array(0), samplingLogprobs: new Float32Array(0) });

/**
 * Generates `n` continuations of every request; result[i][k] is sample k of request i. See the
 * file header for the contract.
 */
export async function generateBatch(model: Model, requests: readonly BatchRequest[], options: BatchOptions): Promise<BatchSample[][]> {
  const c = model.config;
  const V = c.vocab_size, ctx = c.max_seq_len;
  const o = options;
  checkInt(o.maxTokens, 'batch maxTokens', 0);
  const maxRows = checkInt(o.maxRows ?? DEFAULT_MAX_ROWS, 'batch maxRows', 1);
  const chunk = checkInt(o.prefillChunk ?? DEFAULT_PREFILL_CHUNK, 'batch prefillChunk', 1);
  const stopIds = new Set(o.stopIds ?? (o.eosId !== undefined ? [o.eosId] : []));
  const wantLp = o.logprobs ?? false;
  const ref = o.reference;
  if (ref && ref.config.vocab_size !== V) {
    throw new Llama2Error(`batch reference: expected a model with the policy's vocabulary of ${V} tokens, found ${ref.config.vocab_size}`);
  }
  const baseSampler: Partial<SamplerOptions> = {};
  for (const k of ['temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'frequencyPenalty', 'presencePenalty', 'penaltyLastN'] as const) {
    if (o[k] !== undefined) baseSampler[k] = o[k];
  }
  new Sampler({ ...baseSampler, seed: o.seed ?? 0 }); // validates the sampler options once, up front

  const reqs: RequestState[] = requests.map((r, i) => {
    const what = `batch request ${i}`;
    if (!Array.isArray(r.prompt) || r.prompt.length === 0) throw new Llama2Error(`${what}: expected a prompt of at least one token id (e.g. BOS), found ${Array.isArray(r.prompt) ? 'none' : typeof r.prompt}`);
    const P = r.prompt.length;
    if (P >= ctx) throw new Llama2Error(`${what}: the prompt's ${P} tokens do not fit the model's context of ${ctx} tokens (leave room for at least one new token)`);
    r.prompt.forEach((id, t) => checkInt(id, `${what}: prompt[${t}]`, 0, V - 1));
    if (ref && P >= ref.config.max_seq_len) throw new Llama2Error(`${what}: the prompt's ${P} tokens do not fit the reference model's context of ${ref.config.max_seq_len} tokens`);
    const maxTok = checkInt(r.maxTokens ?? o.maxTokens, `${what}: maxTokens`, 0);
    const refCtx = ref ? ref.config.max_seq_len : ctx;
    return {
      index: i, prompt: r.prompt, n: checkInt(r.n ?? 1, `${what}: n`, 1),
      seed: checkInt(r.seed ?? o.seed ?? 0, `${what}: seed`, 0),
      limit: Math.min(maxTok, ctx - P, refCtx - P + 1),
      prefix: null, first: null, firstLse: 0, started: 0, results: [],
    };
  });

  const stats: BatchStats = {
    prefillTokens: 0, prefillCalls: 0, decodeSteps: 0, decodeTokens: 0, peakRows: 0, referenceTokens: 0, cachesAllocated: 0,
    prefillMs: 0, decodeMs: 0, referenceMs: 0,
  };
  const turn = eventLoopTurns();
  const pool = new CachePool(model, maxRows + 1);
  const refPool = ref ? new CachePool(ref, maxRows + 1) : null;
  const be = model.backend;
  const accel = be.sampleDraw ? be.sampleDraw.bind(be) : undefined;
  const buf = new Float32Array(maxRows * V); // (R, V) decode logits, reused every step
  const targets = new Int32Array(maxRows);
  const lpBuf = new Float32Array(maxRows); // (R) log-probs of the decode rows' tokens
  const rows: Row[] = [];
  const segs: Segment[] = [];
  /** finished rows waiting for the reference model */
  const toScore: (ToScore & { req: number; k: number; result: BatchSample })[] = [];
  let queue = 0; // requests[queue] is the next request with samples to start
  let aborted = false;
  /** awaited between forward calls: event-loop turns; false once the caller aborted */
  const between = async () => {
    await turn();
    if (o.signal?.aborted) aborted = true;
    return !aborted;
  };

  const finishRow = (req: RequestState, k: number, result: BatchSample) => {
    req.results[k] = result;
    if (ref && result.finishReason !== 'abort' && result.ids.length > 0) {
      toScore.push({ req: req.index, k, result, prompt: req.prompt, ids: result.ids, done: (lp) => { result.refLogprobs = lp; } });
    } else {
      if (ref && result.finishReason !== 'abort') result.refLogprobs = new Float32Array(0);
      o.onRow?.(req.index, k, result);
    }
  };
  const done = (row: Row, reason: BatchFinishReason, keep = row.ids.length) => {
    const r: BatchSample = { ids: row.ids.slice(0, keep), finishReason: reason };
    if (wantLp) {
      r.logprobs = Float32Array.from(row.lp.slice(0, keep));
      r.samplingLogprobs = Float32Array.from(row.slp.slice(0, keep));
    }
    pool.give(row.cache);
    finishRow(row.req, row.k, r);
  };
  /** the reference pass over the finished rows collected so far; onRow for each */
  const score = async () => {
    if (!ref || toScore.length === 0) return;
    const items = toScore.splice(0);
    const t0 = performance.now();
    if (!aborted) stats.referenceTokens += await scoreWithReference(ref, refPool!, items, chunk, between);
    stats.referenceMs += performance.now() - t0;
    for (const it of items) o.onRow?.(it.req, it.k, it.result);
  };

  // ---- admission: start samples while there is room, prefilling the prompts they need
  const admit = async () => {
    const fresh: RequestState[] = [];
    const starting: [RequestState, number][] = [];
    while (rows.length + starting.length < maxRows && queue < reqs.length) {
      const req = reqs[queue]!;
      if (req.limit === 0) { // nothing to generate: every sample is done at once
        for (let k = 0; k < req.n; k++) finishRow(req, k, { ids: [], finishReason: 'length', ...(wantLp ? noLogprobs() : {}) });
        req.started = req.n;
        queue++;
        continue;
      }
      if (req.started === 0 && !req.prefix) {
        req.prefix = pool.take(req.prompt.length + req.limit - 1);
        fresh.push(req);
      }
      starting.push([req, req.started++]);
      if (req.started === req.n) queue++;
    }
    if (fresh.length) await prefill(fresh);
    for (const [req, k] of starting) {
      if (aborted) { finishRow(req, k, { ids: [], finishReason: 'abort', ...(wantLp ? noLogprobs() : {}) }); continue; }
      let cache = req.prefix!;
      if (k < req.n - 1) { // all but the last sample copy the prompt's cache; the last adopts it
        cache = pool.take(req.prompt.length + req.limit - 1);
        copyKVCache(req.prefix!, cache, req.prompt.length);
      }
      const sampler = new Sampler({ ...baseSampler, seed: hashSeed(req.seed, k) }, accel);
      sampler.observe(req.prompt);
      const tok = new Int32Array(1);
      rows.push({ req, k, cache, sampler, ids: [], lp: [], slp: [], logits: req.first!, bufRow: -1, next: -1, seg: { tokens: tok, cache } });
      if (k === req.n - 1) { req.prefix = null; req.first = null; } // rows keep their own references
    }
    stats.peakRows = Math.max(stats.peakRows, rows.length);
  };

  /** prefills the prompts of `fresh` requests, several per forward call, at most `chunk` tokens a call */
  const prefill = async (fresh: RequestState[]) => {
    const t0 = performance.now();
    const runs: PackedRun[] = fresh.map((req) => ({
      tokens: req.prompt, cache: req.prefix!, logits: 'last',
      take: (_, logits) => {
        req.first = logits.slice(); // (V): sampled by each of the request's samples
        req.firstLse = logSumExp(be, req.first);
      },
    }));
    stats.prefillCalls += await packed(model, runs, chunk, between);
    for (const req of fresh) stats.prefillTokens += req.prefix!.length;
    stats.prefillMs += performance.now() - t0;
  };

  // ---- the decode loop: admit, sample every row, one forward over the rows that go on
  const tLoop = performance.now();
  for (;;) {
    if (o.signal?.aborted) aborted = true;
    if (!aborted) await admit();
    if (aborted || rows.length === 0) break;
    // sample every row first: the log-probs below overwrite the decode buffer
    let nBuf = 0;
    for (const row of rows) {
      row.next = row.sampler.sample(row.logits);
      if (row.bufRow >= 0) { targets[row.bufRow] = row.next; nBuf = Math.max(nBuf, row.bufRow + 1); }
    }
    if (wantLp && nBuf > 0) logSoftmaxAt(be, buf, targets.subarray(0, nBuf), lpBuf, V);
    let w = 0;
    for (const row of rows) {
      const id = row.next;
      if (stopIds.has(id)) { done(row, 'stop'); continue; }
      row.ids.push(id);
      if (wantLp) {
        row.lp.push(row.bufRow >= 0 ? lpBuf[row.bufRow]! : row.logits[id]! - row.req.firstLse);
        row.slp.push(row.sampler.lastLogProb);
      }
      const keep = o.stop ? o.stop(row.ids) : null;
      if (keep !== null && keep !== undefined) {
        checkInt(keep, 'batch stop(): the length to keep', 0, row.ids.length);
        done(row, 'stop', keep);
        continue;
      }
      if (row.ids.length >= row.req.limit) { done(row, 'length'); continue; }
      rows[w++] = row;
    }
    rows.length = w;
    if (ref && (toScore.length >= maxRows || (rows.length === 0 && queue >= reqs.length))) await score();
    if (rows.length === 0) continue;
    // one forward over every row that goes on: its token, its cache
    segs.length = 0;
    rows.forEach((row, i) => {
      row.seg.tokens[0] = row.next;
      row.seg.cache = row.cache;
      segs.push(row.seg);
      row.bufRow = i;
    });
    const res = model.forward(segs, { logits: 'last', logitsOut: buf });
    rows.forEach((row, i) => { row.logits = res.logits[i]!; });
    stats.decodeSteps++;
    stats.decodeTokens += rows.length;
    await between();
  }

  if (aborted) {
    for (const row of rows) done(row, 'abort');
    rows.length = 0;
    for (const req of reqs) {
      for (let k = req.started; k < req.n; k++) finishRow(req, k, { ids: [], finishReason: 'abort', ...(wantLp ? noLogprobs() : {}) });
      req.started = req.n;
    }
  }
  await score(); // (after an abort: onRow for the rows still waiting, without scoring them)
  // decode: the loop's time but for prefill and the reference pass (sampling and log-probs included)
  stats.decodeMs = performance.now() - tLoop - stats.prefillMs - stats.referenceMs;
  stats.cachesAllocated = pool.allocated;
  o.onStats?.(stats);
  return reqs.map((r) => r.results);
}
