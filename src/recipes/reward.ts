/**
 * Recipe `reward`: a helpfulness or safety reward model (Llama 2 paper, section 3.2.2) — setup →
 * explicit loop → save, on the run-directory lifecycle of train/run.ts.
 *
 *   const r = await trainReward({ config: { ...REWARD.defaults, init: 'runs/sft/latest', data: ['prefs.jsonl'], kind: 'helpful' } });
 *
 * Model: the chat model's trunk (initialised from a checkpoint, SFT by default in the pipeline)
 * with a scalar head `score.weight` (1, C) on the final-RMSNorm'ed hidden state of the last token
 * (ModelWeights.heads: every writer saves it; HF writes LlamaForSequenceClassification). The
 * next-token head stays in the file but is not trained (nor decayed).
 *
 * Data (data/preferences.ts forms): the paper's mixes — the helpful model on the helpfulness pairs
 * plus safety pairs amounting to mix_other × their number; the safety model on the safety pairs
 * (those with is_safety_prompt; the bin "unsafe_over_safe" left out, as the paper does) plus
 * helpfulness pairs amounting to mix_other × their number (default 1/9: 90/10). Pairs without meta
 * count as helpfulness pairs. A seeded val_fraction is held out; accuracy on it is the eval metric.
 *
 * Loss per micro-batch of B pairs: −log σ(r_chosen − r_rejected − m(level)) averaged over pairs
 * (margin none / small / large, Table 27; TRL's explicit "margin" wins), plus aux_weight × the
 * safety auxiliary loss (train/reward.ts safetyAuxLoss) for the safety model. 1 epoch, warm-up 3%
 * of the steps (at least 5), cosine to 10%.
 *
 * What it is not: the CLI (cli/reward.ts), scoring at inference (chat/reward-score.ts) or eval tables (chat/reward-eval.ts).
 */
import { join } from 'node:path';
import type { LlamaConfig } from '../model/config.js';
import { Model } from '../model/forward.js';
import type { ModelWeights } from '../model/weights.js';
import { loadModelFile } from '../formats/load.js';
import { readPreferences, type PreferencePair } from '../data/preferences.js';
import { rewardReport, type RewardEvalReport } from '../chat/reward-eval.js';
import { fitForScoring, scoreIds } from '../chat/reward-score.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { Llama2Error, check } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { hashSeed, permutation, Rng } from '../util/rng.js';
import { defineConfig, key, optimKeys, runKeys, checkOptim, type ConfigOf } from '../train/config.js';
import { TRAINER_STATE_FORMAT, TRAINER_STATE_VERSION, saveCheckpoint, type TrainerState } from '../train/checkpoint.js';
import { lossCurveSvg, type EvalRecord, type LossPlot, type MetricsLog, type TrainRecord } from '../train/metrics.js';
import { cloneWeights, initScoreHead, paramFromTensor, zeroGrads } from '../train/params.js';
import { MARGIN_LARGE, MARGIN_SMALL, addLosses, marginsFor, rankingLoss, rewardScores, safetyAuxLoss } from '../train/reward.js';
import { clipCoefficient } from '../train/optim.js';
import { lrAt } from '../train/schedule.js';
import { setupTraining } from '../train/setup.js';
import { baseSummary, openRun, resumePoint, threadsOf, type RecipeOptions, type RunStatus, type RunSummary } from '../train/run.js';
import type { TrainModel } from '../train/model.js';

