/**
 * The inference benchmark of the native backend (issue 3), run by `npm run bench` (bench.ts) or
 * alone: `node dist/bench/infer.js [--quick] [--big] [--json] [--threads=1,2] [--models=a,b] [--dtypes=Q4_0,…]
 * [--isa=avx2,avx512]` (--models / --dtypes pick rows of the model table, e.g. --models=llama2-7b
 * --dtypes=Q4_0; --isa runs every row and kernel once per named kernel set of the native backend,
 * back to back in one process, default: the best this CPU has; --no-kernels skips the kernel table
 * but for the read bandwidth; llama.cpp's llama-bench, when built (bench/llama-cpp.ts), is timed on
 * the same files right after each row: --llama-bench=PATH picks the binary, --no-llama-cpp skips it).
 * Every row names the ISA it ran (the `isa` column; JSON keys `<model>_<dtype>_<isa>_<figure>_<n>t`,
 * values `isa` / `isas`).
 *
 *   machine   read bandwidth (Σx over 256 MiB, four rows at a time like a matvec), matvec GB/s per weight dtype (T = 1, 96 MiB of
 *             weights), f32 GEMM GFLOP/s (512³) and prefill-matmul GFLOP/s (T = 128, 4096×4096)
 *   models    for stories15M, stories110M, TinyLlama-1.1B (and Llama-2-7B with --big): random-weight
 *             GGUF files written by the project (bench/model-files.ts, cached in bench/.cache/) in
 *             F32 (F16 for the big two), F16, Q8_0, Q4_0, Q4_K, loaded memory-mapped; prefill tok/s
 *             of a 128-token prompt and decode tok/s (llama-bench "tg" style: from an empty cache),
 *             at each thread count; decode as a share of the bandwidth limit
 *             (read bandwidth ÷ bytes of weight matrices read per token; the bandwidth probed
 *             again right after each row, since a shared machine's load drifts during a run).
 * Every kernel is checked against float64 values before it is timed. Figures are the best of the
 * repetitions (the JSON also has the medians of the model runs): on a shared machine another
 * process only ever slows a run down. Compare figures taken in one run. This file is not a test.
 */
import { randomFillSync } from 'node:crypto';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nativeBackend, nativeLoadError, type NativeBackend, type NativeIsa } from '../src/backend/native.js';
import { q8RoundingBound } from '../src/backend/q8act.js';
import { Model } from '../src/model/forward.js';
import { readGgufModel } from '../src/formats/gguf.js';
import { DTYPE_LAYOUT, decodeRange, f32ToF16, type DType, type WeightTensor } from '../src/tensor.js';
import type { ModelWeights } from '../src/model/weights.js';
import { ensureModelFile, MODEL_LABEL, type BenchModel } from './model-files.js';
import { rand } from './util.js';
import { findLlamaBench, runLlamaBench } from './llama-cpp.js';
import { Llama2Error } from '../src/util/errors.js';

export interface InferBenchOptions {
  quick: boolean;
  big: boolean;
  /** run only these models and dtypes (e.g. ['llama2-7b'], ['Q4_0']); empty = the default plan */
  models?: string[];
  dtypes?: string[];
  threads: number[];
  /** native kernel sets to run every row with, back to back; empty/undefined = the one in use */
  isas?: NativeIsa[];
  log: (line: string) => void;
  /** figures for the final JSON line */
  results: Record<string, number | string>;
  /** time llama.cpp's llama-bench on the same files right after each row: true = the default
   * binary (bench/llama-cpp.ts), a string = its path, false/undefined = no baseline */
  llamaCpp?: boolean | string;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const key = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '_');

/** seconds per call: the best of the repetitions within `budgetMs` (after one warm-up call) */
export function time(fn: () => void, budgetMs: number): number {
  fn();
  const ts: number[] = [];
  const end = performance.now() + budgetMs;
  while (ts.length < 3 || (performance.now() < end && ts.length < 500)) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1e3);
  }
  return Math.min(...ts);
}

/** random valid weights (N, K): random bytes with sane f16 scales, or random floats */
export function randomWeight(dtype: DType, N: number, K: number): WeightTensor {
  const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
  const data = new Uint8Array((N * K / blockSize) * typeSize);
  if (dtype === 'F32') {
    data.set(new Uint8Array(rand(N * K, 3).buffer));
  } else if (dtype === 'F16') {
    const h = new Uint16Array(data.buffer);
    for (let i = 0; i < h.length; i++) h[i] = f32ToF16((i % 1999) / 1999 - 0.5);
  } else {
    randomFillSync(data);
    const offs: Partial<Record<DType, number[]>> = { Q4_0: [0], Q8_0: [0], Q4_K: [0, 2], Q6_K: [208] };
    const h = f32ToF16(0.01);
    for (let b = 0; b < data.length / typeSize; b++) for (const o of offs[dtype]!) { data[b * typeSize + o] = h & 0xff; data[b * typeSize + o + 1] = h >> 8; }
  }
  return { dtype, shape: [N, K], data };
}

