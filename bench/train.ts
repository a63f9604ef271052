/**
 * Training throughput: tokens/s of full training steps (forward, backward, clip to 1.0, AdamW) on
 * random tokens, the same step the PyTorch baseline times (../shared/oracle/BASELINE.md:
 * stories15M B=8 T=256 untied, ~895 tok/s at 2 threads, ~581 at 1).
 *
 *   node dist/bench/train.js [--backend ref|native (default native when built)] [--threads 2] [--batch 8] [--seq 256] [--steps 1]
 *                            [--warmup 0] [--vocab 32000]
 *
 * `benchTrain` times our step; `runTrainBench` is the training section of `npm run bench`: the
 * native backend next to PyTorch (bench/train-pytorch.py under Debian's /usr/bin/python3, same
 * config, thread count and thread setup as BASELINE.md) measured in the same run, with the phase
 * breakdown of both. The reference backend is slow by design (naive GEMM); expect minutes for one
 * full-size stories15M step.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Backend } from '../src/backend/types.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend, nativeLoadError } from '../src/backend/native.js';
import { preset, type LlamaConfig } from '../src/model/config.js';
import { Tape } from '../src/train/tape.js';
import { initModelWeights, initScoreHead, paramFromTensor, zeroGrads } from '../src/train/params.js';
import { rankingLoss, rewardScores } from '../src/train/reward.js';
import { scoreIds } from '../src/chat/reward-score.js';
import { Model } from '../src/model/forward.js';
import { uniform as makeRng } from '../src/util/rng.js';
import { lmLoss, packedLayout, trainModel, type RowLayout } from '../src/train/model.js';
import { packEpoch, type TokenSample } from '../src/data/packing.js';
import { renderDialog } from '../src/chat/format.js';
import { readTokenizerModel } from '../src/tokenizer/load.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { generateChatWorld } from '../src/world/synth.js';
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
  /**
   * SFT rows instead of plain pretraining rows: answer-token loss weights and the block layout of
   * packed samples, as src/recipes/sft.ts trains (tokens/s still counts every position)
   */
  sft?: { mask: Float32Array; layout: RowLayout; answers: number };
}

export interface BenchTrainResult {
  tokensPerSec: number;
  /** SFT: answer tokens (positions that carry the loss) per second */
  answerTokensPerSec?: number;
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
  const opt = new AdamW(model.params, { lr: 3e-4, eps: 1e-8 }, o.backend);
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
    const r = o.sft ? lmLoss(tape, model, x, y, B, T, o.sft.mask, o.sft.layout) : lmLoss(tape, model, x, y, B, T);
    const t1 = performance.now();
    tape.backward(r.loss);
    const t2 = performance.now();
    opt.step(undefined, clipCoefficient(model.params, 1.0, o.backend).coef);
    const t3 = performance.now();
    if (!Number.isFinite(r.value)) throw new Error(`benchTrain: loss is ${r.value}`);
    if (s >= (o.warmup ?? 0)) [t3 - t0, t1 - t0, t2 - t1, t3 - t2].forEach((v, i) => parts[i]!.push(v));
  }
  const msPerStep = median(parts[0]!);
  return {
    tokensPerSec: (B * T) / (msPerStep / 1000),
    answerTokensPerSec: o.sft ? o.sft.answers / (msPerStep / 1000) : undefined,
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

function pickBackend(name: string, threads: number): Backend {
  if (name === 'ref') return refBackend;
  if (name !== 'native') throw new Error(`--backend expects ref or native, found ${name}`);
  if (!nativeBackend) throw new Error(`native backend unavailable: ${nativeLoadError}`);
  nativeBackend.setThreads(threads);
  return nativeBackend;
}

// ---------------------------------------------------------------------------------------------
// the training section of `npm run bench`

/** What bench/train-pytorch.py prints (its last line). */
interface TorchResult {
  tok_s: number;
  ms_step: number;
  ms_fwd: number;
  ms_bwd: number;
  ms_opt: number;
  torch: string;
  blas: string;
}

export interface TrainBenchOptions {
  quick: boolean;
  log: (line: string) => void;
  results: Record<string, number | string>;
  /** threads for both sides (default min(2, available cores), BASELINE.md's setting) */
  threads?: number;
  /** Python with torch (default /usr/bin/python3, Debian's python3-torch) */
  python?: string;
}

/** The package root: the first directory up from this file with a package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('bench/train: no package.json above this file');
    dir = up;
  }
  return dir;
}

/** Runs the PyTorch baseline; its result, or a one-line reason why there is none. */
function runTorch(python: string, threads: number, quick: boolean): TorchResult | string {
  if (!existsSync(python)) return `${python} does not exist (install Debian's python3-torch)`;
  const script = join(packageRoot(), 'bench', 'train-pytorch.py');
  const r = spawnSync(python, [script, '--threads', String(threads), '--warmup', quick ? '1' : '2', '--steps', quick ? '2' : '4'],
    { encoding: 'utf8', timeout: 30 * 60 * 1000, maxBuffer: 1 << 20 });
  if (r.error) return `could not run ${python}: ${r.error.message}`;
  const out = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !out.startsWith('{')) {
    const err = (r.stderr ?? '').trim().split('\n').pop() ?? '';
    return /No module named .?torch/.test(r.stderr ?? '') ? `${python} has no torch module (install python3-torch)` : `${script} failed: ${err}`;
  }
  return JSON.parse(out) as TorchResult;
}

