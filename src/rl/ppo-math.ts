/**
 * The reward and advantage arithmetic of PPO for Llama 2-Chat (paper §3.2.3), as pure float64
 * functions over flat row-major arrays: the safety-gated reward R_c, its logit and whitening, the
 * per-token KL rewards, GAE and the whitening of the advantages. The conventions are those of
 * TRL's classic PPOTrainer, and every function matches ../shared/oracle/ppo_ref.py (the oracle),
 * whose `units` fixtures tests/ppo-units.test.ts checks:
 *
 *   const { rc, score } = sequenceScores(rSafety, rHelpful, safetyPrompt);       // (B) each
 *   const { k1, rewards } = klRewards(logpOld, logpRef, mask, score, 0.01, W);   // (B, W) each
 *   const { advantages, returns } = gae(rewards, values, mask, W, 1, 0.95);      // (B, W) each
 *   const adv = whiten(advantages, mask);         // once over the whole rollout batch
 *
 * Layout. Row b of a rollout is prompt (P_b ≥ 1 tokens) + response (R_b ≥ 1 tokens), right-padded
 * to T. Every per-token array is (B, W) with W = T − 1, indexed by the PREDICTING position t:
 * entry t belongs to token t+1 (its log-prob, the value of the state that emits it).
 *   mask[b, t] = 1  iff  P_b − 1 ≤ t < P_b + R_b − 1      (token t+1 is a response token)
 * Per-token outputs are 0 where mask = 0. A mean over tokens is ONE mean over all masked entries
 * (token-weighted), never a mean of per-row means.
 *
 * Not here: the clipped losses (ppo-loss.ts), anything on the training tape (ppo-tape.ts), the
 * padding of generated samples into these arrays (rollout.ts).
 *
 * Legend: B = rows, T = padded length, W = T − 1 per-token entries per row.
 */
import { combinedReward, SAFETY_THRESHOLD } from '../chat/reward-score.js';
import { Llama2Error } from '../util/errors.js';

/** The clamp of logit(): q = clamp(p, LOGIT_EPS, 1 − LOGIT_EPS). */
export const LOGIT_EPS = 1e-6;
/** The variance floor of whiten(): (x − mean) / sqrt(var + WHITEN_EPS). */
export const WHITEN_EPS = 1e-8;

/** rows B of a (B, W) array, or a Llama2Error naming `what` */
function rowsOf(x: ArrayLike<number>, W: number, what: string): number {
  if (!(Number.isInteger(W) && W >= 1) || x.length % W !== 0) {
    throw new Llama2Error(`${what}: ${x.length} values do not form rows of width W = ${W}`);
  }
  return x.length / W;
}

function sameLength(what: string, n: number, ...xs: [string, { length: number }][]): void {
  for (const [name, x] of xs) {
    if (x.length !== n) throw new Llama2Error(`${what}: ${name} has ${x.length} values, expected ${n}`);
  }
}

/**
 * The response mask (B, T − 1) of rows with prompt lengths P_b ≥ 1 and response lengths R_b ≥ 1
 * (P_b + R_b ≤ T): 1 iff P_b − 1 ≤ t < P_b + R_b − 1.
 */
export function responseMask(promptLens: ArrayLike<number>, respLens: ArrayLike<number>, T: number): Float64Array {
  const B = promptLens.length;
  sameLength('response mask', B, ['response lengths', respLens]);
  const W = T - 1;
  const mask = new Float64Array(B * W); // (B, W)
  for (let b = 0; b < B; b++) {
    const P = promptLens[b]!, R = respLens[b]!;
    if (!(Number.isInteger(P) && P >= 1 && Number.isInteger(R) && R >= 1 && P + R <= T)) {
      throw new Llama2Error(`response mask: row ${b} has prompt length ${P} and response length ${R}; expected integers ≥ 1 with P + R ≤ T = ${T}`);
    }
    mask.fill(1, b * W + P - 1, b * W + P + R - 1);
  }
  return mask;
}

/** [B] index of the last masked entry of each row of mask (B, W); a row without one is an error. */
export function lastIndex(mask: ArrayLike<number>, W: number): Int32Array {
  const B = rowsOf(mask, W, 'last index');
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let t = W - 1;
    while (t >= 0 && !(mask[b * W + t]! > 0)) t--;
    if (t < 0) throw new Llama2Error(`PPO: row ${b} has no response token (its mask is all 0)`);
    out[b] = t;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// sequence rewards

/**
 * R_c (B) of reward-model probabilities in (0, 1): r_safety where the prompt is a safety prompt
 * or r_safety < threshold (strict), else r_helpful (src/chat/reward-score.ts combinedReward).
 */
export function combinedRewards(
  rSafety: ArrayLike<number>, rHelpful: ArrayLike<number>, safetyPrompt: ArrayLike<boolean | number>, threshold = SAFETY_THRESHOLD,
): Float64Array {
  const B = rSafety.length;
  sameLength('combined reward', B, ['r_helpful', rHelpful], ['is_safety_prompt', safetyPrompt]);
  return Float64Array.from({ length: B }, (_, b) =>
    combinedReward({ safety: rSafety[b]!, helpful: rHelpful[b]!, safetyPrompt: Boolean(safetyPrompt[b]) }, threshold));
}

/** log(q / (1 − q)) = log(q) − log1p(−q) with q = clamp(p, eps, 1 − eps): the inverse of the logistic function. */
export function logit(p: number, eps = LOGIT_EPS): number {
  const q = Math.min(Math.max(p, eps), 1 - eps);
  return Math.log(q) - Math.log1p(-q);
}

/**
 * (x − mean) / sqrt(var + eps) over the entries where mask = 1 (all entries when mask is null),
 * with the population variance var = Σ (x − mean)²·m / n (not Bessel's n − 1; TRL's masked_var
 * uses n − 1). shiftMean = false adds the mean back. With a mask the result is 0 where mask = 0.
 */
export function whiten(x: ArrayLike<number>, mask: ArrayLike<number> | null = null, shiftMean = true, eps = WHITEN_EPS): Float64Array {
  const N = x.length;
  if (mask) sameLength('whiten', N, ['mask', mask]);
  let n = 0, sum = 0;
  for (let i = 0; i < N; i++) {
    const m = mask ? mask[i]! : 1;
    n += m;
    sum += x[i]! * m;
  }
  if (!(n > 0)) throw new Llama2Error('whiten: the mask selects no entries');
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < N; i++) ss += (x[i]! - mean) ** 2 * (mask ? mask[i]! : 1);
  const inv = 1 / Math.sqrt(ss / n + eps);
  const y = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const v = (x[i]! - mean) * inv + (shiftMean ? 0 : mean);
    y[i] = mask ? v * mask[i]! : v;
  }
  return y;
}

