/**
 * Writing GGUF version 3 files (little-endian, alignment 32 unless `general.alignment` says
 * otherwise): a generic `writeGguf` for any metadata and tensors, and `writeGgufModel` that
 * writes a Llama-2 model with llama.cpp's tensor names and metadata keys (the ones
 * gguf.ts reads back), optionally converting the weights to another dtype on the way.
 *
 * The header is built in memory; tensor data is streamed one tensor at a time into a temp file
 * that is renamed over `path` at the end, so a converted 7B model is never held in memory twice
 * and readers never see half a file. Reading is in gguf.ts; block encoders in quants.ts.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { DTYPE_LAYOUT, byteSize, numel, toFloat32, type DType, type WeightTensor } from '../tensor.js';
import { Llama2Error, describe } from '../util/errors.js';
import { ffnHiddenDim, headDim, type LlamaConfig } from '../model/config.js';
import { HEADS, checkHead, expectedShapes, namedHeads, namedWeights, type ModelWeights } from '../model/weights.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { quantizeTensor } from './quants.js';
import { f32Bytes } from './safetensors.js';
import { GGML_TYPE_ID, GGUF_VALUE_TYPES, ggufName, gv, type GgufArray, type GgufValue, type GgufValueType } from './gguf.js';

/** A tensor whose bytes are produced only when the writer reaches it (conversion on the fly). */
export interface PendingTensor {
  dtype: DType;
  shape: readonly number[];
  load(): Uint8Array;
}

export interface GgufTensorOut {
  name: string;
  tensor: WeightTensor | PendingTensor;
}

export interface GgufContents {
  metadata: [string, GgufValue][];
  tensors: GgufTensorOut[];
}

// ---------------------------------------------------------------------------------------------
// header encoding

const INT_RANGE: Partial<Record<GgufValueType, [number, number, number]>> = {
  // [min, max, bytes]
  u8: [0, 0xff, 1], i8: [-0x80, 0x7f, 1], u16: [0, 0xffff, 2], i16: [-0x8000, 0x7fff, 2],
  u32: [0, 0xffffffff, 4], i32: [-0x80000000, 0x7fffffff, 4],
};

/** Growable little-endian byte buffer for the header. */
class Bytes {
  buf = new Uint8Array(1 << 16);
  dv = new DataView(this.buf.buffer);
  len = 0;
  private readonly enc = new TextEncoder();
  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.dv = new DataView(next.buffer);
    }
    const at = this.len;
    this.len += n;
    return at;
  }
  // room() may reallocate, so it runs before this.buf / this.dv are read
  raw(b: Uint8Array): void {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  u32(v: number): void {
    const at = this.room(4);
    this.dv.setUint32(at, v, true);
  }
  u64(v: number | bigint): void {
    const at = this.room(8);
    this.dv.setBigUint64(at, BigInt(v), true);
  }
  string(s: string): void {
    const b = this.enc.encode(s);
    this.u64(b.length);
    this.raw(b);
  }
  pad(alignment: number): void {
    this.room((alignment - (this.len % alignment)) % alignment); // fresh bytes are zero
  }
  /** one scalar of type t; `field` names it in errors */
  scalar(t: GgufValueType, v: unknown, field: string): void {
    const bad = () => new Llama2Error(`GGUF writer: ${field} must be a ${t}, got ${describe(v)}`);
    const r = INT_RANGE[t];
    if (r) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < r[0] || v > r[1]) throw bad();
      const at = this.room(r[2]);
      if (t === 'u8') this.dv.setUint8(at, v);
      else if (t === 'i8') this.dv.setInt8(at, v);
      else if (t === 'u16') this.dv.setUint16(at, v, true);
      else if (t === 'i16') this.dv.setInt16(at, v, true);
      else if (t === 'u32') this.dv.setUint32(at, v, true);
      else this.dv.setInt32(at, v, true);
      return;
    }
    switch (t) {
      case 'f32': case 'f64':
        if (typeof v !== 'number') throw bad();
        if (t === 'f32') {
          const at = this.room(4);
          this.dv.setFloat32(at, v, true);
        } else {
          const at = this.room(8);
          this.dv.setFloat64(at, v, true);
        }
        return;
      case 'u64': case 'i64': {
        if (typeof v !== 'bigint') throw bad();
        const ok = t === 'u64' ? v >= 0n && v < 1n << 64n : v >= -(1n << 63n) && v < 1n << 63n;
        if (!ok) throw bad();
        const at = this.room(8);
        if (t === 'u64') this.dv.setBigUint64(at, v, true);
        else this.dv.setBigInt64(at, v, true);
        return;
      }
      case 'bool':
        if (typeof v !== 'boolean') throw bad();
        this.raw(new Uint8Array([v ? 1 : 0]));
        return;
      case 'string':
        if (typeof v !== 'string') throw bad();
        this.string(v);
        return;
      default:
        throw bad();
    }
  }
  value(v: GgufValue, field: string): void {
    if (v.type !== 'array') {
      this.scalar(v.type, v.value, field);
      return;
    }
    const a = v as GgufArray;
    this.u32(GGUF_VALUE_TYPES.indexOf(a.itemType));
    this.u64(a.value.length);
    for (let i = 0; i < a.value.length; i++) {
      const item = a.value[i];
      if (a.itemType === 'array') this.value(item as GgufArray, `${field}[${i}]`);
      else this.scalar(a.itemType, item, `${field}[${i}]`);
    }
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off);
}

