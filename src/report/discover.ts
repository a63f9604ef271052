/**
 * Discovery for `llama2 report`: walks a run folder and sorts what it finds by shape, so the report
 * works on any folder the training, evaluation and RLHF commands write into.
 *
 * Walked: every directory below DIR (symbolic links followed once), except checkpoints (`ckpt-*`),
 * `latest`, `node_modules` and hidden ones. Read: `*.json` up to 8 MiB, every `metrics.jsonl`, and
 * `*.graded.jsonl` answer files (`llama2 eval --out`). Other JSONL (data sets) is never opened.
 *
 * A JSON file is recognised by its keys, not its name:
 *   {stage, steps, …}                      run summary (summary.json, or `llama2 sft --json` as X.json)
 *   {rs: {best_of_n…}, sft: {stage…}}      `llama2 rlhf rs --json`: both halves, as below
 *   {best_of_n: [...], sweep: [...]}       rejection-sampling report (report.json)
 *   {accuracy, by_level: {...}}            reward-model evaluation (`llama2 reward eval --json`)
 *   {helpfulness, violation_rate, …}       gold evaluation (`llama2 eval --json`, or a version row)
 *   {dialogs, at: {"2": share, …}}         Ghost Attention evaluation (`llama2 eval gatt --json`)
 *   [{name, helpfulness, …}]               versions.json (`llama2 rlhf iterate`)
 *   pipeline.json at DIR's top             `llama2 pipeline --json`
 * The same result written twice (X.json beside X/summary.json, rs1.json beside rs1/report.json,
 * eval.V.json beside versions.json) is shown once.
 *
 * Bad files are skipped, never fatal: a file that cannot be read or is not valid JSON, or one named like a known
 * kind (summary.json, eval.*.json, gatt.*.json, versions.json, pipeline.json) whose keys do not
 * fit, becomes a warning naming the file; bad lines of metrics.jsonl likewise.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Llama2Error } from '../util/errors.js';

export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** o[k] when it is a finite number, else null (a missing field, null, NaN written as null). */
export const numOf = (o: unknown, k: string): number | null => {
  const v = isObj(o) ? o[k] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
};
export const objOf = (o: unknown, k: string): Obj | null => (isObj(o) && isObj(o[k]) ? o[k] as Obj : null);
export const strOf = (o: unknown, k: string): string | null => (isObj(o) && typeof o[k] === 'string' ? o[k] as string : null);
/** o[k] as a [lo, hi] interval of numbers, else null. */
export const ciOf = (o: unknown, k: string): [number, number] | null => {
  const v = isObj(o) ? o[k] : undefined;
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number' ? [v[0], v[1]] : null;
};

/** A gold evaluation during RLHF (metrics.jsonl "type": "gold"), next to the proxy reward. */
export interface GoldPoint { step: number; helpfulness: number; violation_rate: number | null; false_refusal_rate: number | null; reward: number | null; /** prompts graded */ n: number | null }

export interface Metrics {
  /** "type": "train" rows as written (step, loss; PPO rows also reward, kl, entropy, …) */
  train: Obj[];
  /** "type": "eval" rows (val_loss; reward models also val_accuracy) or "type": "val" rows (loss) */
  val: { step: number; loss: number; accuracy: number | null }[];
  gold: GoldPoint[];
}

export interface TrainingRun {
  name: string;
  /** directory relative to DIR ('' for DIR itself); null for a summary file without its run directory */
  dir: string | null;
  /** summary.json (RunSummary, src/train/run.ts); {} while a run has only metrics.jsonl */
  summary: Obj;
  /** summary.stage, "rs" for the fine-tuning run inside a rejection-sampling folder, else a guess from the metrics */
  stage: string;
  metrics: Metrics;
}

/** A recognised file: its display name, its path relative to DIR, its content. */
export interface Named<T> { name: string; file: string; data: T }

/** One line of an answers file: {messages: [..., {role: "assistant", content}], meta: {id, family, …}, grade: {score, refused, violation}}. */
export interface Answer { key: string; system: string | null; prompt: string; answer: string; meta: Obj; grade: Obj | null }

export interface Found {
  root: string;
  pipeline: Obj | null;
  runs: TrainingRun[];
  golds: Named<Obj>[];
  rewardEvals: Named<Obj>[];
  rs: Named<Obj>[];
  gatt: Named<Obj>[];
  answers: Named<Answer[]>[];
  warnings: string[];
  /** files opened */
  read: number;
}

const MAX_JSON = 8 << 20;
const MAX_ANSWERS = 64 << 20;
const SKIP_DIR = (n: string): boolean => /^ckpt-/.test(n) || n === 'latest' || n === 'node_modules' || n.startsWith('.');