const SPEC = {
  init: key.stringOrNull(null, 'the model the reward model starts from: a checkpoint (<sft run>/latest), HF/Meta directory, GGUF (required)'),
  data: key.list([], 'preference JSONL files (llama2 data synth prefs, the serve A/B page, TRL or HH-RLHF pairs) (required)'),
  kind: key.oneOf('helpful', ['helpful', 'safety'] as const, 'which reward model: helpful (helpfulness pairs + some safety) or safety (safety pairs + 10% helpfulness)'),
  mix_other: key.numberOrNull(null, 'pairs of the other kind per pair of this kind (default: helpful 0.5, safety 1/9 — the paper\'s 90/10)', { min: 0 }),
  margin: key.oneOf('small', ['none', 'small', 'large'] as const, 'margin m(level) in the ranking loss: none, small (1, 2/3, 1/3, 0) or large (3, 2, 1, 0) (Table 27)'),
  aux_weight: key.numberOrNull(null, 'weight of the safety auxiliary loss (default: safety 1, helpful 0)', { min: 0 }),
  tokenizer: key.stringOrNull(null, "tokenizer file (default: the model's)"),
  seq_len: key.intOrNull(null, "most tokens of a prompt + answer (default: the model's context, at most 512)", { min: 8 }),
  epochs: key.int(1, 'passes over the pairs (the paper: 1; more overfits)', { min: 1 }),
  steps: key.intOrNull(null, 'optimizer steps (default: epochs × pairs / (batch_size × grad_accum))', { min: 1, resumable: true }),
  val_fraction: key.number(0.05, 'share of pairs held out for the validation accuracy (seeded)', { min: 0, max: 0.5 }),
  skip_bad: key.boolean(false, 'skip malformed data lines (counted) instead of stopping at the first'),
  ...optimKeys({ batch_size: 16, lr: 3e-4, warmup_steps: 0, warmupHelp: 'linear warm-up steps (0: 3% of the steps, at least 5)', lrHelp: 'peak learning rate (the paper: 1e-5, 5e-6 for 70B; ~1-10M-parameter models need ~10× more)' }),
  ...runKeys({ out_dir: 'runs/reward', eval_every: 50, ckpt_every: 100 }),
};

export const REWARD = defineConfig('reward', SPEC);
export type RewardConfig = ConfigOf<typeof SPEC>;
export type RewardOptions = RecipeOptions<RewardConfig>;

export interface RewardSummary extends RunSummary {
  kind: 'helpful' | 'safety';
  margin: string;
  pairs: { train: number; val: number; this_kind: number; other_kind: number; left_out: number; bad_lines: number };
  val: RewardEvalReport | null;
  pairs_per_s: number;
}

export interface RewardResult {
  status: RunStatus;
  step: number;
  checkpoint: string | null;
  summary: RewardSummary;
  metrics: MetricsLog;
  model: TrainModel;
  plot: LossPlot;
}

/** The pairs a reward model of `kind` trains on (the paper's mixes), in a seeded order. */
export function mixPairs(all: readonly PreferencePair[], kind: 'helpful' | 'safety', mixOther: number, seed: number): { pairs: PreferencePair[]; thisKind: number; otherKind: number; leftOut: number } {
  const safety = (p: PreferencePair) => p.meta.is_safety_prompt === true;
  const own = all.filter((p) => (kind === 'safety' ? safety(p) && p.meta.safety_bin !== 'unsafe_over_safe' : !safety(p)));
  const others = all.filter((p) => (kind === 'safety' ? !safety(p) : safety(p)));
  const leftOut = kind === 'safety' ? all.filter((p) => safety(p) && p.meta.safety_bin === 'unsafe_over_safe').length : 0;
  const take = Math.min(others.length, Math.round(own.length * mixOther));
  const pick = permutation(others.length, new Rng(hashSeed(seed, 0x6d6978)));
  const chosen = [...own, ...Array.from(pick.subarray(0, take), (i) => others[i]!)];
  return { pairs: chosen, thisKind: own.length, otherKind: take, leftOut };
}

/** Token rows of a pair's two dialogs (fitted to T tokens: the oldest turns go first). */
function pairTokens(tok: Tokenizer, p: PreferencePair, T: number): [number[], number[]] {
  const one = (answer: string): number[] => fitForScoring(tok, [...p.prompt, { role: 'assistant', content: answer }], T);
  return [one(p.chosen), one(p.rejected)];
}

