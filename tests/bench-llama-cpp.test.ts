// The llama.cpp baseline of the inference benchmark (bench/llama-cpp.ts): finding llama-bench and
// reading its JSON, against stand-in executables that print what llama-bench prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLlamaBench, runLlamaBench } from '../bench/llama-cpp.js';

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
