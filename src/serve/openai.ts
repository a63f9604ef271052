/**
 * OpenAI's /v1/chat/completions and /v1/completions on the engine: a validated request becomes
 * token-id jobs (chat through Llama-2's format, renderPrompt — exactly Meta's chat_completion),
 * and the choices go back as one JSON answer with `usage`, or as Server-Sent Events (`data: {…}`
 * chunks, `data: [DONE]`, a usage chunk with stream_options.include_usage). Log-probs come in
 * each API's own shape: chat's `logprobs.content[]` with top_logprobs, completions' legacy
 * `{tokens, token_logprobs, top_logprobs, text_offset}`.
 *
 * What it is not: routing, auth or limits (app.ts), or the checks shared with other endpoints (jobs.ts).
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { renderPrompt, type Message } from '../chat/format.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { ApiError, toApiError } from './errors.js';
import { admit, completionId, jobOf, modelIndex, runJobs, tokenizerOf, type ChoiceState, type JobSpec, type RunEvents, type ServeState } from './jobs.js';
import { ChatRequest, CompletionRequest, parseBody } from './schemas.js';

const FINGERPRINT = 'llama2-ts';
type Lp = ChoiceState['lps'][number];

/** A token's text as OpenAI shows it, and its UTF-8 bytes (a byte piece: that byte). */
function tokenText(tok: Tokenizer, id: number): { token: string; bytes: number[] } {
  const b = tok.byteOf(id);
  if (b >= 0) return { token: b < 0x80 ? String.fromCharCode(b) : `bytes:\\x${b.toString(16).padStart(2, '0')}`, bytes: [b] };
  const token = tok.surface(id, false);
  return { token, bytes: [...Buffer.from(token, 'utf8')] };
}

function chatLogprob(tok: Tokenizer, lp: Lp) {
  return {
    ...tokenText(tok, lp.token), logprob: lp.logprob,
    top_logprobs: (lp.top ?? []).map((t) => ({ ...tokenText(tok, t.id), logprob: t.logprob })),
  };
}

function usage(promptTokens: number, choices: ChoiceState[]) {
  const completion = choices.reduce((a, c) => a + c.tokens, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
}

/** OpenAI messages → Llama-2 chat messages (developer is a system message; text parts joined) */
function toDialog(messages: ChatRequest['messages']): Message[] {
  return messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: m.content === null ? '' : typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
  }));
}

interface Shape {
  id: string;
  object: string;
  chunkObject: string;
  /** a streamed chunk's choice for new text (and a token's log-prob), or the first chunk (role) */
  delta(c: ChoiceState, text: string, lp: Lp | null): Record<string, unknown>;
  finish(c: ChoiceState): Record<string, unknown>;
  /** a choice of the whole answer */
  whole(c: ChoiceState): Record<string, unknown>;
  first?(index: number): Record<string, unknown>;
}

/** Runs the jobs and answers, streamed or whole, in the shape given. */
async function answer(c: Context, s: ServeState, jobs: JobSpec[], stream: boolean, includeUsage: boolean, shape: Shape, promptTokens: number): Promise<Response> {
  admit(s, jobs);
  const model = s.modelIds[jobs[0]!.model]!;
  const created = Math.floor(Date.now() / 1000);
  const head = { id: shape.id, object: shape.chunkObject, created, model, system_fingerprint: FINGERPRINT };
  const signal = c.req.raw.signal;
  if (!stream) {
    const choices = await runJobs(s, jobs, signal);
    return c.json({ id: shape.id, object: shape.object, created, model, system_fingerprint: FINGERPRINT, choices: choices.map((ch) => shape.whole(ch)), usage: usage(promptTokens, choices) });
  }
  return streamSSE(c, async (sse) => {
    const ac = new AbortController();
    sse.onAbort(() => ac.abort());
    signal.addEventListener('abort', () => ac.abort(), { once: true });
    let chain = Promise.resolve();
    const send = (data: string) => { chain = chain.then(() => sse.writeSSE({ data })); };
    const chunk = (choice: Record<string, unknown>) => send(JSON.stringify({ ...head, choices: [choice], ...(includeUsage ? { usage: null } : {}) }));
    if (shape.first) for (const j of jobs) for (let k = 0; k < j.n; k++) chunk(shape.first(jobs.indexOf(j) * j.n + k));
    const ev: RunEvents = { onDelta: (ch, text, lp) => chunk(shape.delta(ch, text, lp)), onFinish: (ch) => chunk(shape.finish(ch)) };
    try {
      const choices = await runJobs(s, jobs, ac.signal, ev);
      if (includeUsage) send(JSON.stringify({ ...head, choices: [], usage: usage(promptTokens, choices) }));
    } catch (e) {
      const err = toApiError(e);
      if (err.status === 499) return; // the client is gone
      send(JSON.stringify(err.body()));
    }
    send('[DONE]');
    await chain;
  }, async (e) => { process.stderr.write(`llama2 serve: stream error: ${e.message}\n`); });
}

