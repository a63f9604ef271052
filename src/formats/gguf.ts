/**
 * GGUF (llama.cpp's model file), versions 2 and 3: reading the container and turning a
 * Llama-2 ("llama" architecture) file into a LoadedModel.
 *
 * Layout (little-endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count; kv_count
 * metadata entries (string key, u32 value type, value); tensor_count tensor infos (string name,
 * u32 n_dims, u64 ne[n_dims] with ne0 the contiguous dim, u32 ggml type, u64 offset relative to
 * the data section); padding to `general.alignment` (default 32); the data section. Strings are a
 * u64 byte length plus UTF-8 bytes; arrays are a u32 item type, u64 count, then the items.
 *
 * Metadata is read eagerly. Tensor data is either a view into a memory mapping of the whole file
 * (readGgufModel with the native addon: no copy, nothing read until used, resident memory ≈ the
 * pages touched) or read lazily, one positioned read per tensor, so a model is never held twice
 * (peak memory ≈ file size). Tensor shapes come out in PyTorch order (ne reversed). Writing lives
 * in gguf-writer.ts; block decoding in quants.ts.
 */
import { DTYPE_LAYOUT, type DType, type WeightTensor } from '../tensor.js';
import { FileReader } from '../util/fs.js';
import { Llama2Error, describe, quote } from '../util/errors.js';
import { GGUF_MIN_BYTES_PER_WEIGHT, checkConfigFits, headDim, validateConfig, type LlamaConfig } from '../model/config.js';
import { assembleWeights, checkHead, expectedShapes, headFromGguf, LAYER_KEYS, metaKey, type LayerKey } from '../model/weights.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import type { LoadedModel } from './types.js';
import { mapRanges, useMmap } from './mmap.js';

// ---------------------------------------------------------------------------------------------
// metadata values

/** Metadata value types, index = the GGUF type id. */
export const GGUF_VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
export type GgufNumType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64';
export type GgufBigType = 'u64' | 'i64';

export type GgufArray =
  | { type: 'array'; itemType: GgufNumType; value: ArrayLike<number> }
  | { type: 'array'; itemType: GgufBigType; value: ArrayLike<bigint> }
  | { type: 'array'; itemType: 'bool'; value: ArrayLike<boolean> }
  | { type: 'array'; itemType: 'string'; value: ArrayLike<string> }
  | { type: 'array'; itemType: 'array'; value: ArrayLike<GgufArray> };

