/**
 * The PPO oracle case (tests/fixtures/oracle/ppo, copied from ../shared/oracle/fixtures/ppo) and
 * the metrics of check_candidate.md's PPO section: the policy (case b_gqa) with its value head,
 * the reference policy (b_gqa with reference_overrides.safetensors swapped in), the rollout
 * samples, and `KeyCheck`, which compares one key by its class's metric, keeps the worst metric
 * per class, and on failure names the first mismatching entries and the max error.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/formats/safetensors.js';
import { assembleWeights, type ModelWeights } from '../../src/model/weights.js';
import { f32Tensor } from '../../src/tensor.js';
import { cloneWeights } from '../../src/train/params.js';
import type { RolloutSample } from '../../src/rl/rollout.js';
import { VALUE_HEAD_WEIGHT } from '../../src/rl/ppo-tape.js';
import { loadCase, metaWeights, type OracleCase } from './oracle-case.js';
import { TOL_GRAD, TOL_UNITS } from './oracle-metrics.js';

/** check_candidate.md, PPO section: the limit of each key class */
export const TOL_PPO_TOKEN = 1e-4; // per-token [B, T-1] keys over response tokens, / max(1, max |ref|)
export const TOL_PPO_SEQ = 1e-5; // R_c, logit_R_c, score
export const TOL_PPO_SCALAR = 1e-5; // losses and step-1 statistics, |d| / max(1, |ref|)
export const TOL_PPO_STEP2 = 1e-4; // everything after one AdamW step

export type KeyClass = 'ppo_token' | 'ppo_seq' | 'ppo_scalar' | 'ppo_step2' | 'grad' | 'units';

const LIMIT: Record<KeyClass, number> = {
  ppo_token: TOL_PPO_TOKEN, ppo_seq: TOL_PPO_SEQ, ppo_scalar: TOL_PPO_SCALAR, ppo_step2: TOL_PPO_STEP2, grad: TOL_GRAD, units: TOL_UNITS,
};

/** grad and units divide by max |ref|; the others by max(1, max |ref|) */
const SCALE_FLOOR: Record<KeyClass, number> = { ppo_token: 1, ppo_seq: 1, ppo_scalar: 1, ppo_step2: 1, grad: 1e-30, units: 1e-30 };

export class KeyCheck {
  readonly worst: Record<string, { metric: number; key: string }> = {};

  /**
   * Compares cand with ref by the class's metric over the entries where mask ≠ 0 (all without a
   * mask); W names entries as [row, t] in messages. Returns the metric.
   */
  check(key: string, cls: KeyClass, cand: ArrayLike<number>, ref: ArrayLike<number>, mask?: ArrayLike<number>, W?: number): number {
    assert.equal(cand.length, ref.length, `${key}: ${cand.length} values, the oracle has ${ref.length}`);
    let scale = 0, maxAbs = 0, at = -1;
    for (let i = 0; i < ref.length; i++) {
      if (mask && mask[i] === 0) continue;
      scale = Math.max(scale, Math.abs(ref[i]!));
      const d = Math.abs(cand[i]! - ref[i]!);
      if (!(d <= maxAbs)) { maxAbs = Number.isNaN(d) ? Infinity : d; at = i; }
    }
    const denom = Math.max(SCALE_FLOOR[cls], scale);
    const metric = maxAbs / denom;
    if (!this.worst[cls] || metric > this.worst[cls]!.metric) this.worst[cls] = { metric, key };
    if (!(metric <= LIMIT[cls])) {
      const name = (i: number) => (W ? `[${Math.floor(i / W)}, ${i % W}]` : `[${i}]`);
      const bad: string[] = [];
      for (let i = 0; i < ref.length && bad.length < 5; i++) {
        if (mask && mask[i] === 0) continue;
        const d = Math.abs(cand[i]! - ref[i]!);
        if (!(d <= LIMIT[cls] * denom)) bad.push(`${name(i)} got ${cand[i]} want ${ref[i]}`);
      }
      assert.fail(`${key} (${cls}): metric ${metric.toExponential(3)} > ${LIMIT[cls]}; max abs error ${maxAbs} at ${name(at)}; first mismatches: ${bad.join('; ')}`);
    }
    return metric;
  }

  summary(): string {
    return Object.entries(this.worst).map(([c, w]) => `${c} ${w.metric.toExponential(2)} (${w.key})`).join('; ');
  }
}

export interface PpoCase extends OracleCase {
  /** a fresh F32 copy of the policy's weights with heads['v_head.summary.weight'] from value_head.safetensors */
  policyWeights: () => ModelWeights;
  /** the reference policy: the policy's weights with reference_overrides.safetensors swapped in */
  referenceWeights: () => ModelWeights;
  /** the 4 rollout rows as samples (prompt, response, reward probabilities, safety flag) */
  samples: () => RolloutSample[];
  hyper: { beta: number; betas_recorded: number[]; clip_eps: number; clip_eps_v: number; gamma: number; lam: number; vf_coef: number };
  optimizer: { lr: number; betas: [number, number]; eps: number; weight_decay: number; grad_clip_max_norm: number };
  minibatches: number[][];
}

export function loadPpoCase(): PpoCase {
  const oc = loadCase('ppo');
  const policyDir = join(oc.dir, '..', 'b_gqa', 'meta', 'consolidated.safetensors');
  const overrides = new SafetensorsFile(join(oc.dir, 'reference_overrides.safetensors'));
  const vhead = new SafetensorsFile(join(oc.dir, 'value_head.safetensors'));
  const inp = oc.inputs;
  const policyCase = { ...oc, dir: join(oc.dir, '..', 'b_gqa') };
  return {
    ...oc,
    policyWeights: () => {
      const w = cloneWeights(metaWeights(policyCase));
      w.heads = { [VALUE_HEAD_WEIGHT]: f32Tensor(Float32Array.from(vhead.f32('v_head.weight')), [1, oc.config.dim]) };
      return w;
    },
    referenceWeights: () => {
      const st = new SafetensorsFile(policyDir);
      return cloneWeights(assembleWeights(oc.config, (n) => (overrides.has(n) ? overrides.weight(n) : st.has(n) ? st.weight(n) : undefined), policyDir));
    },
    samples: () => {
      const [B, T] = inp.entry('ppo.tokens').shape as [number, number];
      const tokens = inp.ints('ppo.tokens');
      const P = inp.ints('ppo.prompt_lengths');
      const R = inp.ints('ppo.response_lengths');
      const rs = inp.f64('ppo.r_safety');
      const rh = inp.f64('ppo.r_helpful');
      const sp = inp.ints('ppo.is_safety_prompt');
      return Array.from({ length: B }, (_, b) => ({
        prompt: tokens.slice(b * T, b * T + P[b]!),
        response: tokens.slice(b * T + P[b]!, b * T + P[b]! + R[b]!),
        rSafety: rs[b]!, rHelpful: rh[b]!, safetyPrompt: sp[b] === 1,
      }));
    },
    hyper: oc.json['hyperparameters'] as PpoCase['hyper'],
    optimizer: oc.json['optimizer'] as PpoCase['optimizer'],
    minibatches: (oc.json['schedule'] as { minibatches: number[][] }).minibatches,
  };
}
