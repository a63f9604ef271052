/**
 * Report sections about training runs: the pipeline summary (pipeline.json), compute and carbon
 * (the paper's Table 2), loss curves, and PPO (reward, KL, proxy reward vs gold helpfulness).
 * Each returns a Section whose body is null when the folder has none of its data.
 */
import type { Charts } from './charts.js';
import { byRunChart, lossChart, seriesChart, thin } from './charts.js';
import { isObj, numOf, objOf, strOf, type Found, type TrainingRun } from './discover.js';
import { count, dur, esc, fix, pct, table, type Cell, type Section } from './html.js';

const PROXY = 'proxy reward (R_c)';
const GOLD = 'gold helpfulness';
const sig = (x: number | null, d = 3): string => (x === null ? '—' : x === 0 ? '0' : x.toPrecision(d));

/** 1. pipeline.json: {seed, wall_s, versions: [...], reward_models: {helpful, safety}, pretrain: {val_bits_per_char, entropy_floor, stories_bits_per_char}, carbon: {kwh, kg_co2eq}, stages: [...]}. */
export function summarySection(f: Found): Section {
  const p = f.pipeline;
  const s: Section = { id: 'summary', title: 'Summary', body: null, missing: 'no pipeline.json at the top of the folder (llama2 pipeline --json writes it); every section below comes from the files found.' };
  if (!p) return s;
  const facts: string[] = [];
  if (numOf(p, 'seed') !== null) facts.push(`seed ${numOf(p, 'seed')}`);
  if (numOf(p, 'wall_s') !== null) facts.push(`wall time ${dur(numOf(p, 'wall_s'))}`);
  const carbon = objOf(p, 'carbon');
  if (carbon) facts.push(`energy ${sig(numOf(carbon, 'kwh'))} kWh, ${sig(numOf(carbon, 'kg_co2eq'))} kg CO₂eq`);
  const pre = objOf(p, 'pretrain');
  if (pre) {
    const st = numOf(pre, 'stories_bits_per_char');
    const fl = numOf(pre, 'entropy_floor');
    facts.push(`pretraining: validation ${fix(numOf(pre, 'val_bits_per_char'))} bits/char` +
      (st !== null && fl !== null ? `; its stories ${fix(st, 4)} vs their true entropy ${fix(fl, 4)} (${((st / fl - 1) * 100).toFixed(1)}% above)` : ` (entropy floor ${fix(fl)})`));
  }
  const rms = objOf(p, 'reward_models');
  for (const [k, v] of Object.entries(rms ?? {})) if (isObj(v)) facts.push(`${k} reward model accuracy ${pct(numOf(v, 'accuracy'))}`);
  let body = facts.length ? `<p>${esc(facts.join(' · '))}</p>` : '';
  const versions = Array.isArray(p['versions']) ? (p['versions'] as unknown[]).filter(isObj) : [];
  if (versions.length) {
    body += '<h3>Versions (gold checkers on held-out prompts)</h3>' + table(
      ['version', 'helpfulness', 'violations', 'false refusals', 'R_helpful', 'R_safety'],
      versions.map((v) => [strOf(v, 'name') ?? '?', fix(numOf(v, 'helpfulness')), pct(numOf(v, 'violation_rate')), pct(numOf(v, 'false_refusal_rate')), fix(numOf(v, 'rm_helpful')), fix(numOf(v, 'rm_safety'))]),
      { numeric: [1, 2, 3, 4, 5] });
  }
  const stages = Array.isArray(p['stages']) ? (p['stages'] as unknown[]).filter(isObj) : [];
  if (stages.length) {
    body += '<h3>Stages</h3>' + table(['stage', 'folder', 'wall time', 'energy kWh', 'kg CO₂eq'],
      stages.map((v) => [strOf(v, 'name') ?? '?', strOf(v, 'dir') ?? '', dur(numOf(v, 'wall_s')), sig(numOf(v, 'kwh')), sig(numOf(v, 'kg_co2eq'))]), { numeric: [2, 3, 4] });
  }
  s.body = body || '<p class="note">pipeline.json holds none of the keys the summary shows.</p>';
  return s;
}

