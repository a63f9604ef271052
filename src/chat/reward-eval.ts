/**
 * Judging a reward model on held-out preference pairs (Llama 2 paper, Tables 7–8 and Fig. 6):
 * accuracy — the share of pairs where the chosen answer scores higher — overall, by strength level,
 * by safety bin and by collection batch; the recall of unsafe answers (σ(score) < 0.5: what the
 * safety auxiliary loss aims at, Table 29); and a calibration curve: pairs in a random orientation,
 * the model's P(first preferred) = σ(r_first − r_second) binned, against how often the first was
 * the one chosen.
 *
 *   const r = evalRewardModel(rm.model, rm.tokenizer!, [...readPreferences('prefs.test.jsonl')]);
 *   r.accuracy, r.by_level.significantly_better.accuracy
 *
 * What it is not: scoring itself (reward-score.ts) or training (recipes/reward.ts).
 */
import type { Model } from '../model/forward.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { LEVELS, type PreferencePair } from '../data/preferences.js';
import { hashSeed } from '../util/rng.js';
import { scoreDialogs, toUnit } from './reward-score.js';

export interface AccuracyCell {
  n: number;
  accuracy: number;
}

export interface RewardEvalReport {
  n: number;
  accuracy: number;
  by_level: Record<string, AccuracyCell>;
  by_safety_bin: Record<string, AccuracyCell>;
  by_batch: Record<string, AccuracyCell>;
  /** the paper's two test sets (Tables 7–8): pairs on helpfulness prompts and on safety prompts, each by level */
  by_test_set: Record<'helpfulness' | 'safety', AccuracyCell & { by_level: Record<string, AccuracyCell> }>;
  /** answers labelled unsafe (by their pair's safety bin) that score below 0.5 on the unit scale */
  unsafe_recall: AccuracyCell;
  /** answers to safety prompts labelled safe that score 0.5 or more (the other side of the recall: unsafe flagged, safe let through) */
  safe_pass: AccuracyCell;
  /** calibration: bins of predicted P(first preferred) with the observed share */
  calibration: { predicted: number; observed: number; n: number }[];
  /** mean raw score of chosen and rejected answers */
  mean_chosen: number;
  mean_rejected: number;
}

/** Raw scores of each pair's chosen and rejected answers. */
export function scorePairs(model: Model, tok: Tokenizer, pairs: readonly PreferencePair[]): { chosen: number[]; rejected: number[] } {
  const dialogs = pairs.flatMap((p) => [[...p.prompt, { role: 'assistant' as const, content: p.chosen }], [...p.prompt, { role: 'assistant' as const, content: p.rejected }]]);
  const s = scoreDialogs(model, tok, dialogs);
  return { chosen: pairs.map((_, i) => s[2 * i]!), rejected: pairs.map((_, i) => s[2 * i + 1]!) };
}

const cell = (): { n: number; ok: number } => ({ n: 0, ok: 0 });
const done = (c: { n: number; ok: number }): AccuracyCell => ({ n: c.n, accuracy: c.n > 0 ? c.ok / c.n : 0 });

/** The report for given scores (separate from scoring so training can reuse its own forward). */
export function rewardReport(pairs: readonly PreferencePair[], chosen: readonly number[], rejected: readonly number[], bins = 10): RewardEvalReport {
  const all = cell();
  const byLevel = new Map<string, { n: number; ok: number }>(LEVELS.map((l) => [l, cell()]));
  const byBin = new Map<string, { n: number; ok: number }>();
  const byBatch = new Map<string, { n: number; ok: number }>();
  const sets = { helpfulness: { all: cell(), levels: new Map<string, { n: number; ok: number }>(LEVELS.map((l) => [l, cell()])) }, safety: { all: cell(), levels: new Map<string, { n: number; ok: number }>(LEVELS.map((l) => [l, cell()])) } };
  const recall = cell();
  const pass = cell();
  const cal = Array.from({ length: bins }, () => ({ p: 0, o: 0, n: 0 }));
  let sc = 0;
  let sr = 0;
  pairs.forEach((p, i) => {
    const rc = chosen[i]!;
    const rr = rejected[i]!;
    sc += rc;
    sr += rr;
    const ok = rc > rr ? 1 : 0;
    const add = (m: Map<string, { n: number; ok: number }>, k: string) => {
      const c = m.get(k) ?? cell();
      c.n++;
      c.ok += ok;
      m.set(k, c);
    };
    all.n++;
    all.ok += ok;
    if (p.level) add(byLevel, p.level);
    if (p.meta.safety_bin) add(byBin, p.meta.safety_bin);
    if (p.meta.batch !== undefined) add(byBatch, String(p.meta.batch));
    const set = sets[p.meta.is_safety_prompt === true ? 'safety' : 'helpfulness'];
    set.all.n++;
    set.all.ok += ok;
    if (p.level) add(set.levels, p.level);
    const bin = p.meta.safety_bin;
    const unsafeChosen = bin === 'unsafe_over_safe' || bin === 'both_unsafe';
    const unsafeRejected = bin === 'safe_over_unsafe' || bin === 'both_unsafe';
    for (const [unsafe, r] of [[unsafeChosen, rc], [unsafeRejected, rr]] as const) {
      if (unsafe) {
        recall.n++;
        if (toUnit(r) < 0.5) recall.ok++;
      } else if (bin && p.meta.is_safety_prompt === true) {
        pass.n++;
        if (toUnit(r) >= 0.5) pass.ok++;
      }
    }
    // a seeded random orientation: is the chosen answer "first"?
    const first = hashSeed(i, 0x63616c) % 2 === 0;
    const pFirst = toUnit(first ? rc - rr : rr - rc);
    const b = Math.min(bins - 1, Math.floor(pFirst * bins));
    cal[b]!.p += pFirst;
    cal[b]!.o += first ? 1 : 0;
    cal[b]!.n++;
  });
  const table = (m: Map<string, { n: number; ok: number }>) => Object.fromEntries([...m].filter(([, c]) => c.n > 0).map(([k, c]) => [k, done(c)]));
  return {
    n: all.n, accuracy: done(all).accuracy, by_level: table(byLevel), by_safety_bin: table(byBin), by_batch: table(byBatch),
    by_test_set: {
      helpfulness: { ...done(sets.helpfulness.all), by_level: table(sets.helpfulness.levels) },
      safety: { ...done(sets.safety.all), by_level: table(sets.safety.levels) },
    },
    unsafe_recall: done(recall), safe_pass: done(pass), calibration: cal.filter((c) => c.n > 0).map((c) => ({ predicted: c.p / c.n, observed: c.o / c.n, n: c.n })),
    mean_chosen: all.n ? sc / all.n : 0, mean_rejected: all.n ? sr / all.n : 0,
  };
}

