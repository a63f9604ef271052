/**
 * A restricted pickle VM (protocols 2-5) and the PyTorch checkpoint reader built on it.
 *
 * It rebuilds plain containers (dict, OrderedDict, list, tuple, str, bytes, int, float, bool,
 * None) and torch tensors, nothing else. It never executes code from the file: GLOBAL /
 * STACK_GLOBAL resolve only names on a whitelist (OrderedDict, torch's tensor/parameter rebuild
 * functions, torch.*Storage type tags); any other name fails with
 * `refusing to execute code from pickle: <module>.<name>` before anything is called.
 * REDUCE / NEWOBJ call only whitelisted functions, implemented here in TypeScript.
 *
 * openPth() reads a torch.save (≥ 1.6) zip checkpoint: `<archive>/data.pkl` holds the state
 * dict, tensors point at storages through persistent ids ('storage', torch.FloatStorage, key,
 * location, numel), and storage `key` lives in the entry `<archive>/data/<key>`. Tensor bytes are
 * read lazily, one tensor at a time, with positioned reads, or float weights are views into a
 * memory mapping of the file (PthOptions.mmap); the checkpoint is never loaded whole.
 * It is not a reader for the legacy (pre-1.6) tar format or for TorchScript archives.
 */
import { Llama2Error, quote, plain } from '../util/errors.js';
import { numel, type WeightTensor } from '../tensor.js';
import { openZip, type ZipArchive } from './zip.js';
import { FileReader } from '../util/fs.js';
import { mapRanges, useMmap } from './mmap.js';

// ---------------------------------------------------------------------------------------------
// values

export type PyKey = string | number | bigint | boolean | null;

/** dict / OrderedDict; `state` holds what BUILD set on it (torch's `_metadata`). */
export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  state: PyValue = null;
}

/** A whitelisted global (a function or a type tag); `qualname` is "module.name". */
export interface PyGlobal {
  readonly kind: 'global';
  readonly qualname: string;
}

export interface TorchStorage {
  readonly kind: 'storage';
  readonly dtype: TorchDType;
  readonly key: string;
  readonly numel: number;
}

