/**
 * `llama2 pipeline`: the whole Llama-2 recipe in one run, every stage through its own recipe —
 *
 *   world     the chat world (src/world/): SFT dialogs, preference / RL / test prompts
 *   pretrain  the base model on stories + the world's documents (PRETRAIN)
 *   sft       supervised fine-tuning on the world's dialogs (SFT)
 *   gatt      Ghost Attention data sampled from the SFT model, fine-tuned on; Table 30 with and without
 *   rlhf      versions V1…Vn: preference batch, both reward models, rejection sampling, PPO for the
 *             last versions, context distillation, every version graded by gold (ITERATE)
 *   rewards   the last reward models on held-out preference pairs (Tables 7–8, calibration)
 *   report    DIR/report.html (src/report/): the paper's tables and figures for this run
 *
 * Each stage writes into DIR/<stage>/ and ends with DIR/<stage>/manifest.json: its inputs (the
 * config keys it reads, the digests of the stages it stands on, input files with sha256), its
 * outputs, wall time, energy and CO2. A rerun skips a stage whose manifest matches its inputs,
 * resumes one that was interrupted (the recipes continue from their checkpoints), and redoes one
 * whose inputs changed. DIR/pipeline.json is the summary (the keys of each stage's own --json).
 *
 * What it is not: a scheduler or a place for stage logic — that lives in the recipes it calls.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig, key, type ConfigOf } from '../train/config.js';
import { PRETRAIN, pretrain } from './pretrain.js';
import { SFT, sft } from './sft.js';
import { ITERATE, iterate, type VersionRow } from './iterate.js';
import { writeChatWorld } from '../world/synth.js';
import { buildGattData, evalGatt } from '../chat/gatt.js';
import { collectPreferences } from '../chat/preferences.js';
import { evalRewardModel, type RewardEvalReport } from '../chat/reward-eval.js';
import { readChatPrompts } from '../data/chat-data.js';
import { LEVELS, parsePreference } from '../data/preferences.js';
import { openModel } from '../open.js';
import type { RunEvent } from '../train/run.js';
import { writeFileAtomic } from '../util/fs.js';
import { buildReport } from '../report/report.js';
import { Llama2Error } from '../util/errors.js';

const SPEC = {
  seed: key.int(1, 'seed of the chat world and of every stage', { min: 0 }),
  // the chat world
  sft_dialogs: key.int(6000, 'SFT dialogs in the chat world', { min: 1 }),
  pref_prompts: key.int(2000, 'prompts for preference batches (split evenly over the versions)', { min: 1 }),
  rl_prompts: key.int(1000, 'prompts for rejection sampling and PPO', { min: 1 }),
  test_prompts: key.int(1000, 'held-out prompts every model is graded on', { min: 1 }),
  system_share: key.number(0.4, 'share of world lines with a system prompt (half of them GAtt instructions)', { min: 0, max: 1 }),
  // pretraining
  pretrain_steps: key.int(2500, 'pretraining steps', { min: 1 }),
  dim: key.int(128, 'model width', { min: 8 }),
  n_layers: key.int(4, 'transformer layers', { min: 1 }),
  vocab_size: key.int(1024, 'tokenizer pieces (trained on the corpus)', { min: 300 }),
  seq_len: key.int(1024, 'context length', { min: 32 }),
  stories_count: key.int(10000, 'stories in the pretraining corpus', { min: 1 }),
  world_docs: key.int(24000, "chat-world documents mixed into the pretraining corpus", { min: 0 }),
  // SFT and Ghost Attention
  sft_epochs: key.int(1, 'SFT epochs', { min: 1 }),
  gatt_dialogs: key.int(800, 'Ghost Attention training dialogs', { min: 1 }),
  gatt_eval_dialogs: key.int(100, 'dialogs of the Table-30 evaluation (20 turns each)', { min: 1 }),
  // RLHF
  versions: key.int(2, 'RLHF versions V1…Vn', { min: 1 }),
  ppo_versions: key.int(1, 'the last N versions add PPO', { min: 0 }),
  rs_k: key.int(4, 'rejection-sampling samples per prompt', { min: 1 }),
  ppo_steps: key.int(40, 'PPO steps per PPO version', { min: 1 }),
  reward_epochs: key.int(2, 'reward-model epochs over all batches', { min: 1 }),
  reward_eval_pairs: key.int(1000, 'held-out prompts whose answer pairs test the last reward models', { min: 1 }),
  threads: key.intOrNull(null, 'native backend threads (default: all cores)', { min: 1, max: 256 }),
  cpu_watts: key.numberOrNull(null, 'CPU power for energy (default 10 W × threads)', { min: 0 }),
  carbon_intensity: key.number(0.4235, 'kgCO2eq per kWh (Llama 2 paper, Table 2)', { min: 0 }),
  out_dir: key.string('runs/pipeline', 'run directory: one folder per stage, pipeline.json'),
};

export const PIPELINE = defineConfig('pipeline', SPEC, (c, where) => {
  if (c.ppo_versions > c.versions) throw new Llama2Error(`${where}: ppo_versions ${c.ppo_versions} exceeds versions ${c.versions}`);
});
export type PipelineConfig = ConfigOf<typeof SPEC>;

/** --quick: the whole recipe on a small model in minutes, the same direction of every effect. */
export const QUICK_PIPELINE: Partial<PipelineConfig> = {
  sft_dialogs: 2000, sft_epochs: 3, pref_prompts: 600, rl_prompts: 300, test_prompts: 400, pretrain_steps: 500, seq_len: 512,
  stories_count: 3000, world_docs: 6000, gatt_dialogs: 200, gatt_eval_dialogs: 40, versions: 2, ppo_versions: 1,
  rs_k: 4, ppo_steps: 15, reward_epochs: 1, reward_eval_pairs: 300,
};