/** A metadata value with its GGUF type (u64/i64 as bigint; numeric arrays as typed arrays when read). */
export type GgufValue =
  | { type: GgufNumType; value: number }
  | { type: GgufBigType; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GgufArray;

/** Shorthands for building typed metadata values: `gv.u32(288)`, `gv.array('f32', scores)`. */
export const gv = {
  u8: (value: number): GgufValue => ({ type: 'u8', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  f64: (value: number): GgufValue => ({ type: 'f64', value }),
  u64: (value: number | bigint): GgufValue => ({ type: 'u64', value: BigInt(value) }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  string: (value: string): GgufValue => ({ type: 'string', value }),
  array(itemType: GgufNumType | 'string' | 'bool', value: ArrayLike<number> | ArrayLike<string> | ArrayLike<boolean>): GgufValue {
    return { type: 'array', itemType, value } as GgufValue;
  },
};

// ---------------------------------------------------------------------------------------------
// ggml tensor types and file types

/** ggml type ids (ggml.h enum ggml_type) → names; ids with a DType are the ones we decode. */
export const GGML_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1',
  10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K',
  16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S',
  23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16',
  34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};
export const GGML_TYPE_ID: Readonly<Record<DType, number>> = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30,
};
const DTYPE_OF_ID = new Map<number, DType>(Object.entries(GGML_TYPE_ID).map(([k, v]) => [v, k as DType]));

/** llama.cpp's general.file_type values (enum llama_ftype) → names, for `info`. */
export const LLAMA_FILE_TYPES: Readonly<Record<number, string>> = {
  0: 'ALL_F32', 1: 'MOSTLY_F16', 2: 'MOSTLY_Q4_0', 3: 'MOSTLY_Q4_1', 7: 'MOSTLY_Q8_0', 8: 'MOSTLY_Q5_0',
  9: 'MOSTLY_Q5_1', 10: 'MOSTLY_Q2_K', 11: 'MOSTLY_Q3_K_S', 12: 'MOSTLY_Q3_K_M', 13: 'MOSTLY_Q3_K_L',
  14: 'MOSTLY_Q4_K_S', 15: 'MOSTLY_Q4_K_M', 16: 'MOSTLY_Q5_K_S', 17: 'MOSTLY_Q5_K_M', 18: 'MOSTLY_Q6_K', 32: 'MOSTLY_BF16',
};

// ---------------------------------------------------------------------------------------------
// tensor names: GGUF ↔ Meta

const LAYER_GGUF: Readonly<Record<LayerKey, string>> = {
  attention_norm: 'attn_norm', wq: 'attn_q', wk: 'attn_k', wv: 'attn_v', wo: 'attn_output',
  ffn_norm: 'ffn_norm', w1: 'ffn_gate', w2: 'ffn_down', w3: 'ffn_up',
};
const GLOBAL_GGUF: Readonly<Record<string, string>> = {
  'tok_embeddings.weight': 'token_embd.weight', 'norm.weight': 'output_norm.weight', 'output.weight': 'output.weight',
};

/** GGUF tensor name of a Meta key (`layers.3.attention.wq.weight` → `blk.3.attn_q.weight`). */
export function ggufName(metaName: string): string {
  const g = GLOBAL_GGUF[metaName];
  if (g) return g;
  const m = /^layers\.(\d+)\./.exec(metaName);
  if (m) {
    const layer = Number(m[1]);
    for (const k of LAYER_KEYS) if (metaKey(layer, k) === metaName) return `blk.${layer}.${LAYER_GGUF[k]}.weight`;
  }
  throw new Llama2Error(`no GGUF name for weight "${metaName}"`);
}

// ---------------------------------------------------------------------------------------------
// the container

export interface GgufTensorInfo {
  dtype: DType;
  /** PyTorch order (GGUF's ne reversed) */
  shape: number[];
  /** absolute file offset of the data */
  offset: number;
  nbytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  alignment: number;
  /** absolute file offset of the data section */
  dataOffset: number;
  /** bytes in the file */
  size: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
  /** reads one tensor's bytes from disk (a fresh buffer each call) */
  readTensor(name: string): WeightTensor;
  close(): void;
}

const CHUNK = 1 << 20;
const MAX_DIMS = 4;

/** Sequential reads over the header region, refilled in 1 MiB chunks; errors name the field. */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private dv = new DataView(this.buf.buffer);
  private start = 0;
  private readonly text = new TextDecoder('utf-8', { ignoreBOM: true }); // U+FEFF is a Llama-2 piece: keep it
  constructor(private readonly file: FileReader) {}

  /** Makes n bytes available at pos; returns their offset in buf and advances. */
  take(n: number, field: string): number {
    if (this.pos + n > this.start + this.buf.length) {
      if (this.pos + n > this.file.size) {
        throw new Llama2Error(
          `${this.file.what}: file is truncated: ${field} needs bytes ${this.pos}..${this.pos + n} but the file has ${this.file.size} bytes`,
        );
      }
      this.buf = this.file.read(this.pos, Math.min(Math.max(n, CHUNK), this.file.size - this.pos), field);
      this.dv = new DataView(this.buf.buffer);
      this.start = this.pos;
    }
    const off = this.pos - this.start;
    this.pos += n;
    return off;
  }
  u8(f: string): number { return this.buf[this.take(1, f)]!; }
  u32(f: string): number { return this.dv.getUint32(this.take(4, f), true); }
  bigU64(f: string): bigint { return this.dv.getBigUint64(this.take(8, f), true); }
  /** u64 that must fit a JS number (counts, lengths, offsets) */
  u64(f: string): number {
    const v = this.bigU64(f);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Llama2Error(`${this.file.what}: ${f} is ${v}, far beyond any sane size (corrupt file?)`);
    return Number(v);
  }
  /** a u64 count or length that cannot exceed the bytes left in the file */
  count(f: string, minItemBytes = 1): number {
    const n = this.u64(f);
    if (n * minItemBytes > this.file.size - this.pos) {
      throw new Llama2Error(`${this.file.what}: file is truncated or corrupt: ${f} is ${n} but only ${this.file.size - this.pos} bytes follow`);
    }
    return n;
  }
  string(f: string): string {
    const n = this.count(`${f} length`);
    const off = this.take(n, f);
    return this.text.decode(this.buf.subarray(off, off + n));
  }
  scalar(t: GgufValueType, f: string): number | bigint | boolean | string {
    switch (t) {
      case 'u8': return this.buf[this.take(1, f)]!;
      case 'i8': return this.dv.getInt8(this.take(1, f));
      case 'u16': return this.dv.getUint16(this.take(2, f), true);
      case 'i16': return this.dv.getInt16(this.take(2, f), true);
      case 'u32': return this.dv.getUint32(this.take(4, f), true);
      case 'i32': return this.dv.getInt32(this.take(4, f), true);
      case 'f32': return this.dv.getFloat32(this.take(4, f), true);
      case 'f64': return this.dv.getFloat64(this.take(8, f), true);
      case 'u64': return this.dv.getBigUint64(this.take(8, f), true);
      case 'i64': return this.dv.getBigInt64(this.take(8, f), true);
      case 'bool': {
        const b = this.buf[this.take(1, f)]!;
        if (b > 1) throw new Llama2Error(`${this.file.what}: ${f} is a bool holding ${b}; expected 0 or 1`);
        return b === 1;
      }
      case 'string': return this.string(f);
      case 'array': throw new Llama2Error(`${this.file.what}: ${f}: arrays are not scalars`);
    }
  }
  valueType(f: string): GgufValueType {
    const id = this.u32(`${f} type`);
    const t = GGUF_VALUE_TYPES[id];
    if (t === undefined) {
      throw new Llama2Error(`${this.file.what}: ${f} has value type ${id}; expected 0..12 (u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64)`);
    }
    return t;
  }
  value(t: GgufValueType, f: string): GgufValue {
    if (t !== 'array') return { type: t, value: this.scalar(t, f) } as GgufValue;
    const itemType = this.valueType(`${f} array item`);
    const n = this.count(`${f} array count`);
    const arr = ARRAY_CTORS[itemType as GgufNumType | GgufBigType];
    const out = arr ? new arr(n) : new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      (out as unknown[])[i] = itemType === 'array' ? this.value('array', `${f}[${i}]`) : this.scalar(itemType, `${f}[${i}]`);
    }
    return { type: 'array', itemType, value: out } as GgufValue;
  }
}

