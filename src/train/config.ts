/**
 * The config system every training recipe uses: a recipe declares each key once — type, default,
 * help, range, whether a resumed run may change it — and gets from that one declaration the typed
 * config record, the JSON config file reader, the `--key=value` flags and their `--help` lines, and
 * the resume check. Values are resolved in three layers, one way: defaults in code → a JSON file
 * (`--config x.json`) → command-line flags (`--batch-size=16`: the key with "_" written "-").
 * Unknown keys and values of the wrong type are Llama2Errors naming the file or flag and the key.
 *
 *   const SPEC = { lr: key.number(3e-3, 'peak learning rate', { min: 0, above: true }), ... };
 *   export const PRETRAIN = defineConfig('pretrain', SPEC, crossCheck);
 *   type PretrainConfig = ConfigOf<typeof SPEC>;
 *   PRETRAIN.fromFlags({ config: 'x.json', 'batch-size': '16' })   // → PretrainConfig
 *
 * Shared groups of keys (the optimizer and schedule, the run directory and accounting) are
 * functions returning key records, spread into each recipe's declaration with that recipe's
 * defaults — composition, not inheritance.
 *
 * What it is not: any one recipe's keys (src/recipes/*.ts) or the flag parser (cli/args.ts).
 */
import { readFileSync } from 'node:fs';
import type { FlagSpec, FlagValues } from '../cli/args.js';
import { Llama2Error, describe } from '../util/errors.js';

export type KeyKind = 'int' | 'number' | 'string' | 'boolean' | 'list';

export interface KeySpec<T> {
  readonly kind: KeyKind;
  readonly default: T;
  readonly help: string;
  readonly nullable: boolean;
  /** smallest allowed value (numbers), inclusive unless `above` */
  readonly min?: number;
  readonly above?: boolean;
  readonly max?: number;
  /** the allowed strings */
  readonly oneOf?: readonly string[];
  /** a resumed run may change it (how long the run is and how it is watched, not what a step computes) */
  readonly resumable: boolean;
}

interface Opts {
  min?: number;
  above?: boolean;
  max?: number;
  resumable?: boolean;
}

const make = <T>(kind: KeyKind, nullable: boolean, def: T, help: string, o: Opts & { oneOf?: readonly string[] } = {}): KeySpec<T> =>
  ({ kind, default: def, help, nullable, min: o.min, above: o.above, max: o.max, oneOf: o.oneOf, resumable: o.resumable ?? false });

/** Key declarations, one builder per type (OrNull: null is also allowed, e.g. "from the data"). */
export const key = {
  int: (def: number, help: string, o?: Opts) => make<number>('int', false, def, help, o),
  intOrNull: (def: number | null, help: string, o?: Opts) => make<number | null>('int', true, def, help, o),
  number: (def: number, help: string, o?: Opts) => make<number>('number', false, def, help, o),
  numberOrNull: (def: number | null, help: string, o?: Opts) => make<number | null>('number', true, def, help, o),
  string: (def: string, help: string, o?: Opts) => make<string>('string', false, def, help, o),
  /** one of a fixed set of strings */
  oneOf: <S extends string>(def: S, values: readonly S[], help: string, o?: Opts) => make<S>('string', false, def, help, { ...o, oneOf: values }),
  stringOrNull: (def: string | null, help: string, o?: Opts) => make<string | null>('string', true, def, help, o),
  boolean: (def: boolean, help: string, o?: Opts) => make<boolean>('boolean', false, def, help, o),
  /** a list of strings: a JSON array, or comma-separated on the command line */
  list: (def: readonly string[], help: string, o?: Opts) => make<string[]>('list', false, [...def], help, o),
};

export type Specs = Record<string, KeySpec<unknown>>;
export type ConfigOf<S extends Specs> = { -readonly [K in keyof S]: S[K] extends KeySpec<infer T> ? T : never };

export interface ConfigDef<C> {
  /** the recipe's name, used in messages ("llama2 sft --help") */
  readonly name: string;
  readonly specs: Readonly<Record<keyof C & string, KeySpec<unknown>>>;
  readonly defaults: Readonly<C>;
  /** one flag per key (kebab-case), without defaults so an absent flag keeps the file's value */
  flags(): FlagSpec[];
  /** `base` (default: the defaults) → the --config file (flag "config") → every key flag that was given */
  fromFlags(f: FlagValues, base?: C): C;
  /** a JSON file over `base` (default: the defaults) */
  readFile(path: string, base?: C): C;
  /** a JSON object of keys over `base`; `where` names its source in errors */
  applyObject(base: C, raw: unknown, where: string): C;
  /** command-line overrides [key, text] in order, then the cross-checks */
  applyOverrides(base: C, overrides: Iterable<[string, string | boolean]>): C;
  /** the relations between keys (warm-up within the run, ...); returns c */
  check(c: C, where: string): C;
  /** the first non-resumable key whose value differs, with both values, or null */
  resumeConflict(saved: Record<string, unknown>, now: C): { key: string; saved: unknown; now: unknown } | null;
}

