/**
 * Text generation over the engine: chunked prefill, sampling, stop conditions, streaming and
 * timings. Works on token ids; the tokenizer is only used to turn ids into text for streaming
 * and stop strings, and may be absent (codec null: ids only, `text` null, no stop strings).
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { KVCache, Model } from '../model/forward.js';
import { Sampler, type SamplerOptions } from './sampler.js';
import { Llama2Error } from '../util/errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { StopText } from './stop-text.js';

/** What generation needs from a tokenizer: the EOS id and text for ids. */
export type TextCodec = Tokenizer;

export interface GenerateOptions extends Partial<SamplerOptions> {
  /** most tokens to generate (default: until the context is full) */
  maxTokens?: number;
  /** stop before the first occurrence of any of these strings (it is not part of the output) */
  stop?: string[];
  /** stop when EOS is sampled (default true; EOS is not part of the text) */
  stopAtEos?: boolean;
  /** the EOS id (default: the codec's; without a codec, none unless given here) */
  eosId?: number;
  /** abort generation; the tokens so far are returned with finishReason "abort" */
  signal?: AbortSignal;
  /** prefill at most this many prompt tokens per forward call (default 512) */
  prefillChunk?: number;
  /** reuse this cache (it must be empty or hold a prefix the caller manages) */
  cache?: KVCache;
}

/** longest stretch of work (ms) done without giving the event loop a turn */
const YIELD_MS = 4;

/**
 * A function to await between steps of a long loop: it gives the event loop a turn (timers,
 * signals, I/O: a caller's Ctrl-C handler or HTTP server) when YIELD_MS have passed since the last
 * turn, and returns at once otherwise — a turn costs tens of µs, a large share of a small model's
 * token.
 */
export function eventLoopTurns(): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < YIELD_MS) return;
    await yieldToEventLoop();
    last = performance.now();
  };
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'abort';

export interface Timings {
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  /** prompt tokens per second */
  prefillTokPerSec: number;
  /** generated tokens per second, counting the forward passes after the first token */
  decodeTokPerSec: number;
}

/** `Text` is string with a codec and null without one. */
export interface GenerateResult<Text extends string | null = string> {
  promptIds: number[];
  ids: number[];
  text: Text;
  finishReason: FinishReason;
  timings: Timings;
}

export interface StreamChunk {
  id: number;
  /** new text (may be empty while a multi-byte character or a possible stop string is pending; always empty without a codec) */
  text: string;
}

/**
 * Streams generated tokens. The returned generator's final value (`return`) is the full result.
 * Usage: `for await (const c of generateStream(model, tok, ids, opts)) process.stdout.write(c.text)`.
 * With `codec` null (a model without a tokenizer) it works on ids alone: no text, no stop strings,
 * and EOS only when `opts.eosId` names it.
 */
export function generateStream(
  model: Model, codec: TextCodec, promptIds: readonly number[], opts?: GenerateOptions,
): AsyncGenerator<StreamChunk, GenerateResult, void>;
export function generateStream(
  model: Model, codec: TextCodec | null, promptIds: readonly number[], opts?: GenerateOptions,
): AsyncGenerator<StreamChunk, GenerateResult<string | null>, void>;
export async function* generateStream(
  model: Model, codec: TextCodec | null, promptIds: readonly number[], opts: GenerateOptions = {},
): AsyncGenerator<StreamChunk, GenerateResult<string | null>, void> {
  const ctx = model.config.max_seq_len;
  if (promptIds.length === 0) throw new Llama2Error('prompt: expected at least one token (e.g. BOS), found none');
  if (promptIds.length >= ctx) {
    throw new Llama2Error(`prompt: ${promptIds.length} tokens do not fit the model's context of ${ctx} tokens (leave room for at least one new token)`);
  }
  const maxTokens = opts.maxTokens ?? ctx - promptIds.length;
  if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new Llama2Error(`max tokens: expected an integer ≥ 0, found ${String(opts.maxTokens)}`);
  const chunk = opts.prefillChunk ?? 512;
  const stopAtEos = opts.stopAtEos ?? true;
  const stops = opts.stop ?? [];
  if (codec === null && stops.some((s) => s.length > 0)) throw new Llama2Error('stop strings: they need a tokenizer to turn ids into text, and there is none');
  const eosId = opts.eosId ?? codec?.eosId ?? -1;
  const be = model.backend;
  const sampler = new Sampler(opts, be.sampleDraw ? be.sampleDraw.bind(be) : undefined);
  sampler.observe(promptIds);
  const cache = opts.cache ?? model.newCache(Math.min(ctx, promptIds.length + maxTokens));

  // prefill in chunks; only the last chunk needs logits
  const t0 = performance.now();
  let logits: Float32Array = new Float32Array(0);
  for (let i = 0; i < promptIds.length; i += chunk) {
    const part = promptIds.slice(i, i + chunk);
    const last = i + chunk >= promptIds.length;
    const r = model.step(part, cache, last ? 'last' : 'none');
    if (last) logits = r;
  }
  const t1 = performance.now();

  const ids: number[] = [];
  const st = new StopText(codec, stops); // text per id, held back while it could start a stop string
  let finish: FinishReason = 'length';
  const limit = Math.min(maxTokens, cache.capacity - cache.length);
  const row = new Float32Array(model.config.vocab_size); // each step's logits: sampled before the next step
  const turn = eventLoopTurns();
  for (let n = 0; n < limit; n++) {
    if (opts.signal?.aborted) { finish = 'abort'; break; }
    const id = sampler.sample(logits);
    if (stopAtEos && id === eosId) { finish = 'eos'; break; }
    ids.push(id);
    const out = st.push(id);
    yield { id, text: out.text };
    if (out.stopped) { finish = 'stop'; break; }
    if (n + 1 < limit) {
      logits = model.step([id], cache, 'last', row);
      await turn(); // let timers, signals and I/O run between tokens
    }
  }
  const rest = st.flush();
  if (rest) yield { id: -1, text: rest };
  const t2 = performance.now();
  const decodeSteps = Math.max(0, ids.length - 1);
  return {
    promptIds: [...promptIds],
    ids,
    text: codec ? st.text : null,
    finishReason: finish,
    timings: {
      promptTokens: promptIds.length,
      generatedTokens: ids.length,
      prefillMs: t1 - t0,
      decodeMs: t2 - t1,
      prefillTokPerSec: promptIds.length / Math.max(1e-9, (t1 - t0) / 1000),
      decodeTokPerSec: decodeSteps / Math.max(1e-9, (t2 - t1) / 1000),
    },
  };
}

/** Runs generateStream to the end and returns the result. */
export async function generate(
  model: Model, codec: TextCodec, promptIds: readonly number[], opts: GenerateOptions = {},
): Promise<GenerateResult> {
  const it = generateStream(model, codec, promptIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
