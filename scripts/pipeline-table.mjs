// The README's table of full pipeline runs: one column per run folder (pipeline.json), one column
// with what the Llama 2 paper reports for the same step.
//
//   node scripts/pipeline-table.mjs runs/pfull1 runs/pfull2
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const runs = process.argv.slice(2).map((d) => JSON.parse(readFileSync(join(d, 'pipeline.json'), 'utf8')));
if (!runs.length) throw new Error('usage: node scripts/pipeline-table.mjs RUN_DIR [RUN_DIR...]');
const pct = (x) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
const f3 = (x) => x.toFixed(3);
const mins = (s) => `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
const version = (r, name) => r.versions.find((v) => v.name === name);
const gold = (name) => (r) => {
  const v = version(r, name);
  return v ? `${f3(v.helpfulness)} [${f3(v.helpfulness_ci95[0])}, ${f3(v.helpfulness_ci95[1])}] · ${pct(v.violation_rate)} · ${pct(v.false_refusal_rate)}` : '–';
};
const levels = (rm) => ['significantly_better', 'better', 'slightly_better', 'negligibly_better'].map((l) => pct(rm.by_level[l]?.accuracy)).join(' / ') + `; all ${pct(rm.accuracy)}`;
const gatt = (t) => ['2', '4', '6', '20'].map((k) => pct(t[k])).join(' / ');
const rows = [
  ['wall time on 2 cores', (r) => mins(r.wall_s), '—'],
  ['pretraining: share of the wall time', (r) => pct(r.stages.find((s) => s.name === 'pretrain').wall_s / r.wall_s), 'pretraining is nearly all of it (Table 2: 3.3M GPU-hours for the family)'],
  ['energy · CO2eq (0.4235 kg/kWh)', (r) => `${(r.carbon.kwh * 1000).toFixed(1)} Wh · ${(r.carbon.kg_co2eq * 1000).toFixed(1)} g`, 'pretraining 539 tCO2eq (Table 2)'],
  ['pretraining: validation bits/char', (r) => r.pretrain.val_bits_per_char.toFixed(4), '—'],
  ['… its stories vs their true entropy', (r) => r.pretrain.stories_bits_per_char == null ? '–' : `${r.pretrain.stories_bits_per_char.toFixed(4)} vs ${r.pretrain.entropy_floor.toFixed(4)} (${((r.pretrain.stories_bits_per_char / r.pretrain.entropy_floor - 1) * 100).toFixed(1)}% above)`, '—'],
  ['pretrained: helpfulness [95% CI] · violations · false refusals', gold('pretrained'), '—'],
  ['SFT', gold('SFT'), 'SFT a large step over the base model (§3.1)'],
  ['RS-V1', gold('RS-V1'), 'each RLHF version better than the last (Fig. 11)'],
  ['PPO-V2', gold('PPO-V2'), ''],
  ['+ context distillation', gold('+ context distillation'), 'fewer violations, some false refusals (§4.2.4)'],
  ['helpfulness RM accuracy by level (held-out pairs)', (r) => levels(r.reward_models.helpful), '80.7 / 67.5 / 60.9 / 54.7%; 63.2% (Meta Helpful, Table 8)'],
  ['safety RM accuracy by level', (r) => levels(r.reward_models.safety), '94.3 / 76.3 / 65.7 / 55.3%; 64.5% (Meta Safety, Table 8)'],
  ['GAtt: instruction kept at turns 2 / 4 / 6 / 20, without', (r) => gatt(r.gatt.without), 'forgotten after a few turns (Fig. 9)'],
  ['… with GAtt', (r) => gatt(r.gatt.with), 'kept up to 20 turns (Table 30)'],
];
const head = `| | ${runs.map((r) => `seed ${r.seed}`).join(' | ')} | the paper |`;
const out = [head, `|---|${runs.map(() => '---').join('|')}|---|`, ...rows.map(([k, fn, paper]) => `| ${k} | ${runs.map(fn).join(' | ')} | ${paper} |`)];
console.log(out.join('\n'));
