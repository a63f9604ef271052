/**
 * LlamaConfig: the hyper-parameters of a Llama-2 model, under Meta's params.json names, plus
 * presets for the released sizes. Builders are plain functions over literals; file readers
 * (formats/*) turn their own metadata into this record.
 */
import { Llama2Error, describe } from '../util/errors.js';

export interface LlamaConfig {
  dim: number;
  n_layers: number;
  n_heads: number;
  /** key/value heads; equal to n_heads for multi-head attention */
  n_kv_heads: number;
  vocab_size: number;
  multiple_of: number;
  ffn_dim_multiplier: number | null;
  norm_eps: number;
  rope_theta: number;
  max_seq_len: number;
  /**
   * FFN hidden size when a file states it outright (HF intermediate_size, GGUF
   * feed_forward_length, llama2.c hidden_dim). null: derive it with Meta's rule.
   */
  hidden_dim: number | null;
}

/** Meta's FFN size rule (llama/model.py FeedForward). 7B → 11008, 13B → 13824, 70B → 28672. */
export function ffnHiddenDimRule(dim: number, multiple_of: number, ffn_dim_multiplier: number | null): number {
  let hidden = Math.trunc((2 * (4 * dim)) / 3);
  if (ffn_dim_multiplier !== null) hidden = Math.trunc(ffn_dim_multiplier * hidden);
  return multiple_of * Math.trunc((hidden + multiple_of - 1) / multiple_of);
}

export function ffnHiddenDim(c: LlamaConfig): number {
  return c.hidden_dim ?? ffnHiddenDimRule(c.dim, c.multiple_of, c.ffn_dim_multiplier);
}

export function headDim(c: LlamaConfig): number {
  return c.dim / c.n_heads;
}

export function makeConfig(p: Partial<LlamaConfig> & Pick<LlamaConfig, 'dim' | 'n_layers' | 'n_heads' | 'vocab_size'>): LlamaConfig {
  const c: LlamaConfig = {
    n_kv_heads: p.n_heads,
    multiple_of: 256,
    ffn_dim_multiplier: null,
    norm_eps: 1e-5,
    rope_theta: 10000,
    max_seq_len: 4096,
    hidden_dim: null,
    ...p,
  };
  validateConfig(c, 'config');
  return c;
}

