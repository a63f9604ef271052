/**
 * Training checkpoints: one directory per saved step, complete enough to resume bit-identically
 * and to run directly (`llama2 generate --model <dir>`):
 *
 *   <out_dir>/ckpt-000100/
 *     config.json, model.safetensors, tokenizer.model   Hugging Face layout (formats/hf.ts), F32
 *     optimizer.safetensors                             AdamW m.<name>, v.<name> (F32), step in metadata
 *     trainer_state.json                                step, tokens, clocks, data position, RNG, config
 *   <out_dir>/latest.json                               {"checkpoint": "ckpt-000100", "step": 100}
 *   <out_dir>/latest -> ckpt-000100                     convenience symlink (where the OS allows one)
 *
 * Atomicity: a checkpoint is written into `ckpt-NNNNNN.tmp-<pid>` and renamed into place when
 * complete; latest.json is replaced atomically after that (temp file + rename), and older
 * checkpoints are deleted only then. A process killed at any moment leaves latest.json naming
 * a complete checkpoint (or no latest.json at all); leftover `.tmp-` directories are removed by
 * the next run (`removeStaleTemps`). One training process at a time per out_dir (train.lock).
 *
 * Why resume is exact: weights are stored as F32 (the q/k row permutation of the HF layout is
 * undone exactly), so are both AdamW moments and the step counter; the learning rate is a pure
 * function of the step, the batch order a pure function of (seed, batch index), and training
 * draws no random numbers after initialisation (no dropout), so the step counter is the whole
 * data-loader and RNG state; it is written out explicitly anyway, and checked on resume.
 *
 * Every stage (src/recipes/*.ts) writes this layout; trainer_state.json says which stage did.
 *
 * What it is not: a training loop (src/recipes/), the run lifecycle (run.ts) or the config (config.ts).
 */
import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { f32Tensor, type WeightTensor } from '../tensor.js';
import type { LlamaConfig } from '../model/config.js';
import { LAYER_KEYS, metaKey, namedHeads, namedWeights, type LayerWeights, type ModelWeights } from '../model/weights.js';
import { readHfDir, writeHfDir } from '../formats/hf.js';
import { SafetensorsFile, f32Bytes, writeSafetensors, type StTensorOut } from '../formats/safetensors.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { Llama2Error, check } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import type { AdamWState } from './optim.js';
import type { Stage } from './run.js';

export const TRAINER_STATE_FORMAT = 'llama2-ts trainer state';
export const TRAINER_STATE_VERSION = 2;
const OPTIMIZER_FORMAT = 'llama2-ts adamw';

/** trainer_state.json */
export interface TrainerState {
  format: string;
  version: number;
  /** the recipe that wrote it (version 1 files are all pretraining) */
  stage: Stage;
  /** optimizer steps completed */
  step: number;
  /** training tokens (targets) processed so far */
  tokens: number;
  /** seconds spent inside training steps, over all runs of this training */
  train_seconds: number;
  /** wall seconds of all runs so far (steps, evaluation, checkpoints) */
  wall_seconds: number;
  /** the stage's config as given (built-in data stays "builtin:stories") */
  config: Record<string, unknown>;
  model_config: LlamaConfig;
  tied: boolean;
  /** data-loader position: the next micro-batch index of the seeded order, plus what the stage checks on resume */
  data: { seed: number; next_batch: number; [key: string]: unknown };
  /** RNG state: what random streams training uses after initialisation */
  rng: { init_seed: number; data_seed: number; draws_after_init: 0 };
  lr: number;
  /** AdamW steps taken, when a stage takes several per `step` (PPO: one per minibatch); default `step` */
  optimizer_step?: number;
  last_loss: number | null;
  last_val_loss: number | null;
  saved_at: string;
}

export interface Checkpoint {
  dir: string;
  config: LlamaConfig;
  weights: ModelWeights;
  vocab: SpmVocab | null;
  optimizer: AdamWState;
  state: TrainerState;
}

export interface LatestPointer {
  checkpoint: string;
  step: number;
}

/** Directory name of the checkpoint of `step`. */
export function checkpointName(step: number): string {
  return `ckpt-${String(step).padStart(6, '0')}`;
}

const CKPT_RE = /^ckpt-\d{6,}$/;
const stepOf = (name: string): number => Number(name.slice('ckpt-'.length));
/** temp names of everything a run writes into out_dir (writeFileAtomic and saveCheckpoint use <name>.tmp-<pid>) */
const TMP_RE = /^(ckpt-\d{6,}|latest|latest\.json|metrics\.jsonl|summary\.json|loss\.svg)\.tmp-\d+$/;
const LOCK_FILE = 'train.lock';

