/**
 * A small, strict command-line parser: each command declares its flags (name, type, default,
 * help) once; the parser produces typed values and the `--help` text from that declaration.
 * Unknown flags, missing values and values of the wrong type are Llama2Errors that name the flag.
 */
import { Llama2Error } from '../util/errors.js';

export type FlagType = 'string' | 'number' | 'int' | 'boolean' | 'list';

export interface FlagSpec {
  name: string; // without dashes: "max-tokens"
  type: FlagType;
  help: string;
  default?: string | number | boolean | string[];
  /** shown instead of the type in --help, e.g. "FILE" */
  meta?: string;
  short?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpec[];
  /** names of positional arguments shown in usage; extra positionals are an error unless `rest` */
  positionals?: string[];
  rest?: boolean;
  notes?: string;
}

export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

export interface Parsed {
  flags: FlagValues;
  positionals: string[];
  help: boolean;
}

export function parseArgs(spec: CommandSpec, argv: string[]): Parsed {
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const byShort = new Map(spec.flags.filter((f) => f.short).map((f) => [f.short!, f]));
  const flags: FlagValues = {};
  for (const f of spec.flags) if (f.default !== undefined) flags[f.name] = f.default;
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { for (const p of argv.slice(i + 1)) positionals.push(p); break; }
    if (a === '--help' || a === '-h') { help = true; continue; }
    if (!a.startsWith('-') || a === '-' || /^-\d/.test(a)) { positionals.push(a); continue; }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      inline = eq >= 0 ? a.slice(eq + 1) : undefined;
    } else {
      const f = byShort.get(a.slice(1));
      if (!f) throw new Llama2Error(`${spec.name}: unknown option "${a}" (see llama2 ${spec.name} --help)`);
      name = f.name;
    }
    let f = byName.get(name);
    if (!f && name.startsWith('no-') && byName.get(name.slice(3))?.type === 'boolean') {
      flags[name.slice(3)] = false;
      continue;
    }
    if (!f) throw new Llama2Error(`${spec.name}: unknown option "--${name}" (see llama2 ${spec.name} --help)`);
    if (f.type === 'boolean') {
      if (inline === undefined) flags[f.name] = true;
      else if (inline === 'true' || inline === '1') flags[f.name] = true;
      else if (inline === 'false' || inline === '0') flags[f.name] = false;
      else throw new Llama2Error(`--${f.name}: expected true or false, found "${inline}"`);
      continue;
    }
    let v = inline;
    if (v === undefined) {
      v = argv[++i];
      if (v === undefined) throw new Llama2Error(`--${f.name}: expected a value (${f.meta ?? f.type}) but the command line ended`);
    }
    flags[f.name] = convert(f, v);
  }
  const maxPos = spec.positionals?.length ?? 0;
  if (!help && !spec.rest && positionals.length > maxPos) {
    throw new Llama2Error(`${spec.name}: unexpected argument "${positionals[maxPos]}" (see llama2 ${spec.name} --help)`);
  }
  return { flags, positionals, help };
}

function convert(f: FlagSpec, v: string): string | number | string[] {
  switch (f.type) {
    case 'string': return v;
    case 'list': return v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    case 'number': {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n)) throw new Llama2Error(`--${f.name}: expected a number, found "${v}"`);
      return n;
    }
    case 'int': {
      const n = Number(v);
      if (v.trim() === '' || !Number.isInteger(n)) throw new Llama2Error(`--${f.name}: expected an integer, found "${v}"`);
      return n;
    }
    default: return v;
  }
}

export function helpText(spec: CommandSpec): string {
  const lines = [`${spec.summary}`, '', `usage: ${spec.usage}`, '', 'options:'];
  const rows = spec.flags.map((f) => {
    const left = `  ${f.short ? `-${f.short}, ` : ''}--${f.name}${f.type === 'boolean' ? '' : ` ${f.meta ?? f.type.toUpperCase()}`}`;
    const def = f.default === undefined ? '' : ` (default: ${Array.isArray(f.default) ? f.default.join(',') || 'none' : String(f.default)})`;
    return [left, f.help + def] as const;
  });
  rows.push(['  -h, --help', 'show this help']);
  const w = Math.min(34, Math.max(...rows.map((r) => r[0].length)) + 2);
  for (const [l, r] of rows) lines.push(l.length >= w ? `${l}\n${' '.repeat(w)}${r}` : l.padEnd(w) + r);
  if (spec.notes) lines.push('', spec.notes);
  return lines.join('\n');
}

export const str = (v: FlagValues, k: string): string | undefined => v[k] as string | undefined;
export const num = (v: FlagValues, k: string): number | undefined => v[k] as number | undefined;
export const bool = (v: FlagValues, k: string): boolean => v[k] === true;
export const list = (v: FlagValues, k: string): string[] => (v[k] as string[] | undefined) ?? [];