export interface StageRecord {
  name: string;
  dir: string;
  digest: string;
  wall_s: number;
  kwh: number;
  kg_co2eq: number;
  skipped: boolean;
}

export interface RewardModelRow { accuracy: number; by_level: Record<string, { n: number; accuracy: number | null }> }

export interface PipelineSummary {
  seed: number;
  wall_s: number;
  versions: { name: string; helpfulness: number; helpfulness_ci95: [number, number]; violation_rate: number; false_refusal_rate: number; rm_helpful: number; rm_safety: number }[];
  reward_models: { helpful: RewardModelRow; safety: RewardModelRow };
  gatt: { with: Record<string, number>; without: Record<string, number> };
  /** val_bits_per_char: the whole (mixed) validation split; stories_bits_per_char: its stories, whose true entropy is entropy_floor */
  pretrain: { val_bits_per_char: number | null; entropy_floor: number | null; stories_bits_per_char: number | null };
  carbon: { kwh: number; kg_co2eq: number };
  stages: StageRecord[];
  /** DIR/report.html */
  report?: string;
}

export interface PipelineOptions {
  config: PipelineConfig;
  signal?: AbortSignal;
  onEvent?: (e: RunEvent) => void;
  /** one line per stage start, skip and end */
  say?: (m: string) => void;
}

const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const fileHash = (p: string): { path: string; sha256: string; bytes: number } => ({ path: p, sha256: sha256(readFileSync(p)), bytes: statSync(p).size });

/** The model file of a checkpoint directory (what later stages read), hashed. */
function checkpointFiles(dir: string): { path: string; sha256: string; bytes: number }[] {
  return readdirSync(dir).filter((n) => n.endsWith('.safetensors') || n === 'config.json').sort().map((n) => fileHash(join(dir, n)));
}

class Interrupted extends Error {}

