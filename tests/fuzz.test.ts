/**
 * The readers under mutated input (scripts/fuzz/): every input the fuzz harness once broke a reader
 * with (tests/fixtures/fuzz/<name>/: the mutated file and finding.json naming its bundle) now ends
 * in a clean Llama2Error, and a short seeded run of every target — a few hundred cases each,
 * in-process — ends in success or a Llama2Error every time. The harness's own verdicts (crash,
 * memory) and its determinism are checked on cases made to fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from './helpers/cli.js';
import { TARGETS, bundles, makeCase, type Bundle, type Case, type TargetName } from '../scripts/fuzz/targets.js';
import { runOne, type Outcome } from '../scripts/fuzz/worker.js';

const tmp = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'llama2-fuzz-test-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const caseDir = join(tmp, 'case');
const cache = new Map<TargetName, Bundle[]>();
const bundlesOf = (t: TargetName) => cache.get(t) ?? (cache.set(t, bundles(t, tmp)), cache.get(t)!);

test('every input a reader once failed on now ends in a clean Llama2Error', () => {
  const dirs = readdirSync(fixture('fuzz')).filter((n) => n !== 'seeds');
  assert.ok(dirs.length >= 6, `expected the regression inputs, found ${dirs.join(', ')}`);
  for (const name of dirs) {
    const f = JSON.parse(readFileSync(fixture('fuzz', name, 'finding.json'), 'utf8')) as { target: TargetName; bundle: string; mutated: string; mmap: boolean };
    const b = bundlesOf(f.target).find((x) => x.name === f.bundle);
    assert.ok(b, `${name}: no bundle ${f.bundle} in target ${f.target}`);
    const c: Case = {
      target: f.target, index: -1, bundle: b.name, mutated: f.mutated, entry: b.entry, mmap: f.mmap, read: b.read,
      files: { ...b.files, [f.mutated]: new Uint8Array(readFileSync(fixture('fuzz', name, f.mutated))) },
    };
    for (const mmap of [true, false]) {
      const r = runOne({ ...c, mmap }, caseDir);
      assert.equal(r.outcome, 'error', `${name} (mmap ${mmap}): ${r.outcome} ${r.detail ?? ''}`);
    }
  }
});

/** cases per target in the seeded run: ~0.5-1 s each on one core */
const SHORT_RUN: Readonly<Record<TargetName, number>> = {
  gguf: 80, safetensors: 250, pickle: 400, 'tokenizer-model': 250, 'tokenizer-json': 60, llama2c: 250, jsonl: 400,
};

for (const t of TARGETS) {
  test(`fuzz ${t}: ${SHORT_RUN[t]} seeded cases end in success or a Llama2Error`, () => {
    const all = bundlesOf(t);
    const counts: Partial<Record<Outcome, number>> = {};
    const bad: string[] = [];
    for (let i = 0; i < SHORT_RUN[t]; i++) {
      const c = makeCase(t, all, 2024, i);
      const r = runOne(c, caseDir);
      counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
      if (r.outcome !== 'ok' && r.outcome !== 'error') bad.push(`#${i} (${c.bundle}, ${c.mutated}): ${r.outcome} ${r.detail}`);
    }
    assert.deepEqual(bad, [], `findings (reproduce with: npm run fuzz -- --targets ${t} --seed 2024)`);
    // the mutations must both break files and leave some readable, or the run tests little
    assert.ok((counts.error ?? 0) > SHORT_RUN[t] / 10, `${t}: only ${counts.error ?? 0} clean errors`);
    assert.ok((counts.ok ?? 0) > 0, `${t}: no mutated input was still readable`);
  });
}

test('the harness: cases are a pure function of (target, seed, index); crashes and memory blow-ups are caught', () => {
  const all = bundlesOf('jsonl');
  const a = makeCase('jsonl', all, 5, 17);
  const b = makeCase('jsonl', all, 5, 17);
  assert.deepEqual(a.files, b.files);
  assert.notDeepEqual(makeCase('jsonl', all, 5, 18).files, a.files);
  const crash = runOne({ ...a, read: () => { (null as unknown as { x: number }).x; } }, caseDir);
  assert.equal(crash.outcome, 'crash');
  assert.match(crash.detail!, /^TypeError: Cannot read properties of null/);
  let keep: Uint8Array | null = null;
  const hog = runOne({ ...a, read: () => { keep = new Uint8Array(200 << 20).fill(1); } }, caseDir);
  assert.equal(hog.outcome, 'memory', hog.detail);
  assert.match(hog.detail!, /ArrayBuffers \+200 MiB/);
  keep = null;
  assert.equal(keep, null);
});
