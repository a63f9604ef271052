/**
 * `npm run bench`: the project's speed figures, measured in one run.
 *
 *   inference   prefill and decode tokens/s for the stories15M shape on every available backend,
 *               and the sampler's ms per token (TypeScript and native draw)
 *   native      the native backend's kernels and models in every dtype at 1 and 2 threads, against
 *               the memory-bandwidth limit (bench/infer.ts; model files cached in bench/.cache/),
 *               and llama.cpp's llama-bench on the same files when it is built
 *               (`bash bench/build-llama-cpp.sh`; --llama-bench=PATH, --no-llama-cpp); every row
 *               names its ISA (--isa=avx2,avx512 runs each row with both kernel sets)
 *   batch       batched decoding through generateBatch: aggregate decode tokens/s of 16 sequences and
 *               of one, on the stories15M-shaped Q8_0 fixture and a stories110M-shaped Q8_0 file,
 *               next to llama.cpp's llama-batched-bench on the same file (bench/batch.ts;
 *               --batched-bench=PATH); keys batch16_decode_tok_s, batch1_decode_tok_s, …
 *   serve       `llama2 serve` through HTTP: aggregate decode tokens/s of 1, 4 and 16 concurrent
 *               streams, time to first token under 16, single-stream overhead against `llama2
 *               generate`, next to llama-batched-bench on the same files (bench/serve.ts)
 *   tokenizer   encode MB/s with the real Llama-2 vocabulary (from the shipped GGUF)
 *   training    stories15M training tokens/s (forward, backward, clip, AdamW) of the native backend
 *               next to PyTorch's on the same machine and config, in the same run (bench/train.ts);
 *               SFT on block-packed chat rows (sft_tok_s, sft_vs_pretrain); reward models
 *               (rm_train_pairs_s, rm_score_dialogs_s)
 *
 * Flags: --json (end with one JSON line holding every figure), --quick (fewer repetitions, small
 * models only), --big (add Llama-2-7B: writes ~30 GB of model files on first use), --isa=LIST
 * (native kernel sets for the native section, default the best this CPU has), --only
 * <sections> (comma-separated names from the list above; default all).
 * Figures are medians over repetitions; the machine is noisy, so compare ratios taken in one run.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { preset, type LlamaConfig } from '../src/model/config.js';
import { Model } from '../src/model/forward.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend, type NativeIsa } from '../src/backend/native.js';
import type { Backend } from '../src/backend/types.js';
import { initModelWeights } from '../src/train/params.js';
import { readGgufModel } from '../src/formats/gguf.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { generateStories } from '../src/data/stories.js';
import type { ModelWeights } from '../src/model/weights.js';
import { parseIsas, runInferenceBench } from './infer.js';
import { runRewardBench, runTrainBench } from './train.js';
import { runBatchBench } from './batch.js';
import { runServeBench } from './serve.js';
import { Sampler, type DrawAccelerator } from '../src/generate/sampler.js';

const argv = process.argv.slice(2);
const args = new Set(argv);
const SECTIONS = ['inference', 'native', 'batch', 'serve', 'tokenizer', 'training'];
const onlyAt = argv.indexOf('--only');
const only = new Set(onlyAt < 0 ? SECTIONS : (argv[onlyAt + 1] ?? '').split(',').filter(Boolean));
for (const s of only) {
  if (!SECTIONS.includes(s)) {
    process.stderr.write(`error: --only expects a comma-separated list of ${SECTIONS.join(', ')}; found "${s}"\n`);
    process.exit(1);
  }
}
let ISAS: NativeIsa[] | undefined;
try {
  const isaArg = argv.find((a) => a.startsWith('--isa='))?.slice(6);
  ISAS = isaArg !== undefined && nativeBackend ? parseIsas(nativeBackend, isaArg) : undefined;
} catch (e) {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
const JSON_OUT = args.has('--json');
const QUICK = args.has('--quick');
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const results: Record<string, number | string> = {};
function log(line: string): void {
  process.stdout.write(line + '\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** prefill `P` tokens, then decode `D` tokens one at a time; tokens/s for each phase. */
export function benchInference(
  config: LlamaConfig, weights: ModelWeights, backend: Backend, P: number, D: number, reps: number,
): { prefill: number; decode: number } {
  const model = new Model(config, weights, backend);
  const prompt = Array.from({ length: P }, (_, i) => 1 + ((i * 7919) % (config.vocab_size - 1)));
  const pre: number[] = [];
  const dec: number[] = [];
  for (let r = 0; r < reps; r++) {
    const cache = model.newCache(P + D);
    const t0 = performance.now();
    model.step(prompt, cache, 'last');
    const t1 = performance.now();
    let id = 2;
    for (let i = 0; i < D; i++) {
      const logits = model.step([id], cache, 'last');
      id = 1 + (Math.floor(Math.abs(logits[0]!) * 1e6) % (config.vocab_size - 1));
    }
    const t2 = performance.now();
    pre.push(P / ((t1 - t0) / 1000));
    dec.push(D / ((t2 - t1) / 1000));
  }
  return { prefill: median(pre), decode: median(dec) };
}