/** CLI flag name of a key: batch_size → batch-size. */
export function flagName(key: string): string {
  return key.replaceAll('_', '-');
}

function expectText(s: KeySpec<unknown>): string {
  const range = s.min === undefined ? '' : s.max === undefined ? ` ${s.above ? '>' : '≥'} ${s.min}` : ` in [${s.min}, ${s.max}]`;
  const base = s.kind === 'int' ? `an integer${range}` : s.kind === 'number' ? `a number${range}` : s.kind === 'boolean' ? 'true or false'
    : s.kind === 'list' ? 'a list of strings' : s.oneOf ? `one of ${s.oneOf.map((o) => JSON.stringify(o)).join(', ')}` : 'a string';
  return s.nullable ? `${base} or null` : base;
}

/** Checks one value against its spec; `where` names the source; `written` is the text as typed. */
function checkValue(s: KeySpec<unknown>, v: unknown, where: string, written?: string): unknown {
  const bad = (): never => {
    throw new Llama2Error(`${where}: expected ${expectText(s)}, found ${written !== undefined ? JSON.stringify(written) : describe(v)}`);
  };
  if (v === null) return s.nullable ? null : bad();
  switch (s.kind) {
    case 'boolean':
      return typeof v === 'boolean' ? v : bad();
    case 'string':
      return typeof v === 'string' && v.length > 0 && (!s.oneOf || s.oneOf.includes(v)) ? v : bad();
    case 'list':
      return Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0) ? [...(v as string[])] : bad();
    case 'int':
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v) || (s.kind === 'int' && !Number.isSafeInteger(v))) return bad();
      if (s.min !== undefined && (s.above ? !(v > s.min) : !(v >= s.min))) return bad();
      if (s.max !== undefined && v > s.max) return bad();
      return v;
    }
  }
}

