/**
 * AdamW exactly as torch.optim.AdamW (amsgrad off), global-norm gradient clipping as
 * torch.nn.utils.clip_grad_norm_, and the optimizer state for checkpoints.
 *
 * Per step t (counted from 1), for each parameter p with gradient g:
 *   p ← p·(1 − lr·wd)                       only where p.decay (≥ 2 dims; not RMSNorm weights)
 *   m ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
 *   p ← p − lr·(m/(1 − β1ᵗ)) / (sqrt(v/(1 − β2ᵗ)) + eps)
 * The update runs in float64 per element and stores float32; parameters are updated in place
 * (the model's own weight memory, see params.ts).
 *
 * Defaults follow the Llama 2 paper: β = (0.9, 0.95), eps 1e-5, weight decay 0.1 (the oracle
 * fixtures and the PyTorch baseline use eps 1e-8 and lr 3e-4; pass them). Not here: the learning
 * rate schedule (schedule.ts), gradient computation (tape.ts).
 *
 * The element loops are the backend's (Backend.adamw, Backend.sumSquares): pass the training
 * tape's backend to run them natively; the AdamW update is bit-identical on every backend.
 */
import { Llama2Error } from '../util/errors.js';
import type { Backend } from '../backend/types.js';
import { refBackend } from '../backend/ref.js';
import type { Param } from './params.js';

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: Readonly<AdamWOptions> = { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-5, weightDecay: 0.1 };

/** Everything needed to resume: the step count and both moments of every parameter (by name). */
export interface AdamWState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export class AdamW {
  readonly opts: AdamWOptions;
  /** steps taken so far (the bias correction of the next step uses t + 1) */
  t = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  /** backend: runs the update loop (default: the reference backend, plain TypeScript) */
  constructor(readonly params: readonly Param[], opts: Partial<AdamWOptions> = {}, readonly backend: Backend = refBackend) {
    this.opts = { ...ADAMW_DEFAULTS, ...opts };
    const names = new Set<string>();
    for (const p of params) {
      if (!p.requiresGrad) throw new Llama2Error(`AdamW: parameter "${p.name}" is frozen (no gradient)`);
      if (names.has(p.name)) throw new Llama2Error(`AdamW: parameter "${p.name}" is listed twice`);
      names.add(p.name);
    }
    this.m = params.map((p) => new Float32Array(p.f32.length));
    this.v = params.map((p) => new Float32Array(p.f32.length));
  }

  /**
   * One update from the current gradients; lr overrides opts.lr (for a schedule), and every
   * gradient is first multiplied by gradScale (pass the coefficient of `clipCoefficient` to clip
   * without a separate pass over the gradients). `only`: update just these parameters (the others,
   * their moments and their weight decay are left untouched — a frozen part, e.g. PPO's critic
   * warm-up); the step count advances either way.
   */
  step(lr = this.opts.lr, gradScale = 1, only?: ReadonlySet<Param>): void {
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.opts;
    this.t++;
    const stepSize = lr / (1 - Math.pow(b1, this.t));
    const invSqrtBc2 = 1 / Math.sqrt(1 - Math.pow(b2, this.t));
    const c1 = (1 - b1) * gradScale;
    const c2 = (1 - b2) * gradScale * gradScale;
    for (let j = 0; j < this.params.length; j++) {
      const p = this.params[j]!;
      if (only && !only.has(p)) continue;
      const decay = p.decay && wd !== 0 ? 1 - lr * wd : 1;
      this.backend.adamw(p.f32, p.grad, this.m[j]!, this.v[j]!, { decay, beta1: b1, c1, beta2: b2, c2, stepSize, invSqrtBc2, eps });
    }
  }

  /** A copy of the state (safe to keep while training goes on). */
  optimizerState(): AdamWState {
    const s: AdamWState = { step: this.t, m: {}, v: {} };
    this.params.forEach((p, j) => {
      s.m[p.name] = Float32Array.from(this.m[j]!);
      s.v[p.name] = Float32Array.from(this.v[j]!);
    });
    return s;
  }

  /** Restores a state taken from an optimizer over the same parameter names and sizes. */
  loadOptimizerState(s: AdamWState): void {
    if (!(Number.isInteger(s.step) && s.step >= 0)) throw new Llama2Error(`AdamW state: step must be a non-negative integer, found ${s.step}`);
    this.params.forEach((p, j) => {
      const m = s.m[p.name];
      const v = s.v[p.name];
      if (!m || !v) throw new Llama2Error(`AdamW state: no moments for parameter "${p.name}"`);
      if (m.length !== p.f32.length || v.length !== p.f32.length) {
        throw new Llama2Error(`AdamW state: parameter "${p.name}" has ${p.f32.length} values but the state holds ${m.length}/${v.length}`);
      }
      this.m[j]!.set(m);
      this.v[j]!.set(v);
    });
    this.t = s.step;
  }
}

/** L2 norm of all gradients together (float64 sums of squares, per parameter in order). */
export function gradNorm(params: readonly Param[], backend: Backend = refBackend): number {
  let ss = 0;
  for (const p of params) ss += backend.sumSquares(p.grad);
  return Math.sqrt(ss);
}

/** The global gradient norm and torch's clip coefficient min(1, maxNorm/(norm + 1e-6)); grads untouched. */
export function clipCoefficient(params: readonly Param[], maxNorm: number, backend: Backend = refBackend): { norm: number; coef: number } {
  if (!(maxNorm > 0)) throw new Llama2Error(`gradient clipping: max norm must be > 0, found ${maxNorm}`);
  const norm = gradNorm(params, backend);
  return { norm, coef: Math.min(1, maxNorm / (norm + 1e-6)) };
}

/**
 * Scales all gradients by coef = min(1, maxNorm/(norm + 1e-6)) (torch clip_grad_norm_).
 * Returns the pre-clip norm and the coefficient.
 */
export function clipGradNorm(params: readonly Param[], maxNorm: number, backend: Backend = refBackend): { norm: number; coef: number } {
  const { norm, coef } = clipCoefficient(params, maxNorm, backend);
  if (coef < 1) {
    for (const p of params) {
      const g = p.grad;
      for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
    }
  }
  return { norm, coef };
}
