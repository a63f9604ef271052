/**
 * `pretrain`: the explicit training loop of a Llama model on prepared token shards.
 *
 *   const r = await pretrain({ config, signal, onEvent });
 *
 * Per optimizer step s (0-based; logs and checkpoints count completed steps, s + 1):
 *   zero gradients; for each of grad_accum micro-batches a: rows = train.batch(s·A + a, B)
 *   (B, T+1) → inputs/targets (B·T); loss = lmLoss(...); backward with seed 1/A
 *   coef = clip coefficient (global norm ≤ grad_clip); lr = lrAt(s) (warm-up, cosine to min ratio)
 *   AdamW step(lr, coef)
 * then a metrics line, an evaluation every eval_every steps (and at the end), a checkpoint every
 * ckpt_every steps (and at the end, and when stopped). Between steps the loop yields to the event
 * loop, so a SIGINT handler can abort `signal`: the loop finishes the step, saves a checkpoint
 * and returns status "interrupted".
 *
 * Resume (`resume: true`): loads out_dir's latest checkpoint (weights, AdamW moments and step,
 * trainer state), checks the config matches (config.RESUMABLE_KEYS may differ), cuts
 * metrics.jsonl back to that step and goes on; the results are bit-identical to an
 * uninterrupted run on the same backend (see checkpoint.ts for why).
 *
 * What it is not: data preparation (the CLI resolves "builtin:stories" into shards first and
 * passes them as `data`), the CLI's progress bar and messages (cli/pretrain.ts).
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/types.js';
import { selectBackend } from '../backend/select.js';
import { ffnHiddenDim, paramCount, type LlamaConfig } from '../model/config.js';
import type { ModelWeights } from '../model/weights.js';
import { vocabHash } from '../data/prepare.js';
import { lossToBitsPerChar, openShards, readShardMeta, type ShardReader } from '../data/shards.js';
import { loadVocab } from '../tokenizer/load.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { Llama2Error, check } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { BUILTIN_STORIES, crossCheck, modelConfigFor, resumeConflict, type TrainConfig } from './config.js';
import {
  TRAINER_STATE_FORMAT, TRAINER_STATE_VERSION, latestCheckpoint, loadCheckpoint, lockRunDir, removeCheckpointsAfter, removeStaleTemps, saveCheckpoint,
  type TrainerState,
} from './checkpoint.js';
import { computeSummary, type ComputeSummary } from './compute.js';
import { MetricsLog, lossCurveSvg, type EvalRecord, type LossPlot, type TrainRecord } from './metrics.js';
import { initModelWeights, zeroGrads } from './params.js';
import { lmLoss, trainModel, type TrainModel } from './model.js';
import { AdamW, clipCoefficient, type AdamWState } from './optim.js';
import { lrAt } from './schedule.js';
import { Tape } from './tape.js';

/** Where the shards and tokenizer are (resolved from config.data_dir / config.tokenizer by default). */
export interface PretrainData {
  dir: string;
  tokenizer: string;
  /** true entropy of the validation text, bits per character (null: unknown) */
  entropyFloorBpc: number | null;
}

export type PretrainEvent =
  | { kind: 'notice'; message: string }
  | { kind: 'start'; step: number; steps: number; resumedFrom: string | null; config: LlamaConfig; params: number; backend: string; threads: number; tokensPerStep: number }
  | { kind: 'step'; rec: TrainRecord; steps: number; startStep: number }
  | { kind: 'eval'; rec: EvalRecord }
  | { kind: 'checkpoint'; dir: string; step: number };

export interface PretrainOptions {
  config: TrainConfig;
  /** required when config.data_dir is "builtin:stories" */
  data?: PretrainData;
  /** continue from out_dir's latest checkpoint (a fresh start, with a notice, when there is none) */
  resume?: boolean;
  /** delete a previous run's checkpoints and logs in out_dir instead of refusing to start */
  overwrite?: boolean;
  /** stop (with a checkpoint, status "stopped") once this many steps are complete */
  stopAfter?: number;
  /** aborting it stops after the current step, with a checkpoint (status "interrupted") */
  signal?: AbortSignal;
  backend?: Backend;
  onEvent?: (e: PretrainEvent) => void;
}

export interface RunSummary extends ComputeSummary {
  status: PretrainStatus;
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
  final_val_bpc: number | null;
  entropy_floor_bpc: number | null;
  checkpoint: string | null;
  model_config: LlamaConfig;
}

export type PretrainStatus = 'completed' | 'interrupted' | 'stopped';