/** checks sampled outputs of y = x·Wᵀ (T rows) against float64 dots of the decoded rows */
export function validate(nb: NativeBackend, what: string, w: WeightTensor, x: Float32Array, y: Float32Array, T: number): void {
  const [N, K] = w.shape as [number, number];
  const row = new Float32Array(K);
  for (const [t, n] of [[0, 0], [T - 1, N - 1], [T >> 1, N >> 1]] as const) {
    decodeRange(w, n * K, K, row, 0);
    const xt = x.subarray(t * K, (t + 1) * K);
    let want = 0, mag = 0;
    for (let k = 0; k < K; k++) { want += row[k]! * xt[k]!; mag += Math.abs(row[k]! * xt[k]!); }
    const tol = (nb.matmulUsesInt8(w.dtype, T) ? q8RoundingBound(xt, row, 1, K, 1)[0]! : 0) + 1e-5 * mag;
    const got = y[t * N + n]!;
    if (!(Math.abs(got - want) <= tol)) throw new Error(`${what}: y[${t},${n}] = ${got} but float64 gives ${want} (tolerance ${tol})`);
  }
}

const MATVEC_DTYPES: DType[] = ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K'];

/** the kernel sets to run: o.isas, or the one in use */
function isasOf(nb: NativeBackend, o: InferBenchOptions): NativeIsa[] {
  return o.isas?.length ? o.isas : [nb.isa()];
}

/** read bandwidth, matvec, GEMM and prefill-matmul figures per ISA (columns: thread count × ISA, run
 * back to back); returns read GB/s per thread count */
function machineSection(nb: NativeBackend, o: InferBenchOptions): Map<number, number> {
  const { log, results, threads } = o;
  const isas = isasOf(nb, o);
  const budget = o.quick ? 150 : 500;
  const combos = threads.flatMap((th) => isas.map((isa) => ({ th, isa })));
  const cols = combos.map(({ th, isa }) => `${isa} ${th}t`.padStart(12)).join(' |');
  const W = 50;
  log(`\n## kernels (native; columns: ISA and threads): best of repetitions`);
  log(`${'kernel'.padEnd(W)} |${cols}`);
  log(`${'-'.repeat(W)}-|${combos.map(() => '-'.repeat(12)).join('-|')}`);
  const row = (label: string, vals: string[]) => log(`${label.padEnd(W)} |${vals.map((v) => v.padStart(12)).join(' |')}`);
  /** one cell per (threads, ISA): f runs with both selected */
  const cells = (f: (th: number, isa: NativeIsa) => string) => combos.map(({ th, isa }) => {
    nb.setIsa(isa);
    nb.setThreads(th);
    return f(th, isa);
  });

  const bw = new Map<number, number>();
  const probe = new Float32Array((256 << 20) / 4).fill(0.5);
  if (nb.readProbe(probe, 1) !== probe.length * 0.5) throw new Error('read probe: wrong sum');
  row('read bandwidth, 256 MiB (GB/s)', cells((th) => {
    const gbs = probe.byteLength / time(() => nb.readProbe(probe, 1), budget) / 1e9;
    bw.set(th, Math.max(gbs, bw.get(th) ?? 0));
    results[`read_bw_gb_s_${th}t`] = round(bw.get(th)!);
    return gbs.toFixed(1);
  }));

  const K = 4096;
  for (const dtype of MATVEC_DTYPES) {
    const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
    const N = Math.floor((96 << 20) / ((K / blockSize) * typeSize));
    const w = randomWeight(dtype, N, K);
    const x = rand(K, 5);
    const y = new Float32Array(N);
    row(`matvec ${dtype} ${N}×${K}, 96 MiB (GB/s, % of read)`, cells((th, isa) => {
      nb.matmul(y, x, w, 1);
      validate(nb, `matvec ${dtype} (${isa})`, w, x, y, 1);
      const gbs = w.data.length / time(() => nb.matmul(y, x, w, 1), budget) / 1e9;
      results[`matvec_${key(dtype)}_${isa}_gb_s_${th}t`] = round(gbs);
      return `${gbs.toFixed(1)} ${((100 * gbs) / bw.get(th)!).toFixed(0)}%`;
    }));
  }

  {
    const M = 512;
    const a = rand(M * M, 1), b = rand(M * M, 2), c = new Float32Array(M * M);
    row('gemm f32 512×512×512 (GFLOP/s)', cells((th, isa) => {
      const gf = (2 * M ** 3) / time(() => nb.gemm(c, a, b, M, M, M, 'NT', false), budget) / 1e9;
      results[`gemm_f32_512_${isa}_gflops_${th}t`] = round(gf, 1);
      return gf.toFixed(1);
    }));
  }
  const Tp = 128;
  for (const dtype of ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K'] as DType[]) {
    const w = randomWeight(dtype, K, K);
    const x = rand(Tp * K, 6);
    const y = new Float32Array(Tp * K);
    row(`prefill matmul ${dtype} T=${Tp} 4096×4096 (GFLOP/s)`, cells((th, isa) => {
      nb.matmul(y, x, w, Tp);
      validate(nb, `prefill matmul ${dtype} (${isa})`, w, x, y, Tp);
      const gf = (2 * Tp * K * K) / time(() => nb.matmul(y, x, w, Tp), budget) / 1e9;
      results[`prefill_matmul_${key(dtype)}_${isa}_gflops_${th}t`] = round(gf, 1);
      return gf.toFixed(1);
    }));
  }
  return bw;
}

