/**
 * The PPO rollout batch: generated samples (prompt ids, response ids, their log-probs under the
 * policy and the reference, as generateBatch in src/generate/batch.ts returns them) and the
 * reward models' probabilities → the padded (B, T − 1) arrays the minibatch loss (ppo-tape.ts)
 * consumes: tokens, response mask, logp_old, logp_ref, values (a forward of the policy with its
 * value head), KL, rewards, GAE advantages (whitened once over the whole batch) and returns.
 *
 *   const samples = out.flatMap((req, i) => req.map((s) => ({
 *     prompt: prompts[i], response: s.ids, logprobs: s.logprobs, refLogprobs: s.refLogprobs,
 *     rSafety: toUnit(safetyScore), rHelpful: toUnit(helpfulScore), safetyPrompt: isSafety[i] })));
 *   const batch = buildRollout(policy, head, samples, { beta: 0.01, backend });
 *   ppoMinibatchStep(tape, policy, head, opt, batch, [0, 1, 2, 3], { ...PPO_LOSS_DEFAULTS, maxGradNorm: 1 });
 *
 * Three steps, each usable alone: padRollout (layout and mask), rolloutForward (one forward of the
 * policy, and of a reference model if given, in chunks of rows, no gradients), finishRollout
 * (the arithmetic of ppo-math.ts for one β; call it again for another β on the same forward).
 *
 * logp_old is by default the log-probs of the rollout's own forward (the computation the loss
 * repeats, so the first minibatch has ratio 1 exactly, as TRL recomputes them); logpOld:
 * 'samples' uses the samples' `logprobs` instead. stats.maxLogpDrift is the largest difference
 * between the two where samples carry log-probs: the engine and the training forward should agree.
 * A response must have at least one token. generateBatch leaves a stop id (EOS) out of `ids`;
 * append it to `response` when the policy should learn where to stop (its log-probs are then
 * those of the forward, and logp_ref needs `reference`).
 *
 * Not here: sampling, reward-model scoring (src/chat/reward-score.ts), the PPO loop.
 *
 * Legend: B = samples (rows), T = longest prompt + response, W = T − 1.
 */
import type { Backend } from '../backend/types.js';
import { refBackend } from '../backend/ref.js';
import { Llama2Error } from '../util/errors.js';
import { Tape } from '../train/tape.js';
import { sequenceLogprobs, type TrainModel } from '../train/model.js';
import { gae, klRewards, maskedMean, responseMask, sequenceScores, whiten } from './ppo-math.js';
import { entropyRows } from './ppo-loss.js';
import { nextTokenTargets, policyValueForward, type PpoTargets, type ValueHead } from './ppo-tape.js';

export interface RolloutSample {
  /** token ids, BOS included */
  prompt: readonly number[];
  /** the generated ids (at least one) */
  response: readonly number[];
  /** ln p of each response token under the policy that sampled (generateBatch's logprobs) */
  logprobs?: ArrayLike<number>;
  /** ln p of each response token under the reference (generateBatch's refLogprobs); needed without `reference` */
  refLogprobs?: ArrayLike<number>;
  /** the safety and helpfulness reward models' probabilities in [0, 1] (toUnit of the raw scores) */
  rSafety: number;
  rHelpful: number;
  /** the prompt is a safety prompt: R_c is always the safety reward */
  safetyPrompt: boolean;
}

export interface RolloutLayout {
  readonly B: number;
  readonly T: number;
  /** (B, T) prompt + response, right-padded with 0 */
  readonly tokens: Int32Array;
  /** (B) each */
  readonly promptLens: Int32Array;
  readonly respLens: Int32Array;
  readonly attnLen: Int32Array;
  /** (B, W) */
  readonly mask: Float64Array;
}

/** Pads samples into rows of T = the longest prompt + response (or the given T). */
export function padRollout(samples: readonly RolloutSample[], T?: number): RolloutLayout {
  const B = samples.length;
  if (B === 0) throw new Llama2Error('rollout: no samples');
  const promptLens = Int32Array.from(samples, (s) => s.prompt.length);
  const respLens = Int32Array.from(samples, (s) => s.response.length);
  samples.forEach((s, i) => {
    if (s.prompt.length === 0) throw new Llama2Error(`rollout sample ${i}: the prompt is empty (expected at least BOS)`);
    if (s.response.length === 0) {
      throw new Llama2Error(`rollout sample ${i}: the response is empty (PPO needs at least one response token; append the EOS a sample stopped at, or leave the sample out)`);
    }
  });
  const attnLen = Int32Array.from(samples, (s) => s.prompt.length + s.response.length);
  const longest = attnLen.reduce((a, b) => Math.max(a, b), 0);
  const Tp = T ?? longest;
  if (Tp < longest) throw new Llama2Error(`rollout: T = ${Tp} is shorter than the longest sample (${longest} tokens)`);
  const tokens = new Int32Array(B * Tp); // (B, T)
  samples.forEach((s, b) => {
    tokens.set(s.prompt, b * Tp);
    tokens.set(s.response, b * Tp + s.prompt.length);
  });
  return { B, T: Tp, tokens, promptLens, respLens, attnLen, mask: responseMask(promptLens, respLens, Tp) };
}

