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
 * matmul with quantized weights at T ≤ INT8_MAX_T rounds the activations to int8 blocks first
 * (the spec is src/backend/q8act.ts). This file holds no kernel code.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import type { Backend, GemmLayout } from './types.js';
import type { DType, WeightTensor } from '../tensor.js';

export type NativeIsa = 'scalar' | 'avx2' | 'avx512' | 'neon';

/** What the addon exports (native/addon.c). */
interface Addon {
  gemm(c: Float32Array, a: Float32Array, b: Float32Array, M: number, N: number, K: number, layout: number, accumulate: boolean): void;
  matmul(y: Float32Array, x: Float32Array, w: Uint8Array, dtype: number, N: number, K: number, T: number): void;
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
  mmapFile(path: string): ArrayBuffer;
  INT8_MAX_T: number;
  GEMM_MIN_T: number;
}

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
  /** The int8 activation quantizer itself, K = x.length (a multiple of 32): for tests. */
  quantizeQ8(x: Float32Array, d: Float32Array, qs: Int8Array, sums: Int32Array): void;
  /** Σ values² computed `reps` times on the pool: reads every byte once; for bandwidth measurements. */
  readProbe(values: Float32Array, reps: number): number;
  /**
   * The whole file as an ArrayBuffer over a private memory mapping: no copy, pages load on
   * first touch and are shared with the page cache. Writes stay private to this process (the
   * file never changes). The mapping is released when the ArrayBuffer is garbage-collected.
   */
  mmapFile(path: string): ArrayBuffer;
}

/** Codes of native/common.h (DT_*), in the order of src/tensor.ts DType. */
const DTYPE_CODE: Readonly<Record<DType, number>> = {
  F32: 0, F16: 1, BF16: 2, Q4_0: 3, Q4_1: 4, Q5_0: 5, Q5_1: 6, Q8_0: 7,
  Q2_K: 8, Q3_K: 9, Q4_K: 10, Q5_K: 11, Q6_K: 12,
};
const INT8_DTYPES: ReadonlySet<DType> = new Set(['Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K']);
const LAYOUT_CODE: Readonly<Record<GemmLayout, number>> = { NT: 0, NN: 1, TN: 2 };
const ADDON_FILE = 'llama2_native.node';

/** The addon next to the package root (the first directory up from here with a package.json). */
function findAddon(): string {
  const explicit = process.env['LLAMA2_NATIVE_PATH'];
  if (explicit) return explicit;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      for (const sub of ['Release', 'Debug']) {
        const p = join(dir, 'build', sub, ADDON_FILE);
        if (existsSync(p)) return p;
      }
      throw new Error(`${join(dir, 'build', 'Release', ADDON_FILE)} does not exist (build it with: npm run build:native)`);
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${dirname(fileURLToPath(import.meta.url))} to find build/Release/${ADDON_FILE} in`);
    dir = up;
  }
}

function weight2d(w: WeightTensor, what: string): [number, number] {
  if (w.shape.length !== 2) throw new Error(`${what}: weight must be 2-D, got [${w.shape.join(', ')}]`);
  return [w.shape[0]!, w.shape[1]!];
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
    matmulUsesInt8: (dtype, T) => INT8_DTYPES.has(dtype) && T >= 1 && T <= a.INT8_MAX_T,
    quantizeQ8: (x, d, qs, sums) => a.quantizeQ8(x, d, qs, sums),
    readProbe: (values, reps) => a.readProbe(values, reps),
    mmapFile: (path) => a.mmapFile(path),
  };
}

function load(): { backend: NativeBackend | null; error: string | null } {
  try {
    const addon = createRequire(import.meta.url)(findAddon()) as Addon;
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

/** The native backend, or null when the addon could not be loaded (see nativeLoadError). */
export const nativeBackend: NativeBackend | null = loaded.backend;
/** Why the addon did not load (one line), or null when it did. */
export const nativeLoadError: string | null = loaded.error;
