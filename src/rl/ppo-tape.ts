/**
 * The differentiable side of PPO on the training tape (src/train/tape.ts): a scalar value head on
 * the policy's own trunk (TRL's AutoModelForCausalLMWithValueHead), one forward that gives the
 * log-probs of the next tokens and the values at the same (predicting) positions, the PPO
 * minibatch loss policy_loss + c_v·value_loss with gradients for every policy parameter and the
 * value head, and one optimizer step per minibatch (clip to a global norm, AdamW).
 *
 *   const head = ensureValueHead(policyWeights, config, seed);           // weights.heads['v_head.summary.weight']
 *   const m = trainModel(config, policyWeights);
 *   const opt = new AdamW(ppoParams(m, head), { lr: 1e-6 }, backend);
 *   const stats = ppoMinibatchStep(new Tape(backend), m, head, opt, rollout, [0, 1, 2, 3], PPO_LOSS_DEFAULTS);
 *
 * Alignment. hidden = the final-RMSNorm'ed hidden state (what the LM head reads). For token t+1 of
 * a row, logp[t] = log_softmax(output·hidden[t])[token t+1] and values[t] = w·hidden[t] (+ b): the
 * value of the state that emits the token, read at the position that predicts it. The value loss
 * also trains the trunk.
 *
 * Not here: the loss arithmetic (ppo-loss.ts), rewards / GAE (ppo-math.ts), generating and padding
 * the rollout (rollout.ts), the PPO recipe and its loop.
 *
 * Legend: B = rows, T = padded length, W = T − 1, N = B·T positions, C = dim, V = vocab.
 */
import type { LlamaConfig } from '../model/config.js';
import type { ModelWeights } from '../model/weights.js';
import { Llama2Error } from '../util/errors.js';
import type { Tape, Var } from '../train/tape.js';
import { forwardHidden, type TrainModel } from '../train/model.js';
import { linear } from '../train/ops.js';
import { tokenLogprobs } from '../train/loss.js';
import { initScoreHead, paramFromTensor, zeroGrads, type Param } from '../train/params.js';
import { clipCoefficient, type AdamW } from '../train/optim.js';
import { entropyRows, policyLoss, valueLoss } from './ppo-loss.js';

/** The value head's names in ModelWeights.heads (model/weights.ts HEADS, TRL's names). */
export const VALUE_HEAD_WEIGHT = 'v_head.summary.weight';
export const VALUE_HEAD_BIAS = 'v_head.summary.bias';

export interface ValueHead {
  /** (1, C) */
  weight: Param;
  /** (1), or null: a head without bias (the oracle's, and ensureValueHead's) */
  bias: Param | null;
}

/** The value head stored in weights.heads, as trainable Params over the same memory. */
export function valueHeadOf(weights: ModelWeights, config: LlamaConfig, where = 'PPO policy'): ValueHead {
  const w = weights.heads?.[VALUE_HEAD_WEIGHT];
  if (!w) throw new Llama2Error(`${where}: the model has no "${VALUE_HEAD_WEIGHT}" head (add one with ensureValueHead)`);
  if (w.shape.length !== 2 || w.shape[0] !== 1 || w.shape[1] !== config.dim) {
    throw new Llama2Error(`${where}: "${VALUE_HEAD_WEIGHT}" has shape [${w.shape.join(', ')}]; a value head is [1, ${config.dim}]`);
  }
  const b = weights.heads?.[VALUE_HEAD_BIAS];
  if (b && !(b.shape.length === 1 && b.shape[0] === 1)) {
    throw new Llama2Error(`${where}: "${VALUE_HEAD_BIAS}" has shape [${b.shape.join(', ')}]; a value head's bias is [1]`);
  }
  return { weight: paramFromTensor(VALUE_HEAD_WEIGHT, w), bias: b ? paramFromTensor(VALUE_HEAD_BIAS, b) : null };
}

/** valueHeadOf, after adding a fresh head (N(0, std²), no bias) to weights that have none. */
export function ensureValueHead(weights: ModelWeights, config: LlamaConfig, seed: number, std = 0.02): ValueHead {
  if (!weights.heads?.[VALUE_HEAD_WEIGHT]) {
    weights.heads ??= {};
    weights.heads[VALUE_HEAD_WEIGHT] = initScoreHead(config, seed, std);
  }
  return valueHeadOf(weights, config);
}

/** Everything PPO trains: the policy's parameters, then the value head (what AdamW and clipping get). */
export function ppoParams(m: TrainModel, head: ValueHead): Param[] {
  return [...m.params, head.weight, ...(head.bias ? [head.bias] : [])];
}