/** 2. Compute and carbon per training run, from summary.json (RunSummary: train_seconds, threads, energy_kwh, co2_kg, mfu, …). */
export function computeSection(f: Found): Section {
  const runs = f.runs.filter((r) => numOf(r.summary, 'steps') !== null);
  const s: Section = { id: 'compute', title: 'Compute and carbon', body: null, missing: 'no training run with a summary.json (stage, steps, energy_kwh, co2_kg) found.' };
  if (!runs.length) return s;
  const total = (k: string): number => runs.reduce((a, r) => a + (numOf(r.summary, k) ?? 0), 0);
  const co2 = total('co2_kg');
  const cpuHours = (r: TrainingRun): number | null => {
    const t = numOf(r.summary, 'train_seconds');
    return t === null ? null : (t * (numOf(r.summary, 'threads') ?? 1)) / 3600;
  };
  const rows: Cell[][] = runs.map((r) => {
    const c = numOf(r.summary, 'co2_kg');
    return [r.name, r.stage, strOf(r.summary, 'status') ?? '—', count(numOf(r.summary, 'steps')), count(numOf(r.summary, 'tokens')), count(numOf(r.summary, 'params')),
      dur(numOf(r.summary, 'wall_seconds')), fix(cpuHours(r), 3), pct(numOf(r.summary, 'mfu'), 0), fix(numOf(r.summary, 'cpu_watts'), 0),
      sig(numOf(r.summary, 'energy_kwh')), sig(c), c !== null && co2 > 0 ? pct(c / co2) : '—'];
  });
  const foot: Cell[] = ['total', '', '', '', count(total('tokens')), '', dur(total('wall_seconds')), fix(runs.reduce((a, r) => a + (cpuHours(r) ?? 0), 0), 3), '', '', sig(total('energy_kwh')), sig(co2), co2 > 0 ? '100%' : '—'];
  const sources = new Set(runs.flatMap((r) => [strOf(r.summary, 'watts_source'), strOf(r.summary, 'peak_source')].filter((x): x is string => x !== null)));
  const intensity = new Set(runs.map((r) => numOf(r.summary, 'carbon_intensity_kg_per_kwh')).filter((x) => x !== null));
  s.body = table(['run', 'stage', 'status', 'steps', 'tokens', 'params', 'wall time', 'CPU-hours', 'MFU', 'power W', 'energy kWh', 'kg CO₂eq', 'share'], rows,
    { numeric: [3, 4, 5, 6, 7, 8, 9, 10, 11, 12], foot }) +
    `<p class="note">As the paper's Table 2: CPU-hours = training seconds × threads; energy = power × training time; CO₂eq = energy × ${esc([...intensity].join(' / ') || '?')} kg/kWh; share of the total CO₂eq.` +
    `${sources.size ? ` Assumptions: ${esc([...sources].join('; '))}.` : ''} Rejection sampling and evaluation time (sampling only, no summary) is not counted.</p>`;
  return s;
}

/** 3. Train and validation loss vs step of every run with metrics.jsonl; one small chart per run. */
export async function lossSection(f: Found, charts: Charts): Promise<Section> {
  const runs = f.runs.filter((r) => r.metrics.train.length > 0);
  const s: Section = { id: 'loss', title: 'Loss curves', body: null, missing: 'no metrics.jsonl with "type": "train" lines found.' };
  if (!runs.length) return s;
  const figs: string[] = [];
  let thinned = false;
  for (const r of runs) {
    const pts = r.metrics.train.map((t) => ({ x: numOf(t, 'step')!, y: numOf(t, 'loss')! }));
    const tr = thin(pts);
    thinned ||= tr.length < pts.length;
    const reward = r.metrics.val.some((v) => v.accuracy !== null);
    const valLabel = reward ? 'val error' : 'val';
    const rows = [...tr.map((p) => ({ step: p.x, loss: p.y, series: 'train' })), ...r.metrics.val.map((v) => ({ step: v.step, loss: v.loss, series: valLabel }))];
    const last = r.metrics.val[r.metrics.val.length - 1];
    const sub = `${r.stage} · ${count(pts[pts.length - 1]!.x)} steps${last ? ` · last ${valLabel} ${fix(last.loss)}` : ''}`;
    figs.push(await charts.add(lossChart(r.name, sub, rows, valLabel)));
  }
  s.body = `<div class="charts">${figs.join('')}</div>` +
    `<p class="note">Train loss per optimizer step${thinned ? ' (long runs: the mean of consecutive steps, 300 points)' : ''}; PPO runs show the PPO objective. Reward models: the validation line (val error) is the share of validation pairs ranked wrongly, 1 − accuracy.</p>`;
  return s;
}