/** Declares a recipe's config from its keys; `cross` checks relations between keys. */
export function defineConfig<S extends Specs>(name: string, specs: S, cross: (c: ConfigOf<S>, where: string) => void = () => {}): ConfigDef<ConfigOf<S>> {
  type C = ConfigOf<S>;
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(specs, k);
  const defaults = Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, Array.isArray(s.default) ? [...s.default] : s.default])) as C;
  for (const [k, s] of Object.entries(specs)) checkValue(s, s.default, `${name} config: default of key "${k}"`);

  const check = (c: C, where: string): C => {
    cross(c, where);
    return c;
  };
  const applyObject = (base: C, raw: unknown, where: string): C => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Llama2Error(`${where}: expected a JSON object of config keys, found ${describe(raw)}`);
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (!has(k)) throw new Llama2Error(`${where}: unknown key "${k}" (see llama2 ${name} --help for the keys)`);
      out[k] = checkValue(specs[k]!, v, `${where}: key "${k}"`);
    }
    return out as C;
  };
  const readFile = (path: string, base: C = { ...defaults }): C => {
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
  };
  /** One override, typed by its key: numbers, true/false, "null" for nullable keys, lists comma-separated. */
  const parseOverride = (k: string, text: string | boolean): [string, unknown] => {
    if (!has(k)) throw new Llama2Error(`--${flagName(k)}: unknown config key "${k}"`);
    const s = specs[k]!;
    let v: unknown = text;
    if (typeof text === 'string') {
      if (text === 'null' && s.nullable) v = null;
      else if (s.kind === 'int' || s.kind === 'number') v = text.trim() === '' ? NaN : Number(text);
      else if (s.kind === 'boolean') v = text === 'true' ? true : text === 'false' ? false : text;
      else if (s.kind === 'list') v = text.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
    }
    return [k, checkValue(s, v, `--${flagName(k)}`, typeof text === 'string' ? text : undefined)];
  };
  const applyOverrides = (base: C, overrides: Iterable<[string, string | boolean]>): C => {
    const out: Record<string, unknown> = { ...base };
    for (const [k, text] of overrides) {
      const [kk, v] = parseOverride(k, text);
      out[kk] = v;
    }
    return check(out as C, 'config');
  };
  return {
    name,
    specs: specs as unknown as Record<keyof C & string, KeySpec<unknown>>,
    defaults,
    flags: () =>
      Object.entries(specs).map(([k, s]) => {
        const meta = s.kind === 'int' ? 'N' : s.kind === 'number' ? 'X' : s.kind === 'list' ? 'A,B' : s.oneOf ? s.oneOf.join('|') : 'S';
        const d = s.default;
        return {
          name: flagName(k),
          type: s.kind === 'boolean' ? 'boolean' : 'string',
          meta: s.nullable ? `${meta}|null` : meta,
          help: `${s.help} [${d === null ? 'null' : Array.isArray(d) ? d.join(',') || 'none' : String(d)}]`,
        } satisfies FlagSpec;
      }),
    fromFlags: (f, start = defaults) => {
      const file = f['config'];
      const base = typeof file === 'string' ? readFile(file, start) : { ...start };
      const overrides: [string, string | boolean][] = [];
      for (const k of Object.keys(specs)) {
        const v = f[flagName(k)];
        if (typeof v === 'string' || typeof v === 'boolean') overrides.push([k, v]);
      }
      return applyOverrides(base, overrides);
    },
    readFile,
    applyObject,
    applyOverrides,
    check,
    resumeConflict: (saved, now) => {
      for (const [k, s] of Object.entries(specs)) {
        if (s.resumable) continue;
        const a = saved[k];
        const b = (now as Record<string, unknown>)[k];
        if (JSON.stringify(a) !== JSON.stringify(b)) return { key: k, saved: a, now: b };
      }
      return null;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// shared groups of keys

/** Default CPU power per thread (W) and fp32 peak per thread (GFLOP/s); see compute.ts. */
export const DEFAULT_WATTS_PER_THREAD = 10;
export const DEFAULT_PEAK_GFLOPS_PER_THREAD = 90;

/**
 * Batches, AdamW and the learning-rate schedule. Defaults follow the Llama 2 paper where they apply
 * (section 2.2: β = (0.9, 0.95), eps 1e-5, weight decay 0.1, clipping 1.0, linear warm-up then
 * cosine decay to 10% of the peak); each recipe gives its own batch size, lr and warm-up.
 */
export function optimKeys(d: { batch_size: number; lr: number; warmup_steps: number; lrHelp?: string; warmupHelp?: string }) {
  return {
    batch_size: key.int(d.batch_size, 'rows per micro-batch (B)', { min: 1 }),
    grad_accum: key.int(1, 'micro-batches per optimizer step', { min: 1 }),
    lr: key.number(d.lr, d.lrHelp ?? 'peak learning rate', { min: 0, above: true }),
    warmup_steps: key.int(d.warmup_steps, d.warmupHelp ?? 'linear warm-up steps', { min: 0 }),
    min_lr_ratio: key.number(0.1, 'final learning rate as a fraction of the peak', { min: 0, max: 1 }),
    beta1: key.number(0.9, 'AdamW β1', { min: 0, max: 1 }),
    beta2: key.number(0.95, 'AdamW β2', { min: 0, max: 1 }),
    eps: key.number(1e-5, 'AdamW epsilon', { min: 0, above: true }),
    weight_decay: key.number(0.1, 'AdamW weight decay (matrices only)', { min: 0 }),
    grad_clip: key.number(1.0, 'global gradient-norm clip', { min: 0, above: true }),
  };
}

/** The run directory, its checkpoints and logs, the seed, threads and the energy accounting. */
export function runKeys(d: { out_dir: string; eval_every: number; ckpt_every: number }) {
  return {
    description: key.stringOrNull(null, 'free text describing the run', { resumable: true }),
    eval_every: key.int(d.eval_every, 'evaluate every N steps (0: only at the end)', { min: 0, resumable: true }),
    ckpt_every: key.int(d.ckpt_every, 'checkpoint every N steps (0: only at the end)', { min: 0, resumable: true }),
    keep_checkpoints: key.int(2, 'checkpoints kept in out_dir (older ones are deleted)', { min: 1, resumable: true }),
    log_every: key.int(10, 'a log line every N steps when stderr is not a terminal', { min: 1, resumable: true }),
    seed: key.int(1, 'seed of the initial weights (where any) and of the batch order', { min: 0, max: 0xffffffff }),
    out_dir: key.string(d.out_dir, 'run directory: checkpoints, metrics.jsonl, loss.svg, summary.json', { resumable: true }),
    threads: key.intOrNull(null, 'native backend threads (default: all cores)', { min: 1, max: 256, resumable: true }),
    cpu_watts: key.numberOrNull(null, `CPU power for the energy estimate (default ${DEFAULT_WATTS_PER_THREAD} W × threads)`, { min: 0, resumable: true }),
    peak_gflops: key.numberOrNull(null, `declared fp32 peak for MFU (default ${DEFAULT_PEAK_GFLOPS_PER_THREAD} GFLOP/s × threads)`, { min: 0, above: true, resumable: true }),
    carbon_intensity: key.number(0.4235, 'kgCO2eq per kWh (Llama 2 paper, Table 2: 0.4235)', { min: 0, resumable: true }),
  };
}

/** The checks every recipe with optimKeys wants: warm-up within the run, betas below 1. */
export function checkOptim(c: { warmup_steps: number; beta1: number; beta2: number }, steps: number | null, where: string): void {
  if (steps !== null && c.warmup_steps > steps) throw new Llama2Error(`${where}: warmup_steps ${c.warmup_steps} exceeds steps ${steps}`);
  if (c.beta1 >= 1 || c.beta2 >= 1) throw new Llama2Error(`${where}: beta1 and beta2 must be < 1, found ${c.beta1}, ${c.beta2}`);
}