const natural = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });
const stripJson = (rel: string): string => rel.replace(/\.json$/, '');
/** "rlhf/eval.ppo1.json" → "rlhf/ppo1"; `prefix` is the file-name prefix the kind uses ("eval.", "gatt."). */
function nameOf(rel: string, prefix = ''): string {
  const d = dirname(rel);
  let b = stripJson(basename(rel));
  if (prefix && b.startsWith(prefix) && b.length > prefix.length) b = b.slice(prefix.length);
  b = b.replace(/\.eval$/, '');
  return d === '.' ? b : `${d}/${b}`;
}
const runFingerprint = (s: Obj): string => [s['stage'], s['steps'], s['tokens'], s['train_seconds']].map(String).join('|');

const isSummary = (v: unknown): v is Obj => isObj(v) && typeof v['stage'] === 'string' && typeof v['steps'] === 'number';
const isRs = (v: unknown): v is Obj => isObj(v) && Array.isArray(v['best_of_n']);
const isRewardEval = (v: unknown): v is Obj => isObj(v) && numOf(v, 'accuracy') !== null && isObj(v['by_level']);
const isGold = (v: unknown): v is Obj => isObj(v) && numOf(v, 'helpfulness') !== null && 'violation_rate' in v && !('stage' in v);
const isGatt = (v: unknown): v is Obj => isObj(v) && numOf(v, 'dialogs') !== null && isObj(v['at']) && Object.values(v['at'] as Obj).every((x) => typeof x === 'number');

/** Parses the text of a metrics.jsonl (`rel` names it); bad lines are counted into one warning. */
export function parseMetrics(text: string, rel: string, warnings: string[]): Metrics {
  const m: Metrics = { train: [], val: [], gold: [] };
  let bad = 0;
  let first = 0;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let r: unknown;
    try { r = JSON.parse(line); } catch { r = null; }
    const step = numOf(r, 'step');
    if (!isObj(r) || step === null) { bad++; first ||= i + 1; return; }
    if (r['type'] === 'train' && numOf(r, 'loss') !== null) m.train.push(r);
    else if (r['type'] === 'eval' && numOf(r, 'val_loss') !== null) m.val.push({ step, loss: numOf(r, 'val_loss')!, accuracy: numOf(r, 'val_accuracy') });
    else if (r['type'] === 'val' && numOf(r, 'loss') !== null) m.val.push({ step, loss: numOf(r, 'loss')!, accuracy: null });
    else if (r['type'] === 'gold' && numOf(r, 'helpfulness') !== null) {
      m.gold.push({ step, helpfulness: numOf(r, 'helpfulness')!, violation_rate: numOf(r, 'violation_rate'), false_refusal_rate: numOf(r, 'false_refusal_rate'), reward: numOf(r, 'reward'), n: numOf(r, 'n') });
    }
  });
  if (bad) warnings.push(`skipped ${bad} line${bad > 1 ? 's' : ''} of ${rel} (first: line ${first}): expected a JSON object {"type", "step", …}`);
  return m;
}

/** Parses an answers file (JSONL of graded transcripts); lines without a final assistant answer are skipped. */
export function parseAnswers(text: string, rel: string, warnings: string[]): Answer[] {
  const out: Answer[] = [];
  let bad = 0;
  text.split('\n').forEach((line) => {
    if (line.trim() === '') return;
    let r: unknown;
    try { r = JSON.parse(line); } catch { r = null; }
    const msgs = isObj(r) && Array.isArray(r['messages']) ? (r['messages'] as unknown[]).filter(isObj) : [];
    const last = msgs[msgs.length - 1];
    const user = [...msgs].reverse().find((x) => x['role'] === 'user');
    if (!last || last['role'] !== 'assistant' || !user) { bad++; return; }
    const meta = objOf(r, 'meta') ?? {};
    const sys = msgs.find((x) => x['role'] === 'system');
    const prompt = String(user['content'] ?? '');
    out.push({ key: strOf(meta, 'id') ?? prompt, system: sys ? String(sys['content'] ?? '') : null, prompt, answer: String(last['content'] ?? ''), meta, grade: objOf(r, 'grade') });
  });
  if (bad) warnings.push(`skipped ${bad} line${bad > 1 ? 's' : ''} of ${rel}: expected {"messages": [..., user turn, assistant answer], "meta": {...}}`);
  return out;
}