export interface TorchTensor {
  readonly kind: 'tensor';
  readonly storage: TorchStorage;
  readonly storageOffset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

/** Lists are mutable arrays; tuples are frozen arrays. */
export type PyValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PyValue[] | readonly PyValue[] | PyDict | PyGlobal | TorchStorage | TorchTensor;

export interface UnpickleOptions {
  /** names the source in errors ("pth model.pth") */
  what: string;
  /** whitelisted globals: a function (called by REDUCE/NEWOBJ) or null for a value-only tag */
  globals: ReadonlyMap<string, ((args: readonly PyValue[]) => PyValue) | null>;
  /** names (module.name) that are harmless type tags but unsupported: a clearer error */
  unsupported?: (qualname: string) => string | null;
  persistentLoad?: (pid: PyValue) => PyValue;
}

function isTuple(v: PyValue): v is readonly PyValue[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

function keyOf(v: PyValue, what: string): PyKey {
  if (v === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof v)) return v as PyKey;
  if (isTuple(v)) return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  throw new Llama2Error(`${what}: pickle uses an unsupported dict key type (${typeName(v)})`);
}

function typeName(v: PyValue): string {
  if (v === null) return 'None';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return isTuple(v) ? 'tuple' : 'list';
  if (typeof v === 'object') return (v as { kind: string }).kind;
  return typeof v;
}

// ---------------------------------------------------------------------------------------------
// the VM

/** Runs a pickle program and returns the object it builds. */
export function unpickle(data: Uint8Array, opt: UnpickleOptions): PyValue {
  const { what } = opt;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { ignoreBOM: true }); // a str keeps a leading U+FEFF, as in Python
  // ISO-8859-1 byte for byte (the WHATWG 'latin1' label is windows-1252, which remaps 80..9F)
  const latin1 = { decode: (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1') };
  let stack: PyValue[] = [];
  const marks: PyValue[][] = [];
  const memo = new Map<number, PyValue>();
  let p = 0;

  const fail = (msg: string): never => {
    throw new Llama2Error(`${what}: pickle ${msg} (at byte ${p})`);
  };
  const need = (n: number): number => {
    if (p + n > data.length) fail(`is truncated: needs ${n} more bytes, ${data.length - p} left`);
    const at = p;
    p += n;
    return at;
  };
  const pop = (): PyValue => (stack.length ? stack.pop()! : fail('pops from an empty stack'));
  const top = (): PyValue => (stack.length ? stack[stack.length - 1]! : fail('reads an empty stack'));
  const popMark = (): PyValue[] => {
    const items = stack;
    stack = marks.pop() ?? fail('pops a MARK that was never pushed');
    return items;
  };
  const bytesAt = (n: number): Uint8Array => data.subarray(need(n), p);
  const line = (): string => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) fail('is truncated inside a text line');
    const s = latin1.decode(data.subarray(p, end));
    p = end + 1;
    return s;
  };
  const int = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  /** a decimal integer written as text (INT, LONG opcodes) */
  const textInt = (t: string, op: string): bigint => {
    if (!/^[+-]?\d{1,4300}$/.test(t.trim())) fail(`has a ${op} opcode whose text is not a decimal integer: ${JSON.stringify(t.slice(0, 40))}`);
    return BigInt(t.trim());
  };
  const longLE = (b: Uint8Array): number | bigint => {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b.length && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return int(v);
  };
  const findGlobal = (module: string, name: string): PyGlobal => {
    const qualname = `${module}.${name}`;
    if (opt.globals.has(qualname)) return { kind: 'global', qualname };
    const why = opt.unsupported?.(qualname);
    if (why) throw new Llama2Error(`${what}: ${why}`);
    throw new Llama2Error(`${what}: refusing to execute code from pickle: ${plain(qualname, 80)}`);
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    if (fn === null || typeof fn !== 'object' || !('kind' in fn) || fn.kind !== 'global') {
      return fail(`calls a ${typeName(fn)}, which is not a whitelisted function`);
    }
    const impl = opt.globals.get(fn.qualname);
    if (!impl) return fail(`calls ${fn.qualname}, which may only be used as a value`);
    if (!Array.isArray(args)) return fail(`calls ${plain(fn.qualname, 80)} with ${typeName(args)} arguments instead of a tuple`);
    return impl(args);
  };
  const setItem = (d: PyValue, k: PyValue, v: PyValue): void => {
    if (!(d instanceof PyDict)) fail(`sets an item on a ${typeName(d)}`);
    (d as PyDict).map.set(keyOf(k, what), v);
  };
  const append = (l: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(l) || isTuple(l)) return fail(`appends to a ${typeName(l)}`);
    for (const it of items) (l as PyValue[]).push(it); // APPENDS of any length (no argument spread)
  };

  for (;;) {
    const op = data[need(1)]!;
    switch (op) {
      case 0x80: { // PROTO
        const v = data[need(1)]!;
        if (v > 5) fail(`has protocol ${v}; protocols up to 5 are supported`);
        break;
      }
      case 0x95: need(8); break; // FRAME (length only; we read the whole pickle at once)
      case 0x2e: // STOP '.'
        if (stack.length !== 1 || marks.length) fail(`ends with ${stack.length} values on the stack`);
        return stack[0]!;
      case 0x28: marks.push(stack); stack = []; break; // MARK '('
      case 0x30: pop(); break; // POP '0'
      case 0x31: popMark(); break; // POP_MARK '1'
      case 0x32: stack.push(top()); break; // DUP '2'
      // --- constants
      case 0x4e: stack.push(null); break; // NONE 'N'
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(data[need(1)]!); break; // BININT1 'K'
      case 0x4d: stack.push(dv.getUint16(need(2), true)); break; // BININT2 'M'
      case 0x4a: stack.push(dv.getInt32(need(4), true)); break; // BININT 'J'
      case 0x8a: stack.push(longLE(bytesAt(data[need(1)]!))); break; // LONG1
      case 0x8b: { // LONG4
        const n = dv.getInt32(need(4), true);
        if (n < 0) fail('has a negative LONG4 length');
        stack.push(longLE(bytesAt(n)));
        break;
      }
      case 0x49: { // INT 'I' (text; "01"/"00" are True/False)
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : int(textInt(s, 'INT')));
        break;
      }
      case 0x4c: stack.push(int(textInt(line().replace(/L$/, ''), 'LONG'))); break; // LONG 'L'
      case 0x47: stack.push(dv.getFloat64(need(8), false)); break; // BINFLOAT 'G' (big-endian)
      case 0x46: stack.push(Number.parseFloat(line())); break; // FLOAT 'F'
      // --- strings and bytes
      case 0x8c: stack.push(utf8.decode(bytesAt(data[need(1)]!))); break; // SHORT_BINUNICODE
      case 0x58: stack.push(utf8.decode(bytesAt(dv.getUint32(need(4), true)))); break; // BINUNICODE 'X'
      case 0x8d: stack.push(utf8.decode(bytesAt(Number(dv.getBigUint64(need(8), true))))); break; // BINUNICODE8
      case 0x55: stack.push(latin1.decode(bytesAt(data[need(1)]!))); break; // SHORT_BINSTRING 'U'
      case 0x54: stack.push(latin1.decode(bytesAt(dv.getUint32(need(4), true)))); break; // BINSTRING 'T'
      case 0x43: stack.push(bytesAt(data[need(1)]!).slice()); break; // SHORT_BINBYTES 'C'
      case 0x42: stack.push(bytesAt(dv.getUint32(need(4), true)).slice()); break; // BINBYTES 'B'
      case 0x8e: stack.push(bytesAt(Number(dv.getBigUint64(need(8), true))).slice()); break; // BINBYTES8
      // --- containers
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT '}'
      case 0x5d: stack.push([]); break; // EMPTY_LIST ']'
      case 0x29: stack.push(Object.freeze([])); break; // EMPTY_TUPLE ')'
      case 0x74: { const items = popMark(); stack.push(Object.freeze(items)); break; } // TUPLE 't' (pop before reading `stack`)
      case 0x85: stack.push(Object.freeze([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(Object.freeze([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(Object.freeze([a, b, c])); break; } // TUPLE3
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST 'l'
      case 0x64: { // DICT 'd'
        const items = popMark();
        const d = new PyDict();
        for (let i = 0; i + 1 < items.length; i += 2) setItem(d, items[i]!, items[i + 1]!);
        stack.push(d);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v); break; } // SETITEM 's'
      case 0x75: { // SETITEMS 'u'
        const items = popMark();
        if (items.length % 2) fail('has an odd number of SETITEMS values');
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i]!, items[i + 1]!);
        break;
      }
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND 'a'
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS 'e'
      // --- memo
      case 0x71: memo.set(data[need(1)]!, top()); break; // BINPUT 'q'
      case 0x72: memo.set(dv.getUint32(need(4), true), top()); break; // LONG_BINPUT 'r'
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x70: memo.set(Number.parseInt(line(), 10), top()); break; // PUT 'p'
      case 0x68: case 0x6a: case 0x67: { // BINGET 'h', LONG_BINGET 'j', GET 'g'
        const i = op === 0x68 ? data[need(1)]! : op === 0x6a ? dv.getUint32(need(4), true) : Number.parseInt(line(), 10);
        if (!memo.has(i)) fail(`reads memo slot ${i}, which was never set`);
        stack.push(memo.get(i)!);
        break;
      }
      // --- globals, calls, persistent ids
      case 0x63: { const module = line(); const name = line(); stack.push(findGlobal(module, name)); break; } // GLOBAL 'c'
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(findGlobal(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args)); break; } // REDUCE 'R'
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ
      case 0x62: { // BUILD 'b': only state dicts on dicts (torch's OrderedDict._metadata)
        const state = pop();
        const obj = top();
        if (!(obj instanceof PyDict)) fail(`BUILD on a ${typeName(obj)} is not allowed`);
        (obj as PyDict).state = state;
        break;
      }
      case 0x51: { // BINPERSID 'Q'
        if (!opt.persistentLoad) fail('uses a persistent id but none are expected');
        stack.push(opt.persistentLoad!(pop()));
        break;
      }
      default:
        fail(`opcode 0x${op.toString(16).padStart(2, '0')} is not supported by this restricted reader`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// torch checkpoints

export type TorchDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
const STORAGES: Readonly<Record<string, TorchDType>> = {
  DoubleStorage: 'F64', FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};
export const TORCH_DTYPE_SIZE: Readonly<Record<TorchDType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

function asInts(v: PyValue, what: string, field: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    throw new Llama2Error(`${what}: tensor ${field} must be a tuple of ints, found ${typeName(v)}`);
  }
  return v as number[];
}

function rebuildTensor(args: readonly PyValue[], what: string): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!storage || typeof storage !== 'object' || !('kind' in storage) || storage.kind !== 'storage') {
    throw new Llama2Error(`${what}: _rebuild_tensor_v2 expects a storage, found ${typeName(storage ?? null)}`);
  }
  if (typeof offset !== 'number') throw new Llama2Error(`${what}: tensor storage offset must be an int`);
  return { kind: 'tensor', storage, storageOffset: offset, shape: asInts(size ?? null, what, 'size'), stride: asInts(stride ?? null, what, 'stride') };
}

