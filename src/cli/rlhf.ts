/**
 * `llama2 rlhf rs|ppo`: the RLHF stages of the Llama 2 paper (section 3.2.3) on top of SFT and the
 * two reward models.
 *
 *   llama2 rlhf rs --policy runs/sft/latest --rm-helpful H --rm-safety S --prompts p.jsonl --k 4 --out-dir runs/rs1
 *   llama2 rlhf rs … --pool runs/rs1/best.jsonl --iteration 2 --out-dir runs/rs2     (earlier iterations' best answers join)
 *
 * rs: flags → the RS config → src/recipes/rs.ts (sampling, scoring, the pool, then SFT with progress).
 */
import type { CommandSpec, FlagSpec, FlagValues } from './args.js';
import { bool, num } from './args.js';
import { RUN_FLAGS, exitIfInterrupted, formatReport, runRecipe } from './train-run.js';
import { RS, rejectionSampling, type RsReport } from '../recipes/rs.js';
import { PPO, ppo } from '../recipes/ppo.js';
import { ITERATE, iterate, type VersionRow } from '../recipes/iterate.js';
import { Llama2Error } from '../util/errors.js';

export const spec: CommandSpec = {
  name: 'rlhf',
  summary: 'RLHF (Llama 2 paper, section 3.2.3): rejection-sampling fine-tuning and PPO with the two reward models.',
  usage: 'llama2 rlhf rs --policy CKPT --rm-helpful H --rm-safety S --prompts FILE[,FILE...] [--k K] [--temperature T] --out-dir DIR [--KEY=VALUE ...]\n' +
    '       llama2 rlhf ppo --policy CKPT --rm-helpful H --rm-safety S --prompts FILE[,FILE...] [--eval-prompts FILE] [--beta B] --out-dir DIR [--KEY=VALUE ...]\n' +
    '       llama2 rlhf iterate --sft CKPT --pref-prompts F --rl-prompts F --eval-prompts F [--versions N] [--ppo-versions N] [--safety-distill] --out-dir DIR',
  positionals: ['rs | ppo | iterate'],
  flags: [...RUN_FLAGS, ...mergeFlags([['rs', RS.flags()], ['ppo', PPO.flags()], ['iterate', ITERATE.flags()]])],
  notes:
    'rs: K answers per prompt, scored by R_c (the safety model\'s score on safety prompts or when it is below 0.15,\n' +
    'else the helpfulness model\'s; both on the logistic (0, 1) scale), the best kept and fine-tuned on together with\n' +
    'the --pool of earlier iterations. Writes samples.jsonl, best.jsonl, report.json (best-of-N curves, Fig. 7;\n' +
    'temperature sweep with --sweep-temperatures, Fig. 8) and sft/ (the fine-tuning run) into out_dir.\n' +
    'ppo: R(g|p) = whiten(logit(R_c)) − β·KL(π ‖ π_0) per token, a value head on the policy, GAE, clipped surrogate and\n' +
    'value losses (src/rl/, checked against the PyTorch oracle); each step logs reward, KL, clip fractions, losses,\n' +
    'entropy, length; every --eval-every steps the gold checkers grade --eval-prompts next to the proxy reward.\n' +
    'Flags of one subcommand that the other does not know are refused.',
};

/**
 * The union of the subcommands' flags: a name several declare appears once; where their help texts
 * (which carry the defaults) differ, each is shown after the subcommands it belongs to.
 */
function mergeFlags(sets: [string, FlagSpec[]][]): FlagSpec[] {
  const names = [...new Set(sets.flatMap(([, flags]) => flags.map((f) => f.name)))];
  return names.map((name) => {
    const owners = sets.flatMap(([sub, flags]) => flags.filter((f) => f.name === name).map((f) => [sub, f] as const));
    const byHelp = new Map<string, string[]>();
    for (const [sub, f] of owners) byHelp.set(f.help, [...(byHelp.get(f.help) ?? []), sub]);
    const help = byHelp.size === 1 && owners.length === sets.length ? owners[0]![1].help
      : [...byHelp].map(([h, subs]) => `${subs.join(', ')}: ${h}`).join('; ');
    return { ...owners[0]![1], help };
  });
}

function formatRs(r: RsReport): string {
  const f = (x: number | null) => (x === null ? '-' : x.toFixed(3));
  const lines = [`rejection sampling, iteration ${r.iteration}: ${r.prompts} prompts × ${r.k} samples at T=${r.temperature} (${r.sampling_seconds.toFixed(0)} s); pool ${r.pool.new} new + ${r.pool.earlier} earlier`,
    '', '  N   max R_c  median R_c  max gold  median gold  gold of R_c-best', '---  -------  ----------  --------  -----------  ----------------'];
  for (const b of r.best_of_n) lines.push(`${String(b.n).padStart(3)}  ${f(b.reward_max).padStart(7)}  ${f(b.reward_median).padStart(10)}  ${f(b.gold_max).padStart(8)}  ${f(b.gold_median).padStart(11)}  ${f(b.gold_of_reward_best).padStart(16)}`);
  if (r.sweep.length) {
    lines.push('', 'temperature  max R_c (best of K)  gold of R_c-best');
    for (const s of r.sweep) lines.push(`${s.temperature.toFixed(2).padStart(11)}  ${s.reward_max.toFixed(3).padStart(19)}  ${f(s.gold_of_reward_best).padStart(16)}`);
  }
  return lines.join('\n');
}