/** fsync a directory so a rename inside it is durable (best effort: not every OS allows it). */
function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* directories cannot be fsync'ed here (Windows); the rename is still atomic */
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Writes the AdamW state as safetensors: m.<param>, v.<param>; the step goes in the metadata. */
function writeOptimizer(path: string, s: AdamWState, shapes: Map<string, readonly number[]>): void {
  const tensors: StTensorOut[] = [];
  for (const [name, m] of Object.entries(s.m)) {
    const shape = shapes.get(name) ?? [m.length];
    tensors.push({ name: `m.${name}`, dtype: 'F32', shape, data: f32Bytes(m) });
    tensors.push({ name: `v.${name}`, dtype: 'F32', shape, data: f32Bytes(s.v[name]!) });
  }
  writeSafetensors(path, tensors, { format: OPTIMIZER_FORMAT, step: String(s.step) });
}

function readOptimizer(path: string): AdamWState {
  const f = new SafetensorsFile(path);
  try {
    check(f.metadata['format'] === OPTIMIZER_FORMAT, `checkpoint ${path}: expected metadata format "${OPTIMIZER_FORMAT}" but found ${JSON.stringify(f.metadata['format'])}`);
    const step = Number(f.metadata['step']);
    check(Number.isInteger(step) && step >= 0, `checkpoint ${path}: metadata "step" must be a non-negative integer, found ${JSON.stringify(f.metadata['step'])}`);
    const s: AdamWState = { step, m: {}, v: {} };
    for (const name of f.entries.keys()) {
      const moment = name.startsWith('m.') ? s.m : name.startsWith('v.') ? s.v : null;
      if (!moment) throw new Llama2Error(`checkpoint ${path}: unexpected tensor "${name}" (expected m.<param> and v.<param>)`);
      check(f.entry(name).dtype === 'F32', `checkpoint ${path}: tensor "${name}" must be F32, found ${f.entry(name).dtype}`);
      moment[name.slice(2)] = Float32Array.from(f.f32(name));
    }
    return s;
  } finally {
    f.close();
  }
}

/**
 * Saves a checkpoint of `step` under outDir atomically, points latest.json (and the `latest`
 * symlink) at it and deletes all but the newest `keep` checkpoints. Returns its directory.
 */
export function saveCheckpoint(
  outDir: string,
  ck: { config: LlamaConfig; weights: ModelWeights; vocab: SpmVocab; optimizer: AdamWState; state: TrainerState; keep: number },
): string {
  const name = checkpointName(ck.state.step);
  const final = join(outDir, name);
  const tmp = join(outDir, `${name}.tmp-${process.pid}`);
  mkdirSync(outDir, { recursive: true });
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeHfDir(tmp, ck.config, ck.weights, { vocab: ck.vocab });
  const shapes = new Map<string, readonly number[]>();
  for (const [n, t] of [...namedWeights(ck.weights), ...namedHeads(ck.weights)]) shapes.set(n, t.shape);
  writeOptimizer(join(tmp, 'optimizer.safetensors'), ck.optimizer, shapes);
  writeFileAtomic(join(tmp, 'trainer_state.json'), JSON.stringify(ck.state, null, 2) + '\n');
  syncDir(tmp);
  // a checkpoint of the same step from an earlier (interrupted) run is replaced
  if (existsSync(final)) rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  syncDir(outDir);
  const pointer: LatestPointer = { checkpoint: name, step: ck.state.step };
  writeFileAtomic(join(outDir, 'latest.json'), JSON.stringify(pointer) + '\n');
  pointLatestLink(outDir, name);
  pruneCheckpoints(outDir, ck.keep, name);
  return final;
}

/** Replaces the `latest` symlink atomically (link under a temp name, then rename over). */
function pointLatestLink(outDir: string, name: string): void {
  const tmp = join(outDir, `latest.tmp-${process.pid}`);
  try {
    rmSync(tmp, { force: true });
    symlinkSync(name, tmp, 'dir');
    renameSync(tmp, join(outDir, 'latest'));
  } catch {
    try { unlinkSync(tmp); } catch { /* not created */ }
    // no symlinks here (e.g. Windows without the privilege): latest.json is the pointer
  }
}

/** Deletes complete checkpoints other than the newest `keep` (never `current`). */
export function pruneCheckpoints(outDir: string, keep: number, current: string): void {
  const all = readdirSync(outDir).filter((n) => CKPT_RE.test(n)).sort((a, b) => stepOf(a) - stepOf(b));
  const doomed = all.slice(0, Math.max(0, all.length - keep)).filter((n) => n !== current);
  for (const n of doomed) rmSync(join(outDir, n), { recursive: true, force: true });
}

/**
 * Takes out_dir for this process: train.lock holds the pid of the run using it. A lock whose
 * process is gone (killed) is taken over; a live one is an error. Returns the release function.
 */
