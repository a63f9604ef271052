/**
 * safetensors: 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the data.
 * Offsets are relative to the end of the header. Tensors are read one at a time, on demand; float
 * weights are views into a memory mapping of the file instead when the native addon is loaded
 * (SafetensorsOptions.mmap).
 */
import { FileReader, writeFileAtomic } from '../util/fs.js';
import { Llama2Error, describe, quote, plain } from '../util/errors.js';
import { numel, toFloat32, type WeightTensor } from '../tensor.js';
import { mapRanges, useMmap } from './mmap.js';

export type StDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
const ST_SIZE: Record<StDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface StEntry {
  dtype: StDType;
  shape: number[];
  begin: number; // absolute file offset
  end: number;
}

export interface SafetensorsOptions {
  /**
   * weight() returns views into one private (copy-on-write) mapping of the file: no copy, load
   * time independent of the model size, pages read when first touched. Default: on when the
   * native addon is loaded, unless LLAMA2_MMAP=0. A tensor whose offset is not a multiple of its
   * element size is read into a fresh buffer either way.
   */
  mmap?: boolean;
}

export class SafetensorsFile {
  readonly entries = new Map<string, StEntry>();
  readonly metadata: Record<string, string>;
  /** whether weight() maps (see SafetensorsOptions.mmap) */
  readonly mapsWeights: boolean;
  private readonly file: FileReader;
  private windows: Map<string, ArrayBuffer> | null = null;

