/**
 * A/B timing of two builds of the native addon in one process: the build in build/Release ("new")
 * against another .node file ("base": e.g. the same sources before a kernel change), on the same
 * inputs, with the repetitions alternating between the two (ABBA order) so both see the same
 * machine load. Before timing, each output of the new build is compared with the base build's
 * (the largest difference relative to the largest |value| is printed: 0 when a change keeps every
 * value, as the AVX-512 kernels that follow the AVX2 ones do).
 *
 *   kernels  matvec (T = 1, 96 MiB of weights, from DRAM) and prefill matmul (T = 128, 4096×4096)
 *            per dtype, weights in the file layout (the engine's regrouped Q4_0 / Q8_0 / Q4_K
 *            layouts are timed by the model rows)
 *   models   prefill (128-token prompt) and decode (from an empty cache) of the random-weight GGUF
 *            files of bench/model-files.ts, as bench/infer.ts times them
 *
 * Usage: node dist/bench/ab.js --base=PATH.node [--isa=avx512] [--threads=1,2] [--reps=15]
 *        [--only=kernels,models] [--models=stories110m,…] [--dtypes=Q4_0,…] [--json]
 * A base build: git stash push native/ && npm run build:native &&
 *   cp build/Release/llama2_native.node /tmp/base.node && git stash pop && npm run build:native
 * Figures are medians and best values over the repetitions (kernels: each repetition the best call
 * within 150 ms), and new ÷ base of each (> 1: the new build is faster; on a loaded machine the
 * ratio of the best values is the steadier one). This file is not a test.
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadNativeBackendFrom, nativeBackend, nativeLoadError, type NativeBackend, type NativeIsa } from '../src/backend/native.js';
import { Model } from '../src/model/forward.js';
import { readGgufModel } from '../src/formats/gguf.js';
import { DTYPE_LAYOUT, type DType } from '../src/tensor.js';
import { Llama2Error } from '../src/util/errors.js';
import { ensureModelFile, MODEL_LABEL, type BenchModel } from './model-files.js';
import { parseIsas, randomWeight, time, validate } from './infer.js';
import { rand } from './util.js';

/** the rows of issue 16's comparison: every model and dtype the brief names, 7B aside */
const DEFAULT_ROWS: Array<[BenchModel, DType[]]> = [
  ['stories15m', ['F32', 'Q8_0', 'Q4_0']],
  ['stories110m', ['F32', 'Q8_0', 'Q4_0']],
  ['tinyllama-1.1b', ['Q8_0', 'Q4_0', 'F16']],
];
const DECODE: Readonly<Record<BenchModel, number>> = { 'stories15m': 128, 'stories110m': 64, 'tinyllama-1.1b': 16, 'llama2-7b': 8 };
const KERNEL_DTYPES: DType[] = ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K'];
const P = 128;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** max |a − b| over max |a|: how far the new build's output is from the base build's */
function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i]! - b[i]!)); m = Math.max(m, Math.abs(a[i]!)); }
  return m > 0 ? d / m : d;
}

interface AbOptions {
  base: NativeBackend;
  cur: NativeBackend;
  isa: NativeIsa;
  threads: number[];
  reps: number;
  log: (line: string) => void;
  results: Record<string, number | string>;
}

interface Pair { a: number; b: number; bestA: number; bestB: number }

/** reps measurements of each of a and b (rates: higher is better), alternating ABBA; returns their
 * medians and their best values (a neighbour's burst only ever slows a run down) */
function alternate(o: AbOptions, a: () => number, b: () => number): Pair {
  const ta: number[] = [], tb: number[] = [];
  for (let r = 0; r < o.reps; r++) {
    if (r % 2 === 0) { ta.push(a()); tb.push(b()); } else { tb.push(b()); ta.push(a()); }
  }
  return { a: median(ta), b: median(tb), bestA: Math.max(...ta), bestB: Math.max(...tb) };
}

function setBoth(o: AbOptions, th: number): void {
  for (const be of [o.base, o.cur]) { be.setIsa(o.isa); be.setThreads(th); }
}

