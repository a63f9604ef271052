/**
 * The run-directory lifecycle every training recipe shares (pretrain, sft, reward, rs, ppo):
 *
 *   const run = openRun({ outDir, stage: 'sft', resume, overwrite, signal, stopAfter, onEvent });
 *   try {
 *     … setup: run.latest is the checkpoint to resume from (or null) …
 *     for (let s = start; s < steps; s++) {
 *       … one optimizer step …; run.clock.addStep(tokens, seconds)
 *       const stop = await run.endStep(rec, { steps, evaluate, save, … }); // log, eval, signals, checkpoint
 *       if (stop) { status = stop; break; }
 *     }
 *     run.finish(summary)                                      // summary.json, atomically
 *   } finally { run.release(); }
 *
 * What it owns: the lock (one process per out_dir, a dead owner's lock taken over), the resume and
 * overwrite rules (an existing run is never overwritten silently), leftovers of a killed process
 * (temp files, checkpoints newer than latest.json), metrics.jsonl cut back to the resumed step, the
 * stop protocol (an aborted signal — Ctrl-C, SIGTERM — or stopAfter finishes the step, checkpoints
 * and returns "interrupted" / "stopped"), the clocks (tokens, training and wall seconds carried
 * across resumes) and the compute / energy / CO2 summary written to summary.json.
 *
 * What it is not: any stage's loop, data or model (src/recipes/*.ts), the checkpoint format
 * (checkpoint.ts) or the command-line side (cli/train-run.ts: signals, progress bar, report).
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/types.js';
import type { LlamaConfig } from '../model/config.js';
import { Llama2Error, check } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { latestCheckpoint, loadCheckpoint, lockRunDir, removeCheckpointsAfter, removeStaleTemps, type Checkpoint } from './checkpoint.js';
import type { ConfigDef } from './config.js';
import { computeSummary, type ComputeSummary } from './compute.js';
import { MetricsLog, type EvalRecord, type TrainRecord } from './metrics.js';

/** The training stages that write run directories (trainer_state.json says which one did). */
export type Stage = 'pretrain' | 'sft' | 'reward' | 'rs' | 'ppo';

export type RunStatus = 'completed' | 'interrupted' | 'stopped';

/** What a recipe reports while it runs (the CLI draws progress from these). */
export type RunEvent =
  | { kind: 'notice'; message: string }
  | { kind: 'start'; stage: Stage; step: number; steps: number; resumedFrom: string | null; config: LlamaConfig; params: number; backend: string; threads: number; tokensPerStep: number; about?: string }
  | { kind: 'step'; rec: TrainRecord; steps: number; startStep: number }
  | { kind: 'eval'; rec: EvalRecord }
  | { kind: 'checkpoint'; dir: string; step: number };

export interface RunOptions {
  outDir: string;
  stage: Stage;
  /** continue from out_dir's latest checkpoint (a fresh start, with a notice, when there is none) */
  resume?: boolean;
  /** delete a previous run's checkpoints and logs in out_dir instead of refusing to start */
  overwrite?: boolean;
  /** stop (with a checkpoint, status "stopped") once this many steps are complete */
  stopAfter?: number;
  /** aborting it stops after the current step, with a checkpoint (status "interrupted") */
  signal?: AbortSignal;
  onEvent?: (e: RunEvent) => void;
}

/** What every recipe function takes besides its own inputs. */
export interface RecipeOptions<C> {
  config: C;
  /** continue from out_dir's latest checkpoint */
  resume?: boolean;
  /** delete a previous run in out_dir instead of refusing to start */
  overwrite?: boolean;
  /** stop (with a checkpoint, status "stopped") once this many steps are complete */
  stopAfter?: number;
  /** aborting it stops after the current step, with a checkpoint (status "interrupted") */
  signal?: AbortSignal;
  /** default: selectBackend with config.threads */
  backend?: Backend;
  onEvent?: (e: RunEvent) => void;
}

/** What every stage's summary.json holds; stages add their own fields. */
export interface RunSummary extends ComputeSummary {
  stage: Stage;
  status: RunStatus;
  steps: number;
  tokens: number;
  params: number;
  train_seconds: number;
  wall_seconds: number;
  tokens_per_s: number;
  backend: string;
  threads: number;
  final_train_loss: number | null;
  final_val_loss: number | null;
  checkpoint: string | null;
  model_config: LlamaConfig;
}

