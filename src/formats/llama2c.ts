/**
 * llama2.c model files (karpathy/llama2.c export.py), all little-endian:
 *
 * v0 (legacy, run.c): 7 × int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 *   vocab_size, seq_len), vocab_size < 0 meaning "unshared classifier"; then float32
 *   tok_embeddings (V, C); per kind, all layers: rms_att (L, C), wq (L, NH*HS, C), wk, wv
 *   (L, NKV*HS, C), wo (L, C, NH*HS), rms_ffn (L, C), w1 (L, H, C), w2 (L, C, H), w3 (L, H, C);
 *   rms_final (C); legacy freq_cis_real and freq_cis_imag (seq_len, HS/2) each; wcls (V, C) when
 *   not shared.
 * v1: uint32 magic 0x616b3432 ("ak42"), int32 version 1, the same 7 ints (vocab positive), a
 *   shared_classifier byte, zeros up to 256 bytes; float32 rms_att, rms_ffn, rms_final,
 *   tok_embeddings, wq, wk, wv, wo, w1, w2, w3, [wcls].
 * v2: as v1 plus int32 group_size after the flag byte; float32 norms as in v1, then int8 values
 *   of tok_embeddings, wq … w3, [wcls] (symmetric Q8_0 in groups of group_size), then the float32
 *   scales of each in the same order. v2 is dequantized to F32 on load (value = q * scale, as
 *   runq.c computes it).
 *
 * Weights are in Meta's layout (interleaved RoPE pairs), no permutation. llama2.c fixes
 * norm_eps 1e-5 and rope_theta 10000. The tokenizer is tokenizer.bin beside the model.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Llama2Error } from '../util/errors.js';
import { FileReader, writeFileAtomic } from '../util/fs.js';
import { toFloat32, type WeightTensor } from '../tensor.js';
import { checkConfigFits, ffnHiddenDim, headDim, validateConfig, type LlamaConfig } from '../model/config.js';
import { assembleWeights, metaKey, type ModelWeights } from '../model/weights.js';
import type { LoadedModel } from './types.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { readLlama2cTokenizer } from '../tokenizer/load.js';

const MAGIC = 0x616b3432; // "ak42" read as a little-endian uint32
const HEADER_V1 = 256;
const NORM_EPS = 1e-5;
const ROPE_THETA = 10000;

export type Llama2cVersion = 0 | 1 | 2;

interface Header {
  version: Llama2cVersion;
  config: LlamaConfig;
  shared: boolean;
  groupSize: number;
  dataStart: number;
}

function readHeader(f: FileReader, where: string): Header {
  const head = f.read(0, Math.min(f.size, 48), 'header');
  if (head.length < 28) throw new Llama2Error(`${where}: file is truncated: the header needs 28 bytes but the file has ${f.size}`);
  const dv = new DataView(head.buffer);
  let version: Llama2cVersion = 0;
  let p = 0;
  if (dv.getUint32(0, true) === MAGIC) {
    const v = dv.getInt32(4, true);
    if (v !== 1 && v !== 2) throw new Llama2Error(`${where}: llama2.c file version ${v}; expected 0, 1 or 2`);
    if (f.size < HEADER_V1) throw new Llama2Error(`${where}: file is truncated: the version ${v} header needs ${HEADER_V1} bytes but the file has ${f.size}`);
    version = v;
    p = 8;
  }
  const ints = Array.from({ length: 7 }, (_, i) => dv.getInt32(p + 4 * i, true));
  const [dim, hidden, nLayers, nHeads, nKv, vocabRaw, seqLen] = ints as [number, number, number, number, number, number, number];
  let shared = vocabRaw > 0;
  let groupSize = 0;
  if (version > 0) {
    shared = head[p + 28] === 1;
    if (version === 2) groupSize = dv.getInt32(p + 29, true);
  }
  const bad = ints.findIndex((v, i) => (i === 5 ? v === 0 : v <= 0) || Math.abs(v) > 1 << 24);
  if (bad >= 0) {
    const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
    throw new Llama2Error(`${where}: header field ${names[bad]} is ${ints[bad]}; this is not a llama2.c model file (header [${ints.join(', ')}])`);
  }
  const config: LlamaConfig = {
    dim, n_layers: nLayers, n_heads: nHeads, n_kv_heads: nKv, vocab_size: Math.abs(vocabRaw),
    multiple_of: 256, ffn_dim_multiplier: null, norm_eps: NORM_EPS, rope_theta: ROPE_THETA, max_seq_len: seqLen, hidden_dim: hidden,
  };
  validateConfig(config, where);
  checkConfigFits(config, f.size, version === 2 ? 1 : 4, where); // before layout() lists every layer
  if (version === 2 && !(groupSize > 0 && dim % groupSize === 0)) {
    throw new Llama2Error(`${where}: version 2 group_size ${groupSize} must be positive and divide dim ${dim}`);
  }
  return { version, config, shared, groupSize, dataStart: version === 0 ? 28 : HEADER_V1 };
}

/** (Meta name, shape) in file order for the float32 part of v0/v1, or the quantized part of v2. */
function layout(h: Header): { floats: [string, number[]][]; quant: [string, number[]][] } {
  const c = h.config;
  const C = c.dim, H = ffnHiddenDim(c), V = c.vocab_size, HS = headDim(c);
  const L = Array.from({ length: c.n_layers }, (_, l) => l);
  const shapes: Record<string, number[]> = {
    attention_norm: [C], ffn_norm: [C], wq: [c.n_heads * HS, C], wk: [c.n_kv_heads * HS, C], wv: [c.n_kv_heads * HS, C],
    wo: [C, c.n_heads * HS], w1: [H, C], w2: [C, H], w3: [H, C],
  };
  const per = (k: string): [string, number[]][] => L.map((l) => [metaKey(l, k as 'wq'), shapes[k]!]);
  const mats = ['wq', 'wk', 'wv', 'wo'].flatMap(per);
  const ffn = ['w1', 'w2', 'w3'].flatMap(per);
  const tok: [string, number[]] = ['tok_embeddings.weight', [V, C]];
  const norm: [string, number[]] = ['norm.weight', [C]];
  const cls: [string, number[]][] = h.shared ? [] : [['output.weight', [V, C]]];
  if (h.version === 0) {
    const freqs: [string, number[]][] = [['freq_cis_real', [c.max_seq_len, HS / 2]], ['freq_cis_imag', [c.max_seq_len, HS / 2]]];
    return {
      floats: [tok, ...per('attention_norm'), ...mats, ...per('ffn_norm'), ...ffn, norm, ...freqs, ...cls],
      quant: [],
    };
  }
  const norms = [...per('attention_norm'), ...per('ffn_norm'), norm];
  if (h.version === 1) return { floats: [...norms, tok, ...mats, ...ffn, ...cls], quant: [] };
  return { floats: norms, quant: [tok, ...mats, ...ffn, ...cls] };
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Reads a llama2.c .bin (v0, v1 or v2) and its tokenizer.bin (beside it, or `tokenizerPath`). */
export function readLlama2c(path: string, tokenizerPath?: string): LoadedModel {
  const where = `llama2.c ${path}`;
  const f = new FileReader(path, where);
  try {
    const h = readHeader(f, where);
    const { floats, quant } = layout(h);
    const qValues = quant.reduce((s, [, sh]) => s + count(sh), 0);
    const need = h.dataStart + floats.reduce((s, [, sh]) => s + 4 * count(sh), 0) + qValues + (h.groupSize ? (qValues / h.groupSize) * 4 : 0);
    const c = h.config;
    const desc = `(v${h.version}: dim ${c.dim}, hidden ${c.hidden_dim}, ${c.n_layers} layers, ${c.n_heads}/${c.n_kv_heads} heads, vocab ${c.vocab_size}, seq ${c.max_seq_len}, ${h.shared ? 'shared' : 'separate'} classifier)`;
    if (f.size < need) throw new Llama2Error(`${where}: file is truncated: the header ${desc} needs ${need} bytes but the file has ${f.size}`);
    if (f.size > need) throw new Llama2Error(`${where}: file has ${f.size - need} bytes more than the header ${desc} accounts for; not a llama2.c file or a different version`);

    const tensors = new Map<string, WeightTensor>();
    let off = h.dataStart;
    for (const [name, shape] of floats) {
      const n = count(shape);
      if (!name.startsWith('freq_cis')) tensors.set(name, { dtype: 'F32', shape, data: f.read(off, 4 * n, name) });
      off += 4 * n;
    }
    // v2: all int8 values, then all float32 scales, both in `quant` order
    let scaleOff = off + qValues;
    for (const [name, shape] of quant) {
      const n = count(shape);
      const q = new Int8Array(f.read(off, n, name).buffer);
      const s = new Float32Array(f.read(scaleOff, (n / h.groupSize) * 4, `${name} scales`).buffer);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = q[i]! * s[Math.floor(i / h.groupSize)]!;
      tensors.set(name, { dtype: 'F32', shape, data: new Uint8Array(out.buffer) });
      off += n;
      scaleOff += (n / h.groupSize) * 4;
    }
    const weights = assembleWeights(c, (n) => tensors.get(n), where);

    const tokPath = tokenizerPath ?? join(dirname(path), 'tokenizer.bin');
    let vocab: SpmVocab | null = null;
    if (tokenizerPath !== undefined || existsSync(tokPath)) vocab = readLlama2cTokenizer(tokPath, c.vocab_size);
    return {
      format: 'llama2c',
      path,
      config: c,
      weights,
      vocab,
      vocabSource: vocab ? tokPath : null,
      info: { version: h.version, sharedClassifier: h.shared, ...(h.version === 2 ? { groupSize: h.groupSize, dtype: 'Q8_0 (dequantized to F32)' } : { dtype: 'F32' }) },
    };
  } finally {
    f.close();
  }
}

// ---------------------------------------------------------------------------------------------
// writing (float32 only: v0 or v1)

export interface Llama2cWriteOptions {
  /** 0 (legacy, what run.c reads; the default) or 1 */
  version?: 0 | 1;
}

function f32Bytes(t: WeightTensor): Uint8Array {
  const f = toFloat32(t);
  return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
}

/** Meta's precompute_freqs_cis for positions 0..T-1, as llama2.c v0 files carry them (cos, sin). */
function freqCis(c: LlamaConfig): [Float32Array, Float32Array] {
  const hs = headDim(c);
  const cos = new Float32Array(c.max_seq_len * (hs / 2)); // (T, HS/2)
  const sin = new Float32Array(c.max_seq_len * (hs / 2)); // (T, HS/2)
  for (let i = 0; i < hs / 2; i++) {
    const freq = Math.fround(1 / Math.fround(c.rope_theta ** Math.fround((2 * i) / hs)));
    for (let t = 0; t < c.max_seq_len; t++) {
      const a = Math.fround(t * freq);
      cos[t * (hs / 2) + i] = Math.cos(a);
      sin[t * (hs / 2) + i] = Math.sin(a);
    }
  }
  return [cos, sin];
}

/** Writes a float32 llama2.c file; the classifier is shared when output is the embedding tensor. */
export function writeLlama2c(path: string, config: LlamaConfig, weights: ModelWeights, opts: Llama2cWriteOptions = {}): void {
  const version = opts.version ?? 0;
  const where = `llama2.c export ${path}`;
  if (config.norm_eps !== NORM_EPS || config.rope_theta !== ROPE_THETA) {
    throw new Llama2Error(`${where}: llama2.c fixes norm_eps ${NORM_EPS} and rope_theta ${ROPE_THETA}; this model has ${config.norm_eps} and ${config.rope_theta}`);
  }
  const heads = Object.keys(weights.heads ?? {});
  if (heads.length > 0) {
    throw new Llama2Error(`${where}: the model carries the head${heads.length > 1 ? 's' : ''} ${heads.join(', ')}, which a llama2.c file has no place for; export to HF, Meta or GGUF instead`);
  }
  const shared = weights.output === weights.tok_embeddings;
  const h: Header = { version, config, shared, groupSize: 0, dataStart: version === 0 ? 28 : HEADER_V1 };
  const header = new Uint8Array(h.dataStart);
  const dv = new DataView(header.buffer);
  let p = 0;
  if (version === 1) {
    dv.setUint32(0, MAGIC, true);
    dv.setInt32(4, 1, true);
    p = 8;
  }
  const vocab = version === 0 && !shared ? -config.vocab_size : config.vocab_size;
  [config.dim, ffnHiddenDim(config), config.n_layers, config.n_heads, config.n_kv_heads, vocab, config.max_seq_len]
    .forEach((v, i) => dv.setInt32(p + 4 * i, v, true));
  if (version === 1) header[p + 28] = shared ? 1 : 0;

  const byName = new Map<string, WeightTensor>([['tok_embeddings.weight', weights.tok_embeddings], ['norm.weight', weights.norm], ['output.weight', weights.output]]);
  weights.layers.forEach((lw, l) => {
    for (const k of ['attention_norm', 'wq', 'wk', 'wv', 'wo', 'ffn_norm', 'w1', 'w2', 'w3'] as const) byName.set(metaKey(l, k), lw[k]);
  });
  const [cos, sin] = freqCis(config);
  const chunks: Uint8Array[] = [header];
  for (const [name] of layout(h).floats) {
    if (name === 'freq_cis_real') chunks.push(new Uint8Array(cos.buffer));
    else if (name === 'freq_cis_imag') chunks.push(new Uint8Array(sin.buffer));
    else chunks.push(f32Bytes(byName.get(name)!));
  }
  writeFileAtomic(path, chunks);
}