function torchGlobals(what: string): Map<string, ((args: readonly PyValue[]) => PyValue) | null> {
  const g = new Map<string, ((args: readonly PyValue[]) => PyValue) | null>();
  g.set('collections.OrderedDict', (args) => {
    const d = new PyDict();
    const items = args[0];
    if (Array.isArray(items)) {
      for (const kv of items) {
        if (!Array.isArray(kv) || kv.length !== 2) throw new Llama2Error(`${what}: OrderedDict item is not a (key, value) pair`);
        d.map.set(keyOf(kv[0]!, what), kv[1]!);
      }
    }
    return d;
  });
  g.set('torch._utils._rebuild_tensor_v2', (args) => rebuildTensor(args, what));
  g.set('torch._utils._rebuild_tensor', (args) => rebuildTensor(args, what));
  // nn.Parameter(data, requires_grad, hooks[, state]) → its data tensor
  g.set('torch._utils._rebuild_parameter', (args) => args[0] ?? null);
  g.set('torch._utils._rebuild_parameter_with_state', (args) => args[0] ?? null);
  // protocol 2 pickles bytes objects as _codecs.encode(latin-1 text, 'latin1')
  g.set('_codecs.encode', (args) => {
    const [s, enc] = args;
    if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1') || /[^\x00-\xff]/.test(s)) {
      throw new Llama2Error(`${what}: pickle calls _codecs.encode with arguments other than (latin-1 text, 'latin1')`);
    }
    return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
  });
  for (const s of Object.keys(STORAGES)) g.set(`torch.${s}`, null);
  return g;
}