export async function trainReward(o: RewardOptions): Promise<RewardResult> {
  const c = REWARD.check(o.config, 'reward config');
  if (c.init === null) throw new Llama2Error('reward: init is required (--init CKPT: the model the reward model starts from)');
  if (c.data.length === 0) throw new Llama2Error('reward: data is required (--data FILE[,FILE…]: preference JSONL)');
  const run = openRun({ outDir: c.out_dir, stage: 'reward', resume: o.resume, overwrite: o.overwrite, stopAfter: o.stopAfter, signal: o.signal, onEvent: o.onEvent });
  try {
    // ---- setup: model, tokenizer, pairs
    const init = loadModelFile(c.init, { tokenizer: c.tokenizer ?? undefined });
    if (!init.vocab) throw new Llama2Error(`reward: ${c.init} has no tokenizer next to it; pass --tokenizer FILE`);
    const vocab = init.vocab;
    const tok = new Tokenizer(vocab);
    const T = c.seq_len ?? Math.min(init.config.max_seq_len, 512);
    let badLines = 0;
    const all: PreferencePair[] = [];
    for (const f of c.data) for (const p of readPreferences(f, { skipBad: c.skip_bad, onBad: (m) => { badLines++; run.emit({ kind: 'notice', message: `skipped ${m}` }); } })) all.push(p);
    const isVal = (i: number) => c.val_fraction > 0 && hashSeed(c.seed, i, 0x76616c) / 0x100000000 < c.val_fraction;
    const mixed = mixPairs(all.filter((_, i) => !isVal(i)), c.kind, c.mix_other ?? (c.kind === 'safety' ? 1 / 9 : 0.5), c.seed);
    const valPairs = mixPairs(all.filter((_, i) => isVal(i)), c.kind, c.mix_other ?? (c.kind === 'safety' ? 1 / 9 : 0.5), c.seed).pairs;
    check(mixed.pairs.length > 0, `reward: no ${c.kind} pairs in ${c.data.join(', ')} (${all.length} read)`);
    const train = mixed.pairs.map((p) => pairTokens(tok, p, T));
    const val = valPairs.map((p) => pairTokens(tok, p, T));
    const table = c.margin === 'small' ? MARGIN_SMALL : c.margin === 'large' ? MARGIN_LARGE : null;
    const LEVEL_INDEX: Record<string, number> = { significantly_better: 0, better: 1, slightly_better: 2, negligibly_better: 3 };
    const marginOf = (p: PreferencePair): number => p.margin ?? (table && p.level ? marginsFor([LEVEL_INDEX[p.level]!], table)[0]! : 0);
    const auxWeight = c.aux_weight ?? (c.kind === 'safety' ? 1 : 0);
    const [B, A] = [c.batch_size, c.grad_accum];
    const perEpoch = Math.ceil(train.length / (B * A));
    const steps = c.steps ?? perEpoch * c.epochs;
    const warmup = c.warmup_steps > 0 ? c.warmup_steps : Math.min(steps, Math.max(5, Math.round(0.03 * steps)));
    checkOptim({ ...c, warmup_steps: warmup }, steps, 'reward config');

    const ck = resumePoint(run, REWARD, c, steps, { data_hash: `${mixed.pairs.length}:${train.reduce((s, [a, b]) => s + a.length + b.length, 0)}` });
    const weights: ModelWeights = ck ? ck.weights : cloneWeights(init.weights);
    if (!weights.heads?.['score.weight']) weights.heads = { ...weights.heads, 'score.weight': initScoreHead(init.config, c.seed) };
    const cfg: LlamaConfig = init.config;
    const score = paramFromTensor('score.weight', weights.heads!['score.weight']!);
    const t = setupTraining(run, {
      config: cfg, weights, ck, threads: c.threads, backend: o.backend, optim: c,
      // the trunk and the score head; the next-token head is not trained (nor decayed)
      params: (m) => [...m.params.filter((p) => p !== m.output || m.output === m.tok), score],
    });
    const { model, be, opt, tape, params, prior, startStep } = t;
    run.emit({ kind: 'notice', message: `reward (${c.kind}): ${mixed.thisKind} ${c.kind} pairs + ${mixed.otherKind} of the other kind${mixed.leftOut ? `, ${mixed.leftOut} "unsafe_over_safe" left out` : ''}; ${val.length} held out; margin ${c.margin}${auxWeight ? `, safety aux loss × ${auxWeight}` : ''}` });
    run.emit({ kind: 'start', stage: 'reward', step: startStep, steps, resumedFrom: run.latest?.dir ?? null, config: cfg, params, backend: be.name, threads: threadsOf(be), tokensPerStep: 0, about: `reward model (${c.kind}) from ${c.init}` });

    // ---- one micro-batch of pairs: chosen and rejected rows right-padded to the longest
    const rows = (seqs: number[][]): { ids: Int32Array; lengths: number[]; T: number } => {
      const L = Math.max(...seqs.map((s) => s.length));
      const ids = new Int32Array(seqs.length * L);
      seqs.forEach((s, b) => ids.set(s, b * L));
      return { ids, lengths: seqs.map((s) => s.length), T: L };
    };
    const order = (e: number) => permutation(train.length, new Rng(hashSeed(c.seed, e)));
    const orders = new Map<number, Uint32Array>();
    const pairAt = (g: number): number => {
      const e = Math.floor(g / train.length);
      if (!orders.has(e)) orders.set(e, order(e));
      return orders.get(e)![g % train.length]!;
    };
    const evaluate = (step: number): EvalRecord & { report: RewardEvalReport } | null => {
      if (val.length === 0) return null;
      const sc = scoreIds(new Model(cfg, weights, be), val.flatMap(([a, b]) => [a, b]));
      const report = rewardReport(valPairs, sc.filter((_, i) => i % 2 === 0), sc.filter((_, i) => i % 2 === 1));
      const rec = { type: 'eval' as const, step, val_loss: 1 - report.accuracy, val_bpc: null, val_ppl: 0, val_tokens: val.length, val_accuracy: report.accuracy, report };
      run.metrics.append({ type: 'eval', step, val_loss: rec.val_loss, val_bpc: null, val_ppl: 0, val_tokens: val.length, val_accuracy: report.accuracy } as EvalRecord);
      run.emit({ kind: 'notice', message: `eval @ step ${step}: validation accuracy ${(report.accuracy * 100).toFixed(1)}% on ${report.n} pairs` });
      return rec;
    };
    const plot = (): LossPlot => ({
      title: `reward model (${c.kind}) ranking loss`, yLabel: 'loss / 1 − validation accuracy',
      train: run.metrics.train().map((r) => ({ x: r.step, y: r.loss })), val: run.metrics.evals().map((r) => ({ x: r.step, y: r.val_loss })),
    });
    let lastLoss: number | null = prior?.last_loss ?? null;
    const latest: { val: (EvalRecord & { report: RewardEvalReport }) | null } = { val: null };
    let lr = prior?.lr ?? 0;
    let checkpoint: string | null = run.latest?.dir ?? null;
    let status: RunStatus = 'completed';
    let pairsDone = (prior?.data['pairs_done'] as number | undefined) ?? 0;
    const save = (step: number): void => {
      const state: TrainerState = {
        format: TRAINER_STATE_FORMAT, version: TRAINER_STATE_VERSION, stage: 'reward', step, tokens: run.clock.tokens, train_seconds: run.clock.trainSeconds,
        wall_seconds: run.clock.wall(), config: c, model_config: cfg, tied: weights.output === weights.tok_embeddings,
        data: { seed: c.seed, next_batch: step * A, batch_size: B, grad_accum: A, data_hash: `${mixed.pairs.length}:${train.reduce((s, [a, b]) => s + a.length + b.length, 0)}`, pairs_done: pairsDone },
        rng: { init_seed: c.seed, data_seed: c.seed, draws_after_init: 0 },
        lr, last_loss: lastLoss, last_val_loss: latest.val?.val_loss ?? prior?.last_val_loss ?? null, saved_at: new Date().toISOString(),
      };
      checkpoint = saveCheckpoint(run.out, { config: cfg, weights, vocab, optimizer: opt.optimizerState(), state, keep: c.keep_checkpoints });
      writeFileAtomic(join(run.out, 'loss.svg'), lossCurveSvg(plot()));
      run.emit({ kind: 'checkpoint', dir: checkpoint, step });
    };

    // ---- the loop
    const schedule = { peak: c.lr, warmup, total: steps, minRatio: c.min_lr_ratio };
    for (let s = startStep; s < steps; s++) {
      const ts = performance.now();
      zeroGrads(opt.params);
      let loss = 0;
      let tokens = 0;
      for (let a = 0; a < A; a++) {
        const idx = Array.from({ length: B }, (_, k) => pairAt((s * A + a) * B + k));
        const ch = rows(idx.map((i) => train[i]![0]));
        const rj = rows(idx.map((i) => train[i]![1]));
        tape.reset();
        const rc = rewardScores(tape, model, score, ch.ids, ch.lengths, ch.T);
        const rr = rewardScores(tape, model, score, rj.ids, rj.lengths, rj.T);
        const ps = idx.map((i) => mixed.pairs[i]!);
        const rank = rankingLoss(tape, rc, rr, ps.map(marginOf));
        const safe = (p: PreferencePair, which: 'c' | 'r'): boolean | null => {
          const b = p.meta.safety_bin;
          if (!b || !p.meta.is_safety_prompt) return null;
          return which === 'c' ? b === 'safe_over_unsafe' || b === 'both_safe' : b === 'unsafe_over_safe' || b === 'both_safe';
        };
        const total = auxWeight > 0 ? addLosses(tape, rank.loss, safetyAuxLoss(tape, rc, rr, ps.map((p) => safe(p, 'c')), ps.map((p) => safe(p, 'r'))).loss, auxWeight) : rank.loss;
        tape.backward(total, 1 / A);
        loss += total.data[0]! / A;
        tokens += ch.lengths.reduce((x, y) => x + y, 0) + rj.lengths.reduce((x, y) => x + y, 0);
      }
      tape.reset();
      if (!Number.isFinite(loss)) throw new Llama2Error(`reward training diverged at step ${s + 1}: loss is ${loss}; lower lr (now ${c.lr})`);
      const { norm, coef } = clipCoefficient(opt.params, c.grad_clip, be);
      lr = lrAt(s, schedule);
      opt.step(lr, coef);
      const dt = (performance.now() - ts) / 1000;
      run.clock.addStep(tokens, dt);
      pairsDone += B * A;
      lastLoss = loss;
      const rec: TrainRecord = { type: 'train', step: s + 1, loss, lr, grad_norm: norm, tokens, tokens_per_s: tokens / dt, elapsed_s: run.clock.wall() - run.clock.priorWall };
      const stop = await run.endStep(rec, { steps, startStep, evalEvery: c.eval_every, ckptEvery: c.ckpt_every, evaluate: (n) => (latest.val = evaluate(n) ?? latest.val), save });
      if (stop) {
        status = stop;
        break;
      }
    }

    // ---- the summary
    const summary = run.finish<RewardSummary>({
      ...baseSummary(run, { status, steps: opt.t, params, be, config: cfg, seqLen: T, lastLoss, lastVal: latest.val?.val_loss ?? null, checkpoint, accounting: c }),
      kind: c.kind, margin: c.margin,
      pairs: { train: train.length, val: val.length, this_kind: mixed.thisKind, other_kind: mixed.otherKind, left_out: mixed.leftOut, bad_lines: badLines },
      val: latest.val?.report ?? null,
      pairs_per_s: run.clock.trainSeconds > 0 ? pairsDone / run.clock.trainSeconds : 0,
    });
    const p = plot();
    writeFileAtomic(join(run.out, 'loss.svg'), lossCurveSvg(p));
    return { status, step: opt.t, checkpoint, summary, metrics: run.metrics, model, plot: p };
  } finally {
    run.release();
  }
}
