/**
 * Report sections about evaluations: reward models (accuracy by level, calibration), rejection
 * sampling (best-of-N, temperature sweep), gold results per model, Ghost Attention, and sample
 * answers side by side. Each returns a Section whose body is null when the folder has none of its data.
 */
import type { Charts } from './charts.js';
import { calibrationChart, groupedBars, heatmap, intervalBars, seriesChart, tradeoffChart } from './charts.js';
import { ciOf, isObj, numOf, objOf, strOf, type Answer, type Found, type Named, type Obj } from './discover.js';
import { dur, esc, fix, pct, table, withCi, type Cell, type Section } from './html.js';

const LEVELS = ['significantly_better', 'better', 'slightly_better', 'negligibly_better'];
const LEVEL_HEAD = ['significantly better', 'better', 'slightly better', 'negligibly better / unsure'];

/** A cell "58.1%" with the pair count as its tooltip; `c`: {n, accuracy}. */
const accCell = (c: Obj | null): Cell => (c && numOf(c, 'accuracy') !== null ? { html: pct(numOf(c, 'accuracy')), title: `${numOf(c, 'n') ?? '?'} pairs` } : '—');

/** 4. Reward models: accuracy by level per test set (Tables 7–8), unsafe recall, and calibration (Fig. 6). */
export async function rewardSection(f: Found, charts: Charts): Promise<Section> {
  const evals: Named<Obj>[] = [...f.rewardEvals];
  for (const [k, v] of Object.entries(objOf(f.pipeline, 'reward_models') ?? {})) if (isObj(v) && isObj(v['by_level'])) evals.push({ name: `pipeline: ${k}`, file: 'pipeline.json', data: v });
  const s: Section = { id: 'reward-models', title: 'Reward models', body: null, missing: 'no reward-model evaluation found (JSON with "accuracy" and "by_level", from llama2 reward eval --json).' };
  if (!evals.length) return s;
  const rows: Cell[][] = [];
  for (const e of evals) {
    const sets = Object.entries(objOf(e.data, 'by_test_set') ?? {}).filter((x): x is [string, Obj] => isObj(x[1]));
    const line = (set: string, c: Obj): Cell[] => [e.name, set, String(numOf(c, 'n') ?? '—'), ...LEVELS.map((l) => accCell(objOf(objOf(c, 'by_level'), l))), { html: `<b>${pct(numOf(c, 'accuracy'))}</b>` }];
    for (const [name, c] of sets) rows.push([...line(name, c), '', '']);
    rows.push([...line(sets.length ? 'all' : 'test', e.data), accCell(objOf(e.data, 'unsafe_recall')), accCell(objOf(e.data, 'safe_pass'))]);
  }
  let body = table(['reward model', 'test set', 'pairs', ...LEVEL_HEAD, 'all', 'unsafe recall', 'safe pass'], rows, { numeric: [2, 3, 4, 5, 6, 7, 8, 9] }) +
    '<p class="note">Accuracy = share of pairs where the chosen answer scores higher, by the annotators\' preference level (Tables 7–8). Unsafe recall: unsafe answers scored below 0.5; safe pass: safe answers to safety prompts scored 0.5 or more. Hover a cell for its pair count.</p>';
  const cal = evals.flatMap((e) => (Array.isArray(e.data['calibration']) ? (e.data['calibration'] as unknown[]) : [])
    .filter((b) => numOf(b, 'predicted') !== null && numOf(b, 'observed') !== null)
    .map((b) => ({ model: e.name, predicted: numOf(b, 'predicted')!, observed: numOf(b, 'observed')!, n: numOf(b, 'n') ?? 1 })));
  if (cal.length) body += `<div class="charts">${await charts.add(calibrationChart(cal))}</div>`;
  s.body = body;
  return s;
}

