/**
 * `llama2 reward train|eval|score`: the reward models of the Llama 2 paper (section 3.2.2).
 *
 *   llama2 reward train --init runs/sft/latest --data prefs.jsonl --kind helpful --out-dir runs/rm-helpful
 *   llama2 reward eval  --model runs/rm-helpful/latest --data prefs.test.jsonl [--plot calib.svg] --json
 *   llama2 reward score --model runs/rm-helpful/latest --prompt "Hi" --response "Hello!" --json
 *   llama2 reward score --model runs/rm-helpful/latest --messages dialogs.jsonl --json
 *
 * train: flags → REWARD config → the recipe (src/recipes/reward.ts) with progress and signals.
 */
import type { CommandSpec, FlagValues } from './args.js';
import { bool, num, str } from './args.js';
import { MODEL_FLAGS, openFromFlags, requireModelPath } from './common.js';
import { RUN_FLAGS, exitIfInterrupted, formatReport, runRecipe } from './train-run.js';
import { REWARD, trainReward } from '../recipes/reward.js';
import { readPreferences } from '../data/preferences.js';
import { readChatFile } from '../data/chat-data.js';
import { calibrationSvg, evalRewardModel, formatRewardReport } from '../chat/reward-eval.js';
import { scoreDialogs, toUnit } from '../chat/reward-score.js';
import { requireTokenizer } from '../open.js';
import { asciiPlot } from '../train/metrics.js';
import { check, Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

const TRAIN_ONLY = new Set([...RUN_FLAGS.map((f) => f.name), ...REWARD.flags().map((f) => f.name)]);

export const spec: CommandSpec = {
  name: 'reward',
  summary: 'Reward models (Llama 2 paper, section 3.2.2): train on preference pairs, evaluate accuracy by level, score dialogs.',
  usage: 'llama2 reward train --init CKPT --data FILE[,FILE...] --kind helpful|safety --out-dir DIR [--KEY=VALUE ...]\n' +
    '       llama2 reward eval --model RM --data FILE [--plot F.svg] [--json]\n' +
    '       llama2 reward score --model RM (--messages FILE | --prompt P --response R) [--json]',
  positionals: ['train | eval | score'],
  flags: [
    ...RUN_FLAGS,
    ...REWARD.flags(),
    ...MODEL_FLAGS.filter((f) => f.name !== 'tokenizer' && f.name !== 'threads'),
    { name: 'plot', type: 'string', meta: 'FILE', help: 'eval: write the calibration plot (Fig. 6) as SVG' },
    { name: 'messages', type: 'string', meta: 'FILE', help: 'score: JSONL dialogs {"messages": [..., the answer]} to score' },
    { name: 'prompt', type: 'string', meta: 'TEXT', help: 'score: the user prompt' },
    { name: 'response', type: 'string', meta: 'TEXT', help: 'score: the answer to score' },
  ],
  notes:
    'train: every config key is a flag; writes checkpoints whose HF config.json says LlamaForSequenceClassification\n' +
    '(score.weight head, model/weights.ts). eval: accuracy overall, by level (Tables 7-8), by safety bin and batch,\n' +
    'unsafe-answer recall; --json ends with {"n", "accuracy", "by_level", "by_safety_bin", "by_batch", ...}.\n' +
    'score: raw scores and their logistic (0, 1) form, the scale of the safety gate R_safety < 0.15.',
};

export async function run(f: FlagValues, positionals: string[]): Promise<void> {
  const [sub, ...more] = positionals;
  check(more.length === 0, `reward: unexpected argument "${more[0]}"`);
  if (sub === 'train') return runTrain(f);
  for (const k of Object.keys(f)) {
    if (f[k] !== undefined && f[k] !== false && TRAIN_ONLY.has(k) && !['json', 'quiet', 'data', 'tokenizer', 'threads'].includes(k)) {
      throw new Llama2Error(`reward ${sub}: --${k} applies to "reward train" only`);
    }
  }
  if (sub === 'eval') return runEval(f);
  if (sub === 'score') return runScore(f);
  throw new Llama2Error(`reward: expected a subcommand "train", "eval" or "score", found ${sub === undefined ? 'none' : `"${sub}"`}`);
}

async function runTrain(f: FlagValues): Promise<void> {
  const c = REWARD.fromFlags(f);
  const stopAfter = num(f, 'stop-after');
  const r = await runRecipe((signal, onEvent) => trainReward({ config: c, resume: bool(f, 'resume'), overwrite: bool(f, 'overwrite'), stopAfter, signal, onEvent }),
    { quiet: bool(f, 'quiet'), logEvery: c.log_every, outDir: c.out_dir });
  const s = r.summary;
  if (bool(f, 'json')) process.stdout.write(JSON.stringify(s) + '\n');
  else {
    const lines = [asciiPlot(r.plot), '', formatReport(s, c.out_dir, {
      lossLine: `ranking loss: train ${s.final_train_loss?.toFixed(4) ?? '-'}; ${s.pairs.train} pairs (${s.pairs.this_kind} ${s.kind} + ${s.pairs.other_kind} other), ${s.pairs_per_s.toFixed(1)} pairs/s`,
      tryCommand: `llama2 reward eval --model ${c.out_dir}/latest --data ${c.data[0]}`,
    })];
    if (s.val) lines.push('', formatRewardReport(s.val, `validation (${s.pairs.val} held-out pairs)`));
    process.stdout.write(lines.join('\n') + '\n');
  }
  exitIfInterrupted(r.status, r.step, 'reward train');
}

/** The model flags with --threads typed (it is also the training config's key, a string flag). */
function modelFlags(f: FlagValues): FlagValues {
  const t = f['threads'];
  return { ...f, threads: t === undefined ? undefined : Number(t) };
}

async function runEval(f: FlagValues): Promise<void> {
  const data = str(f, 'data');
  check(data, 'reward eval: --data FILE is required (preference JSONL)');
  const o = openFromFlags(modelFlags(f), 'reward eval');
  const tok = requireTokenizer(o, requireModelPath(f, 'reward eval'));
  const pairs = data.split(',').flatMap((p) => [...readPreferences(p.trim())]);
  check(pairs.length > 0, `reward eval: no pairs in ${data}`);
  const r = evalRewardModel(o.model, tok, pairs);
  const plot = str(f, 'plot');
  if (plot) writeFileAtomic(plot, calibrationSvg(r, `calibration of ${requireModelPath(f, 'reward eval')}`));
  process.stdout.write(formatRewardReport(r, requireModelPath(f, 'reward eval')) + '\n');
  if (bool(f, 'json')) {
    const { calibration, ...rest } = r;
    process.stdout.write(JSON.stringify({ ...rest, calibration }) + '\n');
  }
}

async function runScore(f: FlagValues): Promise<void> {
  const o = openFromFlags(modelFlags(f), 'reward score');
  const tok = requireTokenizer(o, requireModelPath(f, 'reward score'));
  const file = str(f, 'messages');
  const prompt = str(f, 'prompt');
  const response = str(f, 'response');
  check(!!file !== (prompt !== undefined || response !== undefined), 'reward score: give --messages FILE, or --prompt P and --response R');
  const dialogs = file
    ? [...readChatFile(file)].map((s) => s.messages)
    : [[{ role: 'user' as const, content: prompt ?? '' }, { role: 'assistant' as const, content: response ?? '' }]];
  check(file || (prompt !== undefined && response !== undefined), 'reward score: --prompt and --response go together');
  const scores = scoreDialogs(o.model, tok, dialogs);
  for (const s of scores) {
    process.stdout.write(bool(f, 'json') ? JSON.stringify({ score: s, unit: toUnit(s) }) + '\n' : `${s.toFixed(4)}\t(${toUnit(s).toFixed(4)})\n`);
  }
}
