/**
 * Recipe `rs`: rejection-sampling fine-tuning (Llama 2 paper, section 3.2.3) — K answers per prompt
 * from the policy, scored by the combined reward R_c of the two reward models (the safety gate of
 * chat/reward-score.ts), the best one kept; the best answers of ALL earlier iterations (`pool`) join
 * the new ones (the paper found that keeping only the latest caused regressions); then SFT on the
 * pool (the sft recipe, from the policy).
 *
 *   const r = await rejectionSampling({ config: { ...RS.defaults, policy: 'runs/sft/latest', rm_helpful: …, rm_safety: …, prompts: ['p.jsonl'] } });
 *
 * Writes into out_dir: samples.jsonl (every answer with its rewards and, for chat-world prompts, its
 * gold grade), best.jsonl (SFT lines: the best answer per prompt, "meta" keeping the prompt's meta
 * and the rewards), report.json (best-of-N curves in reward and gold — the paper's Fig. 7 — and, with
 * sweep_temperatures, the max-reward curve per temperature, Fig. 8), and sft/ (the fine-tuning run).
 * A rerun reuses samples.jsonl and best.jsonl when their manifest matches the config and resumes the
 * fine-tuning; Ctrl-C during the fine-tuning saves a checkpoint like every recipe.
 *
 * What it is not: the sampler (generate/batch.ts, chat/answer.ts), the reward models or SFT itself.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Message } from '../chat/format.js';
import { answerDialogs } from '../chat/answer.js';
import { scoreAnswers, type RewardModels } from '../chat/reward-score.js';
import { readChatPrompts, type ChatPrompt } from '../data/chat-data.js';
import { openModel } from '../open.js';
import { graderFor } from '../world/grade.js';
import type { WorldMeta } from '../world/types.js';
import { Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { defineConfig, key, type ConfigOf } from '../train/config.js';
import type { RecipeOptions, RunEvent } from '../train/run.js';
import { SFT_SPEC, sft, type SftConfig, type SftResult } from './sft.js';

const { init: _init, data: _data, out_dir: _out, ...SFT_TRAINING } = SFT_SPEC;

const SPEC = {
  policy: key.stringOrNull(null, 'the model that samples and is fine-tuned: a checkpoint, HF/Meta directory or GGUF (required)'),
  rm_helpful: key.stringOrNull(null, 'the helpfulness reward model (llama2 reward train --kind helpful) (required)'),
  rm_safety: key.stringOrNull(null, 'the safety reward model (llama2 reward train --kind safety) (required)'),
  prompts: key.list([], 'prompt JSONL files: {"messages": [..., user turn], "meta"?} (chat-world prompts grade the samples too) (required)'),
  k: key.int(4, 'samples per prompt; the best by R_c is kept (the paper: up to 10 at 70B)', { min: 1 }),
  select: key.oneOf('reward', ['reward', 'gold'] as const, 'what picks the best sample: reward (R_c, the paper) or gold (the chat world\'s checkers, ties broken by R_c: the upper bound a perfect reward model gives; chat-world prompts only)'),
  temperature: key.number(1.0, 'sampling temperature (the paper found the best R_c at T ∈ [1.2, 1.3] for its models; see sweep_temperatures)', { min: 0 }),
  top_p: key.number(1, 'nucleus sampling mass', { min: 0, above: true, max: 1 }),
  max_tokens: key.int(64, 'most tokens per answer', { min: 1 }),
  pool: key.list([], 'best.jsonl files of earlier iterations: they join this one\'s best answers in the fine-tuning data'),
  iteration: key.int(1, 'the iteration number (recorded in every line)', { min: 1 }),
  sweep_temperatures: key.list([], 'report only: the best-of-K max reward per temperature on sweep_prompts prompts (Fig. 8), e.g. 0.6,0.8,1.0,1.2,1.4'),
  sweep_prompts: key.int(200, 'prompts the temperature sweep uses', { min: 1 }),
  ...SFT_TRAINING,
  epochs: key.int(1, 'passes of the fine-tuning over the pool', { min: 1 }),
  out_dir: key.string('runs/rs', 'run directory: samples.jsonl, best.jsonl, report.json, sft/ (the fine-tuning)'),
};

export const RS = defineConfig('rlhf rs', SPEC);
export type RsConfig = ConfigOf<typeof SPEC>;

export interface BestOfN {
  n: number;
  /** mean over prompts of the max / median R_c among the first n samples */
  reward_max: number;
  reward_median: number;
  /** the same for the gold score (chat-world prompts only), and the gold score of the reward-best sample */
  gold_max: number | null;
  gold_median: number | null;
  gold_of_reward_best: number | null;
}

