/**
 * The pretraining config: one flat record of typed keys, resolved in three layers —
 * defaults in code (TRAIN_DEFAULTS) → a JSON file (`--config configs/x.json`) → command-line
 * overrides (`--batch-size=16`, the key with "_" written "-"). Unknown keys and values of the
 * wrong type are Llama2Errors naming the file or flag and the key.
 *
 * The model shape is either a preset name (`preset: "stories15m"`) or the shape keys; shape keys
 * that are set override the preset's. vocab_size always comes from the tokenizer, max_seq_len
 * defaults to seq_len. Optimizer defaults follow the Llama 2 paper (section 2.2): AdamW
 * β = (0.9, 0.95), eps 1e-5, weight decay 0.1, gradient clipping 1.0, linear warm-up then cosine
 * decay to 10% of the peak learning rate.
 *
 * What it is not: the training loop (pretrain.ts) or the CLI (cli/pretrain.ts).
 */
import { readFileSync } from 'node:fs';
import { makeConfig, preset as presetConfig, type LlamaConfig } from '../model/config.js';
import { Llama2Error, describe } from '../util/errors.js';

/** `data_dir` value that asks for the built-in stories corpus (synthesised, tokenized, prepared). */
export const BUILTIN_STORIES = 'builtin:stories';

export interface TrainConfig {
  description: string | null;
  // model shape
  preset: string | null;
  dim: number | null;
  n_layers: number | null;
  n_heads: number | null;
  n_kv_heads: number | null;
  multiple_of: number | null;
  hidden_dim: number | null;
  norm_eps: number | null;
  rope_theta: number | null;
  max_seq_len: number | null;
  tie_embeddings: boolean;
  init_std: number;
  // data
  data_dir: string;
  tokenizer: string | null;
  seq_len: number | null;
  stories_count: number;
  stories_seed: number;
  vocab_size: number;
  val_fraction: number;
  entropy_floor_bpc: number | null;
  // batches and schedule
  batch_size: number;
  grad_accum: number;
  steps: number;
  lr: number;
  warmup_steps: number;
  min_lr_ratio: number;
  beta1: number;
  beta2: number;
  eps: number;
  weight_decay: number;
  grad_clip: number;
  // evaluation, checkpoints, logging
  eval_every: number;
  eval_batches: number;
  ckpt_every: number;
  keep_checkpoints: number;
  log_every: number;
  seed: number;
  out_dir: string;
  // machine and accounting
  threads: number | null;
  cpu_watts: number | null;
  peak_gflops: number | null;
  carbon_intensity: number;
}

export type TrainKey = keyof TrainConfig;

type Kind = 'int' | 'number' | 'string' | 'boolean';

interface KeySpec {
  kind: Kind;
  nullable?: boolean;
  /** smallest allowed value (numbers), inclusive unless `above` */
  min?: number;
  above?: boolean;
  max?: number;
  help: string;
}

/** Defaults in code: a ~1M-parameter model on the built-in stories (what `llama2 demo` trains). */
export const TRAIN_DEFAULTS: Readonly<TrainConfig> = {
  description: null,
  preset: null,
  dim: null,
  n_layers: null,
  n_heads: null,
  n_kv_heads: null,
  multiple_of: null,
  hidden_dim: null,
  norm_eps: null,
  rope_theta: null,
  max_seq_len: null,
  tie_embeddings: false,
  init_std: 0.02,
  data_dir: BUILTIN_STORIES,
  tokenizer: null,
  seq_len: null,
  stories_count: 4000,
  stories_seed: 1,
  vocab_size: 1024,
  val_fraction: 0.02,
  entropy_floor_bpc: null,
  batch_size: 8,
  grad_accum: 1,
  steps: 1000,
  lr: 3e-3,
  warmup_steps: 20,
  min_lr_ratio: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-5,
  weight_decay: 0.1,
  grad_clip: 1.0,
  eval_every: 50,
  eval_batches: 8,
  ckpt_every: 100,
  keep_checkpoints: 2,
  log_every: 10,
  seed: 1,
  out_dir: 'runs/pretrain',
  threads: null,
  cpu_watts: null,
  peak_gflops: null,
  carbon_intensity: 0.4235,
};