/** One tensor of a checkpoint; its bytes stay in the file until read. */
export interface PthTensor {
  readonly name: string;
  readonly dtype: TorchDType;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly storageOffset: number;
  readonly storageKey: string;
}

export interface PthFile {
  readonly path: string;
  /** every tensor in the pickled object, by dotted path ("layers.0.attention.wq.weight", "model.x") */
  readonly tensors: ReadonlyMap<string, PthTensor>;
  /** the whole unpickled object (tensors as TorchTensor records) */
  readonly root: PyValue;
  /** Raw little-endian bytes of a contiguous tensor (row-major), read now. */
  bytes(name: string): Uint8Array;
  /** A float weight: F32/F16/BF16 kept as stored (mapped or read), F64 converted to F32, others rejected. */
  weight(name: string): WeightTensor;
  /** whether weight() maps (see PthOptions.mmap) */
  readonly mapsWeights: boolean;
  close(): void;
}

export interface PthOptions {
  /**
   * weight() returns views into one private (copy-on-write) mapping of the file for F32/F16/BF16
   * tensors whose bytes are aligned to their element size (torch.save aligns entries to 64 bytes):
   * no copy. Default: with the native addon, unless LLAMA2_MMAP=0.
   */
  mmap?: boolean;
}

/** Opens a torch.save (zip) checkpoint; tensor data is read later, per tensor. */
export function openPth(path: string, opts: PthOptions = {}): PthFile {
  const what = `pth ${path}`;
  const zip = openZipOrExplain(path, what);
  try {
    return makePth(zip, path, what, useMmap(opts.mmap));
  } catch (e) {
    zip.close();
    throw e;
  }
}