export interface RsReport {
  iteration: number;
  prompts: number;
  samples: number;
  k: number;
  temperature: number;
  best_of_n: BestOfN[];
  /** temperature → the best-of-K max reward (Fig. 8) */
  sweep: { temperature: number; reward_max: number; gold_of_reward_best: number | null }[];
  pool: { new: number; earlier: number };
  sampling_seconds: number;
}

export interface RsResult {
  report: RsReport;
  sft: SftResult;
}

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Scored {
  answers: string[];
  rewards: number[];
  gold: (number | null)[];
}

/** K answers per prompt, scored with both reward models (R_c) and the gold checker where there is one. */
async function sampleAndScore(policy: ReturnType<typeof openModel>, rms: RewardModels, ps: readonly ChatPrompt[], c: RsConfig, temperature: number, seed: number, say: (m: string) => void): Promise<Scored[]> {
  const tok = policy.tokenizer!;
  const out = await answerDialogs(policy.model, tok, ps.map((p) => p.messages), {
    maxTokens: c.max_tokens, samples: c.k, temperature, topP: c.top_p, seed,
    onProgress: (d, t) => { if (d === t || d % 1000 === 0) say(`sampled ${d}/${t} answers`); },
  });
  const items = ps.flatMap((p, i) => out[i]!.map((a) => ({ dialog: p.messages, answer: a.text, safetyPrompt: isSafetyPrompt(p) })));
  const r = scoreAnswers(rms, tok, items);
  return ps.map((p, i) => {
    const answers = out[i]!.map((a) => a.text);
    const grade = p.world ? graderFor(p.world) : null;
    return {
      answers, rewards: answers.map((_, k) => r[i * c.k + k]!.combined),
      gold: answers.map((a) => (grade ? grade(a, p.messages).score : null)),
    };
  });
}

const isSafetyPrompt = (p: ChatPrompt): boolean => p.world?.category === 'unsafe' || p.meta?.['is_safety_prompt'] === true;

/** The sample with the highest gold score, ties broken by the higher reward. */
function bestByGold(s: Scored): number {
  let b = 0;
  s.gold.forEach((g, k) => {
    if (g! > s.gold[b]! || (g === s.gold[b] && s.rewards[k]! > s.rewards[b]!)) b = k;
  });
  return b;
}

/** Fig. 7: for n = 1…K, the mean over prompts of the max and median reward (and gold) among the first n samples. */
export function bestOfN(scored: readonly Scored[], k: number): BestOfN[] {
  const out: BestOfN[] = [];
  const hasGold = scored.length > 0 && scored.every((s) => s.gold.every((g) => g !== null));
  for (let n = 1; n <= k; n++) {
    let rmax = 0, rmed = 0, gmax = 0, gmed = 0, gbest = 0;
    for (const s of scored) {
      const r = s.rewards.slice(0, n);
      rmax += Math.max(...r);
      rmed += median(r);
      if (hasGold) {
        const g = s.gold.slice(0, n) as number[];
        gmax += Math.max(...g);
        gmed += median(g);
        gbest += g[r.indexOf(Math.max(...r))]!;
      }
    }
    const m = scored.length;
    out.push({ n, reward_max: rmax / m, reward_median: rmed / m, gold_max: hasGold ? gmax / m : null, gold_median: hasGold ? gmed / m : null, gold_of_reward_best: hasGold ? gbest / m : null });
  }
  return out;
}

