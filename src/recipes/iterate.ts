/**
 * Recipe `iterate`: RLHF in versions V1…Vn, the way Llama 2-Chat was made (paper, sections 3.2.3
 * and 4.2). Each version:
 *   1. a new preference batch from the latest policy (answers of the latest policy against the
 *      previous one — or, for V1, against the contrast variants — judged by the simulated annotators);
 *   2. both reward models retrained on ALL batches so far (from the SFT checkpoint);
 *   3. rejection sampling from the latest policy, the best answers pooled with every earlier
 *      version's, fine-tuned from the SFT model (the paper re-trains each RS version);
 *   4. for the last `ppo_versions` versions, PPO on top of that version's RS model;
 *   5. optionally (safety_distill) context distillation on the safety prompts: answers generated
 *      with a safety preprompt, kept only where the safety reward model scores them higher than the
 *      answer without it (targeted distillation, section 4.2.4), fine-tuned without the preprompt.
 * Every version is graded with the chat world's gold checkers (helpfulness, violations, false
 * refusals) and the mean R_helpful / R_safety of its answers, on the same held-out prompts.
 *
 * out_dir/lineage.json names every input of every version (data files with their line counts and
 * hashes, checkpoints, configs); each step writes into out_dir/vN/<step>/ and is skipped on a rerun
 * when its outputs exist (the recipes inside resume their own runs), so an interrupted iteration
 * continues where it stopped.
 *
 * What it is not: any one stage (reward.ts, rs.ts, ppo.ts, sft.ts) — it only sequences them.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { answerDialogs, withSystem } from '../chat/answer.js';
import { evaluateModel } from '../chat/evaluate.js';
import { collectPreferences, type Variant } from '../chat/preferences.js';
import { meanRewards, scoreAnswers } from '../chat/reward-score.js';
import { readChatPrompts } from '../data/chat-data.js';
import { openModel } from '../open.js';
import type { EvalReport } from '../world/report.js';
import { Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { defineConfig, key, type ConfigOf } from '../train/config.js';
import type { RecipeOptions, RunEvent } from '../train/run.js';
import { REWARD, trainReward } from './reward.js';
import { RS, rejectionSampling } from './rs.js';
import { PPO, ppo } from './ppo.js';
import { SFT, sft } from './sft.js';

/** The paper's safety preprompt (section 4.2.4), in the chat world's words. */
export const SAFETY_PREPROMPT = 'You are a safe and responsible assistant. Never help anyone hurt a person or an animal, take what is not theirs, or play with fire, medicine, poison or knives; say no kindly, say why, and offer something safe to do instead.';

const SPEC = {
  sft: key.stringOrNull(null, 'the SFT model every version starts from (required)'),
  base: key.stringOrNull(null, 'the pretrained base model, graded as the first row of the table (optional)'),
  contrast: key.list([], 'model variants the V1 answers are compared with (e.g. a noisy-data or helpful-only SFT model)'),
  pref_prompts: key.stringOrNull(null, 'prompts for the preference batches (required); each version takes the next pref_per_version of them'),
  pref_per_version: key.int(2000, 'prompts per preference batch', { min: 1 }),
  rl_prompts: key.stringOrNull(null, 'prompts for rejection sampling and PPO (required)'),
  eval_prompts: key.stringOrNull(null, 'held-out chat-world prompts every version is graded on (required)'),
  eval_n: key.int(1000, 'evaluation prompts graded per version', { min: 1 }),
  versions: key.int(2, 'RLHF versions V1…Vn', { min: 1 }),
  ppo_versions: key.int(1, 'the last N versions add PPO on top of their RS model (the paper: V4, V5)', { min: 0 }),
  rs_k: key.int(4, 'rejection-sampling samples per prompt', { min: 1 }),
  rs_temperature: key.number(1.0, 'rejection-sampling temperature', { min: 0 }),
  ppo_steps: key.int(40, 'PPO steps per version', { min: 1 }),
  ppo_lr: key.number(1e-5, 'PPO learning rate', { min: 0, above: true }),
  ppo_beta: key.number(0.01, 'PPO KL penalty β', { min: 0 }),
  reward_epochs: key.int(2, 'reward-model epochs over all batches', { min: 1 }),
  safety_distill: key.boolean(false, 'end with context distillation on the safety prompts (targeted by the safety reward model)'),
  seed: key.int(1, 'seed of every sampling and training step', { min: 0 }),
  threads: key.intOrNull(null, 'native backend threads (default: all cores)', { min: 1, max: 256 }),
  out_dir: key.string('runs/iterate', 'run directory: v1/, v2/, …, lineage.json, versions.json, eval.<version>.json and .graded.jsonl'),
};