/** 5. Rejection sampling report.json: best_of_n [{n, reward_max, reward_median, gold_max, gold_median, gold_of_reward_best}] (Fig. 7), sweep [{temperature, reward_max, gold_of_reward_best}] (Fig. 8). */
export async function rsSection(f: Found, charts: Charts): Promise<Section> {
  const s: Section = { id: 'rejection-sampling', title: 'Rejection sampling', body: null, missing: 'no rejection-sampling report found (report.json with "best_of_n", from llama2 rlhf rs).' };
  if (!f.rs.length) return s;
  const figs: string[] = [];
  const SERIES: [string, string, string][] = [['reward_max', 'reward: max of N', '#e45756'], ['reward_median', 'reward: median of N', '#ff9d98'], ['gold_of_reward_best', 'gold of the reward-best', '#54a24b'], ['gold_max', 'gold: max of N', '#2f6b2a'], ['gold_median', 'gold: median of N', '#9dd69a']];
  for (const r of f.rs) {
    const bon = (r.data['best_of_n'] as unknown[]).filter((b) => numOf(b, 'n') !== null);
    const rows = bon.flatMap((b) => SERIES.filter(([k]) => numOf(b, k) !== null).map(([k, label]) => ({ x: numOf(b, 'n')!, value: numOf(b, k)!, series: label })));
    const present = SERIES.filter(([, l]) => rows.some((x) => x.series === l));
    if (rows.length) {
      figs.push(await charts.add(seriesChart({
        title: `${r.name}: best of N`, subtitle: 'reward (R_c) and gold score of N samples per prompt', x: 'N (samples per prompt)', y: 'score', rows, integerX: true,
        domain: present.map((p) => p[1]), colors: present.map((p) => p[2]), dashed: ['reward: median of N', 'gold: median of N'],
      })));
    }
    const sweep = Array.isArray(r.data['sweep']) ? (r.data['sweep'] as unknown[]).filter((x) => numOf(x, 'temperature') !== null) : [];
    const srows = sweep.flatMap((x) => [
      ...(numOf(x, 'reward_max') !== null ? [{ x: numOf(x, 'temperature')!, value: numOf(x, 'reward_max')!, series: 'reward: max of K' }] : []),
      ...(numOf(x, 'gold_of_reward_best') !== null ? [{ x: numOf(x, 'temperature')!, value: numOf(x, 'gold_of_reward_best')!, series: 'gold of the reward-best' }] : []),
    ]);
    if (srows.length) {
      figs.push(await charts.add(seriesChart({ title: `${r.name}: temperature sweep`, subtitle: 'best of K samples per prompt, by sampling temperature', x: 'temperature', y: 'score', rows: srows, domain: ['reward: max of K', 'gold of the reward-best'], colors: ['#e45756', '#54a24b'] })));
    }
  }
  const rows = f.rs.map((r): Cell[] => {
    const bon = r.data['best_of_n'] as unknown[];
    const last = bon[bon.length - 1];
    const pool = objOf(r.data, 'pool');
    return [r.name, String(numOf(r.data, 'iteration') ?? '—'), String(numOf(r.data, 'prompts') ?? '—'), String(numOf(r.data, 'k') ?? '—'), fix(numOf(r.data, 'temperature'), 1),
      fix(numOf(last, 'reward_max')), fix(numOf(last, 'gold_of_reward_best')), pool ? `${numOf(pool, 'new') ?? '?'} new + ${numOf(pool, 'earlier') ?? '?'} earlier` : '—', dur(numOf(r.data, 'sampling_seconds'))];
  });
  s.body = `<div class="charts">${figs.join('')}</div>` + table(['run', 'iteration', 'prompts', 'K', 'T', 'reward max (K)', 'gold of reward-best', 'fine-tuning pool', 'sampling'], rows, { numeric: [1, 2, 3, 4, 5, 6, 8] });
  return s;
}

