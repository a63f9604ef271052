/**
 * HTML pieces of the report: escaping, number formats, tables, and the page around the sections
 * (one file, CSS inline, no script, nothing fetched). Every string that comes from a file goes
 * through `esc` — run names, model names, prompts and answers are user data.
 */

const ESC: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ESC[c]!);

export const DASH = '—';
/** 0.1234 → "0.123" (digits d); null → "—". */
export const fix = (x: number | null | undefined, d = 3): string => (x === null || x === undefined || !Number.isFinite(x) ? DASH : x.toFixed(d));
/** 0.1234 → "12.3%"; null → "—". */
export const pct = (x: number | null | undefined, d = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? DASH : `${(x * 100).toFixed(d)}%`);
/** 1234567 → "1,234,567"; large counts → "12.3M". */
export const count = (x: number | null | undefined): string => {
  if (x === null || x === undefined || !Number.isFinite(x)) return DASH;
  if (Math.abs(x) >= 1e9) return `${(x / 1e9).toFixed(2)}B`;
  if (Math.abs(x) >= 1e7) return `${(x / 1e6).toFixed(1)}M`;
  return Math.round(x).toLocaleString('en-US');
};
/** Seconds → "1:02:03" / "4:05" / "12.3 s". */
export const dur = (s: number | null | undefined): string => {
  if (s === null || s === undefined || !Number.isFinite(s)) return DASH;
  if (s < 60) return `${s.toFixed(1)} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60).toString().padStart(2, '0');
  return h ? `${h}:${m.toString().padStart(2, '0')}:${sec}` : `${m}:${sec}`;
};
/** A value with its interval: "0.176 [0.160, 0.192]" (as percentages with `asPct`). */
export const withCi = (x: number | null, ci: [number, number] | null, asPct = false): string => {
  const f = asPct ? (v: number | null) => pct(v) : (v: number | null) => fix(v);
  return ci ? `${f(x)} <span class="ci">[${f(ci[0])}, ${f(ci[1])}]</span>` : f(x);
};

/** A table cell: text to escape, or html already safe (built from numbers and escaped text). */
export type Cell = string | { html: string; cls?: string; title?: string };

/** A table; string cells are escaped. `numeric` columns are right-aligned. */
export function table(head: string[], rows: Cell[][], o: { numeric?: number[]; cls?: string; foot?: Cell[] } = {}): string {
  const num = new Set(o.numeric ?? []);
  const cell = (c: Cell, i: number, tag: string): string => {
    const cls = [num.has(i) ? 'num' : '', typeof c === 'string' ? '' : c.cls ?? ''].filter(Boolean).join(' ');
    const attrs = `${cls ? ` class="${cls}"` : ''}${typeof c !== 'string' && c.title ? ` title="${esc(c.title)}"` : ''}`;
    return `<${tag}${attrs}>${typeof c === 'string' ? esc(c) : c.html}</${tag}>`;
  };
  const tr = (r: Cell[], tag: string): string => `<tr>${r.map((c, i) => cell(c, i, tag)).join('')}</tr>`;
  return `<table class="${o.cls ?? ''}"><thead>${tr(head, 'th')}</thead><tbody>${rows.map((r) => tr(r, 'td')).join('\n')}</tbody>` +
    `${o.foot ? `<tfoot>${tr(o.foot, 'td')}</tfoot>` : ''}</table>`;
}

export const h = (html: string): Cell => ({ html });

export interface Section {
  id: string;
  title: string;
  /** inner HTML; null when the data is missing, and `missing` says what was looked for */
  body: string | null;
  missing?: string;
}

const CSS = `
:root { --ink: #1d1d1f; --muted: #666; --line: #e3e3e3; --bg: #fafafa; --accent: #4c78a8; --bad: #c0392b; --good: #2e7d32; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 Helvetica, Arial, sans-serif; color: var(--ink); background: var(--bg); }
header { padding: 20px 32px 12px; background: white; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: var(--muted); }
nav { padding: 8px 32px; background: white; border-bottom: 1px solid var(--line); font-size: 13px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
nav a.missing { color: #aaa; }
main { padding: 8px 32px 40px; max-width: 1500px; }
section { background: white; border: 1px solid var(--line); border-radius: 6px; padding: 14px 20px; margin: 16px 0; }
section h2 { margin: 0 0 10px; font-size: 17px; }
section h3 { margin: 16px 0 6px; font-size: 14px; }
section.missing { padding: 8px 20px; color: var(--muted); }
section.missing h2 { display: inline; font-size: 14px; margin-right: 8px; color: var(--ink); }
p.note { color: var(--muted); font-size: 12px; margin: 6px 0; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 10px; }
th, td { padding: 3px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tfoot td { font-weight: 600; border-top: 2px solid #ccc; }
.ci { color: var(--muted); font-size: 11px; }
.bad { color: var(--bad); font-weight: 600; }
.good { color: var(--good); }
.charts { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: flex-start; }
figure.chart { margin: 0; }
figure.chart.wide { flex-basis: 100%; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
.prompt { border: 1px solid var(--line); border-radius: 6px; margin: 12px 0; }
.prompt > .q { padding: 8px 12px; background: #f3f6fa; border-bottom: 1px solid var(--line); white-space: pre-wrap; }
.prompt > .q .meta { color: var(--muted); font-size: 11px; display: block; margin-bottom: 4px; white-space: normal; }
.answers { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
.answers > div { padding: 8px 12px; border-right: 1px solid var(--line); border-top: 1px solid var(--line); }
.answers .who { font-weight: 600; font-size: 12px; }
.answers .grade { color: var(--muted); font-size: 11px; margin-left: 6px; }
.answers .text { white-space: pre-wrap; font-size: 13px; margin-top: 4px; }
footer { color: var(--muted); font-size: 12px; padding: 0 32px 24px; }
footer li { margin: 2px 0; }
`;

/** The whole page: header, section index, sections (present ones full, missing ones as a line), footer. */
export function page(o: { title: string; dir: string; generated: string; lead: string; sections: Section[]; warnings: string[] }): string {
  const nav = o.sections.map((s) => `<a href="#${s.id}"${s.body === null ? ' class="missing"' : ''}>${esc(s.title)}</a>`).join('');
  const body = o.sections.map((s) => s.body === null
    ? `<section id="${s.id}" class="missing"><h2>${esc(s.title)}</h2>${esc(s.missing ?? 'no data')}</section>`
    : `<section id="${s.id}"><h2>${esc(s.title)}</h2>\n${s.body}\n</section>`).join('\n');
  const warn = o.warnings.length
    ? `<p>Skipped while reading the folder:</p><ul>${o.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(o.title)}</title><style>${CSS}</style></head>
<body><header><h1>${esc(o.title)}</h1><p>${esc(o.dir)} · generated ${esc(o.generated)} by <code>llama2 report</code></p><p>${o.lead}</p></header>
<nav>${nav}</nav>
<main>
${body}
</main>
<footer>${warn}</footer>
</body></html>
`;
}

/** A chart figure around an SVG string (rendered by charts.ts from data, so not escaped again). */
export const figure = (svg: string, wide = false): string => `<figure class="chart${wide ? ' wide' : ''}">${svg}</figure>`;
