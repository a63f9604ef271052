/**
 * `llama2 generate`: complete a prompt (text, a text file, or token ids), streaming or as one JSON
 * object. With token ids in, no tokenizer is needed: the output is ids (`text` null in the JSON).
 */
import type { CommandSpec, FlagValues } from './args.js';
import { bool, list, num, str } from './args.js';
import { MODEL_FLAGS, SAMPLING_FLAGS, openFromFlags, parseIds, readTextInput, requireModelPath, samplerFromFlags, wantJson } from './common.js';
import { requireTokenizer } from '../open.js';
import { generateStream, type GenerateResult } from '../generate/generate.js';
import { Llama2Error } from '../util/errors.js';

/** EOS when there is no tokenizer to say: Llama-2's `</s>` (the SentencePiece default id). */
export const LLAMA2_EOS_ID = 2;

export const spec: CommandSpec = {
  name: 'generate',
  summary: 'Continue a prompt with a model.',
  usage: 'llama2 generate --model PATH (--prompt TEXT | --prompt-file FILE | --prompt-ids 1,2,3) [options]',
  flags: [
    ...MODEL_FLAGS,
    { name: 'prompt', short: 'p', type: 'string', meta: 'TEXT', help: 'prompt text (BOS is added)' },
    { name: 'prompt-file', type: 'string', meta: 'FILE', help: 'read the prompt text from a UTF-8 file ("-": stdin)' },
    { name: 'prompt-ids', type: 'string', meta: 'IDS', help: 'prompt as comma-separated token ids, used as given (no tokenizer needed)' },
    { name: 'bos', type: 'boolean', default: true, help: 'add BOS before a text prompt (--no-bos to omit)' },
    { name: 'ignore-eos', type: 'boolean', default: false, help: 'keep generating after EOS' },
    ...SAMPLING_FLAGS,
    { name: 'json', type: 'boolean', default: false, help: 'print one JSON object {prompt_ids, ids, text, finish_reason, timings}' },
  ],
  notes:
    'A prompt longer than the context is an error. Output streams to stdout as it is generated;\n' +
    'timings go to stderr (or into the JSON object with --json). Ctrl-C stops generation.\n' +
    'With --prompt-ids and a model that has no tokenizer, the output is token ids (text null in the\n' +
    `JSON), EOS is id ${LLAMA2_EOS_ID} (Llama-2's </s>) and --stop is not available.`,
};

export function resultJson(r: GenerateResult<string | null>, loadMs?: number): Record<string, unknown> {
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
  const inputs = (['prompt', 'prompt-file', 'prompt-ids'] as const).filter((k) => str(f, k) !== undefined);
  if (inputs.length !== 1) {
    throw new Llama2Error(`generate: give exactly one of --prompt TEXT, --prompt-file FILE or --prompt-ids 1,2,3${inputs.length ? ` (found ${inputs.map((k) => `--${k}`).join(' and ')})` : ''}`);
  }
  const sampler = samplerFromFlags(f);
  const idsArg = str(f, 'prompt-ids');
  const promptFile = str(f, 'prompt-file');
  const text = promptFile !== undefined ? await readTextInput(promptFile, '--prompt-file') : str(f, 'prompt');
  const stop = list(f, 'stop');
  const t0 = performance.now();
  const opened = openFromFlags(f, 'generate');
  const loadMs = performance.now() - t0;
  const tok = text !== undefined || stop.length > 0 ? requireTokenizer(opened, modelPath) : opened.tokenizer;
  const promptIds = text !== undefined ? tok!.encode(text, { bos: bool(f, 'bos') }) : parseIds(idsArg!, '--prompt-ids', opened.model.config.vocab_size);
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  const json = wantJson(f);
  const it = generateStream(opened.model, tok, promptIds, {
    ...sampler, maxTokens: num(f, 'max-tokens'), stop, stopAtEos: !bool(f, 'ignore-eos'), signal: ac.signal,
    eosId: tok ? undefined : LLAMA2_EOS_ID,
  });
  let res: GenerateResult<string | null>;
  for (;;) {
    const r = await it.next();
    if (r.done) { res = r.value; break; }
    if (!json) process.stdout.write(tok ? r.value.text : `${r.value.id} `);
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
