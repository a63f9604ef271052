/**
 * The comparison metrics and tolerances of ../shared/oracle/check_candidate.md, shared by every
 * test that checks against the PyTorch oracle, plus a loader for the training side of an oracle
 * case (config, F32 Meta weights, reward head, inputs, expected).
 *
 * Convention: `cand` is our value, `ref` the oracle's.
 */
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/formats/safetensors.js';
import type { ModelWeights } from '../../src/model/weights.js';
import type { WeightTensor } from '../../src/tensor.js';
import { loadCase, metaWeights, type OracleCase } from './oracle-case.js';

export const TOL_LOGITS = 1e-4; // fwd.logits, decode.*, fwd.logprobs, train.nll
export const TOL_SCALAR = 1e-5; // losses, grad.global_norm, grad.clip_coef
export const TOL_GRAD = 1e-3; // grad.*, grad_sft.*, reward_grad.*
export const TOL_PARAM = 3e-6; // adamw.*, adamw_clip.* (well-conditioned elements)
export const TOL_REWARD = 1e-4; // reward.*
export const TOL_TRAJ = 1e-4; // train.trajectory_*
export const TOL_UNITS = 1e-5; // units.*
export const TOL_ROPE = 5e-4; // units rope.*

export interface Metric {
  metric: number;
  /** max |cand − ref| and where it occurs */
  maxAbs: number;
  at: number;
}

/** max |cand − ref| / max(scaleFloor, max |ref|). NaN in cand counts as an infinite error. */
export function maxRelErr(cand: ArrayLike<number>, ref: ArrayLike<number>, scaleFloor = 1): Metric {
  if (cand.length !== ref.length) throw new Error(`maxRelErr: length mismatch (cand ${cand.length}, ref ${ref.length})`);
  let maxAbs = 0;
  let at = -1;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(cand[i]! - ref[i]!);
    if (!(d <= maxAbs)) {
      maxAbs = Number.isNaN(d) ? Infinity : d;
      at = i;
    }
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return { metric: maxAbs / Math.max(scaleFloor, scale), maxAbs, at };
}

/** The "grad" class: max |cand − ref| / max |ref| per tensor. */
export function gradMetric(cand: ArrayLike<number>, ref: ArrayLike<number>): Metric {
  return maxRelErr(cand, ref, 1e-30);
}

/** The "logits" class on a padded batch: rows b < B of T positions of width V, t < lengths[b] − shift. */
export function logitsMetric(
  cand: ArrayLike<number>, ref: ArrayLike<number>, lengths: ArrayLike<number>, T: number, V: number, shift = 0,
): Metric {
  const c: number[] = [];
  const r: number[] = [];
  const idx: number[] = [];
  for (let b = 0; b < lengths.length; b++) {
    for (let t = 0; t < lengths[b]! - shift; t++) {
      for (let v = 0; v < V; v++) {
        const i = (b * T + t) * V + v;
        c.push(cand[i]!);
        r.push(ref[i]!);
        idx.push(i);
      }
    }
  }
  const m = maxRelErr(c, r, 1);
  return { ...m, at: m.at >= 0 ? idx[m.at]! : -1 };
}

export interface ParamMetric extends Metric {
  /** max |cand − ref| over the ill-conditioned elements (limit 2·lr + TOL_PARAM) */
  ill: number;
  wellFraction: number;
  ok: boolean;
}

/**
 * The "param" class (AdamW results): elements whose reference gradient (times the clip
 * coefficient for adamw_clip.*) is 0 or ≥ max(1e-6, 1e-4·max|g|) must match within TOL_PARAM;
 * the rest within 2·lr + TOL_PARAM.
 */
export function paramMetric(
  cand: ArrayLike<number>, ref: ArrayLike<number>, refGrad: ArrayLike<number>, clipCoef = 1, lr = 3e-4,
): ParamMetric {
  let gmax = 0;
  for (let i = 0; i < refGrad.length; i++) gmax = Math.max(gmax, Math.abs(refGrad[i]! * clipCoef));
  const thr = Math.max(1e-6, 1e-4 * gmax);
  let metric = 0;
  let at = -1;
  let ill = 0;
  let nWell = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = Math.abs(refGrad[i]! * clipCoef);
    let d = Math.abs(cand[i]! - ref[i]!);
    if (Number.isNaN(d)) d = Infinity;
    if (g === 0 || g >= thr) {
      nWell++;
      if (d > metric) { metric = d; at = i; }
    } else if (d > ill) {
      ill = d;
    }
  }
  return { metric, maxAbs: Math.max(metric, ill), at, ill, wellFraction: nWell / ref.length, ok: metric <= TOL_PARAM && ill <= 2 * lr + TOL_PARAM };
}

export interface TrainCase extends OracleCase {
  /** fresh F32 Meta-layout weights (a new copy on every call: training mutates them) */
  weights: () => ModelWeights;
  /** fresh reward head score.weight (1, C) */
  scoreWeight: () => WeightTensor;
  /** optimizer settings of the fixture (lr, betas, eps, weight_decay, grad_clip_max_norm) */
  optimizer: { lr: number; betas: [number, number]; eps: number; weight_decay: number; grad_clip_max_norm: number };
  /** expected tensor names of `prefix` (e.g. "grad."), without the prefix */
  keys: (prefix: string) => string[];
}

export function loadTrainCase(name: string): TrainCase {
  const oc = loadCase(name);
  const head = new SafetensorsFile(join(oc.dir, 'reward_head.safetensors'));
  const optimizer = oc.json['optimizer'] as TrainCase['optimizer'];
  return {
    ...oc,
    weights: () => metaWeights(oc),
    scoreWeight: () => head.weight('score.weight'),
    optimizer,
    keys: (prefix) => [...oc.expected.entries.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)),
  };
}

/** An I64 input as Int32Array. */
export function intsI32(st: SafetensorsFile, name: string): Int32Array {
  return Int32Array.from(st.ints(name));
}