/** just the read bandwidth per thread count (when the kernel section is skipped) */
function readBandwidth(nb: NativeBackend, o: InferBenchOptions): Map<number, number> {
  const bw = new Map<number, number>();
  const probe = new Float32Array((256 << 20) / 4).fill(0.5);
  for (const th of o.threads) {
    nb.setThreads(th);
    bw.set(th, probe.byteLength / time(() => nb.readProbe(probe, 1), o.quick ? 150 : 500) / 1e9);
    o.results[`read_bw_gb_s_${th}t`] = round(bw.get(th)!);
  }
  o.log(`\nread bandwidth: ${o.threads.map((t) => `${bw.get(t)!.toFixed(1)} GB/s (${t}t)`).join(', ')}`);
  return bw;
}

/** bytes of weight matrices one decode step reads (every layer matrix and the output head) */
function bytesPerToken(w: ModelWeights): number {
  let n = w.output.data.length;
  for (const l of w.layers) n += l.wq.data.length + l.wk.data.length + l.wv.data.length + l.wo.data.length + l.w1.data.length + l.w2.data.length + l.w3.data.length;
  return n;
}

interface ModelPlan { model: BenchModel; dtypes: DType[]; decode: number; reps: number; prefill: boolean }

function plans(o: InferBenchOptions): ModelPlan[] {
  const small: DType[] = ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K'];
  const big: DType[] = ['F16', 'Q8_0', 'Q4_0', 'Q4_K'];
  const p: ModelPlan[] = [
    { model: 'stories15m', dtypes: small, decode: o.quick ? 32 : 128, reps: o.quick ? 2 : 3, prefill: true },
    { model: 'stories110m', dtypes: o.quick ? ['F32', 'Q4_0'] : small, decode: o.quick ? 16 : 64, reps: o.quick ? 2 : 3, prefill: true },
  ];
  if (!o.quick) p.push({ model: 'tinyllama-1.1b', dtypes: big, decode: 16, reps: 2, prefill: true });
  if (o.big || o.models?.includes('llama2-7b')) p.push({ model: 'llama2-7b', dtypes: big, decode: 8, reps: 2, prefill: true });
  return p
    .filter((m) => !o.models?.length || o.models.includes(m.model))
    .map((m) => ({ ...m, dtypes: m.dtypes.filter((d) => !o.dtypes?.length || o.dtypes.includes(d)) }));
}

