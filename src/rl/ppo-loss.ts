/**
 * The PPO losses as pure float64 functions of per-token arrays, each returning its value, its clip
 * fraction and its gradient with respect to the trained quantity (log-probs or values), which
 * ppo-tape.ts hands to the training tape. Also the per-token entropy of logits (logged only).
 * Conventions of TRL's classic PPOTrainer, checked against ../shared/oracle/ppo_ref.py:
 *
 *   ratio = exp(logp − logp_old)
 *   policy loss = mean_t max(−A·ratio, −A·clamp(ratio, 1 − ε, 1 + ε))
 *   V_clip = V_old + clamp(V − V_old, −ε_v, ε_v)
 *   value loss  = 0.5 · mean_t max((V − R)², (V_clip − R)²)
 *   total = policy loss + c_v · value loss          (the entropy is not part of it)
 *
 * Every mean is ONE token-weighted mean: Σ_t x_t·m_t / denom, with denom = Σ m_t by default. Pass
 * the token count of a whole minibatch as `denom` to compute the part of its loss that a
 * micro-batch of its rows contributes (the parts then add up to the minibatch's loss and gradient).
 * logp_old, A, V_old and R are constants (no gradient), as in the reference.
 *
 * Not here: rewards and advantages (ppo-math.ts), the model forward (ppo-tape.ts).
 *
 * Legend: N = per-token entries (any shape flattened), V = vocab.
 */
import { Llama2Error } from '../util/errors.js';

export interface PolicyLossResult {
  loss: number;
  /** masked mean of [−A·clamp(ratio) > −A·ratio]: the share of tokens whose clipped branch is active */
  clipfrac: number;
  /** (N) ratio·mask */
  ratio: Float64Array;
  /** (N) d loss / d logp (0 off the mask and where the clipped branch is active) */
  dlogp: Float64Array;
  /** masked mean of ½(logp − logp_old)² (TRL's approxkl) */
  approxKl: number;
}

export interface ValueLossResult {
  loss: number;
  /** masked mean of [(V_clip − R)² > (V − R)²] */
  clipfrac: number;
  /** (N) d loss / d V */
  dvalues: Float64Array;
}

function checkInputs(what: string, mask: ArrayLike<number>, arrays: [string, ArrayLike<number>][], denom: number | undefined): number {
  for (const [name, a] of arrays) {
    if (a.length !== mask.length) throw new Llama2Error(`${what}: ${name} has ${a.length} values, the mask ${mask.length}`);
  }
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i]!;
  const d = denom ?? n;
  if (!(d > 0)) throw new Llama2Error(`${what}: no tokens to average over (denominator ${d})`);
  return d;
}

/**
 * The clipped surrogate over per-token log-probs (N) of the current policy, logp_old of the policy
 * that sampled, advantages A and the mask; clipEps = ε.
 * d loss/d logp_t = m_t/denom · (−A_t·ratio_t) where the unclipped branch is active, else 0
 * (the clipped branch is then outside [1 − ε, 1 + ε], where clamp has no gradient).
 */
export function policyLoss(
  logp: ArrayLike<number>, logpOld: ArrayLike<number>, adv: ArrayLike<number>, mask: ArrayLike<number>, clipEps = 0.2, denom?: number,
): PolicyLossResult {
  const n = checkInputs('policy loss', mask, [['logp', logp], ['logp_old', logpOld], ['advantages', adv]], denom);
  const N = mask.length;
  const ratio = new Float64Array(N);
  const dlogp = new Float64Array(N);
  let loss = 0, clipped = 0, kl = 0;
  for (let i = 0; i < N; i++) {
    const m = mask[i]!;
    if (m === 0) continue;
    const d = logp[i]! - logpOld[i]!;
    const r = Math.exp(d);
    const a = adv[i]!;
    const l1 = -a * r;
    const l2 = -a * Math.min(Math.max(r, 1 - clipEps), 1 + clipEps);
    ratio[i] = r * m;
    loss += Math.max(l1, l2) * m;
    kl += 0.5 * d * d * m;
    if (l2 > l1) clipped += m;
    else dlogp[i] = (m / n) * l1; // d(−A·r)/d logp = −A·r
  }
  return { loss: loss / n, clipfrac: clipped / n, ratio, dlogp, approxKl: kl / n };
}

/**
 * The clipped value loss over values V (N) of the current value head, V_old of the rollout,
 * returns R and the mask; clipEpsV = ε_v.
 * d loss/d V_t = m_t/denom · (V_t − R_t) where the unclipped branch is active, else 0.
 */
export function valueLoss(
  values: ArrayLike<number>, valuesOld: ArrayLike<number>, returns: ArrayLike<number>, mask: ArrayLike<number>, clipEpsV = 0.2, denom?: number,
): ValueLossResult {
  const n = checkInputs('value loss', mask, [['values', values], ['values_old', valuesOld], ['returns', returns]], denom);
  const N = mask.length;
  const dvalues = new Float64Array(N);
  let loss = 0, clipped = 0;
  for (let i = 0; i < N; i++) {
    const m = mask[i]!;
    if (m === 0) continue;
    const v = values[i]!, vo = valuesOld[i]!, R = returns[i]!;
    const vc = vo + Math.min(Math.max(v - vo, -clipEpsV), clipEpsV);
    const l1 = (v - R) ** 2;
    const l2 = (vc - R) ** 2;
    loss += Math.max(l1, l2) * m;
    if (l2 > l1) clipped += m;
    else dvalues[i] = (m / n) * (v - R); // d ½(V − R)²/dV
  }
  return { loss: (0.5 * loss) / n, clipfrac: clipped / n, dvalues };
}

/**
 * Entropy of softmax(logits row) for rows of V logits: H = logsumexp(z) − Σ softmax(z)·z with
 * z = row − max(row) (no overflow for logits of any size), in float64. rows: which rows (default all).
 */
export function entropyRows(logits: ArrayLike<number>, V: number, rows?: ArrayLike<number>): Float64Array {
  if (!(Number.isInteger(V) && V >= 1) || logits.length % V !== 0) throw new Llama2Error(`entropy: ${logits.length} logits do not form rows of ${V}`);
  const count = rows ? rows.length : logits.length / V;
  const out = new Float64Array(count);
  for (let k = 0; k < count; k++) {
    const o = (rows ? rows[k]! : k) * V;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[o + v]!);
    let se = 0, sez = 0;
    for (let v = 0; v < V; v++) {
      const z = logits[o + v]! - mx;
      const e = Math.exp(z);
      se += e;
      sez += e * z;
    }
    out[k] = Math.log(se) - sez / se;
  }
  return out;
}