const HEAD = `${'base'.padStart(9)} | ${'new'.padStart(9)} | ratio   | best: base |       new | ratio   | unit    | new vs base`;
const line = (label: string, unit: string, p: Pair, diff: number) =>
  `${label.padEnd(44)} | ${p.a.toFixed(1).padStart(9)} | ${p.b.toFixed(1).padStart(9)} | ${(p.b / p.a).toFixed(3).padStart(6)}× | ` +
  `${p.bestA.toFixed(1).padStart(10)} | ${p.bestB.toFixed(1).padStart(9)} | ${(p.bestB / p.bestA).toFixed(3).padStart(6)}× | ${unit.padEnd(7)} | ${diff.toExponential(1)}`;
const ratio = (p: Pair) => Math.round((1000 * p.b) / p.a) / 1000;

function kernelSection(o: AbOptions): void {
  o.log(`\n## kernels, base vs new (${o.isa}): medians of ${o.reps} alternating repetitions`);
  o.log(`${'kernel'.padEnd(44)} | ${HEAD}`);
  const K = 4096;
  for (const th of o.threads) {
    for (const dtype of KERNEL_DTYPES) {
      const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
      const N = Math.floor((96 << 20) / ((K / blockSize) * typeSize) / 8) * 8;
      const w = randomWeight(dtype, N, K), x = rand(K, 5);
      const ya = new Float32Array(N), yb = new Float32Array(N);
      setBoth(o, th);
      o.base.matmul(ya, x, w, 1);
      o.cur.matmul(yb, x, w, 1);
      validate(o.cur, `matvec ${dtype}`, w, x, yb, 1);
      const gb = (s: number) => w.data.length / s / 1e9;
      const t = alternate(o, () => gb(time(() => o.base.matmul(ya, x, w, 1), 150)), () => gb(time(() => o.cur.matmul(yb, x, w, 1), 150)));
      o.results[`ab_matvec_${dtype.toLowerCase()}_${th}t`] = ratio(t);
      o.log(line(`matvec ${dtype} ${N}×${K} ${th}t`, 'GB/s', t, relDiff(ya, yb)));
    }
    for (const dtype of KERNEL_DTYPES) {
      const w = randomWeight(dtype, K, K), x = rand(P * K, 6);
      const ya = new Float32Array(P * K), yb = new Float32Array(P * K);
      setBoth(o, th);
      o.base.matmul(ya, x, w, P);
      o.cur.matmul(yb, x, w, P);
      validate(o.cur, `prefill matmul ${dtype}`, w, x, yb, P);
      const gf = (s: number) => (2 * P * K * K) / s / 1e9;
      const t = alternate(o, () => gf(time(() => o.base.matmul(ya, x, w, P), 150)), () => gf(time(() => o.cur.matmul(yb, x, w, P), 150)));
      o.results[`ab_prefill_matmul_${dtype.toLowerCase()}_${th}t`] = ratio(t);
      o.log(line(`prefill matmul ${dtype} T=${P} ${K}×${K} ${th}t`, 'GFLOP/s', t, relDiff(ya, yb)));
    }
  }
}

