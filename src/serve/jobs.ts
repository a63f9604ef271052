/**
 * From a validated OpenAI request to engine jobs and back: the sampler options a request asks for
 * (over the server's defaults), the context and queue checks (400 context_length_exceeded, 429
 * with Retry-After), and running jobs to the end or to the client's disconnect, choice by choice
 * (text, token ids, log-probs, finish reason) with a callback per event for streaming.
 *
 * What it is not: the JSON shapes of chat or completions (openai.ts) or HTTP routing (app.ts).
 */
import { randomUUID } from 'node:crypto';
import type { SamplerOptions } from '../generate/sampler.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Engine, EngineModel } from './engine.js';
import { ApiError } from './errors.js';
import type { GenerateJob, TokenOut } from './protocol.js';
import type { ChatRequest, CompletionRequest } from './schemas.js';
import { hashSeed } from '../util/rng.js';

export interface ServeState {
  engine: Engine;
  /** model ids (--model, --model-b) as /v1/models lists them */
  modelIds: string[];
  parallel: number;
  /** samples that may wait for a slot beyond the running ones */
  queue: number;
  /** sampler defaults for fields a request leaves out */
  defaults: Omit<SamplerOptions, 'seed'>;
  /** seed of requests that give none: hashSeed(serverSeed, request number) */
  serverSeed: number;
  requests: number;
}

export type JobSpec = Omit<GenerateJob, 'type' | 'id'>;

export interface ChoiceState {
  index: number;
  text: string;
  tokens: number;
  finish: 'stop' | 'length' | null;
  /** per token, when log-probs were asked for */
  lps: Pick<TokenOut, 'token' | 'logprob' | 'top'>[];
}

/** The index of the model a request names (none: the first), or a 400 naming "model". */
export function modelIndex(s: ServeState, model: string | null | undefined): number {
  if (model === null || model === undefined || model === '') return 0;
  const i = s.modelIds.indexOf(model);
  if (i < 0) throw new ApiError(400, `model: unknown model ${JSON.stringify(model)}; this server has ${s.modelIds.map((m) => JSON.stringify(m)).join(', ')} (GET /v1/models)`, 'model', 'model_not_found');
  return i;
}

export function tokenizerOf(s: ServeState, i: number): Tokenizer {
  const t = s.engine.models[i]!.tokenizer;
  if (!t) throw new ApiError(400, `model ${s.modelIds[i]}: it has no tokenizer, so text cannot be used; send token ids to /v1/completions`, 'model');
  return t;
}

/** The job of one prompt, with every check that needs no model run. */
export function jobOf(s: ServeState, m: number, prompt: number[], r: ChatRequest | CompletionRequest, topLogprobs: number, wantLp: boolean): JobSpec {
  const info: EngineModel = s.engine.models[m]!;
  const n = r.n ?? 1;
  if (n > s.parallel) throw new ApiError(400, `n: expected at most ${s.parallel} (the server's --parallel slots), found ${n}`, 'n');
  for (const [t, id] of prompt.entries()) {
    if (id >= info.vocabSize) throw new ApiError(400, `prompt[${t}]: token id ${id} is outside the vocabulary (0..${info.vocabSize - 1})`, 'prompt');
  }
  const P = prompt.length;
  const asked = ('max_completion_tokens' in r ? r.max_completion_tokens : null) ?? r.max_tokens ?? null;
  if (P >= info.ctx || (asked !== null && P + asked > info.ctx)) {
    const param = 'messages' in r ? 'messages' : 'prompt';
    throw new ApiError(400, `This model's maximum context length is ${info.ctx} tokens. However, you requested ${P + (asked ?? 1)} tokens (${P} in the ${param}, ${asked ?? 'at least 1'} in the completion). Please reduce the length of the ${param} or the completion.`, param, 'context_length_exceeded');
  }
  const d = s.defaults;
  const stop = r.stop === null || r.stop === undefined ? [] : typeof r.stop === 'string' ? [r.stop] : r.stop;
  return {
    model: m, prompt, n,
    seed: r.seed ?? hashSeed(s.serverSeed, s.requests++) >>> 0,
    maxTokens: asked ?? info.ctx - P,
    sampler: {
      temperature: r.temperature ?? d.temperature, topP: r.top_p ?? d.topP, topK: r.top_k ?? d.topK, minP: r.min_p ?? d.minP,
      repetitionPenalty: r.repeat_penalty ?? d.repetitionPenalty, penaltyLastN: d.penaltyLastN,
      frequencyPenalty: r.frequency_penalty ?? d.frequencyPenalty, presencePenalty: r.presence_penalty ?? d.presencePenalty,
    },
    stop, stopAtEos: !(r.ignore_eos ?? false), logprobs: wantLp, topLogprobs,
  };
}

/** 429 when the jobs' samples do not fit the slots and the queue */
export function admit(s: ServeState, jobs: JobSpec[]): void {
  const want = jobs.reduce((a, j) => a + j.n, 0);
  const room = s.parallel * s.modelIds.length + s.queue - s.engine.inFlight;
  if (want > room) {
    throw new ApiError(429, `the server is busy: ${s.engine.inFlight} samples are running or queued (${s.parallel} slots per model, a queue of ${s.queue}); retry shortly`, null, 'queue_full', { 'Retry-After': '1' });
  }
}

export interface RunEvents {
  /** new text (or a token, when log-probs were asked for) of a choice */
  onDelta?(c: ChoiceState, text: string, lp: ChoiceState['lps'][number] | null): void;
  onFinish?(c: ChoiceState): void;
}

/**
 * Runs the jobs (choice index = job × n + k) until every choice finished; an abort of `signal`
 * (the client went away) cancels them, freeing their slots, and rejects.
 */
export function runJobs(s: ServeState, jobs: JobSpec[], signal: AbortSignal, ev: RunEvents = {}): Promise<ChoiceState[]> {
  const choices: ChoiceState[] = [];
  const cancels: (() => void)[] = [];
  return new Promise((resolve, reject) => {
    let left = jobs.reduce((a, j) => a + j.n, 0);
    const abort = () => { for (const c of cancels) c(); reject(new ApiError(499, 'the client closed the request')); };
    jobs.forEach((job, j) => {
      for (let k = 0; k < job.n; k++) choices.push({ index: j * job.n + k, text: '', tokens: 0, finish: null, lps: [] });
      const h = s.engine.generate(job, {
        onToken: (t) => {
          const c = choices[j * job.n + t.k]!;
          c.text += t.text;
          c.tokens++;
          const lp = job.logprobs ? { token: t.token, logprob: t.logprob, ...(t.top ? { top: t.top } : {}) } : null;
          if (lp) c.lps.push(lp);
          if (t.text || lp) ev.onDelta?.(c, t.text, lp);
        },
        onDone: (d) => {
          const c = choices[j * job.n + d.k]!;
          if (d.text) { c.text += d.text; ev.onDelta?.(c, d.text, null); }
          c.tokens = d.tokens;
          if (d.finishReason === 'abort') return; // the client is gone: nothing more is sent
          c.finish = d.finishReason;
          ev.onFinish?.(c);
          if (--left === 0) { signal.removeEventListener('abort', abort); resolve(choices); }
        },
        onError: (message, status) => { signal.removeEventListener('abort', abort); reject(new ApiError(status, message)); },
      });
      cancels.push(h.cancel);
    });
    if (signal.aborted) abort();
    else signal.addEventListener('abort', abort, { once: true });
  });
}

export const completionId = (prefix: string): string => `${prefix}-${randomUUID().replaceAll('-', '').slice(0, 24)}`;
