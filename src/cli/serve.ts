/**
 * `llama2 serve`: an OpenAI-compatible HTTP server with continuous batching and a chat page that
 * collects preference labels. This module parses flags, starts listening (GET /health answers
 * 503 until the models are open), starts the engine worker and prints the address; the server
 * itself is src/serve/.
 */
import { basename } from 'node:path';
import { serve } from '@hono/node-server';
import type { CommandSpec, FlagValues } from './args.js';
import { num, str } from './args.js';
import { MODEL_FLAGS, SAMPLING_FLAGS, requireModelPath, samplerFromFlags } from './common.js';
import { Llama2Error } from '../util/errors.js';
import { Engine } from '../serve/engine.js';
import { createApp } from '../serve/app.js';
import type { ServeState } from '../serve/jobs.js';

const SAMPLER_DEFAULTS = SAMPLING_FLAGS.filter((f) => f.name !== 'max-tokens' && f.name !== 'stop')
  .map((f) => ({ ...f, help: f.name === 'seed' ? 'server seed: a request without "seed" gets hashSeed(server seed, its number)' : `${f.help} — for requests that leave it out` }));

export const spec: CommandSpec = {
  name: 'serve',
  summary: 'llama2 serve — an OpenAI-compatible server (continuous batching) and a chat page that collects preference labels',
  usage: 'llama2 serve --model M [--model-b M2] [--rm-helpful H --rm-safety S] [--host 127.0.0.1] [--port 8080] [--api-key K] [--parallel N] [--ctx N] [--cors ORIGIN]',
  flags: [
    ...MODEL_FLAGS,
    { name: 'model-b', type: 'string', meta: 'PATH', help: "a second model: the chat page's compare mode answers with both (default: one model at two seeds)" },
    { name: 'rm-helpful', type: 'string', meta: 'PATH', help: 'helpfulness reward model (a score.weight head) for POST /v1/rewards; needs --rm-safety' },
    { name: 'rm-safety', type: 'string', meta: 'PATH', help: 'safety reward model for POST /v1/rewards; needs --rm-helpful' },
    { name: 'host', type: 'string', default: '127.0.0.1', help: 'address to listen on (0.0.0.0 exposes the server to the network: use --api-key)' },
    { name: 'port', type: 'int', default: 8080, help: 'port to listen on (0: any free port; the address is printed)' },
    { name: 'api-key', type: 'string', meta: 'KEY', help: 'require "Authorization: Bearer KEY" on every endpoint but /health and the page files' },
    { name: 'parallel', short: 'np', type: 'int', default: 8, help: 'slots per model: sequences decoding together, each with its own KV cache' },
    { name: 'queue', type: 'int', default: 64, help: 'samples that may wait for a slot; more answer 429 with Retry-After' },
    { name: 'prefill-chunk', type: 'int', default: 256, help: 'most prompt tokens per engine step, so running streams keep flowing during a long prompt' },
    { name: 'max-body', type: 'int', default: 1 << 20, help: 'largest request body in bytes (413 beyond)' },
    { name: 'cors', type: 'string', meta: 'ORIGIN', help: 'allow cross-origin requests from ORIGIN (* for any); default: CORS off' },
    { name: 'prefs', type: 'string', meta: 'FILE', default: 'prefs.jsonl', help: "the preference JSONL the chat page's compare mode appends to (in the working directory by default)" },
    { name: 'batch', type: 'int', default: 1, help: 'meta.batch of the preferences written (the collection iteration)' },
    ...SAMPLER_DEFAULTS,
  ],
  notes: 'Endpoints: POST /v1/chat/completions, /v1/completions (OpenAI, SSE with "stream": true), GET /v1/models,\n' +
    'GET /health, POST /tokenize, /detokenize (llama.cpp shapes), POST /v1/rewards, POST|GET /v1/preferences;\n' +
    'the chat page at /. Stop with Ctrl-C.',
};

/** model ids: file or directory names, made distinct */
export function modelIds(paths: string[]): string[] {
  const ids: string[] = [];
  for (const p of paths) {
    let id = basename(p.replace(/\/+$/, '')).replace(/\.(gguf|bin)$/i, '') || 'model';
    while (ids.includes(id)) id += '-b';
    ids.push(id);
  }
  return ids;
}

export async function run(f: FlagValues): Promise<void> {
  const model = requireModelPath(f, 'serve');
  const modelB = str(f, 'model-b');
  const [rmH, rmS] = [str(f, 'rm-helpful'), str(f, 'rm-safety')];
  if ((rmH === undefined) !== (rmS === undefined)) throw new Llama2Error(`serve: --rm-helpful and --rm-safety go together (the combined reward needs both); found only ${rmH ? '--rm-helpful' : '--rm-safety'}`);
  const int = (name: string, min: number) => {
    const v = num(f, name)!;
    if (v < min) throw new Llama2Error(`--${name}: expected an integer ≥ ${min}, found ${v}`);
    return v;
  };
  const parallel = int('parallel', 1), queue = int('queue', 0), chunk = int('prefill-chunk', 1), maxBody = int('max-body', 1024), batch = int('batch', 0);
  const port = int('port', 0);
  if (port > 65535) throw new Llama2Error(`--port: expected an integer in 0..65535, found ${port}`);
  const threads = num(f, 'threads');
  if (threads !== undefined && threads < 1) throw new Llama2Error(`--threads: expected an integer ≥ 1, found ${threads}`);
  const { seed, ...defaults } = samplerFromFlags(f);
  const paths = modelB ? [model, modelB] : [model];
  let state: ServeState | null = null;
  const app = createApp({ apiKey: str(f, 'api-key'), cors: str(f, 'cors'), maxBody, prefs: str(f, 'prefs')!, batch }, () => state);

  const host = str(f, 'host')!;
  const server = serve({ fetch: app.fetch, port, hostname: host });
  const address = await new Promise<string>((resolve, reject) => {
    server.once('listening', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : String(a));
    });
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Llama2Error(`serve: cannot listen on ${host}:${port} (${e.code === 'EADDRINUSE' ? 'the port is in use' : e.code ?? e.message})`)));
  });
  process.stderr.write(`llama2 serve: loading ${paths.join(' and ')} …\n`);
  let engine: Engine;
  try {
    engine = await Engine.start({
      models: paths.map((p) => ({ path: p, tokenizer: str(f, 'tokenizer') })),
      rewards: rmH && rmS ? { helpful: rmH, safety: rmS } : undefined,
      threads, ctx: num(f, 'ctx'), parallel, prefillChunk: chunk,
    });
  } catch (e) {
    server.close();
    throw e;
  }
  // a server must not die of one request's bug: log it, keep serving (the request got its 500)
  process.on('unhandledRejection', (e) => process.stderr.write(`llama2 serve: internal error (please report): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`));
  state = { engine, modelIds: modelIds(paths), parallel, queue, defaults, serverSeed: seed, requests: 0 };
  process.stdout.write(`llama2 serve: listening on ${address} (models: ${state.modelIds.join(', ')}; ${parallel} slots each${engine.rewards ? '; reward models loaded' : ''}; chat page: ${address}/)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      server.close();
      (server as { closeAllConnections?: () => void }).closeAllConnections?.(); // keep-alive clients too
      void engine.close().then(resolve);
      setTimeout(resolve, 2000).unref();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    engine.onFatal = () => { server.close(); resolve(); process.exitCode = 2; };
  });
}
