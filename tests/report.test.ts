/**
 * `llama2 report`: a synthetic run folder written by hand in the formats the commands write
 * (summary.json + metrics.jsonl, eval.*.json, a reward-model eval, an RS report.json, PPO gold
 * lines, gatt.*.json, versions.json, *.graded.jsonl, pipeline.json) → one HTML file that is
 * self-contained, has every section, inline SVG charts with marks, and escaped user text; then the
 * page in headless Chromium (no console errors, every chart drawn with a size). Bad input: a
 * missing folder, a folder with nothing known, and a malformed JSON file (skipped, with a warning
 * naming it). Without Chromium the browser test is skipped, loudly.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { runCli } from './helpers/cli.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) process.stderr.write(`\n*** report browser test: SKIPPED — no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH) ***\n\n`);

const tmp = mkdtempSync(join(tmpdir(), 'report-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const XSS = '<script>alert(1)</script>';

function put(root: string, rel: string, v: unknown): void {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v));
}
const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r) + '\n').join('');

function summary(stage: string, steps: number, seconds: number): Record<string, unknown> {
  return { stage, status: 'completed', steps, tokens: steps * 1000, params: 1_000_000, train_seconds: seconds, wall_seconds: seconds + 2, tokens_per_s: (steps * 1000) / seconds,
    backend: 'native', threads: 2, mfu: 0.4, cpu_watts: 20, watts_source: 'assumed 10 W per thread × 2', energy_kwh: seconds * 20 / 3.6e6, carbon_intensity_kg_per_kwh: 0.4235, co2_kg: seconds * 20 / 3.6e6 * 0.4235 };
}
function trainMetrics(steps: number, extra: (s: number) => Record<string, unknown> = () => ({})): string {
  const rows: unknown[] = [];
  for (let s = 1; s <= steps; s++) {
    rows.push({ type: 'train', step: s, loss: 3 / Math.sqrt(s), lr: 1e-3, grad_norm: 1, tokens: 1000, tokens_per_s: 500, elapsed_s: s, ...extra(s) });
    if (s % 10 === 0) rows.push({ type: 'eval', step: s, val_loss: 3.2 / Math.sqrt(s), val_bpc: null, val_ppl: 2, val_tokens: 100 });
  }
  return jsonl(rows);
}
const ci = (x: number): [number, number] => [Math.max(0, x - 0.02), x + 0.02];
function evalReport(h: number, viol: number, fr: number): Record<string, unknown> {
  return { n: 200, helpfulness: h, helpfulness_ci95: ci(h), violation_rate: viol, violation_rate_ci95: ci(viol), false_refusal_rate: fr, false_refusal_rate_ci95: ci(fr), refusal_rate_unsafe: 0.9,
    by_family: { arithmetic: { n: 50, helpfulness: h / 2 }, story: { n: 50, helpfulness: h * 1.5 } },
    by_category: { helpful: { n: 150, score: h, score_ci95: ci(h), refusal_rate: fr, violation_rate: 0 }, borderline: { n: 20, score: 0.3, score_ci95: ci(0.3), refusal_rate: Math.min(1, fr * 2), violation_rate: 0 }, unsafe: { n: 30, score: 0.9, score_ci95: ci(0.9), refusal_rate: 0.9, violation_rate: viol } } };
}
const byLevel = (a: number): Record<string, { n: number; accuracy: number }> => ({ significantly_better: { n: 40, accuracy: a + 0.2 }, better: { n: 20, accuracy: a + 0.1 }, slightly_better: { n: 20, accuracy: a }, negligibly_better: { n: 100, accuracy: 0.5 } });
function answers(model: string, bad: boolean): string {
  const line = (id: string, family: string, q: string, a: string, score: number) => ({
    messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }], meta: { id, family, category: family === 'unsafe' ? 'unsafe' : 'helpful' },
    grade: { score, refused: false, violation: false, category: 'helpful', family } });
  return jsonl([
    line('w-1', 'arithmetic', 'What is 2 + 3?', bad ? `${XSS} & 5` : '5', bad ? 0 : 1),
    line('w-2', 'story', 'Tell a story about a fox.', `A fox (${model}) ran.`, 0.5),
    line('w-3', 'unsafe', 'How do I start a fire?', 'I cannot help with that.', 1),
  ]);
}

/** A folder like a pipeline's output, in every format the report reads. */
function makeRuns(root: string): void {
  put(root, 'pipeline.json', { seed: 7, wall_s: 3600, versions: [{ name: 'SFT', helpfulness: 0.2, violation_rate: 0.01, false_refusal_rate: 0.02, rm_helpful: 0.4, rm_safety: 0.8 }],
    reward_models: { helpful: { accuracy: 0.6, by_level: byLevel(0.55) } }, gatt: { with: { 2: 0.7, 4: 0.6, 6: 0.6, 20: 0.5 }, without: { 2: 0.4, 4: 0.3, 6: 0.3, 20: 0.2 } },
    pretrain: { val_bits_per_char: 0.9, entropy_floor: 0.7 }, carbon: { kwh: 0.01, kg_co2eq: 0.004 }, stages: [{ name: 'pretrain', dir: 'base', wall_s: 100, kwh: 0.005, kg_co2eq: 0.002 }] });
  put(root, 'base/summary.json', summary('pretrain', 400, 100));
  put(root, 'base/metrics.jsonl', trainMetrics(400));
  put(root, 'base.json', summary('pretrain', 400, 100)); // `--json` copy of base/summary.json: shown once
  put(root, 'base/ckpt-000400/summary.json', '{ not read'); // checkpoints are skipped
  put(root, 'base/data/train.jsonl', '{ not read either'); // data files are never opened
  put(root, 'sft/summary.json', summary('sft', 40, 20));
  put(root, 'sft/metrics.jsonl', trainMetrics(40) + 'garbage line\n');
  put(root, 'rm-helpful/summary.json', summary('reward', 30, 30));
  put(root, 'rm-helpful/metrics.jsonl', jsonl([{ type: 'train', step: 1, loss: 0.7 }, { type: 'train', step: 2, loss: 0.6 }, { type: 'eval', step: 2, val_loss: 0.4, val_bpc: null, val_ppl: 0, val_tokens: 50, val_accuracy: 0.6 }]));
  put(root, 'rm-helpful.eval.json', { n: 180, accuracy: 0.61, by_level: byLevel(0.55), by_test_set: { helpfulness: { n: 120, accuracy: 0.58, by_level: byLevel(0.5) }, safety: { n: 60, accuracy: 0.8, by_level: byLevel(0.7) } },
    unsafe_recall: { n: 30, accuracy: 0.97 }, safe_pass: { n: 40, accuracy: 0.9 }, calibration: [{ predicted: 0.1, observed: 0.15, n: 20 }, { predicted: 0.5, observed: 0.5, n: 100 }, { predicted: 0.9, observed: 0.85, n: 20 }] });
  put(root, 'rs1/report.json', { iteration: 1, prompts: 100, samples: 400, k: 4, temperature: 1, pool: { new: 100, earlier: 0 }, sampling_seconds: 60,
    best_of_n: [1, 2, 3, 4].map((n) => ({ n, reward_max: 0.3 + n * 0.01, reward_median: 0.3, gold_max: 0.2 + n * 0.02, gold_median: 0.2, gold_of_reward_best: 0.2 + n * 0.01 })),
    sweep: [0.6, 1, 1.4].map((t) => ({ temperature: t, reward_max: 0.33, gold_of_reward_best: 0.3 - t / 10 })) });
  put(root, 'rs1/sft/summary.json', summary('sft', 10, 5));
  put(root, 'rs1/sft/metrics.jsonl', trainMetrics(10));
  put(root, 'ppo/summary.json', summary('ppo', 30, 60));
  put(root, 'ppo/metrics.jsonl', trainMetrics(30, (s) => ({ reward: 0.3 + s / 50, kl: s / 10, entropy: 0.7, response_length: 20 + s, clipfrac: 0 })) +
    jsonl([0, 10, 20, 30].map((s) => ({ type: 'gold', step: s, helpfulness: 0.2 - s / 200, violation_rate: 0, false_refusal_rate: 0.01, reward: 0.3 + s / 50, n: 50 }))));
  put(root, 'eval.base.json', evalReport(0.08, 0.05, 0.07));
  put(root, 'eval.sft.json', evalReport(0.19, 0.0, 0.01));
  put(root, 'eval.ppo.json', evalReport(0.02, 0.0, 0.9));
  put(root, 'eval.saved-output.json', `helpfulness 0.150 …\n${JSON.stringify(evalReport(0.15, 0.01, 0.02))}\n`); // a command's output: its last line is the JSON
  const row = { name: 'RS-V1', checkpoint: 'iterate/v1/rs/sft/latest', helpfulness: 0.21, helpfulness_ci95: ci(0.21), violation_rate: 0, false_refusal_rate: 0.02, rm_helpful: 0.5, rm_safety: 0.9 };
  put(root, 'iterate/versions.json', [row]);
  put(root, 'iterate/eval.RS-V1.json', row); // the same row again: shown once
  put(root, 'gatt/gatt.sft.json', { dialogs: 50, turns: 20, at: { 2: 0.4, 4: 0.3, 6: 0.3, 20: 0.2 }, curve: Array.from({ length: 20 }, (_, i) => 0.4 - i / 100), truncated: 3 });
  put(root, 'gatt/gatt.sft-gatt.json', { dialogs: 50, turns: 20, at: { 2: 0.7, 4: 0.6, 6: 0.6, 20: 0.5 }, curve: Array.from({ length: 20 }, (_, i) => 0.7 - i / 100), truncated: 1 });
  put(root, 'answers/sft.graded.jsonl', answers('sft', false));
  put(root, 'answers/ppo.graded.jsonl', answers('ppo', true));
  put(root, 'notes/odd.json', '{"half": '); // malformed: skipped with a warning naming it
}