/** Training tokens and seconds, carried over from the checkpoint a run resumes. */
export interface RunClock {
  tokens: number;
  trainSeconds: number;
  /** wall seconds of earlier runs of this training */
  readonly priorWall: number;
  /** wall seconds so far, this run included */
  wall(): number;
  addStep(tokens: number, seconds: number): void;
}

export interface Run {
  readonly out: string;
  readonly stage: Stage;
  /** the checkpoint to resume from, or null for a fresh start */
  readonly latest: { dir: string; step: number } | null;
  readonly emit: (e: RunEvent) => void;
  readonly clock: RunClock;
  /** metrics.jsonl (opened by startMetrics) */
  metrics: MetricsLog;
  /** Opens metrics.jsonl, keeping the lines up to `resumedStep` (null: a fresh log). */
  startMetrics(resumedStep: number | null, prior?: { tokens: number; train_seconds: number; wall_seconds: number }): void;
  /** Yields to the event loop (a signal arriving during the step is handled there), then says whether to stop after `step`. */
  stopRequested(step: number, last: boolean): Promise<RunStatus | null>;
  /** step is a positive multiple of n (n = 0: never) */
  everyN(step: number, n: number): boolean;
  /**
   * The end of every optimizer step: logs `rec`, evaluates every eval_every steps and at the end,
   * gives signals their turn, checkpoints every ckpt_every steps, at the end and when stopping.
   * Returns the status to stop with, or null to go on.
   */
  endStep(rec: TrainRecord, o: { steps: number; startStep: number; evalEvery: number; ckptEvery: number; evaluate: (step: number) => void; save: (step: number) => void }): Promise<RunStatus | null>;
  /** Writes summary.json (atomically) and returns it. */
  finish<S extends RunSummary>(s: S): S;
  release(): void;
}

/** Files of a run in out_dir that `overwrite` removes (checkpoints are matched by pattern). */
const RUN_FILES = ['latest.json', 'latest', 'metrics.jsonl', 'summary.json', 'loss.svg'];

