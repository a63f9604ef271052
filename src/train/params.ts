/**
 * Trainable parameters: the model's own F32 weight tensors, viewed as Float32Arrays (no copy), each
 * with a persistent gradient buffer. The optimizer updates `f32` in place, so the inference engine
 * reading the same ModelWeights sees every update at once: training and generation share one set
 * of weights.
 *
 * Also here: a seeded initialiser for fresh models (`initModelWeights`) and the reward score head.
 * Not here: the forward pass (model.ts), the optimizer (optim.ts).
 */
import { f32Tensor, numel, toFloat32, type WeightTensor } from '../tensor.js';
import { ffnHiddenDim, headDim, type LlamaConfig } from '../model/config.js';
import { namedHeads, namedWeights, type LayerWeights, type ModelWeights } from '../model/weights.js';
import { Llama2Error } from '../util/errors.js';
import { fillNormal, uniform } from '../util/rng.js';
import type { Var } from './tape.js';

export interface Param extends Var {
  /** Meta name, e.g. `layers.0.attention.wq.weight` */
  readonly name: string;
  readonly tensor: WeightTensor;
  /** the tensor's bytes as floats (the same memory; `data` is the same array) */
  readonly f32: Float32Array;
  /** persistent d(loss)/d(f32); empty for frozen params */
  grad: Float32Array;
  /** AdamW weight decay applies (parameters with ≥ 2 dims: embeddings, linear weights, heads) */
  readonly decay: boolean;
}

/** The tensor's data as a Float32Array over the same bytes, or a Llama2Error naming why not. */
export function f32View(name: string, t: WeightTensor): Float32Array {
  if (t.dtype !== 'F32') {
    throw new Llama2Error(`training: parameter "${name}" is ${t.dtype}; training needs F32 weights (load or convert the model as F32)`);
  }
  if (t.data.byteOffset % 4 !== 0) {
    throw new Llama2Error(`training: parameter "${name}" data is not 4-byte aligned (offset ${t.data.byteOffset}); copy it into an aligned buffer`);
  }
  return new Float32Array(t.data.buffer, t.data.byteOffset, numel(t.shape));
}

const trainable = new WeakMap<WeightTensor, Param>();

/**
 * A Param over `tensor`. Trainable params are cached per tensor, so every caller (and a tied
 * output head) shares one gradient buffer. frozen: no gradient, never updated.
 */
export function paramFromTensor(name: string, tensor: WeightTensor, opts: { frozen?: boolean } = {}): Param {
  if (!opts.frozen) {
    const hit = trainable.get(tensor);
    if (hit) return hit;
  }
  const f32 = f32View(name, tensor);
  const p: Param = {
    name, tensor, f32, data: f32, shape: [...tensor.shape], uses: 0,
    grad: opts.frozen ? new Float32Array(0) : new Float32Array(f32.length),
    requiresGrad: !opts.frozen,
    decay: tensor.shape.length >= 2,
  };
  if (!opts.frozen) trainable.set(tensor, p);
  return p;
}

/** Every weight as a Param under its Meta name (namedWeights order; a tied output listed once). */
export function paramsOf(weights: ModelWeights, opts: { frozen?: boolean } = {}): Param[] {
  return [...namedWeights(weights)].map(([name, t]) => paramFromTensor(name, t, opts));
}

/** Sets every gradient to zero (start of a step / of an accumulation cycle). */
export function zeroGrads(params: readonly Param[]): void {
  for (const p of params) p.grad.fill(0);
}

// ---------------------------------------------------------------------------------------------
// initialisation

export { fillNormal };

export interface InitOptions {
  /** output head shares the token embedding (llama2.c style); default false (Meta: untied) */
  tied?: boolean;
  /** std of every matrix; default 0.02 */
  std?: number;
}

/**
 * Fresh F32 weights, llama2.c / nanoGPT style: every matrix N(0, 0.02²), except the residual
 * output projections (wo, w2), which get std 0.02/sqrt(2·n_layers) so the residual stream's
 * variance does not grow with depth; RMSNorm weights 1. Deterministic in `seed`; tensors are
 * filled in namedWeights order.
 */
export function initModelWeights(c: LlamaConfig, seed: number, opts: InitOptions = {}): ModelWeights {
  const rand = uniform(seed);
  const std = opts.std ?? 0.02;
  const resStd = std / Math.sqrt(2 * c.n_layers);
  const hs = headDim(c);
  const H = ffnHiddenDim(c);
  const mat = (rows: number, cols: number, s: number): WeightTensor => {
    const a = new Float32Array(rows * cols);
    fillNormal(a, s, rand);
    return f32Tensor(a, [rows, cols]);
  };
  const ones = (n: number): WeightTensor => f32Tensor(new Float32Array(n).fill(1), [n]);
  const tok = mat(c.vocab_size, c.dim, std); // (V, C)
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.n_layers; l++) {
    layers.push({
      attention_norm: ones(c.dim), // (C)
      wq: mat(c.n_heads * hs, c.dim, std), // (NH*HS, C)
      wk: mat(c.n_kv_heads * hs, c.dim, std), // (NKV*HS, C)
      wv: mat(c.n_kv_heads * hs, c.dim, std), // (NKV*HS, C)
      wo: mat(c.dim, c.n_heads * hs, resStd), // (C, NH*HS)
      ffn_norm: ones(c.dim), // (C)
      w1: mat(H, c.dim, std), // (H, C)
      w2: mat(c.dim, H, resStd), // (C, H)
      w3: mat(H, c.dim, std), // (H, C)
    });
  }
  const norm = ones(c.dim);
  const output = opts.tied ? tok : mat(c.vocab_size, c.dim, std); // (V, C)
  return { tok_embeddings: tok, layers, norm, output };
}

/** A reward model's `score.weight` (1, C), N(0, std²), default std 0.02 (no bias, as the oracle). */
export function initScoreHead(c: LlamaConfig, seed: number, std = 0.02): WeightTensor {
  const a = new Float32Array(c.dim);
  fillNormal(a, std, uniform(seed));
  return f32Tensor(a, [1, c.dim]);
}

/**
 * An F32 copy of every weight and head, in fresh aligned memory, whatever the stored dtype (F16,
 * BF16 and quantized weights are decoded): what fine-tuning starts from, and a frozen reference
 * policy for PPO.
 */
export function cloneWeights(w: ModelWeights): ModelWeights {
  const cp = (t: WeightTensor): WeightTensor => f32Tensor(Float32Array.from(toFloat32(t)), t.shape);
  const tok = cp(w.tok_embeddings);
  const out: ModelWeights = {
    tok_embeddings: tok,
    layers: w.layers.map((l) => ({
      attention_norm: cp(l.attention_norm), wq: cp(l.wq), wk: cp(l.wk), wv: cp(l.wv), wo: cp(l.wo),
      ffn_norm: cp(l.ffn_norm), w1: cp(l.w1), w2: cp(l.w2), w3: cp(l.w3),
    })),
    norm: cp(w.norm),
    output: w.output === w.tok_embeddings ? tok : cp(w.output),
  };
  for (const [name, t] of namedHeads(w)) {
    out.heads ??= {};
    out.heads[name] = cp(t);
  }
  return out;
}