function modelSection(o: AbOptions, rows: Array<[BenchModel, DType[]]>): void {
  o.log(`\n## models, base vs new (${o.isa}): tok/s, medians of ${o.reps} alternating repetitions; prefill = ${P}-token prompt, decode from an empty cache`);
  o.log(`${'row'.padEnd(44)} | ${HEAD} (logits)`);
  for (const [bm, dtypes] of rows) {
    for (const dtype of dtypes) {
      const made = ensureModelFile(bm, dtype, (p) => o.log(`(writing ${p} with random weights …)`));
      const loaded = readGgufModel(made.path);
      const D = DECODE[bm];
      const config = { ...loaded.config, max_seq_len: P + D + 2 };
      // 'always': the base build did not map the file itself, so it would otherwise keep the file layout
      const models = [o.base, o.cur].map((be) => new Model(config, loaded.weights, be, { repack: 'always' })) as [Model, Model];
      const prompt = Array.from({ length: P }, (_, i) => 1 + ((i * 7919) % (config.vocab_size - 1)));
      for (const th of o.threads) {
        setBoth(o, th);
        const caches = models.map((m) => m.newCache());
        const logits = models.map((m, i) => { caches[i]!.length = 0; return m.step(prompt, caches[i]!, 'last').slice(); });
        const prefill = (i: 0 | 1) => () => {
          caches[i]!.length = 0;
          const t0 = performance.now();
          models[i].step(prompt, caches[i]!, 'last');
          return P / ((performance.now() - t0) / 1000);
        };
        const decode = (i: 0 | 1) => () => {
          caches[i]!.length = 0;
          let id = 1;
          const t0 = performance.now();
          for (let s = 0; s < D; s++) id = 1 + (Math.floor(Math.abs(models[i].step([id], caches[i]!, 'last')[0]!) * 1e6) % (config.vocab_size - 1));
          return D / ((performance.now() - t0) / 1000);
        };
        const pre = alternate(o, prefill(0), prefill(1));
        const dec = alternate(o, decode(0), decode(1));
        const name = `${bm.replace(/[^a-z0-9]+/g, '_')}_${dtype.toLowerCase()}`;
        o.results[`ab_${name}_prefill_${th}t`] = ratio(pre);
        o.results[`ab_${name}_decode_${th}t`] = ratio(dec);
        const diff = relDiff(logits[0]!, logits[1]!);
        o.log(line(`${MODEL_LABEL[bm]} ${dtype} prefill ${th}t`, 'tok/s', pre, diff));
        o.log(line(`${MODEL_LABEL[bm]} ${dtype} decode ${th}t`, 'tok/s', dec, diff));
      }
    }
  }
}

function main(args: string[]): Record<string, number | string> {
  const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const cur = nativeBackend;
  if (!cur) throw new Llama2Error(`bench/ab: the native addon did not load (${nativeLoadError})`);
  const basePath = opt('base');
  if (!basePath) throw new Llama2Error('bench/ab: --base=PATH.node is required (the other build of the addon to time against)');
  if (!existsSync(basePath) || !statSync(basePath).isFile()) throw new Llama2Error(`bench/ab: --base: expected a built addon file; found no file at ${basePath}`);
  const base = loadNativeBackendFrom(basePath);
  const [isa] = parseIsas(cur, opt('isa') ?? cur.isa());
  const models = opt('models')?.split(',').filter(Boolean), dtypes = opt('dtypes')?.split(',').filter(Boolean);
  for (const m of models ?? []) if (!(m in MODEL_LABEL)) throw new Llama2Error(`bench/ab: --models: expected names from ${Object.keys(MODEL_LABEL).join(', ')}; found "${m}"`);
  const rows = (models ? (models as BenchModel[]).map((m): [BenchModel, DType[]] => [m, DEFAULT_ROWS.find(([d]) => d === m)?.[1] ?? ['Q4_0']]) : DEFAULT_ROWS)
    .map(([m, ds]): [BenchModel, DType[]] => [m, dtypes ? (dtypes as DType[]) : ds]);
  const only = opt('only')?.split(',') ?? ['kernels', 'models'];
  const results: Record<string, number | string> = { isa: isa! };
  const o: AbOptions = {
    base, cur, isa: isa!, results, log: (l) => process.stdout.write(l + '\n'),
    threads: (opt('threads') ?? '1').split(',').map(Number), reps: Number(opt('reps') ?? 15),
  };
  o.log(`A/B: base ${basePath} vs new (build/Release), ISA ${isa}, threads ${o.threads.join(',')}`);
  if (only.includes('kernels')) kernelSection(o);
  if (only.includes('models')) modelSection(o, rows);
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const results = main(process.argv.slice(2));
    if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(results) + '\n');
  } catch (e) {
    if (!(e instanceof Llama2Error)) throw e;
    process.stderr.write(`error: ${e.message}\n`);
    process.exit(1);
  }
}
