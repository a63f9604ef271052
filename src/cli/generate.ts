/** `llama2 generate`: complete a prompt (text or token ids), streaming or as one JSON object. */
import type { CommandSpec, FlagValues } from './args.js';
import { bool, list, num, str } from './args.js';
import { MODEL_FLAGS, SAMPLING_FLAGS, openFromFlags, requireModelPath, samplerFromFlags, wantJson } from './common.js';
import { requireTokenizer } from '../open.js';
import { generateStream, type GenerateResult } from '../generate/generate.js';
import { Llama2Error } from '../util/errors.js';

export const spec: CommandSpec = {
  name: 'generate',
  summary: 'Continue a prompt with a model.',
  usage: 'llama2 generate --model PATH (--prompt TEXT | --prompt-ids 1,2,3) [options]',
  flags: [
    ...MODEL_FLAGS,
    { name: 'prompt', short: 'p', type: 'string', meta: 'TEXT', help: 'prompt text (BOS is added)' },
    { name: 'prompt-ids', type: 'list', meta: 'IDS', help: 'prompt as comma-separated token ids, used as given' },
    { name: 'bos', type: 'boolean', default: true, help: 'add BOS before a text prompt (--no-bos to omit)' },
    { name: 'ignore-eos', type: 'boolean', default: false, help: 'keep generating after EOS' },
    ...SAMPLING_FLAGS,
    { name: 'json', type: 'boolean', default: false, help: 'print one JSON object {prompt_ids, ids, text, finish_reason, timings}' },
  ],
  notes:
    'A prompt longer than the context is an error. Output streams to stdout as it is generated;\n' +
    'timings go to stderr (or into the JSON object with --json). Ctrl-C stops generation.',
};

export function resultJson(r: GenerateResult, loadMs?: number): Record<string, unknown> {
  return {
    prompt_ids: r.promptIds,
    ids: r.ids,
    text: r.text,
    finish_reason: r.finishReason,
    timings: {
      ...(loadMs === undefined ? {} : { load_ms: round(loadMs) }),
      prompt_tokens: r.timings.promptTokens,
      generated_tokens: r.timings.generatedTokens,
      prefill_ms: round(r.timings.prefillMs),
      decode_ms: round(r.timings.decodeMs),
      prefill_tokens_per_s: round(r.timings.prefillTokPerSec),
      decode_tokens_per_s: round(r.timings.decodeTokPerSec),
    },
  };
}

const round = (x: number) => Math.round(x * 100) / 100;

export async function run(f: FlagValues): Promise<void> {
  const modelPath = requireModelPath(f, 'generate');
  const text = str(f, 'prompt');
  const idsArg = list(f, 'prompt-ids');
  if ((text === undefined) === (idsArg.length === 0)) {
    throw new Llama2Error('generate: give exactly one of --prompt TEXT or --prompt-ids 1,2,3');
  }
  const sampler = samplerFromFlags(f);
  const t0 = performance.now();
  const opened = openFromFlags(f, 'generate');
  const loadMs = performance.now() - t0;
  const tok = requireTokenizer(opened, modelPath);
  let promptIds: number[];
  if (text !== undefined) {
    promptIds = tok.encode(text, { bos: bool(f, 'bos') });
  } else {
    promptIds = idsArg.map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0 || n >= opened.model.config.vocab_size) {
        throw new Llama2Error(`--prompt-ids: expected token ids in 0..${opened.model.config.vocab_size - 1}, found "${s}"`);
      }
      return n;
    });
  }
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  const json = wantJson(f);
  const it = generateStream(opened.model, tok, promptIds, {
    ...sampler, maxTokens: num(f, 'max-tokens'), stop: list(f, 'stop'), stopAtEos: !bool(f, 'ignore-eos'), signal: ac.signal,
  });
  let res: GenerateResult;
  for (;;) {
    const r = await it.next();
    if (r.done) { res = r.value; break; }
    if (!json) process.stdout.write(r.value.text);
  }
  process.off('SIGINT', onSig);
  if (json) {
    process.stdout.write(JSON.stringify(resultJson(res, loadMs)) + '\n');
  } else {
    process.stdout.write('\n');
    const t = res.timings;
    process.stderr.write(
      `[load ${(loadMs / 1000).toFixed(1)} s | ${t.promptTokens} prompt tokens: ${t.prefillTokPerSec.toFixed(1)} tok/s | ${t.generatedTokens} generated: ` +
        `${t.decodeTokPerSec.toFixed(1)} tok/s | ${res.finishReason}]\n`,
    );
  }
}
