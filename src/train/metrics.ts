/**
 * Training metrics: the JSONL log (one line per optimizer step, one per evaluation), and the loss
 * curve drawn two ways — a small standalone SVG file and a text plot / sparkline for the terminal.
 *
 *   {"type":"train","step":1,"loss":6.93,"lr":0.0001,"grad_norm":1.2,"tokens":2048,"tokens_per_s":1800,"elapsed_s":1.1}
 *   {"type":"eval","step":100,"val_loss":2.1,"val_bpc":0.98,"val_ppl":8.2,"val_tokens":16384}
 *
 * Steps are counted from 1 (the step a line describes has just completed). On resume the log is
 * cut back to the checkpoint's step, so lines written after it by an interrupted run disappear
 * and the resumed run's lines take their place.
 *
 * What it is not: the progress bar (cli/progress.ts) or the compute summary (compute.ts).
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export interface TrainRecord {
  type: 'train';
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  /** tokens (targets) in this step */
  tokens: number;
  tokens_per_s: number;
  /** seconds since the start of this run (process) */
  elapsed_s: number;
  /** SFT: targets that carry the loss (answer tokens) in this step */
  answer_tokens?: number;
}

export interface EvalRecord {
  type: 'eval';
  step: number;
  /** mean cross-entropy per token, nats */
  val_loss: number;
  /** bits per character (null when the data has no character counts) */
  val_bpc: number | null;
  val_ppl: number;
  val_tokens: number;
  /** reward models: validation accuracy (val_loss is then 1 − accuracy) */
  val_accuracy?: number;
  /** pretraining on a mixed corpus: bits/char on the validation text whose true entropy is known (the stories) */
  floor_text_bpc?: number;
}

/** A gold evaluation during RLHF: the chat world's checkers on a fixed prompt subset, next to the proxy reward. */
export interface GoldRecord {
  type: 'gold';
  step: number;
  helpfulness: number;
  violation_rate: number;
  false_refusal_rate: number;
  /** mean R_c the reward models give the same answers */
  reward: number;
  n: number;
}

export type MetricRecord = TrainRecord | EvalRecord | GoldRecord;

