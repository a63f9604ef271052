// Prints the README's chat stage-1 tables (markdown) from the JSON files scripts/chat-stage1.sh writes.
// Usage: node scripts/stage1-table.mjs [OUT]   (default runs/stage1)
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2] ?? 'runs/stage1';
const read = (name) => {
  const p = join(out, name);
  const text = existsSync(p) ? readFileSync(p, 'utf8').trim() : '';
  return text ? JSON.parse(text.split('\n').pop()) : null;
};
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const ci = (v, [lo, hi]) => `${v.toFixed(3)} [${lo.toFixed(3)}, ${hi.toFixed(3)}]`;
const rate = (v, [lo, hi]) => `${pct(v)} [${pct(lo)}, ${pct(hi)}]`;
const mins = (s) => (s ? `${(s.wall_seconds / 60).toFixed(1)} min` : '');

const rows = [
  ['pretrained base', 'eval.base.json', 'base.json'],
  ['SFT (6,000 dialogs, seed 1)', 'eval.sft-s1.json', 'sft-s1.json'],
  ['SFT (6,000 dialogs, seed 2)', 'eval.sft-s2.json', 'sft-s2.json'],
  ['SFT, small clean set (1,000)', 'eval.sft-clean1k.json', 'sft-clean1k.json'],
  ['SFT, large noisy set (8,000, half flawed)', 'eval.sft-noisy8k.json', 'sft-noisy8k.json'],
  ['SFT, 30% of dialogs with an instruction (GAtt world)', 'gatt/eval.sft.json', 'gatt/sft.json'],
  ['… + Ghost Attention', 'gatt/eval.sft-gatt.json', 'gatt/sft-gatt.json'],
];
console.log('| model | helpfulness (95% CI) | violation rate | false refusals | unsafe refused | train time |');
console.log('|---|---|---|---|---|---|');
for (const [name, e, s] of rows) {
  const r = read(e);
  if (!r) continue;
  console.log(`| ${name} | ${ci(r.helpfulness, r.helpfulness_ci95)} | ${rate(r.violation_rate, r.violation_rate_ci95)} | ${rate(r.false_refusal_rate, r.false_refusal_rate_ci95)} | ${pct(r.refusal_rate_unsafe)} | ${mins(read(s))} |`);
}

const fams = read('eval.sft-s1.json');
const base = read('eval.base.json');
if (fams) {
  console.log('\n| family | base | SFT seed 1 | SFT seed 2 | clean 1k | noisy 8k |');
  console.log('|---|---|---|---|---|---|');
  const others = ['eval.sft-s2.json', 'eval.sft-clean1k.json', 'eval.sft-noisy8k.json'].map(read);
  for (const f of Object.keys(fams.by_family)) {
    const cell = (r) => (r?.by_family[f] ? r.by_family[f].helpfulness.toFixed(3) : '');
    console.log(`| ${f} | ${cell(base)} | ${cell(fams)} | ${others.map(cell).join(' | ')} |`);
  }
}

const g = [['SFT', 'gatt/gatt.sft.json'], ['SFT, trained as long without GAtt data', 'gatt/gatt.sft-more.json'], ['SFT + GAtt', 'gatt/gatt.sft-gatt.json']];
if (g.some(([, f]) => read(f))) {
  console.log('\n| model | turn 2 | turn 4 | turn 6 | turn 20 |');
  console.log('|---|---|---|---|---|');
  for (const [name, f] of g) {
    const r = read(f);
    if (r) console.log(`| ${name} | ${['2', '4', '6', '20'].map((t) => pct(r.at[t])).join(' | ')} |`);
  }
  const d = read('gatt/gatt-data.json');
  if (d) console.log(`\nGAtt data: ${d.samples} samples from ${d.dialogs} dialogs; ${d.sampled} answers sampled from the model, ${d.rewritten} rewritten references, ${d.cut} dialogs cut short.`);
}