const r2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * B rows of T positions packed (block) from the chat world's SFT dialogs: sample lengths and answer
 * masks as the project's 2000-piece chat tokenizer renders them (tests/fixtures), so the rows carry
 * the padding, segment count and answer share of real SFT rows.
 */
export function sftRows(B: number, T: number): { mask: Float32Array; layout: RowLayout; answers: number } {
  const tok = new Tokenizer(readTokenizerModel(join(packageRoot(), 'tests', 'fixtures', 'oracle', 'tokenizer', 'tokenizer.model')));
  const world = generateChatWorld({ seed: 1, sft: 400, trainPrompts: 0, testPrompts: 0 });
  const samples: TokenSample[] = world.sft.map((l) => renderDialog(tok, (l as { messages: Parameters<typeof renderDialog>[1] }).messages, { allowSpecialTags: true }))
    .filter((r) => r.ids.length <= T + 1)
    .map((r) => ({ ids: Int32Array.from(r.ids), mask: Uint8Array.from(r.lossMask) }));
  const rows = packEpoch(samples, Uint32Array.from(samples.keys()), T, 'block');
  const x = new Int32Array(B * T), y = new Int32Array(B * T), w = new Float32Array(B * T);
  const segs: number[][] = [];
  for (let b = 0; b < B; b++) segs.push(rows.fill(b % rows.rows, x, y, w, b * T));
  return { mask: w, layout: packedLayout(segs, T), answers: w.reduce((a, v) => a + v, 0) };
}

/**
 * stories15M (dim 288, 6 layers, 6 heads, vocab 32000, untied) at B=8, T=256 on the native
 * backend and in PyTorch, same thread count. JSON keys: train_stories15m_{tok_s, ms_step, ms_fwd,
 * ms_bwd, ms_opt}, the same with _pytorch_ before the unit, train_stories15m_vs_pytorch (ratio)
 * and train_stories15m_pytorch_blas.
 */
