// The llama.cpp baselines of the benchmarks (bench/llama-cpp.ts): finding llama-bench and
// llama-batched-bench and reading their output, against stand-in executables that print what they
// print (llama-batched-bench's: a captured sample).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBatchedBench, findLlamaBench, parseBatchedBench, runBatchedBench, runLlamaBench } from '../bench/llama-cpp.js';

/** an executable node script at dir/name that runs `body` (with `args` = its arguments) */
function fakeBin(dir: string, name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!${process.execPath}\nconst args = process.argv.slice(2);\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

const HELP = `if (args[0] === '--help') { console.log('usage: llama-bench [options]\\n  -p, --n-prompt <n>\\n  -n, --n-gen <n>'); process.exit(0); }`;

test('llama.cpp baseline: finds llama-bench, reads the best sample of its pp and tg records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llama-bench-'));
  try {
    const records = [
      { n_prompt: 128, n_gen: 0, avg_ts: 900, samples_ts: [850, 950, 900] },
      { n_prompt: 0, n_gen: 64, avg_ts: 31, samples_ts: [30, 32] },
    ];
    const bin = fakeBin(dir, 'llama-bench', `${HELP}
const want = ['-m', 'model.gguf', '-t', '2', '-p', '128', '-n', '64', '-r', '3', '-o', 'json'];
if (JSON.stringify(args) !== JSON.stringify(want)) { console.error('unexpected arguments ' + args.join(' ')); process.exit(3); }
console.log(${JSON.stringify(JSON.stringify(records))});`);
    assert.deepEqual(findLlamaBench(bin), { path: bin });
    assert.deepEqual(runLlamaBench(bin, 'model.gguf', 2, 128, 64, 3), { prefill: 950, decode: 32, prefillMean: 900, decodeMean: 31 });

    const missing = findLlamaBench(join(dir, 'nope'));
    assert.equal(missing.path, undefined);
    assert.match(missing.why!, /nope not found \(build it with: bash bench\/build-llama-cpp\.sh\)/);
    const notBench = fakeBin(dir, 'other', `console.log('something else');`);
    assert.match(findLlamaBench(notBench).why!, /does not look like llama-bench/);

    const failing = fakeBin(dir, 'failing', `${HELP}\nconsole.error('error: failed to load model'); process.exit(1);`);
    assert.throws(() => runLlamaBench(failing, 'm.gguf', 1, 128, 16, 2), /llama-bench .*failed \(exit 1\): error: failed to load model/);
    const garbled = fakeBin(dir, 'garbled', `${HELP}\nconsole.log('| model | size |');`);
    assert.throws(() => runLlamaBench(garbled, 'm.gguf', 1, 128, 16, 2), /printed no JSON array/);
    const noTg = fakeBin(dir, 'no-tg', `${HELP}\nconsole.log(JSON.stringify([{ n_prompt: 128, n_gen: 0, avg_ts: 5 }]));`);
    assert.throws(() => runLlamaBench(noTg, 'm.gguf', 1, 128, 16, 2), /no tg16 record/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** llama-batched-bench's output (stdout, then its stderr log), captured on the development machine:
 * `llama-batched-bench -m stories15M-Q8_0.gguf -t 1 -tb 1 -npp 16 -ntg 64 -npl 1,16` */
const BATCHED_SAMPLE = `
llama_batched_bench: n_kv_max = 4096, n_batch = 2048, n_ubatch = 512, flash_attn = -1, is_pp_shared = 0, is_tg_separate = 0, n_gpu_layers = -1, n_threads = 1, n_threads_batch = 1

|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|
|    16 |     64 |    1 |     80 |    0.009 |  1866.11 |    0.348 |   183.67 |    0.357 |   224.08 |
|    16 |     64 |   16 |   1280 |    0.105 |  2434.85 |    1.822 |   562.13 |    1.927 |   664.32 |

0.00.163.029 W llama_context: n_ctx is not divisible by n_seq_max - rounding down to 4096
`;

test('llama.cpp batched baseline: reads llama-batched-bench\'s table by its column names', () => {
  assert.deepEqual(parseBatchedBench(BATCHED_SAMPLE), [
    { pp: 16, tg: 64, batch: 1, prefillTokS: 1866.11, decodeTokS: 183.67 },
    { pp: 16, tg: 64, batch: 16, prefillTokS: 2434.85, decodeTokS: 562.13 },
  ]);
  // columns found by name, not position
  const moved = '| B | TG | PP | S_TG t/s | S_PP t/s |\n|---|---|---|---|---|\n| 4 | 8 | 2 | 10.5 | 20 |\n';
  assert.deepEqual(parseBatchedBench(moved), [{ pp: 2, tg: 8, batch: 4, prefillTokS: 20, decodeTokS: 10.5 }]);
  assert.throws(() => parseBatchedBench('main: error: unable to load model'), /no table with an "S_TG t\/s" column/);
  assert.throws(() => parseBatchedBench('| PP | S_TG t/s |\n| 1 | 2 |'), /no "TG" column/);
  assert.throws(() => parseBatchedBench('| PP | TG | B | S_PP t/s | S_TG t/s |\n| 1 | 2 | x | 3 | 4 |'), /unreadable row/);
});

test('llama.cpp batched baseline: runs llama-batched-bench and keeps the best decode rate per batch size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'batched-bench-'));
  try {
    // each run prints the sample with its decode rates scaled by the run number (1, then 2)
    const bin = fakeBin(dir, 'llama-batched-bench', `if (args[0] === '--help') { console.log('  -npl n0,n1,...  number of parallel prompts'); process.exit(0); }
const want = ['-m', 'm.gguf', '-t', '2', '-tb', '2', '-c', '4096', '-b', '2048', '-ub', '512', '-npp', '16', '-ntg', '64', '-npl'];
if (JSON.stringify(args.slice(0, -1)) !== JSON.stringify(want)) { console.error('unexpected arguments ' + args.join(' ')); process.exit(3); }
const { existsSync, writeFileSync } = require('node:fs');
const mark = ${JSON.stringify(join(dir, 'ran'))};
const run = existsSync(mark) ? 2 : 1;
writeFileSync(mark, '');
console.log(${JSON.stringify(BATCHED_SAMPLE)}.replace('183.67', String(183.67 * run)).replace('562.13', String(562.13 / run)));`);
    assert.deepEqual(findBatchedBench(bin), { path: bin });
    const rows = runBatchedBench(bin, 'm.gguf', 2, 16, 64, [1, 16], 2);
    assert.equal(rows.get(1)!.decodeTokS, 183.67 * 2);
    assert.equal(rows.get(16)!.decodeTokS, 562.13);
    assert.throws(() => runBatchedBench(bin, 'm.gguf', 2, 16, 64, [1, 32], 1), /no row for PP 16, TG 64, B 32/);
    assert.throws(() => runBatchedBench(bin, 'other.gguf', 2, 16, 64, [1], 1), /llama-batched-bench .*failed \(exit 3\): unexpected arguments/);
    assert.match(findBatchedBench(join(dir, 'nope')).why!, /nope not found \(build it with: bash bench\/build-llama-cpp\.sh\)/);
    assert.match(findBatchedBench(fakeBin(dir, 'other', `console.log('usage: llama-bench -p')`)).why!, /does not look like llama-batched-bench/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
