/**
 * `llama2 report DIR`: one self-contained HTML file about a run folder (src/report/): compute and
 * carbon, loss curves, reward models, rejection sampling, PPO, gold results per model, Ghost
 * Attention and sample answers — each section when its files are there.
 *
 *   llama2 report runs/rlhf [--out FILE] [--title T] [--json]
 *
 * Files that cannot be read (invalid JSON, a known file name with unexpected keys, bad metrics
 * lines) are skipped with a warning line on stderr naming them, and listed at the page's foot.
 */
import { join } from 'node:path';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, str } from './args.js';
import { buildReport } from '../report/report.js';
import { Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export const spec: CommandSpec = {
  name: 'report',
  summary: 'Write one self-contained HTML report of a run folder: compute, loss curves, reward models, best-of-N, PPO, gold results, Ghost Attention, sample answers.',
  usage: 'llama2 report DIR [--out FILE] [--title T] [--json]',
  positionals: ['DIR'],
  flags: [
    { name: 'out', short: 'o', type: 'string', meta: 'FILE', help: 'where to write the HTML (default: DIR/report.html)' },
    { name: 'title', type: 'string', meta: 'T', help: 'page title (default: "Run report: <folder name>")' },
    { name: 'json', type: 'boolean', default: false, help: 'print one JSON line {report, sections, charts} instead of the summary line' },
  ],
  notes: 'DIR is searched recursively (checkpoints ckpt-*, latest and data JSONL are skipped): summary.json + metrics.jsonl of training runs,\n' +
    'eval.*.json (llama2 eval --json), reward-model evaluations (llama2 reward eval --json), report.json of rejection sampling,\n' +
    'gatt.*.json (llama2 eval gatt --json), versions.json (llama2 rlhf iterate), *.graded.jsonl (llama2 eval --out) and pipeline.json.\n' +
    'The page has no scripts and loads nothing: CSS inline, charts as inline SVG (Vega-Lite, rendered when the report is written).\n' +
    'Unreadable files are skipped with a warning naming them.',
};

export async function run(f: FlagValues, positionals: string[] = []): Promise<void> {
  const dir = positionals[0];
  if (dir === undefined) throw new Llama2Error('report: expected a run folder, e.g. llama2 report runs/rlhf (see llama2 report --help)');
  const r = await buildReport(dir, { title: str(f, 'title') });
  for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
  const out = str(f, 'out') ?? join(dir, 'report.html');
  try {
    writeFileAtomic(out, r.html);
  } catch (e) {
    throw new Llama2Error(`report: cannot write ${out} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (bool(f, 'json')) process.stdout.write(JSON.stringify({ report: out, sections: r.sections, charts: r.charts }) + '\n');
  else process.stdout.write(`report written to ${out}: ${r.sections.length} sections (${r.sections.join(', ')}), ${r.charts} charts\n`);
}