/**
 * Writes a GGUF v3 file atomically. Metadata keys must be unique; tensors are laid out in the
 * order given, each aligned. PendingTensor data is produced (and dropped) one tensor at a time.
 */
export function writeGguf(path: string, contents: GgufContents): void {
  const keys = new Set<string>();
  let alignment = 32;
  for (const [k, v] of contents.metadata) {
    if (keys.has(k)) throw new Llama2Error(`GGUF writer: metadata "${k}" given twice`);
    keys.add(k);
    if (k === 'general.alignment') {
      if (v.type !== 'u32' || !(v.value > 0 && (v.value & (v.value - 1)) === 0)) {
        throw new Llama2Error(`GGUF writer: metadata "general.alignment" must be a u32 power of two, got ${v.type} ${describe(v.value)}`);
      }
      alignment = v.value;
    }
  }
  const h = new Bytes();
  h.raw(new Uint8Array([0x47, 0x47, 0x55, 0x46])); // "GGUF"
  h.u32(3);
  h.u64(contents.tensors.length);
  h.u64(contents.metadata.length);
  for (const [k, v] of contents.metadata) {
    h.string(k);
    h.u32(GGUF_VALUE_TYPES.indexOf(v.type));
    h.value(v, `metadata "${k}"`);
  }
  const names = new Set<string>();
  const sizes: number[] = [];
  let offset = 0;
  for (const { name, tensor: t } of contents.tensors) {
    if (names.has(name)) throw new Llama2Error(`GGUF writer: tensor "${name}" given twice`);
    names.add(name);
    if (t.shape.length < 1 || t.shape.length > 4) throw new Llama2Error(`GGUF writer: tensor "${name}" has ${t.shape.length} dims; GGUF allows 1..4`);
    const nbytes = byteSize(t.dtype, numel(t.shape));
    const cols = t.shape[t.shape.length - 1]!;
    if (cols % DTYPE_LAYOUT[t.dtype].blockSize !== 0) {
      throw new Llama2Error(`GGUF writer: tensor "${name}" rows of ${cols} values are not whole ${t.dtype} blocks`);
    }
    h.string(name);
    h.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) h.u64(t.shape[d]!); // ne0 = last (contiguous) dim
    h.u32(GGML_TYPE_ID[t.dtype]);
    h.u64(offset);
    sizes.push(nbytes);
    offset += Math.ceil(nbytes / alignment) * alignment;
  }
  h.pad(alignment);

  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new Llama2Error(`GGUF writer: cannot create ${tmp} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    writeAll(fd, h.buf.subarray(0, h.len));
    const zeros = new Uint8Array(alignment);
    contents.tensors.forEach(({ name, tensor: t }, i) => {
      const data = 'load' in t ? t.load() : t.data;
      if (data.length !== sizes[i]) {
        throw new Llama2Error(`GGUF writer: tensor "${name}" ${t.dtype}[${t.shape.join(', ')}] needs ${sizes[i]} bytes, got ${data.length}`);
      }
      writeAll(fd, data);
      writeAll(fd, zeros.subarray(0, (alignment - (data.length % alignment)) % alignment));
    });
    fsyncSync(fd);
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  renameSync(tmp, path);
}

// ---------------------------------------------------------------------------------------------
// Llama-2 models

/** general.file_type written for a model whose matrices are all `dtype` (llama_ftype; K types: the _S/_M "mostly" kind). */
const FILE_TYPE: Readonly<Record<DType, number>> = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10, Q3_K: 11, Q4_K: 14, Q5_K: 16, Q6_K: 18, BF16: 32,
};

/**
 * Type used for a matrix with rows of `cols` values when `want` does not fit them (llama.cpp's
 * fallbacks: K-quants need rows of whole 256-value super-blocks).
 */
export function fallbackDType(want: DType, cols: number): DType {
  if (cols % DTYPE_LAYOUT[want].blockSize === 0) return want;
  const alt: Partial<Record<DType, DType>> = { Q2_K: 'Q4_0', Q3_K: 'Q4_0', Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' };
  const a = alt[want];
  return a && cols % DTYPE_LAYOUT[a].blockSize === 0 ? a : 'F16';
}

export interface WriteGgufModelOptions {
  /** general.name (default "llama") */
  name?: string;
  /**
   * Store every 2-D weight as this dtype (converted through float32). Norms are always F32. A
   * matrix whose rows are not whole blocks of it falls back like llama.cpp: Q2_K/Q3_K → Q4_0,
   * Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and F16 when even 32-value blocks do not fit.
   * Unset: every weight keeps its dtype.
   */
  dtype?: DType;
  /**
   * Write the model's extra heads (model/weights.ts HEADS: score.weight as cls.output.weight, …) as
   * F32 tensors. Default true. llama.cpp refuses a "llama" file with tensors it does not use, so
   * pass false for a file meant for llama.cpp / Ollama.
   */
  heads?: boolean;
  /** tokenizer.chat_template (a Jinja chat template, as llama.cpp and Ollama read it); written only with a vocabulary */
  chatTemplate?: string;
}

/**
 * Writes a Llama-2 model as a llama.cpp-compatible GGUF v3 file (names blk.N.attn_q.weight ...,
 * keys llama.* and tokenizer.ggml.*). A tied output (weights.output === weights.tok_embeddings)
 * is written once, as token_embd.weight. Returns the dtype count of the written tensors.
 */
export function writeGgufModel(
  path: string, config: LlamaConfig, weights: ModelWeights, vocab: SpmVocab | null, opts: WriteGgufModelOptions = {},
): Map<DType, number> {
  const shapes = expectedShapes(config);
  if (weights.layers.length !== config.n_layers) {
    throw new Llama2Error(`GGUF writer: the weights have ${weights.layers.length} layers but config.n_layers is ${config.n_layers}`);
  }
  if (vocab && vocab.pieces.length !== config.vocab_size) {
    throw new Llama2Error(`GGUF writer: the vocabulary has ${vocab.pieces.length} pieces but config.vocab_size is ${config.vocab_size}`);
  }
  const tensors: GgufTensorOut[] = [];
  const counts = new Map<DType, number>();
  const matrixCounts = new Map<DType, number>();
  for (const [meta, t] of namedWeights(weights)) {
    const want = shapes.get(meta);
    if (!want || want.length !== t.shape.length || want.some((d, i) => d !== t.shape[i])) {
      throw new Llama2Error(`GGUF writer: weight "${meta}" has shape [${t.shape.join(', ')}] but the config expects [${want?.join(', ')}]`);
    }
    const target = t.shape.length === 1 ? 'F32' : fallbackDType(opts.dtype ?? t.dtype, t.shape[t.shape.length - 1]!);
    counts.set(target, (counts.get(target) ?? 0) + 1);
    if (t.shape.length === 2) matrixCounts.set(target, (matrixCounts.get(target) ?? 0) + 1);
    const tensor: WeightTensor | PendingTensor = target === t.dtype
      ? t
      : { dtype: target, shape: t.shape, load: () => quantizeTensor(target, toFloat32(t), t.shape).data };
    tensors.push({ name: ggufName(meta), tensor });
  }
  if (opts.heads !== false) {
    for (const [name, h] of namedHeads(weights)) {
      checkHead(config, name, h, 'GGUF writer');
      counts.set('F32', (counts.get('F32') ?? 0) + 1);
      tensors.push({ name: HEADS[name]!.gguf, tensor: h.dtype === 'F32' ? h : { dtype: 'F32', shape: h.shape, load: () => f32Bytes(toFloat32(h)) } });
    }
  }

  const quantized = [...counts.keys()].some((d) => DTYPE_LAYOUT[d].blockSize > 1);
  const mainType = opts.dtype ?? [...matrixCounts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'F32';
  const md: [string, GgufValue][] = [
    ['general.architecture', gv.string('llama')],
    ['general.name', gv.string(opts.name ?? 'llama')],
    ['llama.context_length', gv.u32(config.max_seq_len)],
    ['llama.embedding_length', gv.u32(config.dim)],
    ['llama.block_count', gv.u32(config.n_layers)],
    ['llama.feed_forward_length', gv.u32(ffnHiddenDim(config))],
    ['llama.rope.dimension_count', gv.u32(headDim(config))],
    ['llama.attention.head_count', gv.u32(config.n_heads)],
    ['llama.attention.head_count_kv', gv.u32(config.n_kv_heads)],
    ['llama.attention.layer_norm_rms_epsilon', gv.f32(config.norm_eps)],
    ['llama.rope.freq_base', gv.f32(config.rope_theta)],
    ['llama.vocab_size', gv.u32(config.vocab_size)],
    ['general.file_type', gv.u32(FILE_TYPE[mainType])],
  ];
  if (quantized) md.push(['general.quantization_version', gv.u32(2)]);
  if (vocab) {
    md.push(
      ['tokenizer.ggml.model', gv.string('llama')],
      ['tokenizer.ggml.tokens', gv.array('string', vocab.pieces)],
      ['tokenizer.ggml.scores', gv.array('f32', vocab.scores)],
      ['tokenizer.ggml.token_type', gv.array('i32', Int32Array.from(vocab.types))],
    );
    // ids are u32 in llama.cpp; an absent id (-1) is left out (readers then use llama's defaults)
    const ids: [string, number][] = [['bos_token_id', vocab.bosId], ['eos_token_id', vocab.eosId], ['unknown_token_id', vocab.unkId], ['padding_token_id', vocab.padId]];
    for (const [k, id] of ids) if (id >= 0) md.push([`tokenizer.ggml.${k}`, gv.u32(id)]);
    md.push(
      ['tokenizer.ggml.add_bos_token', gv.bool(vocab.addBos)],
      ['tokenizer.ggml.add_eos_token', gv.bool(vocab.addEos)],
      ['tokenizer.ggml.add_space_prefix', gv.bool(vocab.addDummyPrefix)],
    );
    if (opts.chatTemplate !== undefined) md.push(['tokenizer.chat_template', gv.string(opts.chatTemplate)]);
  }
  writeGguf(path, { metadata: md, tensors });
  return counts;
}