export interface RolloutForward {
  /** (B, W) each, 0 off the response mask */
  logp: Float64Array;
  values: Float64Array;
  entropy: Float64Array;
  /** (B, W) under `reference`, or null when none was given */
  logpRef: Float64Array | null;
}

export interface RolloutForwardOptions {
  /** the backend of the forward (default the reference backend) */
  backend?: Backend;
  /** a frozen reference policy: logp_ref computed here rather than taken from the samples */
  reference?: TrainModel;
  /** most rows per forward (default 8) */
  rowsPerForward?: number;
}

/** Log-probs, values and entropies of the response tokens under the policy (and logp_ref under a reference). */
export function rolloutForward(m: TrainModel, head: ValueHead, layout: RolloutLayout, o: RolloutForwardOptions = {}): RolloutForward {
  const { B, T, mask } = layout;
  const W = T - 1;
  const V = m.config.vocab_size;
  layout.tokens.forEach((id, n) => {
    if (!(id >= 0 && id < V)) throw new Llama2Error(`rollout row ${Math.floor(n / T)}: token ${id} at position ${n % T} is outside the vocabulary (0..${V - 1})`);
  });
  if (o.reference && o.reference.config.vocab_size !== V) {
    throw new Llama2Error(`rollout: the reference has a vocabulary of ${o.reference.config.vocab_size} tokens, the policy ${V}`);
  }
  const step = o.rowsPerForward ?? 8;
  if (!(Number.isInteger(step) && step >= 1)) throw new Llama2Error(`rollout: rowsPerForward must be an integer ≥ 1, found ${step}`);
  const out: RolloutForward = {
    logp: new Float64Array(B * W), values: new Float64Array(B * W), entropy: new Float64Array(B * W),
    logpRef: o.reference ? new Float64Array(B * W) : null,
  };
  const tape = new Tape(o.backend ?? refBackend, false);
  for (let b0 = 0; b0 < B; b0 += step) {
    const rows = Math.min(step, B - b0);
    let Tm = 2;
    for (let j = 0; j < rows; j++) Tm = Math.max(Tm, layout.attnLen[b0 + j]!);
    const tokens = new Int32Array(rows * Tm); // (rows, Tm)
    for (let j = 0; j < rows; j++) tokens.set(layout.tokens.subarray((b0 + j) * T, (b0 + j) * T + Tm), j * Tm);
    const pos: number[] = []; // response positions in this forward
    const at: number[] = []; // and their entries in the (B, W) arrays
    for (let j = 0; j < rows; j++) {
      for (let t = 0; t < Tm - 1; t++) if (mask[(b0 + j) * W + t]! > 0) { pos.push(j * Tm + t); at.push((b0 + j) * W + t); }
    }
    tape.reset();
    const fwd = policyValueForward(tape, m, head, tokens, rows, Tm);
    const ent = entropyRows(fwd.logits.data, V, pos);
    pos.forEach((p, k) => {
      out.logp[at[k]!] = fwd.logp.data[p]!;
      out.values[at[k]!] = fwd.values.data[p]!;
      out.entropy[at[k]!] = ent[k]!;
    });
    if (o.reference && out.logpRef) {
      tape.reset();
      const lr = sequenceLogprobs(tape, o.reference, tokens, nextTokenTargets(tokens, rows, Tm), rows, Tm);
      pos.forEach((p, k) => { out.logpRef![at[k]!] = lr.data[p]!; });
    }
  }
  tape.reset();
  return out;
}

export interface RolloutOptions {
  /** the KL penalty β (paper: 0.01) */
  beta: number;
  /** GAE discount γ and λ (defaults 1, 0.95) */
  gamma?: number;
  lam?: number;
  /** the safety gate's threshold on r_safety (default 0.15) */
  threshold?: number;
  logitEps?: number;
  whitenEps?: number;
  /** where logp_old comes from (see the file header); default 'forward' */
  logpOld?: 'forward' | 'samples';
}

export interface RolloutStats {
  /** mean R_c over the rows */
  meanRc: number;
  /** mean over rows of Σ_t k1 (the sequence KL estimate to the reference) */
  meanKl: number;
  /** mean over rows of Σ_t −β·k1 */
  meanNonScoreReward: number;
  meanResponseLength: number;
  /** token-weighted mean entropy of the policy over the response tokens */
  meanEntropy: number;
  /** max |forward logp − sample logprobs| over the samples that carry log-probs (null when none do) */
  maxLogpDrift: number | null;
}

export interface RolloutBatch extends RolloutLayout, PpoTargets {
  W: number;
  /** (B, W) each, 0 off the mask */
  logpRef: Float64Array;
  entropy: Float64Array;
  k1: Float64Array;
  rewards: Float64Array;
  /** GAE advantages before whitening */
  advantagesRaw: Float64Array;
  /** (B) R_c, logit(R_c), whiten(logit(R_c)) */
  rc: Float64Array;
  logitRc: Float64Array;
  score: Float64Array;
  stats: RolloutStats;
}