export interface PretrainResult {
  status: PretrainStatus;
  step: number;
  checkpoint: string | null;
  summary: RunSummary;
  metrics: MetricsLog;
  model: TrainModel;
  vocab: SpmVocab;
  plot: LossPlot;
}

/** Files of a run in out_dir that `overwrite` removes (checkpoints are matched by pattern). */
const RUN_FILES = ['latest.json', 'latest', 'metrics.jsonl', 'summary.json', 'loss.svg'];

/** The data a config points at: its shard directory and tokenizer (not for builtin stories). */
export function resolveData(c: TrainConfig): PretrainData {
  if (c.data_dir === BUILTIN_STORIES) {
    throw new Llama2Error(`data_dir "${BUILTIN_STORIES}" must be prepared first (llama2 pretrain does it; from code, pass options.data)`);
  }
  return { dir: c.data_dir, tokenizer: c.tokenizer ?? join(c.data_dir, 'tokenizer.model'), entropyFloorBpc: c.entropy_floor_bpc };
}

function removeRun(outDir: string): void {
  if (!existsSync(outDir)) return;
  for (const n of readdirSync(outDir)) {
    if (/^ckpt-\d{6,}(\.tmp-\d+)?$/.test(n) || RUN_FILES.includes(n)) rmSync(join(outDir, n), { recursive: true, force: true });
  }
}

function threadsOf(be: Backend): number {
  const t = (be as Backend & { threads?: () => number }).threads;
  return typeof t === 'function' ? t.call(be) : 1;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Copies rows (n, R) into inputs/targets (n·T): x = row[0..T), y = row[1..T]. */
function splitRows(rows: Int32Array, n: number, R: number, T: number, x: Int32Array, y: Int32Array): void {
  for (let b = 0; b < n; b++) {
    x.set(rows.subarray(b * R, b * R + T), b * T);
    y.set(rows.subarray(b * R + 1, b * R + 1 + T), b * T);
  }
}

export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const c = crossCheck(o.config, 'config');
  const emit = o.onEvent ?? (() => {});
  const data = o.data ?? resolveData(c);
  const out = c.out_dir;
  const t0 = performance.now();
  const unlock = lockRunDir(out);
  try {
    return await prepareAndTrain(o, c, data, emit, t0);
  } finally {
    unlock();
  }
}

async function prepareAndTrain(o: PretrainOptions, c: TrainConfig, data: PretrainData, emit: (e: PretrainEvent) => void, t0: number): Promise<PretrainResult> {
  const out = c.out_dir;
  for (const n of removeStaleTemps(out)) emit({ kind: 'notice', message: `removed ${n} (left unfinished by an interrupted run)` });

  let latest = latestCheckpoint(out);
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

  // data and tokenizer
  const meta = readShardMeta(data.dir);
  const T = c.seq_len ?? meta.seq_len;
  check(T <= meta.seq_len, `seq_len ${T} is longer than the shards' rows (seq_len ${meta.seq_len} in ${join(data.dir, 'meta.json')}); prepare the data again or lower seq_len`);
  const vocab = loadVocab(data.tokenizer);
  const hash = vocabHash(vocab);
  check(hash === meta.tokenizer_hash && vocab.pieces.length === meta.vocab_size,
    `tokenizer ${data.tokenizer} does not match the shards in ${data.dir} (prepared with tokenizer hash ${meta.tokenizer_hash}, ${meta.vocab_size} pieces; this one: ${hash}, ${vocab.pieces.length} pieces)`);
  const train = openShards(data.dir, 'train', { seed: c.seed });
  const val: ShardReader | null = meta.splits.val.rows > 0 ? openShards(data.dir, 'val') : null;
  try {
    return await trainLoop(o, c, data, T, vocab, hash, train, val, latest, emit, t0);
  } finally {
    train.close();
    val?.close();
  }
}

