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
 * - Continuous batching (src/generate/scheduler.ts): at most maxRows sequences decode at once;
 *   more wait and join as rows finish. Each step is one forward over every active row (one token
 *   each), so the rows share every weight read, plus at most prefillChunk tokens of the prompts
 *   that joined (several prompts side by side as segments).
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
 * scheduler across calls (scheduler.ts is that; this is one batch of requests over it).
 *
 * Legend: R = rows decoding at once, V = vocab, P = prompt tokens.
 */
import type { Model } from '../model/forward.js';
import { Sampler, type SamplerOptions } from './sampler.js';
import { eventLoopTurns } from './generate.js';
import { Llama2Error } from '../util/errors.js';
import { CachePool, scoreWithReference, type ToScore } from './batch-parts.js';
import { checkInt, Scheduler, type SeqFinishReason, type SeqResult } from './scheduler.js';

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

export type BatchFinishReason = SeqFinishReason;

export interface BatchSample extends SeqResult {
  /** (ids.length) the reference model's log-softmax at the same positions */
  refLogprobs?: Float32Array;
}

export interface BatchStats {
  /** prompt tokens run through the model (each request's prompt once) and the forward calls that held some */
  prefillTokens: number;
  prefillCalls: number;
  /** forward calls without prompt tokens, and the row tokens of every call (one per active row each) */
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

/**
 * Generates `n` continuations of every request; result[i][k] is sample k of request i. See the
 * file header for the contract.
 */
export async function generateBatch(model: Model, requests: readonly BatchRequest[], options: BatchOptions): Promise<BatchSample[][]> {
  const V = model.config.vocab_size;
  const o = options;
  checkInt(o.maxTokens, 'batch maxTokens', 0);
  const sched = new Scheduler(model, { maxRows: o.maxRows, prefillChunk: o.prefillChunk });
  const maxRows = sched.maxRows;
  const stopIds = o.stopIds ?? (o.eosId !== undefined ? [o.eosId] : []);
  const wantLp = o.logprobs ?? false;
  const ref = o.reference;
  if (ref && ref.config.vocab_size !== V) {
    throw new Llama2Error(`batch reference: expected a model with the policy's vocabulary of ${V} tokens, found ${ref.config.vocab_size}`);
  }
  const sampler: Partial<SamplerOptions> = {};
  for (const k of ['temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'frequencyPenalty', 'presencePenalty', 'penaltyLastN'] as const) {
    if (o[k] !== undefined) sampler[k] = o[k];
  }
  new Sampler({ ...sampler, seed: o.seed ?? 0 }); // validates the sampler options once, up front

  const results: BatchSample[][] = requests.map(() => []);
  /** finished rows waiting for the reference model */
  const toScore: (ToScore & { req: number; k: number; result: BatchSample })[] = [];
  const finishRow = (i: number, k: number, result: BatchSample) => {
    results[i]![k] = result;
    if (ref && result.finishReason !== 'abort' && result.ids.length > 0) {
      toScore.push({ req: i, k, result, prompt: requests[i]!.prompt, ids: result.ids, done: (lp) => { result.refLogprobs = lp; } });
    } else {
      if (ref && result.finishReason !== 'abort') result.refLogprobs = new Float32Array(0);
      o.onRow?.(i, k, result);
    }
  };
  const stop = o.stop;
  requests.forEach((r, i) => {
    const what = `batch request ${i}`;
    const P = Array.isArray(r.prompt) ? r.prompt.length : 0;
    if (ref && P >= ref.config.max_seq_len && P < model.config.max_seq_len) throw new Llama2Error(`${what}: the prompt's ${P} tokens do not fit the reference model's context of ${ref.config.max_seq_len} tokens`);
    const maxTok = checkInt(r.maxTokens ?? o.maxTokens, `${what}: maxTokens`, 0);
    sched.submit({
      prompt: r.prompt, n: r.n, seed: r.seed ?? o.seed ?? 0, sampler, stopIds, logprobs: wantLp,
      maxTokens: ref ? Math.min(maxTok, ref.config.max_seq_len - P + 1) : maxTok,
      onToken: stop ? (_k, _ev, ids) => {
        const keep = stop(ids);
        return keep === null || keep === undefined ? null : checkInt(keep, 'batch stop(): the length to keep', 0, ids.length);
      } : undefined,
      onDone: (k, res) => finishRow(i, k, res),
    }, what);
  });

  const stats: BatchStats = {
    prefillTokens: 0, prefillCalls: 0, decodeSteps: 0, decodeTokens: 0, peakRows: 0, referenceTokens: 0, cachesAllocated: 0,
    prefillMs: 0, decodeMs: 0, referenceMs: 0,
  };
  const turn = eventLoopTurns();
  const refPool = ref ? new CachePool(ref, maxRows + 1) : null;
  let aborted = false;
  /** awaited between forward calls: event-loop turns; false once the caller aborted */
  const between = async () => {
    await turn();
    if (o.signal?.aborted) aborted = true;
    return !aborted;
  };
  /** the reference pass over the finished rows collected so far; onRow for each */
  const score = async () => {
    if (!ref || toScore.length === 0) return;
    const items = toScore.splice(0);
    const t0 = performance.now();
    if (!aborted) stats.referenceTokens += await scoreWithReference(ref, refPool!, items, sched.prefillChunk, between);
    stats.referenceMs += performance.now() - t0;
    for (const it of items) o.onRow?.(it.req, it.k, it.result);
  };

  const tLoop = performance.now();
  if (o.signal?.aborted) aborted = true;
  while (!aborted && !sched.idle) {
    sched.step();
    if (ref && (toScore.length >= maxRows || sched.idle)) await score();
    await between();
  }
  if (aborted) sched.cancelAll();
  await score(); // (after an abort: onRow for the rows still waiting, without scoring them)
  Object.assign(stats, sched.stats);
  // decode: the loop's time but for prefill and the reference pass (sampling and log-probs included)
  stats.decodeMs = performance.now() - tLoop - stats.prefillMs - stats.referenceMs;
  stats.cachesAllocated = sched.cachesAllocated;
  o.onStats?.(stats);
  return results;
}
