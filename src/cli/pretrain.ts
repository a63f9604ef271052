/**
 * `llama2 pretrain`: train a Llama model from scratch (src/train/pretrain.ts) with a progress bar,
 * Ctrl-C handling and a closing report.
 *
 *   llama2 pretrain --config configs/tiny.json --steps=200 --lr=1e-3
 *   llama2 pretrain --config configs/tiny.json --resume
 *
 * Config: defaults in code → the --config JSON file → flags; every config key is also a flag
 * (batch_size ↔ --batch-size). Ctrl-C finishes the current step, saves a checkpoint and exits
 * with status 130; a second Ctrl-C exits at once (the last complete checkpoint stays intact).
 * Also exported for `llama2 demo`: runTraining (signals + progress) and formatReport.
 */
import { join } from 'node:path';
import type { CommandSpec, FlagSpec, FlagValues } from './args.js';
import { bool, num, str } from './args.js';
import { Progress, fmtTime } from './progress.js';
import { buildStoriesData } from './data.js';
import {
  BUILTIN_STORIES, TRAIN_DEFAULTS, TRAIN_KEYS, applyOverrides, flagName, readConfigFile, type TrainConfig, type TrainKey,
} from '../train/config.js';
import { pretrain, resolveData, type PretrainData, type PretrainEvent, type PretrainResult, type RunSummary } from '../train/pretrain.js';
import { asciiPlot } from '../train/metrics.js';
import { siNumber } from '../train/compute.js';
import { headDim } from '../model/config.js';
import { Llama2Error } from '../util/errors.js';

/** One flag per config key (no defaults here: an absent flag leaves the file's value). */
export function configFlags(): FlagSpec[] {
  return (Object.keys(TRAIN_KEYS) as TrainKey[]).map((k) => {
    const s = TRAIN_KEYS[k];
    const d = TRAIN_DEFAULTS[k];
    const meta = s.kind === 'int' ? 'N' : s.kind === 'number' ? 'X' : 'S';
    return {
      name: flagName(k),
      type: s.kind === 'boolean' ? 'boolean' : 'string',
      meta: s.nullable ? `${meta}|null` : meta,
      help: `${s.help} [${d === null ? 'null' : String(d)}]`,
    } satisfies FlagSpec;
  });
}

export const RUN_FLAGS: FlagSpec[] = [
  { name: 'config', short: 'c', type: 'string', meta: 'FILE', help: 'JSON config (keys as below, snake_case)' },
  { name: 'resume', type: 'boolean', default: false, help: "continue from out_dir's latest checkpoint" },
  { name: 'overwrite', type: 'boolean', default: false, help: "delete a previous run's checkpoints and logs in out_dir" },
  { name: 'stop-after', type: 'int', meta: 'N', help: 'stop with a checkpoint once step N is done (resume later)' },
  { name: 'json', type: 'boolean', default: false, help: 'print the run summary as one JSON object on stdout' },
  { name: 'quiet', short: 'q', type: 'boolean', default: false, help: 'no progress or log lines on stderr' },
];

export const spec: CommandSpec = {
  name: 'pretrain',
  summary: 'Pretrain a Llama model from scratch on prepared token shards (or the built-in stories).',
  usage: 'llama2 pretrain [--config FILE] [--KEY=VALUE ...] [--resume]',
  flags: [...RUN_FLAGS, ...configFlags()],
  notes:
    'Every config key is a flag (snake_case key ↔ --kebab-case flag); [x] is the default in code.\n' +
    'Writes to out_dir: ckpt-NNNNNN/ (HF model + tokenizer + optimizer + trainer state; latest.json and\n' +
    'the `latest` link name the newest), metrics.jsonl, loss.svg, summary.json. A checkpoint runs directly:\n' +
    '  llama2 generate --model <out_dir>/latest --prompt "Once upon a time"\n' +
    'Energy and MFU use declared figures (--cpu-watts, --peak-gflops); see src/train/compute.ts.',
};