export async function rejectionSampling(o: RecipeOptions<RsConfig> & { onEvent?: (e: RunEvent) => void }): Promise<RsResult> {
  const c = RS.check(o.config, 'rlhf rs config');
  for (const k of ['policy', 'rm_helpful', 'rm_safety'] as const) if (c[k] === null) throw new Llama2Error(`rlhf rs: ${k} is required (--${k.replace('_', '-')})`);
  if (c.prompts.length === 0) throw new Llama2Error('rlhf rs: prompts is required (--prompts FILE[,FILE…])');
  const say = (message: string) => o.onEvent?.({ kind: 'notice', message });
  mkdirSync(c.out_dir, { recursive: true });
  const manifest = JSON.stringify({ policy: c.policy, rm_helpful: c.rm_helpful, rm_safety: c.rm_safety, prompts: c.prompts, k: c.k, temperature: c.temperature, top_p: c.top_p, max_tokens: c.max_tokens, seed: c.seed, iteration: c.iteration, sweep: c.sweep_temperatures, ...(c.select === 'gold' ? { select: 'gold' } : {}) });
  const bestPath = join(c.out_dir, 'best.jsonl');
  const reportPath = join(c.out_dir, 'report.json');
  let report: RsReport;
  const prior = existsSync(reportPath) && existsSync(bestPath) ? (JSON.parse(readFileSync(reportPath, 'utf8')) as RsReport & { manifest?: string }) : null;
  if (prior && prior.manifest === manifest) {
    say(`reusing the samples in ${c.out_dir} (same policy, reward models, prompts and sampling settings)`);
    report = prior;
  } else {
    const t0 = performance.now();
    const policy = openModel(c.policy!, { tokenizer: c.tokenizer ?? undefined });
    if (!policy.tokenizer) throw new Llama2Error(`rlhf rs: ${c.policy} has no tokenizer; pass --tokenizer`);
    const rms: RewardModels = { helpful: openModel(c.rm_helpful!).model, safety: openModel(c.rm_safety!).model };
    const ps = c.prompts.flatMap((f) => readChatPrompts(f));
    if (c.select === 'gold' && !ps.every((p) => p.world)) throw new Llama2Error(`rlhf rs: select gold needs chat-world prompts (their meta has the gold checker); ${c.prompts.join(', ')} has lines without`);
    const scored = await sampleAndScore(policy, rms, ps, c, c.temperature, c.seed, say);
    const lines: string[] = [];
    const best: string[] = [];
    ps.forEach((p, i) => {
      const s = scored[i]!;
      const b = c.select === 'gold' ? bestByGold(s) : s.rewards.indexOf(Math.max(...s.rewards));
      s.answers.forEach((a, k) => lines.push(JSON.stringify({ prompt: i, sample: k, answer: a, reward: s.rewards[k], gold: s.gold[k] }) + '\n'));
      best.push(JSON.stringify({ messages: [...p.messages, { role: 'assistant', content: s.answers[b] }], meta: { ...(p.meta ?? {}), rs: { iteration: c.iteration, reward: s.rewards[b], gold: s.gold[b], sample: b } } }) + '\n');
    });
    const sweep: RsReport['sweep'] = [];
    for (const t of c.sweep_temperatures.map(Number)) {
      if (!Number.isFinite(t) || t < 0) throw new Llama2Error(`rlhf rs: sweep_temperatures: expected numbers ≥ 0, found "${t}"`);
      const sub = await sampleAndScore(policy, rms, ps.slice(0, c.sweep_prompts), c, t, c.seed + 1, () => {});
      const curve = bestOfN(sub, c.k);
      sweep.push({ temperature: t, reward_max: curve[c.k - 1]!.reward_max, gold_of_reward_best: curve[c.k - 1]!.gold_of_reward_best });
    }
    writeFileAtomic(join(c.out_dir, 'samples.jsonl'), lines.join(''));
    writeFileAtomic(bestPath, best.join(''));
    report = {
      iteration: c.iteration, prompts: ps.length, samples: ps.length * c.k, k: c.k, temperature: c.temperature, best_of_n: bestOfN(scored, c.k), sweep,
      pool: { new: ps.length, earlier: 0 }, sampling_seconds: (performance.now() - t0) / 1000,
    };
  }
  report.pool.earlier = c.pool.reduce((n, f) => n + readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).length, 0);
  writeFileAtomic(reportPath, JSON.stringify({ ...report, manifest }, null, 2) + '\n');
  const { policy: _p, rm_helpful: _h, rm_safety: _s, prompts: _pr, k: _k, select: _sel, temperature: _t, top_p: _tp, max_tokens: _m, pool: _pool, iteration: _it, sweep_temperatures: _st, sweep_prompts: _sp, ...train } = c;
  const sc: SftConfig = { ...train, init: c.policy!, data: [bestPath, ...c.pool], out_dir: join(c.out_dir, 'sft') };
  const r = await sft({ config: sc, resume: o.resume, overwrite: o.overwrite, stopAfter: o.stopAfter, signal: o.signal, backend: o.backend, onEvent: o.onEvent });
  return { report, sft: r };
}

export type { Message, WorldMeta };