function modelSection(nb: NativeBackend, o: InferBenchOptions): void {
  const { log, results, threads } = o;
  const isas = isasOf(nb, o);
  const P = 128;
  log(`\n## inference (native, memory-mapped random-weight GGUF files): prefill = ${P}-token prompt, decode = from an empty cache; tok/s, ${o.quick ? 'best of 2 runs' : 'best of 2-3 runs'}`);
  log('limit = read bandwidth ÷ weight bytes per token; share = decode ÷ limit, with the bandwidth measured again right after');
  log('each row\'s decode (64 MiB, best of 3): the machine\'s load drifts during a run, the probe of the kernel table may be minutes old');
  if (isas.length > 1) log(`every row runs once per ISA (${isas.join(', ')}), the repetitions alternating between them`);
  const probe = new Float32Array((64 << 20) / 4).fill(0.5);
  let llamaBench: string | undefined;
  if (o.llamaCpp) {
    const found = findLlamaBench(typeof o.llamaCpp === 'string' ? o.llamaCpp : undefined);
    if (found.path) llamaBench = found.path;
    else log(`(llama.cpp baseline skipped: ${found.why})`);
  }
  const versus: string[] = [];
  log(`${'model'.padEnd(16)} | ${'dtype'.padEnd(5)} | ${'isa'.padEnd(6)} | ${'MB/token'.padStart(8)} | ${threads.map((t) => `prefill ${t}t | decode ${t}t | share ${t}t`).join(' | ')}`);
  log(`${'-'.repeat(16)}-|-------|--------|----------|${threads.map(() => '-----------|-------------|---------').join('-|')}`);
  for (const plan of plans(o)) {
    for (const dtype of plan.dtypes) {
      const made = ensureModelFile(plan.model, dtype, (p) => log(`(writing ${p} with random weights …)`));
      if (made.created) log(`(wrote ${(statSync(made.path).size / 1e9).toFixed(2)} GB in ${made.seconds.toFixed(0)} s)`);
      const t0 = performance.now();
      const loaded = readGgufModel(made.path);
      const loadMs = performance.now() - t0;
      const config = { ...loaded.config, max_seq_len: P + plan.decode + 2 };
      const model = new Model(config, loaded.weights, nb);
      const bytes = bytesPerToken(loaded.weights);
      const prompt = Array.from({ length: P }, (_, i) => 1 + ((i * 7919) % (config.vocab_size - 1)));
      const name = `${key(plan.model)}_${key(dtype)}`;
      results[`${name}_load_ms`] = round(loadMs, 0);
      const cells = new Map<NativeIsa, string[]>(isas.map((isa) => [isa, []]));
      for (const th of threads) {
        nb.setThreads(th);
        model.step(prompt.slice(0, 8), model.newCache(16), 'last'); // warm-up: touches every weight page
        const pre = new Map<NativeIsa, number[]>(isas.map((isa) => [isa, []]));
        const dec = new Map<NativeIsa, number[]>(isas.map((isa) => [isa, []]));
        // one cache, emptied before each run (as llama-bench does): a fresh one would add the
        // first-touch page faults of its memory to the timing
        const cache = model.newCache();
        for (let r = 0; r < plan.reps; r++) {
          for (const isa of isas) {
            nb.setIsa(isa);
            if (plan.prefill) {
              cache.length = 0;
              const a = performance.now();
              model.step(prompt, cache, 'last');
              pre.get(isa)!.push(P / ((performance.now() - a) / 1000));
            }
            cache.length = 0;
            let id = 1;
            const a = performance.now();
            for (let i = 0; i < plan.decode; i++) {
              const logits = model.step([id], cache, 'last');
              id = 1 + (Math.floor(Math.abs(logits[0]!) * 1e6) % (config.vocab_size - 1));
            }
            dec.get(isa)!.push(plan.decode / ((performance.now() - a) / 1000));
          }
        }
        let near = 0;
        for (let r = 0; r < 3; r++) {
          const a = performance.now();
          nb.readProbe(probe, 1);
          near = Math.max(near, probe.byteLength / ((performance.now() - a) / 1000) / 1e9);
        }
        results[`${name}_read_bw_gb_s_${th}t`] = round(near);
        // same file, same thread count, same prompt length and decode count, minutes apart at most
        const lc = llamaBench ? runLlamaBench(llamaBench, made.path, th, P, plan.decode, Math.max(plan.reps, 2)) : undefined;
        if (lc) {
          results[`${name}_llamacpp_prefill_tok_s_${th}t`] = round(lc.prefill, 1);
          results[`${name}_llamacpp_decode_tok_s_${th}t`] = round(lc.decode, 1);
        }
        for (const isa of isas) {
          // best of the repetitions: on a shared machine a neighbour's burst only ever slows a run down
          const pi = pre.get(isa)!, di = dec.get(isa)!;
          const p = pi.length ? Math.max(...pi) : NaN, d = Math.max(...di);
          const share = d / (near * 1e9 / bytes);
          const k = `${name}_${isa}`;
          results[`${k}_prefill_tok_s_${th}t`] = round(p, 1);
          results[`${k}_decode_tok_s_${th}t`] = round(d, 1);
          results[`${k}_prefill_tok_s_${th}t_median`] = round(pi.length ? median(pi) : NaN, 1);
          results[`${k}_decode_tok_s_${th}t_median`] = round(median(di), 1);
          results[`${k}_decode_bw_share_${th}t`] = round(share, 3);
          cells.get(isa)!.push(`${p.toFixed(1).padStart(10)} | ${d.toFixed(1).padStart(11)} | ${(100 * share).toFixed(0).padStart(6)}%`);
          if (lc) {
            results[`${k}_vs_llamacpp_prefill_${th}t`] = round(p / lc.prefill, 3);
            results[`${k}_vs_llamacpp_decode_${th}t`] = round(d / lc.decode, 3);
            versus.push(`${MODEL_LABEL[plan.model].padEnd(16)} | ${dtype.padEnd(5)} | ${isa.padEnd(6)} | ${String(th).padStart(2)} | ${p.toFixed(1).padStart(9)} | ${lc.prefill.toFixed(1).padStart(9)} | ${(p / lc.prefill).toFixed(2).padStart(5)}× | ${d.toFixed(1).padStart(9)} | ${lc.decode.toFixed(1).padStart(9)} | ${(d / lc.decode).toFixed(2).padStart(5)}×`);
          }
        }
      }
      for (const isa of isas) log(`${MODEL_LABEL[plan.model].padEnd(16)} | ${dtype.padEnd(5)} | ${isa.padEnd(6)} | ${(bytes / 1e6).toFixed(1).padStart(8)} | ${cells.get(isa)!.join(' | ')}`);
    }
  }
  if (versus.length) {
    log(`\n## against llama.cpp (${llamaBench}), measured right after each of our rows on the same file; tok/s, best of the repetitions`);
    log(`${'model'.padEnd(16)} | dtype | isa    | th | prefill   | llama.cpp | ratio  | decode    | llama.cpp | ratio`);
    log(`${'-'.repeat(16)}-|-------|--------|----|-----------|-----------|--------|-----------|-----------|-------`);
    for (const line of versus) log(line);
  }
}