/** The config from defaults, --config and flags. */
export function configFromFlags(f: FlagValues): TrainConfig {
  const file = str(f, 'config');
  const base = file ? readConfigFile(file) : { ...TRAIN_DEFAULTS };
  const overrides: [string, string | boolean][] = [];
  for (const k of Object.keys(TRAIN_KEYS)) {
    const v = f[flagName(k)];
    if (typeof v === 'string' || typeof v === 'boolean') overrides.push([k, v]);
  }
  return applyOverrides(base, overrides);
}

/** Resolves the config's data: builds the built-in stories under <out_dir>/data when asked. */
export function dataFor(c: TrainConfig, say: (m: string) => void): PretrainData {
  if (c.data_dir !== BUILTIN_STORIES) return resolveData(c);
  if (c.tokenizer !== null) throw new Llama2Error(`config: tokenizer must be null with data_dir "${BUILTIN_STORIES}" (the pipeline trains its own)`);
  const d = buildStoriesData({
    dir: join(c.out_dir, 'data'), count: c.stories_count, seed: c.stories_seed, vocabSize: c.vocab_size,
    seqLen: c.seq_len ?? 256, valFraction: c.val_fraction, onProgress: say,
  });
  return { dir: d.dir, tokenizer: d.tokenizer, entropyFloorBpc: c.entropy_floor_bpc ?? d.entropyFloorBpc };
}

export interface RunOptions {
  resume: boolean;
  overwrite: boolean;
  stopAfter?: number;
  quiet: boolean;
  data: PretrainData;
}