export function runTrainBench(o: TrainBenchOptions): void {
  const threads = o.threads ?? Math.max(1, Math.min(2, availableParallelism()));
  const config = { ...preset('stories15m') };
  const B = 8;
  const T = 256;
  o.log(`\n## training: stories15M (dim ${config.dim}, ${config.n_layers} layers, ${config.n_heads} heads, vocab ${config.vocab_size}, untied), ` +
    `B=${B} T=${T}, ${threads} threads: forward + backward + clip + AdamW`);
  o.log('implementation                       | tok/s   | ms/step | forward | backward | clip+AdamW');
  o.log('-------------------------------------|---------|---------|---------|----------|-----------');
  const row = (name: string, tok: number, step: number, fwd: number, bwd: number, opt: number): void =>
    o.log(`${name.padEnd(36)} | ${tok.toFixed(1).padStart(7)} | ${step.toFixed(0).padStart(7)} | ${fwd.toFixed(0).padStart(7)} | ` +
      `${bwd.toFixed(0).padStart(8)} | ${opt.toFixed(0).padStart(10)}`);
  let ours: BenchTrainResult | null = null;
  if (!nativeBackend) {
    o.log(`llama2-ts: skipped, the native addon is not available (${nativeLoadError}); the reference backend needs minutes per step`);
  } else {
    const before = nativeBackend.threads();
    try {
      nativeBackend.setThreads(threads);
      ours = benchTrain({ backend: nativeBackend, config, batch: B, seq: T, steps: o.quick ? 2 : 4, warmup: 1 });
    } finally {
      nativeBackend.setThreads(before);
    }
    row(`llama2-ts (native, ${nativeBackend.isa()})`, ours.tokensPerSec, ours.msPerStep, ours.msForward, ours.msBackward, ours.msOptimizer);
    Object.assign(o.results, {
      train_stories15m_tok_s: r2(ours.tokensPerSec), train_stories15m_ms_step: r2(ours.msPerStep),
      train_stories15m_ms_fwd: r2(ours.msForward), train_stories15m_ms_bwd: r2(ours.msBackward), train_stories15m_ms_opt: r2(ours.msOptimizer),
    });
    // SFT on the same model: block-packed chat rows, loss on answer tokens only (src/recipes/sft.ts)
    try {
      nativeBackend.setThreads(threads);
      const sft = benchTrain({ backend: nativeBackend, config, batch: B, seq: T, steps: o.quick ? 2 : 4, warmup: 1, sft: sftRows(B, T) });
      row('llama2-ts SFT (block-packed chat rows)', sft.tokensPerSec, sft.msPerStep, sft.msForward, sft.msBackward, sft.msOptimizer);
      o.log(`SFT / pretraining: ${(sft.tokensPerSec / ours.tokensPerSec).toFixed(2)}× tokens/s (positions); ${sft.answerTokensPerSec!.toFixed(0)} answer tokens/s`);
      Object.assign(o.results, {
        sft_tok_s: r2(sft.tokensPerSec), sft_answer_tok_s: r2(sft.answerTokensPerSec!), sft_vs_pretrain: r2(sft.tokensPerSec / ours.tokensPerSec),
      });
    } finally {
      nativeBackend.setThreads(before);
    }
  }
  const torch = runTorch(o.python ?? '/usr/bin/python3', threads, o.quick);
  if (typeof torch === 'string') {
    o.log(`PyTorch: skipped (${torch})`);
    return;
  }
  row(`PyTorch ${torch.torch} (${torch.blas})`, torch.tok_s, torch.ms_step, torch.ms_fwd, torch.ms_bwd, torch.ms_opt);
  Object.assign(o.results, {
    train_stories15m_pytorch_tok_s: r2(torch.tok_s), train_stories15m_pytorch_ms_step: r2(torch.ms_step),
    train_stories15m_pytorch_ms_fwd: r2(torch.ms_fwd), train_stories15m_pytorch_ms_bwd: r2(torch.ms_bwd),
    train_stories15m_pytorch_ms_opt: r2(torch.ms_opt), train_stories15m_pytorch_blas: torch.blas,
  });
  if (/reference/.test(torch.blas)) {
    o.log('NOTICE: this torch multiplies matrices with the reference BLAS (Debian libblas3; no OpenBLAS installed), ~30× slower ' +
      'than the OpenBLAS baseline of BASELINE.md, so only one step was timed; install libopenblas0-pthread (or put its ' +
      'directory on LD_LIBRARY_PATH) for the real baseline');
  }
  if (ours) {
    const ratio = ours.tokensPerSec / torch.tok_s;
    o.results['train_stories15m_vs_pytorch'] = r2(ratio);
    o.log(`llama2-ts / PyTorch: ${ratio.toFixed(2)}× tokens/s`);
  }
}

