/**
 * The HTTP side of `llama2 serve` (Hono on Node's http server): routes, the safe defaults and
 * the errors. Every error leaves in OpenAI's shape (errors.ts): malformed JSON and bad fields 400
 * naming the field, a missing or wrong key 401, an oversize body 413, a full queue 429 with
 * Retry-After, and never a stack trace.
 *
 *   GET  /health                 {"status": "ok"} (503 while the models load); no key needed
 *   GET  /v1/models              the models (--model, --model-b)
 *   POST /v1/chat/completions    OpenAI chat (openai.ts)       POST /v1/completions   OpenAI text
 *   POST /tokenize, /detokenize  llama.cpp's shapes
 *   POST /v1/rewards             scores of a dialog by the reward models (not OpenAI; 501 without them)
 *   POST /v1/preferences         a compare-mode choice → one line of the --prefs JSONL (not OpenAI)
 *   GET  /v1/preferences         that file, for download
 *   GET  /, /chat.js, /chat.css  the chat page (web/), served from the package
 *
 * Safe defaults: --api-key (Bearer) guards every endpoint but /health and the page's static
 * files (the page asks for the key); CORS only with --cors; bodies over --max-body are refused
 * before they are read whole; nothing in a request names a file (the preference file is --prefs).
 *
 * What it is not: the engine (engine.ts, worker.ts) or the OpenAI shapes (openai.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { combinedReward, toUnit } from '../chat/reward-score.js';
import { appendPreference, type PreferenceRecord, type SafetyBin } from '../data/preferences.js';
import { ApiError, toApiError } from './errors.js';
import type { ServeState } from './jobs.js';
import { modelIndex, tokenizerOf } from './jobs.js';
import { chatCompletions, completions } from './openai.js';
import { DetokenizeRequest, parseBody, PreferenceRequest, RewardRequest, TokenizeRequest } from './schemas.js';

export interface AppOptions {
  apiKey?: string;
  /** allowed origin for CORS (none: CORS off) */
  cors?: string;
  /** most bytes of a request body */
  maxBody: number;
  /** the preference JSONL the compare page appends to */
  prefs: string;
  /** meta.batch of the preferences written */
  batch: number;
}

/** the chat page's files (web/ at the package root), read once */
function pageFiles(): Map<string, { type: string; body: string }> {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('llama2 serve: no package.json above the server module (the page lives in web/ beside it)');
    dir = up;
  }
  const types: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
  const files = new Map<string, { type: string; body: string }>();
  for (const name of ['index.html', 'chat.js', 'chat.css']) {
    files.set(name === 'index.html' ? '/' : `/${name}`, { type: types[name.split('.').pop()!]!, body: readFileSync(join(dir, 'web', name), 'utf8') });
  }
  return files;
}

/** safety labels of the chosen and the other answer → the paper's bin */
export function safetyBin(chosenSafe: boolean, otherSafe: boolean): SafetyBin {
  if (chosenSafe) return otherSafe ? 'both_safe' : 'safe_over_unsafe';
  return otherSafe ? 'unsafe_over_safe' : 'both_unsafe';
}

async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `malformed JSON in the request body: ${(e as Error).message}`);
  }
}

