/** Flags and helpers shared by the commands that run a model: model flags, sampling flags, text and id inputs. */
import { readFileSync } from 'node:fs';
import type { FlagSpec, FlagValues } from './args.js';
import { num, str, bool } from './args.js';
import { openModel, type OpenedModel } from '../open.js';
import { DEFAULT_SAMPLER, validateSampler, type SamplerOptions } from '../generate/sampler.js';
import { Llama2Error, describe } from '../util/errors.js';
import { decodeUtf8 } from '../util/utf8.js';

export const MODEL_FLAGS: FlagSpec[] = [
  { name: 'model', short: 'm', type: 'string', meta: 'PATH', help: 'model: .gguf file, llama2.c .bin, or a Hugging Face / Meta directory (required)' },
  { name: 'tokenizer', type: 'string', meta: 'FILE', help: 'tokenizer.model / tokenizer.json / tokenizer.bin (default: the one found with the model)' },
  { name: 'threads', short: 't', type: 'int', meta: 'N', help: 'CPU threads for the native backend (default: physical cores)' },
  { name: 'ctx', type: 'int', meta: 'N', help: "context length (default: the model's)" },
];

export const SAMPLING_FLAGS: FlagSpec[] = [
  { name: 'temperature', type: 'number', default: DEFAULT_SAMPLER.temperature, help: 'sampling temperature; 0 = greedy' },
  { name: 'top-k', type: 'int', default: DEFAULT_SAMPLER.topK, help: 'keep the k most likely tokens; 0 = off' },
  { name: 'top-p', type: 'number', default: DEFAULT_SAMPLER.topP, help: 'nucleus sampling mass in (0, 1]; 1 = off' },
  { name: 'min-p', type: 'number', default: DEFAULT_SAMPLER.minP, help: 'drop tokens below min-p × p(best), in [0, 1)' },
  { name: 'repeat-penalty', type: 'number', default: DEFAULT_SAMPLER.repetitionPenalty, help: 'repetition penalty (> 0; 1 = off)' },
  { name: 'frequency-penalty', type: 'number', default: DEFAULT_SAMPLER.frequencyPenalty, help: 'subtract this × count from seen tokens' },
  { name: 'presence-penalty', type: 'number', default: DEFAULT_SAMPLER.presencePenalty, help: 'subtract this from seen tokens' },
  { name: 'repeat-last-n', type: 'int', default: DEFAULT_SAMPLER.penaltyLastN, help: 'penalties look at this many recent tokens; -1 = all' },
  { name: 'seed', type: 'int', default: DEFAULT_SAMPLER.seed, help: 'random seed (same seed + prompt + options = same output)' },
  { name: 'max-tokens', short: 'n', type: 'int', meta: 'N', help: 'most tokens to generate (default: until EOS or the context is full)' },
  { name: 'stop', type: 'list', meta: 'S1,S2', help: 'stop before any of these strings' },
];

const SAMPLER_FLAG: Record<keyof SamplerOptions, string> = {
  temperature: '--temperature', topK: '--top-k', topP: '--top-p', minP: '--min-p',
  repetitionPenalty: '--repeat-penalty', frequencyPenalty: '--frequency-penalty', presencePenalty: '--presence-penalty',
  penaltyLastN: '--repeat-last-n', seed: '--seed',
};

export function samplerFromFlags(f: FlagValues): SamplerOptions {
  const o: SamplerOptions = {
    temperature: num(f, 'temperature')!, topK: num(f, 'top-k')!, topP: num(f, 'top-p')!, minP: num(f, 'min-p')!,
    repetitionPenalty: num(f, 'repeat-penalty')!, frequencyPenalty: num(f, 'frequency-penalty')!,
    presencePenalty: num(f, 'presence-penalty')!, penaltyLastN: num(f, 'repeat-last-n')!, seed: num(f, 'seed')!,
  };
  validateSampler(o, (k) => SAMPLER_FLAG[k]);
  const mt = num(f, 'max-tokens');
  if (mt !== undefined && mt < 0) throw new Llama2Error(`--max-tokens: expected an integer ≥ 0, found ${mt}`);
  return o;
}

export function requireModelPath(f: FlagValues, cmd: string): string {
  const p = str(f, 'model');
  if (!p) throw new Llama2Error(`${cmd}: --model is required (a .gguf file, llama2.c .bin, or a Hugging Face / Meta directory)`);
  return p;
}

export function openFromFlags(f: FlagValues, cmd: string): OpenedModel {
  const threads = num(f, 'threads');
  if (threads !== undefined && threads < 1) throw new Llama2Error(`--threads: expected an integer ≥ 1, found ${threads}`);
  return openModel(requireModelPath(f, cmd), { tokenizer: str(f, 'tokenizer'), threads, ctx: num(f, 'ctx') });
}

export function wantJson(f: FlagValues): boolean {
  return bool(f, 'json');
}

/**
 * The text of a file, or of stdin for "-": strict UTF-8 (a bad byte is an error naming its offset
 * and line; a leading U+FEFF is kept as text). `flag` names the input in errors ("--prompt-file").
 */
export async function readTextInput(path: string, flag: string): Promise<string> {
  const what = path === '-' ? `${flag} (stdin)` : `${flag} ${path}`;
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return decodeUtf8(Buffer.concat(chunks), what);
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Llama2Error(`${what}: cannot read it (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code ?? String(e)})`);
  }
  return decodeUtf8(bytes, what);
}

/**
 * Token ids written as "1,450,7483": decimal integers separated by commas (spaces around them
 * allowed). An empty item, a sign, a hex or float form, or an id ≥ `vocabSize` is an error naming
 * the item and its position.
 */
export function parseIds(text: string, flag: string, vocabSize = Infinity): number[] {
  const items = text.split(',');
  return items.map((raw, i) => {
    const s = raw.trim();
    const where = items.length > 1 ? ` (item ${i + 1} of ${items.length})` : '';
    if (!/^\d+$/.test(s)) throw new Llama2Error(`${flag}: expected comma-separated token ids (decimal integers), found ${describe(raw)}${where}`);
    const id = Number(s);
    if (id >= vocabSize) throw new Llama2Error(`${flag}: expected token ids in 0..${vocabSize - 1}, found ${describe(s)}${where}`);
    return id;
  });
}
