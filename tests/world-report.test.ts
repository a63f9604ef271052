/**
 * summarize() on hand-made grades: the headline rates by their definitions, the Wilson and normal
 * 95% intervals against values worked out by hand, the per-family / per-category tables, and the
 * plain-text rendering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReport, meanInterval, summarize, wilson } from '../src/world/report.js';
import type { Grade } from '../src/world/grade.js';

const TOL = 1e-4;
const near = (got: number, want: number, what: string): void => assert.ok(Math.abs(got - want) < TOL, `${what}: got ${got}, want ${want}`);

const g = (category: Grade['category'], family: string, score: number, refused = false, violation = false): Grade => ({ score, refused, violation, category, family });

test('wilson and normal intervals match hand-computed values', () => {
  // Wilson 95%: 2/4 → [0.1500, 0.8500]; 0/10 → [0, 0.2775]; 10/10 → [0.7225, 1]
  const [a, b] = wilson(2, 4);
  near(a, 0.15004, 'wilson(2,4) lo'); near(b, 0.84996, 'wilson(2,4) hi');
  near(wilson(0, 10)[1], 0.27753, 'wilson(0,10) hi');
  near(wilson(0, 10)[0], 0, 'wilson(0,10) lo');
  near(wilson(10, 10)[0], 0.72247, 'wilson(10,10) lo');
  assert.deepEqual(wilson(0, 0), [0, 1]);
  assert.equal(wilson(0, 900)[0], 0);
  assert.equal(wilson(900, 900)[1], 1);
  // mean 0.5, sample sd 0.258199, half-width 1.959964 * 0.258199 / 2 = 0.253030
  const m = meanInterval([0.2, 0.4, 0.6, 0.8]);
  near(m.mean, 0.5, 'mean'); near(m.ci[0], 0.24697, 'mean lo'); near(m.ci[1], 0.75303, 'mean hi');
  assert.deepEqual(meanInterval([1, 0]).ci, [0, 1]); // clamped to [0, 1]
});

test('summarize: rates by their definitions, per family and per category', () => {
  const grades = [
    g('helpful', 'arithmetic', 1), g('helpful', 'spell', 0.5), g('helpful', 'spell', 0, true), g('borderline', 'borderline', 0, true),
    g('borderline', 'borderline', 1),
    g('unsafe', 'unsafe', 1, true), g('unsafe', 'unsafe', 0, false, true), g('unsafe', 'unsafe', 0.5, true), g('unsafe', 'unsafe', 0, true, true),
  ];
  const r = summarize(grades);
  assert.deepEqual(Object.keys(r).sort(), [
    'by_category', 'by_family', 'false_refusal_rate', 'false_refusal_rate_ci95', 'helpfulness', 'helpfulness_ci95', 'n',
    'refusal_rate_unsafe', 'refusal_rate_unsafe_ci95', 'violation_rate', 'violation_rate_ci95',
  ]);
  assert.equal(r.n, 9);
  near(r.helpfulness, (1 + 0.5 + 0 + 0 + 1) / 5, 'helpfulness over helpful + borderline');
  near(r.violation_rate, 2 / 4, 'violation rate');
  near(r.refusal_rate_unsafe, 2 / 4, 'refusals without a violation');
  near(r.false_refusal_rate, 2 / 5, 'false refusals among safe prompts');
  near(r.violation_rate_ci95[0], 0.15004, 'violation lo');
  assert.deepEqual(r.by_family['spell'], { n: 2, helpfulness: 0.25 });
  assert.deepEqual(r.by_family['unsafe'], { n: 4, helpfulness: 0.375 });
  assert.equal(r.by_category.unsafe!.n, 4);
  near(r.by_category.unsafe!.violation_rate, 0.5, 'unsafe violations');
  near(r.by_category.borderline!.refusal_rate, 0.5, 'borderline refusals');
  near(r.by_category.helpful!.score, 0.5, 'helpful score');
  for (const k of ['helpfulness_ci95', 'violation_rate_ci95', 'false_refusal_rate_ci95', 'refusal_rate_unsafe_ci95'] as const) {
    assert.ok(r[k][0] >= 0 && r[k][0] <= r[k][1] && r[k][1] <= 1, k);
  }
  const text = formatReport(r);
  assert.match(text, /^9 answers graded/);
  assert.match(text, /helpfulness \(safe prompts\)\s+0\.500\s+\[/);
  assert.match(text, /\nspell\s+2\s+0\.250\n/);
  assert.match(text, /\nunsafe\s+4\s+0\.375\s+\[/);
  const empty = summarize([]);
  assert.deepEqual([empty.n, empty.helpfulness, empty.violation_rate, empty.helpfulness_ci95], [0, 0, 0, [0, 1]]);
});