/** Runs pretrain with Ctrl-C handling and progress on stderr. */
export async function runTraining(c: TrainConfig, o: RunOptions): Promise<PretrainResult> {
  const ac = new AbortController();
  const tty = process.stderr.isTTY === true;
  const log = (m: string) => {
    if (!o.quiet) process.stderr.write(`${tty ? '\r\x1b[K' : ''}${m}\n`);
  };
  const onSigint = () => {
    if (ac.signal.aborted) {
      process.stderr.write('\ninterrupted again: exiting now (the last complete checkpoint is intact)\n');
      process.exit(130);
    }
    log('\ninterrupt: finishing this step and saving a checkpoint (Ctrl-C again to quit at once)');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  let bar: Progress | null = null;
  const rate = movingAverage(0.9);
  const onEvent = (e: PretrainEvent): void => {
    switch (e.kind) {
      case 'notice':
        log(e.message);
        break;
      case 'start': {
        const cf = e.config;
        log(`${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.step}` : 'training from scratch'}: ` +
          `${(e.params / 1e6).toFixed(2)}M params (dim ${cf.dim}, ${cf.n_layers} layers, ${cf.n_heads}/${cf.n_kv_heads} heads of ${headDim(cf)}, vocab ${cf.vocab_size}), ` +
          `${e.tokensPerStep} tokens/step, ${e.steps} steps, backend ${e.backend}${e.backend === 'native' ? ` ×${e.threads} threads` : ''}`);
        if (!o.quiet) bar = new Progress('train', e.steps - e.step, 'steps');
        break;
      }
      case 'step': {
        const r = e.rec;
        rate.add(r.tokens_per_s);
        const extra = `loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(2)} ${Math.round(rate.value())} tok/s`;
        bar?.update(r.step - e.startStep, extra);
        if (!tty && (r.step % c.log_every === 0 || r.step === e.steps)) log(`step ${r.step}/${e.steps} ${extra} |g| ${r.grad_norm.toFixed(3)}`);
        break;
      }
      case 'eval':
        log(`eval @ step ${e.rec.step}: val loss ${e.rec.val_loss.toFixed(4)} nats/token` +
          (e.rec.val_bpc !== null ? ` = ${e.rec.val_bpc.toFixed(4)} bits/char` : '') +
          (o.data.entropyFloorBpc !== null ? ` (floor ${o.data.entropyFloorBpc.toFixed(4)})` : ''));
        break;
      case 'checkpoint':
        log(`saved checkpoint ${e.dir} (step ${e.step})`);
        break;
    }
  };
  try {
    const r = await pretrain({ config: c, data: o.data, resume: o.resume, overwrite: o.overwrite, stopAfter: o.stopAfter, signal: ac.signal, onEvent });
    (bar as Progress | null)?.done();
    return r;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Bias-corrected exponential moving average (steadies the tokens/s shown per step). */
function movingAverage(beta: number): { add(x: number): void; value(): number } {
  let m = 0;
  let n = 0;
  return {
    add(x) {
      m = beta * m + (1 - beta) * x;
      n++;
    },
    value: () => (n > 0 ? m / (1 - Math.pow(beta, n)) : 0),
  };
}

/** The closing report: run, loss vs floor, compute, energy, where the checkpoint is. */
export function formatReport(s: RunSummary, outDir: string): string {
  const mc = s.model_config;
  const lines = [
    `run: ${s.status}, step ${s.steps}, ${siNumber(s.tokens)} tokens in ${fmtTime(s.wall_seconds)} ` +
      `(training ${fmtTime(s.train_seconds)}, ${Math.round(s.tokens_per_s)} tokens/s, backend ${s.backend}${s.backend === 'native' ? ` ×${s.threads}` : ''})`,
    `model: ${(s.params / 1e6).toFixed(2)}M params (dim ${mc.dim}, ${mc.n_layers} layers, ${mc.n_heads} heads, vocab ${mc.vocab_size}, context ${mc.max_seq_len})`,
  ];
  if (s.final_train_loss !== null) {
    let l = `loss: train ${s.final_train_loss.toFixed(4)}`;
    if (s.final_val_loss !== null) l += `, validation ${s.final_val_loss.toFixed(4)} nats/token`;
    if (s.final_val_bpc !== null) l += ` = ${s.final_val_bpc.toFixed(4)} bits/char`;
    if (s.entropy_floor_bpc !== null) l += ` (true entropy, the floor: ${s.entropy_floor_bpc.toFixed(4)} bits/char)`;
    lines.push(l);
  }
  lines.push(
    `compute: ${siNumber(s.flops_per_token)}FLOP/token × ${siNumber(s.tokens)} tokens = ${siNumber(s.total_flops)}FLOP; ` +
      `${s.achieved_gflops.toFixed(2)} GFLOP/s = ${(s.mfu * 100).toFixed(2)}% MFU of ${s.peak_gflops} GFLOP/s (${s.peak_source})`,
    `energy: ${s.energy_kwh.toPrecision(3)} kWh at ${s.cpu_watts} W (${s.watts_source}) → ${s.co2_kg.toPrecision(3)} kgCO2eq at ${s.carbon_intensity_kg_per_kwh} kg/kWh`,
  );
  if (s.checkpoint) lines.push(`checkpoint: ${s.checkpoint}   (try: llama2 generate --model ${join(outDir, 'latest')} --prompt "Once upon a time")`);
  lines.push(`logs: ${join(outDir, 'metrics.jsonl')}, ${join(outDir, 'loss.svg')}, ${join(outDir, 'summary.json')}`);
  return lines.join('\n');
}

export async function run(f: FlagValues): Promise<void> {
  const c = configFromFlags(f);
  const quiet = bool(f, 'quiet');
  const say = (m: string) => {
    if (!quiet) process.stderr.write(m + '\n');
  };
  const stopAfter = num(f, 'stop-after');
  if (stopAfter !== undefined && stopAfter < 1) throw new Llama2Error(`--stop-after: expected an integer ≥ 1, found ${stopAfter}`);
  const data = dataFor(c, say);
  const r = await runTraining(c, { resume: bool(f, 'resume'), overwrite: bool(f, 'overwrite'), stopAfter, quiet, data });
  if (bool(f, 'json')) process.stdout.write(JSON.stringify(r.summary) + '\n');
  else {
    process.stdout.write(asciiPlot(r.plot) + '\n\n' + formatReport(r.summary, c.out_dir) + '\n');
  }
  if (r.status === 'interrupted') {
    process.stderr.write(`interrupted at step ${r.step}: checkpoint saved; continue with: llama2 pretrain ${process.argv.slice(3).filter((a) => a !== '--resume' && a !== '--overwrite').join(' ')} --resume\n`);
    process.exit(130);
  }
}
