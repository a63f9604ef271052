/**
 * Recipe `pretrain`: a Llama model from scratch on token shards — setup → explicit loop → save.
 *
 *   const r = await pretrain({ config: PRETRAIN.fromFlags(flags), signal, onEvent });
 *
 * Per optimizer step s (0-based; logs and checkpoints count completed steps, s + 1):
 *   zero gradients; for each of grad_accum micro-batches a: rows = train.batch(s·A + a, B)
 *   (B, T+1) → inputs/targets (B·T); loss = lmLoss(...); backward with seed 1/A
 *   coef = clip coefficient (global norm ≤ grad_clip); lr = lrAt(s) (warm-up, cosine to min ratio)
 *   AdamW step(lr, coef)
 * then a metrics line, an evaluation every eval_every steps (and at the end), a checkpoint every
 * ckpt_every steps (and at the end, and when stopped). The run directory (lock, resume, stop
 * protocol, summary) is train/run.ts; resume is bit-identical (train/checkpoint.ts says why).
 *
 * Config: PRETRAIN below — the model shape (a preset or the shape keys), the data (prepared shards
 * or "builtin:stories", built under <out_dir>/data), the optimizer and schedule (Llama 2 paper,
 * section 2.2), the run. What it is not: the CLI (cli/pretrain.ts) or data preparation (src/data/).
 */
import { join } from 'node:path';
import type { Backend } from '../backend/types.js';
import { ffnHiddenDim, makeConfig, preset as presetConfig, type LlamaConfig } from '../model/config.js';
import { vocabHash } from '../data/prepare.js';
import { lossToBitsPerChar, openShards, readShardMeta, type ShardReader } from '../data/shards.js';
import { buildStoriesData, type PretrainData } from '../data/stories-data.js';
import { loadVocab } from '../tokenizer/load.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { Llama2Error, check } from '../util/errors.js';
import { checkOptim, defineConfig, key, optimKeys, runKeys, type ConfigOf } from '../train/config.js';
import { TRAINER_STATE_FORMAT, TRAINER_STATE_VERSION, saveCheckpoint, type TrainerState } from '../train/checkpoint.js';
import { lossCurveSvg, type EvalRecord, type LossPlot, type MetricsLog } from '../train/metrics.js';
import { initModelWeights, zeroGrads } from '../train/params.js';
import { lmLoss, type TrainModel } from '../train/model.js';
import { clipCoefficient } from '../train/optim.js';
import { meanLoss, setupTraining, type TrainingSetup } from '../train/setup.js';
import { lrAt } from '../train/schedule.js';
import { baseSummary, openRun, resumePoint, threadsOf, type RecipeOptions, type Run, type RunStatus, type RunSummary } from '../train/run.js';
import { writeFileAtomic } from '../util/fs.js';

/** `data_dir` value that asks for the built-in stories corpus (synthesised, tokenized, prepared). */
export const BUILTIN_STORIES = 'builtin:stories';

/** The model shape used when neither a preset nor the config sets a key. */
export const DEFAULT_SHAPE = { dim: 128, n_layers: 4, n_heads: 4, multiple_of: 32, norm_eps: 1e-5, rope_theta: 10000 } as const;