export async function runPipeline(o: PipelineOptions): Promise<PipelineSummary> {
  const c = PIPELINE.check(o.config, 'config');
  const t0 = performance.now();
  const say = o.say ?? (() => {});
  const watts = c.cpu_watts ?? 10 * (c.threads ?? 2);
  const dir = (s: string) => join(c.out_dir, s);
  const stages: StageRecord[] = [];
  mkdirSync(c.out_dir, { recursive: true });
  const recipe = { signal: o.signal, onEvent: o.onEvent, resume: true };

  /** Runs `body` unless DIR/<name>/manifest.json has the same inputs; returns its outputs. */
  async function stage<T>(name: string, inputs: Record<string, unknown>, body: () => Promise<T | null>): Promise<{ out: T; digest: string }> {
    const digest = sha256(JSON.stringify(inputs));
    const mf = join(dir(name), 'manifest.json');
    if (existsSync(mf)) {
      const m = JSON.parse(readFileSync(mf, 'utf8')) as { digest: string; outputs: T; wall_s: number; kwh: number; kg_co2eq: number };
      if (m.digest === digest) {
        say(`${name}: done earlier (${mf}), skipped`);
        stages.push({ name, dir: dir(name), digest, wall_s: m.wall_s, kwh: m.kwh, kg_co2eq: m.kg_co2eq, skipped: true });
        return { out: m.outputs, digest };
      }
      say(`${name}: its inputs changed since ${mf} was written; redoing it`);
      rmSync(dir(name), { recursive: true, force: true });
    }
    mkdirSync(dir(name), { recursive: true });
    say(`${name}: starting`);
    const s0 = performance.now();
    const out = await body();
    if (out === null || o.signal?.aborted) throw new Interrupted(name);
    const wall = (performance.now() - s0) / 1000;
    const kwh = (wall * watts) / 3.6e6;
    const rec = { name, digest, inputs, outputs: out, wall_s: wall, kwh, kg_co2eq: kwh * c.carbon_intensity, finished_at: new Date().toISOString() };
    writeFileAtomic(mf, JSON.stringify(rec, null, 2) + '\n');
    stages.push({ name, dir: dir(name), digest, wall_s: wall, kwh, kg_co2eq: rec.kg_co2eq, skipped: false });
    say(`${name}: done in ${wall.toFixed(0)} s`);
    return { out, digest };
  }

  try {
    // 1. the chat world; train prompts split into preference and RL prompts
    const world = await stage('world', { seed: c.seed, sft: c.sft_dialogs, pref: c.pref_prompts, rl: c.rl_prompts, test: c.test_prompts, system_share: c.system_share }, async () => {
      const w = writeChatWorld(dir('world'), { seed: c.seed, sft: c.sft_dialogs, trainPrompts: c.pref_prompts + c.rl_prompts, testPrompts: c.test_prompts, systemShare: c.system_share });
      const train = readFileSync(w.files['prompts.train.jsonl']!, 'utf8').trim().split('\n');
      writeFileAtomic(dir('world/prompts.prefs.jsonl'), train.slice(0, c.pref_prompts).join('\n') + '\n');
      writeFileAtomic(dir('world/prompts.rl.jsonl'), train.slice(c.pref_prompts).join('\n') + '\n');
      return { files: ['sft.jsonl', 'prompts.prefs.jsonl', 'prompts.rl.jsonl', 'prompts.test.jsonl'].map((n) => fileHash(dir(`world/${n}`))) };
    });

    // 2. pretraining on stories + the world's documents
    const pre = await stage('pretrain', { up: world.digest, steps: c.pretrain_steps, dim: c.dim, n_layers: c.n_layers, vocab: c.vocab_size, seq_len: c.seq_len, stories: c.stories_count, world_docs: c.world_docs, seed: c.seed }, async () => {
      const cfg = {
        ...PRETRAIN.defaults, steps: c.pretrain_steps, dim: c.dim, n_layers: c.n_layers, n_heads: Math.max(1, c.dim / 32), vocab_size: c.vocab_size,
        seq_len: c.seq_len, batch_size: Math.max(1, Math.round(4096 / c.seq_len)), // 4,096 tokens per step at any context
        stories_count: c.stories_count, world_docs: c.world_docs, seed: c.seed, threads: c.threads, out_dir: dir('pretrain'),
        eval_every: Math.max(50, Math.floor(c.pretrain_steps / 10)), ckpt_every: Math.max(50, Math.floor(c.pretrain_steps / 5)),
        warmup_steps: Math.min(PRETRAIN.defaults.warmup_steps, Math.floor(c.pretrain_steps / 10)),
      };
      const r = await pretrain({ ...recipe, config: cfg });
      if (r.status !== 'completed') return null;
      return {
        val_bits_per_char: r.summary.final_val_bpc, entropy_floor: r.summary.entropy_floor_bpc, stories_bits_per_char: r.summary.floor_text_val_bpc,
        val_loss: r.summary.final_val_loss, files: checkpointFiles(dir('pretrain/latest')),
      };
    });

    // 3. SFT on the world's dialogs
    const sftStage = await stage('sft', { up: [world.digest, pre.digest], epochs: c.sft_epochs, seed: c.seed }, async () => {
      const r = await sft({ ...recipe, config: { ...SFT.defaults, init: dir('pretrain/latest'), data: [dir('world/sft.jsonl')], epochs: c.sft_epochs, seed: c.seed, threads: c.threads, out_dir: dir('sft') } });
      if (r.status !== 'completed') return null;
      return { final_val_loss: r.summary.final_val_loss, files: checkpointFiles(dir('sft/latest')) };
    });

    // 4. Ghost Attention: data from the SFT model, one epoch on SFT + GAtt data; Table 30 with and without
    const gatt = await stage('gatt', { up: sftStage.digest, dialogs: c.gatt_dialogs, eval_dialogs: c.gatt_eval_dialogs, seed: c.seed }, async () => {
      const data = dir('gatt/gatt.jsonl');
      if (!existsSync(data)) {
        const m = openModel(dir('sft/latest'), { threads: c.threads ?? undefined });
        const { records } = await buildGattData(m.model, m.tokenizer!, { dialogs: c.gatt_dialogs, turns: 6, seed: c.seed });
        writeFileAtomic(data, records.map((r) => JSON.stringify(r) + '\n').join(''));
      }
      const r = await sft({ ...recipe, config: { ...SFT.defaults, init: dir('sft/latest'), data: [dir('world/sft.jsonl'), data], epochs: 1, seed: c.seed, threads: c.threads, out_dir: dir('gatt/sft-gatt') } });
      if (r.status !== 'completed') return null;
      const table = async (model: string) => {
        const m = openModel(model, { threads: c.threads ?? undefined });
        return (await evalGatt(m.model, m.tokenizer!, { dialogs: c.gatt_eval_dialogs, turns: 20, seed: c.seed + 6 })).at;
      };
      return { without: await table(dir('sft/latest')), with: await table(dir('gatt/sft-gatt/latest')) };
    });

    // 5. RLHF versions, graded by gold on the test prompts
    const rlhf = await stage('rlhf', { up: [world.digest, pre.digest, sftStage.digest], versions: c.versions, ppo_versions: c.ppo_versions, rs_k: c.rs_k, ppo_steps: c.ppo_steps, reward_epochs: c.reward_epochs, seed: c.seed }, async () => {
      const r = await iterate({
        ...recipe,
        config: {
          ...ITERATE.defaults, sft: dir('sft/latest'), base: dir('pretrain/latest'), pref_prompts: dir('world/prompts.prefs.jsonl'),
          pref_per_version: Math.ceil(c.pref_prompts / c.versions), rl_prompts: dir('world/prompts.rl.jsonl'), eval_prompts: dir('world/prompts.test.jsonl'),
          eval_n: c.test_prompts, versions: c.versions, ppo_versions: c.ppo_versions, rs_k: c.rs_k, ppo_steps: c.ppo_steps,
          reward_epochs: c.reward_epochs, safety_distill: true, seed: c.seed, threads: c.threads, out_dir: dir('rlhf'),
        },
      });
      if (r.interrupted) return null;
      return { versions: r.versions };
    });

    // 6. the last reward models on held-out pairs: the SFT model against the last policy
    const last = `v${c.versions}`;
    const rewards = await stage('rewards', { up: rlhf.digest, pairs: c.reward_eval_pairs, seed: c.seed }, async () => {
      const sftM = openModel(dir('sft/latest'), { threads: c.threads ?? undefined });
      const policy = lastPolicy(dir('rlhf'), c.versions);
      const pol = openModel(policy, { threads: c.threads ?? undefined });
      const ps = readChatPrompts(dir('world/prompts.test.jsonl')).slice(0, c.reward_eval_pairs).filter((p) => p.world).map((p) => ({ messages: p.messages, meta: p.world! }));
      const { records } = await collectPreferences([{ name: 'sft', model: sftM.model, temperature: 0.7 }, { name: last, model: pol.model, temperature: 0.7 }], sftM.tokenizer!, ps, { batch: c.versions + 1, seed: c.seed * 7919 });
      writeFileAtomic(dir('rewards/prefs.test.jsonl'), records.map((r) => JSON.stringify(r) + '\n').join(''));
      const pairs = records.map((r, i) => parsePreference(r, `${dir('rewards/prefs.test.jsonl')}:${i + 1}`));
      const out: Record<string, RewardEvalReport> = {};
      for (const kind of ['helpful', 'safety'] as const) {
        const rm = openModel(dir(`rlhf/${last}/rm-${kind}/latest`), { threads: c.threads ?? undefined });
        out[kind] = evalRewardModel(rm.model, rm.tokenizer!, pairs);
        writeFileAtomic(dir(`rewards/rm-${kind}.eval.json`), JSON.stringify(out[kind]) + '\n');
      }
      return { helpful: pick(out['helpful']!), safety: pick(out['safety']!), pairs: pairs.length };
    });

    const versions = rlhf.out.versions.map((v: VersionRow) => ({
      name: v.name, helpfulness: v.helpfulness, helpfulness_ci95: v.helpfulness_ci95, violation_rate: v.violation_rate,
      false_refusal_rate: v.false_refusal_rate, rm_helpful: v.rm_helpful, rm_safety: v.rm_safety,
    }));
    const kwh = stages.reduce((s, x) => s + x.kwh, 0);
    const summary: PipelineSummary = {
      seed: c.seed, wall_s: stages.reduce((s, x) => s + x.wall_s, 0), versions,
      reward_models: { helpful: rewards.out.helpful, safety: rewards.out.safety },
      gatt: { with: gatt.out.with, without: gatt.out.without },
      pretrain: { val_bits_per_char: pre.out.val_bits_per_char, entropy_floor: pre.out.entropy_floor, stories_bits_per_char: pre.out.stories_bits_per_char ?? null },
      carbon: { kwh, kg_co2eq: kwh * c.carbon_intensity },
      stages,
    };
    writeFileAtomic(join(c.out_dir, 'pipeline.json'), JSON.stringify({ ...summary, this_run_wall_s: (performance.now() - t0) / 1000 }, null, 2) + '\n');
    // the report of everything above (src/report/)
    const report = await buildReport(c.out_dir, { title: `Llama 2 recipe, seed ${c.seed}: ${c.out_dir}` });
    writeFileAtomic(join(c.out_dir, 'report.html'), report.html);
    for (const w of report.warnings) say(`report: ${w}`);
    return { ...summary, report: join(c.out_dir, 'report.html') };
  } catch (e) {
    if (e instanceof Interrupted) throw new Llama2Error(`pipeline: interrupted during stage "${e.message}"; run the same command again to resume it`);
    throw e;
  }
}

/** The accuracy and the per-level table of a reward-model evaluation, every level present (n 0: accuracy null). */
function pick(r: RewardEvalReport): RewardModelRow {
  const by = r.by_level as Record<string, { n: number; accuracy: number } | undefined>;
  return { accuracy: r.accuracy, by_level: Object.fromEntries(LEVELS.map((l) => [l, by[l] ?? { n: 0, accuracy: null }])) };
}

/** The policy of the last version: its PPO model if it has one, else its RS model. */
function lastPolicy(rlhfDir: string, versions: number): string {
  const v = join(rlhfDir, `v${versions}`);
  return existsSync(join(v, 'ppo', 'latest')) ? join(v, 'ppo', 'latest') : join(v, 'rs', 'sft', 'latest');
}