const ARRAY_CTORS: Partial<Record<GgufValueType, new (n: number) => ArrayLike<number> | ArrayLike<bigint>>> = {
  u8: Uint8Array, i8: Int8Array, u16: Uint16Array, i16: Int16Array, u32: Uint32Array, i32: Int32Array,
  f32: Float32Array, f64: Float64Array, u64: BigUint64Array, i64: BigInt64Array,
};

/** A few raw bytes for a message: quoted when they are printable ASCII, else in hex. */
function printable(b: Uint8Array): string {
  return b.every((c) => c >= 0x20 && c < 0x7f) ? quote(Buffer.from(b).toString('latin1')) : `bytes ${Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ')}`;
}

/** Opens a GGUF file: reads the header, metadata and tensor infos; tensor data stays on disk. */
export function openGguf(path: string): GgufFile {
  const what = `GGUF ${path}`;
  const file = new FileReader(path, what);
  try {
    const cur = new Cursor(file);
    const magic = file.read(0, Math.min(4, file.size), 'magic');
    if (magic.length < 4 || printable(magic) !== '"GGUF"') {
      const legacy = ['"lmgg"', '"fmgg"', '"tjgg"', '"ggml"', '"ggmf"', '"ggjt"'].includes(printable(magic));
      throw new Llama2Error(
        `${what}: expected magic "GGUF" but found ${magic.length < 4 ? `only ${magic.length} bytes` : printable(magic)}` +
          (legacy ? ' — this is a pre-GGUF (GGML/GGJT) llama.cpp file; convert it to GGUF with llama.cpp' : ''),
      );
    }
    cur.take(4, 'magic');
    const version = cur.u32('version');
    if (version === 1) {
      throw new Llama2Error(`${what}: GGUF version 1 is too old (it stores 32-bit counts); re-convert the model with a current llama.cpp to get version 3`);
    }
    if (version !== 2 && version !== 3) {
      const swapped = (((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24)) >>> 0;
      const hint = swapped === 2 || swapped === 3 ? ' (a big-endian GGUF file; only little-endian files are supported)' : '';
      throw new Llama2Error(`${what}: GGUF version ${version} is not supported; expected 2 or 3${hint}`);
    }
    const nTensors = cur.count('tensor_count', 24);
    const nKv = cur.count('kv_count', 13);

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = cur.string(`metadata key #${i}`);
      const field = `metadata ${quote(key)}`;
      if (metadata.has(key)) throw new Llama2Error(`${what}: ${field} appears twice`);
      metadata.set(key, cur.value(cur.valueType(field), field));
    }

    let alignment = 32;
    const al = metadata.get('general.alignment');
    if (al) {
      const a = al.type === 'u32' || al.type === 'u64' ? Number(al.value) : NaN;
      if (!(a > 0 && (a & (a - 1)) === 0)) {
        throw new Llama2Error(`${what}: metadata "general.alignment" must be a u32 power of two, found ${al.type} ${describe(al.value)}`);
      }
      alignment = a;
    }

    const rel: { name: string; dtype: DType; shape: number[]; rel: number; nbytes: number }[] = [];
    const names = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const name = cur.string(`tensor info #${i} name`);
      const field = `tensor ${quote(name)}`;
      if (names.has(name)) throw new Llama2Error(`${what}: ${field} appears twice`);
      names.add(name);
      const nDims = cur.u32(`${field} n_dims`);
      if (nDims < 1 || nDims > MAX_DIMS) throw new Llama2Error(`${what}: ${field} has ${nDims} dims; expected 1..${MAX_DIMS}`);
      const ne: number[] = [];
      for (let d = 0; d < nDims; d++) ne.push(cur.u64(`${field} ne[${d}]`));
      const typeId = cur.u32(`${field} type`);
      const dtype = DTYPE_OF_ID.get(typeId);
      if (!dtype) {
        const known = GGML_TYPE_NAMES[typeId];
        const supported = Object.entries(GGML_TYPE_ID).map(([k, v]) => `${k} (${v})`).join(', ');
        throw new Llama2Error(
          `${what}: ${field} has ggml type ${known ? `${known} (${typeId}), which llama2-ts cannot decode` : `${typeId}, which is unknown`}; supported: ${supported}`,
        );
      }
      const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
      if (ne[0]! % blockSize !== 0) {
        throw new Llama2Error(`${what}: ${field} is ${dtype} with rows of ${ne[0]} values, not a whole number of ${blockSize}-value blocks`);
      }
      const n = ne.reduce((a, b) => a * b, 1);
      const off = cur.u64(`${field} offset`);
      if (off % alignment !== 0) throw new Llama2Error(`${what}: ${field} data offset ${off} is not a multiple of the alignment ${alignment}`);
      rel.push({ name, dtype, shape: [...ne].reverse(), rel: off, nbytes: (n / blockSize) * typeSize });
    }

    const dataOffset = Math.ceil(cur.pos / alignment) * alignment;
    const tensors = new Map<string, GgufTensorInfo>();
    for (const t of rel) {
      const offset = dataOffset + t.rel;
      if (offset + t.nbytes > file.size) {
        throw new Llama2Error(
          `${what}: tensor ${quote(t.name)} data (bytes ${offset}..${offset + t.nbytes}) runs past the end of the ${file.size}-byte file (truncated?)`,
        );
      }
      tensors.set(t.name, { dtype: t.dtype, shape: t.shape, offset, nbytes: t.nbytes });
    }

    return {
      path, version, alignment, dataOffset, size: file.size, metadata, tensors,
      readTensor(name: string): WeightTensor {
        const t = tensors.get(name);
        if (!t) throw new Llama2Error(`${what}: no tensor named "${name}"`);
        return { dtype: t.dtype, shape: [...t.shape], data: file.read(t.offset, t.nbytes, `tensor "${name}"`) };
      },
      close: () => file.close(),
    };
  } catch (e) {
    file.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Llama-2 model

/** Shortest decimal that is the same float32 (f32 1e-5 reads back as 1e-5, not 9.99999974e-6). */
export function shortestF32(x: number): number {
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const c = Number(f.toPrecision(p));
    if (Math.fround(c) === f) return c;
  }
  return f;
}