const SPEC = {
  // model shape
  preset: key.stringOrNull(null, 'model shape preset (stories260k, stories15m, ...); shape keys override it'),
  dim: key.intOrNull(null, `model width (default ${DEFAULT_SHAPE.dim})`, { min: 2 }),
  n_layers: key.intOrNull(null, `transformer blocks (default ${DEFAULT_SHAPE.n_layers})`, { min: 1 }),
  n_heads: key.intOrNull(null, `attention heads (default ${DEFAULT_SHAPE.n_heads})`, { min: 1 }),
  n_kv_heads: key.intOrNull(null, 'key/value heads (default n_heads)', { min: 1 }),
  multiple_of: key.intOrNull(null, `FFN size rounding (default ${DEFAULT_SHAPE.multiple_of})`, { min: 1 }),
  hidden_dim: key.intOrNull(null, "FFN hidden size (default: Meta's rule from dim)", { min: 1 }),
  norm_eps: key.numberOrNull(null, `RMSNorm epsilon (default ${DEFAULT_SHAPE.norm_eps})`, { min: 0, above: true }),
  rope_theta: key.numberOrNull(null, `RoPE base (default ${DEFAULT_SHAPE.rope_theta})`, { min: 0, above: true }),
  max_seq_len: key.intOrNull(null, "context length written to the checkpoint's config.json (default seq_len)", { min: 2 }),
  tie_embeddings: key.boolean(false, 'share the output head with the token embedding'),
  init_std: key.number(0.02, 'std of the initial weight matrices', { min: 0, above: true }),
  // data
  data_dir: key.string(BUILTIN_STORIES, `prepared shard directory (llama2 data prepare), or "${BUILTIN_STORIES}"`),
  tokenizer: key.stringOrNull(null, 'tokenizer file (default: <data_dir>/tokenizer.model)'),
  seq_len: key.intOrNull(null, "training context T (default: the shards' seq_len; built-in stories: 256)", { min: 1 }),
  stories_count: key.int(4000, `${BUILTIN_STORIES}: number of stories`, { min: 10 }),
  stories_seed: key.int(1, `${BUILTIN_STORIES}: corpus seed`, { min: 0 }),
  vocab_size: key.int(1024, `${BUILTIN_STORIES}: tokenizer vocabulary size`, { min: 260 }),
  val_fraction: key.number(0.02, `${BUILTIN_STORIES}: share of stories held out for validation`, { min: 0, max: 0.5 }),
  world_docs: key.int(0, `${BUILTIN_STORIES}: chat-world documents (its tasks as prose) mixed in, for a base model that SFT turns into a chat model`, { min: 0 }),
  entropy_floor_bpc: key.numberOrNull(null, 'true entropy of the validation text in bits/char, if known (built-in stories: computed)', { min: 0, resumable: true }),
  // batches and schedule
  steps: key.int(1000, 'optimizer steps; the cosine schedule ends here', { min: 1, resumable: true }),
  ...optimKeys({ batch_size: 8, lr: 3e-3, warmup_steps: 20 }),
  eval_batches: key.int(8, 'validation batches per evaluation (0: the whole split)', { min: 0, resumable: true }),
  ...runKeys({ out_dir: 'runs/pretrain', eval_every: 50, ckpt_every: 100 }),
};

/** The pretraining config: defaults in code (a ~1M-parameter model on the built-in stories, what `llama2 demo` trains). */
export const PRETRAIN = defineConfig('pretrain', SPEC, (c, where) => checkOptim(c, c.steps, where));
export type PretrainConfig = ConfigOf<typeof SPEC>;

/** The Llama shape a config gives (vocab from the tokenizer, context defaulting to seq_len). */
export function modelConfigFor(c: PretrainConfig, vocabSize: number, seqLen: number): LlamaConfig {
  const p: Partial<LlamaConfig> = c.preset ? presetConfig(c.preset) : {};
  const pick = <K extends keyof typeof DEFAULT_SHAPE>(k: K): number => (c[k] ?? p[k] ?? DEFAULT_SHAPE[k]) as number;
  const nHeads = pick('n_heads');
  return makeConfig({
    dim: pick('dim'), n_layers: pick('n_layers'), n_heads: nHeads,
    n_kv_heads: c.n_kv_heads ?? (c.preset && c.n_heads === null ? p.n_kv_heads : undefined) ?? nHeads,
    vocab_size: vocabSize, multiple_of: pick('multiple_of'),
    ffn_dim_multiplier: c.preset && c.dim === null ? p.ffn_dim_multiplier ?? null : null,
    hidden_dim: c.hidden_dim ?? (c.preset && c.dim === null ? p.hidden_dim ?? null : null),
    norm_eps: pick('norm_eps'), rope_theta: pick('rope_theta'), max_seq_len: c.max_seq_len ?? seqLen,
  });
}

/** The data a config points at: its shards and tokenizer; the built-in stories are built under <out_dir>/data. */
export function dataFor(c: PretrainConfig, say: (m: string) => void = () => {}): PretrainData {
  if (c.data_dir !== BUILTIN_STORIES) {
    return { dir: c.data_dir, tokenizer: c.tokenizer ?? join(c.data_dir, 'tokenizer.model'), entropyFloorBpc: c.entropy_floor_bpc };
  }
  if (c.tokenizer !== null) throw new Llama2Error(`config: tokenizer must be null with data_dir "${BUILTIN_STORIES}" (the pipeline trains its own)`);
  modelConfigFor(c, c.vocab_size, c.seq_len ?? 256); // an invalid shape fails before any data is built
  const d = buildStoriesData({
    dir: join(c.out_dir, 'data'), count: c.stories_count, seed: c.stories_seed, vocabSize: c.vocab_size,
    seqLen: c.seq_len ?? 256, valFraction: c.val_fraction, worldDocs: c.world_docs, onProgress: say,
  });
  return { dir: d.dir, tokenizer: d.tokenizer, entropyFloorBpc: c.entropy_floor_bpc ?? d.entropyFloorBpc, floorText: d.floorText ?? null };
}

