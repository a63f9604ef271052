/**
 * The common setup of a recipe's training loop, after it has chosen its weights: the trainable
 * model over them, the backend, AdamW (its moments restored when resuming), a recording tape for
 * the steps and a forward-only one for evaluation, and metrics.jsonl opened at the resumed step.
 *
 *   const t = setupTraining(run, { config: cfg, weights, ck, optim: c, threads: c.threads });
 *   for (…) { zeroGrads(t.model.params); … t.opt.step(lr, coef); }
 *
 * What it is not: a trainer class — the loop stays in each recipe (src/recipes/*.ts).
 */
import type { Backend } from '../backend/types.js';
import { selectBackend } from '../backend/select.js';
import { paramCount, type LlamaConfig } from '../model/config.js';
import type { ModelWeights } from '../model/weights.js';
import type { Checkpoint, TrainerState } from './checkpoint.js';
import { lmLoss, trainModel, type RowLayout, type TrainModel } from './model.js';
import { AdamW } from './optim.js';
import type { Run } from './run.js';
import { Tape } from './tape.js';
import type { Param } from './params.js';

export interface TrainingSetup {
  model: TrainModel;
  be: Backend;
  opt: AdamW;
  /** records the steps' ops for backward */
  tape: Tape;
  /** forward only (evaluation) */
  evalTape: Tape;
  /** parameters of the language model (a tied output counted once) */
  params: number;
  /** the checkpoint's trainer state, or null for a fresh start */
  prior: TrainerState | null;
  /** steps already done */
  startStep: number;
}

export function setupTraining(
  run: Run, o: {
    config: LlamaConfig; weights: ModelWeights; ck: Checkpoint | null; threads: number | null; backend?: Backend;
    optim: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number };
    /** the parameters AdamW updates (default: every parameter of the model) — e.g. the trunk plus a reward head */
    params?: (m: TrainModel) => Param[];
  },
): TrainingSetup {
  const model = trainModel(o.config, o.weights);
  const be = o.backend ?? selectBackend({ threads: o.threads ?? undefined });
  const c = o.optim;
  const opt = new AdamW(o.params ? o.params(model) : model.params, { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weight_decay }, be);
  if (o.ck) opt.loadOptimizerState(o.ck.optimizer);
  const prior = o.ck?.state ?? null;
  run.startMetrics(prior ? prior.step : null, prior ?? undefined);
  return {
    model, be, opt, tape: new Tape(be), evalTape: new Tape(be, false), prior, startStep: prior?.step ?? 0,
    params: paramCount(o.config, o.weights.output === o.weights.tok_embeddings),
  };
}

/**
 * The weighted mean loss over n evaluation rows in batches of B (forward only): fill(r0, nb) writes
 * rows [r0, r0 + nb) into x, y (nb·T each) and returns their loss mask, layout and weight (the
 * positions or answer tokens the rows' mean loss stands for).
 */
export function meanLoss(
  t: Pick<TrainingSetup, 'model' | 'evalTape'>, n: number, B: number, T: number, x: Int32Array, y: Int32Array,
  fill: (r0: number, nb: number) => { mask?: Float32Array; layout?: RowLayout; weight: number },
): { loss: number; weight: number } {
  let sum = 0;
  let weight = 0;
  for (let r0 = 0; r0 < n; r0 += B) {
    const nb = Math.min(B, n - r0);
    const f = fill(r0, nb);
    if (f.weight === 0) continue;
    t.evalTape.reset();
    sum += lmLoss(t.evalTape, t.model, x.subarray(0, nb * T), y.subarray(0, nb * T), nb, T, f.mask, f.layout).value * f.weight;
    weight += f.weight;
  }
  t.evalTape.reset();
  return { loss: sum / weight, weight };
}