/** the --isa list checked against what this CPU supports (a Llama2Error naming the flag otherwise) */
export function parseIsas(nb: NativeBackend, list: string): NativeIsa[] {
  const have = nb.supportedIsas();
  const isas = list.split(',').filter(Boolean);
  for (const isa of isas) {
    if (!(have as string[]).includes(isa)) throw new Llama2Error(`--isa: expected a comma-separated list of ${have.join(', ')} (the kernel sets this CPU supports); found "${isa}"`);
  }
  return isas as NativeIsa[];
}

export function runInferenceBench(o: InferBenchOptions & { kernels?: boolean }): void {
  const nb = nativeBackend;
  if (!nb) {
    o.log(`\n## native inference: skipped, the addon is not available (${nativeLoadError})`);
    return;
  }
  const before = nb.threads(), beforeIsa = nb.isa();
  const isas = isasOf(nb, o);
  o.results['isa'] = beforeIsa;
  o.results['isas'] = isas.join(',');
  o.log(`\nnative kernel sets: ${isas.join(', ')} (this CPU supports ${nb.supportedIsas().join(', ')}; the default is ${beforeIsa})`);
  try {
    if (o.kernels === false) readBandwidth(nb, o);
    else machineSection(nb, o);
    modelSection(nb, o);
  } finally {
    nb.setThreads(before);
    nb.setIsa(beforeIsa);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const results: Record<string, number | string> = {};
  const isaArg = args.find((a) => a.startsWith('--isa='))?.slice(6);
  try {
    runInferenceBench({
      quick: args.includes('--quick'),
      big: args.includes('--big'),
      models: args.find((a) => a.startsWith('--models='))?.slice(9).split(',').filter(Boolean),
      dtypes: args.find((a) => a.startsWith('--dtypes='))?.slice(9).split(',').filter(Boolean),
      threads: (args.find((a) => a.startsWith('--threads='))?.slice(10) ?? '1,2').split(',').map(Number),
      isas: isaArg !== undefined && nativeBackend ? parseIsas(nativeBackend, isaArg) : undefined,
      log: (l) => process.stdout.write(l + '\n'),
      results,
      kernels: !args.includes('--no-kernels'),
      llamaCpp: args.find((a) => a.startsWith('--llama-bench='))?.slice(14) ?? !args.includes('--no-llama-cpp'),
    });
  } catch (e) {
    if (!(e instanceof Llama2Error)) throw e;
    process.stderr.write(`error: ${e.message}\n`);
    process.exit(1);
  }
  if (args.includes('--json')) process.stdout.write(JSON.stringify(results) + '\n');
}
