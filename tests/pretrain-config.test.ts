/**
 * The pretraining config (defaults → JSON file → flags, typed, errors naming the key), the shipped
 * configs/*.json, the compute accounting against BASELINE.md's FLOP table, and the plot helpers.
 * No training here (pretrain.test.ts, checkpoint*.test.ts).
 */
import { PIPELINE, QUICK_PIPELINE } from '../src/recipes/pipeline.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRETRAIN, modelConfigFor, type PretrainConfig as TrainConfig } from '../src/recipes/pretrain.js';
import { computeSummary, matmulParams, trainFlopsPerToken } from '../src/train/compute.js';
import { asciiPlot, lossCurveSvg, niceTicks, smooth, sparkline } from '../src/train/metrics.js';
import { preset } from '../src/model/config.js';
import { configFromFlags } from '../src/cli/pretrain.js';
import { demoConfig } from '../src/cli/demo.js';
import { Llama2Error } from '../src/util/errors.js';
import { repoRoot } from './helpers/cli.js';

// the pretraining config through the generic key system (src/train/config.ts)
const TRAIN_DEFAULTS = PRETRAIN.defaults;
const TRAIN_KEYS = PRETRAIN.specs;
const { applyObject, applyOverrides } = PRETRAIN;
const readConfigFile = (path: string) => PRETRAIN.readFile(path);
const resumeConflict = (saved: TrainConfig, now: TrainConfig) => PRETRAIN.resumeConflict(saved, now);