export interface SequenceScores {
  /** R_c (B), the gated reward on the (0, 1) scale */
  rc: Float64Array;
  /** logit(R_c) (B) */
  logit: Float64Array;
  /** whiten(logit(R_c)) across the batch (B): the score added at each row's last response token */
  score: Float64Array;
}

/** R̃_c = WHITEN(LOGIT(R_c)) across the batch (no mask, mean shifted), with R_c and its logit. */
export function sequenceScores(
  rSafety: ArrayLike<number>, rHelpful: ArrayLike<number>, safetyPrompt: ArrayLike<boolean | number>,
  o: { threshold?: number; logitEps?: number; whitenEps?: number } = {},
): SequenceScores {
  const rc = combinedRewards(rSafety, rHelpful, safetyPrompt, o.threshold);
  const lg = rc.map((p) => logit(p, o.logitEps));
  return { rc, logit: lg, score: whiten(lg, null, true, o.whitenEps) };
}

// ---------------------------------------------------------------------------------------------
// per-token rewards and advantages

/**
 * The per-token KL estimate and reward, both (B, W), 0 off the mask:
 *   k1 = (logp − logp_ref)·mask      (logp of the policy that sampled, θ_old)
 *   r  = −β·k1, plus score[b] at the last masked entry of row b.
 */
export function klRewards(
  logp: ArrayLike<number>, logpRef: ArrayLike<number>, mask: ArrayLike<number>, score: ArrayLike<number>, beta: number, W: number,
): { k1: Float64Array; rewards: Float64Array } {
  const B = rowsOf(mask, W, 'KL rewards');
  sameLength('KL rewards', B * W, ['logp', logp], ['logp_ref', logpRef]);
  sameLength('KL rewards', B, ['score', score]);
  const k1 = new Float64Array(B * W);
  const rewards = new Float64Array(B * W);
  for (let i = 0; i < B * W; i++) {
    k1[i] = (logp[i]! - logpRef[i]!) * mask[i]!;
    rewards[i] = -beta * k1[i]!;
  }
  const last = lastIndex(mask, W);
  for (let b = 0; b < B; b++) {
    const i = b * W + last[b]!;
    rewards[i] = rewards[i]! + score[b]!;
  }
  return { k1, rewards };
}

/**
 * Generalised advantage estimation, backwards over each row ((B, W) each):
 *   δ_t = r_t + γ·V_{t+1} − V_t ,   A_t = δ_t + γλ·A_{t+1}
 * with V = 0 and A = 0 after the last masked entry (and at every masked-out entry, so a row's
 * run of response tokens sees nothing after it; rewards and values off the mask are ignored).
 * returns = (A + V)·mask. A is NOT whitened here (whiten(A, mask) once over the rollout batch).
 */
export function gae(
  rewards: ArrayLike<number>, values: ArrayLike<number>, mask: ArrayLike<number>, W: number, gamma = 1, lam = 0.95,
): { advantages: Float64Array; returns: Float64Array } {
  const B = rowsOf(mask, W, 'GAE');
  sameLength('GAE', B * W, ['rewards', rewards], ['values', values]);
  const advantages = new Float64Array(B * W);
  const returns = new Float64Array(B * W);
  for (let b = 0; b < B; b++) {
    let nextV = 0;
    let nextA = 0;
    for (let t = W - 1; t >= 0; t--) {
      const i = b * W + t;
      if (!(mask[i]! > 0)) {
        nextV = 0;
        nextA = 0;
        continue;
      }
      const v = values[i]!;
      nextA = rewards[i]! + gamma * nextV - v + gamma * lam * nextA;
      nextV = v;
      advantages[i] = nextA;
      returns[i] = nextA + v;
    }
  }
  return { advantages, returns };
}

/** sum(x·mask) / sum(mask): one mean over all masked entries (token-weighted). */
export function maskedMean(x: ArrayLike<number>, mask: ArrayLike<number>): number {
  sameLength('masked mean', x.length, ['mask', mask]);
  let s = 0, n = 0;
  for (let i = 0; i < x.length; i++) {
    s += x[i]! * mask[i]!;
    n += mask[i]!;
  }
  if (!(n > 0)) throw new Llama2Error('masked mean: the mask selects no entries');
  return s / n;
}