/** Typed accessors over the metadata; errors name the file and key. */
function metaReader(g: GgufFile) {
  const what = `GGUF ${g.path}`;
  const bad = (key: string, want: string, v: GgufValue) =>
    new Llama2Error(`${what}: metadata "${key}" must be ${want}, found ${v.type}${v.type === 'array' ? '' : ` ${describe(typeof v.value === 'bigint' ? Number(v.value) : v.value)}`}`);
  const int = (key: string): number | undefined => {
    const v = g.metadata.get(key);
    if (!v) return undefined;
    const n = v.type === 'u64' || v.type === 'i64' ? Number(v.value) : v.type !== 'array' && v.type !== 'f32' && v.type !== 'f64' && typeof v.value === 'number' ? v.value : NaN;
    if (!Number.isSafeInteger(n)) throw bad(key, 'an integer', v);
    return n;
  };
  return {
    int,
    need(key: string): number {
      const n = int(key);
      if (n === undefined) throw new Llama2Error(`${what}: missing metadata "${key}"`);
      return n;
    },
    float(key: string): number | undefined {
      const v = g.metadata.get(key);
      if (!v) return undefined;
      if (v.type === 'f32') return shortestF32(v.value);
      if (v.type === 'f64') return v.value;
      if (v.type === 'u64' || v.type === 'i64') return Number(v.value);
      if (v.type !== 'array' && typeof v.value === 'number') return v.value;
      throw bad(key, 'a number', v);
    },
    string(key: string): string | undefined {
      const v = g.metadata.get(key);
      if (!v) return undefined;
      if (v.type !== 'string') throw bad(key, 'a string', v);
      return v.value;
    },
    bool(key: string): boolean | undefined {
      const v = g.metadata.get(key);
      if (!v) return undefined;
      if (v.type !== 'bool') throw bad(key, 'a bool', v);
      return v.value;
    },
    numbers(key: string, items: readonly GgufNumType[]): ArrayLike<number> | undefined {
      const v = g.metadata.get(key);
      if (!v) return undefined;
      if (v.type !== 'array' || !(items as readonly string[]).includes(v.itemType)) throw bad(key, `an array of ${items.join(' or ')}`, v);
      return v.value as ArrayLike<number>;
    },
    strings(key: string): ArrayLike<string> | undefined {
      const v = g.metadata.get(key);
      if (!v) return undefined;
      if (v.type !== 'array' || v.itemType !== 'string') throw bad(key, 'an array of string', v);
      return v.value;
    },
  };
}