/** values (N) = hidden (N, C) · wᵀ (+ b), float64 sums. */
export function valueHeadForward(tape: Tape, hidden: Var, head: ValueHead): Var {
  const w = head.weight;
  const C = w.data.length;
  const N = hidden.data.length / C;
  if (!Number.isInteger(N)) throw new Llama2Error(`value head: hidden has ${hidden.data.length} values, not rows of dim ${C}`);
  const bias = head.bias;
  const out = tape.output([N], hidden, w, ...(bias ? [bias] : []));
  for (let n = 0; n < N; n++) {
    let s = bias ? bias.data[0]! : 0;
    for (let c = 0; c < C; c++) s += w.data[c]! * hidden.data[n * C + c]!;
    out.data[n] = s;
  }
  tape.record(out, (dv) => {
    const dh = hidden.requiresGrad ? tape.grad(hidden) : null;
    const dw = w.requiresGrad ? tape.grad(w) : null;
    let db = 0;
    for (let n = 0; n < N; n++) {
      const g = dv[n]!;
      if (g === 0) continue;
      db += g;
      const o = n * C;
      for (let c = 0; c < C; c++) {
        if (dh) dh[o + c] = dh[o + c]! + g * w.data[c]!;
        if (dw) dw[c] = dw[c]! + g * hidden.data[o + c]!;
      }
    }
    if (bias?.requiresGrad) tape.grad(bias)[0] = tape.grad(bias)[0]! + db;
  });
  return out;
}

export interface PolicyValueOutputs {
  /** (N) log p(tokens[b, t+1] | tokens[b, ..t]) at n = b·T + t; the last position of each row has target 0 (ignore it) */
  logp: Var;
  /** (N) the value at each position */
  values: Var;
  /** (N, V) */
  logits: Var;
}

/** (N) the token after each position of tokens (B, T); 0 at each row's last position. */
export function nextTokenTargets(tokens: Int32Array, B: number, T: number): Int32Array {
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) targets.set(tokens.subarray(b * T + 1, b * T + T), b * T);
  return targets;
}

/** One forward of the trunk of tokens (B, T) for the next-token log-probs and the values, aligned. */
export function policyValueForward(tape: Tape, m: TrainModel, head: ValueHead, tokens: Int32Array, B: number, T: number): PolicyValueOutputs {
  const targets = nextTokenTargets(tokens, B, T); // (N)
  const hidden = forwardHidden(tape, m, tokens, B, T); // (N, C)
  const logits = linear(tape, hidden, m.output); // (N, V)
  return { logp: tokenLogprobs(tape, logits, targets), values: valueHeadForward(tape, hidden, head), logits };
}

// ---------------------------------------------------------------------------------------------
// the minibatch loss

/** What the minibatch loss reads from a rollout batch (rollout.ts RolloutBatch has all of it). */
export interface PpoTargets {
  /** padded length; per-token arrays have W = T − 1 entries per row */
  readonly T: number;
  /** (B, T) prompt + response, right-padded with 0 */
  readonly tokens: Int32Array;
  /** (B) prompt + response length */
  readonly attnLen: Int32Array;
  /** (B, W) 1 where token t+1 is a response token */
  readonly mask: Float64Array;
  /** (B, W) log-probs of the policy that sampled (θ_old) */
  readonly logpOld: Float64Array;
  /** (B, W) values of the rollout */
  readonly valuesOld: Float64Array;
  /** (B, W) whitened advantages */
  readonly advantages: Float64Array;
  /** (B, W) GAE returns */
  readonly returns: Float64Array;
}

export interface PpoLossOptions {
  /** ε of the clipped surrogate */
  clipEps: number;
  /** ε_v of the clipped value loss */
  clipEpsV: number;
  /** c_v: total = policy loss + c_v · value loss */
  vfCoef: number;
}

/** TRL's defaults, and the oracle's. */
export const PPO_LOSS_DEFAULTS: Readonly<PpoLossOptions> = { clipEps: 0.2, clipEpsV: 0.2, vfCoef: 0.1 };

export interface PpoLossStats {
  totalLoss: number;
  policyLoss: number;
  valueLoss: number;
  clipfrac: number;
  vfClipfrac: number;
  /** token-weighted mean entropy of the policy (logged, not in the loss) */
  entropy: number;
  approxKl: number;
  /** response tokens of these rows */
  tokens: number;
}

export interface PpoMinibatchLoss extends PpoLossStats {
  /** the total loss as a 1-element Var (call tape.backward(loss)) */
  loss: Var;
}

/**
 * The PPO loss of rollout rows `rows` at the model's current parameters: one forward over those
 * rows (cut to their longest prompt + response), then policy_loss + c_v·value_loss over their
 * response tokens. Every mean (losses, clip fractions, entropy) divides by `denom`, by default
 * these rows' token count; pass a whole minibatch's token count to compute one micro-batch's
 * share of it.
 */