  constructor(readonly path: string, opts: SafetensorsOptions = {}) {
    this.mapsWeights = useMmap(opts.mmap);
    const what = `safetensors ${path}`;
    this.file = new FileReader(path, what);
    const lenBytes = this.file.read(0, 8, 'header length');
    const hlen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
    if (hlen > 100_000_000 || hlen + 8 > this.file.size) {
      throw new Llama2Error(`${what}: header length ${hlen} does not fit in a ${this.file.size}-byte file (not a safetensors file, or truncated)`);
    }
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(this.file.read(8, hlen, 'header')).toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      if (e instanceof Llama2Error) throw e;
      throw new Llama2Error(`${what}: header is not valid JSON (${plain(e)})`);
    }
    const dataStart = 8 + hlen;
    this.metadata = (header['__metadata__'] as Record<string, string> | undefined) ?? {};
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e.dtype !== 'string' || !(e.dtype in ST_SIZE)) {
        throw new Llama2Error(`${what}: tensor ${quote(name)} has dtype ${describe(e.dtype)}; expected one of ${Object.keys(ST_SIZE).join(', ')}`);
      }
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new Llama2Error(`${what}: tensor ${quote(name)} has shape ${describe(e.shape)}; expected a list of non-negative integers`);
      }
      const off = e.data_offsets as number[] | undefined;
      if (!Array.isArray(off) || off.length !== 2) throw new Llama2Error(`${what}: tensor ${quote(name)} lacks data_offsets [begin, end]`);
      const dtype = e.dtype as StDType;
      const shape = e.shape as number[];
      const want = numel(shape) * ST_SIZE[dtype];
      if (off[1]! - off[0]! !== want) {
        throw new Llama2Error(`${what}: tensor ${quote(name)} ${dtype}[${shape.join(', ')}] needs ${want} bytes but data_offsets span ${off[1]! - off[0]!}`);
      }
      if (dataStart + off[1]! > this.file.size) {
        throw new Llama2Error(`${what}: file is truncated: tensor ${quote(name)} ends at byte ${dataStart + off[1]!} but the file has ${this.file.size} bytes`);
      }
      this.entries.set(name, { dtype, shape, begin: dataStart + off[0]!, end: dataStart + off[1]! });
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): StEntry {
    const e = this.entries.get(name);
    if (!e) throw new Llama2Error(`safetensors ${this.path}: no tensor named ${quote(name)}`);
    return e;
  }

  /** Raw bytes of one tensor (a fresh, 8-byte aligned buffer). */
  bytes(name: string): Uint8Array {
    const e = this.entry(name);
    return this.file.read(e.begin, e.end - e.begin, `tensor ${quote(name)}`);
  }

  /** A float weight as a WeightTensor (F32/F16/BF16 kept as stored, mapped or read; F64 converted to F32). */
  weight(name: string): WeightTensor {
    const e = this.entry(name);
    if (e.dtype === 'F32' || e.dtype === 'F16' || e.dtype === 'BF16') {
      const w = this.mapsWeights ? this.mappedWindows().get(name) : undefined;
      return { dtype: e.dtype, shape: e.shape, data: w ? new Uint8Array(w) : this.bytes(name) };
    }
    if (e.dtype === 'F64') {
      const f = this.f32(name);
      return { dtype: 'F32', shape: e.shape, data: new Uint8Array(f.buffer) };
    }
    throw new Llama2Error(`safetensors ${this.path}: tensor ${quote(name)} has dtype ${e.dtype}; a weight must be F32, F16, BF16 or F64`);
  }

  /** one mapping of the file, a window per F32/F16/BF16 tensor whose offset suits its element size */
  private mappedWindows(): Map<string, ArrayBuffer> {
    if (this.windows) return this.windows;
    const mapped = [...this.entries].filter(([, e]) => (e.dtype === 'F32' || e.dtype === 'F16' || e.dtype === 'BF16') &&
      e.end > e.begin && e.begin % ST_SIZE[e.dtype] === 0);
    const bufs = mapped.length ? mapRanges(this.path, mapped.map(([, e]) => ({ offset: e.begin, length: e.end - e.begin }))) : [];
    this.windows = new Map(mapped.map(([n], i) => [n, bufs[i]!]));
    return this.windows;
  }

  /** Any float tensor converted to Float32Array. */
  f32(name: string): Float32Array {
    const e = this.entry(name);
    const b = this.bytes(name);
    const n = numel(e.shape);
    const dv = new DataView(b.buffer);
    const out = new Float32Array(n);
    switch (e.dtype) {
      case 'F32': return new Float32Array(b.buffer, 0, n);
      case 'F64': for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true); return out;
      default: break;
    }
    if (e.dtype !== 'F16' && e.dtype !== 'BF16') {
      throw new Llama2Error(`safetensors ${this.path}: tensor ${quote(name)} has dtype ${e.dtype}; expected a float tensor`);
    }
    return toFloat32({ dtype: e.dtype, shape: e.shape, data: b });
  }

  /** Any float tensor as float64 values. */
  f64(name: string): Float64Array {
    const e = this.entry(name);
    if (e.dtype === 'F64') {
      const b = this.bytes(name);
      return new Float64Array(b.buffer, 0, numel(e.shape));
    }
    return Float64Array.from(this.f32(name));
  }

  /** An integer (or bool) tensor as plain numbers. */
  ints(name: string): number[] {
    const e = this.entry(name);
    const b = this.bytes(name);
    const dv = new DataView(b.buffer);
    const n = numel(e.shape);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      switch (e.dtype) {
        case 'I64': out[i] = Number(dv.getBigInt64(i * 8, true)); break;
        case 'I32': out[i] = dv.getInt32(i * 4, true); break;
        case 'I16': out[i] = dv.getInt16(i * 2, true); break;
        case 'I8': out[i] = dv.getInt8(i); break;
        case 'U8': case 'BOOL': out[i] = dv.getUint8(i); break;
        default: throw new Llama2Error(`safetensors ${this.path}: tensor ${quote(name)} has dtype ${e.dtype}; expected an integer tensor`);
      }
    }
    return out;
  }

  close(): void {
    this.file.close();
  }
}

export interface StTensorOut {
  name: string;
  dtype: StDType;
  shape: readonly number[];
  data: Uint8Array;
}

/** Writes a safetensors file atomically; tensors are laid out in the order given, 8-byte aligned. */
export function writeSafetensors(path: string, tensors: StTensorOut[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  let off = 0;
  const pads: number[] = [];
  for (const t of tensors) {
    const want = numel(t.shape) * ST_SIZE[t.dtype];
    if (t.data.byteLength !== want) throw new Llama2Error(`safetensors writer: tensor "${t.name}" needs ${want} bytes, got ${t.data.byteLength}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + want] };
    const pad = (8 - (want % 8)) % 8;
    pads.push(pad);
    off += want + pad;
    (header[t.name] as { data_offsets: number[] }).data_offsets[1] = off - pad;
  }
  const raw = Buffer.from(JSON.stringify(header), 'utf8');
  const jsonBytes = Buffer.concat([raw, Buffer.alloc((8 - (raw.length % 8)) % 8, 0x20)]);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  const chunks: Uint8Array[] = [len, jsonBytes];
  tensors.forEach((t, i) => {
    chunks.push(t.data);
    if (pads[i]) chunks.push(new Uint8Array(pads[i]!));
  });
  writeFileAtomic(path, chunks);
}

/** Float32Array → F32 tensor bytes for the writer. */
export function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