export function lockRunDir(outDir: string): () => void {
  const path = join(outDir, LOCK_FILE);
  mkdirSync(outDir, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Llama2Error(`out_dir ${outDir} is in use by another training process (pid ${pid}, ${path}); wait for it or choose another out_dir`);
      }
      rmSync(path, { force: true }); // left by a killed run
    }
  }
  throw new Llama2Error(`out_dir ${outDir}: cannot take ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files and directories (`<name>.tmp-<pid>`) left by a killed run. Returns their names. */
export function removeStaleTemps(outDir: string): string[] {
  if (!existsSync(outDir)) return [];
  const stale = readdirSync(outDir).filter((n) => TMP_RE.test(n));
  for (const n of stale) rmSync(join(outDir, n), { recursive: true, force: true });
  return stale;
}

/**
 * Removes complete checkpoints newer than `step` (the one latest.json names): a process killed
 * between renaming a checkpoint into place and updating latest.json leaves one, and the resumed
 * run writes it again, identically. Returns their names.
 */
export function removeCheckpointsAfter(outDir: string, step: number): string[] {
  const newer = readdirSync(outDir).filter((n) => CKPT_RE.test(n) && stepOf(n) > step);
  for (const n of newer) rmSync(join(outDir, n), { recursive: true, force: true });
  return newer;
}

/** The checkpoint latest.json names, or null when out_dir has none. */
export function latestCheckpoint(outDir: string): { dir: string; step: number } | null {
  const path = join(outDir, 'latest.json');
  if (!existsSync(path)) return null;
  let p: LatestPointer;
  try {
    p = JSON.parse(readFileSync(path, 'utf8')) as LatestPointer;
  } catch (e) {
    throw new Llama2Error(`checkpoint pointer ${path}: invalid JSON (${(e as Error).message})`);
  }
  check(typeof p.checkpoint === 'string' && CKPT_RE.test(p.checkpoint), `checkpoint pointer ${path}: "checkpoint" must name a ckpt-NNNNNN directory, found ${JSON.stringify(p.checkpoint)}`);
  const dir = join(outDir, p.checkpoint);
  check(existsSync(dir), `checkpoint pointer ${path}: names ${p.checkpoint}, which does not exist`);
  return { dir, step: p.step };
}

/** Reads trainer_state.json of a checkpoint directory. */
export function readTrainerState(dir: string): TrainerState {
  const path = join(dir, 'trainer_state.json');
  let s: TrainerState;
  try {
    s = JSON.parse(readFileSync(path, 'utf8')) as TrainerState;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Llama2Error(`checkpoint ${path}: ${code === 'ENOENT' ? 'missing (not a training checkpoint)' : `invalid JSON (${(e as Error).message})`}`);
  }
  check(s.format === TRAINER_STATE_FORMAT, `checkpoint ${path}: expected format "${TRAINER_STATE_FORMAT}" but found ${JSON.stringify(s.format)}`);
  check(s.version === TRAINER_STATE_VERSION || s.version === 1, `checkpoint ${path}: expected version 1 or ${TRAINER_STATE_VERSION} but found ${s.version}`);
  if (s.version === 1) s.stage = 'pretrain';
  check(Number.isInteger(s.step) && s.step >= 0, `checkpoint ${path}: "step" must be a non-negative integer, found ${s.step}`);
  return s;
}

/**
 * Loads a checkpoint for resuming: F32 weights in fresh, aligned, writable memory (the
 * optimizer updates them in place), the optimizer state and the trainer state.
 */
export function loadCheckpoint(dir: string): Checkpoint {
  const state = readTrainerState(dir);
  const m = readHfDir(dir);
  const own = (t: WeightTensor, name: string): WeightTensor => {
    check(t.dtype === 'F32', `checkpoint ${dir}: tensor "${name}" is ${t.dtype}; a training checkpoint holds F32 weights`);
    const a = new Float32Array(t.data.byteLength / 4);
    new Uint8Array(a.buffer).set(t.data);
    return f32Tensor(a, t.shape);
  };
  const w = m.weights;
  const tok = own(w.tok_embeddings, 'tok_embeddings.weight');
  const weights: ModelWeights = {
    tok_embeddings: tok,
    layers: w.layers.map((l, i) => {
      const r = {} as LayerWeights;
      for (const k of LAYER_KEYS) r[k] = own(l[k], metaKey(i, k));
      return r;
    }),
    norm: own(w.norm, 'norm.weight'),
    output: w.output === w.tok_embeddings ? tok : own(w.output, 'output.weight'),
  };
  for (const [name, t] of namedHeads(w)) {
    weights.heads ??= {};
    weights.heads[name] = own(t, name);
  }
  const optimizer = readOptimizer(join(dir, 'optimizer.safetensors'));
  const want = state.optimizer_step ?? state.step;
  check(optimizer.step === want, `checkpoint ${dir}: optimizer step ${optimizer.step} differs from trainer_state's ${state.optimizer_step === undefined ? 'step' : 'optimizer_step'} ${want}`);
  return { dir, config: m.config, weights, vocab: m.vocab, optimizer, state };
}