export async function chatCompletions(c: Context, s: ServeState, body: unknown): Promise<Response> {
  const r = parseBody(ChatRequest, body);
  const m = modelIndex(s, r.model);
  const tok = tokenizerOf(s, m);
  let prompt: number[];
  try {
    prompt = renderPrompt(tok, toDialog(r.messages));
  } catch (e) {
    throw toApiError(e, 'messages');
  }
  const top = r.top_logprobs ?? 0;
  if (top > 0 && !r.logprobs) throw new ApiError(400, 'top_logprobs: expected logprobs: true alongside it', 'top_logprobs');
  const job = jobOf(s, m, prompt, r, top, r.logprobs ?? false);
  const lps = (ch: ChoiceState) => (r.logprobs ? { content: ch.lps.map((lp) => chatLogprob(tok, lp)) } : null);
  return answer(c, s, [job], r.stream ?? false, r.stream_options?.include_usage ?? false, {
    id: completionId('chatcmpl'), object: 'chat.completion', chunkObject: 'chat.completion.chunk',
    first: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
    delta: (ch, text, lp) => ({ index: ch.index, delta: { content: text }, logprobs: lp ? { content: [chatLogprob(tok, lp)] } : null, finish_reason: null }),
    finish: (ch) => ({ index: ch.index, delta: {}, logprobs: null, finish_reason: ch.finish }),
    whole: (ch) => ({ index: ch.index, message: { role: 'assistant', content: ch.text, refusal: null }, logprobs: lps(ch), finish_reason: ch.finish }),
  }, prompt.length);
}

/** completions' legacy log-probs of a choice's tokens, text offsets counted from `from` */
function legacyLogprobs(tok: Tokenizer | null, lps: Lp[], from: number) {
  const name = (id: number) => (tok ? tokenText(tok, id).token : String(id));
  const offsets: number[] = [];
  let at = from;
  for (const lp of lps) { offsets.push(at); at += name(lp.token).length; }
  return {
    tokens: lps.map((lp) => name(lp.token)), token_logprobs: lps.map((lp) => lp.logprob),
    top_logprobs: lps.map((lp) => Object.fromEntries((lp.top ?? []).map((t) => [name(t.id), t.logprob]))), text_offset: offsets,
  };
}

export async function completions(c: Context, s: ServeState, body: unknown): Promise<Response> {
  const r = parseBody(CompletionRequest, body);
  const m = modelIndex(s, r.model);
  const p = r.prompt;
  const prompts: number[][] = typeof p === 'string' ? [tokenizerOf(s, m).encode(p, { bos: true })]
    : typeof p[0] === 'number' ? [p as number[]]
    : typeof p[0] === 'string' ? (p as string[]).map((t) => tokenizerOf(s, m).encode(t, { bos: true }))
    : (p as number[][]);
  const top = r.logprobs ?? 0;
  const wantLp = r.logprobs !== null && r.logprobs !== undefined;
  const jobs = prompts.map((ids) => jobOf(s, m, ids, r, top, wantLp));
  const tok = s.engine.models[m]!.tokenizer;
  const sent = new Map<number, number>(); // streamed characters per choice (text offsets)
  return answer(c, s, jobs, r.stream ?? false, r.stream_options?.include_usage ?? false, {
    id: completionId('cmpl'), object: 'text_completion', chunkObject: 'text_completion',
    delta: (ch, text, lp) => {
      const at = sent.get(ch.index) ?? 0;
      sent.set(ch.index, at + text.length);
      return { index: ch.index, text, logprobs: lp ? legacyLogprobs(tok, [lp], at) : null, finish_reason: null };
    },
    finish: (ch) => ({ index: ch.index, text: '', logprobs: null, finish_reason: ch.finish }),
    whole: (ch) => ({ index: ch.index, text: ch.text, logprobs: wantLp ? legacyLogprobs(tok, ch.lps, 0) : null, finish_reason: ch.finish }),
  }, prompts.reduce((a, q) => a + q.length, 0));
}