/** The app; `state()` is null while the models load (every endpoint but the page and /health then answers 503). */
export function createApp(o: AppOptions, state: () => ServeState | null): Hono {
  const app = new Hono();
  const page = pageFiles();
  app.onError((e, c) => {
    const err = toApiError(e);
    return c.json(err.body(), err.status as 400, err.headers);
  });
  app.notFound((c) => c.json(new ApiError(404, `no endpoint ${c.req.method} ${c.req.path} (see GET /v1/models, POST /v1/chat/completions)`).body(), 404));
  if (o.cors) app.use('*', cors({ origin: o.cors, allowHeaders: ['Authorization', 'Content-Type'], allowMethods: ['GET', 'POST', 'OPTIONS'] }));
  app.use('*', bodyLimit({
    maxSize: o.maxBody,
    onError: (c) => c.json(new ApiError(413, `the request body is larger than the server's limit of ${o.maxBody} bytes (--max-body)`, null, 'request_too_large').body(), 413),
  }));
  app.use('*', async (c, next) => {
    const open = c.req.path === '/health' || (c.req.method === 'GET' && page.has(c.req.path)) || c.req.method === 'OPTIONS';
    if (o.apiKey !== undefined && !open) {
      const h = c.req.header('authorization') ?? '';
      if (h !== `Bearer ${o.apiKey}`) {
        throw new ApiError(401, h ? 'Incorrect API key provided (Authorization: Bearer …)' : 'Missing API key: send Authorization: Bearer <key> (the server was started with --api-key)', null, 'invalid_api_key');
      }
    }
    await next();
  });
  const need = (): ServeState => {
    const s = state();
    if (!s) throw new ApiError(503, 'the model is still loading', null, 'loading', { 'Retry-After': '1' });
    return s;
  };

  for (const [path, f] of page) app.get(path, (c) => c.body(f.body, 200, { 'Content-Type': f.type, 'Cache-Control': 'no-cache' }));
  app.get('/health', (c) => (state() ? c.json({ status: 'ok' }) : c.json({ status: 'loading model' }, 503)));
  app.get('/v1/models', (c) => {
    const s = need();
    return c.json({
      object: 'list',
      data: s.modelIds.map((id, i) => ({
        id, object: 'model', created: 0, owned_by: 'llama2-ts',
        meta: { backend: s.engine.models[i]!.backend, n_ctx: s.engine.models[i]!.ctx, n_vocab: s.engine.models[i]!.vocabSize, parallel: s.parallel, rewards: s.engine.rewards },
      })),
    });
  });
  app.post('/v1/chat/completions', async (c) => chatCompletions(c, need(), await jsonBody(c)));
  app.post('/v1/completions', async (c) => completions(c, need(), await jsonBody(c)));
  app.post('/tokenize', async (c) => {
    const s = need();
    const r = parseBody(TokenizeRequest, await jsonBody(c));
    const tok = tokenizerOf(s, modelIndex(s, r.model));
    const ids = tok.encode(r.content, { bos: r.add_special ?? false });
    return c.json({ tokens: r.with_pieces ? ids.map((id) => ({ id, piece: tok.surface(id, false) })) : ids });
  });
  app.post('/detokenize', async (c) => {
    const s = need();
    const r = parseBody(DetokenizeRequest, await jsonBody(c));
    const m = modelIndex(s, r.model);
    const tok = tokenizerOf(s, m);
    const bad = r.tokens.findIndex((id) => id >= tok.vocabSize);
    if (bad >= 0) throw new ApiError(400, `tokens[${bad}]: token id ${r.tokens[bad]} is outside the vocabulary (0..${tok.vocabSize - 1})`, `tokens[${bad}]`);
    return c.json({ content: tok.decode(r.tokens) });
  });
  app.post('/v1/rewards', async (c) => {
    const s = need();
    const r = parseBody(RewardRequest, await jsonBody(c));
    if (!s.engine.rewards) throw new ApiError(501, 'rewards: the server was started without reward models; pass --rm-helpful H --rm-safety S (models with a score.weight head)', null, 'no_reward_models');
    if (r.messages[r.messages.length - 1]!.role !== 'assistant') throw new ApiError(400, 'messages: expected the dialog to end with the assistant answer to score', 'messages');
    const raw = await s.engine.reward(r.messages);
    const unit = { helpful: toUnit(raw.helpful), safety: toUnit(raw.safety) };
    const safetyPrompt = r.safety_prompt ?? false;
    return c.json({ object: 'reward', scores: raw, unit, combined: combinedReward({ ...unit, safetyPrompt }), safety_prompt: safetyPrompt });
  });
  app.post('/v1/preferences', async (c) => {
    const r = parseBody(PreferenceRequest, await jsonBody(c));
    const last = r.prompt[r.prompt.length - 1]!;
    if (last.role !== 'user') throw new ApiError(400, 'prompt: expected the dialog before the answers to end with a user message', 'prompt');
    const other = 1 - r.chosen;
    const rec: PreferenceRecord = {
      prompt: r.prompt,
      chosen: [{ role: 'assistant', content: r.answers[r.chosen]!.content }],
      rejected: [{ role: 'assistant', content: r.answers[other]!.content }],
      meta: {
        level: r.level, safety_bin: safetyBin(r.safe[r.chosen]!, r.safe[other]!), is_safety_prompt: r.is_safety_prompt,
        batch: o.batch, models: r.answers.map((a) => a.model), source: 'human', chosen_index: r.chosen, created: Math.floor(Date.now() / 1000),
      },
    };
    appendPreference(o.prefs, rec);
    return c.json({ object: 'preference', file: basename(o.prefs), meta: rec.meta });
  });
  app.get('/v1/preferences', (c) => {
    const body = existsSync(o.prefs) ? readFileSync(o.prefs) : Buffer.alloc(0);
    return c.body(body, 200, { 'Content-Type': 'application/x-ndjson', 'Content-Disposition': `attachment; filename="${basename(o.prefs).replace(/["\\\r\n]/g, '_')}"` });
  });
  return app;
}
