/**
 * `llama2 chat`: a Llama-2 chat session in the terminal. Keeps the dialog history, renders it
 * with Meta's chat format each turn, and drops the oldest turns (keeping the system prompt) when
 * the dialog outgrows the context. With stdin not a terminal it answers one prompt and exits.
 */
import { createInterface } from 'node:readline/promises';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, list, num, str } from './args.js';
import { MODEL_FLAGS, SAMPLING_FLAGS, openFromFlags, requireModelPath, samplerFromFlags, wantJson } from './common.js';
import { requireTokenizer } from '../open.js';
import { generateStream, type GenerateResult } from '../generate/generate.js';
import { fitDialog, type Message } from '../chat/format.js';
import { resultJson } from './generate.js';
import type { Model } from '../model/forward.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { SamplerOptions } from '../generate/sampler.js';
import { decodeUtf8 } from '../util/utf8.js';

export const spec: CommandSpec = {
  name: 'chat',
  summary: 'Chat with a Llama-2 chat model.',
  usage: 'llama2 chat --model PATH [--system TEXT] [options]',
  flags: [
    ...MODEL_FLAGS,
    { name: 'system', short: 's', type: 'string', meta: 'TEXT', help: 'system prompt, kept for the whole session' },
    ...SAMPLING_FLAGS,
    { name: 'json', type: 'boolean', default: false, help: 'non-interactive mode: print the answer as a JSON object' },
  ],
  notes:
    'Interactive when stdin is a terminal (/reset clears the history, /exit or Ctrl-D quits, Ctrl-C stops an\n' +
    'answer). Otherwise stdin is read as one user message, answered, and the command exits.\n' +
    'When the dialog no longer fits the context, the oldest user/assistant turns are dropped and the\n' +
    'system prompt is kept; a single message that does not fit is an error.',
};

async function answer(
  model: Model, tok: Tokenizer, dialog: Message[], sampler: SamplerOptions, f: FlagValues, echo: boolean, signal?: AbortSignal,
): Promise<GenerateResult> {
  const ctx = model.config.max_seq_len;
  const maxNew = num(f, 'max-tokens') ?? Math.min(512, Math.floor(ctx / 2));
  const fitted = fitDialog(tok, dialog, ctx - Math.min(maxNew, ctx - 1));
  if (fitted.droppedPairs > 0 && echo) process.stderr.write(`[dropped the ${fitted.droppedPairs} oldest turn(s) to fit the context]\n`);
  const ids = fitted.ids;
  const it = generateStream(model, tok, ids, { ...sampler, maxTokens: maxNew, stop: list(f, 'stop'), signal });
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
    if (echo) process.stdout.write(r.value.text);
  }
}

export async function run(f: FlagValues): Promise<void> {
  const modelPath = requireModelPath(f, 'chat');
  const sampler = samplerFromFlags(f);
  const t0 = performance.now();
  const opened = openFromFlags(f, 'chat');
  const loadMs = performance.now() - t0;
  const tok = requireTokenizer(opened, modelPath);
  const system = str(f, 'system');
  const history: Message[] = system ? [{ role: 'system', content: system }] : [];

  if (!process.stdin.isTTY || bool(f, 'json')) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const prompt = decodeUtf8(Buffer.concat(chunks), 'chat: stdin');
    const res = await answer(opened.model, tok, [...history, { role: 'user', content: prompt }], sampler, f, !wantJson(f));
    if (wantJson(f)) process.stdout.write(JSON.stringify(resultJson(res, loadMs)) + '\n');
    else process.stdout.write('\n');
    return;
  }

  const rl = createInterface({ input: process.stdin, output: process.stdout });
  process.stdout.write(`chat with ${modelPath} — /reset clears the history, /exit quits\n`);
  let ac: AbortController | null = null;
  rl.on('SIGINT', () => {
    if (ac) ac.abort();
    else rl.close();
  });
  for (;;) {
    let line: string;
    try {
      line = await rl.question('> ');
    } catch {
      break; // closed (Ctrl-D / Ctrl-C at the prompt)
    }
    const text = line.trim();
    if (text === '/exit' || text === '/quit') break;
    if (text === '/reset') { history.splice(system ? 1 : 0); continue; }
    if (!text) continue;
    const dialog: Message[] = [...history, { role: 'user', content: text }];
    ac = new AbortController();
    try {
      const res = await answer(opened.model, tok, dialog, sampler, f, true, ac.signal);
      process.stdout.write(`\n[${res.timings.decodeTokPerSec.toFixed(1)} tok/s]\n`);
      history.push({ role: 'user', content: text }, { role: 'assistant', content: res.text });
    } catch (e) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
    } finally {
      ac = null;
    }
  }
  rl.close();
}
