/**
 * Training throughput: tokens/s of full training steps (forward, backward, clip to 1.0, AdamW) on
 * random tokens, the same step the PyTorch baseline times (../shared/oracle/BASELINE.md:
 * stories15M B=8 T=256 untied, ~895 tok/s at 2 threads, ~581 at 1).
 *
 *   node dist/bench/train.js [--backend ref|native] [--threads 2] [--batch 8] [--seq 256] [--steps 1]
 *                            [--warmup 0] [--vocab 32000]
 *
 * `benchTrain` is what `npm run bench` calls with its chosen backend. The reference backend is
 * slow by design (naive GEMM); expect minutes for one full-size stories15M step.
 */
import { pathToFileURL } from 'node:url';
import type { Backend } from '../src/backend/types.js';
import { refBackend } from '../src/backend/ref.js';
import { preset, type LlamaConfig } from '../src/model/config.js';
import { Tape } from '../src/train/tape.js';
import { initModelWeights, makeRng, zeroGrads } from '../src/train/params.js';
import { lmLoss, trainModel } from '../src/train/model.js';
import { AdamW, clipCoefficient } from '../src/train/optim.js';

export interface BenchTrainOptions {
  backend: Backend;
  config: LlamaConfig;
  batch: number;
  seq: number;
  /** timed steps */
  steps: number;
  /** untimed steps first (the first step also allocates the activation arena); default 0 */
  warmup?: number;
  seed?: number;
}

export interface BenchTrainResult {
  tokensPerSec: number;
  /** median over the timed steps */
  msPerStep: number;
  /** medians of the parts of a step */
  msForward: number;
  msBackward: number;
  msOptimizer: number;
  /** activation arena after the first step, MiB */
  arenaMiB: number;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function benchTrain(o: BenchTrainOptions): BenchTrainResult {
  const { config: c, batch: B, seq: T } = o;
  const model = trainModel(c, initModelWeights(c, o.seed ?? 1));
  const opt = new AdamW(model.params, { lr: 3e-4, eps: 1e-8 });
  const rand = makeRng((o.seed ?? 1) + 1);
  const x = Int32Array.from({ length: B * T }, () => Math.floor(rand() * c.vocab_size));
  const y = Int32Array.from({ length: B * T }, () => Math.floor(rand() * c.vocab_size));
  const tape = new Tape(o.backend);
  const parts: number[][] = [[], [], [], []];
  const total = (o.warmup ?? 0) + o.steps;
  for (let s = 0; s < total; s++) {
    const t0 = performance.now();
    tape.reset();
    zeroGrads(model.params);
    const r = lmLoss(tape, model, x, y, B, T);
    const t1 = performance.now();
    tape.backward(r.loss);
    const t2 = performance.now();
    opt.step(undefined, clipCoefficient(model.params, 1.0).coef);
    const t3 = performance.now();
    if (!Number.isFinite(r.value)) throw new Error(`benchTrain: loss is ${r.value}`);
    if (s >= (o.warmup ?? 0)) [t3 - t0, t1 - t0, t2 - t1, t3 - t2].forEach((v, i) => parts[i]!.push(v));
  }
  const msPerStep = median(parts[0]!);
  return {
    tokensPerSec: (B * T) / (msPerStep / 1000),
    msPerStep,
    msForward: median(parts[1]!),
    msBackward: median(parts[2]!),
    msOptimizer: median(parts[3]!),
    arenaMiB: tape.arena.bytes / 2 ** 20,
  };
}

function arg(name: string, def: number, min = 1): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} expects an integer ≥ ${min}, found ${process.argv[i + 1]}`);
  return v;
}

function strArg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? def : process.argv[i + 1] ?? def;
}

async function pickBackend(name: string, threads: number): Promise<Backend> {
  if (name === 'ref') return refBackend;
  if (name !== 'native') throw new Error(`--backend expects ref or native, found ${name}`);
  const mod = await import('../src/backend/native.js');
  if (!mod.nativeBackend) throw new Error(`native backend unavailable: ${mod.nativeLoadError}`);
  mod.nativeBackend.setThreads(threads);
  return mod.nativeBackend;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const config = { ...preset('stories15m'), vocab_size: arg('vocab', 32000) };
  const batch = arg('batch', 8);
  const seq = arg('seq', 256);
  const backend = await pickBackend(strArg('backend', 'ref'), arg('threads', 2));
  const r = benchTrain({ backend, config, batch, seq, steps: arg('steps', 1), warmup: arg('warmup', 0, 0) });
  console.log(
    `train stories15M (dim ${config.dim}, ${config.n_layers} layers, vocab ${config.vocab_size}) B=${batch} T=${seq} on ${backend.name}: ` +
      `${r.tokensPerSec.toFixed(1)} tok/s, ${r.msPerStep.toFixed(0)} ms/step ` +
      `(fwd ${r.msForward.toFixed(0)}, bwd ${r.msBackward.toFixed(0)}, clip+AdamW ${r.msOptimizer.toFixed(0)} ms; arena ${r.arenaMiB.toFixed(0)} MiB)`,
  );
}
