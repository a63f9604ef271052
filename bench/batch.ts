/**
 * Batched decoding throughput (src/generate/batch.ts), run by `npm run bench` (bench.ts, section
 * "batch") or alone: `node dist/bench/batch.js [--quick] [--json] [--threads=1,2] [--models=stories15m,stories110m]
 * [--no-llama-cpp] [--batched-bench=PATH]`.
 *
 * For each model (the stories15M-shaped Q8_0 test fixture, a stories110M-shaped Q8_0 file from
 * bench/model-files.ts) and thread count: B sequences of a PP-token prompt each (distinct
 * prompts), TG greedy tokens each, all decoding together (maxRows = B); aggregate decode tokens/s =
 * tokens run by the decode forwards ÷ the decode loop's time (sampling included, prefill not), for
 * B = 16 and for B = 1 (single stream, the same code path). Right after each row llama.cpp's
 * llama-batched-bench runs on the same file with the same PP, TG, B and threads (bench/llama-cpp.ts;
 * its S_TG: B·TG tokens ÷ the time of the TG decode steps, no sampling). Best of the repetitions.
 * This file is not a test.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { nativeBackend, nativeLoadError } from '../src/backend/native.js';
import { readGgufModel } from '../src/formats/gguf.js';
import { Model } from '../src/model/forward.js';
import { generateBatch, type BatchStats } from '../src/generate/batch.js';
import { ensureModelFile, ROOT } from './model-files.js';
import { findBatchedBench, runBatchedBench } from './llama-cpp.js';

export interface BatchBenchOptions {
  quick: boolean;
  threads: number[];
  models?: string[];
  log: (line: string) => void;
  results: Record<string, number | string>;
  /** llama-batched-bench: true = the default binary, a string = its path, false = none */
  llamaCpp?: boolean | string;
}

/** sequences of the batched row (the key batch16_…) */
export const BATCH = 16;
const PP = 16;

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** aggregate decode tok/s of `B` sequences (best of `reps`), and the stats of the best run */
export async function batchDecodeTokS(model: Model, B: number, tg: number, reps: number): Promise<{ tokS: number; stats: BatchStats }> {
  const V = model.config.vocab_size;
  const requests = Array.from({ length: B }, (_, b) => ({
    prompt: [1, ...Array.from({ length: PP - 1 }, (_, i) => 1 + ((b * 7919 + i * 104729) % (V - 1)))],
  }));
  let best = { tokS: 0, stats: undefined as BatchStats | undefined };
  for (let r = 0; r < reps; r++) {
    let stats: BatchStats | undefined;
    await generateBatch(model, requests, { maxTokens: tg, temperature: 0, stopIds: [], maxRows: B, onStats: (s) => { stats = s; } });
    const tokS = stats!.decodeTokens / (stats!.decodeMs / 1000);
    if (tokS > best.tokS) best = { tokS, stats };
  }
  return { tokS: best.tokS, stats: best.stats! };
}

export async function runBatchBench(o: BatchBenchOptions): Promise<void> {
  const nb = nativeBackend;
  if (!nb) {
    o.log(`\n## batched decode: skipped, the addon is not available (${nativeLoadError})`);
    return;
  }
  const TG = o.quick ? 32 : 64;
  const reps = o.quick ? 2 : 3;
  let batched: string | undefined;
  if (o.llamaCpp) {
    const found = findBatchedBench(typeof o.llamaCpp === 'string' ? o.llamaCpp : undefined);
    if (found.path) batched = found.path;
    else o.log(`(llama.cpp batched baseline skipped: ${found.why})`);
  }
  o.results['batch_isa'] = nb.isa();
  o.log(`\n## batched decode (native ${nb.isa()} kernels, greedy through generateBatch): ${BATCH} sequences of a ${PP}-token prompt, ${TG} tokens each; aggregate decode tok/s, best of ${reps}`);
  o.log(`${'model'.padEnd(16)} | th | batch ${BATCH} | single | ×single${batched ? ` | llama.cpp ${BATCH} | llama.cpp 1 | ours/llama.cpp ${BATCH}` : ''}`);
  const files: [string, string][] = [
    ['stories15m_q8_0', join(ROOT, 'tests', 'fixtures', 'gguf', 'stories15M-Q8_0.gguf')],
    ['stories110m_q8_0', ''],
  ];
  const before = nb.threads();
  try {
    for (const [name, fixed] of files) {
      if (o.models?.length && !o.models.some((m) => name.startsWith(m))) continue;
      const path = fixed || ensureModelFile('stories110m', 'Q8_0', (p) => o.log(`(writing ${p} with random weights …)`)).path;
      const loaded = readGgufModel(path);
      const model = new Model({ ...loaded.config, max_seq_len: PP + TG + 1 }, loaded.weights, nb);
      model.prepare();
      for (const th of o.threads) {
        nb.setThreads(th);
        await batchDecodeTokS(model, 2, 4, 1); // warm-up: every weight page touched, caches made
        const many = await batchDecodeTokS(model, BATCH, TG, reps);
        const one = await batchDecodeTokS(model, 1, TG, reps);
        const k = `${name}_`;
        o.results[`${k}batch${BATCH}_decode_tok_s_${th}t`] = round(many.tokS);
        o.results[`${k}batch1_decode_tok_s_${th}t`] = round(one.tokS);
        let line = `${name.padEnd(16)} | ${String(th).padStart(2)} | ${many.tokS.toFixed(0).padStart(8)} | ${one.tokS.toFixed(0).padStart(6)} | ${(many.tokS / one.tokS).toFixed(2).padStart(6)}×`;
        if (batched) {
          const lc = runBatchedBench(batched, path, th, PP, TG, [1, BATCH]);
          const lc16 = lc.get(BATCH)!, lc1 = lc.get(1)!;
          o.results[`${k}llamacpp_batch${BATCH}_decode_tok_s_${th}t`] = round(lc16.decodeTokS);
          o.results[`${k}llamacpp_batch1_decode_tok_s_${th}t`] = round(lc1.decodeTokS);
          o.results[`${k}batch${BATCH}_vs_llamacpp_${th}t`] = round(many.tokS / lc16.decodeTokS, 3);
          line += ` | ${lc16.decodeTokS.toFixed(0).padStart(12)} | ${lc1.decodeTokS.toFixed(0).padStart(11)} | ${(many.tokS / lc16.decodeTokS).toFixed(2).padStart(5)}×`;
        }
        o.log(line);
      }
    }
  } finally {
    nb.setThreads(before);
  }
  // the headline keys: the stories15M fixture at its best thread count (on a shared 2-core
  // machine a second thread can lose more to the neighbours than it gains)
  for (const key of [`batch${BATCH}_decode_tok_s`, 'batch1_decode_tok_s']) {
    const vs = o.threads.map((th) => o.results[`stories15m_q8_0_${key}_${th}t`]).filter((v): v is number => typeof v === 'number');
    if (vs.length) o.results[key] = Math.max(...vs);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const results: Record<string, number | string> = {};
  await runBatchBench({
    quick: args.includes('--quick'),
    threads: (args.find((a) => a.startsWith('--threads='))?.slice(10) ?? '1,2').split(',').map(Number),
    models: args.find((a) => a.startsWith('--models='))?.slice(9).split(',').filter(Boolean),
    log: (l) => process.stdout.write(l + '\n'),
    results,
    llamaCpp: args.find((a) => a.startsWith('--batched-bench='))?.slice(16) ?? !args.includes('--no-llama-cpp'),
  });
  if (args.includes('--json')) process.stdout.write(JSON.stringify(results) + '\n');
}