function openZipOrExplain(path: string, what: string): ZipArchive {
  try {
    return openZip(path, what);
  } catch (e) {
    if (!(e instanceof Llama2Error) || !e.message.includes('end-of-central-directory')) throw e;
    // pre-1.6 torch.save wrote a raw pickle stream (it starts with PROTO 2, then a magic number)
    const f = new FileReader(path, what);
    const head = f.size >= 2 ? f.read(0, 2) : new Uint8Array(0);
    f.close();
    if (head[0] === 0x80 && head[1] === 0x02) {
      throw new Llama2Error(`${what}: this is the legacy (pre-PyTorch 1.6) torch.save format; re-save it with a recent torch (torch.save(torch.load(f), f))`);
    }
    throw e;
  }
}

function makePth(zip: ZipArchive, path: string, what: string, mapsWeights: boolean): PthFile {
  const pkl = [...zip.entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new Llama2Error(`${what}: zip archive has no <archive>/data.pkl entry; not a torch.save checkpoint`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const bo = zip.entries.get(prefix + 'byteorder');
  if (bo && Buffer.from(zip.read(bo.name)).toString('latin1').trim() !== 'little') {
    throw new Llama2Error(`${what}: checkpoint was saved on a big-endian machine; only little-endian checkpoints are supported`);
  }
  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: PyValue): PyValue => {
    if (!isTuple(pid) || pid[0] !== 'storage' || pid.length < 5) {
      throw new Llama2Error(`${what}: unexpected persistent id ${typeName(pid)} (expected ('storage', type, key, location, numel))`);
    }
    const [, type, key, , n] = pid;
    const tname = type && typeof type === 'object' && 'kind' in type && type.kind === 'global' ? type.qualname.replace(/^torch\./, '') : '';
    const dtype = STORAGES[tname];
    if (!dtype || typeof key !== 'string' || typeof n !== 'number') {
      throw new Llama2Error(`${what}: persistent id names storage type ${typeName(type ?? null)} ${plain(tname, 80)}; expected one of torch.${Object.keys(STORAGES).join(', torch.')}`);
    }
    let s = storages.get(key);
    if (!s) {
      s = { kind: 'storage', dtype, key, numel: n };
      storages.set(key, s);
    }
    return s;
  };
  const root = unpickle(zip.read(pkl), {
    what,
    globals: torchGlobals(what),
    persistentLoad,
    unsupported: (q) => (/^torch\.\w+Storage$/.test(q) ? `storage type ${plain(q, 80)} is not supported (expected float, half, bfloat16 or integer storages)` : null),
  });

  const tensors = new Map<string, PthTensor>();
  const walk = (v: PyValue, name: string): void => {
    if (v instanceof PyDict) {
      for (const [k, x] of v.map) walk(x, name ? `${name}.${String(k)}` : String(k));
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, name ? `${name}.${i}` : String(i)));
    } else if (v && typeof v === 'object' && 'kind' in v && v.kind === 'tensor') {
      tensors.set(name, { name, dtype: v.storage.dtype, shape: v.shape, stride: v.stride, storageOffset: v.storageOffset, storageKey: v.storage.key });
    }
  };
  walk(root, '');

  /** the tensor's storage entry and byte range in it, checked contiguous and inside the entry */
  const locate = (name: string): [string, number, number] => {
    const t = tensors.get(name);
    if (!t) throw new Llama2Error(`${what}: no tensor named ${quote(name)}`);
    // row-major strides; dims of size 1 may carry any stride
    let expect = 1;
    for (let i = t.shape.length - 1; i >= 0; i--) {
      if (t.shape[i] !== 1 && t.stride[i] !== expect) {
        throw new Llama2Error(
          `${what}: tensor ${quote(name)} is not contiguous (shape [${t.shape.join(', ')}], stride [${t.stride.join(', ')}]); re-save it with .contiguous()`,
        );
      }
      expect *= t.shape[i]!;
    }
    const size = TORCH_DTYPE_SIZE[t.dtype];
    const entry = `${prefix}data/${t.storageKey}`;
    const e = zip.entries.get(entry);
    if (!e) throw new Llama2Error(`${what}: tensor ${quote(name)} points at storage entry ${quote(entry)}, which the archive lacks`);
    const begin = t.storageOffset * size;
    const len = numel(t.shape) * size;
    if (begin + len > e.size) {
      throw new Llama2Error(`${what}: tensor ${quote(name)} needs bytes ${begin}..${begin + len} of storage ${quote(entry)}, which has ${e.size} bytes (truncated checkpoint?)`);
    }
    return [entry, begin, len];
  };
  const bytes = (name: string): Uint8Array => zip.read(...locate(name));

  // one mapping of the file, a window per float tensor whose bytes suit its element size
  let windows: Map<string, ArrayBuffer> | null = null;
  const mapped = (name: string): ArrayBuffer | undefined => {
    if (!windows) {
      const names: string[] = [], ranges: Array<{ offset: number; length: number }> = [];
      for (const [n, t] of tensors) {
        if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') continue;
        let len: number, offset: number;
        try {
          const [entry, begin, n_] = locate(n);
          len = n_;
          offset = zip.fileOffset(entry, begin, len);
        } catch (e) {
          // not contiguous, past its storage, compressed: bytes() says so when that tensor is asked for
          if (e instanceof Llama2Error) continue;
          throw e;
        }
        if (len === 0 || offset % TORCH_DTYPE_SIZE[t.dtype] !== 0) continue;
        names.push(n);
        ranges.push({ offset, length: len });
      }
      const bufs = ranges.length ? mapRanges(path, ranges) : [];
      windows = new Map(names.map((n, i) => [n, bufs[i]!]));
    }
    return windows.get(name);
  };

  return {
    path,
    tensors,
    root,
    bytes,
    mapsWeights,
    weight(name: string): WeightTensor {
      const t = tensors.get(name);
      if (!t) throw new Llama2Error(`${what}: no tensor named ${quote(name)}`);
      if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') {
        const w = mapsWeights ? mapped(name) : undefined;
        return { dtype: t.dtype, shape: [...t.shape], data: w ? new Uint8Array(w) : bytes(name) };
      }
      const b = bytes(name);
      if (t.dtype === 'F64') {
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        const f = new Float32Array(b.length / 8);
        for (let i = 0; i < f.length; i++) f[i] = dv.getFloat64(i * 8, true);
        return { dtype: 'F32', shape: [...t.shape], data: new Uint8Array(f.buffer) };
      }
      throw new Llama2Error(`${what}: tensor ${quote(name)} has dtype ${t.dtype}; a weight must be F32, F16, BF16 or F64`);
    },
    close: () => zip.close(),
  };
}
