/**
 * The native CPU backend: the Backend interface over the C addon built from native/ by node-gyp
 * (build/Release/llama2_native.node). SIMD kernels chosen at load for the CPU (AVX-512, AVX2,
 * NEON or scalar) and a persistent thread pool; see native/*.c for what each kernel does.
 *
 * Importing this module never throws: when the addon is missing or fails to load,
 * `nativeBackend` is null and `nativeLoadError` says why (select.ts then falls back to ref).
 * Environment: LLAMA2_NATIVE_PATH = explicit path of the .node file; LLAMA2_NATIVE_ISA = force a
 * lower ISA level (scalar | avx2 | avx512 | neon), for debugging and comparisons.
 *
 * Numerics differ from ref in two documented ways: sums accumulate in f32 (ref: float64), and
 * matmul with quantized weights rounds the activations to int8 blocks first, at every T (the spec
 * is src/backend/q8act.ts). prepareModel hands a whole model to the native engine
 * (native/engine.c): one call per forward pass. The training kernels (native/train_*.c,
 * addon_train.c) are bit-identical across thread counts; an addon built before them gets the
 * reference versions (trainKernels below), one built before packed attention rows (AttnShape
 * starts) the reference attention for packed rows. This file holds no kernel code.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { addonLoadError, rawAddon } from '../util/addon.js';
import type { AdamWUpdate, AttnShape, Backend, GemmLayout, PreparedModel, PreparedModelInput } from './types.js';
import { refBackend } from './ref.js';
import { checkAttnStarts } from './attn-starts.js';
import { ffnHiddenDim } from '../model/config.js';
import type { DType, WeightTensor } from '../tensor.js';

export type NativeIsa = 'scalar' | 'avx2' | 'avx512' | 'neon';

/** What the addon exports (native/addon.c). */
interface Addon {
  gemm(c: Float32Array, a: Float32Array, b: Float32Array, M: number, N: number, K: number, layout: number, accumulate: boolean): void;
  matmul(y: Float32Array, x: Float32Array, w: Uint8Array, dtype: number, N: number, K: number, T: number): void;
  /** matmul through the engine's regrouped layout (Q4_0 / Q8_0 / Q4_K, N a multiple of 8); for tests */
  matmulRegrouped?(y: Float32Array, x: Float32Array, w: Uint8Array, dtype: number, N: number, K: number, T: number): void;
  rmsnorm(y: Float32Array, x: Float32Array, g: Float32Array, T: number, eps: number): void;
  rope(x: Float32Array, T: number, nHeads: number, headSize: number, pos: Int32Array, theta: number): void;
  attention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, T: number, pos0: number,
    nHeads: number, nKvHeads: number, headSize: number): void;
  swiglu(gate: Float32Array, up: Float32Array, n: number): void;
  embedding(out: Float32Array, table: Uint8Array, dtype: number, V: number, C: number, ids: Int32Array): void;
  add(x: Float32Array, y: Float32Array, n: number): void;
  setThreads(n: number): void;
  threads(): number;
  isa(): NativeIsa;
  setIsa(isa: string): void;
  supportedIsas(): NativeIsa[];
  quantizeQ8(x: Float32Array, d: Float32Array, qs: Int8Array, sums: Int32Array): void;
  readProbe(values: Float32Array, reps: number): number;
  sampleDraw?(w: Float32Array, temperature: number, topK: number, topP: number, minP: number, r: number, mass?: Float64Array): number;
  mmapFile(path: string): ArrayBuffer;
  mmapRanges(path: string, offsets: Float64Array, lengths: Float64Array): ArrayBuffer[];
  engineCreate(cfg: Float64Array, mats: Uint8Array[], dtypes: Int32Array, norms: Float32Array[], repack?: number): EngineHandle;
  engineForward(h: EngineHandle, ids: Int32Array, segN: Int32Array, segPos0: Int32Array, kCaches: Float32Array[],
    vCaches: Float32Array[], logitRows: Int32Array, logits: Float32Array, hidden: Float32Array | null): void;
  INT8_MAX_T: number;
  GEMM_MIN_T: number;
  // training kernels (native/addon_train.c); absent from an addon built before them
  xentForward?(x: Float32Array, targets: Int32Array, nll: Float32Array, inv: Float64Array, V: number): void;
  xentBackward?(x: Float32Array, inv: Float64Array, targets: Int32Array, coef: Float64Array, V: number): void;
  adamw?(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, hp: Float64Array): void;
  sumSquares?(x: Float32Array): number;
  rmsnormBackward?(dx: Float32Array | null, dg: Float32Array | null, dy: Float32Array, x: Float32Array, g: Float32Array, T: number, eps: number): void;
  swigluForward?(h: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  swigluBackward?(da: Float32Array | null, db: Float32Array | null, dh: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  ropeRotate?(y: Float32Array, x: Float32Array, T: number, nHeads: number, headSize: number, pos: Int32Array, theta: number,
    inverse: boolean, accumulate: boolean): void;
  /** starts: the segment starts of packed rows (AttnShape.starts), only when ATTN_STARTS is set */
  attentionTrain?(out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
    B: number, T: number, NH: number, NKV: number, HS: number, starts?: Int32Array | null): void;
  attentionTrainBackward?(dq: Float32Array | null, dk: Float32Array | null, dv: Float32Array | null, dout: Float32Array,
    q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array,
    B: number, T: number, NH: number, NKV: number, HS: number, starts?: Int32Array | null): void;
  /** true when the attention kernels take segment starts (absent from an addon built before them) */
  ATTN_STARTS?: boolean;
}

/** An opaque native engine record (native/engine.h); it borrows the weight memory. */
declare const engineBrand: unique symbol;
type EngineHandle = { readonly [engineBrand]: true };

export interface NativeBackend extends Backend {
  /** Size of the thread pool (the caller counts as one thread); 1..256. */
  setThreads(n: number): void;
  threads(): number;
  /** The kernel set in use, those this CPU can run (lowest first), and a switch between them. */
  isa(): NativeIsa;
  supportedIsas(): NativeIsa[];
  setIsa(isa: NativeIsa): void;
  /** True when matmul(…, w of `dtype`, T) rounds x to int8 blocks (see q8act.ts). */
  matmulUsesInt8(dtype: DType, T: number): boolean;
  /**
   * y (T, N) = x · Wᵀ through the layout the engine regroups Q4_0 / Q8_0 / Q4_K matrices into
   * (eight rows side by side, native/repack.c); N a multiple of 8. For the conformance tests.
   */
  matmulRegrouped(y: Float32Array, x: Float32Array, w: WeightTensor, T: number): void;
  /** The int8 activation quantizer itself, K = x.length (a multiple of 32): for tests. */
  quantizeQ8(x: Float32Array, d: Float32Array, qs: Int8Array, sums: Int32Array): void;
  /** Σ values computed `reps` times on the pool, read the way a decode matvec reads its weight rows
   * (four 16 KiB rows at a time): reads every byte once; for bandwidth measurements. */
  readProbe(values: Float32Array, reps: number): number;
  /**
   * The whole file as an ArrayBuffer over a private memory mapping: no copy, pages load on
   * first touch and are shared with the page cache. Writes stay private to this process (the
   * file never changes). The mapping is released when the ArrayBuffer is garbage-collected.
   */
  mmapFile(path: string): ArrayBuffer;
  /**
   * One mapping of the whole file, returned as one ArrayBuffer per [offset, offset+length) range
   * (each must lie inside the file). For files over 4 GiB, which Node cannot hand out as a single
   * external buffer. The mapping is released when every range's buffer is garbage-collected.
   */
  mmapRanges(path: string, ranges: ReadonlyArray<{ offset: number; length: number }>): ArrayBuffer[];
}

/** Codes of native/common.h (DT_*), in the order of src/tensor.ts DType. */
const DTYPE_CODE: Readonly<Record<DType, number>> = {
  F32: 0, F16: 1, BF16: 2, Q4_0: 3, Q4_1: 4, Q5_0: 5, Q5_1: 6, Q8_0: 7,
  Q2_K: 8, Q3_K: 9, Q4_K: 10, Q5_K: 11, Q6_K: 12,
};
const INT8_DTYPES: ReadonlySet<DType> = new Set(['Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K']);
const LAYOUT_CODE: Readonly<Record<GemmLayout, number>> = { NT: 0, NN: 1, TN: 2 };
function weight2d(w: WeightTensor, what: string): [number, number] {
  if (w.shape.length !== 2) throw new Error(`${what}: weight must be 2-D, got [${w.shape.join(', ')}]`);
  return [w.shape[0]!, w.shape[1]!];
}

/**
 * The native engine over a model: the weight and norm arrays are passed once and kept referenced
 * here (the engine holds raw pointers into them), so they live as long as this object.
 */
function prepare(a: Addon, m: PreparedModelInput): PreparedModel {
  const c = m.config;
  const w = m.weights;
  const mats: WeightTensor[] = [w.tok_embeddings, w.output];
  for (const l of w.layers) mats.push(l.wq, l.wk, l.wv, l.wo, l.w1, l.w2, l.w3);
  const data = mats.map((t) => t.data);
  const norms = [m.finalNorm];
  for (let l = 0; l < c.n_layers; l++) norms.push(m.attnNorm[l]!, m.ffnNorm[l]!);
  const cfg = Float64Array.of(c.dim, c.n_layers, c.n_heads, c.n_kv_heads, ffnHiddenDim(c), c.vocab_size, c.norm_eps, c.rope_theta);
  const repack = m.repack ?? (process.env['LLAMA2_REPACK'] === '0' ? 'never' : 'mapped');
  const handle = a.engineCreate(cfg, data, Int32Array.from(mats, (t) => DTYPE_CODE[t.dtype]), norms,
    repack === 'never' ? 0 : repack === 'mapped' ? 1 : 2);
  const keep = { data, norms }; // referenced by the closure below: alive while the handle is
  return {
    forward(ids, segments, logitRows, logits, hidden) {
      const kc: Float32Array[] = [];
      const vc: Float32Array[] = [];
      const segN = new Int32Array(segments.length);
      const segPos0 = new Int32Array(segments.length);
      segments.forEach((s, i) => {
        segN[i] = s.n;
        segPos0[i] = s.pos0;
        for (const k of s.k) kc.push(k);
        for (const v of s.v) vc.push(v);
      });
      a.engineForward(handle, ids, segN, segPos0, kc, vc, logitRows, logits, hidden);
      void keep;
    },
  };
}

function wrap(a: Addon): NativeBackend {
  return {
    name: 'native',
    gemm: (c, x, y, M, N, K, layout, accumulate) => a.gemm(c, x, y, M, N, K, LAYOUT_CODE[layout], accumulate),
    matmul: (y, x, w, T) => {
      const [N, K] = weight2d(w, 'matmul');
      a.matmul(y, x, w.data, DTYPE_CODE[w.dtype], N, K, T);
    },
    rmsnorm: (y, x, g, T, eps) => a.rmsnorm(y, x, g, T, eps),
    rope: (x, T, nHeads, headSize, pos, theta) => a.rope(x, T, nHeads, headSize, pos, theta),
    attention: (out, q, k, v, T, pos0, nHeads, nKvHeads, headSize) =>
      a.attention(out, q, k, v, T, pos0, nHeads, nKvHeads, headSize),
    swiglu: (gate, up, n) => a.swiglu(gate, up, n),
    embedding: (out, table, ids) => {
      const [V, C] = weight2d(table, 'embedding');
      a.embedding(out, table.data, DTYPE_CODE[table.dtype], V, C, ids);
    },
    add: (x, y, n) => a.add(x, y, n),
    setThreads: (n) => a.setThreads(n),
    threads: () => a.threads(),
    isa: () => a.isa(),
    supportedIsas: () => a.supportedIsas(),
    setIsa: (isa) => a.setIsa(isa),
    matmulRegrouped: (y, x, w, T) => {
      const [N, K] = weight2d(w, 'matmulRegrouped');
      if (!a.matmulRegrouped) throw new Error('matmulRegrouped: this native addon was built without it (rebuild: npm run build:native)');
      a.matmulRegrouped(y, x, w.data, DTYPE_CODE[w.dtype], N, K, T);
    },
    matmulUsesInt8: (dtype, T) => INT8_DTYPES.has(dtype) && T >= 1 && T <= a.INT8_MAX_T,
    quantizeQ8: (x, d, qs, sums) => a.quantizeQ8(x, d, qs, sums),
    readProbe: (values, reps) => a.readProbe(values, reps),
    ...(a.sampleDraw ? { sampleDraw: a.sampleDraw.bind(a) } : {}),
    mmapFile: (path) => a.mmapFile(path),
    mmapRanges: (path, ranges) => a.mmapRanges(path, Float64Array.from(ranges, (r) => r.offset), Float64Array.from(ranges, (r) => r.length)),
    prepareModel: (m) => prepare(a, m),
    ...trainKernels(a),
  };
}

type TrainKernels = Pick<Backend, 'xentForward' | 'xentBackward' | 'adamw' | 'sumSquares' | 'rmsnormBackward' |
  'swigluForward' | 'swigluBackward' | 'ropeRotate' | 'attentionTrain' | 'attentionTrainBackward'>;

/** The training kernels of the addon; the reference ones when the addon predates them (stale build). */
function trainKernels(a: Addon): TrainKernels {
  const { xentForward, xentBackward, adamw, sumSquares, rmsnormBackward, swigluForward, swigluBackward, ropeRotate,
    attentionTrain, attentionTrainBackward } = a;
  if (!xentForward || !xentBackward || !adamw || !sumSquares || !rmsnormBackward || !swigluForward || !swigluBackward ||
    !ropeRotate || !attentionTrain || !attentionTrainBackward) {
    const r = refBackend;
    return {
      xentForward: r.xentForward, xentBackward: r.xentBackward, adamw: r.adamw, sumSquares: r.sumSquares,
      rmsnormBackward: r.rmsnormBackward, swigluForward: r.swigluForward, swigluBackward: r.swigluBackward,
      ropeRotate: r.ropeRotate, attentionTrain: r.attentionTrain, attentionTrainBackward: r.attentionTrainBackward,
    };
  }
  const hp = new Float64Array(8); // AdamW constants in native/train.h HP_* order
  const adamwHp = (u: AdamWUpdate): Float64Array => {
    hp[0] = u.decay; hp[1] = u.beta1; hp[2] = u.c1; hp[3] = u.beta2; hp[4] = u.c2; hp[5] = u.stepSize; hp[6] = u.invSqrtBc2; hp[7] = u.eps;
    return hp;
  };
  return {
    xentForward: (x, targets, nll, inv, V) => xentForward(x, targets, nll, inv, V),
    xentBackward: (x, inv, targets, coef, V) => xentBackward(x, inv, targets, coef, V),
    adamw: (w, g, m, v, u) => adamw(w, g, m, v, adamwHp(u)),
    sumSquares: (x) => sumSquares(x),
    rmsnormBackward: (dx, dg, dy, x, g, T, eps) => rmsnormBackward(dx, dg, dy, x, g, T, eps),
    swigluForward: (h, x, y, n) => swigluForward(h, x, y, n),
    swigluBackward: (da, db, dh, x, y, n) => swigluBackward(da, db, dh, x, y, n),
    ropeRotate: (y, x, T, nHeads, headSize, pos, theta, inverse, accumulate) =>
      ropeRotate(y, x, T, nHeads, headSize, pos, theta, inverse, accumulate),
    // packed rows: validated here (a Llama2Error naming the position; the addon re-checks for
    // memory safety); an addon built before packed attention would ignore starts, so ref runs them
    attentionTrain: (out, lse, q, k, v, s: AttnShape) => {
      if (!s.starts) return attentionTrain(out, lse, q, k, v, s.B, s.T, s.NH, s.NKV, s.HS);
      if (!a.ATTN_STARTS) return refBackend.attentionTrain(out, lse, q, k, v, s);
      checkAttnStarts(s.starts, s.B, s.T, 'attentionTrain');
      attentionTrain(out, lse, q, k, v, s.B, s.T, s.NH, s.NKV, s.HS, s.starts);
    },
    attentionTrainBackward: (dq, dk, dv, dout, q, k, v, out, lse, s: AttnShape) => {
      if (!s.starts) return attentionTrainBackward(dq, dk, dv, dout, q, k, v, out, lse, s.B, s.T, s.NH, s.NKV, s.HS);
      if (!a.ATTN_STARTS) return refBackend.attentionTrainBackward(dq, dk, dv, dout, q, k, v, out, lse, s);
      checkAttnStarts(s.starts, s.B, s.T, 'attentionTrainBackward');
      attentionTrainBackward(dq, dk, dv, dout, q, k, v, out, lse, s.B, s.T, s.NH, s.NKV, s.HS, s.starts);
    },
  };
}

function load(): { backend: NativeBackend | null; error: string | null } {
  try {
    const addon = rawAddon() as Addon | null;
    if (!addon) throw new Error(addonLoadError() ?? 'the native addon did not load');
    const backend = wrap(addon);
    const isa = process.env['LLAMA2_NATIVE_ISA'];
    if (isa) backend.setIsa(isa as NativeIsa);
    backend.setThreads(Math.max(1, Math.min(256, availableParallelism())));
    return { backend, error: null };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return { backend: null, error: msg.split('\n')[0] ?? msg };
  }
}

const loaded = load();

/**
 * Another build of the addon (the .node file at `path`) behind the same interface, loaded beside
 * the default one: for timing two builds against each other in one process (bench/ab.ts). Each
 * copy has its own thread pool and kernel tables. Throws when the file does not load.
 *
 *   const base = loadNativeBackendFrom('/tmp/base.node'); base.setThreads(1);
 */
export function loadNativeBackendFrom(path: string): NativeBackend {
  const backend = wrap(createRequire(import.meta.url)(resolve(path)) as Addon);
  backend.setThreads(Math.max(1, Math.min(256, availableParallelism())));
  return backend;
}

/** The native backend, or null when the addon could not be loaded (see nativeLoadError). */
export const nativeBackend: NativeBackend | null = loaded.backend;
/** Why the addon did not load (one line), or null when it did. */
export const nativeLoadError: string | null = loaded.error;