function removeRun(outDir: string): void {
  if (!existsSync(outDir)) return;
  for (const n of readdirSync(outDir)) {
    if (/^ckpt-\d{6,}(\.tmp-\d+)?$/.test(n) || RUN_FILES.includes(n)) rmSync(join(outDir, n), { recursive: true, force: true });
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Takes out_dir (lock), applies the resume / overwrite rules and cleans a killed run's leftovers. */
export function openRun(o: RunOptions): Run {
  const out = o.outDir;
  const emit = o.onEvent ?? (() => {});
  const t0 = performance.now();
  const unlock = lockRunDir(out);
  let latest: { dir: string; step: number } | null;
  try {
    for (const n of removeStaleTemps(out)) emit({ kind: 'notice', message: `removed ${n} (left unfinished by an interrupted run)` });
    latest = latestCheckpoint(out);
    if (latest && !o.resume) {
      if (!o.overwrite) {
        throw new Llama2Error(`out_dir ${out} already holds a training run (checkpoint at step ${latest.step}); pass --resume to continue it or --overwrite to start over`);
      }
      removeRun(out);
      latest = null;
    } else if (!latest && o.overwrite) removeRun(out);
    if (o.resume && !latest) emit({ kind: 'notice', message: `nothing to resume in ${out} (no latest.json); starting from scratch` });
    if (latest) {
      for (const n of removeCheckpointsAfter(out, latest.step)) emit({ kind: 'notice', message: `removed ${n} (saved after latest.json was last updated)` });
    }
  } catch (e) {
    unlock();
    throw e;
  }
  let priorWall = 0;
  const clock: RunClock = {
    tokens: 0,
    trainSeconds: 0,
    get priorWall() {
      return priorWall;
    },
    wall: () => priorWall + (performance.now() - t0) / 1000,
    addStep(tokens, seconds) {
      this.tokens += tokens;
      this.trainSeconds += seconds;
    },
  };
  const run: Run = {
    out,
    stage: o.stage,
    latest,
    emit,
    clock,
    metrics: null as unknown as MetricsLog,
    startMetrics(resumedStep, prior) {
      run.metrics = new MetricsLog(join(out, 'metrics.jsonl'), resumedStep);
      if (prior) {
        clock.tokens = prior.tokens;
        clock.trainSeconds = prior.train_seconds;
        priorWall = prior.wall_seconds;
      }
    },
    async stopRequested(step, last) {
      await tick();
      if (last) return null;
      if (o.signal?.aborted) return 'interrupted';
      if (o.stopAfter !== undefined && step >= o.stopAfter) return 'stopped';
      return null;
    },
    everyN: (step, n) => n > 0 && step > 0 && step % n === 0,
    async endStep(rec, e) {
      run.metrics.append(rec);
      emit({ kind: 'step', rec, steps: e.steps, startStep: e.startStep });
      const last = rec.step === e.steps;
      if (last || run.everyN(rec.step, e.evalEvery)) e.evaluate(rec.step);
      const stop = await run.stopRequested(rec.step, last);
      if (last || stop || run.everyN(rec.step, e.ckptEvery)) e.save(rec.step);
      return stop;
    },
    finish(s) {
      writeFileAtomic(join(out, 'summary.json'), JSON.stringify(s, null, 2) + '\n');
      return s;
    },
    release: unlock,
  };
  return run;
}

/** Threads of a backend (1 for the reference backend). */
export function threadsOf(be: Backend): number {
  const t = (be as Backend & { threads?: () => number }).threads;
  return typeof t === 'function' ? t.call(be) : 1;
}

/** The fields of RunSummary every stage computes the same way. */
export function baseSummary(
  run: Run, a: {
    status: RunStatus; steps: number; params: number; be: Backend; config: LlamaConfig; seqLen: number; lastLoss: number | null;
    lastVal: number | null; checkpoint: string | null; accounting: { cpu_watts: number | null; peak_gflops: number | null; carbon_intensity: number };
  },
): RunSummary {
  const threads = threadsOf(a.be);
  const { tokens, trainSeconds } = run.clock;
  const wall = run.clock.wall();
  const compute = computeSummary({
    config: a.config, seqLen: a.seqLen, tokens, trainSeconds, wallSeconds: wall, threads,
    cpuWatts: a.accounting.cpu_watts, peakGflops: a.accounting.peak_gflops, carbonIntensity: a.accounting.carbon_intensity,
  });
  return {
    stage: run.stage, status: a.status, steps: a.steps, tokens, params: a.params, train_seconds: trainSeconds, wall_seconds: wall,
    tokens_per_s: trainSeconds > 0 ? tokens / trainSeconds : 0, backend: a.be.name, threads,
    final_train_loss: a.lastLoss, final_val_loss: a.lastVal, checkpoint: a.checkpoint, model_config: a.config, ...compute,
  };
}

/**
 * The checkpoint a run resumes from (null for a fresh start), checked against this run: written by
 * the same stage, the same config (but for resumable keys), the same data (`same`: trainer-state data
 * fields that must be equal, e.g. a tokenizer or data hash) and not already at `steps`.
 */
export function resumePoint<C>(run: Run, def: ConfigDef<C>, c: C, steps: number, same: Record<string, unknown>): Checkpoint | null {
  if (!run.latest) return null;
  const dir = run.latest.dir;
  const ck = loadCheckpoint(dir);
  const prior = ck.state;
  check(prior.stage === run.stage, `--resume: ${dir} was written by the ${prior.stage} stage, not ${run.stage}`);
  const clash = def.resumeConflict(prior.config, c);
  if (clash) throw new Llama2Error(`--resume: config key "${clash.key}" is ${JSON.stringify(clash.now)} but the checkpoint ${dir} was trained with ${JSON.stringify(clash.saved)}; resume with the same value`);
  for (const [k, v] of Object.entries(same)) {
    check(prior.data[k] === v, `--resume: the ${k.replaceAll('_', ' ')} (${String(v)}) differs from the checkpoint's (${String(prior.data[k])})`);
  }
  check(prior.step < steps, `--resume: the checkpoint is at step ${prior.step}, already at or past steps ${steps}; raise --steps to train further`);
  return ck;
}