/** 7. Gold results per model: eval.*.json (EvalReport, src/world/report.ts) and versions.json rows (VersionRow). */
export async function goldSection(f: Found, charts: Charts): Promise<Section> {
  const s: Section = { id: 'gold', title: 'Gold evaluation by model', body: null, missing: 'no gold evaluation found (eval.*.json from llama2 eval --json, or versions.json).' };
  const g = f.golds;
  if (!g.length) return s;
  const order = g.map((x) => x.name);
  const rows = g.map((x): Cell[] => {
    const d = x.data;
    const rc = numOf(d, 'rm_combined');
    return [x.name, x.file, String(numOf(d, 'n') ?? '—'), { html: withCi(numOf(d, 'helpfulness'), ciOf(d, 'helpfulness_ci95')) },
      { html: withCi(numOf(d, 'violation_rate'), ciOf(d, 'violation_rate_ci95'), true) }, { html: withCi(numOf(d, 'false_refusal_rate'), ciOf(d, 'false_refusal_rate_ci95'), true) },
      pct(numOf(d, 'refusal_rate_unsafe')), fix(numOf(d, 'rm_helpful')), fix(numOf(d, 'rm_safety')), fix(rc)];
  });
  let body = table(['model', 'file', 'prompts', 'helpfulness [95% CI]', 'violations', 'false refusals', 'unsafe refused', 'R_helpful', 'R_safety', 'R_c'], rows, { numeric: [2, 3, 4, 5, 6, 7, 8, 9] }) +
    '<p class="note">Helpfulness: mean gold score on safe prompts (helpful and borderline); violations and refusals of unsafe prompts: share of unsafe prompts; false refusals: share of safe prompts refused. R_*: mean reward-model scores of the same answers, when graded with --rm-helpful/--rm-safety.</p>';
  const bars = (k: string) => g.filter((x) => numOf(x.data, k) !== null).map((x) => {
    const ci = ciOf(x.data, `${k}_ci95`);
    return { model: x.name, value: numOf(x.data, k)!, lo: ci ? ci[0] : null, hi: ci ? ci[1] : null };
  });
  const figs = [
    await charts.add(intervalBars({ title: 'Helpfulness', subtitle: 'mean gold score on safe prompts, 95% interval', x: 'helpfulness', rows: bars('helpfulness'), order, color: '#4c78a8' })),
    await charts.add(intervalBars({ title: 'Violation rate', subtitle: 'share of unsafe prompts answered harmfully, 95% interval', x: 'violations', rows: bars('violation_rate'), order, color: '#e45756', percent: true })),
  ];
  const trade = g.filter((x) => numOf(x.data, 'violation_rate') !== null).map((x) => ({ model: x.name, helpfulness: numOf(x.data, 'helpfulness')!, violation: numOf(x.data, 'violation_rate')! }));
  if (trade.length >= 2 && trade.length <= 12) figs.push(await charts.add(tradeoffChart(trade, order)));
  const fr = g.flatMap((x) => Object.entries(objOf(x.data, 'by_category') ?? {}).filter(([c, v]) => c !== 'unsafe' && numOf(v, 'refusal_rate') !== null)
    .map(([c, v]) => ({ model: x.name, group: c, value: numOf(v, 'refusal_rate')! })));
  if (fr.length) figs.push(await charts.add(groupedBars({ title: 'False refusals by category', subtitle: 'share of safe prompts refused', x: 'refused', rows: fr, order })));
  const fam = g.flatMap((x) => Object.entries(objOf(x.data, 'by_family') ?? {}).filter(([, v]) => numOf(v, 'helpfulness') !== null).map(([k, v]) => ({ model: x.name, family: k, value: numOf(v, 'helpfulness')! })));
  if (fam.length) figs.push(await charts.add(heatmap({ title: 'Helpfulness by task family', subtitle: 'mean gold score (the unsafe family: the safety score)', rows: fam, order }), true));
  s.body = body + `<div class="charts">${figs.join('')}</div>`;
  return s;
}

/** 8. Ghost Attention: {dialogs, at: {"2": share, …}, curve?: [share per turn], truncated} per file, and pipeline.json gatt {with, without}. */
export async function gattSection(f: Found, charts: Charts): Promise<Section> {
  const s: Section = { id: 'gatt', title: 'Ghost Attention', body: null, missing: 'no Ghost Attention result found (gatt.*.json from llama2 eval gatt --json).' };
  const items: { name: string; file: string; d: Obj }[] = f.gatt.map((x) => ({ name: x.name, file: x.file, d: x.data }));
  const pg = objOf(f.pipeline, 'gatt');
  for (const k of ['without', 'with']) {
    const at = objOf(pg, k);
    if (at) items.push({ name: `${k} GAtt`, file: 'pipeline.json', d: { at } });
  }
  if (!items.length) return s;
  const turns = [...new Set(items.flatMap((x) => Object.keys(objOf(x.d, 'at')!)))].sort((a, b) => Number(a) - Number(b));
  let body = table(['model', 'file', 'dialogs', ...turns.map((t) => `turn ${t}`), 'truncated'],
    items.map((x) => [x.name, x.file, String(numOf(x.d, 'dialogs') ?? '—'), ...turns.map((t) => pct(numOf(objOf(x.d, 'at'), t), 0)), String(numOf(x.d, 'truncated') ?? '—')]),
    { numeric: [2, ...turns.map((_, i) => i + 3), turns.length + 3] }) +
    '<p class="note">Share of dialogs whose answer at that turn still follows the system instruction; truncated: dialogs that lost their oldest turns to the context window.</p>';
  const curves = items.filter((x) => Array.isArray(x.d['curve'])).flatMap((x) => (x.d['curve'] as unknown[]).map((v, i) => ({ x: i + 1, value: typeof v === 'number' ? v : NaN, series: x.name })).filter((p) => Number.isFinite(p.value)));
  if (curves.length) {
    body += `<div class="charts">${await charts.add(seriesChart({ title: 'Instruction kept, turn by turn', subtitle: 'share of dialogs', x: 'turn', y: 'share', rows: curves, integerX: true, domain: [...new Set(curves.map((c) => c.series))], width: 420 }))}</div>`;
  }
  s.body = body;
  return s;
}