/**
 * Reward models on the stories15M shape: training pairs/s (both answers' forward + backward through
 * the trunk and the score head, the margin ranking loss, clip, AdamW; B = 8 pairs of ~100-token
 * chat dialogs) and scoring dialogs/s through the inference engine (batched segments). Keys
 * rm_train_pairs_s, rm_score_dialogs_s.
 */
export function runRewardBench(o: TrainBenchOptions): void {
  if (!nativeBackend) {
    o.log('\n## reward models: skipped, the native addon is not available');
    return;
  }
  const threads = o.threads ?? Math.max(1, Math.min(2, availableParallelism()));
  const config = { ...preset('stories15m') };
  const before = nativeBackend.threads();
  nativeBackend.setThreads(threads);
  try {
    const weights = initModelWeights(config, 1);
    weights.heads = { 'score.weight': initScoreHead(config, 2) };
    const model = trainModel(config, weights);
    const score = paramFromTensor('score.weight', weights.heads['score.weight']!);
    const opt = new AdamW([...model.params, score], { lr: 1e-5 }, nativeBackend);
    const tape = new Tape(nativeBackend);
    const B = 8;
    const rand = makeRng(3);
    const lengths = Array.from({ length: B }, () => 60 + Math.floor(rand() * 80)); // (B) tokens per dialog
    const T = Math.max(...lengths);
    const ids = Int32Array.from({ length: B * T }, () => Math.floor(rand() * config.vocab_size));
    const times: number[] = [];
    for (let s = 0; s < (o.quick ? 3 : 5); s++) {
      const t0 = performance.now();
      tape.reset();
      zeroGrads(opt.params);
      const rc = rewardScores(tape, model, score, ids, lengths, T);
      const rr = rewardScores(tape, model, score, ids, lengths.map((n) => n - 5), T);
      tape.backward(rankingLoss(tape, rc, rr, lengths.map(() => 1)).loss);
      opt.step(undefined, clipCoefficient(opt.params, 1.0, nativeBackend).coef);
      if (s > 0) times.push(performance.now() - t0);
    }
    const pairsPerS = B / (median(times) / 1000);
    const inf = new Model(config, weights, nativeBackend);
    const rows = Array.from({ length: 64 }, (_, i) => Array.from({ length: 60 + (i % 80) }, (_, j) => (i * 31 + j * 7) % config.vocab_size));
    scoreIds(inf, rows.slice(0, 4));
    const t0 = performance.now();
    scoreIds(inf, rows);
    const dialogsPerS = rows.length / ((performance.now() - t0) / 1000);
    o.log(`\n## reward models: stories15M shape, ${threads} threads: training ${pairsPerS.toFixed(1)} pairs/s (B=${B} pairs of 60-140 tokens), scoring ${dialogsPerS.toFixed(0)} dialogs/s (64 dialogs, batched)`);
    Object.assign(o.results, { rm_train_pairs_s: r2(pairsPerS), rm_score_dialogs_s: r2(dialogsPerS) });
  } finally {
    nativeBackend.setThreads(before);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const config = { ...preset('stories15m'), vocab_size: arg('vocab', 32000) };
  const batch = arg('batch', 8);
  const seq = arg('seq', 256);
  const backend = pickBackend(strArg('backend', nativeBackend ? 'native' : 'ref'), arg('threads', 2));
  const r = benchTrain({ backend, config, batch, seq, steps: arg('steps', 1), warmup: arg('warmup', 0, 0) });
  console.log(
    `train stories15M (dim ${config.dim}, ${config.n_layers} layers, vocab ${config.vocab_size}) B=${batch} T=${seq} on ${backend.name}: ` +
      `${r.tokensPerSec.toFixed(1)} tok/s, ${r.msPerStep.toFixed(0)} ms/step ` +
      `(fwd ${r.msForward.toFixed(0)}, bwd ${r.msBackward.toFixed(0)}, clip+AdamW ${r.msOptimizer.toFixed(0)} ms; arena ${r.arenaMiB.toFixed(0)} MiB)`,
  );
}
