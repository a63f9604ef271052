/**
 * Recipe `ppo`: PPO against the two reward models (Llama 2 paper, section 3.2.3) — setup → explicit
 * loop → save, on the run-directory lifecycle of train/run.ts. The maths is src/rl/ (checked against
 * the PyTorch oracle key by key); this file is the loop around it.
 *
 *   const r = await ppo({ config: { ...PPO.defaults, policy: 'runs/rs/sft/latest', rm_helpful: …, rm_safety: …, prompts: ['p.jsonl'] } });
 *
 * Per step s: rollout_batch prompts (a seeded order over the prompt files, epoch after epoch); one
 * answer each from the current policy (generateBatch through chat/answer.ts, seeded by (seed, s)),
 * the EOS that ended it appended (so the policy learns where to stop); both reward models score the
 * answers → R_c (the safety gate); the rollout (rl/rollout.ts: logp_old and values from the policy
 * with its value head, logp_ref from the frozen reference π_0, −β·KL per token, the whitened
 * logit(R_c) on the last token, GAE, advantages whitened once over the batch); then ppo_epochs passes
 * over the batch in minibatches of `minibatch` rows, one AdamW step each (constant lr, clipping 1.0).
 * Every step logs reward, KL, clip fractions, losses, entropy and response length; every eval_every
 * steps the policy answers eval_prompts greedily and the chat world's gold checkers grade them next
 * to the proxy reward (GoldRecord lines in metrics.jsonl; proxy.svg), so reward hacking — proxy up,
 * gold down — shows. Two ablations: reward gold scores the rollouts with the gold checkers
 * themselves (goldRewards: the upper bound a perfect reward model gives), and critic_warmup_steps
 * trains the value head alone first (ppo-tape.ts criticOnly). Resume is bit-identical: prompts,
 * samples and minibatch order are pure functions of (seed, step), and the reference is reloaded
 * from `ref` (default: the initial policy).
 *
 * What it is not: the PPO maths (src/rl/), sampling (generate/batch.ts) or reward models.
 */
import { join } from 'node:path';
import type { LlamaConfig } from '../model/config.js';
import { Model } from '../model/forward.js';
import { loadModelFile } from '../formats/load.js';
import { answerDialogs } from '../chat/answer.js';
import { evaluateModel } from '../chat/evaluate.js';
import { combinedReward, scoreAnswers, toUnit, type RewardModels } from '../chat/reward-score.js';
import type { Message } from '../chat/format.js';
import { graderFor } from '../world/grade.js';
import type { WorldMeta } from '../world/types.js';
import { readChatPrompts, type ChatPrompt } from '../data/chat-data.js';
import { openModel } from '../open.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { Llama2Error, check } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { hashSeed, permutation, Rng } from '../util/rng.js';
import { defineConfig, key, runKeys, type ConfigOf } from '../train/config.js';
import { TRAINER_STATE_FORMAT, TRAINER_STATE_VERSION, saveCheckpoint, type TrainerState } from '../train/checkpoint.js';
import { lossCurveSvg, type GoldRecord, type LossPlot, type MetricsLog, type TrainRecord } from '../train/metrics.js';
import { cloneWeights } from '../train/params.js';
import { trainModel, type TrainModel } from '../train/model.js';
import { setupTraining } from '../train/setup.js';
import { baseSummary, openRun, resumePoint, threadsOf, type RecipeOptions, type RunStatus, type RunSummary } from '../train/run.js';
import { ensureValueHead, ppoMinibatchStep, ppoParams } from '../rl/ppo-tape.js';
import { buildRollout, type RolloutSample } from '../rl/rollout.js';

