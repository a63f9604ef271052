/**
 * The report's charts: Vega-Lite specifications built from plain rows, compiled to Vega and
 * rendered to an SVG string in Node (`renderer: 'none'`, no canvas, no network: every spec
 * carries its data inline). Each builder takes the rows it plots, shaped as written next to it.
 *
 * What it is not: the standalone loss.svg of a training run (train/metrics.ts draws that one).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { figure } from './html.js';

/** Colours shared by every chart: train/val, proxy/gold, and the category palette. */
const C = { train: '#4c78a8', val: '#f58518', proxy: '#e45756', gold: '#54a24b', diag: '#999' };

const CONFIG = {
  font: 'Helvetica, Arial, sans-serif',
  background: 'white',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 10, titleFontSize: 11, gridColor: '#eee', titleFontWeight: 'normal' as const },
  legend: { labelFontSize: 10, titleFontSize: 10, labelLimit: 220 },
  title: { fontSize: 12, anchor: 'start' as const, subtitleFontSize: 10, subtitleColor: '#666' },
};

/** Vega-Lite's compile notes (e.g. merged legends) stay off the command's output. */
const QUIET = vega.logger(vega.None);

/**
 * Renders one spec to an SVG string. `id` prefixes the element ids inside it (clip paths), so
 * several charts inline in one page never share an id.
 */
export async function renderSvg(spec: TopLevelSpec, id: string): Promise<string> {
  const vg = compile({ ...spec, config: CONFIG } as TopLevelSpec, { logger: QUIET }).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return svg.replace(/\bid="([^"]+)"/g, `id="${id}-$1"`).replace(/url\(#([^)]+)\)/g, `url(#${id}-$1)`);
  } finally {
    view.finalize();
  }
}

/** The charts of one report: numbers them (their SVG ids stay distinct) and wraps each in a figure. */
export class Charts {
  count = 0;
  async add(spec: TopLevelSpec, wide = false): Promise<string> {
    return figure(await renderSvg(spec, `c${++this.count}`), wide);
  }
}

/** At most `max` points: means of equal runs of consecutive points (all of them when fewer). */
export function thin(pts: readonly { x: number; y: number }[], max = 300): { x: number; y: number }[] {
  if (pts.length <= max) return [...pts];
  const k = Math.ceil(pts.length / max);
  const out: { x: number; y: number }[] = [];
  for (let i = 0; i < pts.length; i += k) {
    const g = pts.slice(i, i + k);
    out.push({ x: g[g.length - 1]!.x, y: g.reduce((a, p) => a + p.y, 0) / g.length });
  }
  return out;
}

/** Train and validation loss vs step of one run. rows: {step, loss, series: "train" | valLabel}. */
export function lossChart(title: string, subtitle: string, rows: { step: number; loss: number; series: string }[], valLabel: string): TopLevelSpec {
  const domain = rows.some((r) => r.series === valLabel) ? ['train', valLabel] : ['train'];
  const enc = {
    x: { field: 'step', type: 'quantitative' as const, title: 'step' },
    y: { field: 'loss', type: 'quantitative' as const, title: null, scale: { zero: false } },
    color: { field: 'series', type: 'nominal' as const, scale: { domain, range: [C.train, C.val] }, legend: { title: null, orient: 'top' as const } },
  };
  return {
    title: { text: title, subtitle }, width: 250, height: 130, data: { values: rows },
    layer: [
      { mark: { type: 'line', strokeWidth: 1.2 }, encoding: enc },
      { transform: [{ filter: "datum.series !== 'train'" }], mark: { type: 'point', filled: true, size: 16 }, encoding: enc },
    ],
  };
}

/** Reward-model calibration (Fig. 6): rows {model, predicted, observed, n}, with the diagonal. */
export function calibrationChart(rows: { model: string; predicted: number; observed: number; n: number }[]): TopLevelSpec {
  const x = { field: 'predicted', type: 'quantitative' as const, title: 'predicted P(chosen preferred)', scale: { domain: [0, 1] } };
  const y = { field: 'observed', type: 'quantitative' as const, title: 'observed share', scale: { domain: [0, 1] } };
  return {
    title: { text: 'Calibration', subtitle: 'bins of the predicted preference vs how often it held; point area ∝ pairs in the bin' },
    width: 340, height: 300,
    layer: [
      { data: { values: [{ predicted: 0, observed: 0 }, { predicted: 1, observed: 1 }] }, mark: { type: 'line', strokeDash: [4, 4], color: C.diag }, encoding: { x, y } },
      { data: { values: rows }, mark: { type: 'line', strokeWidth: 1.2, opacity: 0.8 }, encoding: { x, y, color: { field: 'model', type: 'nominal', title: 'reward model' } } },
      { data: { values: rows }, mark: { type: 'point', filled: true, opacity: 0.8 }, encoding: { x, y, color: { field: 'model', type: 'nominal', title: 'reward model' }, size: { field: 'n', type: 'quantitative', scale: { type: 'sqrt', range: [8, 300] }, legend: null } } },
    ],
  };
}

