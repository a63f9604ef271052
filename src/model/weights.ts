/**
 * The weights of a Llama-2 model under Meta's names (llama/model.py), in Meta's layout: q/k rows
 * in the interleaved-pair RoPE order. Every reader (GGUF, HF, Meta, llama2.c) produces this record;
 * HF's q/k row permutation is undone on load.
 *
 * Shapes (C = dim, H = FFN hidden, V = vocab, NH = n_heads, NKV = n_kv_heads, HS = head size):
 */
import type { WeightTensor } from '../tensor.js';
import { ffnHiddenDim, headDim, type LlamaConfig } from './config.js';
import { Llama2Error } from '../util/errors.js';

export interface LayerWeights {
  attention_norm: WeightTensor; // (C)
  wq: WeightTensor; // (NH*HS, C)
  wk: WeightTensor; // (NKV*HS, C)
  wv: WeightTensor; // (NKV*HS, C)
  wo: WeightTensor; // (C, NH*HS)
  ffn_norm: WeightTensor; // (C)
  w1: WeightTensor; // (H, C)  gate
  w2: WeightTensor; // (C, H)  down
  w3: WeightTensor; // (H, C)  up
}

export interface ModelWeights {
  tok_embeddings: WeightTensor; // (V, C)
  layers: LayerWeights[];
  norm: WeightTensor; // (C)
  /** (V, C); the same object as tok_embeddings when the file ties them */
  output: WeightTensor;
  /**
   * Extra heads beyond the language model, under their HF names (see HEADS): a reward model's
   * `score.weight` (1, C), a PPO value head. Absent (or empty) for a plain language model. Every
   * writer saves them and every reader loads them.
   */
  heads?: Record<string, WeightTensor>;
}

/**
 * The extra heads a model file may carry, by HF name, with their spelling in the other formats.
 * Each reads the final-RMSNorm'ed hidden state (C):
 *  - score.weight (L, C): transformers' LlamaForSequenceClassification head (no bias); a reward
 *    model has L = 1. GGUF: `cls.output.weight` (llama.cpp's classifier-output name).
 *  - v_head.summary.weight (1, C) / v_head.summary.bias (1): a PPO value head, under the names of
 *    TRL's AutoModelForCausalLMWithValueHead. GGUF: the same names.
 * Meta-layout files (params.json + consolidated.*) use the HF name as it is. llama2.c `.bin` files
 * have no place for heads: writing one with heads is refused.
 */
export const HEADS: Readonly<Record<string, { gguf: string; bias: boolean }>> = {
  'score.weight': { gguf: 'cls.output.weight', bias: false },
  'v_head.summary.weight': { gguf: 'v_head.summary.weight', bias: false },
  'v_head.summary.bias': { gguf: 'v_head.summary.bias', bias: true },
};

/** True for an HF name listed in HEADS. */
export function isHeadName(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(HEADS, name);
}

/** The HF head name of a GGUF tensor name, or undefined. */
export function headFromGguf(name: string): string | undefined {
  for (const [hf, h] of Object.entries(HEADS)) if (h.gguf === name) return hf;
  return undefined;
}

/** Checks a head's shape: (L, C) for a weight, (L) for a bias; `where` names the file. */
export function checkHead(c: LlamaConfig, name: string, t: WeightTensor, where: string): WeightTensor {
  const h = HEADS[name];
  if (!h) throw new Llama2Error(`${where}: "${name}" is not a known head (expected one of ${Object.keys(HEADS).join(', ')})`);
  const ok = h.bias ? t.shape.length === 1 && t.shape[0]! >= 1 : t.shape.length === 2 && t.shape[0]! >= 1 && t.shape[1] === c.dim;
  if (!ok) {
    throw new Llama2Error(`${where}: head "${name}" has shape [${t.shape.join(', ')}]; expected ${h.bias ? '[L]' : `[L, ${c.dim}] (L outputs × dim)`}`);
  }
  return t;
}

/** Iterates (HF name, tensor) over the extra heads, in HEADS order; an unknown name is an error. */
export function* namedHeads(w: ModelWeights): Generator<[string, WeightTensor]> {
  if (!w.heads) return;
  const unknown = Object.keys(w.heads).find((n) => !isHeadName(n));
  if (unknown !== undefined) throw new Llama2Error(`model weights: "${unknown}" is not a known head (expected one of ${Object.keys(HEADS).join(', ')})`);
  for (const name of Object.keys(HEADS)) {
    const t = w.heads[name];
    if (t) yield [name, t];
  }
}

export const LAYER_KEYS = ['attention_norm', 'wq', 'wk', 'wv', 'wo', 'ffn_norm', 'w1', 'w2', 'w3'] as const;
export type LayerKey = (typeof LAYER_KEYS)[number];

