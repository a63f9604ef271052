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

/** Iterates (Meta name, tensor) over all weights; a tied output is listed once. */
export function* namedWeights(w: ModelWeights): Generator<[string, WeightTensor]> {
  yield ['tok_embeddings.weight', w.tok_embeddings];
  for (let l = 0; l < w.layers.length; l++) {
    const lw = w.layers[l]!;
    for (const k of LAYER_KEYS) yield [metaKey(l, k), lw[k]];
  }
  yield ['norm.weight', w.norm];
  if (w.output !== w.tok_embeddings) yield ['output.weight', w.output];
}