/** Parses a metrics.jsonl file (a malformed line is an error naming file:line). */
export function readMetrics(path: string): MetricRecord[] {
  if (!existsSync(path)) return [];
  const out: MetricRecord[] = [];
  readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as MetricRecord);
    } catch (e) {
      throw new Llama2Error(`metrics ${path}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
  });
  return out;
}

/** Append-only JSONL log that also keeps the records in memory (for the plots). */
export class MetricsLog {
  readonly records: MetricRecord[] = [];

  /** fresh: truncates; keepUpTo: keeps the existing lines of steps ≤ keepUpTo (resume). */
  constructor(readonly path: string, keepUpTo: number | null) {
    const kept = keepUpTo === null ? [] : readMetrics(path).filter((r) => r.step <= keepUpTo);
    writeFileAtomic(path, kept.map((r) => JSON.stringify(r) + '\n').join(''));
    this.records.push(...kept);
  }

  append(r: MetricRecord): void {
    this.records.push(r);
    appendFileSync(this.path, JSON.stringify(r) + '\n');
  }

  train(): TrainRecord[] {
    return this.records.filter((r): r is TrainRecord => r.type === 'train');
  }

  golds(): GoldRecord[] {
    return this.records.filter((r): r is GoldRecord => r.type === 'gold');
  }

  evals(): EvalRecord[] {
    return this.records.filter((r): r is EvalRecord => r.type === 'eval');
  }
}

// ---------------------------------------------------------------------------------------------
// plots

export interface Point {
  x: number;
  y: number;
}

/** Centred moving average over `window` points (shrinking at the ends): no lag, for a readable train line. */
export function smooth(ys: readonly number[], window = Math.max(1, Math.round(ys.length / 40))): number[] {
  const h = Math.floor(window / 2);
  const pre = [0];
  for (const y of ys) pre.push(pre[pre.length - 1]! + y);
  return ys.map((_, i) => {
    const lo = Math.max(0, i - h);
    const hi = Math.min(ys.length, i + h + 1);
    return (pre[hi]! - pre[lo]!) / (hi - lo);
  });
}

/** Round tick positions covering [lo, hi] (1, 2, 5 × 10^k steps). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export interface LossPlot {
  title: string;
  /** per-step training loss */
  train: Point[];
  /** validation loss at evaluation steps */
  val: Point[];
  /** horizontal reference line (e.g. the entropy floor in the same units), with its label */
  floor?: { y: number; label: string };
  yLabel: string;
}

const MAX_SVG_POINTS = 1000;

/** A standalone SVG (no scripts, no external resources) of the loss curve. */
export function lossCurveSvg(p: LossPlot, width = 640, height = 360): string {
  const m = { l: 56, r: 16, t: 34, b: 42 };
  const all = [...p.train, ...p.val];
  const xs = all.map((q) => q.x);
  const ys = all.map((q) => q.y);
  if (p.floor) ys.push(p.floor.y);
  const x0 = Math.min(0, ...xs);
  const x1 = Math.max(1, ...xs);
  const y0 = Math.max(0, Math.min(...ys) * 0.95);
  const y1 = Math.max(...ys, y0 + 1e-6) * 1.02;
  const W = width - m.l - m.r;
  const H = height - m.t - m.b;
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * W;
  const sy = (y: number) => m.t + H - ((y - y0) / (y1 - y0)) * H;
  const f = (v: number) => v.toFixed(1);
  const line = (pts: Point[]) => pts.map((q, i) => `${i ? 'L' : 'M'}${f(sx(q.x))},${f(sy(q.y))}`).join('');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13">${esc(p.title)}</text>`,
  ];
  for (const t of niceTicks(y0, y1)) {
    out.push(`<line x1="${m.l}" x2="${m.l + W}" y1="${f(sy(t))}" y2="${f(sy(t))}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 6}" y="${f(sy(t) + 4)}" text-anchor="end">${fmtTick(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    out.push(`<line x1="${f(sx(t))}" x2="${f(sx(t))}" y1="${m.t + H}" y2="${m.t + H + 4}" stroke="#444"/>`);
    out.push(`<text x="${f(sx(t))}" y="${m.t + H + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${W}" height="${H}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${m.l + W / 2}" y="${height - 8}" text-anchor="middle">step</text>`);
  out.push(`<text x="14" y="${m.t + H / 2}" text-anchor="middle" transform="rotate(-90 14 ${m.t + H / 2})">${esc(p.yLabel)}</text>`);
  if (p.floor) {
    const y = f(sy(p.floor.y));
    out.push(`<line x1="${m.l}" x2="${m.l + W}" y1="${y}" y2="${y}" stroke="#2a2" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${m.l + 6}" y="${Number(y) - 4}" fill="#2a2">${esc(p.floor.label)}</text>`);
  }
  if (p.train.length > 0) {
    const sm = smooth(p.train.map((q) => q.y));
    // at most ~MAX_SVG_POINTS vertices per line, so long runs keep a small file
    const every = Math.ceil(p.train.length / MAX_SVG_POINTS);
    const keep = (_: unknown, i: number) => i % every === 0 || i === p.train.length - 1;
    out.push(`<path d="${line(p.train.filter(keep))}" fill="none" stroke="#9bc4e8" stroke-width="1"/>`);
    out.push(`<path d="${line(p.train.map((q, i) => ({ x: q.x, y: sm[i]! })).filter(keep))}" fill="none" stroke="#1f6fb4" stroke-width="2"/>`);
  }
  if (p.val.length > 0) {
    out.push(`<path d="${line(p.val)}" fill="none" stroke="#d9534f" stroke-width="1.5"/>`);
    for (const q of p.val) out.push(`<circle cx="${f(sx(q.x))}" cy="${f(sy(q.y))}" r="3" fill="#d9534f"/>`);
  }
  const lx = m.l + W - 130; // top right: loss curves fall, so this corner stays empty
  out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${m.t + 12}" y2="${m.t + 12}" stroke="#1f6fb4" stroke-width="2"/><text x="${lx + 24}" y="${m.t + 16}">train (smoothed)</text>`);
  if (p.val.length > 0) out.push(`<circle cx="${lx + 9}" cy="${m.t + 28}" r="3" fill="#d9534f"/><text x="${lx + 24}" y="${m.t + 32}">validation</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

const BARS = '▁▂▃▄▅▆▇█';

/** One-line sparkline of `ys`, resampled to at most `width` characters (bucket means). */
export function sparkline(ys: readonly number[], width = 60): string {
  if (ys.length === 0) return '';
  const n = Math.min(width, ys.length);
  const b: number[] = [];
  for (let i = 0; i < n; i++) {
    const lo = Math.floor((i * ys.length) / n);
    const hi = Math.max(lo + 1, Math.floor(((i + 1) * ys.length) / n));
    let s = 0;
    for (let j = lo; j < hi; j++) s += ys[j]!;
    b.push(s / (hi - lo));
  }
  const lo = Math.min(...b);
  const hi = Math.max(...b);
  return b.map((v) => BARS[hi > lo ? Math.round(((v - lo) / (hi - lo)) * (BARS.length - 1)) : 0]).join('');
}

/**
 * A text plot: train loss as '·' (bucket means), validation as 'o', the floor as '-', y labels on
 * the left, steps underneath. Returns the lines joined with "\n".
 */
export function asciiPlot(p: LossPlot, width = 60, height = 12): string {
  const ys = [...p.train.map((q) => q.y), ...p.val.map((q) => q.y)];
  if (ys.length === 0) return '(no data)';
  if (p.floor) ys.push(p.floor.y);
  const xs = [...p.train, ...p.val].map((q) => q.x);
  const x0 = Math.min(...xs);
  const x1 = Math.max(x0 + 1, ...xs);
  const y0 = Math.min(...ys);
  const y1 = Math.max(y0 + 1e-9, ...ys);
  const grid = Array.from({ length: height }, () => new Array<string>(width).fill(' '));
  const col = (x: number) => Math.min(width - 1, Math.round(((x - x0) / (x1 - x0)) * (width - 1)));
  const row = (y: number) => Math.min(height - 1, Math.max(0, Math.round(((y1 - y) / (y1 - y0)) * (height - 1))));
  if (p.floor) for (let c = 0; c < width; c++) grid[row(p.floor.y)]![c] = '-';
  const sums = new Map<number, [number, number]>();
  for (const q of p.train) {
    const c = col(q.x);
    const s = sums.get(c) ?? [0, 0];
    sums.set(c, [s[0] + q.y, s[1] + 1]);
  }
  for (const [c, [s, n]] of sums) grid[row(s / n)]![c] = '·';
  for (const q of p.val) grid[row(q.y)]![col(q.x)] = 'o';
  const label = (y: number) => y.toPrecision(3).padStart(8);
  const lines = grid.map((r, i) => {
    const y = y1 - (i / (height - 1)) * (y1 - y0);
    const l = i === 0 || i === height - 1 || i === Math.floor(height / 2) ? label(y) : ' '.repeat(8);
    return `${l} |${r.join('')}`;
  });
  lines.push(`${' '.repeat(8)} +${'-'.repeat(width)}`);
  const left = `step ${x0}`;
  const right = `${x1}`;
  lines.push(`${' '.repeat(10)}${left}${' '.repeat(Math.max(1, width - left.length - right.length))}${right}`);
  const legend = [`· ${p.yLabel} (train)`];
  if (p.val.length) legend.push('o validation');
  if (p.floor) legend.push(`- ${p.floor.label}`);
  lines.push(`${' '.repeat(10)}${legend.join('   ')}`);
  return lines.join('\n');
}