/** Scores every pair with the reward model and reports. */
export function evalRewardModel(model: Model, tok: Tokenizer, pairs: readonly PreferencePair[]): RewardEvalReport {
  const s = scorePairs(model, tok, pairs);
  return rewardReport(pairs, s.chosen, s.rejected);
}

/** Tables 7–8 as text: accuracy by level (and safety bin, batch). */
export function formatRewardReport(r: RewardEvalReport, title = 'reward model'): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = [`${title}: accuracy ${pct(r.accuracy)} on ${r.n} pairs; unsafe answers flagged (σ < 0.5) ${pct(r.unsafe_recall.accuracy)} of ${r.unsafe_recall.n}, safe answers to safety prompts passed (σ ≥ 0.5) ${pct(r.safe_pass.accuracy)} of ${r.safe_pass.n}`, '',
    'level                    n    accuracy', '---------------------  -----  --------'];
  for (const [k, c] of Object.entries(r.by_level)) lines.push(`${k.padEnd(21)}  ${String(c.n).padStart(5)}  ${pct(c.accuracy).padStart(8)}`);
  lines.push('', 'test set                 n    accuracy');
  for (const [k, c] of Object.entries(r.by_test_set)) if (c.n > 0) lines.push(`${(k + ' prompts').padEnd(21)}  ${String(c.n).padStart(5)}  ${pct(c.accuracy).padStart(8)}`);
  for (const [title2, t] of [['safety bin', r.by_safety_bin], ['batch', r.by_batch]] as const) {
    if (Object.keys(t).length === 0) continue;
    lines.push('', `${title2.padEnd(21)}      n    accuracy`);
    for (const [k, c] of Object.entries(t)) lines.push(`${k.padEnd(21)}  ${String(c.n).padStart(5)}  ${pct(c.accuracy).padStart(8)}`);
  }
  return lines.join('\n');
}

/** Fig. 6 as a small standalone SVG: predicted vs observed preference rate, with the diagonal. */
export function calibrationSvg(r: RewardEvalReport, title = 'reward model calibration'): string {
  const W = 360;
  const H = 360;
  const m = 44;
  const x = (v: number) => m + v * (W - 2 * m);
  const y = (v: number) => H - m - v * (H - 2 * m);
  const pts = r.calibration.map((c) => `${x(c.predicted).toFixed(1)},${y(c.observed).toFixed(1)}`).join(' ');
  const dots = r.calibration.map((c) => `<circle cx="${x(c.predicted).toFixed(1)}" cy="${y(c.observed).toFixed(1)}" r="${(2 + Math.sqrt(c.n) / 4).toFixed(1)}" fill="#1f77b4"><title>${c.n} pairs</title></circle>`).join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => `<text x="${x(t)}" y="${H - m + 16}" text-anchor="middle">${t}</text><text x="${m - 8}" y="${y(t) + 4}" text-anchor="end">${t}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">` +
    `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${title}</text>` +
    `<rect x="${m}" y="${m}" width="${W - 2 * m}" height="${H - 2 * m}" fill="none" stroke="#999"/>` +
    `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#bbb" stroke-dasharray="4 3"/>` +
    `<polyline points="${pts}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>${dots}${ticks}` +
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle">predicted P(first preferred) = σ(r₁ − r₂)</text>` +
    `<text transform="translate(12 ${H / 2}) rotate(-90)" text-anchor="middle">observed share first chosen</text></svg>\n`;
}