async function trainLoop(
  o: PretrainOptions, c: TrainConfig, data: PretrainData, T: number, vocab: SpmVocab, hash: string,
  train: ShardReader, val: ShardReader | null, latest: { dir: string; step: number } | null,
  emit: (e: PretrainEvent) => void, t0: number,
): Promise<PretrainResult> {
  const out = c.out_dir;
  const B = c.batch_size;
  const A = c.grad_accum;
  const R = train.rowTokens;
  let cfg = modelConfigFor(c, vocab.pieces.length, T);
  check(T <= cfg.max_seq_len, `seq_len ${T} exceeds max_seq_len ${cfg.max_seq_len}`);

  // weights and optimizer: fresh or from the checkpoint
  let weights: ModelWeights;
  let prior: TrainerState | null = null;
  let ckOptimizer: AdamWState | null = null;
  if (latest) {
    const ck = loadCheckpoint(latest.dir);
    prior = ck.state;
    const clash = resumeConflict(prior.config, c);
    if (clash) {
      throw new Llama2Error(`--resume: config key "${clash.key}" is ${JSON.stringify(clash.now)} but the checkpoint ${latest.dir} was trained with ${JSON.stringify(clash.saved)}; resume with the same value`);
    }
    check(prior.data.tokenizer_hash === hash, `--resume: the tokenizer (hash ${hash}) differs from the checkpoint's (${prior.data.tokenizer_hash})`);
    check(prior.data.next_batch === prior.step * A, `checkpoint ${latest.dir}: data position ${prior.data.next_batch} is not step ${prior.step} × grad_accum ${A}`);
    check(prior.step < c.steps, `--resume: the checkpoint is at step ${prior.step}, already at or past steps ${c.steps}; raise --steps to train further`);
    check(sameShape(ck.config, cfg) && sameShape(prior.model_config, cfg), `--resume: the checkpoint's model shape differs from the one the config gives`);
    cfg = prior.model_config;
    weights = ck.weights;
    ckOptimizer = ck.optimizer;
  } else {
    weights = initModelWeights(cfg, c.seed, { tied: c.tie_embeddings, std: c.init_std });
  }
  const model = trainModel(cfg, weights);
  const be = o.backend ?? selectBackend({ threads: c.threads ?? undefined });
  const opt = new AdamW(model.params, { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weight_decay }, be);
  if (ckOptimizer) opt.loadOptimizerState(ckOptimizer);
  const threads = threadsOf(be);
  const tape = new Tape(be);
  const evalTape = new Tape(be, false);
  const metrics = new MetricsLog(join(out, 'metrics.jsonl'), prior ? prior.step : null);
  const tied = weights.output === weights.tok_embeddings;
  const params = paramCount(cfg, tied);
  const startStep = prior?.step ?? 0;
  emit({ kind: 'start', step: startStep, steps: c.steps, resumedFrom: latest?.dir ?? null, config: cfg, params, backend: be.name, threads, tokensPerStep: B * A * T });

  const x = new Int32Array(B * T); // (B, T) inputs
  const y = new Int32Array(B * T); // (B, T) targets
  let tokens = prior?.tokens ?? 0;
  let trainSeconds = prior?.train_seconds ?? 0;
  const priorWall = prior?.wall_seconds ?? 0;
  let lastLoss: number | null = prior?.last_loss ?? null;
  let lastVal: EvalRecord | null = null;
  let lr = prior?.lr ?? 0;
  let checkpoint: string | null = latest?.dir ?? null;
  let status: PretrainStatus = 'completed';
  const schedule = { peak: c.lr, warmup: c.warmup_steps, total: c.steps, minRatio: c.min_lr_ratio };

  const floorNats = (): number | null =>
    data.entropyFloorBpc !== null && val ? data.entropyFloorBpc * Math.LN2 * val.charsPerToken : null;
  const plot = (): LossPlot => {
    const f = floorNats();
    return {
      title: `pretraining loss (${(params / 1e6).toFixed(2)}M params)`,
      train: metrics.train().map((r) => ({ x: r.step, y: r.loss })),
      val: metrics.evals().map((r) => ({ x: r.step, y: r.val_loss })),
      floor: f === null ? undefined : { y: f, label: `entropy floor ${data.entropyFloorBpc!.toFixed(3)} bits/char` },
      yLabel: 'loss (nats/token)',
    };
  };
  const writePlot = () => writeFileAtomic(join(out, 'loss.svg'), lossCurveSvg(plot()));

  const evaluate = (step: number): EvalRecord | null => {
    if (!val) return null;
    const n = c.eval_batches === 0 ? val.numRows : Math.min(val.numRows, c.eval_batches * B);
    let sum = 0;
    let count = 0;
    for (let r0 = 0; r0 < n; r0 += B) {
      const nb = Math.min(B, n - r0);
      const idx = Array.from({ length: nb }, (_, k) => r0 + k);
      splitRows(val.rows(idx), nb, R, T, x, y);
      evalTape.reset();
      const res = lmLoss(evalTape, model, x.subarray(0, nb * T), y.subarray(0, nb * T), nb, T);
      sum += res.value * nb * T;
      count += nb * T;
    }
    evalTape.reset();
    const loss = sum / count;
    const rec: EvalRecord = {
      type: 'eval', step, val_loss: loss, val_bpc: val.charsPerToken > 0 ? lossToBitsPerChar(loss, val.charsPerToken) : null,
      val_ppl: Math.exp(loss), val_tokens: count,
    };
    metrics.append(rec);
    emit({ kind: 'eval', rec });
    return rec;
  };

  const save = (step: number): void => {
    const state: TrainerState = {
      format: TRAINER_STATE_FORMAT, version: TRAINER_STATE_VERSION, step, tokens, train_seconds: trainSeconds,
      wall_seconds: priorWall + (performance.now() - t0) / 1000, config: c, model_config: cfg, tied,
      data: { dir: data.dir, seed: c.seed, batch_size: B, grad_accum: A, seq_len: T, next_batch: step * A, train_rows: train.numRows, tokenizer_hash: hash },
      rng: { init_seed: c.seed, data_seed: c.seed, draws_after_init: 0 },
      lr, last_loss: lastLoss, last_val_loss: lastVal?.val_loss ?? prior?.last_val_loss ?? null, saved_at: new Date().toISOString(),
    };
    checkpoint = saveCheckpoint(out, { config: cfg, weights, vocab, optimizer: opt.optimizerState(), state, keep: c.keep_checkpoints });
    writePlot();
    emit({ kind: 'checkpoint', dir: checkpoint, step });
  };

  for (let s = startStep; s < c.steps; s++) {
    const ts = performance.now();
    zeroGrads(model.params);
    let loss = 0;
    for (let a = 0; a < A; a++) {
      splitRows(train.batch(s * A + a, B), B, R, T, x, y);
      tape.reset();
      const r = lmLoss(tape, model, x, y, B, T);
      tape.backward(r.loss, 1 / A);
      loss += r.value / A;
    }
    tape.reset();
    if (!Number.isFinite(loss)) {
      throw new Llama2Error(`training diverged at step ${s + 1}: loss is ${loss}; lower lr (now ${c.lr}) or raise warmup_steps`);
    }
    const { norm, coef } = clipCoefficient(model.params, c.grad_clip, be);
    lr = lrAt(s, schedule);
    opt.step(lr, coef);
    const dt = (performance.now() - ts) / 1000;
    trainSeconds += dt;
    tokens += B * A * T;
    lastLoss = loss;
    const step = s + 1;
    const rec: TrainRecord = {
      type: 'train', step, loss, lr, grad_norm: norm, tokens: B * A * T, tokens_per_s: (B * A * T) / dt, elapsed_s: (performance.now() - t0) / 1000,
    };
    metrics.append(rec);
    emit({ kind: 'step', rec, steps: c.steps, startStep });

    const last = step === c.steps;
    if (last || (c.eval_every > 0 && step % c.eval_every === 0)) lastVal = evaluate(step) ?? lastVal;
    await tick(); // a SIGINT arriving during the step is handled here
    const stop = !last && (o.signal?.aborted === true || (o.stopAfter !== undefined && step >= o.stopAfter));
    if (last || stop || (c.ckpt_every > 0 && step % c.ckpt_every === 0)) save(step);
    if (stop) {
      status = o.signal?.aborted ? 'interrupted' : 'stopped';
      break;
    }
  }
  const step = opt.t;
  const wall = priorWall + (performance.now() - t0) / 1000;
  const compute = computeSummary({
    config: cfg, seqLen: T, tokens, trainSeconds, wallSeconds: wall, threads,
    cpuWatts: c.cpu_watts, peakGflops: c.peak_gflops, carbonIntensity: c.carbon_intensity,
  });
  const evals = metrics.evals();
  const lastEval = evals[evals.length - 1] ?? null;
  const summary: RunSummary = {
    status, steps: step, tokens, params, train_seconds: trainSeconds, wall_seconds: wall,
    tokens_per_s: trainSeconds > 0 ? tokens / trainSeconds : 0, backend: be.name, threads,
    final_train_loss: lastLoss, final_val_loss: lastEval?.val_loss ?? null, final_val_bpc: lastEval?.val_bpc ?? null,
    entropy_floor_bpc: data.entropyFloorBpc, checkpoint, model_config: cfg, ...compute,
  };
  writeFileAtomic(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  writePlot();
  return { status, step, checkpoint, summary, metrics, model, vocab, plot: plot() };
}

function sameShape(a: LlamaConfig, b: LlamaConfig): boolean {
  const keys: (keyof LlamaConfig)[] = ['dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'norm_eps', 'rope_theta'];
  return keys.every((k) => a[k] === b[k]) && ffnHiddenDim(a) === ffnHiddenDim(b);
}