/** Copies per-response-token values of each sample into a (B, W) array at the mask's entries. */
function scatterPerToken(layout: RolloutLayout, samples: readonly RolloutSample[], pick: (s: RolloutSample) => ArrayLike<number> | undefined, what: string): Float64Array {
  const W = layout.T - 1;
  const out = new Float64Array(layout.B * W);
  samples.forEach((s, b) => {
    const v = pick(s);
    const R = s.response.length;
    if (!v) throw new Llama2Error(`rollout sample ${b}: no ${what} (one per response token)`);
    if (v.length !== R) throw new Llama2Error(`rollout sample ${b}: ${what} has ${v.length} entries, expected one per response token (${R})`);
    const o = b * W + s.prompt.length - 1;
    for (let r = 0; r < R; r++) out[o + r] = v[r]!;
  });
  return out;
}

/** The rewards, advantages and returns of one β from a layout and its forward (see the file header). */
export function finishRollout(layout: RolloutLayout, fwd: RolloutForward, samples: readonly RolloutSample[], o: RolloutOptions): RolloutBatch {
  const { B, T, mask } = layout;
  const W = T - 1;
  if (samples.length !== B) throw new Llama2Error(`rollout: ${samples.length} samples for a layout of ${B} rows`);
  if (!(Number.isFinite(o.beta) && o.beta >= 0)) throw new Llama2Error(`rollout: beta (the KL penalty) must be ≥ 0, found ${o.beta}`);
  samples.forEach((s, i) => {
    for (const [k, v] of [['rSafety', s.rSafety], ['rHelpful', s.rHelpful]] as const) {
      if (!(v >= 0 && v <= 1)) throw new Llama2Error(`rollout sample ${i}: ${k} must be a probability in [0, 1] (toUnit of the raw reward-model score), found ${v}`);
    }
  });
  const logpRef = fwd.logpRef ?? scatterPerToken(layout, samples, (s) => s.refLogprobs, 'refLogprobs (or pass a reference model)');
  const withLp = samples.map((s, b) => (s.logprobs ? b : -1)).filter((b) => b >= 0);
  let drift: number | null = null;
  if (withLp.length > 0) {
    const sampled = scatterPerToken(layout, samples, (s) => s.logprobs ?? new Float64Array(s.response.length), 'logprobs');
    drift = 0;
    for (const b of withLp) for (let t = 0; t < W; t++) drift = Math.max(drift, Math.abs(sampled[b * W + t]! - fwd.logp[b * W + t]!));
    if (o.logpOld === 'samples' && withLp.length < B) {
      throw new Llama2Error(`rollout: logpOld 'samples' needs logprobs on every sample; sample ${samples.findIndex((s) => !s.logprobs)} has none`);
    }
  } else if (o.logpOld === 'samples') {
    throw new Llama2Error("rollout: logpOld 'samples' needs logprobs on every sample; none has them");
  }
  const logpOld = o.logpOld === 'samples' ? scatterPerToken(layout, samples, (s) => s.logprobs, 'logprobs') : fwd.logp;
  const seq = sequenceScores(samples.map((s) => s.rSafety), samples.map((s) => s.rHelpful), samples.map((s) => s.safetyPrompt),
    { threshold: o.threshold, logitEps: o.logitEps, whitenEps: o.whitenEps });
  const { k1, rewards } = klRewards(logpOld, logpRef, mask, seq.score, o.beta, W);
  const { advantages: advantagesRaw, returns } = gae(rewards, fwd.values, mask, W, o.gamma ?? 1, o.lam ?? 0.95);
  const advantages = whiten(advantagesRaw, mask, true, o.whitenEps);
  const perRow = (x: Float64Array) => { let s = 0; for (const v of x) s += v; return s / B; }; // Σ over the batch / B
  return {
    ...layout, W, logpOld, logpRef, valuesOld: fwd.values, entropy: fwd.entropy, k1, rewards, advantagesRaw, advantages, returns,
    rc: seq.rc, logitRc: seq.logit, score: seq.score,
    stats: {
      meanRc: perRow(seq.rc), meanKl: perRow(k1), meanNonScoreReward: -o.beta * perRow(k1),
      meanResponseLength: perRow(Float64Array.from(layout.respLens)), meanEntropy: maskedMean(fwd.entropy, mask), maxLogpDrift: drift,
    },
  };
}

/** padRollout → rolloutForward → finishRollout in one call. */
export function buildRollout(
  m: TrainModel, head: ValueHead, samples: readonly RolloutSample[], o: RolloutOptions & RolloutForwardOptions & { T?: number },
): RolloutBatch {
  const layout = padRollout(samples, o.T);
  return finishRollout(layout, rolloutForward(m, head, layout, o), samples, o);
}