/** A few named lines over one x: rows {x, value, series}; `dashed` series are drawn dashed. */
export function seriesChart(o: { title: string; subtitle?: string; x: string; y: string; rows: { x: number; value: number; series: string }[]; domain: string[]; colors?: string[]; dashed?: string[]; width?: number; height?: number; zero?: boolean; integerX?: boolean }): TopLevelSpec {
  const enc = {
    x: { field: 'x', type: 'quantitative' as const, title: o.x, axis: o.integerX ? { tickMinStep: 1 } : {} },
    y: { field: 'value', type: 'quantitative' as const, title: o.y, scale: { zero: false } },
    color: { field: 'series', type: 'nominal' as const, scale: o.colors ? { domain: o.domain, range: o.colors } : { domain: o.domain }, legend: { title: null, orient: 'bottom' as const, columns: 2 } },
  };
  const dash = { field: 'series', type: 'nominal' as const, scale: { domain: o.domain, range: o.domain.map((s) => (o.dashed?.includes(s) ? [5, 3] : [1, 0])) } };
  return {
    title: { text: o.title, subtitle: o.subtitle ?? '' }, width: o.width ?? 260, height: o.height ?? 170, data: { values: o.rows },
    layer: [
      ...(o.zero ? [{ data: { values: [{}] }, mark: { type: 'rule' as const, color: '#888', strokeDash: [2, 2] }, encoding: { y: { datum: 0, type: 'quantitative' as const } } }] : []),
      { mark: { type: 'line', strokeWidth: 1.6 }, encoding: { ...enc, strokeDash: dash } },
      { mark: { type: 'point', filled: true, size: 22 }, encoding: enc },
    ],
  };
}

/** One measure of several runs vs step (PPO reward, KL): rows {step, value, run}. */
export function byRunChart(title: string, subtitle: string, y: string, rows: { step: number; value: number; run: string }[]): TopLevelSpec {
  return {
    title: { text: title, subtitle }, width: 330, height: 180, data: { values: rows },
    mark: { type: 'line', strokeWidth: 1.3 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'value', type: 'quantitative', title: y, scale: { zero: false } },
      color: { field: 'run', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2 } },
    },
  };
}

/** A value per model with its 95% interval: rows {model, value, lo, hi} (lo/hi null when unknown), in `order`. */
export function intervalBars(o: { title: string; subtitle: string; x: string; rows: { model: string; value: number; lo: number | null; hi: number | null }[]; order: string[]; color: string; percent?: boolean }): TopLevelSpec {
  const fmt = o.percent ? '.0%' : '.2f';
  const y = { field: 'model', type: 'nominal' as const, sort: o.order, title: null, axis: { labelLimit: 280 } };
  return {
    title: { text: o.title, subtitle: o.subtitle }, width: 300, height: { step: 16 }, data: { values: o.rows },
    layer: [
      { mark: { type: 'bar', color: o.color, opacity: 0.85 }, encoding: { y, x: { field: 'value', type: 'quantitative', title: o.x, axis: { format: fmt } } } },
      { transform: [{ filter: 'datum.lo != null' }], mark: { type: 'rule', color: '#222' }, encoding: { y, x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' } } },
      { transform: [{ filter: 'datum.lo != null' }], mark: { type: 'tick', color: '#222', thickness: 1, size: 8 }, encoding: { y, x: { field: 'hi', type: 'quantitative' } } },
      { transform: [{ filter: 'datum.lo != null' }], mark: { type: 'tick', color: '#222', thickness: 1, size: 8 }, encoding: { y, x: { field: 'lo', type: 'quantitative' } } },
    ],
  };
}

/** Helpfulness vs violation rate, one point per model (Fig. 11's trade-off view): rows {model, helpfulness, violation}. */
export function tradeoffChart(rows: { model: string; helpfulness: number; violation: number }[], order: string[]): TopLevelSpec {
  return {
    title: { text: 'Helpfulness vs safety', subtitle: 'one point per model; better is right and down' }, width: 320, height: 260, data: { values: rows },
    mark: { type: 'point', filled: true, size: 70, opacity: 0.85 },
    encoding: {
      x: { field: 'helpfulness', type: 'quantitative', title: 'gold helpfulness →', scale: { zero: false, nice: true } },
      y: { field: 'violation', type: 'quantitative', title: '← violation rate', axis: { format: '.0%' } },
      color: { field: 'model', type: 'nominal', sort: order, title: null },
      shape: { field: 'model', type: 'nominal', sort: order, title: null },
    },
  };
}

/** Grouped horizontal bars: rows {model, group, value} (false refusals by category). */
export function groupedBars(o: { title: string; subtitle: string; x: string; rows: { model: string; group: string; value: number }[]; order: string[] }): TopLevelSpec {
  return {
    title: { text: o.title, subtitle: o.subtitle }, width: 300, height: { step: 10 }, data: { values: o.rows },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'model', type: 'nominal', sort: o.order, title: null, axis: { labelLimit: 280 } },
      yOffset: { field: 'group', type: 'nominal' },
      x: { field: 'value', type: 'quantitative', title: o.x, axis: { format: '.0%' } },
      color: { field: 'group', type: 'nominal', title: null, legend: { orient: 'bottom' } },
    },
  };
}

/** A model × family grid of helpfulness: rows {model, family, value}. */
export function heatmap(o: { title: string; subtitle: string; rows: { model: string; family: string; value: number }[]; order: string[] }): TopLevelSpec {
  const enc = {
    x: { field: 'family', type: 'nominal' as const, title: null, axis: { labelAngle: -40 } },
    y: { field: 'model', type: 'nominal' as const, sort: o.order, title: null, axis: { labelLimit: 280 } },
  };
  return {
    title: { text: o.title, subtitle: o.subtitle }, width: { step: 34 }, height: { step: 16 }, data: { values: o.rows },
    layer: [
      { mark: { type: 'rect' }, encoding: { ...enc, color: { field: 'value', type: 'quantitative', title: 'helpfulness', scale: { scheme: 'greens', domain: [0, 1] } } } },
      { mark: { type: 'text', fontSize: 8 }, encoding: { ...enc, text: { field: 'value', type: 'quantitative', format: '.2f' }, color: { condition: { test: 'datum.value > 0.6', value: 'white' }, value: '#222' } } },
    ],
  };
}