export function ppoMinibatchLoss(
  tape: Tape, m: TrainModel, head: ValueHead, batch: PpoTargets, rows: readonly number[], o: PpoLossOptions & { denom?: number } = PPO_LOSS_DEFAULTS,
): PpoMinibatchLoss {
  const W = batch.T - 1;
  const B = batch.attnLen.length;
  if (rows.length === 0) throw new Llama2Error('PPO minibatch: no rows');
  let Tm = 2;
  for (const r of rows) {
    if (!(Number.isInteger(r) && r >= 0 && r < B)) throw new Llama2Error(`PPO minibatch: row ${r} is not in the rollout batch of ${B} rows`);
    Tm = Math.max(Tm, batch.attnLen[r]!);
  }
  const Bm = rows.length;
  const tokens = new Int32Array(Bm * Tm); // (Bm, Tm)
  rows.forEach((r, j) => tokens.set(batch.tokens.subarray(r * batch.T, r * batch.T + Tm), j * Tm));
  // the response tokens: their position in this forward and their entry in the rollout's arrays
  const pos: number[] = [];
  const at: number[] = [];
  rows.forEach((r, j) => {
    for (let t = 0; t < Tm - 1; t++) {
      if (batch.mask[r * W + t]! > 0) {
        pos.push(j * Tm + t);
        at.push(r * W + t);
      }
    }
  });
  const K = pos.length;
  const denom = o.denom ?? K;
  const fwd = policyValueForward(tape, m, head, tokens, Bm, Tm);
  const pick = (src: ArrayLike<number>, idx: number[]) => Float64Array.from(idx, (i) => src[i]!); // (K)
  const ones = new Float64Array(K).fill(1);
  const pl = policyLoss(pick(fwd.logp.data, pos), pick(batch.logpOld, at), pick(batch.advantages, at), ones, o.clipEps, denom);
  const vl = valueLoss(pick(fwd.values.data, pos), pick(batch.valuesOld, at), pick(batch.returns, at), ones, o.clipEpsV, denom);
  let ent = 0;
  for (const h of entropyRows(fwd.logits.data, m.config.vocab_size, pos)) ent += h;
  const total = pl.loss + o.vfCoef * vl.loss;
  const loss = tape.output([1], fwd.logp, fwd.values);
  loss.data[0] = total;
  tape.record(loss, (dl) => {
    const g = dl[0]!;
    if (fwd.logp.requiresGrad) {
      const dlogp = tape.grad(fwd.logp);
      for (let k = 0; k < K; k++) dlogp[pos[k]!] = dlogp[pos[k]!]! + g * pl.dlogp[k]!;
    }
    if (fwd.values.requiresGrad) {
      const dv = tape.grad(fwd.values);
      for (let k = 0; k < K; k++) dv[pos[k]!] = dv[pos[k]!]! + g * o.vfCoef * vl.dvalues[k]!;
    }
  });
  return {
    loss, totalLoss: total, policyLoss: pl.loss, valueLoss: vl.loss, clipfrac: pl.clipfrac, vfClipfrac: vl.clipfrac,
    entropy: ent / denom, approxKl: pl.approxKl, tokens: K,
  };
}

export interface PpoStepOptions extends PpoLossOptions {
  /** global gradient-norm clip over every trained parameter (paper: 1.0) */
  maxGradNorm: number;
  /** learning rate of this step (default: the optimizer's) */
  lr?: number;
  /** most rows per forward (gradient accumulation inside the minibatch; the result is the same); default all */
  microRows?: number;
  /**
   * critic warm-up: update only the value head (its gradient norm clipped alone); the policy's
   * weights, moments and weight decay are untouched, so the policy that samples stays π_0 while
   * the value head learns a per-prompt baseline
   */
  criticOnly?: boolean;
}

export interface PpoStepStats extends PpoLossStats {
  /** global norm of the gradients before clipping, and the clip coefficient applied */
  gradNorm: number;
  clipCoef: number;
}

/**
 * One PPO optimizer step on a minibatch (`rows` of the rollout batch): zero the gradients of
 * opt.params (ppoParams), the loss and its backward (in micro-batches of microRows rows, each
 * weighted by the whole minibatch's token count), the global norm clipped to maxGradNorm, one
 * AdamW step. Afterwards each Param's `grad` holds the unclipped gradient of the minibatch loss.
 */
export function ppoMinibatchStep(
  tape: Tape, m: TrainModel, head: ValueHead, opt: AdamW, batch: PpoTargets, rows: readonly number[], o: PpoStepOptions,
): PpoStepStats {
  const W = batch.T - 1;
  let denom = 0;
  for (const r of rows) for (let t = 0; t < W; t++) denom += batch.mask[r * W + t] ?? 0;
  const micro = o.microRows ?? rows.length;
  if (!(Number.isInteger(micro) && micro >= 1)) throw new Llama2Error(`PPO step: microRows must be an integer ≥ 1, found ${micro}`);
  zeroGrads(opt.params);
  const s: PpoLossStats = { totalLoss: 0, policyLoss: 0, valueLoss: 0, clipfrac: 0, vfClipfrac: 0, entropy: 0, approxKl: 0, tokens: 0 };
  for (let i = 0; i < rows.length; i += micro) {
    tape.reset();
    const r = ppoMinibatchLoss(tape, m, head, batch, rows.slice(i, i + micro), { ...o, denom });
    tape.backward(r.loss);
    for (const k of Object.keys(s) as (keyof PpoLossStats)[]) s[k] += r[k];
  }
  tape.reset();
  const only = o.criticOnly ? new Set([head.weight, ...(head.bias ? [head.bias] : [])]) : undefined;
  const clip = clipCoefficient(only ? [...only] : opt.params, o.maxGradNorm, tape.backend);
  opt.step(o.lr ?? opt.opts.lr, clip.coef, only);
  return { ...s, gradNorm: clip.norm, clipCoef: clip.coef };
}