/** 6. PPO: proxy reward vs gold helpfulness over the gold evaluations (reward hacking), then reward, KL and answer length per step. */
export async function ppoSection(f: Found, charts: Charts): Promise<Section> {
  const runs = f.runs.filter((r) => r.stage === 'ppo' || r.metrics.train.some((t) => 'kl' in t));
  const s: Section = { id: 'ppo', title: 'PPO', body: null, missing: 'no PPO run found (metrics.jsonl with reward and kl per step, or "type": "gold" lines).' };
  if (!runs.length) return s;
  let body = '';
  const golds = runs.filter((r) => r.metrics.gold.filter((g) => g.reward !== null).length >= 2);
  if (golds.length) {
    const figs: string[] = [];
    const rows: Cell[][] = [];
    for (const r of golds) {
      const g = r.metrics.gold.filter((x) => x.reward !== null);
      const g0 = g[0]!;
      const g1 = g[g.length - 1]!;
      const data = g.flatMap((x) => [
        { x: x.step, value: x.reward! - g0.reward!, series: PROXY },
        { x: x.step, value: x.helpfulness - g0.helpfulness, series: GOLD },
      ]);
      figs.push(await charts.add(seriesChart({
        title: `${r.name}: proxy reward vs gold helpfulness`, subtitle: `change since step ${g0.step} (${g.length} gold evaluations)`,
        x: 'step', y: 'change', rows: data, domain: [PROXY, GOLD], colors: ['#e45756', '#54a24b'], width: 500, height: 210, zero: true,
      }), golds.length === 1));
      const dp = g1.reward! - g0.reward!;
      const dg = g1.helpfulness - g0.helpfulness;
      // a gold change counts beyond 1/√n: the 95% half-width of a share near ½ over the n graded prompts
      const noise = g1.n ? 1 / Math.sqrt(g1.n) : 0;
      const goldDown = dg < -noise;
      const goldUp = dg > noise;
      const verdict: Cell = dp > 0 && goldDown ? { html: 'proxy ↑, gold ↓: reward hacking', cls: 'bad' } : dp > 0 && goldUp ? { html: 'both ↑', cls: 'good' }
        : dp < 0 && goldDown ? 'both ↓' : !goldUp && !goldDown ? `gold within ±${noise.toFixed(3)} (noise)` : 'mixed';
      const arrow = (a: number | null, b: number | null, p = false): string => `${p ? pct(a) : fix(a)} → ${p ? pct(b) : fix(b)}`;
      rows.push([r.name, `${g0.step}–${g1.step}`, arrow(g0.reward, g1.reward), arrow(g0.helpfulness, g1.helpfulness), arrow(g0.violation_rate, g1.violation_rate, true), arrow(g0.false_refusal_rate, g1.false_refusal_rate, true), verdict]);
    }
    body += `<div class="charts">${figs.join('')}</div>` +
      '<p class="note">Both lines are changes since the first gold evaluation: the proxy is the mean R_c the run is rewarded with (its reward models\', or the gold checkers\' for runs with reward gold) on the answers to the gold prompts, the gold line the chat world\'s checkers on the same answers. Proxy up while gold falls (by more than 1/√n of the n graded prompts) is reward hacking.</p>' +
      table(['run', 'steps', 'proxy reward', 'gold helpfulness', 'violations', 'false refusals', 'verdict'], rows, { numeric: [2, 3, 4, 5] });
  } else body += '<p class="note">No gold evaluations during PPO ("type": "gold" lines with a reward) to compare the proxy reward with.</p>';
  const per = async (k: string, title: string, sub: string, y: string): Promise<string> => {
    const rows = runs.flatMap((r) => thin(r.metrics.train.filter((t) => numOf(t, k) !== null).map((t) => ({ x: numOf(t, 'step')!, y: numOf(t, k)! })))
      .map((p) => ({ step: p.x, value: p.y, run: r.name })));
    return rows.length ? charts.add(byRunChart(title, sub, y, rows)) : '';
  };
  const figs = [
    await per('reward', 'Reward per step', 'mean R_c of the step\'s rollouts (reward models)', 'reward'),
    await per('kl', 'KL to the reference policy', 'per step, mean over answer tokens', 'KL'),
    await per('response_length', 'Answer length', 'mean tokens per rollout answer', 'tokens'),
  ].filter(Boolean);
  if (figs.length) body += `<h3>Training signals</h3><div class="charts">${figs.join('')}</div>`;
  s.body = body;
  return s;
}
