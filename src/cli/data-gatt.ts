/**
 * `llama2 data gatt`: Ghost Attention training data sampled from a chat model (src/chat/gatt.ts):
 * the instruction appended to every user turn while the model answers, then kept in the first turn
 * only, one JSONL sample per answered turn with "train_on": "last" — ready for `llama2 sft`.
 *
 *   llama2 data gatt --model runs/sft/latest --out gatt.jsonl [--dialogs 400] [--turns 6] [--samples 4]
 *
 * src/cli/data.ts declares these flags (GATT_FLAGS) and dispatches "gatt" here.
 */
import type { FlagSpec, FlagValues } from './args.js';
import { bool, num, str } from './args.js';
import { openFromFlags, requireModelPath } from './common.js';
import { Progress } from './progress.js';
import { requireTokenizer } from '../open.js';
import { buildGattData } from '../chat/gatt.js';
import { check, Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export const GATT_FLAGS: FlagSpec[] = [
  { name: 'model', short: 'm', type: 'string', meta: 'PATH', help: 'gatt: the chat model that answers (required)' },
  { name: 'threads', short: 't', type: 'int', meta: 'N', help: 'gatt, synth prefs: CPU threads (default: all cores)' },
  { name: 'dialogs', type: 'int', meta: 'N', help: 'gatt: dialogs (default 400)' },
  { name: 'turns', type: 'int', meta: 'N', help: 'gatt: user turns per dialog, ≥ 6 in the paper (default 6)' },
  { name: 'samples', type: 'int', meta: 'K', help: 'gatt: answers sampled per turn, the best that follows the instruction kept (default 4)' },
  { name: 'temperature', type: 'number', meta: 'T', help: 'gatt: sampling temperature (default 0.7)' },
  { name: 'max-tokens', type: 'int', meta: 'N', help: 'gatt, synth prefs: most tokens per answer (default 64)' },
];

const ALLOWED = new Set(['out', 'seed', 'json', 'tokenizer', ...GATT_FLAGS.map((f) => f.name)]);

export async function runDataGatt(f: FlagValues, extra: string[]): Promise<void> {
  check(extra.length === 0, `data gatt: unexpected argument "${extra[0]}"`);
  for (const [k, v] of Object.entries(f)) {
    if (v !== undefined && !ALLOWED.has(k) && !(k === 'json' && v === false)) throw new Llama2Error(`data gatt: --${k} does not apply here (see llama2 data --help)`);
  }
  const out = str(f, 'out');
  check(out, 'data gatt: --out FILE is required (JSONL for llama2 sft)');
  const int = (name: string, d: number, min: number): number => {
    const v = num(f, name) ?? d;
    if (!(Number.isInteger(v) && v >= min)) throw new Llama2Error(`--${name}: expected an integer ≥ ${min}, found ${v}`);
    return v;
  };
  const o = openFromFlags(f, 'data gatt');
  const tok = requireTokenizer(o, requireModelPath(f, 'data gatt'));
  const turns = int('turns', 6, 2);
  const bar = bool(f, 'json') ? null : new Progress('gatt', turns, 'turns');
  const { records, stats } = await buildGattData(o.model, tok, {
    dialogs: int('dialogs', 400, 1), turns, seed: num(f, 'seed') ?? 1, samples: int('samples', 4, 1),
    temperature: num(f, 'temperature') ?? 0.7, maxTokens: int('max-tokens', 64, 1), onProgress: (t) => bar?.update(t),
  });
  bar?.done();
  writeFileAtomic(out, records.map((r) => JSON.stringify(r) + '\n').join(''));
  if (bool(f, 'json')) process.stdout.write(JSON.stringify({ out, ...stats }) + '\n');
  else {
    process.stdout.write(`wrote ${stats.samples} samples from ${stats.dialogs} dialogs to ${out}: ${stats.sampled} answers sampled from the model, ` +
      `${stats.rewritten} rewritten references (no sample followed the instruction), ${stats.cut} dialogs cut short\n`);
  }
}
