/**
 * Recipe `sft`: supervised fine-tuning of a chat model (Llama 2 paper, section 3.1) — setup →
 * explicit loop → save, on the run-directory lifecycle of train/run.ts.
 *
 *   const r = await sft({ config: { ...SFT.defaults, init: 'runs/base/latest', data: ['world/sft.jsonl'] } });
 *
 * Data: chat JSONL (messages, TRL prompt–completion, HH-RLHF; data/chat-data.ts) rendered in
 * Llama-2's chat format with the answer mask of chat/format.ts renderDialog: the loss is on
 * answer tokens only ("we zero-out the loss on tokens from the user prompt"), and with
 * "train_on": "last" (Ghost Attention data) on the final answer only. A dialog longer than a row
 * loses its oldest turns (the system prompt stays), then its tail; one whose answer would be cut
 * entirely is dropped and counted. A seeded share (val_fraction) is held out for the validation loss.
 *
 * Rows: data/packing.ts (block by default: samples side by side, each attending only to itself).
 * Epoch e visits the training samples in the order permutation(hashSeed(seed, e)); global row g is
 * row g − (rows of earlier epochs) of its epoch; micro-batch k is rows [kB, kB + B). So the step
 * counter is the whole data state and resume is bit-identical.
 *
 * Per step: the micro-batches' answer tokens W are counted first; each micro-batch's masked mean
 * loss is back-propagated with seed (its answer tokens)/W, so the step's gradient is the exact
 * token-weighted mean over the step, whatever the packing; then global clipping, the cosine
 * schedule and AdamW as in pretraining (defaults: the paper's cosine schedule, weight decay 0.1,
 * 2 epochs; the learning rate scaled up for small models).
 *
 * What it is not: the CLI (cli/sft.ts), gold evaluation (llama2 eval) or the chat format.
 */
import { join } from 'node:path';
import type { LlamaConfig } from '../model/config.js';
import type { ModelWeights } from '../model/weights.js';
import { loadModelFile } from '../formats/load.js';
import { fitDialog, renderDialog } from '../chat/format.js';
import { readChatFile, type ChatSample } from '../data/chat-data.js';
import { PACKINGS, packEpoch, type EpochRows, type TokenSample } from '../data/packing.js';
import { loadVocab } from '../tokenizer/load.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { Llama2Error, check } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { hashSeed, permutation, Rng } from '../util/rng.js';
import { checkOptim, defineConfig, key, optimKeys, runKeys, type ConfigOf } from '../train/config.js';
import { TRAINER_STATE_FORMAT, TRAINER_STATE_VERSION, saveCheckpoint, type TrainerState } from '../train/checkpoint.js';
import { lossCurveSvg, type EvalRecord, type LossPlot, type MetricsLog, type TrainRecord } from '../train/metrics.js';
import { cloneWeights, zeroGrads } from '../train/params.js';
import { lmLoss, packedLayout, type RowLayout, type TrainModel } from '../train/model.js';
import { clipCoefficient } from '../train/optim.js';
import { meanLoss, setupTraining } from '../train/setup.js';
import { lrAt } from '../train/schedule.js';
import { baseSummary, openRun, resumePoint, threadsOf, type RecipeOptions, type RunStatus, type RunSummary } from '../train/run.js';