const SPEC = {
  policy: key.stringOrNull(null, 'the model PPO starts from (the RS or SFT model) (required)'),
  ref: key.stringOrNull(null, 'the frozen reference π_0 of the KL penalty (default: the policy as given)'),
  rm_helpful: key.stringOrNull(null, 'the helpfulness reward model (required unless reward is gold)'),
  rm_safety: key.stringOrNull(null, 'the safety reward model (required unless reward is gold)'),
  reward: key.oneOf('models', ['models', 'gold'] as const, 'what scores the rollouts: models (R_c of the two reward models) or gold (the chat world\'s checkers: the upper bound a perfect reward model gives; chat-world prompts only)'),
  prompts: key.list([], 'prompt JSONL files {"messages": [..., user turn], "meta"?} (required)'),
  eval_prompts: key.stringOrNull(null, 'chat-world prompts the gold evaluation uses (default: none)'),
  eval_n: key.int(200, 'prompts of eval_prompts graded at each gold evaluation', { min: 1, resumable: true }),
  steps: key.int(100, 'PPO steps (rollout batches)', { min: 1, resumable: true }),
  rollout_batch: key.int(64, 'prompts per rollout (the paper: 512; ratios kept, scaled down)', { min: 2 }),
  minibatch: key.int(8, 'rows per optimizer step (the paper: 64 of 512)', { min: 1 }),
  critic_warmup_steps: key.int(0, 'first steps that train only the value head (the policy stays π_0 and keeps sampling), so the advantages start from a per-prompt baseline', { min: 0 }),
  ppo_epochs: key.int(1, 'passes over each rollout batch (the paper: one gradient step per minibatch)', { min: 1 }),
  beta: key.number(0.01, 'KL penalty β (the paper: 0.01; 0 turns it off, for the reward-hacking ablation)', { min: 0 }),
  clip: key.number(0.2, 'PPO clip ε of the ratio', { min: 0, above: true }),
  clip_value: key.number(0.2, 'value clip ε', { min: 0, above: true }),
  vf_coef: key.number(0.1, 'value-loss coefficient', { min: 0 }),
  gamma: key.number(1, 'GAE γ', { min: 0, max: 1 }),
  lam: key.number(0.95, 'GAE λ', { min: 0, max: 1 }),
  temperature: key.number(1, 'sampling temperature of the rollouts', { min: 0 }),
  max_tokens: key.int(48, 'most tokens per answer', { min: 1 }),
  lr: key.number(1e-5, 'constant learning rate (the paper: 1e-6 at 7B-13B; ~1M-parameter models need ~10× more)', { min: 0, above: true }),
  beta1: key.number(0.9, 'AdamW β1', { min: 0, max: 1 }),
  beta2: key.number(0.95, 'AdamW β2', { min: 0, max: 1 }),
  eps: key.number(1e-5, 'AdamW epsilon', { min: 0, above: true }),
  weight_decay: key.number(0.1, 'AdamW weight decay (matrices and the value head)', { min: 0 }),
  grad_clip: key.number(1.0, 'global gradient-norm clip', { min: 0, above: true }),
  tokenizer: key.stringOrNull(null, "tokenizer file (default: the policy's)"),
  ...runKeys({ out_dir: 'runs/ppo', eval_every: 10, ckpt_every: 10 }),
};

export const PPO = defineConfig('rlhf ppo', SPEC, (c, where) => {
  if (c.minibatch > c.rollout_batch) throw new Llama2Error(`${where}: minibatch ${c.minibatch} exceeds rollout_batch ${c.rollout_batch}`);
});
export type PpoConfig = ConfigOf<typeof SPEC>;

export interface PpoSummary extends RunSummary {
  final: { reward: number; kl: number; response_length: number } | null;
  gold: GoldRecord[];
  sampling_seconds: number;
}

export interface PpoResult {
  status: RunStatus;
  step: number;
  checkpoint: string | null;
  summary: PpoSummary;
  metrics: MetricsLog;
  model: TrainModel;
}

/** What a PPO step logs beside the TrainRecord fields. */
interface PpoStepRecord extends TrainRecord {
  reward: number;
  kl: number;
  policy_loss: number;
  value_loss: number;
  clipfrac: number;
  vf_clipfrac: number;
  entropy: number;
  response_length: number;
  sampling_s: number;
}

/**
 * Rewards from the chat world's gold checkers instead of reward models (reward: gold): R_helpful is
 * the gold score, R_safety the gold score on unsafe prompts and 0/1 (violation or not) elsewhere,
 * both mapped to [0.05, 0.95] so logit(R_c) stays within ±2.9 like a reward model's (a gold 0 would
 * otherwise be logit(1e-6) = −13.8 and swamp the whitening).
 */