export async function run(f: FlagValues, positionals: string[]): Promise<void> {
  const [sub, ...more] = positionals;
  if (more.length) throw new Llama2Error(`rlhf: unexpected argument "${more[0]}"`);
  if (sub === 'ppo') return runPpo(f);
  if (sub === 'iterate') return runIterate(f);
  if (sub !== 'rs') throw new Llama2Error(`rlhf: expected a subcommand "rs", "ppo" or "iterate", found ${sub === undefined ? 'none' : `"${sub}"`}`);
  onlyFlagsOf(f, RS.flags(), 'rs');
  const c = RS.fromFlags(f);
  const stopAfter = num(f, 'stop-after');
  const r = await runRecipe((signal, onEvent) => rejectionSampling({ config: c, resume: bool(f, 'resume'), overwrite: bool(f, 'overwrite'), stopAfter, signal, onEvent }),
    { quiet: bool(f, 'quiet'), logEvery: c.log_every, outDir: c.out_dir });
  if (bool(f, 'json')) process.stdout.write(JSON.stringify({ rs: r.report, sft: r.sft.summary }) + '\n');
  else process.stdout.write(formatRs(r.report) + '\n\n' + formatReport(r.sft.summary, `${c.out_dir}/sft`, { tryCommand: `llama2 eval --model ${c.out_dir}/sft/latest --prompts …` }) + '\n');
  exitIfInterrupted(r.sft.status, r.sft.step, 'rlhf rs');
}

/** Refuses a config flag the subcommand does not have (the spec lists both subcommands' flags). */
function onlyFlagsOf(f: FlagValues, own: FlagSpec[], sub: string): void {
  const mine = new Set([...own.map((x) => x.name), ...RUN_FLAGS.map((x) => x.name)]);
  for (const [k, v] of Object.entries(f)) {
    if (v !== undefined && !mine.has(k) && !(typeof v === 'boolean' && v === false)) throw new Llama2Error(`rlhf ${sub}: --${k} does not apply here (see llama2 rlhf --help)`);
  }
}

async function runPpo(f: FlagValues): Promise<void> {
  onlyFlagsOf(f, PPO.flags(), 'ppo');
  const c = PPO.fromFlags(f);
  const stopAfter = num(f, 'stop-after');
  const r = await runRecipe((signal, onEvent) => ppo({ config: c, resume: bool(f, 'resume'), overwrite: bool(f, 'overwrite'), stopAfter, signal, onEvent }),
    { quiet: bool(f, 'quiet'), logEvery: c.log_every, outDir: c.out_dir });
  const s = r.summary;
  if (bool(f, 'json')) process.stdout.write(JSON.stringify(s) + '\n');
  else {
    const g = s.gold.map((x) => `  step ${String(x.step).padStart(4)}: gold helpfulness ${x.helpfulness.toFixed(3)}, violations ${(x.violation_rate * 100).toFixed(1)}%, proxy reward ${x.reward.toFixed(3)}`);
    process.stdout.write([...(s.final ? [`final rollout: reward ${s.final.reward.toFixed(3)}, KL ${s.final.kl.toFixed(3)}, length ${s.final.response_length.toFixed(1)}`] : []), ...g, '',
      formatReport(s, c.out_dir, { lossLine: `PPO total loss ${s.final_train_loss?.toFixed(4) ?? '-'}; sampling ${s.sampling_seconds.toFixed(0)} s of ${s.train_seconds.toFixed(0)} s`, tryCommand: `llama2 eval --model ${c.out_dir}/latest --prompts …` })].join('\n') + '\n');
  }
  exitIfInterrupted(r.status, r.step, 'rlhf ppo');
}

/** The table of versions (the README's shape). */
export function formatVersions(rows: readonly VersionRow[]): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-');
  return ['version                  helpfulness (95% CI)       violations  false refusals  R_helpful  R_safety',
    ...rows.map((r) => `${r.name.padEnd(23)}  ${r.helpfulness.toFixed(3)} [${r.helpfulness_ci95[0].toFixed(3)}, ${r.helpfulness_ci95[1].toFixed(3)}]  ${pct(r.violation_rate).padStart(10)}  ${pct(r.false_refusal_rate).padStart(14)}  ${f(r.rm_helpful).padStart(9)}  ${f(r.rm_safety).padStart(8)}`)].join('\n');
}

async function runIterate(f: FlagValues): Promise<void> {
  onlyFlagsOf(f, ITERATE.flags(), 'iterate');
  const c = ITERATE.fromFlags(f);
  const r = await runRecipe((signal, onEvent) => iterate({ config: c, signal, onEvent }), { quiet: bool(f, 'quiet'), logEvery: 10, outDir: c.out_dir });
  if (r.interrupted) {
    process.stderr.write(`interrupted: the running step saved a checkpoint; run the same command again to continue\n`);
    process.exit(130);
  }
  if (bool(f, 'json')) process.stdout.write(JSON.stringify({ versions: r.versions }) + '\n');
  else process.stdout.write(formatVersions(r.versions) + `\n\nlineage: ${c.out_dir}/lineage.json\n`);
}
