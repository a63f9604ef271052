/**
 * `llama2 pretrain`: flags → the pretraining config → the recipe (src/recipes/pretrain.ts), with a
 * progress bar, Ctrl-C / SIGTERM handling and a closing report (cli/train-run.ts).
 *
 *   llama2 pretrain --config configs/tiny.json --steps=200 --lr=1e-3
 *   llama2 pretrain --config configs/tiny.json --resume
 *
 * Config: defaults in code → the --config JSON file → flags; every config key is also a flag
 * (batch_size ↔ --batch-size).
 */
import type { CommandSpec, FlagValues } from './args.js';
import { bool, num } from './args.js';
import { RUN_FLAGS, exitIfInterrupted, pretrainReport, runPretraining } from './train-run.js';
import { PRETRAIN, type PretrainConfig } from '../recipes/pretrain.js';
import { asciiPlot } from '../train/metrics.js';
import { Llama2Error } from '../util/errors.js';

export const spec: CommandSpec = {
  name: 'pretrain',
  summary: 'Pretrain a Llama model from scratch on prepared token shards (or the built-in stories).',
  usage: 'llama2 pretrain [--config FILE] [--KEY=VALUE ...] [--resume]',
  flags: [...RUN_FLAGS, ...PRETRAIN.flags()],
  notes:
    'Every config key is a flag (snake_case key ↔ --kebab-case flag); [x] is the default in code.\n' +
    'Writes to out_dir: ckpt-NNNNNN/ (HF model + tokenizer + optimizer + trainer state; latest.json and\n' +
    'the `latest` link name the newest), metrics.jsonl, loss.svg, summary.json. A checkpoint runs directly:\n' +
    '  llama2 generate --model <out_dir>/latest --prompt "Once upon a time"\n' +
    'Ctrl-C or SIGTERM finishes the step and saves a checkpoint; --resume continues bit-identically.\n' +
    'Energy and MFU use declared figures (--cpu-watts, --peak-gflops); see src/train/compute.ts.',
};

/** The config from defaults, --config and flags. */
export function configFromFlags(f: FlagValues): PretrainConfig {
  return PRETRAIN.fromFlags(f);
}

export async function run(f: FlagValues): Promise<void> {
  const c = configFromFlags(f);
  const stopAfter = num(f, 'stop-after');
  if (stopAfter !== undefined && stopAfter < 1) throw new Llama2Error(`--stop-after: expected an integer ≥ 1, found ${stopAfter}`);
  const { result: r } = await runPretraining(c, { resume: bool(f, 'resume'), overwrite: bool(f, 'overwrite'), stopAfter, quiet: bool(f, 'quiet') });
  if (bool(f, 'json')) process.stdout.write(JSON.stringify(r.summary) + '\n');
  else process.stdout.write(asciiPlot(r.plot) + '\n\n' + pretrainReport(r.summary, c.out_dir) + '\n');
  exitIfInterrupted(r.status, r.step, 'pretrain');
}
