// Writes the README's docs/report.png: `llama2 report` of runs/stage1 and runs/rlhf together (a temp
// folder that links both), opened in headless Chromium (playwright-core, Debian's chromium).
// Usage: [SECTIONS=ppo,rejection-sampling] node scripts/report-screenshot.mjs [RUNS] [PNG]
//        (defaults: runs, docs/report.png; after npm run build). The picture shows the header and the SECTIONS.
// Also leaves the HTML at $TMPDIR/llama2-report-shot/report.html for a look.
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const runs = resolve(process.argv[2] ?? 'runs');
const png = resolve(process.argv[3] ?? 'docs/report.png');
const dir = join(tmpdir(), 'llama2-report-shot');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir);
for (const n of ['stage1', 'rlhf']) symlinkSync(join(runs, n), join(dir, n));
const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'report', dir, '--title', 'Run report: runs/stage1 + runs/rlhf', '--json'], { encoding: 'utf8' });
process.stderr.write(r.stderr);
if (r.status !== 0) process.exit(r.status ?? 1);
const { report } = JSON.parse(r.stdout.trim().split('\n').pop());

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, deviceScaleFactor: 1 });
await page.goto('file://' + report);
// the whole page is long: the picture keeps the header and the sections named here, in page order
const keep = (process.env.SECTIONS ?? 'ppo,rejection-sampling').split(',');
await page.addStyleTag({ content: `section:not(${keep.map((id) => '#' + id).join(',')}) { display: none; }` });
await page.screenshot({ path: png, fullPage: true });
await browser.close();
console.log(`${png} (${report})`);
