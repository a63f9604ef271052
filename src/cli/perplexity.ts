/**
 * `llama2 perplexity`: mean negative log-likelihood of a text file under the model, over
 * consecutive non-overlapping windows of the file's tokens, each window preceded by BOS — or, with
 * --protocol llama.cpp, the quantity llama.cpp's llama-perplexity reports (scripts/check-export.sh).
 */
import type { CommandSpec, FlagValues } from './args.js';
import { num, str } from './args.js';
import { MODEL_FLAGS, openFromFlags, readTextInput, requireModelPath, wantJson } from './common.js';
import { requireTokenizer } from '../open.js';
import type { Model } from '../model/forward.js';
import { Llama2Error } from '../util/errors.js';
import { Progress } from './progress.js';

export const spec: CommandSpec = {
  name: 'perplexity',
  summary: 'Measure perplexity of a model on a text file.',
  usage: 'llama2 perplexity --model PATH --file TEXT_FILE [--ctx N] [--json]',
  flags: [
    ...MODEL_FLAGS.filter((f) => f.name !== 'ctx'),
    { name: 'file', short: 'f', type: 'string', meta: 'FILE', help: 'UTF-8 text file to score ("-": stdin; required)' },
    { name: 'ctx', type: 'int', meta: 'N', help: "tokens per window (default: the model's context)" },
    { name: 'protocol', type: 'string', meta: 'windows|llama.cpp', default: 'windows', help: 'windows: as below; llama.cpp: llama-perplexity\'s (see below)' },
    { name: 'json', type: 'boolean', default: false, help: 'print {"tokens", "nll", "ppl"}' },
  ],
  notes:
    'The file is tokenized as one text (no BOS), cut into consecutive windows of --ctx tokens (the last\n' +
    'may be shorter); each window is run after a BOS token and each of its tokens is scored given the\n' +
    'tokens before it in that window. nll is the mean negative log-likelihood in nats, ppl = exp(nll).\n' +
    'With --protocol llama.cpp the number is the one llama.cpp\'s llama-perplexity -c N prints: the text\n' +
    'tokenized with BOS, floor(tokens / N) windows each starting with BOS in place of its first token,\n' +
    'only the second half of each window scored.\n' +
    'A byte that is not UTF-8 is an error naming its offset. A progress bar runs on stderr when it is a terminal.',
};

/**
 * Adds the negative log-likelihood of seq[i+1] given seq[..i] for every i in from..len-2 to `acc`
 * (nats, count), running the model over seq in forward calls of ≤ 128 positions (bounds the logits
 * buffer to 128 × V); `onProgress` gets acc.tokens after each call.
 */
function scoreSequence(
  model: Model, seq: readonly number[], from: number, acc: { nll: number; tokens: number }, onProgress?: (done: number) => void,
): void {
  const V = model.config.vocab_size;
  const CHUNK = 128;
  const cache = model.newCache(seq.length);
  for (let c0 = 0; c0 < seq.length - 1; c0 += CHUNK) {
    const part = seq.slice(c0, Math.min(c0 + CHUNK, seq.length - 1));
    const logits = model.step(part, cache, 'all'); // (n, V)
    for (let i = Math.max(0, from - c0); i < part.length; i++) {
      const row = logits.subarray(i * V, (i + 1) * V);
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (row[v]! > max) max = row[v]!;
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(row[v]! - max);
      acc.nll += max + Math.log(s) - row[seq[c0 + i + 1]!]!;
      acc.tokens++;
    }
    onProgress?.(acc.tokens);
  }
}

/**
 * Scores tokens in windows; returns the total NLL (nats) and the number of scored tokens.
 * `onProgress` gets the number of tokens scored so far after every forward call (≤ 128 positions).
 */
export function scoreWindows(
  model: Model, bosId: number, ids: readonly number[], ctx: number, onProgress?: (done: number) => void,
): { nll: number; tokens: number } {
  const acc = { nll: 0, tokens: 0 };
  for (let w0 = 0; w0 < ids.length; w0 += ctx) scoreSequence(model, [bosId, ...ids.slice(w0, w0 + ctx)], 0, acc, onProgress);
  return acc;
}

/**
 * llama.cpp's llama-perplexity protocol, for comparing with it: `ids` is the text tokenized with
 * BOS; it is cut into floor(len / ctx) windows of ctx tokens, each window's first token replaced
 * by BOS, and only the second half of each window is scored (positions ctx/2 .. ctx-2 predicting
 * the next token), so every scored token has at least ctx/2 tokens of context.
 */
export function scoreLlamaCpp(
  model: Model, bosId: number, ids: readonly number[], ctx: number, onProgress?: (done: number) => void,
): { nll: number; tokens: number } {
  if (ids.length < 2 * ctx) {
    throw new Llama2Error(`--protocol llama.cpp: the text tokenizes to ${ids.length} tokens; llama-perplexity needs at least 2 × --ctx = ${2 * ctx}`);
  }
  const acc = { nll: 0, tokens: 0 };
  for (let c = 0; c + ctx <= ids.length; c += ctx) {
    const win = ids.slice(c, c + ctx);
    win[0] = bosId;
    scoreSequence(model, win, Math.floor(ctx / 2), acc, onProgress);
  }
  return acc;
}

export async function run(f: FlagValues): Promise<void> {
  const modelPath = requireModelPath(f, 'perplexity');
  const file = str(f, 'file');
  if (!file) throw new Llama2Error('perplexity: --file TEXT_FILE is required');
  const text = await readTextInput(file, '--file');
  const opened = openFromFlags({ ...f, ctx: undefined }, 'perplexity');
  const tok = requireTokenizer(opened, modelPath);
  const maxCtx = opened.model.config.max_seq_len;
  const ctx = num(f, 'ctx') ?? maxCtx;
  if (!Number.isInteger(ctx) || ctx < 1 || ctx > maxCtx) {
    throw new Llama2Error(`--ctx: expected an integer in 1..${maxCtx} (the model's context), found ${ctx}`);
  }
  const protocol = str(f, 'protocol');
  if (protocol !== 'windows' && protocol !== 'llama.cpp') throw new Llama2Error(`--protocol: expected windows or llama.cpp, found "${protocol}"`);
  const cpp = protocol === 'llama.cpp';
  const ids = tok.encode(text, { bos: cpp });
  if (ids.length === 0) throw new Llama2Error(`--file ${file}: the file holds no text to score`);
  const total = cpp ? Math.floor(ids.length / ctx) * (ctx - Math.floor(ctx / 2) - 1) : ids.length;
  const bar = new Progress('perplexity', total, 'tokens'); // stderr, on a terminal only
  const t0 = performance.now();
  const r = (cpp ? scoreLlamaCpp : scoreWindows)(opened.model, tok.bosId, ids, ctx, (d) => bar.update(d));
  bar.done();
  const nll = r.nll / r.tokens;
  const out = { tokens: r.tokens, nll, ppl: Math.exp(nll), ctx, protocol, seconds: (performance.now() - t0) / 1000 };
  if (wantJson(f)) process.stdout.write(JSON.stringify(out) + '\n');
  else process.stdout.write(`tokens ${out.tokens}  nll ${nll.toFixed(4)} nats  ppl ${out.ppl.toFixed(3)}  (ctx ${ctx})\n`);
}