/** The model shape used when neither a preset nor the config sets a key. */
export const DEFAULT_SHAPE = { dim: 128, n_layers: 4, n_heads: 4, multiple_of: 32, norm_eps: 1e-5, rope_theta: 10000 } as const;

/** Default CPU power per thread (W) and fp32 peak per thread (GFLOP/s); see compute.ts. */
export const DEFAULT_WATTS_PER_THREAD = 10;
export const DEFAULT_PEAK_GFLOPS_PER_THREAD = 90;

export const TRAIN_KEYS: Readonly<Record<TrainKey, KeySpec>> = {
  description: { kind: 'string', nullable: true, help: 'free text describing the run' },
  preset: { kind: 'string', nullable: true, help: 'model shape preset (stories260k, stories15m, ...); shape keys override it' },
  dim: { kind: 'int', nullable: true, min: 2, help: `model width (default ${DEFAULT_SHAPE.dim})` },
  n_layers: { kind: 'int', nullable: true, min: 1, help: `transformer blocks (default ${DEFAULT_SHAPE.n_layers})` },
  n_heads: { kind: 'int', nullable: true, min: 1, help: `attention heads (default ${DEFAULT_SHAPE.n_heads})` },
  n_kv_heads: { kind: 'int', nullable: true, min: 1, help: 'key/value heads (default n_heads)' },
  multiple_of: { kind: 'int', nullable: true, min: 1, help: `FFN size rounding (default ${DEFAULT_SHAPE.multiple_of})` },
  hidden_dim: { kind: 'int', nullable: true, min: 1, help: "FFN hidden size (default: Meta's rule from dim)" },
  norm_eps: { kind: 'number', nullable: true, min: 0, above: true, help: `RMSNorm epsilon (default ${DEFAULT_SHAPE.norm_eps})` },
  rope_theta: { kind: 'number', nullable: true, min: 0, above: true, help: `RoPE base (default ${DEFAULT_SHAPE.rope_theta})` },
  max_seq_len: { kind: 'int', nullable: true, min: 2, help: "context length written to the checkpoint's config.json (default seq_len)" },
  tie_embeddings: { kind: 'boolean', help: 'share the output head with the token embedding' },
  init_std: { kind: 'number', min: 0, above: true, help: 'std of the initial weight matrices' },
  data_dir: { kind: 'string', help: `prepared shard directory (llama2 data prepare), or "${BUILTIN_STORIES}"` },
  tokenizer: { kind: 'string', nullable: true, help: 'tokenizer file (default: <data_dir>/tokenizer.model)' },
  seq_len: { kind: 'int', nullable: true, min: 1, help: "training context T (default: the shards' seq_len; built-in stories: 256)" },
  stories_count: { kind: 'int', min: 10, help: `${BUILTIN_STORIES}: number of stories` },
  stories_seed: { kind: 'int', min: 0, help: `${BUILTIN_STORIES}: corpus seed` },
  vocab_size: { kind: 'int', min: 260, help: `${BUILTIN_STORIES}: tokenizer vocabulary size` },
  val_fraction: { kind: 'number', min: 0, max: 0.5, help: `${BUILTIN_STORIES}: share of stories held out for validation` },
  entropy_floor_bpc: { kind: 'number', nullable: true, min: 0, help: 'true entropy of the validation text in bits/char, if known (built-in stories: computed)' },
  batch_size: { kind: 'int', min: 1, help: 'rows per micro-batch (B)' },
  grad_accum: { kind: 'int', min: 1, help: 'micro-batches per optimizer step' },
  steps: { kind: 'int', min: 1, help: 'optimizer steps; the cosine schedule ends here' },
  lr: { kind: 'number', min: 0, above: true, help: 'peak learning rate' },
  warmup_steps: { kind: 'int', min: 0, help: 'linear warm-up steps' },
  min_lr_ratio: { kind: 'number', min: 0, max: 1, help: 'final learning rate as a fraction of the peak' },
  beta1: { kind: 'number', min: 0, max: 1, help: 'AdamW β1' },
  beta2: { kind: 'number', min: 0, max: 1, help: 'AdamW β2' },
  eps: { kind: 'number', min: 0, above: true, help: 'AdamW epsilon' },
  weight_decay: { kind: 'number', min: 0, help: 'AdamW weight decay (matrices only)' },
  grad_clip: { kind: 'number', min: 0, above: true, help: 'global gradient-norm clip' },
  eval_every: { kind: 'int', min: 0, help: 'evaluate every N steps (0: only at the end)' },
  eval_batches: { kind: 'int', min: 0, help: 'validation batches per evaluation (0: the whole split)' },
  ckpt_every: { kind: 'int', min: 0, help: 'checkpoint every N steps (0: only at the end)' },
  keep_checkpoints: { kind: 'int', min: 1, help: 'checkpoints kept in out_dir (older ones are deleted)' },
  log_every: { kind: 'int', min: 1, help: 'a log line every N steps when stderr is not a terminal' },
  seed: { kind: 'int', min: 0, max: 0xffffffff, help: 'seed of the initial weights and of the batch order' },
  out_dir: { kind: 'string', help: 'run directory: checkpoints, metrics.jsonl, loss.svg, summary.json' },
  threads: { kind: 'int', nullable: true, min: 1, max: 256, help: 'native backend threads (default: all cores)' },
  cpu_watts: { kind: 'number', nullable: true, min: 0, help: `CPU power for the energy estimate (default ${DEFAULT_WATTS_PER_THREAD} W × threads)` },
  peak_gflops: { kind: 'number', nullable: true, min: 0, above: true, help: `declared fp32 peak for MFU (default ${DEFAULT_PEAK_GFLOPS_PER_THREAD} GFLOP/s × threads)` },
  carbon_intensity: { kind: 'number', min: 0, help: 'kgCO2eq per kWh (Llama 2 paper, Table 2: 0.4235)' },
};

