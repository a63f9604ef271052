/**
 * `llama2 report`: one self-contained HTML page about a run folder — discovery (discover.ts), the
 * sections in the paper's order of figures (sections-runs.ts, sections-evals.ts), Vega-Lite charts
 * rendered to inline SVG (charts.ts), and the page (html.ts).
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Charts } from './charts.js';
import { discover, type Found } from './discover.js';
import { esc, page, type Section } from './html.js';
import { goldSection, gattSection, rewardSection, rsSection, samplesSection } from './sections-evals.js';
import { computeSection, lossSection, ppoSection, summarySection } from './sections-runs.js';
import { Llama2Error } from '../util/errors.js';

export interface ReportOptions {
  /** page title (default: "Run report: <folder name>") */
  title?: string;
}

export interface Report {
  html: string;
  /** ids of the sections with data, in page order */
  sections: string[];
  charts: number;
  /** files or lines skipped while reading the folder */
  warnings: string[];
}

/** What discovery found, in one line for the page's header. */
function lead(f: Found): string {
  const parts: [number, string][] = [[f.runs.length, 'training run'], [f.golds.length, 'gold evaluation'], [f.rewardEvals.length, 'reward-model evaluation'],
    [f.rs.length, 'rejection-sampling report'], [f.gatt.length, 'Ghost Attention result'], [f.answers.length, 'answers file']];
  const found = parts.filter(([n]) => n > 0).map(([n, w]) => `${n} ${w}${n === 1 ? '' : 's'}`);
  return esc(`Found ${found.join(', ')}${f.pipeline ? ', and pipeline.json' : ''} (${f.read} files read).`);
}

/** Builds the report of `dir`; a missing folder, or one holding nothing the report knows, is a Llama2Error naming it. */
export async function buildReport(dir: string, o: ReportOptions = {}): Promise<Report> {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Llama2Error(`report: cannot read ${dir} (${code === 'ENOENT' ? 'no such directory' : code ?? String(e)})`);
  }
  if (!st.isDirectory()) throw new Llama2Error(`report: ${dir} is a file; expected a run folder (a directory)`);
  const f = discover(dir);
  const known = f.pipeline || f.runs.length || f.golds.length || f.rewardEvals.length || f.rs.length || f.gatt.length || f.answers.length;
  if (!known) {
    throw new Llama2Error(`report: ${dir} holds nothing the report knows (looked for summary.json / metrics.jsonl, eval.*.json, reward eval JSON, report.json of rejection sampling, gatt.*.json, versions.json, *.graded.jsonl, pipeline.json; read ${f.read} JSON files)` +
      (f.warnings.length ? `; ${f.warnings.join('; ')}` : ''));
  }
  const charts = new Charts();
  const sections: Section[] = [
    summarySection(f),
    computeSection(f),
    await lossSection(f, charts),
    await rewardSection(f, charts),
    await rsSection(f, charts),
    await ppoSection(f, charts),
    await goldSection(f, charts),
    await gattSection(f, charts),
    samplesSection(f),
  ];
  const name = resolve(dir).split('/').pop() || dir;
  const html = page({ title: o.title ?? `Run report: ${name}`, dir: resolve(dir), generated: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC', lead: lead(f), sections, warnings: f.warnings });
  return { html, sections: sections.filter((s) => s.body !== null).map((s) => s.id), charts: charts.count, warnings: f.warnings };
}
