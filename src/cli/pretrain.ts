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
import { join } from 'node:path';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, num } from './args.js';
import { RUN_FLAGS, exitIfInterrupted, formatReport, runRecipe } from './train-run.js';
import { PRETRAIN, dataFor, pretrain, type PretrainConfig, type PretrainResult, type PretrainSummary } from '../recipes/pretrain.js';
import type { PretrainData } from '../data/stories-data.js';
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

export interface TrainingOptions {
  resume: boolean;
  overwrite: boolean;
  stopAfter?: number;
  quiet: boolean;
  /** default: dataFor(config) (the built-in stories are built under <out_dir>/data) */
  data?: PretrainData;
}

/** Runs the pretraining recipe with signals and progress on stderr (also `llama2 demo`). */
export async function runTraining(c: PretrainConfig, o: TrainingOptions): Promise<{ result: PretrainResult; data: PretrainData }> {
  const say = (m: string) => {
    if (!o.quiet) process.stderr.write(m + '\n');
  };
  let data: PretrainData | null = o.data ?? null;
  const result = await runRecipe(async (signal, onEvent) => {
    data ??= dataFor(c, say);
    return pretrain({ config: c, data, resume: o.resume, overwrite: o.overwrite, stopAfter: o.stopAfter, signal, onEvent });
  }, {
    quiet: o.quiet, logEvery: c.log_every, outDir: c.out_dir,
    evalNote: () => (data?.entropyFloorBpc != null ? ` (floor ${data.entropyFloorBpc.toFixed(4)})` : ''),
  });
  return { result, data: data! };
}

/** The closing report, with validation bits/char against the entropy floor. */
export function pretrainReport(s: PretrainSummary, outDir: string): string {
  let l: string | undefined;
  if (s.final_train_loss !== null) {
    l = `loss: train ${s.final_train_loss.toFixed(4)}`;
    if (s.final_val_loss !== null) l += `, validation ${s.final_val_loss.toFixed(4)} nats/token`;
    if (s.final_val_bpc !== null) l += ` = ${s.final_val_bpc.toFixed(4)} bits/char`;
    if (s.entropy_floor_bpc !== null) l += ` (true entropy, the floor: ${s.entropy_floor_bpc.toFixed(4)} bits/char)`;
  }
  return formatReport(s, outDir, { lossLine: l, tryCommand: `llama2 generate --model ${join(outDir, 'latest')} --prompt "Once upon a time"` });
}

export async function run(f: FlagValues): Promise<void> {
  const c = configFromFlags(f);
  const stopAfter = num(f, 'stop-after');
  if (stopAfter !== undefined && stopAfter < 1) throw new Llama2Error(`--stop-after: expected an integer ≥ 1, found ${stopAfter}`);
  const { result: r } = await runTraining(c, { resume: bool(f, 'resume'), overwrite: bool(f, 'overwrite'), stopAfter, quiet: bool(f, 'quiet') });
  if (bool(f, 'json')) process.stdout.write(JSON.stringify(r.summary) + '\n');
  else process.stdout.write(asciiPlot(r.plot) + '\n\n' + pretrainReport(r.summary, c.out_dir) + '\n');
  exitIfInterrupted(r.status, r.step, 'pretrain');
}
