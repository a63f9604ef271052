/**
 * `llama2 data synth prefs`: preference pairs the paper's way (src/chat/preferences.ts) — two
 * answers per prompt from two models (`--models A,B`) or one model at two temperatures, judged by
 * the chat world's simulated annotators — appended to a JSONL file as batch N.
 *
 *   llama2 data synth prefs --models runs/sft/latest --prompts world/prompts.train.jsonl --batch 1 --seed 1 --out prefs.jsonl
 *
 * src/cli/data.ts declares these flags (PREFS_FLAGS) and dispatches "synth prefs" here.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { FlagSpec, FlagValues } from './args.js';
import { bool, list, num, str } from './args.js';
import { readTranscripts } from './eval.js';
import { Progress } from './progress.js';
import { openModel, requireTokenizer } from '../open.js';
import { collectPreferences, type Variant } from '../chat/preferences.js';
import { ANNOTATOR_DEFAULTS } from '../world/annotate.js';
import { check, Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export const PREFS_FLAGS: FlagSpec[] = [
  { name: 'models', type: 'list', meta: 'A[,B]', help: 'synth prefs: the model(s) that answer (one model: two temperatures)' },
  { name: 'prompts', type: 'string', meta: 'FILE', help: 'synth prefs: chat-world prompts (prompts.train.jsonl)' },
  { name: 'batch', type: 'int', meta: 'N', help: 'synth prefs: the collection batch (iteration) recorded in every pair (default 1)' },
  { name: 'temperatures', type: 'list', meta: 'T1,T2', help: 'synth prefs: sampling temperatures of the two answers (default 0.7,1.0)' },
  { name: 'tau', type: 'number', meta: 'X', help: `synth prefs: annotator noise τ in P(A) = σ((gold_A − gold_B)/τ) (default ${ANNOTATOR_DEFAULTS.tau})` },
];

const ALLOWED = new Set(['out', 'seed', 'json', 'tokenizer', 'threads', 'max-tokens', ...PREFS_FLAGS.map((f) => f.name)]);

export async function runSynthPrefs(f: FlagValues, extra: string[]): Promise<void> {
  check(extra.length === 0, `data synth prefs: unexpected argument "${extra[0]}"`);
  for (const [k, v] of Object.entries(f)) {
    if (v !== undefined && !ALLOWED.has(k) && !(k === 'json' && v === false)) throw new Llama2Error(`data synth prefs: --${k} does not apply here (see llama2 data --help)`);
  }
  const models = list(f, 'models');
  check(models.length === 1 || models.length === 2, `data synth prefs: --models expects one or two models, found ${models.length}`);
  const prompts = str(f, 'prompts');
  check(prompts, 'data synth prefs: --prompts FILE is required (chat-world prompts, e.g. prompts.train.jsonl)');
  const out = str(f, 'out');
  check(out, 'data synth prefs: --out FILE is required (preference JSONL; new pairs are appended)');
  const temps = list(f, 'temperatures').map(Number);
  const [t1, t2] = temps.length ? temps : [0.7, 1.0];
  check(temps.length === 0 || (temps.length === 2 && temps.every((t) => Number.isFinite(t) && t >= 0)), '--temperatures: expected two numbers ≥ 0, e.g. 0.7,1.0');
  const opened = models.map((m) => openModel(m, { tokenizer: str(f, 'tokenizer'), threads: num(f, 'threads') }));
  const tok = requireTokenizer(opened[0]!, models[0]!);
  const variants: Variant[] = opened.length === 2
    ? [{ name: models[0]!, model: opened[0]!.model, temperature: t1! }, { name: models[1]!, model: opened[1]!.model, temperature: t2! }]
    : [{ name: models[0]!, model: opened[0]!.model, temperature: t1! }, { name: models[0]!, model: opened[0]!.model, temperature: t2! }];
  const ts = readTranscripts(prompts, false).map((t) => t.transcript);
  const bar = bool(f, 'json') ? null : new Progress('prefs', ts.length * 2, 'answers');
  const tau = num(f, 'tau') ?? ANNOTATOR_DEFAULTS.tau;
  check(tau > 0, `--tau: expected a number > 0, found ${tau}`);
  const { records, stats } = await collectPreferences(variants, tok, ts, {
    batch: num(f, 'batch') ?? 1, seed: num(f, 'seed') ?? 1, maxTokens: num(f, 'max-tokens') ?? 64,
    annotator: { ...ANNOTATOR_DEFAULTS, tau }, onProgress: (d) => bar?.update(d),
  });
  bar?.done();
  const lines = records.map((r) => JSON.stringify(r) + '\n').join('');
  if (existsSync(out)) writeFileAtomic(out, [readFileSync(out), lines]);
  else writeFileAtomic(out, lines);
  if (bool(f, 'json')) process.stdout.write(JSON.stringify({ out, ...stats }) + '\n');
  else {
    const mix = Object.entries(stats.by_level).map(([k, v]) => `${k} ${((v / Math.max(1, stats.pairs)) * 100).toFixed(0)}%`).join(', ');
    process.stdout.write(`appended ${stats.pairs} pairs (batch ${num(f, 'batch') ?? 1}) to ${out}; ${stats.identical} prompts gave two identical answers and were skipped\n` +
      `levels: ${mix}\nsafety bins: ${Object.entries(stats.by_safety_bin).map(([k, v]) => `${k} ${v}`).join(', ')}\n` +
      `annotators chose the gold-better answer in ${(stats.agreement_with_gold * 100).toFixed(1)}% of decided pairs\n`);
  }
}