export const SFT_SPEC = {
  init: key.stringOrNull(null, 'the model to fine-tune: a checkpoint (<run>/latest), an HF or Meta directory, a GGUF or llama2.c file (required)'),
  data: key.list([], 'chat JSONL files: {"messages"}, {"prompt","completion"} or HH-RLHF {"text"|"chosen"} lines (required)'),
  tokenizer: key.stringOrNull(null, "tokenizer file (default: the model's)"),
  seq_len: key.intOrNull(null, "positions per training row T (default: the model's context, at most 512)", { min: 8 }),
  packing: key.oneOf('block', PACKINGS, 'rows: block (samples side by side, each attending only to itself), concat (the paper\'s plain concatenation), none (one per row)'),
  epochs: key.int(2, 'passes over the data (the paper: 2); sets the steps unless steps is given', { min: 1 }),
  steps: key.intOrNull(null, 'optimizer steps (default: epochs × rows / (batch_size × grad_accum))', { min: 1, resumable: true }),
  val_fraction: key.number(0.02, 'share of dialogs held out for the validation loss (seeded)', { min: 0, max: 0.5 }),
  skip_bad: key.boolean(false, 'skip malformed data lines (counted) instead of stopping at the first'),
  eval_batches: key.int(0, 'validation batches per evaluation (0: the whole held-out split)', { min: 0, resumable: true }),
  ...optimKeys({ batch_size: 8, lr: 3e-4, warmup_steps: 10, lrHelp: 'peak learning rate (the paper: 2e-5 for 7B-70B models; ~1-10M-parameter models need ~10× more)' }),
  ...runKeys({ out_dir: 'runs/sft', eval_every: 50, ckpt_every: 100 }),
};

export const SFT = defineConfig('sft', SFT_SPEC, (c, where) => {
  checkOptim(c, c.steps, where);
});
export type SftConfig = ConfigOf<typeof SFT_SPEC>;

export type SftOptions = RecipeOptions<SftConfig>;

export interface SftSummary extends RunSummary {
  packing: string;
  samples: { train: number; val: number; bad_lines: number; shortened: number; dropped: number };
  answer_tokens: number;
  answer_tokens_per_s: number;
}

export interface SftResult {
  status: RunStatus;
  step: number;
  checkpoint: string | null;
  summary: SftSummary;
  metrics: MetricsLog;
  model: TrainModel;
  vocab: SpmVocab;
  plot: LossPlot;
}

/** Dialogs → token samples: fitted to T + 1 tokens, the loss on the turns train_on names. */
export function tokenizeSamples(tok: Tokenizer, samples: Iterable<ChatSample>, maxTokens: number): { out: TokenSample[]; shortened: number; dropped: number } {
  const out: TokenSample[] = [];
  let shortened = 0;
  let dropped = 0;
  for (const s of samples) {
    let r = renderDialog(tok, s.messages, { allowSpecialTags: true });
    if (r.ids.length > maxTokens) {
      shortened++;
      try {
        r = fitDialog(tok, s.messages, maxTokens, { allowSpecialTags: true }); // drops the oldest turns
      } catch {
        // even the last turn is too long: keep its first maxTokens tokens
      }
    }
    const n = Math.min(r.ids.length, maxTokens);
    const mask = Uint8Array.from(r.lossMask.slice(0, n));
    if (s.trainOn === 'last') {
      const lastBos = r.ids.lastIndexOf(tok.bosId, n - 1); // every turn opens with BOS
      mask.fill(0, 0, Math.max(0, lastBos));
    }
    if (n < 2 || !mask.includes(1)) {
      dropped++;
      continue;
    }
    out.push({ ids: Int32Array.from(r.ids.slice(0, n)), mask });
  }
  return { out, shortened, dropped };
}

/** FNV-1a over every sample's ids and mask: resume refuses other data. */
function dataHash(samples: readonly TokenSample[]): string {
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    h = Math.imul(h ^ (v & 0xff), 0x01000193) >>> 0;
    h = Math.imul(h ^ ((v >>> 8) & 0xffffff), 0x01000193) >>> 0;
  };
  for (const s of samples) {
    mix(s.ids.length);
    for (let i = 0; i < s.ids.length; i++) mix((s.ids[i]! << 1) | s.mask[i]!);
  }
  return h.toString(16).padStart(8, '0');
}

/** Global rows over epochs 0, 1, 2, … (each epoch packed from its own seeded order, on demand). */
function epochRows(samples: readonly TokenSample[], T: number, c: SftConfig): { row(g: number): [EpochRows, number]; rowsIn(epochs: number): number } {
  const epochs: EpochRows[] = [];
  const epoch = (e: number): EpochRows => {
    while (epochs.length <= e) epochs.push(packEpoch(samples, permutation(samples.length, new Rng(hashSeed(c.seed, epochs.length))), T, c.packing));
    return epochs[e]!;
  };
  return {
    row(g) {
      for (let e = 0; ; e++) {
        const rows = epoch(e);
        if (g < rows.rows) return [rows, g];
        g -= rows.rows;
      }
    },
    rowsIn(n) {
      let s = 0;
      for (let e = 0; e < n; e++) s += epoch(e).rows;
      return s;
    },
  };
}