function inferenceSection(): void {
  const config = { ...preset('stories15m') };
  const weights = initModelWeights(config, 1234, { tied: true });
  log(`\n## inference: stories15M shape (dim ${config.dim}, ${config.n_layers} layers, vocab ${config.vocab_size}), F32 weights`);
  log('backend   | prefill tok/s (128-token prompt) | decode tok/s');
  log('----------|----------------------------------|-------------');
  const backends: Backend[] = [refBackend];
  if (nativeBackend) backends.push(nativeBackend);
  for (const be of backends) {
    const isRef = be === refBackend;
    const r = benchInference(config, weights, be, isRef ? 32 : 128, isRef ? 8 : 64, QUICK ? 1 : 3);
    log(`${be.name.padEnd(9)} | ${r.prefill.toFixed(1).padStart(32)} | ${r.decode.toFixed(1).padStart(12)}`);
    results[`infer_stories15m_f32_${be.name}_prefill_tok_s`] = round(r.prefill);
    results[`infer_stories15m_f32_${be.name}_decode_tok_s`] = round(r.decode);
  }
  samplerRows();
}

/** ms per sampled token at Meta's defaults (T 0.6, top-p 0.9) over a 32000-token vocabulary, for a
 * flat and a peaked logits row: the TypeScript sampler and, when present, the native draw */
function samplerRows(): void {
  const V = 32000;
  log('\nsampler (T 0.6, top-p 0.9, 32000 tokens) | flat logits ms/token | peaked logits ms/token');
  const impls: [string, DrawAccelerator | undefined][] = [['typescript', undefined]];
  if (nativeBackend?.sampleDraw) impls.push(['native', nativeBackend.sampleDraw.bind(nativeBackend)]);
  for (const [name, accel] of impls) {
    const cells = [0.3, 10].map((spread) => {
      const logits = Float32Array.from({ length: V }, (_, i) => Math.sin(i * 12.9898) * spread);
      const s = new Sampler({ temperature: 0.6, topP: 0.9, seed: 1 }, accel);
      for (let i = 0; i < 30; i++) s.sample(logits);
      const n = QUICK ? 100 : 400;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) s.sample(logits);
      const ms = (performance.now() - t0) / n;
      results[`sampler_${name}_${spread < 1 ? 'flat' : 'peaked'}_ms`] = Math.round(ms * 1000) / 1000;
      return ms.toFixed(3);
    });
    log(`${name.padEnd(41)} | ${cells[0]!.padStart(20)} | ${cells[1]!.padStart(22)}`);
  }
}

function tokenizerSection(): void {
  const m = readGgufModel(join(ROOT, 'tests', 'fixtures', 'gguf', 'stories15M-Q8_0.gguf'));
  const tok = new Tokenizer(m.vocab!);
  const stories = generateStories({ seed: 1, count: QUICK ? 600 : 2500 }).stories.join('\n');
  const mixed = 'Xin chào thế giới! 東京は日本の首都です。 Привет, мир! 😀🎉 const x = 42; ' + 'naïve café 1234567890 ';
  const texts: [string, string][] = [
    ['stories', stories],
    ['mixed scripts', mixed.repeat(Math.ceil(200_000 / mixed.length))],
    ['one 1 MB line of "a"', 'a'.repeat(1 << 20)],
  ];
  log('\n## tokenizer: encode with the Llama-2 vocabulary (32000 pieces)');
  log('text                  | MB     | MB/s');
  for (const [name, text] of texts) {
    const mb = Buffer.byteLength(text, 'utf8') / 1e6;
    const times: number[] = [];
    for (let r = 0; r < (QUICK ? 1 : 3); r++) {
      const t0 = performance.now();
      tok.encode(text);
      times.push((performance.now() - t0) / 1000);
    }
    const rate = mb / median(times);
    log(`${name.padEnd(21)} | ${mb.toFixed(2).padStart(6)} | ${rate.toFixed(2)}`);
    results[`tokenizer_${name.split(' ')[0]}_mb_s`] = round(rate);
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  log(`# llama2-ts bench (${new Date().toISOString()}, node ${process.version}, native: ${nativeBackend ? 'yes' : 'no'})`);
  if (only.has('inference')) inferenceSection();
  if (only.has('native')) runInferenceBench({
    quick: QUICK, big: args.has('--big'), threads: [1, 2], log, results,
    isas: ISAS,
    llamaCpp: argv.find((a) => a.startsWith('--llama-bench='))?.slice(14) ?? !args.has('--no-llama-cpp'),
  });
  if (only.has('batch')) await runBatchBench({
    quick: QUICK, threads: [1, 2], log, results,
    llamaCpp: argv.find((a) => a.startsWith('--batched-bench='))?.slice(16) ?? !args.has('--no-llama-cpp'),
  });
  if (only.has('serve')) await runServeBench({
    quick: QUICK, threads: [2], log, results,
    llamaCpp: argv.find((a) => a.startsWith('--batched-bench='))?.slice(16) ?? !args.has('--no-llama-cpp'),
  });
  if (only.has('tokenizer')) tokenizerSection();
  if (only.has('training')) {
    runTrainBench({ quick: QUICK, log, results });
    runRewardBench({ quick: QUICK, log, results });
  }
  if (JSON_OUT) process.stdout.write(JSON.stringify(results) + '\n');
}

await main();