export function goldRewards(meta: WorldMeta, dialog: readonly Message[], answer: string): { rSafety: number; rHelpful: number } {
  const g = graderFor(meta)(answer, dialog);
  const squash = (x: number): number => 0.05 + 0.9 * Math.min(1, Math.max(0, x));
  return { rHelpful: squash(g.score), rSafety: squash(meta.category === 'unsafe' ? g.score : g.violation ? 0 : 1) };
}

const isSafety = (p: ChatPrompt): boolean => p.world?.category === 'unsafe' || p.meta?.['is_safety_prompt'] === true;

export async function ppo(o: RecipeOptions<PpoConfig>): Promise<PpoResult> {
  const c = PPO.check(o.config, 'rlhf ppo config');
  const required = c.reward === 'models' ? (['policy', 'rm_helpful', 'rm_safety'] as const) : (['policy'] as const);
  for (const k of required) if (c[k] === null) throw new Llama2Error(`rlhf ppo: ${k} is required (--${k.replace('_', '-')})`);
  if (c.prompts.length === 0) throw new Llama2Error('rlhf ppo: prompts is required (--prompts FILE[,FILE…])');
  const run = openRun({ outDir: c.out_dir, stage: 'ppo', resume: o.resume, overwrite: o.overwrite, stopAfter: o.stopAfter, signal: o.signal, onEvent: o.onEvent });
  try {
    // ---- setup: policy (+ value head), frozen reference, reward models, prompts
    const init = loadModelFile(c.policy!, { tokenizer: c.tokenizer ?? undefined });
    if (!init.vocab) throw new Llama2Error(`rlhf ppo: ${c.policy} has no tokenizer; pass --tokenizer`);
    const vocab = init.vocab;
    const tok = new Tokenizer(vocab);
    const cfg: LlamaConfig = init.config;
    const prompts = c.prompts.flatMap((f) => readChatPrompts(f));
    const evalPrompts = c.eval_prompts ? readChatPrompts(c.eval_prompts).slice(0, c.eval_n) : [];
    check(evalPrompts.every((p) => p.world), `rlhf ppo: eval_prompts ${c.eval_prompts} must be chat-world prompts (their meta has the gold checker)`);
    const ck = resumePoint(run, PPO, c, c.steps, { prompts: prompts.length });
    const weights = ck ? ck.weights : cloneWeights(init.weights);
    const head = ensureValueHead(weights, cfg, hashSeed(c.seed, 0x7668));
    const t = setupTraining(run, {
      config: cfg, weights, ck, threads: c.threads, backend: o.backend, optim: c, params: (m) => ppoParams(m, head),
    });
    const { model, be, opt, tape, params, prior, startStep } = t;
    const refLoaded = c.ref ? loadModelFile(c.ref) : init;
    const reference = trainModel(cfg, cloneWeights(refLoaded.weights), { frozen: true });
    const policyInf = new Model(cfg, weights, be); // the same memory as the trained weights
    if (c.reward === 'gold') check(prompts.every((p) => p.world), `rlhf ppo: reward gold needs chat-world prompts (their meta has the gold checker); ${c.prompts.join(', ')} has lines without`);
    const rms: RewardModels | null = c.reward === 'models' ? { helpful: openModel(c.rm_helpful!, { backend: be }).model, safety: openModel(c.rm_safety!, { backend: be }).model } : null;
    /** the rollout rewards on the (0, 1) scale: the reward models', or gold's (see goldRewards) */
    const rewardsOf = (items: { dialog: readonly Message[]; answer: string; p: ChatPrompt }[]): { rSafety: number; rHelpful: number }[] =>
      rms ? scoreAnswers(rms, tok, items.map((x) => ({ dialog: x.dialog, answer: x.answer, safetyPrompt: isSafety(x.p) }))).map((r) => ({ rSafety: toUnit(r.safety), rHelpful: toUnit(r.helpful) }))
        : items.map((x) => goldRewards(x.p.world!, x.dialog, x.answer));
    run.emit({ kind: 'notice', message: `ppo: ${prompts.length} prompts, ${c.rollout_batch} per rollout in minibatches of ${c.minibatch}, β ${c.beta}, lr ${c.lr}, rewards from ${c.reward === 'gold' ? 'the gold checkers' : 'the reward models'}${c.critic_warmup_steps ? `, value head alone for the first ${c.critic_warmup_steps} steps` : ''}${evalPrompts.length ? `; gold evaluation on ${evalPrompts.length} prompts every ${c.eval_every} steps` : ''}` });
    run.emit({ kind: 'start', stage: 'ppo', step: startStep, steps: c.steps, resumedFrom: run.latest?.dir ?? null, config: cfg, params, backend: be.name, threads: threadsOf(be), tokensPerStep: 0, about: `PPO from ${c.policy}` });

    const orders = new Map<number, Uint32Array>();
    const promptAt = (g: number): ChatPrompt => {
      const e = Math.floor(g / prompts.length);
      if (!orders.has(e)) orders.set(e, permutation(prompts.length, new Rng(hashSeed(c.seed, 0x70, e))));
      return prompts[orders.get(e)![g % prompts.length]!]!;
    };
    let samplingSeconds = (prior?.data['sampling_seconds'] as number | undefined) ?? 0;
    let last: PpoStepRecord | null = null;
    const gold = async (step: number): Promise<void> => {
      if (evalPrompts.length === 0) return;
      const r = await evaluateModel(policyInf, tok, evalPrompts.map((p) => ({ messages: p.messages, meta: p.world! })), { maxTokens: c.max_tokens });
      const rw = rewardsOf(r.graded.map((g, i) => ({ dialog: g.messages.slice(0, -1), answer: g.messages[g.messages.length - 1]!.content, p: evalPrompts[i]! })));
      const rc = rw.map((x, i) => combinedReward({ helpful: x.rHelpful, safety: x.rSafety, safetyPrompt: isSafety(evalPrompts[i]!) }));
      const rec: GoldRecord = {
        type: 'gold', step, helpfulness: r.report.helpfulness, violation_rate: r.report.violation_rate, false_refusal_rate: r.report.false_refusal_rate,
        reward: rc.reduce((s, x) => s + x, 0) / Math.max(1, rc.length), n: r.graded.length,
      };
      run.metrics.append(rec);
      run.emit({ kind: 'notice', message: `gold @ step ${step}: helpfulness ${rec.helpfulness.toFixed(3)}, violations ${(rec.violation_rate * 100).toFixed(1)}%, false refusals ${(rec.false_refusal_rate * 100).toFixed(1)}%; proxy reward ${rec.reward.toFixed(3)}` });
    };
    const plot = (): LossPlot => ({
      title: 'PPO: proxy reward (R_c of the rollouts) vs gold helpfulness', yLabel: 'reward / gold score',
      train: run.metrics.train().map((r) => ({ x: r.step, y: (r as PpoStepRecord).reward })),
      val: run.metrics.golds().map((r) => ({ x: r.step, y: r.helpfulness })),
    });
    let checkpoint: string | null = run.latest?.dir ?? null;
    let status: RunStatus = 'completed';
    let done = startStep;
    const save = (step: number): void => {
      const state: TrainerState = {
        format: TRAINER_STATE_FORMAT, version: TRAINER_STATE_VERSION, stage: 'ppo', step, tokens: run.clock.tokens, train_seconds: run.clock.trainSeconds,
        wall_seconds: run.clock.wall(), config: c, model_config: cfg, tied: weights.output === weights.tok_embeddings,
        data: { seed: c.seed, next_batch: step, rollout_batch: c.rollout_batch, prompts: prompts.length, sampling_seconds: samplingSeconds },
        rng: { init_seed: c.seed, data_seed: c.seed, draws_after_init: 0 },
        lr: c.lr, optimizer_step: opt.t, last_loss: last?.loss ?? prior?.last_loss ?? null, last_val_loss: null, saved_at: new Date().toISOString(),
      };
      checkpoint = saveCheckpoint(run.out, { config: cfg, weights, vocab, optimizer: opt.optimizerState(), state, keep: c.keep_checkpoints });
      writeFileAtomic(join(run.out, 'proxy.svg'), lossCurveSvg(plot()));
      run.emit({ kind: 'checkpoint', dir: checkpoint, step });
    };
    if (startStep === 0) await gold(0);

    // ---- the loop
    for (let s = startStep; s < c.steps; s++) {
      const ts = performance.now();
      const ps = Array.from({ length: c.rollout_batch }, (_, i) => promptAt(s * c.rollout_batch + i));
      const answers = await answerDialogs(policyInf, tok, ps.map((p) => p.messages), { maxTokens: c.max_tokens, temperature: c.temperature, topP: 1, seed: hashSeed(c.seed, s) });
      const sampled = (performance.now() - ts) / 1000;
      samplingSeconds += sampled;
      const rw = rewardsOf(ps.map((p, i) => ({ dialog: p.messages, answer: answers[i]![0]!.text, p })));
      const samples: RolloutSample[] = ps.map((p, i) => {
        const a = answers[i]![0]!;
        return {
          prompt: a.prompt, response: a.finishReason === 'stop' ? [...a.ids, tok.eosId] : a.ids.length ? a.ids : [tok.eosId],
          ...rw[i]!, safetyPrompt: isSafety(p),
        };
      });
      const batch = buildRollout(model, head, samples, { beta: c.beta, gamma: c.gamma, lam: c.lam, backend: be, reference });
      const agg = { total: 0, policy: 0, value: 0, clipfrac: 0, vfClipfrac: 0, entropy: 0, gradNorm: 0, n: 0 };
      for (let e = 0; e < c.ppo_epochs; e++) {
        const order = permutation(c.rollout_batch, new Rng(hashSeed(c.seed, s, e)));
        for (let m0 = 0; m0 < c.rollout_batch; m0 += c.minibatch) {
          const rows = Array.from(order.subarray(m0, Math.min(m0 + c.minibatch, c.rollout_batch)));
          const st = ppoMinibatchStep(tape, model, head, opt, batch, rows, { clipEps: c.clip, clipEpsV: c.clip_value, vfCoef: c.vf_coef, maxGradNorm: c.grad_clip, lr: c.lr, criticOnly: s < c.critic_warmup_steps });
          agg.total += st.totalLoss; agg.policy += st.policyLoss; agg.value += st.valueLoss; agg.clipfrac += st.clipfrac;
          agg.vfClipfrac += st.vfClipfrac; agg.entropy += st.entropy; agg.gradNorm += st.gradNorm; agg.n++;
        }
      }
      const dt = (performance.now() - ts) / 1000;
      const respTokens = samples.reduce((n, x) => n + x.response.length, 0);
      run.clock.addStep(respTokens, dt);
      last = {
        type: 'train', step: s + 1, loss: agg.total / agg.n, lr: c.lr, grad_norm: agg.gradNorm / agg.n, tokens: respTokens, tokens_per_s: respTokens / dt,
        elapsed_s: run.clock.wall() - run.clock.priorWall, reward: batch.stats.meanRc, kl: batch.stats.meanKl, policy_loss: agg.policy / agg.n,
        value_loss: agg.value / agg.n, clipfrac: agg.clipfrac / agg.n, vf_clipfrac: agg.vfClipfrac / agg.n, entropy: batch.stats.meanEntropy,
        response_length: batch.stats.meanResponseLength, sampling_s: sampled,
      };
      if (!Number.isFinite(last.loss)) throw new Llama2Error(`ppo diverged at step ${s + 1}: loss is ${last.loss}; lower lr (now ${c.lr})`);
      done = s + 1;
      const pending: number[] = [];
      const stop = await run.endStep(last, { steps: c.steps, startStep, evalEvery: c.eval_every, ckptEvery: c.ckpt_every, evaluate: (n) => pending.push(n), save });
      for (const n of pending) await gold(n);
      if (stop) {
        status = stop;
        break;
      }
    }

    // ---- the summary
    const summary = run.finish<PpoSummary>({
      ...baseSummary(run, { status, steps: done, params, be, config: cfg, seqLen: cfg.max_seq_len, lastLoss: last?.loss ?? null, lastVal: null, checkpoint, accounting: c }),
      final: last ? { reward: last.reward, kl: last.kl, response_length: last.response_length } : null,
      gold: run.metrics.golds(), sampling_seconds: samplingSeconds,
    });
    writeFileAtomic(join(run.out, 'proxy.svg'), lossCurveSvg(plot()));
    return { status, step: done, checkpoint, summary, metrics: run.metrics, model };
  } finally {
    run.release();
  }
}