export async function sft(o: SftOptions): Promise<SftResult> {
  const c = SFT.check(o.config, 'sft config');
  if (c.init === null) throw new Llama2Error('sft: init is required (--init CKPT: the model to fine-tune)');
  if (c.data.length === 0) throw new Llama2Error('sft: data is required (--data FILE[,FILE…]: chat JSONL)');
  const run = openRun({ outDir: c.out_dir, stage: 'sft', resume: o.resume, overwrite: o.overwrite, stopAfter: o.stopAfter, signal: o.signal, onEvent: o.onEvent });
  try {
    // ---- setup: the model, the tokenizer, the data
    const init = loadModelFile(c.init, { tokenizer: c.tokenizer ?? undefined });
    const vocab = init.vocab;
    if (!vocab) throw new Llama2Error(`sft: ${c.init} has no tokenizer next to it; pass --tokenizer FILE`);
    check(vocab.pieces.length === init.config.vocab_size, `sft: the tokenizer has ${vocab.pieces.length} pieces but ${c.init} has a vocabulary of ${init.config.vocab_size}`);
    const tok = new Tokenizer(vocab);
    const T = c.seq_len ?? Math.min(init.config.max_seq_len, 512);
    check(T <= init.config.max_seq_len, `sft: seq_len ${T} exceeds the model's context ${init.config.max_seq_len}`);
    let badLines = 0;
    const dialogs: ChatSample[] = [];
    for (const f of c.data) {
      for (const s of readChatFile(f, { skipBad: c.skip_bad, onBad: (m) => { badLines++; run.emit({ kind: 'notice', message: `skipped ${m}` }); } })) dialogs.push(s);
    }
    const isVal = (i: number) => c.val_fraction > 0 && hashSeed(c.seed, i) / 0x100000000 < c.val_fraction;
    const train = tokenizeSamples(tok, dialogs.filter((_, i) => !isVal(i)), T + 1);
    const val = tokenizeSamples(tok, dialogs.filter((_, i) => isVal(i)), T + 1);
    check(train.out.length > 0, `sft: no training dialogs left in ${c.data.join(', ')} (${dialogs.length} read, ${train.dropped} without an answer that fits)`);
    const hash = dataHash(train.out);
    const rows = epochRows(train.out, T, c);
    const [B, A] = [c.batch_size, c.grad_accum];
    const steps = c.steps ?? Math.ceil(rows.rowsIn(c.epochs) / (B * A));
    // with the steps derived from a small data set, warm-up is cut to a tenth of them
    const warmup = c.steps === null && c.warmup_steps > steps ? Math.floor(steps / 10) : c.warmup_steps;
    if (warmup !== c.warmup_steps) run.emit({ kind: 'notice', message: `sft: ${steps} steps over the data; warm-up cut from ${c.warmup_steps} to ${warmup} steps` });
    checkOptim({ ...c, warmup_steps: warmup }, steps, 'sft config');

    const ck = resumePoint(run, SFT, c, steps, { data_hash: hash });
    const weights: ModelWeights = ck ? ck.weights : cloneWeights(init.weights);
    const cfg: LlamaConfig = init.config;
    const t = setupTraining(run, { config: cfg, weights, ck, threads: c.threads, backend: o.backend, optim: c });
    const { model, be, opt, tape, params, prior, startStep } = t;
    let answerTokens = (prior?.data['answer_tokens'] as number | undefined) ?? 0;
    run.emit({ kind: 'notice', message: `sft data: ${train.out.length} train / ${val.out.length} validation dialogs` +
      `${train.shortened + val.shortened ? `, ${train.shortened + val.shortened} shortened to fit ${T + 1} tokens` : ''}` +
      `${train.dropped + val.dropped ? `, ${train.dropped + val.dropped} dropped (no answer fits)` : ''}${badLines ? `, ${badLines} bad lines skipped` : ''}; ` +
      `${rows.rowsIn(c.epochs)} rows of ${T} per ${c.epochs} epochs (${c.packing} packing)` });
    run.emit({ kind: 'start', stage: 'sft', step: startStep, steps, resumedFrom: run.latest?.dir ?? null, config: cfg, params, backend: be.name, threads: threadsOf(be), tokensPerStep: B * A * T, about: `fine-tuning ${c.init}` });

    // ---- one micro-batch of rows [g0, g0 + nb): fills x, y, w and the block layout
    const x = new Int32Array(B * T); // (B, T) inputs
    const y = new Int32Array(B * T); // (B, T) targets
    const w = new Float32Array(B * T); // (B, T) loss weights (answer tokens)
    const fill = (rowAt: (k: number) => [EpochRows, number], nb: number, block: boolean): { layout: RowLayout | undefined; answers: number } => {
      const segs: number[][] = [];
      let answers = 0;
      for (let b = 0; b < nb; b++) {
        const [er, r] = rowAt(b);
        segs.push(er.fill(r, x, y, w, b * T));
      }
      for (let i = 0; i < nb * T; i++) answers += w[i]!;
      return { layout: block ? packedLayout(segs, T) : undefined, answers };
    };
    const valRows = val.out.length > 0 ? packEpoch(val.out, Uint32Array.from(val.out.keys()), T, 'block') : null;
    const evaluate = (step: number): EvalRecord | null => {
      if (!valRows) return null;
      const v = valRows;
      const n = c.eval_batches === 0 ? v.rows : Math.min(v.rows, c.eval_batches * B);
      const { loss, weight: count } = meanLoss(t, n, B, T, x, y, (r0, nb) => {
        const { layout, answers } = fill((k) => [v, r0 + k], nb, true);
        return { mask: w.subarray(0, nb * T), layout, weight: answers };
      });
      const rec: EvalRecord = { type: 'eval', step, val_loss: loss, val_bpc: null, val_ppl: Math.exp(loss), val_tokens: count };
      run.metrics.append(rec);
      run.emit({ kind: 'eval', rec });
      return rec;
    };
    const plot = (): LossPlot => ({
      title: `SFT loss on answer tokens (${(params / 1e6).toFixed(2)}M params)`,
      train: run.metrics.train().map((r) => ({ x: r.step, y: r.loss })),
      val: run.metrics.evals().map((r) => ({ x: r.step, y: r.val_loss })),
      yLabel: 'loss (nats/answer token)',
    });
    let lastLoss: number | null = prior?.last_loss ?? null;
    let lastVal: EvalRecord | null = null;
    let lr = prior?.lr ?? 0;
    let checkpoint: string | null = run.latest?.dir ?? null;
    let status: RunStatus = 'completed';
    const save = (step: number): void => {
      const state: TrainerState = {
        format: TRAINER_STATE_FORMAT, version: TRAINER_STATE_VERSION, stage: 'sft', step, tokens: run.clock.tokens, train_seconds: run.clock.trainSeconds,
        wall_seconds: run.clock.wall(), config: c, model_config: cfg, tied: weights.output === weights.tok_embeddings,
        data: { seed: c.seed, next_batch: step * A, batch_size: B, grad_accum: A, seq_len: T, packing: c.packing, data_hash: hash, samples: train.out.length, answer_tokens: answerTokens },
        rng: { init_seed: c.seed, data_seed: c.seed, draws_after_init: 0 },
        lr, last_loss: lastLoss, last_val_loss: lastVal?.val_loss ?? prior?.last_val_loss ?? null, saved_at: new Date().toISOString(),
      };
      checkpoint = saveCheckpoint(run.out, { config: cfg, weights, vocab, optimizer: opt.optimizerState(), state, keep: c.keep_checkpoints });
      writeFileAtomic(join(run.out, 'loss.svg'), lossCurveSvg(plot()));
      run.emit({ kind: 'checkpoint', dir: checkpoint, step });
    };

    // ---- the loop
    const totalRows = rows.rowsIn(c.epochs);
    const schedule = { peak: c.lr, warmup, total: steps, minRatio: c.min_lr_ratio };
    for (let s = startStep; s < steps; s++) {
      const ts = performance.now();
      zeroGrads(model.params);
      // this step's micro-batches: rows [(sA + a)B, …) of the run, cycling past the last epoch when steps asks for more
      const micro = Array.from({ length: A }, (_, a) => (s * A + a) * B);
      const counts = micro.map((g0) => countAnswers(rows, g0, B, totalRows, c.steps !== null));
      const W = counts.reduce((p, q) => p + q, 0);
      let loss = 0;
      let positions = 0;
      for (let a = 0; a < A; a++) {
        const nb = rowsOf(micro[a]!, B, totalRows, c.steps !== null);
        if (nb === 0 || counts[a] === 0) continue;
        const { layout, answers } = fill((k) => rows.row(micro[a]! + k), nb, c.packing === 'block');
        tape.reset();
        const r = lmLoss(tape, model, x.subarray(0, nb * T), y.subarray(0, nb * T), nb, T, w.subarray(0, nb * T), layout);
        tape.backward(r.loss, answers / W);
        loss += (r.value * answers) / W;
        positions += nb * T;
      }
      tape.reset();
      if (!Number.isFinite(loss)) throw new Llama2Error(`sft diverged at step ${s + 1}: loss is ${loss}; lower lr (now ${c.lr})`);
      const { norm, coef } = clipCoefficient(model.params, c.grad_clip, be);
      lr = lrAt(s, schedule);
      opt.step(lr, coef);
      const dt = (performance.now() - ts) / 1000;
      run.clock.addStep(positions, dt);
      answerTokens += W;
      lastLoss = loss;
      const step = s + 1;
      const rec: TrainRecord = { type: 'train', step, loss, lr, grad_norm: norm, tokens: positions, tokens_per_s: positions / dt, elapsed_s: run.clock.wall() - run.clock.priorWall, answer_tokens: W };
      const stop = await run.endStep(rec, { steps: steps, startStep, evalEvery: c.eval_every, ckptEvery: c.ckpt_every, evaluate: (n) => (lastVal = evaluate(n) ?? lastVal), save });
      if (stop) {
        status = stop;
        break;
      }
    }

    // ---- the summary
    const evals = run.metrics.evals();
    const summary = run.finish<SftSummary>({
      ...baseSummary(run, { status, steps: opt.t, params, be, config: cfg, seqLen: T, lastLoss, lastVal: evals[evals.length - 1]?.val_loss ?? null, checkpoint, accounting: c }),
      packing: c.packing,
      samples: { train: train.out.length, val: val.out.length, bad_lines: badLines, shortened: train.shortened + val.shortened, dropped: train.dropped + val.dropped },
      answer_tokens: answerTokens,
      answer_tokens_per_s: run.clock.trainSeconds > 0 ? answerTokens / run.clock.trainSeconds : 0,
    });
    const p = plot();
    writeFileAtomic(join(run.out, 'loss.svg'), lossCurveSvg(p));
    return { status, step: opt.t, checkpoint, summary, metrics: run.metrics, model, vocab, plot: p };
  } finally {
    run.release();
  }
}

/** Rows of the micro-batch starting at global row g0 (the last one may be short; with an explicit step count rows cycle on). */
function rowsOf(g0: number, B: number, totalRows: number, cycle: boolean): number {
  return cycle ? B : Math.max(0, Math.min(B, totalRows - g0));
}

/** Answer tokens (loss weights) in the micro-batch starting at global row g0. */
function countAnswers(rows: { row(g: number): [EpochRows, number] }, g0: number, B: number, totalRows: number, cycle: boolean): number {
  const nb = rowsOf(g0, B, totalRows, cycle);
  let n = 0;
  for (let k = 0; k < nb; k++) {
    const [er, r] = rows.row(g0 + k);
    n += er.answers(r);
  }
  return n;
}