/** Walks `root` and sorts every file the report knows into a Found. Throws only on I/O errors of `root` itself. */
export function discover(root: string): Found {
  const f: Found = { root, pipeline: null, runs: [], golds: [], rewardEvals: [], rs: [], gatt: [], answers: [], warnings: [], read: 0 };
  const looseSummaries: Named<Obj>[] = [];
  const versionRows: Named<Obj>[] = [];
  const rsDirs = new Set<string>();
  const seenRs = new Set<string>();
  const seenDirs = new Set<string>();
  const dirRuns = new Map<string, { summary: Obj | null; metrics: Metrics | null }>();
  const warn = (s: string): void => { f.warnings.push(s); };

  // files can vanish or change while experiments run: an unreadable one is a warning
  const readText = (path: string, rel: string): string | null => {
    try {
      const text = readFileSync(path, 'utf8');
      f.read++;
      return text;
    } catch (e) {
      warn(`skipped ${rel}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      return null;
    }
  };

  // a JSON file, or a command's saved output whose last line is its --json line
  const readJson = (path: string, rel: string): unknown => {
    const text = readText(path, rel);
    if (text === null) return undefined;
    if (text.trim() === '') { warn(`skipped ${rel}: empty file`); return undefined; }
    try {
      return JSON.parse(text);
    } catch (e) {
      const last = text.trimEnd().split('\n').pop() ?? '';
      if (last.startsWith('{') && last !== text.trimEnd()) {
        try { return JSON.parse(last); } catch { /* reported below */ }
      }
      warn(`skipped ${rel}: invalid JSON (${(e as Error).message})`);
      return undefined;
    }
  };

  const classify = (v: unknown, rel: string): void => {
    const base = basename(rel);
    if (rel === 'pipeline.json') {
      if (isObj(v)) f.pipeline = v;
      else warn(`skipped ${rel}: expected a JSON object {seed, versions, reward_models, …}`);
      return;
    }
    if (base === 'summary.json') {
      const d = dirname(rel) === '.' ? '' : dirname(rel);
      if (isSummary(v)) dirRuns.set(d, { summary: v, metrics: dirRuns.get(d)?.metrics ?? null });
      else warn(`skipped ${rel}: expected a run summary with "stage" (string) and "steps" (number)`);
      return;
    }
    if (base === 'versions.json') {
      if (Array.isArray(v) && v.every((r) => isObj(r) && typeof r['name'] === 'string')) {
        const d = dirname(rel);
        for (const r of v as Obj[]) if (isGold(r)) versionRows.push({ name: d === '.' ? String(r['name']) : `${d}/${String(r['name'])}`, file: rel, data: r });
      } else warn(`skipped ${rel}: expected an array of {"name", "helpfulness", …}`);
      return;
    }
    if (isSummary(v)) { looseSummaries.push({ name: nameOf(rel), file: rel, data: v }); return; }
    if (isObj(v) && isRs(v['rs'])) {
      classify(v['rs'], rel);
      if (isSummary(v['sft'])) looseSummaries.push({ name: `${nameOf(rel)}/sft`, file: rel, data: v['sft'] as Obj });
      return;
    }
    if (isRs(v)) {
      const inDir = base === 'report.json';
      if (inDir) rsDirs.add(dirname(rel) === '.' ? '' : dirname(rel));
      const fp = JSON.stringify(v['best_of_n']);
      if (seenRs.has(fp)) return;
      seenRs.add(fp);
      f.rs.push({ name: inDir ? (dirname(rel) === '.' ? basename(root) : dirname(rel)) : nameOf(rel), file: rel, data: v });
      return;
    }
    if (isRewardEval(v)) { f.rewardEvals.push({ name: nameOf(rel), file: rel, data: v }); return; }
    if (isGold(v)) { f.golds.push({ name: nameOf(rel, 'eval.'), file: rel, data: v }); return; }
    if (isGatt(v)) { f.gatt.push({ name: nameOf(rel, 'gatt.'), file: rel, data: v }); return; }
    if (/^eval\..+\.json$/.test(base)) warn(`skipped ${rel}: expected a gold evaluation with "helpfulness" and "violation_rate" (numbers)`);
    else if (/^gatt\..+\.json$/.test(base)) warn(`skipped ${rel}: expected a Ghost Attention result {"dialogs": N, "at": {"2": share, …}}`);
  };

  const walk = (abs: string, rel: string): void => {
    let real: string;
    try { real = realpathSync(abs); } catch { return; }
    if (seenDirs.has(real)) return;
    seenDirs.add(real);
    let names: string[];
    try {
      names = readdirSync(abs).sort(natural);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? String(e);
      if (rel === '') throw new Llama2Error(`report: cannot list ${root} (${why})`);
      warn(`skipped ${rel}/: cannot list it (${why})`);
      return;
    }
    for (const n of names) {
      const p = join(abs, n);
      const r = rel ? `${rel}/${n}` : n;
      let st;
      try { st = statSync(p); } catch { continue; }
      if (st.isDirectory()) {
        if (!SKIP_DIR(n)) walk(p, r);
        continue;
      }
      if (!st.isFile()) continue;
      if (n === 'metrics.jsonl') {
        const text = readText(p, r);
        if (text === null) continue;
        const e = dirRuns.get(rel);
        dirRuns.set(rel, { summary: e?.summary ?? null, metrics: parseMetrics(text, r, f.warnings) });
      } else if (n.endsWith('.graded.jsonl')) {
        if (st.size > MAX_ANSWERS) { warn(`skipped ${r}: larger than ${MAX_ANSWERS >> 20} MiB`); continue; }
        const text = readText(p, r);
        if (text !== null) f.answers.push({ name: r.replace(/\.graded\.jsonl$/, ''), file: r, data: parseAnswers(text, r, f.warnings) });
      } else if (n.endsWith('.json') && st.size <= MAX_JSON) {
        const v = readJson(p, r);
        if (v !== undefined) classify(v, r);
      }
    }
  };
  walk(root, '');

  // answers files named in pipeline.json ("answers": {name: path} or [path]), relative to DIR
  const named = f.pipeline?.['answers'];
  const extra: [string, unknown][] = Array.isArray(named) ? named.map((p) => [String(p).replace(/\.jsonl$/, ''), p]) : isObj(named) ? Object.entries(named) : [];
  for (const [name, p] of extra) {
    if (typeof p !== 'string' || f.answers.some((a) => a.file === p)) continue;
    const text = readText(join(root, p), p);
    if (text !== null) f.answers.push({ name, file: p, data: parseAnswers(text, p, f.warnings) });
  }

  // training runs: directories with summary.json and/or metrics.jsonl, then summaries whose directory is elsewhere
  const fingerprints = new Set<string>();
  for (const [d, { summary, metrics }] of [...dirRuns].sort((a, b) => natural(a[0], b[0]))) {
    const m = metrics ?? { train: [], val: [], gold: [] };
    const s = summary ?? {};
    if (m.gold.length === 0) m.gold = asGold(s['gold']);
    if (summary) fingerprints.add(runFingerprint(summary));
    f.runs.push({ name: d || basename(root), dir: d, summary: s, stage: stageOf(s, m, rsDirs.has(dirname(d) === '.' ? '' : dirname(d)) && d !== ''), metrics: m });
  }
  for (const l of looseSummaries) {
    const fp = runFingerprint(l.data);
    if (fingerprints.has(fp)) continue;
    fingerprints.add(fp);
    f.runs.push({ name: l.name, dir: null, summary: l.data, stage: stageOf(l.data, null, false), metrics: { train: [], val: [], gold: asGold(l.data['gold']) } });
  }

  f.runs.sort((a, b) => stageRank(a.stage) - stageRank(b.stage) || natural(a.name, b.name));

  // gold evaluations: versions.json rows first; an eval file repeating a row of its folder's versions.json is dropped
  const goldKey = (n: Named<Obj>): string => `${dirname(n.file)}|${numOf(n.data, 'helpfulness')}|${numOf(n.data, 'violation_rate')}|${numOf(n.data, 'false_refusal_rate')}`;
  const rowKeys = new Set(versionRows.map(goldKey));
  f.golds = [...versionRows, ...f.golds.filter((g) => !rowKeys.has(goldKey(g)))];
  return f;
}

function asGold(v: unknown): GoldPoint[] {
  if (!Array.isArray(v)) return [];
  return v.filter((r) => numOf(r, 'step') !== null && numOf(r, 'helpfulness') !== null).map((r) => ({
    step: numOf(r, 'step')!, helpfulness: numOf(r, 'helpfulness')!, violation_rate: numOf(r, 'violation_rate'), false_refusal_rate: numOf(r, 'false_refusal_rate'), reward: numOf(r, 'reward'), n: numOf(r, 'n'),
  }));
}

/** Runs are listed in the order of the pipeline: pretraining, SFT, reward models, rejection sampling, PPO, anything else. */
const STAGES = ['pretrain', 'sft', 'reward', 'rs', 'ppo'];
const stageRank = (s: string): number => (STAGES.includes(s) ? STAGES.indexOf(s) : STAGES.length);

/** The stage a run shows: "rs" inside a rejection-sampling folder, the summary's stage, or a guess from metrics while it runs. */
function stageOf(s: Obj, m: Metrics | null, inRs: boolean): string {
  if (inRs) return 'rs';
  const st = strOf(s, 'stage');
  if (st) return st;
  if (m?.train.some((r) => 'kl' in r)) return 'ppo';
  if (m?.val.some((v) => v.accuracy !== null)) return 'reward';
  return 'training';
}