export interface PretrainOptions extends RecipeOptions<PretrainConfig> {
  /** default: dataFor(config) */
  data?: PretrainData;
}

export interface PretrainSummary extends RunSummary {
  final_val_bpc: number | null;
  entropy_floor_bpc: number | null;
  /** bits/char on the validation text the floor is for: the whole split, or with world documents mixed in, its stories */
  floor_text_val_bpc: number | null;
}

export interface PretrainResult {
  status: RunStatus;
  step: number;
  checkpoint: string | null;
  summary: PretrainSummary;
  metrics: MetricsLog;
  model: TrainModel;
  vocab: SpmVocab;
  plot: LossPlot;
}

/** Copies rows (n, R) into inputs/targets (n·T): x = row[0..T), y = row[1..T]. */
function splitRows(rows: Int32Array, n: number, R: number, T: number, x: Int32Array, y: Int32Array): void {
  for (let b = 0; b < n; b++) {
    x.set(rows.subarray(b * R, b * R + T), b * T);
    y.set(rows.subarray(b * R + 1, b * R + 1 + T), b * T);
  }
}

/**
 * The mean next-token loss (nats) over shard rows [0, n) in batches of B, each row cut to T
 * positions; x, y are (B·T) scratch. Pretraining's validation loss, and scripts/stories-bpc.mjs's.
 */
export function shardRowsLoss(t: Pick<TrainingSetup, 'model' | 'evalTape'>, rows: ShardReader, n: number, B: number, T: number, x = new Int32Array(B * T), y = new Int32Array(B * T)): { loss: number; weight: number } {
  return meanLoss(t, n, B, T, x, y, (r0, nb) => {
    splitRows(rows.rows(Array.from({ length: nb }, (_, k) => r0 + k)), nb, rows.rowTokens, T, x, y);
    return { weight: nb * T };
  });
}