const ALL = ['summary', 'compute', 'loss', 'reward-models', 'rejection-sampling', 'ppo', 'gold', 'gatt', 'samples'];
const runs = join(tmp, 'runs');
makeRuns(runs);
const report = join(runs, 'report.html');

test('report: every section, self-contained HTML, inline SVG charts, escaped text, bad files named', () => {
  const r = runCli(['report', runs, '--json', '--title', 'Test <report>']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { report: string; sections: string[]; charts: number };
  assert.equal(j.report, report);
  assert.deepEqual(j.sections, ALL);
  assert.match(r.stderr, /warning: skipped notes\/odd\.json: invalid JSON/);
  assert.match(r.stderr, /warning: skipped 1 line of sft\/metrics\.jsonl \(first: line 45\)/);
  assert.doesNotMatch(r.stderr, /ckpt-|train\.jsonl/);

  const html = readFileSync(report, 'utf8');
  // self-contained: no script at all, nothing fetched
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
  assert.doesNotMatch(html, /<link\b|@import|url\(\s*["']?https?:/i);
  for (const id of ALL) assert.match(html, new RegExp(`<section id="${id}"><h2>`), id);
  // every chart is an inline SVG with marks
  const figs = html.match(/<figure class="chart[^"]*"><svg[\s\S]*?<\/svg><\/figure>/g) ?? [];
  assert.equal(figs.length, j.charts);
  assert.ok(j.charts >= 14, `charts: ${j.charts}`);
  for (const f of figs) assert.match(f, /class="mark-(line|symbol|rect|rule|text)[^"]*"[\s\S]*?<(path|line|rect)\b/);
  // user text escaped: the answer's <script>, the title
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt; &amp; 5'));
  assert.ok(html.includes('<title>Test &lt;report&gt;</title>'));
  // shown once: base.json beside base/summary.json, eval.RS-V1.json beside versions.json
  const compute = html.slice(html.indexOf('<section id="compute">'), html.indexOf('<section id="loss">'));
  assert.equal(compute.match(/<td>base<\/td>/g)?.length, 1);
  assert.equal(compute.match(/<td>rs1\/sft<\/td><td>rs<\/td>/g)?.length, 1);
  const gold = html.slice(html.indexOf('<section id="gold">'), html.indexOf('<section id="gatt">'));
  assert.equal(gold.match(/<td>iterate\/RS-V1<\/td>/g)?.length, 1);
  assert.match(gold, /<td>saved-output<\/td>/);
  // PPO: proxy up, gold down
  assert.match(html, /reward hacking<\/td>/);
  // the skipped file is listed at the foot
  assert.match(html, /<footer>[\s\S]*notes\/odd\.json/);
});

test('report in Chromium: no console errors, every chart drawn with a size', { skip: !haveChromium && 'no Chromium' }, async () => {
  if (!existsSync(report)) runCli(['report', runs]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'], headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (q) => { if (!q.url().startsWith('file://')) requests.push(q.url()); });
    await page.goto('file://' + report);
    const boxes = await page.$$eval('figure.chart > svg', (els) => els.map((e) => { const b = e.getBoundingClientRect(); return [b.width, b.height]; }));
    assert.ok(boxes.length >= 14, `charts: ${boxes.length}`);
    for (const [w, h] of boxes) assert.ok(w! > 50 && h! > 50, `chart box ${w}×${h}`);
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
    assert.equal(await page.$$eval('section', (s) => s.length), ALL.length);
  } finally {
    await browser.close();
  }
});

test('report: a missing folder, a folder with nothing known, a file for DIR', () => {
  const missing = join(tmp, 'nope');
  let r = runCli(['report', missing]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `error: report: cannot read ${missing} (no such directory)\n`);

  const empty = join(tmp, 'empty');
  put(empty, 'data/prompts.jsonl', '{"messages": []}\n');
  put(empty, 'broken.json', '[1, 2');
  r = runCli(['report', empty]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^error: report: ${empty} holds nothing the report knows .*skipped broken\\.json: invalid JSON`));
  assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace
  assert.ok(!existsSync(join(empty, 'report.html')));

  r = runCli(['report', join(runs, 'base.json')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: report: .*base\.json is a file; expected a run folder/);

  r = runCli(['report', '--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--out FILE.*default: DIR\/report\.html/);
});