/** CLI flag name of a key: batch_size → batch-size. */
export function flagName(key: string): string {
  return key.replaceAll('_', '-');
}

function expectText(s: KeySpec): string {
  const range = s.min === undefined ? '' : s.max === undefined ? ` ${s.above ? '>' : '≥'} ${s.min}` : ` in [${s.min}, ${s.max}]`;
  const base = s.kind === 'int' ? `an integer${range}` : s.kind === 'number' ? `a number${range}` : s.kind === 'boolean' ? 'true or false' : 'a string';
  return s.nullable ? `${base} or null` : base;
}

/** Checks one value against its key's spec; `where` names the source ("config x.json: key \"lr\""). */
function checkValue(key: TrainKey, v: unknown, where: string, written?: string): TrainConfig[TrainKey] {
  const s = TRAIN_KEYS[key];
  const bad = (): never => {
    throw new Llama2Error(`${where}: expected ${expectText(s)}, found ${written !== undefined ? JSON.stringify(written) : describe(v)}`);
  };
  if (v === null) return s.nullable ? null : bad();
  switch (s.kind) {
    case 'boolean':
      return typeof v === 'boolean' ? v : bad();
    case 'string':
      return typeof v === 'string' && v.length > 0 ? v : bad();
    case 'int':
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v) || (s.kind === 'int' && !Number.isSafeInteger(v))) return bad();
      if (s.min !== undefined && (s.above ? !(v > s.min) : !(v >= s.min))) return bad();
      if (s.max !== undefined && v > s.max) return bad();
      return v;
    }
  }
}

function isKey(k: string): k is TrainKey {
  return Object.prototype.hasOwnProperty.call(TRAIN_KEYS, k);
}

/** Applies a JSON object of keys onto `base`; `where` names the source in errors. */
export function applyObject(base: TrainConfig, raw: unknown, where: string): TrainConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Llama2Error(`${where}: expected a JSON object of config keys, found ${describe(raw)}`);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!isKey(k)) throw new Llama2Error(`${where}: unknown key "${k}" (see llama2 pretrain --help for the keys)`);
    out[k] = checkValue(k, v, `${where}: key "${k}"`);
  }
  return out as unknown as TrainConfig;
}