export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const c = PRETRAIN.check(o.config, 'config');
  const data = o.data ?? dataFor(c);
  const run = openRun({ outDir: c.out_dir, stage: 'pretrain', resume: o.resume, overwrite: o.overwrite, stopAfter: o.stopAfter, signal: o.signal, onEvent: o.onEvent });
  let train: ShardReader | null = null;
  let val: ShardReader | null = null;
  try {
    // ---- setup: data, tokenizer, weights and optimizer (fresh or from the checkpoint)
    const meta = readShardMeta(data.dir);
    const T = c.seq_len ?? meta.seq_len;
    check(T <= meta.seq_len, `seq_len ${T} is longer than the shards' rows (seq_len ${meta.seq_len} in ${join(data.dir, 'meta.json')}); prepare the data again or lower seq_len`);
    const vocab = loadVocab(data.tokenizer);
    const hash = vocabHash(vocab);
    check(hash === meta.tokenizer_hash && vocab.pieces.length === meta.vocab_size,
      `tokenizer ${data.tokenizer} does not match the shards in ${data.dir} (prepared with tokenizer hash ${meta.tokenizer_hash}, ${meta.vocab_size} pieces; this one: ${hash}, ${vocab.pieces.length} pieces)`);
    train = openShards(data.dir, 'train', { seed: c.seed });
    val = meta.splits.val.rows > 0 ? openShards(data.dir, 'val') : null;
    const [B, A, R] = [c.batch_size, c.grad_accum, train.rowTokens];
    let cfg = modelConfigFor(c, vocab.pieces.length, T);
    check(T <= cfg.max_seq_len, `seq_len ${T} exceeds max_seq_len ${cfg.max_seq_len}`);
    const ck = resumePoint(run, PRETRAIN, c, c.steps, { tokenizer_hash: hash });
    if (ck) {
      check(ck.state.data.next_batch === ck.state.step * A, `checkpoint ${ck.dir}: data position ${ck.state.data.next_batch} is not step ${ck.state.step} × grad_accum ${A}`);
      check(sameShape(ck.config, cfg) && sameShape(ck.state.model_config, cfg), `--resume: the checkpoint's model shape differs from the one the config gives`);
      cfg = ck.state.model_config;
    }
    const weights = ck ? ck.weights : initModelWeights(cfg, c.seed, { tied: c.tie_embeddings, std: c.init_std });
    const t = setupTraining(run, { config: cfg, weights, ck, threads: c.threads, backend: o.backend, optim: c });
    const { model, be, opt, tape, params, prior, startStep } = t;
    const tied = weights.output === weights.tok_embeddings;
    run.emit({ kind: 'start', stage: 'pretrain', step: startStep, steps: c.steps, resumedFrom: run.latest?.dir ?? null, config: cfg, params, backend: be.name, threads: threadsOf(be), tokensPerStep: B * A * T });

    const x = new Int32Array(B * T); // (B, T) inputs
    const y = new Int32Array(B * T); // (B, T) targets
    let lastLoss: number | null = prior?.last_loss ?? null;
    let lastVal: EvalRecord | null = null;
    let lr = prior?.lr ?? 0;
    let checkpoint: string | null = run.latest?.dir ?? null;
    let status: RunStatus = 'completed';
    const schedule = { peak: c.lr, warmup: c.warmup_steps, total: c.steps, minRatio: c.min_lr_ratio };
    const plot = (): LossPlot => {
      // the floor in nats/token of the plotted (whole) split; a mixed split has none
      const f = data.entropyFloorBpc !== null && val && !data.floorText ? data.entropyFloorBpc * Math.LN2 * val.charsPerToken : null;
      return {
        title: `pretraining loss (${(params / 1e6).toFixed(2)}M params)`,
        train: run.metrics.train().map((r) => ({ x: r.step, y: r.loss })),
        val: run.metrics.evals().map((r) => ({ x: r.step, y: r.val_loss })),
        floor: f === null ? undefined : { y: f, label: `entropy floor ${data.entropyFloorBpc!.toFixed(3)} bits/char` },
        yLabel: 'loss (nats/token)',
      };
    };
    const evaluate = (step: number): EvalRecord | null => {
      if (!val) return null;
      const v = val;
      const n = c.eval_batches === 0 ? v.numRows : Math.min(v.numRows, c.eval_batches * B);
      const { loss, weight: count } = shardRowsLoss(t, v, n, B, T, x, y);
      const rec: EvalRecord = { type: 'eval', step, val_loss: loss, val_bpc: val.charsPerToken > 0 ? lossToBitsPerChar(loss, val.charsPerToken) : null, val_ppl: Math.exp(loss), val_tokens: count };
      const ft = data.floorText;
      if (ft && ft.rows <= v.numRows) { // every row of the text with the known floor (the stories of a mixed split)
        rec.floor_text_bpc = lossToBitsPerChar(shardRowsLoss(t, v, ft.rows, B, T, x, y).loss, ft.charsPerToken);
      }
      run.metrics.append(rec);
      run.emit({ kind: 'eval', rec });
      return rec;
    };
    const save = (step: number): void => {
      const state: TrainerState = {
        format: TRAINER_STATE_FORMAT, version: TRAINER_STATE_VERSION, stage: 'pretrain', step, tokens: run.clock.tokens, train_seconds: run.clock.trainSeconds,
        wall_seconds: run.clock.wall(), config: c, model_config: cfg, tied,
        data: { dir: data.dir, seed: c.seed, batch_size: B, grad_accum: A, seq_len: T, next_batch: step * A, train_rows: train!.numRows, tokenizer_hash: hash },
        rng: { init_seed: c.seed, data_seed: c.seed, draws_after_init: 0 },
        lr, last_loss: lastLoss, last_val_loss: lastVal?.val_loss ?? prior?.last_val_loss ?? null, saved_at: new Date().toISOString(),
      };
      checkpoint = saveCheckpoint(run.out, { config: cfg, weights, vocab, optimizer: opt.optimizerState(), state, keep: c.keep_checkpoints });
      writeFileAtomic(join(run.out, 'loss.svg'), lossCurveSvg(plot()));
      run.emit({ kind: 'checkpoint', dir: checkpoint, step });
    };

    // ---- the loop
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
      if (!Number.isFinite(loss)) throw new Llama2Error(`training diverged at step ${s + 1}: loss is ${loss}; lower lr (now ${c.lr}) or raise warmup_steps`);
      const { norm, coef } = clipCoefficient(model.params, c.grad_clip, be);
      lr = lrAt(s, schedule);
      opt.step(lr, coef);
      const dt = (performance.now() - ts) / 1000;
      run.clock.addStep(B * A * T, dt);
      lastLoss = loss;
      const step = s + 1;
      const rec = { type: 'train' as const, step, loss, lr, grad_norm: norm, tokens: B * A * T, tokens_per_s: (B * A * T) / dt, elapsed_s: run.clock.wall() - run.clock.priorWall };
      const stop = await run.endStep(rec, { steps: c.steps, startStep, evalEvery: c.eval_every, ckptEvery: c.ckpt_every, evaluate: (n) => (lastVal = evaluate(n) ?? lastVal), save });
      if (stop) {
        status = stop;
        break;
      }
    }

    // ---- the summary
    return finish(run, { c, status, step: opt.t, params, be, cfg, T, lastLoss, checkpoint, data, model, vocab, plot });
  } finally {
    train?.close();
    val?.close();
    run.release();
  }
}