/** Expected shape of every weight under its Meta name (`layers.N.attention.wq.weight`, ...). */
export function expectedShapes(c: LlamaConfig): Map<string, number[]> {
  const hs = headDim(c);
  const h = ffnHiddenDim(c);
  const m = new Map<string, number[]>();
  m.set('tok_embeddings.weight', [c.vocab_size, c.dim]);
  m.set('norm.weight', [c.dim]);
  m.set('output.weight', [c.vocab_size, c.dim]);
  for (let l = 0; l < c.n_layers; l++) {
    const p = `layers.${l}.`;
    m.set(p + 'attention_norm.weight', [c.dim]);
    m.set(p + 'attention.wq.weight', [c.n_heads * hs, c.dim]);
    m.set(p + 'attention.wk.weight', [c.n_kv_heads * hs, c.dim]);
    m.set(p + 'attention.wv.weight', [c.n_kv_heads * hs, c.dim]);
    m.set(p + 'attention.wo.weight', [c.dim, c.n_heads * hs]);
    m.set(p + 'ffn_norm.weight', [c.dim]);
    m.set(p + 'feed_forward.w1.weight', [h, c.dim]);
    m.set(p + 'feed_forward.w2.weight', [c.dim, h]);
    m.set(p + 'feed_forward.w3.weight', [h, c.dim]);
  }
  return m;
}

/** Meta checkpoint key of a layer weight. */
export function metaKey(layer: number, k: LayerKey): string {
  switch (k) {
    case 'attention_norm':
    case 'ffn_norm':
      return `layers.${layer}.${k}.weight`;
    case 'wq':
    case 'wk':
    case 'wv':
    case 'wo':
      return `layers.${layer}.attention.${k}.weight`;
    default:
      return `layers.${layer}.feed_forward.${k}.weight`;
  }
}

/**
 * Builds ModelWeights from a lookup by Meta key, checking every shape against the config.
 * `get` returns undefined for a missing tensor; a missing `output.weight` means tied embeddings.
 * `where` names the file in errors.
 */
export function assembleWeights(
  c: LlamaConfig, get: (metaName: string) => WeightTensor | undefined, where: string,
): ModelWeights {
  const shapes = expectedShapes(c);
  const need = (name: string, optional = false): WeightTensor | undefined => {
    const t = get(name);
    if (!t) {
      if (optional) return undefined;
      throw new Llama2Error(`${where}: missing tensor "${name}"`);
    }
    const want = shapes.get(name)!;
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new Llama2Error(
        `${where}: tensor "${name}" has shape [${t.shape.join(', ')}] but the config (dim ${c.dim}, ` +
          `${c.n_heads}/${c.n_kv_heads} heads, hidden ${ffnHiddenDim(c)}, vocab ${c.vocab_size}) expects [${want.join(', ')}]`,
      );
    }
    return t;
  };
  const tok = need('tok_embeddings.weight')!;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.n_layers; l++) {
    const lw = {} as LayerWeights;
    for (const k of ['attention_norm', 'wq', 'wk', 'wv', 'wo', 'ffn_norm', 'w1', 'w2', 'w3'] as const) {
      lw[k] = need(metaKey(l, k))!;
    }
    layers.push(lw);
  }
  return { tok_embeddings: tok, layers, norm: need('norm.weight')!, output: need('output.weight', true) ?? tok };
}

/**
 * The same model with every tensor passed through `f` (a dtype conversion, a copy): a tied output
 * stays tied, heads are mapped too.
 */
export function mapWeights(w: ModelWeights, f: (t: WeightTensor) => WeightTensor): ModelWeights {
  const tok = f(w.tok_embeddings);
  const out: ModelWeights = {
    tok_embeddings: tok,
    layers: w.layers.map((l) => {
      const m = {} as LayerWeights;
      for (const k of LAYER_KEYS) m[k] = f(l[k]);
      return m;
    }),
    norm: f(w.norm),
    output: w.output === w.tok_embeddings ? tok : f(w.output),
  };
  for (const [name, t] of namedHeads(w)) (out.heads ??= {})[name] = f(t);
  return out;
}

/** Iterates (Meta name, tensor) over the language model's weights (not the heads: namedHeads); a tied output is listed once. */
export function* namedWeights(w: ModelWeights): Generator<[string, WeightTensor]> {
  yield ['tok_embeddings.weight', w.tok_embeddings];
  for (let l = 0; l < w.layers.length; l++) {
    const lw = w.layers[l]!;
    for (const k of LAYER_KEYS) yield [metaKey(l, k), lw[k]];
  }
  yield ['norm.weight', w.norm];
  if (w.output !== w.tok_embeddings) yield ['output.weight', w.output];
}
