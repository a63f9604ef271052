/**
 * The command-line side of every training recipe (pretrain, sft, reward, rs, ppo): the run flags,
 * Ctrl-C / SIGTERM handling, the progress bar drawn from the recipe's RunEvents, the closing report
 * and the "continue with --resume" hint; and pretraining as `llama2 pretrain` and `llama2 demo` run it.
 *
 *   const r = await runRecipe((signal, onEvent) => sft({ config, signal, onEvent }), { quiet, logEvery, outDir });
 *
 * Signals: the first SIGINT or SIGTERM (what containers, systemd and job schedulers send) aborts the
 * recipe's signal: it finishes the current step, saves a checkpoint and returns "interrupted"; a
 * second one exits at once with status 130 (the last complete checkpoint stays intact). A run that
 * fails before its first checkpoint removes the out_dir it created, so a mistake leaves nothing behind.
 *
 * What it is not: a recipe (src/recipes/) or the run-directory lifecycle (train/run.ts).
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FlagSpec } from './args.js';
import { Progress, fmtTime } from './progress.js';
import { headDim } from '../model/config.js';
import { siNumber } from '../train/compute.js';
import type { RunEvent, RunStatus, RunSummary } from '../train/run.js';
import type { PretrainData } from '../data/stories-data.js';
import { dataFor, pretrain, pretrainLossLine, type PretrainConfig, type PretrainResult, type PretrainSummary } from '../recipes/pretrain.js';

/** Flags every training command has besides its config keys. */
export const RUN_FLAGS: FlagSpec[] = [
  { name: 'config', short: 'c', type: 'string', meta: 'FILE', help: 'JSON config (keys as below, snake_case)' },
  { name: 'resume', type: 'boolean', default: false, help: "continue from out_dir's latest checkpoint" },
  { name: 'overwrite', type: 'boolean', default: false, help: "delete a previous run's checkpoints and logs in out_dir" },
  { name: 'stop-after', type: 'int', meta: 'N', help: 'stop with a checkpoint once step N is done (resume later)' },
  { name: 'json', type: 'boolean', default: false, help: 'print the run summary as one JSON object on stdout' },
  { name: 'quiet', short: 'q', type: 'boolean', default: false, help: 'no progress or log lines on stderr' },
];

export interface RunRecipeOptions {
  quiet: boolean;
  /** a log line every N steps when stderr is not a terminal */
  logEvery: number;
  /** the run directory: removed on a failure before any checkpoint when this run created it (none: kept) */
  outDir?: string;
  /** extra text after the eval line (e.g. the entropy floor), asked for at each evaluation */
  evalNote?: () => string;
}