/** Checks the invariants the model code relies on; `where` names the source in errors. */
export function validateConfig(c: LlamaConfig, where: string): void {
  const posInt = (k: keyof LlamaConfig) => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new Llama2Error(`${where}: field "${k}" must be a positive integer, found ${describe(v)}`);
    }
  };
  (['dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'multiple_of', 'max_seq_len'] as const).forEach(posInt);
  if (c.dim % c.n_heads !== 0) throw new Llama2Error(`${where}: dim ${c.dim} is not divisible by n_heads ${c.n_heads}`);
  if ((c.dim / c.n_heads) % 2 !== 0) throw new Llama2Error(`${where}: head size ${c.dim / c.n_heads} must be even for RoPE`);
  if (c.n_heads % c.n_kv_heads !== 0) {
    throw new Llama2Error(`${where}: n_heads ${c.n_heads} is not a multiple of n_kv_heads ${c.n_kv_heads}`);
  }
  const posFinite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (!posFinite(c.norm_eps)) throw new Llama2Error(`${where}: field "norm_eps" must be > 0 and finite, found ${describe(c.norm_eps)}`);
  if (!posFinite(c.rope_theta)) throw new Llama2Error(`${where}: field "rope_theta" must be > 0 and finite, found ${describe(c.rope_theta)}`);
  if (c.ffn_dim_multiplier !== null && !posFinite(c.ffn_dim_multiplier)) {
    throw new Llama2Error(`${where}: field "ffn_dim_multiplier" must be > 0 and finite, or null, found ${describe(c.ffn_dim_multiplier)}`);
  }
  if (c.hidden_dim !== null && !(Number.isInteger(c.hidden_dim) && c.hidden_dim > 0)) {
    throw new Llama2Error(`${where}: field "hidden_dim" must be a positive integer or null, found ${describe(c.hidden_dim)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// presets (released models and llama2.c shapes)

export const PRESETS: Readonly<Record<string, () => LlamaConfig>> = {
  'llama2-7b': () => makeConfig({ dim: 4096, n_layers: 32, n_heads: 32, vocab_size: 32000 }),
  'llama2-7b-chat': () => makeConfig({ dim: 4096, n_layers: 32, n_heads: 32, vocab_size: 32000 }),
  'llama2-13b': () => makeConfig({ dim: 5120, n_layers: 40, n_heads: 40, vocab_size: 32000 }),
  'llama2-13b-chat': () => makeConfig({ dim: 5120, n_layers: 40, n_heads: 40, vocab_size: 32000 }),
  'llama2-70b': () =>
    makeConfig({ dim: 8192, n_layers: 80, n_heads: 64, n_kv_heads: 8, vocab_size: 32000, multiple_of: 4096, ffn_dim_multiplier: 1.3 }),
  'llama2-70b-chat': () =>
    makeConfig({ dim: 8192, n_layers: 80, n_heads: 64, n_kv_heads: 8, vocab_size: 32000, multiple_of: 4096, ffn_dim_multiplier: 1.3 }),
  // TinyLlama-1.1B: intermediate_size 5632 stated in its config.json, context 2048
  'tinyllama-1.1b': () =>
    makeConfig({ dim: 2048, n_layers: 22, n_heads: 32, n_kv_heads: 4, vocab_size: 32000, max_seq_len: 2048, hidden_dim: 5632 }),
  // llama2.c TinyStories models (multiple_of 32; stories260K uses a 512-token vocabulary)
  'stories260k': () =>
    makeConfig({ dim: 64, n_layers: 5, n_heads: 8, n_kv_heads: 4, vocab_size: 512, multiple_of: 4, max_seq_len: 512 }),
  'stories15m': () => makeConfig({ dim: 288, n_layers: 6, n_heads: 6, vocab_size: 32000, multiple_of: 32, max_seq_len: 256 }),
  'stories42m': () => makeConfig({ dim: 512, n_layers: 8, n_heads: 8, vocab_size: 32000, multiple_of: 32, max_seq_len: 1024 }),
  'stories110m': () => makeConfig({ dim: 768, n_layers: 12, n_heads: 12, vocab_size: 32000, multiple_of: 32, max_seq_len: 1024 }),
};

export function preset(name: string): LlamaConfig {
  const f = PRESETS[name.toLowerCase()];
  if (!f) throw new Llama2Error(`unknown model preset "${name}"; expected one of: ${Object.keys(PRESETS).join(', ')}`);
  return f();
}

/** Parameter count (embedding + blocks + final norm + output; `tied` when output shares the embedding). */
export function paramCount(c: LlamaConfig, tied = false): number {
  const hs = headDim(c);
  const h = ffnHiddenDim(c);
  const perLayer = 2 * c.dim + c.dim * c.dim * 2 + 2 * c.dim * c.n_kv_heads * hs + 3 * c.dim * h;
  return c.vocab_size * c.dim * (tied ? 1 : 2) + c.n_layers * perLayer + c.dim;
}

/**
 * Refuses a config whose weights cannot fit in the `bytes` of the file(s) that claim to hold them,
 * at `minBytesPerWeight` (the smallest type the format stores: 2 for F16/BF16 files, 1 for int8,
 * GGUF_MIN_BYTES_PER_WEIGHT for GGUF). Readers call it before anything is sized or looped over by
 * the config, so a corrupt count (2³³ layers) is a clean error, not a loop over billions of
 * layers or an allocation the file could never fill.
 *
 * `absurdOnly`: for formats that name their tensors (GGUF, safetensors, torch.save), refuse only
 * configs far beyond the file (64× its bytes + 64 MiB): a plausible mismatch — a missing shard, a
 * missing or misnamed tensor — then reaches the per-tensor checks, whose messages say which.
 */
export function checkConfigFits(c: LlamaConfig, bytes: number, minBytesPerWeight: number, where: string, absurdOnly = false): void {
  const need = paramCount(c, true) * minBytesPerWeight;
  const limit = absurdOnly ? bytes * 64 + 64 * 2 ** 20 : bytes;
  if (!(need <= limit)) {
    throw new Llama2Error(
      `${where}: the config (dim ${c.dim}, ${c.n_layers} layers, FFN ${ffnHiddenDim(c)}, vocab ${c.vocab_size}) describes ` +
        `${paramCount(c, true).toExponential(3)} weights, which cannot fit in ${bytes} bytes of weights (corrupt or mismatched config?)`,
    );
  }
}

/** GGUF's smallest weight type, Q2_K, stores 2.625 bits per weight; this bound is a little below. */
export const GGUF_MIN_BYTES_PER_WEIGHT = 0.25;

/** Bytes of KV cache (float32) for `seqLen` positions of one sequence. */
export function kvCacheBytes(c: LlamaConfig, seqLen: number): number {
  return 2 * c.n_layers * seqLen * c.n_kv_heads * headDim(c) * 4;
}