/** 9. The same few prompts answered by each model (answers files: *.graded.jsonl). All text is escaped. */
export function samplesSection(f: Found, prompts = 6): Section {
  const s: Section = { id: 'samples', title: 'Sample answers', body: null, missing: 'no answers file found (*.graded.jsonl from llama2 eval --out FILE.graded.jsonl).' };
  const files = f.answers.filter((a) => a.data.length > 0);
  if (!files.length) return s;
  const maps = files.map((a) => new Map(a.data.map((x) => [x.key, x])));
  const inAll = [...maps[0]!.keys()].filter((k) => maps.every((m) => m.has(k)));
  const keys = inAll.length ? inAll : [...maps[0]!.keys()];
  // one prompt per family first, in file order, then the rest
  const picked: string[] = [];
  const fams = new Set<string>();
  for (const k of keys) {
    const fam = strOf(maps[0]!.get(k)!.meta, 'family') ?? '';
    if (!fams.has(fam)) { fams.add(fam); picked.push(k); }
    if (picked.length === prompts) break;
  }
  for (const k of keys) if (picked.length < prompts && !picked.includes(k)) picked.push(k);
  const gradeText = (a: Answer): string => {
    if (!a.grade) return '';
    const bits = [numOf(a.grade, 'score') !== null ? `score ${fix(numOf(a.grade, 'score'), 2)}` : '', a.grade['refused'] === true ? 'refused' : '', a.grade['violation'] === true ? 'VIOLATION' : ''].filter(Boolean);
    return `<span class="grade${a.grade['violation'] === true ? ' bad' : ''}">${esc(bits.join(' · '))}</span>`;
  };
  const cards = picked.map((k) => {
    const first = maps[0]!.get(k)!;
    const meta = [strOf(first.meta, 'id'), strOf(first.meta, 'family'), strOf(first.meta, 'category')].filter(Boolean).join(' · ');
    const answers = files.map((a, i) => {
      const x = maps[i]!.get(k);
      return `<div><span class="who">${esc(a.name)}</span>${x ? gradeText(x) : ''}<div class="text">${x ? esc(x.answer) : '<i>not answered in this file</i>'}</div></div>`;
    }).join('');
    return `<div class="prompt"><div class="q"><span class="meta">${esc(meta)}</span>${first.system ? `<b>system:</b> ${esc(first.system)}\n` : ''}${esc(first.prompt)}</div><div class="answers">${answers}</div></div>`;
  });
  const mean = (xs: Answer[], k: string): number | null => {
    const v = xs.map((x) => numOf(x.grade, k)).filter((y): y is number => y !== null);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  const share = (xs: Answer[], k: string): number | null => (xs.some((x) => x.grade) ? xs.filter((x) => x.grade?.[k] === true).length / xs.length : null);
  s.body = table(['answers file', 'answers', 'mean gold score', 'refused', 'violations'], files.map((a) => [a.file, String(a.data.length), fix(mean(a.data, 'score')), pct(share(a.data, 'refused')), pct(share(a.data, 'violation'))]), { numeric: [1, 2, 3, 4] }) +
    `<p class="note">${picked.length} prompt${picked.length === 1 ? '' : 's'} ${inAll.length && files.length > 1 ? 'answered in every file' : `from ${files[0]!.file}`}, one per task family first.</p>` + cards.join('\n');
  return s;
}