function readConfig(g: GgufFile, m: ReturnType<typeof metaReader>, vocabCount: number | undefined): LlamaConfig {
  const what = `GGUF ${g.path}`;
  const nHeads = m.need('llama.attention.head_count');
  const declaredVocab = m.int('llama.vocab_size');
  if (declaredVocab !== undefined && vocabCount !== undefined && declaredVocab !== vocabCount) {
    throw new Llama2Error(`${what}: metadata "llama.vocab_size" is ${declaredVocab} but "tokenizer.ggml.tokens" holds ${vocabCount} tokens`);
  }
  const vocab = declaredVocab ?? vocabCount ?? g.tensors.get('token_embd.weight')?.shape[0];
  if (vocab === undefined) throw new Llama2Error(`${what}: cannot tell the vocabulary size: no "llama.vocab_size", no "tokenizer.ggml.tokens", no token_embd.weight`);
  const c: LlamaConfig = {
    dim: m.need('llama.embedding_length'),
    n_layers: m.need('llama.block_count'),
    n_heads: nHeads,
    n_kv_heads: m.int('llama.attention.head_count_kv') ?? nHeads,
    vocab_size: vocab,
    multiple_of: 256,
    ffn_dim_multiplier: null,
    norm_eps: m.float('llama.attention.layer_norm_rms_epsilon') ?? 1e-5,
    rope_theta: m.float('llama.rope.freq_base') ?? 10000,
    max_seq_len: m.need('llama.context_length'),
    hidden_dim: m.need('llama.feed_forward_length'),
  };
  validateConfig(c, what);
  const ropeDims = m.int('llama.rope.dimension_count');
  if (ropeDims !== undefined && ropeDims !== headDim(c)) {
    throw new Llama2Error(`${what}: metadata "llama.rope.dimension_count" is ${ropeDims} but Llama-2 rotates the whole head (${headDim(c)}); partial RoPE is not supported`);
  }
  const scaling = m.string('llama.rope.scaling.type');
  if (scaling !== undefined && scaling !== 'none') {
    throw new Llama2Error(`${what}: metadata "llama.rope.scaling.type" is ${quote(scaling)}; RoPE scaling is not supported (expected "none" or absent)`);
  }
  const experts = m.int('llama.expert_count') ?? 0;
  if (experts > 0) throw new Llama2Error(`${what}: metadata "llama.expert_count" is ${experts}: mixture-of-experts models are not supported`);
  return c;
}