/** Reads a JSON config file over the defaults. */
export function readConfigFile(path: string, base: TrainConfig = { ...TRAIN_DEFAULTS }): TrainConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Llama2Error(`config ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Llama2Error(`config ${path}: invalid JSON (${(e as Error).message})`);
  }
  return applyObject(base, raw, `config ${path}`);
}

/**
 * Parses one command-line override. Values are typed by the key: numbers, true/false, "null"
 * for nullable keys; strings as given.
 */
export function parseOverride(key: string, text: string | boolean): [TrainKey, TrainConfig[TrainKey]] {
  if (!isKey(key)) throw new Llama2Error(`--${flagName(key)}: unknown config key "${key}"`);
  const s = TRAIN_KEYS[key];
  let v: unknown = text;
  if (typeof text === 'string') {
    if (text === 'null' && s.nullable) v = null;
    else if (s.kind === 'int' || s.kind === 'number') v = text.trim() === '' ? NaN : Number(text);
    else if (s.kind === 'boolean') v = text === 'true' ? true : text === 'false' ? false : text;
  }
  return [key, checkValue(key, v, `--${flagName(key)}`, typeof text === 'string' ? text : undefined)];
}

/** Applies overrides { key: raw value } in order. */
export function applyOverrides(base: TrainConfig, overrides: Iterable<[string, string | boolean]>): TrainConfig {
  const out: Record<string, unknown> = { ...base };
  for (const [k, text] of overrides) {
    const [key, v] = parseOverride(k, text);
    out[key] = v;
  }
  return crossCheck(out as unknown as TrainConfig, 'config');
}

/** Checks relations between keys (warm-up within the run, and so on). */
export function crossCheck(c: TrainConfig, where: string): TrainConfig {
  if (c.warmup_steps > c.steps) throw new Llama2Error(`${where}: warmup_steps ${c.warmup_steps} exceeds steps ${c.steps}`);
  if (c.beta1 >= 1 || c.beta2 >= 1) throw new Llama2Error(`${where}: beta1 and beta2 must be < 1, found ${c.beta1}, ${c.beta2}`);
  return c;
}

/** Everything the config resolves to: the full config and the Llama shape (vocab and context filled in). */
export function modelConfigFor(c: TrainConfig, vocabSize: number, seqLen: number): LlamaConfig {
  const p: Partial<LlamaConfig> = c.preset ? presetConfig(c.preset) : {};
  const pick = <K extends keyof typeof DEFAULT_SHAPE>(k: K): number => (c[k] ?? p[k] ?? DEFAULT_SHAPE[k]) as number;
  const nHeads = pick('n_heads');
  const cfg = makeConfig({
    dim: pick('dim'),
    n_layers: pick('n_layers'),
    n_heads: nHeads,
    n_kv_heads: c.n_kv_heads ?? (c.preset && c.n_heads === null ? p.n_kv_heads : undefined) ?? nHeads,
    vocab_size: vocabSize,
    multiple_of: pick('multiple_of'),
    ffn_dim_multiplier: c.preset && c.dim === null ? p.ffn_dim_multiplier ?? null : null,
    hidden_dim: c.hidden_dim ?? (c.preset && c.dim === null ? p.hidden_dim ?? null : null),
    norm_eps: pick('norm_eps'),
    rope_theta: pick('rope_theta'),
    max_seq_len: c.max_seq_len ?? seqLen,
  });
  return cfg;
}

/**
 * Keys a resumed run may change (the rest must equal the checkpoint's, or the run would not be a
 * continuation): the length of the run and how it is watched, not what it computes per step.
 */
export const RESUMABLE_KEYS: ReadonlySet<TrainKey> = new Set<TrainKey>([
  'description', 'steps', 'eval_every', 'eval_batches', 'ckpt_every', 'keep_checkpoints', 'log_every', 'out_dir',
  'threads', 'cpu_watts', 'peak_gflops', 'carbon_intensity', 'entropy_floor_bpc',
]);

/** The first key (other than RESUMABLE_KEYS) whose value differs, with both values, or null. */
export function resumeConflict(saved: TrainConfig, now: TrainConfig): { key: TrainKey; saved: unknown; now: unknown } | null {
  for (const k of Object.keys(TRAIN_KEYS) as TrainKey[]) {
    if (RESUMABLE_KEYS.has(k)) continue;
    if (saved[k] !== now[k]) return { key: k, saved: saved[k], now: now[k] };
  }
  return null;
}
