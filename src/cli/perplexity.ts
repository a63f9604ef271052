/**
 * `llama2 perplexity`: mean negative log-likelihood of a text file under the model, over
 * consecutive non-overlapping windows of the file's tokens, each window preceded by BOS.
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
    { name: 'json', type: 'boolean', default: false, help: 'print {"tokens", "nll", "ppl"}' },
  ],
  notes:
    'The file is tokenized as one text (no BOS), cut into consecutive windows of --ctx tokens (the last\n' +
    'may be shorter); each window is run after a BOS token and each of its tokens is scored given the\n' +
    'tokens before it in that window. nll is the mean negative log-likelihood in nats, ppl = exp(nll).\n' +
    'A byte that is not UTF-8 is an error naming its offset. A progress bar runs on stderr when it is a terminal.',
};

/**
 * Scores tokens in windows; returns the total NLL (nats) and the number of scored tokens.
 * `onProgress` gets the number of tokens scored so far after every forward call (≤ 128 positions).
 */
export function scoreWindows(
  model: Model, bosId: number, ids: readonly number[], ctx: number, onProgress?: (done: number) => void,
): { nll: number; tokens: number } {
  const V = model.config.vocab_size;
  const CHUNK = 128; // positions per forward call, bounds the logits buffer to CHUNK × V
  let total = 0;
  let count = 0;
  for (let w0 = 0; w0 < ids.length; w0 += ctx) {
    const win = ids.slice(w0, w0 + ctx);
    const seq = [bosId, ...win]; // position i predicts seq[i+1]
    const cache = model.newCache(seq.length);
    for (let c0 = 0; c0 < seq.length - 1; c0 += CHUNK) {
      const part = seq.slice(c0, Math.min(c0 + CHUNK, seq.length - 1));
      const logits = model.step(part, cache, 'all'); // (n, V)
      for (let i = 0; i < part.length; i++) {
        const row = logits.subarray(i * V, (i + 1) * V);
        let max = -Infinity;
        for (let v = 0; v < V; v++) if (row[v]! > max) max = row[v]!;
        let s = 0;
        for (let v = 0; v < V; v++) s += Math.exp(row[v]! - max);
        total += max + Math.log(s) - row[seq[c0 + i + 1]!]!;
        count++;
      }
      onProgress?.(count);
    }
  }
  return { nll: total, tokens: count };
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
  const ids = tok.encode(text, { bos: false });
  if (ids.length === 0) throw new Llama2Error(`--file ${file}: the file holds no text to score`);
  const bar = new Progress('perplexity', ids.length, 'tokens'); // stderr, on a terminal only
  const t0 = performance.now();
  const r = scoreWindows(opened.model, tok.bosId, ids, ctx, (d) => bar.update(d));
  bar.done();
  const nll = r.nll / r.tokens;
  const out = { tokens: r.tokens, nll, ppl: Math.exp(nll), ctx, seconds: (performance.now() - t0) / 1000 };
  if (wantJson(f)) process.stdout.write(JSON.stringify(out) + '\n');
  else process.stdout.write(`tokens ${out.tokens}  nll ${nll.toFixed(4)} nats  ppl ${out.ppl.toFixed(3)}  (ctx ${ctx})\n`);
}