const dir = mkdtempSync(join(tmpdir(), 'pretrain-config-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function writeJson(name: string, v: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v));
  return p;
}

/** throws a Llama2Error whose one-line message matches every regex */
function throwsUser(f: () => unknown, ...res: RegExp[]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, `expected a Llama2Error, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `message is not one line: ${e.message}`);
    for (const re of res) assert.match(e.message, re);
    return true;
  });
}

test('layers: defaults in code, then the JSON file, then flags', () => {
  const file = writeJson('a.json', { batch_size: 4, lr: 0.001, dim: 64, description: 'x' });
  const c = readConfigFile(file);
  assert.equal(c.batch_size, 4);
  assert.equal(c.lr, 0.001);
  assert.equal(c.steps, TRAIN_DEFAULTS.steps, 'keys the file does not name keep their defaults');
  const o = applyOverrides(c, [['batch_size', '16'], ['tie_embeddings', true], ['hidden_dim', '96'], ['dim', 'null']]);
  assert.equal(o.batch_size, 16);
  assert.equal(o.tie_embeddings, true);
  assert.equal(o.hidden_dim, 96);
  assert.equal(o.dim, null, '"null" clears a nullable key');
  assert.equal(o.lr, 0.001);
  // the CLI path: --config plus kebab-case flags (parsed as strings, typed by the key)
  const viaCli = configFromFlags({ config: file, 'batch-size': '16', 'grad-accum': '3', 'tie-embeddings': true });
  assert.equal(viaCli.batch_size, 16);
  assert.equal(viaCli.grad_accum, 3);
  assert.equal(viaCli.tie_embeddings, true);
  assert.equal(viaCli.description, 'x');
});

test('errors name the file or flag, the key, what was expected and what was found', () => {
  throwsUser(() => readConfigFile(writeJson('u.json', { batch_sise: 4 })), /u\.json/, /unknown key "batch_sise"/);
  throwsUser(() => readConfigFile(writeJson('t.json', { batch_size: '8' })), /t\.json/, /key "batch_size"/, /integer ≥ 1/, /"8"/);
  throwsUser(() => readConfigFile(writeJson('f.json', { lr: -1 })), /key "lr"/, /> 0/, /-1/);
  throwsUser(() => readConfigFile(writeJson('n.json', { steps: null })), /key "steps"/, /found null/);
  throwsUser(() => readConfigFile(writeJson('i.json', { steps: 2.5 })), /key "steps"/, /an integer/);
  throwsUser(() => readConfigFile(writeJson('b.json', { tie_embeddings: 'yes' })), /key "tie_embeddings"/, /true or false/);
  throwsUser(() => readConfigFile(writeJson('arr.json', [1, 2])), /JSON object/);
  throwsUser(() => readConfigFile(writeJson('bad.json', '{"steps": 3,')), /bad\.json/, /invalid JSON/);
  throwsUser(() => readConfigFile(join(dir, 'missing.json')), /missing\.json/, /cannot read/);
  throwsUser(() => applyOverrides(TRAIN_DEFAULTS, [['batch_size', 'eight']]), /--batch-size/, /integer/, /"eight"/);
  throwsUser(() => applyOverrides(TRAIN_DEFAULTS, [['no_such_key', '1']]), /unknown config key "no_such_key"/);
  throwsUser(() => applyOverrides(TRAIN_DEFAULTS, [['steps', '10'], ['warmup_steps', '20']]), /warmup_steps 20 exceeds steps 10/);
  throwsUser(() => applyOverrides(TRAIN_DEFAULTS, [['beta2', '1']]), /beta1 and beta2 must be < 1/);
  throwsUser(() => applyObject(TRAIN_DEFAULTS, { seed: -1 }, 'config x'), /config x: key "seed"/);
});

test('every key has a default of its declared type', () => {
  for (const [k, s] of Object.entries(TRAIN_KEYS)) {
    const v = (TRAIN_DEFAULTS as unknown as Record<string, unknown>)[k];
    assert.ok(v !== undefined, `no default for ${k}`);
    if (v === null) assert.ok(s.nullable, `${k}: default null but the key is not nullable`);
    else assert.equal(typeof v, s.kind === 'int' ? 'number' : s.kind, `${k}: default ${String(v)} is not ${s.kind}`);
  }
  assert.doesNotThrow(() => applyObject(TRAIN_DEFAULTS, TRAIN_DEFAULTS, 'defaults'), 'the defaults pass their own checks');
});

test('model shape: defaults, a preset, and shape keys over a preset', () => {
  const d = modelConfigFor(TRAIN_DEFAULTS, 1024, 256);
  assert.deepEqual([d.dim, d.n_layers, d.n_heads, d.n_kv_heads, d.vocab_size, d.max_seq_len], [128, 4, 4, 4, 1024, 256]);
  const p = modelConfigFor({ ...TRAIN_DEFAULTS, preset: 'stories260k' }, 512, 128);
  const ref = preset('stories260k');
  assert.deepEqual([p.dim, p.n_layers, p.n_heads, p.n_kv_heads, p.multiple_of], [ref.dim, ref.n_layers, ref.n_heads, ref.n_kv_heads, ref.multiple_of]);
  assert.equal(p.vocab_size, 512, 'the vocabulary comes from the tokenizer, not the preset');
  const o = modelConfigFor({ ...TRAIN_DEFAULTS, preset: 'stories260k', n_layers: 2, max_seq_len: 512 }, 512, 128);
  assert.deepEqual([o.dim, o.n_layers, o.max_seq_len], [64, 2, 512]);
  throwsUser(() => modelConfigFor({ ...TRAIN_DEFAULTS, preset: 'llama9' }, 512, 128), /unknown model preset "llama9"/);
  throwsUser(() => modelConfigFor({ ...TRAIN_DEFAULTS, dim: 100, n_heads: 3 }, 512, 128), /not divisible/);
});

test('resume: only the keys that do not change the computation may differ', () => {
  const a: TrainConfig = { ...TRAIN_DEFAULTS };
  assert.equal(resumeConflict(a, { ...a, steps: 900, eval_every: 7, threads: 1, out_dir: 'elsewhere' }), null);
  assert.deepEqual(resumeConflict(a, { ...a, lr: 1 }), { key: 'lr', saved: a.lr, now: 1 });
  assert.equal(resumeConflict(a, { ...a, batch_size: 3 })?.key, 'batch_size');
});

test('configs/*.json all load (pipeline-*.json as pipeline configs), and configs/demo.json is what llama2 demo --stories trains', () => {
  const cdir = join(repoRoot(), 'configs');
  const all = readdirSync(cdir).filter((n) => n.endsWith('.json'));
  const pipelines = all.filter((n) => n.startsWith('pipeline'));
  assert.deepEqual(pipelines, ['pipeline-quick.json', 'pipeline.json']);
  for (const n of pipelines) assert.doesNotThrow(() => PIPELINE.readFile(join(cdir, n)), n);
  assert.deepEqual({ ...PIPELINE.readFile(join(cdir, 'pipeline-quick.json')), out_dir: '' }, { ...PIPELINE.defaults, ...QUICK_PIPELINE, out_dir: '' }, 'configs/pipeline-quick.json is --quick');
  const names = all.filter((n) => !n.startsWith('pipeline'));
  assert.ok(names.includes('demo.json') && names.length >= 3, `configs: ${names.join(', ')}`);
  for (const n of names) {
    const c = readConfigFile(join(cdir, n));
    assert.doesNotThrow(() => modelConfigFor(c, 1024, c.seq_len ?? 256), n);
  }
  const file = readConfigFile(join(cdir, 'demo.json'));
  const demo = demoConfig({ out: 'runs/demo', seed: 1 });
  const keys = Object.keys(TRAIN_KEYS).filter((k) => k !== 'description') as (keyof TrainConfig)[];
  const shape = (c: TrainConfig) => modelConfigFor(c, 1024, 256);
  assert.deepEqual(shape(file), shape(demo));
  const differ = keys.filter((k) => file[k] !== demo[k] && !['dim', 'n_layers', 'n_heads', 'multiple_of', 'seq_len'].includes(k));
  assert.deepEqual(differ, [], 'configs/demo.json and the demo defaults disagree');
  assert.equal(file.seq_len ?? 256, demo.seq_len ?? 256);
});

test('FLOPs per token match the BASELINE.md table (stories15M, its vocab-4096 variant, stories110M)', () => {
  const REL = 5e-4; // the table rounds to 4 significant digits
  const rows: [string, number, number, number][] = [
    // name, vocab, N_matmul, train FLOP/token at T = 256
    ['stories15m', 32000, 15.19e6, 96.44e6],
    ['stories15m', 4096, 7.15e6, 48.22e6],
    ['stories110m', 32000, 109.51e6, 685.38e6],
  ];
  for (const [name, V, n, f] of rows) {
    const c = { ...preset(name), vocab_size: V };
    const gotN = matmulParams(c);
    const gotF = trainFlopsPerToken(c, 256);
    assert.ok(Math.abs(gotN - n) / n < REL * 2, `${name} V${V}: N_matmul ${gotN} vs ${n}`);
    assert.ok(Math.abs(gotF - f) / f < REL * 2, `${name} V${V}: FLOP/token ${gotF} vs ${f}`);
  }
});

test('compute summary: MFU, energy and CO2 from the declared figures', () => {
  const c = preset('stories15m');
  const s = computeSummary({ config: c, seqLen: 256, tokens: 1e6, trainSeconds: 100, wallSeconds: 3600, threads: 2, cpuWatts: 50, peakGflops: null, carbonIntensity: 0.4235 });
  const EPS = 1e-12;
  assert.ok(Math.abs(s.total_flops - trainFlopsPerToken(c, 256) * 1e6) <= EPS * s.total_flops);
  assert.ok(Math.abs(s.achieved_gflops - s.total_flops / 100 / 1e9) < EPS * s.achieved_gflops);
  assert.equal(s.peak_gflops, 180, 'default peak: 90 GFLOP/s per thread');
  assert.ok(Math.abs(s.mfu - s.achieved_gflops / 180) < EPS);
  assert.ok(Math.abs(s.energy_kwh - 0.05) < EPS, `1 h at 50 W = 0.05 kWh, got ${s.energy_kwh}`);
  assert.ok(Math.abs(s.co2_kg - 0.05 * 0.4235) < EPS);
  assert.equal(computeSummary({ config: c, seqLen: 256, tokens: 0, trainSeconds: 0, wallSeconds: 3600, threads: 3, cpuWatts: null, peakGflops: 10, carbonIntensity: 0.4235 }).cpu_watts, 30);
});

test('plots: SVG is self-contained with both series and the floor; text plot and sparkline', () => {
  const train = Array.from({ length: 50 }, (_, i) => ({ x: i + 1, y: 5 * Math.exp(-i / 10) + 1 }));
  const val = [{ x: 25, y: 1.6 }, { x: 50, y: 1.2 }];
  const p = { title: 'loss <test>', train, val, floor: { y: 0.5, label: 'floor' }, yLabel: 'nats' };
  const svg = lossCurveSvg(p);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assert.match(svg, /loss &lt;test&gt;/, 'text is escaped');
  assert.equal((svg.match(/<circle /g) ?? []).length, val.length + 1, 'one marker per evaluation plus the legend');
  assert.match(svg, /stroke-dasharray/, 'the floor line');
  assert.doesNotMatch(svg, /NaN|undefined|<script/);
  const txt = asciiPlot(p, 40, 10);
  const lines = txt.split('\n');
  assert.equal(lines.length, 10 + 3);
  assert.ok(lines.slice(0, 10).every((l) => l.length === 8 + 2 + 40), 'rows have equal width');
  assert.ok(txt.includes('o') && txt.includes('·') && txt.includes('-'));
  const sp = sparkline([3, 2, 1, 0]);
  assert.equal(sp, '█▆▃▁');
  assert.equal(sparkline(Array.from({ length: 1000 }, (_, i) => i), 20).length, 20);
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(smooth([2, 2, 2]), [2, 2, 2], 'the average of a constant is the constant');
  assert.deepEqual(smooth([0, 3, 0, 3], 3), [1.5, 1, 2, 1.5], 'centred window, shrinking at the ends');
  const long = lossCurveSvg({ ...p, train: Array.from({ length: 20000 }, (_, i) => ({ x: i + 1, y: 1 + 1 / (i + 1) })) });
  assert.ok(long.length < 120_000, `a 20000-step curve gives ${long.length} bytes of SVG`);
});