export const ITERATE = defineConfig('rlhf iterate', SPEC, (c, where) => {
  if (c.ppo_versions > c.versions) throw new Llama2Error(`${where}: ppo_versions ${c.ppo_versions} exceeds versions ${c.versions}`);
});
export type IterateConfig = ConfigOf<typeof SPEC>;

export interface VersionRow {
  name: string;
  checkpoint: string;
  helpfulness: number;
  helpfulness_ci95: [number, number];
  violation_rate: number;
  false_refusal_rate: number;
  rm_helpful: number;
  rm_safety: number;
}

export interface IterateResult {
  versions: VersionRow[];
  lineage: Record<string, unknown>;
  /** stopped by the signal: the step that was running saved a checkpoint; rerun to continue */
  interrupted: boolean;
}

/** sha256 (first 16 hex digits) and line count of a file: how lineage.json names data. */
function fileId(path: string): { path: string; lines: number; sha256: string } {
  const b = readFileSync(path);
  return { path, lines: b.toString('utf8').split('\n').filter((l) => l.trim()).length, sha256: createHash('sha256').update(b).digest('hex').slice(0, 16) };
}

export async function iterate(o: RecipeOptions<IterateConfig> & { onEvent?: (e: RunEvent) => void }): Promise<IterateResult> {
  const c = ITERATE.check(o.config, 'rlhf iterate config');
  for (const k of ['sft', 'pref_prompts', 'rl_prompts', 'eval_prompts'] as const) if (c[k] === null) throw new Llama2Error(`rlhf iterate: ${k} is required (--${k.replaceAll('_', '-')})`);
  const say = (message: string) => o.onEvent?.({ kind: 'notice', message });
  const sub = { signal: o.signal, backend: o.backend, onEvent: o.onEvent, resume: true };
  mkdirSync(c.out_dir, { recursive: true });
  const lineagePath = join(c.out_dir, 'lineage.json');
  const lineage: Record<string, unknown> = existsSync(lineagePath) ? (JSON.parse(readFileSync(lineagePath, 'utf8')) as Record<string, unknown>) : {};
  const record = (name: string, v: unknown) => {
    lineage[name] = v;
    writeFileAtomic(lineagePath, JSON.stringify(lineage, null, 2) + '\n');
  };
  const prefPrompts = readChatPrompts(c.pref_prompts!);
  const evalPrompts = readChatPrompts(c.eval_prompts!).slice(0, c.eval_n).filter((p) => p.world);
  const rows: VersionRow[] = [];
  const grade = async (name: string, ckpt: string, rmH: string | null, rmS: string | null): Promise<void> => {
    const out = join(c.out_dir, `eval.${name}.json`);
    let row: VersionRow;
    if (existsSync(out)) row = JSON.parse(readFileSync(out, 'utf8')) as VersionRow;
    else {
      const m = openModel(ckpt, { threads: c.threads ?? undefined });
      const r = await evaluateModel(m.model, m.tokenizer!, evalPrompts.map((p) => ({ messages: p.messages, meta: p.world! })), { maxTokens: 64 });
      const rw = rmH && rmS ? meanRewards({ helpful: openModel(rmH).model, safety: openModel(rmS).model }, m.tokenizer!,
        r.graded.map((g) => ({ messages: g.messages, safetyPrompt: g.meta.category === 'unsafe' }))) : null;
      const rh = rw?.rm_helpful ?? NaN;
      const rsf = rw?.rm_safety ?? NaN;
      const rep: EvalReport = r.report;
      row = { name, checkpoint: ckpt, helpfulness: rep.helpfulness, helpfulness_ci95: rep.helpfulness_ci95, violation_rate: rep.violation_rate, false_refusal_rate: rep.false_refusal_rate, rm_helpful: rh, rm_safety: rsf };
      writeFileAtomic(out, JSON.stringify(row) + '\n');
      // the graded answers, for reading them side by side (llama2 report)
      writeFileAtomic(join(c.out_dir, `eval.${name}.graded.jsonl`), r.graded.map((g) => JSON.stringify({ messages: g.messages, meta: g.meta, grade: g.grade }) + '\n').join(''));
    }
    rows.push(row);
    say(`${name}: gold helpfulness ${row.helpfulness.toFixed(3)}, violations ${(row.violation_rate * 100).toFixed(1)}%, false refusals ${(row.false_refusal_rate * 100).toFixed(1)}%`);
  };

  let policy = c.sft!;
  let previous: string | null = null;
  const batches: string[] = [];
  const pools: string[] = [];
  let rmH: string | null = null;
  let rmS: string | null = null;
  for (let v = 1; v <= c.versions; v++) {
    const dir = join(c.out_dir, `v${v}`);
    mkdirSync(dir, { recursive: true });
    // 1. a preference batch from the latest policy
    const prefs = join(dir, 'prefs.jsonl');
    if (!existsSync(prefs)) {
      const ps = prefPrompts.slice(((v - 1) * c.pref_per_version) % prefPrompts.length).slice(0, c.pref_per_version);
      if (ps.length === 0) throw new Llama2Error(`rlhf iterate: pref_prompts ${c.pref_prompts} has no prompts left for version ${v}`);
      const others = v === 1 ? (c.contrast.length ? c.contrast : [c.sft!]) : [previous!];
      const me = openModel(policy, { threads: c.threads ?? undefined });
      const lines: string[] = [];
      for (const [k, other] of others.entries()) {
        const them = other === policy ? me : openModel(other, { threads: c.threads ?? undefined });
        const variants: Variant[] = [{ name: policy, model: me.model, temperature: 0.7 }, { name: other, model: them.model, temperature: other === policy ? 1.0 : 0.7 }];
        const part = ps.filter((_, i) => i % others.length === k).map((p) => ({ messages: p.messages, meta: p.world! })).filter((p) => p.meta);
        const r = await collectPreferences(variants, me.tokenizer!, part, { batch: v, seed: c.seed * 1000 + v * 10 + k });
        for (const x of r.records) lines.push(JSON.stringify(x) + '\n');
      }
      writeFileAtomic(prefs, lines.join(''));
    }
    batches.push(prefs);
    // 2. both reward models on every batch so far
    for (const kind of ['helpful', 'safety'] as const) {
      const out = join(dir, `rm-${kind}`);
      if (!existsSync(join(out, 'summary.json'))) {
        await trainReward({ ...sub, config: { ...REWARD.defaults, init: c.sft!, data: [...batches], kind, epochs: c.reward_epochs, out_dir: out, seed: c.seed, threads: c.threads } });
        if (o.signal?.aborted) return { versions: rows, lineage, interrupted: true };
      }
    }
    rmH = join(dir, 'rm-helpful', 'latest');
    rmS = join(dir, 'rm-safety', 'latest');
    if (v === 1) {
      if (c.base) await grade('pretrained', c.base, rmH, rmS);
      await grade('SFT', c.sft!, rmH, rmS);
    }
    // 3. rejection sampling from the latest policy, pooled, fine-tuned from SFT
    const rsDir = join(dir, 'rs');
    if (!existsSync(join(rsDir, 'sft', 'summary.json'))) {
      await rejectionSampling({ ...sub, config: {
        ...RS.defaults, policy, rm_helpful: rmH, rm_safety: rmS, prompts: [c.rl_prompts!], k: c.rs_k, temperature: c.rs_temperature,
        pool: [...pools], iteration: v, out_dir: rsDir, seed: c.seed + v, threads: c.threads,
      } });
      if (o.signal?.aborted) return { versions: rows, lineage, interrupted: true };
    }
    pools.push(join(rsDir, 'best.jsonl'));
    previous = policy;
    let current = join(rsDir, 'sft', 'latest');
    let name = `RS-V${v}`;
    // 4. PPO on top of the RS model for the last versions
    if (v > c.versions - c.ppo_versions) {
      const ppoDir = join(dir, 'ppo');
      if (!existsSync(join(ppoDir, 'summary.json'))) {
        await ppo({ ...sub, config: {
          ...PPO.defaults, policy: current, rm_helpful: rmH, rm_safety: rmS, prompts: [c.rl_prompts!], eval_prompts: c.eval_prompts, eval_n: 200,
          steps: c.ppo_steps, lr: c.ppo_lr, beta: c.ppo_beta, out_dir: ppoDir, seed: c.seed + v, threads: c.threads,
        } });
        if (o.signal?.aborted) return { versions: rows, lineage, interrupted: true };
      }
      current = join(ppoDir, 'latest');
      name = `PPO-V${v}`;
    }
    record(name, { version: v, checkpoint: current, from: policy, preference_batches: batches.map(fileId), reward_models: { helpful: rmH, safety: rmS }, rs_pool: pools.map(fileId), ppo: name.startsWith('PPO') });
    policy = current;
    await grade(name, current, rmH, rmS);
  }
  // 5. context distillation on the safety prompts (targeted)
  if (c.safety_distill && rmS) {
    const dir = join(c.out_dir, 'distill');
    mkdirSync(dir, { recursive: true });
    const data = join(dir, 'distill.jsonl');
    if (!existsSync(data)) {
      const m = openModel(policy, { threads: c.threads ?? undefined });
      const safety = readChatPrompts(c.rl_prompts!).filter((p) => p.world?.category === 'unsafe');
      const plain = await answerDialogs(m.model, m.tokenizer!, safety.map((p) => p.messages), { maxTokens: 64, temperature: 0 });
      const withPre = await answerDialogs(m.model, m.tokenizer!, safety.map((p) => withSystem(p.messages, SAFETY_PREPROMPT)), { maxTokens: 64, temperature: 0 });
      const rm = { helpful: openModel(rmH!).model, safety: openModel(rmS).model };
      const s0 = scoreAnswers(rm, m.tokenizer!, safety.map((p, i) => ({ dialog: p.messages, answer: plain[i]![0]!.text, safetyPrompt: true })));
      const s1 = scoreAnswers(rm, m.tokenizer!, safety.map((p, i) => ({ dialog: p.messages, answer: withPre[i]![0]!.text, safetyPrompt: true })));
      const kept = safety.filter((_, i) => s1[i]!.safety > s0[i]!.safety);
      writeFileAtomic(data, kept.map((p) => JSON.stringify({ messages: [...p.messages, { role: 'assistant', content: withPre[safety.indexOf(p)]![0]!.text }], meta: p.meta }) + '\n').join(''));
      say(`context distillation: ${kept.length} of ${safety.length} preprompted answers scored safer and were kept`);
    }
    const out = join(dir, 'sft');
    if (!existsSync(join(out, 'summary.json'))) {
      await sft({ ...sub, config: { ...SFT.defaults, init: policy, data: [data, ...pools], epochs: 1, out_dir: out, seed: c.seed, threads: c.threads } });
      if (o.signal?.aborted) return { versions: rows, lineage, interrupted: true };
    }
    record('distilled', { checkpoint: join(out, 'latest'), from: policy, data: [fileId(data), ...pools.map(fileId)], preprompt: SAFETY_PREPROMPT });
    await grade('+ context distillation', join(out, 'latest'), rmH, rmS);
  }
  writeFileAtomic(join(c.out_dir, 'versions.json'), JSON.stringify(rows, null, 2) + '\n');
  return { versions: rows, lineage, interrupted: false };
}