function readVocab(g: GgufFile, m: ReturnType<typeof metaReader>, tokens: ArrayLike<string>): SpmVocab {
  const what = `GGUF ${g.path}`;
  const n = tokens.length;
  const scores = m.numbers('tokenizer.ggml.scores', ['f32', 'f64']);
  const types = m.numbers('tokenizer.ggml.token_type', ['i32', 'u32', 'i8', 'u8', 'i16', 'u16']);
  for (const [key, a] of [['scores', scores], ['token_type', types]] as const) {
    if (a && a.length !== n) throw new Llama2Error(`${what}: metadata "tokenizer.ggml.${key}" has ${a.length} entries but there are ${n} tokens`);
  }
  const typeArr = new Uint8Array(n).fill(1);
  if (types) {
    for (let i = 0; i < n; i++) {
      const t = types[i]!;
      if (!(t >= 1 && t <= 6)) throw new Llama2Error(`${what}: metadata "tokenizer.ggml.token_type"[${i}] is ${t}; expected 1..6`);
      typeArr[i] = t;
    }
  }
  const id = (key: string, dflt: number): number => {
    const v = m.int(`tokenizer.ggml.${key}`);
    if (v !== undefined && (v < -1 || v >= n)) throw new Llama2Error(`${what}: metadata "tokenizer.ggml.${key}" is ${v}, outside the ${n}-token vocabulary`);
    return v ?? dflt;
  };
  return {
    pieces: Array.from(tokens),
    scores: scores ? Float32Array.from(scores) : new Float32Array(n),
    types: typeArr,
    bosId: id('bos_token_id', 1),
    eosId: id('eos_token_id', 2),
    unkId: id('unknown_token_id', 0),
    padId: id('padding_token_id', -1),
    addDummyPrefix: m.bool('tokenizer.ggml.add_space_prefix') ?? true,
    addBos: m.bool('tokenizer.ggml.add_bos_token') ?? true,
    addEos: m.bool('tokenizer.ggml.add_eos_token') ?? false,
  };
}

export interface ReadGgufOptions {
  /**
   * Map the file into memory (native addon's mmapFile) and return weights that are views into
   * the mapping: no copy, load time independent of the model size, resident memory ≈ the pages
   * touched (shared with the page cache). Writes to the views stay private to the process.
   * Default: on when the native addon is loaded, unless LLAMA2_MMAP=0; off (or unavailable)
   * means one positioned read per tensor into a fresh buffer.
   */
  mmap?: boolean;
}

/**
 * Reads a Llama-2 GGUF file: config from `llama.*` metadata, weights under Meta names (GGUF keeps
 * q/k in Meta's interleaved RoPE layout, so nothing is permuted), the SentencePiece vocabulary from
 * `tokenizer.ggml.*` when the tokenizer model is "llama". Tensors are views into a memory mapping
 * of the file (see ReadGgufOptions.mmap), or each is read once from disk.
 */