function finish(
  run: Run, a: { c: PretrainConfig; status: RunStatus; step: number; params: number; be: Backend; cfg: LlamaConfig; T: number; lastLoss: number | null;
    checkpoint: string | null; data: PretrainData; model: TrainModel; vocab: SpmVocab; plot: () => LossPlot },
): PretrainResult {
  const evals = run.metrics.evals();
  const lastEval = evals[evals.length - 1] ?? null;
  const summary = run.finish<PretrainSummary>({
    ...baseSummary(run, { status: a.status, steps: a.step, params: a.params, be: a.be, config: a.cfg, seqLen: a.T, lastLoss: a.lastLoss, lastVal: lastEval?.val_loss ?? null, checkpoint: a.checkpoint, accounting: a.c }),
    final_val_bpc: lastEval?.val_bpc ?? null,
    entropy_floor_bpc: a.data.entropyFloorBpc,
    floor_text_val_bpc: a.data.entropyFloorBpc === null ? null : a.data.floorText ? lastEval?.floor_text_bpc ?? null : lastEval?.val_bpc ?? null,
  });
  const plot = a.plot();
  writeFileAtomic(join(run.out, 'loss.svg'), lossCurveSvg(plot));
  return { status: a.status, step: a.step, checkpoint: a.checkpoint, summary, metrics: run.metrics, model: a.model, vocab: a.vocab, plot };
}

/** The summary's loss line: train and validation loss, bits/char and the entropy floor (for reports). */
export function pretrainLossLine(s: PretrainSummary): string | undefined {
  if (s.final_train_loss === null) return undefined;
  let l = `loss: train ${s.final_train_loss.toFixed(4)}`;
  if (s.final_val_loss !== null) l += `, validation ${s.final_val_loss.toFixed(4)} nats/token`;
  if (s.final_val_bpc !== null) l += ` = ${s.final_val_bpc.toFixed(4)} bits/char`;
  if (s.entropy_floor_bpc !== null && s.floor_text_val_bpc !== null && s.floor_text_val_bpc !== s.final_val_bpc) {
    l += `; its stories ${s.floor_text_val_bpc.toFixed(4)} bits/char (their true entropy, the floor: ${s.entropy_floor_bpc.toFixed(4)}, ${pctAbove(s.floor_text_val_bpc, s.entropy_floor_bpc)} above)`;
  } else if (s.entropy_floor_bpc !== null) l += ` (true entropy, the floor: ${s.entropy_floor_bpc.toFixed(4)} bits/char${s.final_val_bpc !== null ? `, ${pctAbove(s.final_val_bpc, s.entropy_floor_bpc)} above` : ''})`;
  return l;
}

const pctAbove = (v: number, floor: number): string => `${((v / floor - 1) * 100).toFixed(1)}%`;

function sameShape(a: LlamaConfig, b: LlamaConfig): boolean {
  const keys: (keyof LlamaConfig)[] = ['dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'norm_eps', 'rope_theta'];
  return keys.every((k) => a[k] === b[k]) && ffnHiddenDim(a) === ffnHiddenDim(b);
}