/** Runs a recipe with signal handling and progress on stderr. */
export async function runRecipe<R>(
  recipe: (signal: AbortSignal, onEvent: (e: RunEvent) => void) => Promise<R>, o: RunRecipeOptions,
): Promise<R> {
  const ac = new AbortController();
  const tty = process.stderr.isTTY === true;
  const log = (m: string) => {
    if (!o.quiet) process.stderr.write(`${tty ? '\r\x1b[K' : ''}${m}\n`);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) {
      process.stderr.write(`\n${sig} again: exiting now (the last complete checkpoint is intact)\n`);
      process.exit(130);
    }
    log(`\n${sig}: finishing this step and saving a checkpoint (${sig === 'SIGINT' ? 'Ctrl-C' : sig} again to quit at once)`);
    ac.abort();
  };
  const existed = o.outDir === undefined || existsSync(o.outDir);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let bar: Progress | null = null;
  const rate = movingAverage(0.9);
  const onEvent = (e: RunEvent): void => {
    switch (e.kind) {
      case 'notice':
        log(e.message);
        break;
      case 'start': {
        const cf = e.config;
        log(`${e.stage}: ${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.step}` : e.about ?? 'training from scratch'}: ` +
          `${(e.params / 1e6).toFixed(2)}M params (dim ${cf.dim}, ${cf.n_layers} layers, ${cf.n_heads}/${cf.n_kv_heads} heads of ${headDim(cf)}, vocab ${cf.vocab_size}), ` +
          `${e.tokensPerStep} tokens/step, ${e.steps} steps, backend ${e.backend}${e.backend === 'native' ? ` ×${e.threads} threads` : ''}`);
        if (!o.quiet) bar = new Progress(e.stage, e.steps - e.step, 'steps');
        break;
      }
      case 'step': {
        const r = e.rec;
        rate.add(r.tokens_per_s);
        const extra = `loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(2)} ${Math.round(rate.value())} tok/s`;
        bar?.update(r.step - e.startStep, extra);
        if (!tty && (r.step % o.logEvery === 0 || r.step === e.steps)) log(`step ${r.step}/${e.steps} ${extra} |g| ${r.grad_norm.toFixed(3)}`);
        break;
      }
      case 'eval':
        log(`eval @ step ${e.rec.step}: val loss ${e.rec.val_loss.toFixed(4)} nats/token` +
          (e.rec.val_bpc !== null ? ` = ${e.rec.val_bpc.toFixed(4)} bits/char` : '') +
          (e.rec.floor_text_bpc !== undefined ? `; stories ${e.rec.floor_text_bpc.toFixed(4)} bits/char` : '') + (o.evalNote?.() ?? ''));
        break;
      case 'checkpoint':
        log(`saved checkpoint ${e.dir} (step ${e.step})`);
        break;
    }
  };
  try {
    const r = await recipe(ac.signal, onEvent);
    (bar as Progress | null)?.done();
    return r;
  } catch (e) {
    (bar as Progress | null)?.done();
    if (!existed) removeIfNoCheckpoint(o.outDir!);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Removes a run directory this process created when no checkpoint made it (nothing worth keeping). */
function removeIfNoCheckpoint(dir: string): void {
  if (!existsSync(dir) || existsSync(join(dir, 'latest.json'))) return;
  if (readdirSync(dir).some((n) => /^ckpt-\d{6,}$/.test(n))) return;
  rmSync(dir, { recursive: true, force: true });
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

/** The closing report: run, loss, compute, energy, where the checkpoint is; `lossLine` replaces the plain loss line. */
export function formatReport(s: RunSummary, outDir: string, o: { lossLine?: string; tryCommand?: string } = {}): string {
  const mc = s.model_config;
  const lines = [
    `${s.stage}: ${s.status}, step ${s.steps}, ${siNumber(s.tokens)} tokens in ${fmtTime(s.wall_seconds)} ` +
      `(training ${fmtTime(s.train_seconds)}, ${Math.round(s.tokens_per_s)} tokens/s, backend ${s.backend}${s.backend === 'native' ? ` ×${s.threads}` : ''})`,
    `model: ${(s.params / 1e6).toFixed(2)}M params (dim ${mc.dim}, ${mc.n_layers} layers, ${mc.n_heads} heads, vocab ${mc.vocab_size}, context ${mc.max_seq_len})`,
  ];
  if (o.lossLine) lines.push(o.lossLine);
  else if (s.final_train_loss !== null) {
    lines.push(`loss: train ${s.final_train_loss.toFixed(4)}${s.final_val_loss !== null ? `, validation ${s.final_val_loss.toFixed(4)} nats/token` : ''}`);
  }
  lines.push(
    `compute: ${siNumber(s.flops_per_token)}FLOP/token × ${siNumber(s.tokens)} tokens = ${siNumber(s.total_flops)}FLOP; ` +
      `${s.achieved_gflops.toFixed(2)} GFLOP/s = ${(s.mfu * 100).toFixed(2)}% MFU of ${s.peak_gflops} GFLOP/s (${s.peak_source})`,
    `energy: ${s.energy_kwh.toPrecision(3)} kWh at ${s.cpu_watts} W (${s.watts_source}) → ${s.co2_kg.toPrecision(3)} kgCO2eq at ${s.carbon_intensity_kg_per_kwh} kg/kWh`,
  );
  if (s.checkpoint) lines.push(`checkpoint: ${s.checkpoint}${o.tryCommand ? `   (try: ${o.tryCommand})` : ''}`);
  lines.push(`logs: ${join(outDir, 'metrics.jsonl')}, ${join(outDir, 'loss.svg')}, ${join(outDir, 'summary.json')}`);
  return lines.join('\n');
}

/** After an interrupted run: the command to continue it, and exit status 130. */
export function exitIfInterrupted(status: RunStatus, step: number, command: string): void {
  if (status !== 'interrupted') return;
  const args = process.argv.slice(3).filter((a) => a !== '--resume' && a !== '--overwrite').join(' ');
  process.stderr.write(`interrupted at step ${step}: checkpoint saved; continue with: llama2 ${command} ${args} --resume\n`);
  process.exit(130);
}

// ---------------------------------------------------------------------------------------------
// pretraining (llama2 pretrain and llama2 demo)

export interface PretrainingOptions {
  resume: boolean;
  overwrite: boolean;
  stopAfter?: number;
  quiet: boolean;
}

/** The pretraining recipe with signals and progress; the built-in stories are built first, under <out_dir>/data. */
export async function runPretraining(c: PretrainConfig, o: PretrainingOptions): Promise<{ result: PretrainResult; data: PretrainData }> {
  const say = (m: string) => {
    if (!o.quiet) process.stderr.write(m + '\n');
  };
  let data: PretrainData | null = null;
  const result = await runRecipe(async (signal, onEvent) => {
    data = dataFor(c, say);
    return pretrain({ config: c, data, resume: o.resume, overwrite: o.overwrite, stopAfter: o.stopAfter, signal, onEvent });
  }, {
    quiet: o.quiet, logEvery: c.log_every, outDir: c.out_dir,
    evalNote: () => (data?.entropyFloorBpc != null ? ` (floor${data.floorText ? ' of the stories' : ''} ${data.entropyFloorBpc.toFixed(4)})` : ''),
  });
  return { result, data: data! };
}

/** The closing report of pretraining, with validation bits/char against the entropy floor. */
export function pretrainReport(s: PretrainSummary, outDir: string): string {
  return formatReport(s, outDir, { lossLine: pretrainLossLine(s), tryCommand: `llama2 generate --model ${join(outDir, 'latest')} --prompt "Once upon a time"` });
}