export function readGgufModel(path: string, opts: ReadGgufOptions = {}): LoadedModel {
  const g = openGguf(path);
  try {
    const what = `GGUF ${path}`;
    const m = metaReader(g);
    const arch = m.string('general.architecture');
    if (arch !== 'llama') {
      throw new Llama2Error(`${what}: metadata "general.architecture" is ${arch === undefined ? 'missing' : quote(arch)}; llama2-ts runs "llama" (Llama-2) models only`);
    }
    const tokModel = m.string('tokenizer.ggml.model');
    const tokens = m.strings('tokenizer.ggml.tokens');
    const config = readConfig(g, m, tokens?.length);
    checkConfigFits(config, g.size - g.dataOffset, GGUF_MIN_BYTES_PER_WEIGHT, what, true);
    const vocab = tokModel === 'llama' && tokens ? readVocab(g, m, tokens) : null;

    // map and check every tensor before reading any data
    const byMeta = new Map<string, string>();
    for (const meta of expectedShapes(config).keys()) byMeta.set(meta, ggufName(meta));
    const wanted = new Set(byMeta.values());
    for (const name of g.tensors.keys()) {
      if (!wanted.has(name) && headFromGguf(name) === undefined) {
        throw new Llama2Error(`${what}: unexpected tensor ${quote(name)} for a ${config.n_layers}-layer Llama-2 model`);
      }
    }
    for (const [meta, shape] of expectedShapes(config)) {
      const t = g.tensors.get(byMeta.get(meta)!);
      if (!t && meta !== 'output.weight') throw new Llama2Error(`${what}: missing tensor "${byMeta.get(meta)}" (${meta})`);
      if (t && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
        throw new Llama2Error(
          `${what}: tensor "${byMeta.get(meta)}" has shape [${t.shape.join(', ')}] but the metadata (dim ${config.dim}, ` +
            `${config.n_heads}/${config.n_kv_heads} heads, ffn ${config.hidden_dim}, vocab ${config.vocab_size}) implies [${shape.join(', ')}]`,
        );
      }
    }
    // one mapping of the file, one buffer per tensor (Node caps a single external buffer at 4 GiB);
    // GGUF data is aligned (≥ 32 bytes) inside a page-aligned mapping, so F32 views are aligned too
    const mapped = useMmap(opts.mmap);
    const names = [...g.tensors.keys()];
    const windows = mapped
      ? new Map(mapRanges(path, names.map((n) => ({ offset: g.tensors.get(n)!.offset, length: g.tensors.get(n)!.nbytes })))
        .map((ab, i) => [names[i]!, ab]))
      : null;
    const tensorOf = (name: string): WeightTensor => {
      const t = g.tensors.get(name)!;
      return windows ? { dtype: t.dtype, shape: [...t.shape], data: new Uint8Array(windows.get(name)!) } : g.readTensor(name);
    };
    const weights = assembleWeights(config, (meta) => {
      const name = byMeta.get(meta);
      return name !== undefined && g.tensors.has(name) ? tensorOf(name) : undefined;
    }, what);
    for (const name of g.tensors.keys()) {
      const head = headFromGguf(name);
      if (head === undefined) continue;
      weights.heads ??= {};
      weights.heads[head] = checkHead(config, head, tensorOf(name), `${what}: tensor "${name}"`);
    }

    const counts = new Map<DType, number>();
    for (const t of g.tensors.values()) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + 1);
    const fileType = m.int('general.file_type');
    const info: LoadedModel['info'] = {
      gguf_version: g.version,
      name: m.string('general.name') ?? '',
      file_type: fileType === undefined ? 'unknown' : `${LLAMA_FILE_TYPES[fileType] ?? 'unknown'} (${fileType})`,
      tensor_types: [...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${v} × ${k}`).join(', '),
      alignment: g.alignment,
      tensors: g.tensors.size,
      metadata_keys: g.metadata.size,
      tokenizer_model: tokModel ?? 'none',
      tied_output: !g.tensors.has('output.weight'),
      tensor_data: windows ? 'memory-mapped' : 'read',
    };
    return { format: 'gguf', path, config, weights, vocab, vocabSource: vocab ? 'GGUF metadata' : null, info };
  } finally {
    g.close();
  }
}
