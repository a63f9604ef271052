/**
 * `llama2 pipeline`: the whole Llama-2 recipe in one command (src/recipes/pipeline.ts) — chat world,
 * pretraining, SFT, Ghost Attention, RLHF versions with both reward models, rejection sampling, PPO
 * and context distillation, the reward models on held-out pairs — with progress, Ctrl-C safety (a
 * rerun resumes) and the summary as a table or as JSON.
 *
 *   llama2 pipeline --quick --out-dir runs/pipeline-quick
 *   llama2 pipeline --config configs/pipeline.json --seed 2 --out-dir runs/pipeline-s2 --json
 */
import type { CommandSpec, FlagValues } from './args.js';
import { bool } from './args.js';
import { runRecipe } from './train-run.js';
import { PIPELINE, QUICK_PIPELINE, runPipeline, type PipelineConfig, type PipelineSummary } from '../recipes/pipeline.js';
import { fmtTime } from './progress.js';

export const spec: CommandSpec = {
  name: 'pipeline',
  summary: 'The whole Llama-2 recipe in one command: chat world → pretraining → SFT → Ghost Attention → RLHF versions (preferences, two reward models, rejection sampling, PPO, context distillation) → evaluation.',
  usage: 'llama2 pipeline [--quick] [--config FILE] [--seed S] [--out-dir DIR] [--KEY=VALUE ...] [--json]',
  flags: [
    { name: 'config', short: 'c', type: 'string', meta: 'FILE', help: 'JSON config (keys as below, snake_case), over the defaults (or over --quick\'s)' },
    { name: 'quick', type: 'boolean', default: false, help: `a small model and world: the whole recipe in minutes (${Object.entries(QUICK_PIPELINE).map(([k, v]) => `${k} ${v}`).join(', ')})` },
    { name: 'json', type: 'boolean', default: false, help: 'end with the summary as one JSON line' },
    { name: 'quiet', short: 'q', type: 'boolean', default: false, help: 'no progress on stderr' },
    ...PIPELINE.flags(),
  ],
  notes:
    'Each stage writes into DIR/<stage>/ with a manifest.json (inputs with digests and file hashes, outputs, wall\n' +
    'time, energy, CO2); a rerun skips stages whose inputs match, resumes an interrupted one from its checkpoint\n' +
    'and redoes those whose inputs changed. DIR/pipeline.json holds the summary; DIR/rlhf/lineage.json says which\n' +
    'data and checkpoint made each model version.',
};

/** defaults (or --quick's) → --config file → key flags */
export function pipelineConfig(f: FlagValues): PipelineConfig {
  return PIPELINE.fromFlags(f, { ...PIPELINE.defaults, ...(bool(f, 'quick') ? QUICK_PIPELINE : {}) });
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function formatSummary(s: PipelineSummary, outDir: string): string {
  const lines = [`pipeline (seed ${s.seed}): ${fmtTime(s.wall_s)}, ${s.carbon.kwh.toFixed(4)} kWh, ${(s.carbon.kg_co2eq * 1000).toFixed(1)} g CO2eq`, ''];
  lines.push('stage      wall      share   kWh');
  for (const st of s.stages) lines.push(`${st.name.padEnd(9)}  ${fmtTime(st.wall_s).padStart(7)}  ${pct(st.wall_s / s.wall_s).padStart(6)}  ${st.kwh.toFixed(4)}${st.skipped ? '  (done earlier)' : ''}`);
  if (s.pretrain.val_bits_per_char !== null) {
    const { stories_bits_per_char: st, entropy_floor: fl } = s.pretrain;
    lines.push('', `pretraining: validation ${s.pretrain.val_bits_per_char.toFixed(4)} bits/char` +
      (st !== null && fl !== null ? `; its stories ${st.toFixed(4)} vs their true entropy ${fl.toFixed(4)} (${((st / fl - 1) * 100).toFixed(1)}% above)` : ''));
  }
  lines.push('', 'version                  helpfulness (95% CI)       violations  false refusals  R_helpful  R_safety');
  for (const v of s.versions) {
    lines.push(`${v.name.padEnd(23)}  ${v.helpfulness.toFixed(3)} [${v.helpfulness_ci95[0].toFixed(3)}, ${v.helpfulness_ci95[1].toFixed(3)}]  ${pct(v.violation_rate).padStart(10)}  ${pct(v.false_refusal_rate).padStart(14)}  ${v.rm_helpful.toFixed(3).padStart(9)}  ${v.rm_safety.toFixed(3).padStart(8)}`);
  }
  const lv = (r: PipelineSummary['reward_models']['helpful']) => Object.values(r.by_level).map((c) => (c.accuracy === null ? '-' : pct(c.accuracy))).join(' / ');
  lines.push('', 'reward models on held-out pairs (significantly / better / slightly / negligibly better; all):');
  lines.push(`  helpful  ${lv(s.reward_models.helpful)}; ${pct(s.reward_models.helpful.accuracy)}`);
  lines.push(`  safety   ${lv(s.reward_models.safety)}; ${pct(s.reward_models.safety.accuracy)}`);
  lines.push('', `Ghost Attention, instruction kept at turns ${Object.keys(s.gatt.with).join('/')}: without ${Object.values(s.gatt.without).map(pct).join('/')}, with ${Object.values(s.gatt.with).map(pct).join('/')}`);
  lines.push('', `summary: ${outDir}/pipeline.json; stages: ${outDir}/<stage>/manifest.json${s.report ? `; report: ${s.report}` : ''}`);
  return lines.join('\n');
}

/** Runs the pipeline with progress (lines tagged `[tag]`) and Ctrl-C handling; prints the summary (and its JSON). */
export async function runPipelineCli(c: PipelineConfig, o: { quiet: boolean; json: boolean; tag: string; intro?: string }): Promise<void> {
  const say = (m: string) => {
    if (!o.quiet) process.stderr.write(`[${o.tag}] ${m}\n`);
  };
  if (o.intro) say(o.intro);
  const s = await runRecipe((signal, onEvent) => runPipeline({ config: c, signal, onEvent, say }), { quiet: o.quiet, logEvery: 50 });
  process.stdout.write(formatSummary(s, c.out_dir) + '\n');
  if (o.json) process.stdout.write(JSON.stringify(s) + '\n');
}

export async function run(f: FlagValues): Promise<void> {
  await runPipelineCli(pipelineConfig(f), { quiet: bool(f, 'quiet'), json: bool(f, 'json'), tag: 'pipeline' });
}
