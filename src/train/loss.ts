/**
 * Language-model losses on the tape: next-token cross-entropy (optionally masked, for SFT) and
 * per-token log-probabilities of given tokens (for RLHF: PPO ratios and the KL to a reference).
 *
 * Cross-entropy follows check_candidate.md: nll[n] = logsumexp(logits[n]) − logits[n, target[n]];
 * without a mask the loss is the mean over all N positions; with one it is
 * sum(mask·nll) / sum(mask) over the whole batch (token-weighted, not a mean of row means), and
 * mask[n] belongs to target position n.
 *
 * Not here: the model (model.ts), the reward ranking loss (reward.ts).
 *
 * Legend: N = positions (B*T), V = vocab.
 */
import { Llama2Error } from '../util/errors.js';
import type { Tape, Var } from './tape.js';
import { logprobRowsBackward, rowLogSumExp } from './kernels.js';

export interface LossResult {
  /** the loss as a 1-element Var (call tape.backward(loss)) */
  loss: Var;
  /** the loss in float64 */
  value: number;
}

export interface CrossEntropyResult extends LossResult {
  /** per-position negative log-likelihood (N), in the tape's arena */
  nll: Float32Array;
  /** sum of the weights (N without a mask, sum(mask) with one) */
  count: number;
}

/**
 * Mean next-token cross-entropy of logits (N, V) against targets (N), optionally weighted by
 * mask (N, 0/1 or any non-negative weights). The logits' gradient (N·V, often the largest buffer
 * of a step) is written over the logits themselves when nothing else reads them:
 *  - consumeLogits: the caller promises no one else reads the logits, ever (lmLoss does): the
 *    forward already replaces them with exps and the backward needs no second exp pass (both are
 *    the backend's fused xentForward / xentBackward);
 *  - otherwise the backward overwrites them only if this loss is their only reader so far.
 */
export function crossEntropy(
  tape: Tape, logits: Var, targets: Int32Array, mask?: ArrayLike<number>, opts: { consumeLogits?: boolean } = {},
): CrossEntropyResult {
  const V = logits.shape[logits.shape.length - 1]!;
  const N = logits.data.length / V;
  if (targets.length !== N) throw new Llama2Error(`cross-entropy: ${targets.length} targets for ${N} positions of logits`);
  if (mask && mask.length !== N) throw new Llama2Error(`cross-entropy: loss mask has ${mask.length} entries, expected ${N}`);
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (!(t >= 0 && t < V)) throw new Llama2Error(`cross-entropy: target ${t} at position ${n} is outside the vocabulary (0..${V - 1})`);
  }
  let count = 0;
  for (let n = 0; n < N; n++) count += mask ? mask[n]! : 1;
  if (!(count > 0)) throw new Llama2Error('cross-entropy: the loss mask selects no positions (sum(mask) = 0)');
  const weights = new Float64Array(N); // d(loss)/d(nll[n])
  for (let n = 0; n < N; n++) weights[n] = (mask ? mask[n]! : 1) / count;
  const nll = tape.scratch(N);
  const stat = new Float64Array(N); // 1/Σexp per row (consume) or logsumexp per row
  const consume = opts.consumeLogits === true;
  if (consume) {
    tape.backend.xentForward(logits.data, targets, nll, stat, V);
  } else {
    for (let n = 0; n < N; n++) {
      stat[n] = rowLogSumExp(logits.data, n, V);
      nll[n] = stat[n]! - logits.data[n * V + targets[n]!]!;
    }
  }
  let value = 0;
  for (let n = 0; n < N; n++) value += weights[n]! * nll[n]!;
  const loss = tape.output([1], logits);
  loss.data[0] = value;
  tape.record(loss, (dl) => {
    if (!logits.requiresGrad) return;
    const c = new Float64Array(N);
    for (let n = 0; n < N; n++) c[n] = dl[0]! * weights[n]!;
    if (consume) {
      if (logits.grad) throw new Error('cross-entropy: consumed logits received another gradient');
      tape.backend.xentBackward(logits.data, stat, targets, c, V);
      logits.grad = logits.data;
      return;
    }
    for (let n = 0; n < N; n++) c[n] = -c[n]!; // d(loss)/d(logp[n])
    if (!logits.grad && logits.uses === 1) {
      // this loss is the only reader of the logits: overwrite them with their gradient
      logprobRowsBackward(logits.data, logits.data, stat, targets, c, V, false);
      logits.grad = logits.data;
    } else {
      logprobRowsBackward(tape.grad(logits), logits.data, stat, targets, c, V, true);
    }
  });
  return { loss, value, nll, count };
}

/**
 * Per-position log-probabilities logp[n] = log_softmax(logits[n])[targets[n]] (N), a Var whose
 * gradient flows back to the logits: d logits[n, v] += dlogp[n]·(δ(v, target) − softmax[v]).
 * The logits are left intact (other ops may read them).
 */
export function tokenLogprobs(tape: Tape, logits: Var, targets: Int32Array): Var {
  const V = logits.shape[logits.shape.length - 1]!;
  const N = logits.data.length / V;
  if (targets.length !== N) throw new Llama2Error(`log-probs: ${targets.length} targets for ${N} positions of logits`);
  const out = tape.output([N], logits);
  const lse = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (!(t >= 0 && t < V)) throw new Llama2Error(`log-probs: target ${t} at position ${n} is outside the vocabulary (0..${V - 1})`);
    lse[n] = rowLogSumExp(logits.data, n, V);
    out.data[n] = logits.data[n * V + t]! - lse[n]!;
  }
  tape.record(out, (dlogp) => {
    if (logits.requiresGrad) logprobRowsBackward(tape.grad(logits), logits.data, lse, targets, dlogp, V, true);
  });
  return out;
}

/** loss = Σ_n w[n]·x[n] (a scalar Var), e.g. a masked mean of per-token terms. */
export function weightedSum(tape: Tape, x: Var, w: ArrayLike<number>): LossResult {
  if (w.length !== x.data.length) throw new Llama2Error(`weighted sum: ${w.length} weights for ${x.data.length} values`);
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i]! * x.data[i]!;
  const loss = tape.output([1], x);
  loss.data[0] = s;
  tape.record(loss, (dl) => {
    if (!x.requiresGrad) return;
    const gx = tape.grad(x);
    for (let i = 0; i < w.length; i++) gx[i] = gx[i]! + dl[0]! * w[i]!;
  });
  return { loss, value: s };
}
