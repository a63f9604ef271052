/**
 * Human-preference data (Llama 2 paper, section 3.2.1): pairs of answers to the same prompt, which
 * one was chosen, by how much (four levels) and the safety bin. One JSONL line per pair, in TRL's
 * conversational preference form plus the paper's fields under "meta":
 *
 *   {"prompt":   [{"role": "user", "content": "…"}, …],           the dialog before the answer
 *    "chosen":   [{"role": "assistant", "content": "…"}],
 *    "rejected": [{"role": "assistant", "content": "…"}],
 *    "meta": {"level": "significantly_better" | "better" | "slightly_better" | "negligibly_better",
 *             "safety_bin": "safe_over_unsafe" | "both_safe" | "both_unsafe" | "unsafe_over_safe",
 *             "is_safety_prompt": bool, "batch": 1, "models": ["A", "B"], "source": "simulated" | "human",
 *             "gold": {"chosen": 0.9, "rejected": 0.2}, "world": {…chat-world meta…}}}
 *
 * The simulated annotators (the chat world) and the server's A/B page (real people) write this
 * form; reward-model training reads it, and also TRL's other forms: the string form
 * {"prompt": "…", "chosen": "…", "rejected": "…"}, the implicit-prompt form {"chosen": [whole
 * conversation], "rejected": [whole conversation]} (the shared beginning is the prompt), HH-RLHF
 * text pairs {"chosen": "\n\nHuman: … \n\nAssistant: …", "rejected": "…"}, each with an optional
 * numeric "margin". A bad line is a Llama2Error `FILE:LINE: …`.
 *
 * safety_bin follows the paper's three bins (the chosen answer safe and the other not; both safe;
 * both unsafe) plus the fourth case a person may still pick (the unsafe one chosen), which safety
 * reward-model training leaves out, as the paper does.
 *
 * What it is not: the annotators (world/preferences.ts) or the reward model (train/reward.ts).
 */
import { closeSync, copyFileSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { Message } from '../chat/format.js';
import { Llama2Error, describe } from '../util/errors.js';
import { parseHhText } from './chat-data.js';
import { readLines } from './documents.js';

/** The paper's four strength levels, strongest first (Table 27 indexes margins the same way). */
export const LEVELS = ['significantly_better', 'better', 'slightly_better', 'negligibly_better'] as const;
export type Level = (typeof LEVELS)[number];

export const SAFETY_BINS = ['safe_over_unsafe', 'both_safe', 'both_unsafe', 'unsafe_over_safe'] as const;
export type SafetyBin = (typeof SAFETY_BINS)[number];

export interface PreferenceMeta {
  level: Level;
  safety_bin: SafetyBin;
  is_safety_prompt: boolean;
  /** the collection batch (iteration) that produced it */
  batch: number;
  /** the model(s) that wrote the two answers */
  models: string[];
  source: 'simulated' | 'human';
  /** gold scores of both answers (simulated annotators) */
  gold?: { chosen: number; rejected: number };
  [key: string]: unknown;
}

export interface PreferenceRecord {
  prompt: Message[];
  chosen: Message[];
  rejected: Message[];
  meta: PreferenceMeta;
}

/** A pair as training reads it, whatever form its line had. */
export interface PreferencePair {
  prompt: Message[];
  chosen: string;
  rejected: string;
  /** null when the line has no level (TRL forms) */
  level: Level | null;
  /** an explicit margin (TRL's "margin"), used instead of the level's */
  margin: number | null;
  meta: Partial<PreferenceMeta>;
  where: string;
}

function bad(where: string, msg: string): never {
  throw new Llama2Error(`${where}: ${msg}`);
}

function messages(v: unknown, where: string, field: string): Message[] {
  if (!Array.isArray(v) || v.length === 0) bad(where, `expected "${field}" to be a non-empty list of {"role", "content"} messages, found ${describe(v)}`);
  return v.map((m, i) => {
    const o = m as { role?: unknown; content?: unknown } | null;
    if (!o || (o.role !== 'system' && o.role !== 'user' && o.role !== 'assistant') || typeof o.content !== 'string') {
      bad(where, `${field}[${i}]: expected {"role": "system"|"user"|"assistant", "content": string}, found ${describe(m)}`);
    }
    return { role: o.role, content: o.content };
  });
}

/** The answer of a completion list: exactly one assistant message. */
function answerOf(ms: Message[], where: string, field: string): string {
  if (ms.length !== 1 || ms[0]!.role !== 'assistant') bad(where, `expected "${field}" to hold one assistant message, found ${ms.length} message(s) (${ms.map((m) => m.role).join(', ')})`);
  return ms[0]!.content;
}

/** Splits two whole conversations at their last differing turn: the shared beginning is the prompt. */
function splitImplicit(a: Message[], b: Message[], where: string): [Message[], string, string] {
  const la = a[a.length - 1]!;
  const lb = b[b.length - 1]!;
  if (la.role !== 'assistant' || lb.role !== 'assistant') bad(where, 'expected "chosen" and "rejected" conversations to end with an assistant answer');
  const pa = a.slice(0, -1);
  const pb = b.slice(0, -1);
  if (pa.length !== pb.length || pa.some((m, i) => m.role !== pb[i]!.role || m.content !== pb[i]!.content)) {
    bad(where, '"chosen" and "rejected" must share every turn but the final answer (implicit-prompt form)');
  }
  if (pa.length === 0 || pa[pa.length - 1]!.role !== 'user') bad(where, 'expected the shared prompt to end with a user turn');
  return [pa, la.content, lb.content];
}

function parseMeta(v: unknown, where: string): { meta: Partial<PreferenceMeta>; level: Level | null } {
  if (v === undefined) return { meta: {}, level: null };
  if (!v || typeof v !== 'object' || Array.isArray(v)) bad(where, `expected "meta" to be an object, found ${describe(v)}`);
  const m = v as Partial<PreferenceMeta>;
  if (m.level !== undefined && !LEVELS.includes(m.level)) bad(where, `meta.level: expected one of ${LEVELS.join(', ')}, found ${describe(m.level)}`);
  if (m.safety_bin !== undefined && !SAFETY_BINS.includes(m.safety_bin)) bad(where, `meta.safety_bin: expected one of ${SAFETY_BINS.join(', ')}, found ${describe(m.safety_bin)}`);
  if (m.batch !== undefined && !(Number.isInteger(m.batch) && m.batch >= 0)) bad(where, `meta.batch: expected an integer ≥ 0, found ${describe(m.batch)}`);
  return { meta: m, level: m.level ?? null };
}

/** One parsed JSON line → a pair, its form recognised by its fields. */
export function parsePreference(raw: unknown, where: string): PreferencePair {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) bad(where, `expected a JSON object, found ${describe(raw)}`);
  const r = raw as Record<string, unknown>;
  if (!('chosen' in r) || !('rejected' in r)) bad(where, `expected "chosen" and "rejected" fields; found keys ${Object.keys(r).map((k) => JSON.stringify(k)).join(', ') || 'none'}`);
  const margin = r['margin'];
  if (margin !== undefined && (typeof margin !== 'number' || !Number.isFinite(margin))) bad(where, `expected "margin" to be a number, found ${describe(margin)}`);
  const { meta, level } = parseMeta(r['meta'], where);
  const out = (prompt: Message[], chosen: string, rejected: string): PreferencePair =>
    ({ prompt, chosen, rejected, level, margin: (margin as number | undefined) ?? null, meta, where });
  const c = r['chosen'];
  const j = r['rejected'];
  if ('prompt' in r) {
    const p = r['prompt'];
    const prompt = typeof p === 'string' ? [{ role: 'user' as const, content: p }] : messages(p, where, 'prompt');
    if (prompt[prompt.length - 1]!.role !== 'user') bad(where, 'expected "prompt" to end with a user turn');
    const ans = (v: unknown, f: string): string => (typeof v === 'string' ? v : answerOf(messages(v, where, f), where, f));
    return out(prompt, ans(c, 'chosen'), ans(j, 'rejected'));
  }
  if (typeof c === 'string' && typeof j === 'string') {
    const [a, b] = [parseHhText(c, `${where}: chosen`), parseHhText(j, `${where}: rejected`)];
    return out(...splitImplicit(a, b, where));
  }
  return out(...splitImplicit(messages(c, where, 'chosen'), messages(j, where, 'rejected'), where));
}

/** The pairs of a JSONL file, in order; with skipBad, bad lines go to onBad instead of stopping. */
export function* readPreferences(path: string, o: { skipBad?: boolean; onBad?: (m: string) => void } = {}): Generator<PreferencePair> {
  for (const [line, no] of readLines(path)) {
    if (line.trim() === '') continue;
    const where = `${path}:${no}`;
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch (e) {
        bad(where, `invalid JSON (${(e as Error).message})`);
      }
      yield parsePreference(raw, where);
    } catch (e) {
      if (!(e instanceof Llama2Error) || !o.skipBad) throw e;
      o.onBad?.(e.message);
    }
  }
}

/**
 * Appends one record as a JSONL line so that a reader never sees half a line, even if the process
 * is killed: the file is copied, the line appended and fsync'ed, and the copy renamed over it.
 */
export function appendPreference(path: string, rec: PreferenceRecord): void {
  parsePreference(rec, `${path} (new line)`); // never write a line the readers refuse
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    if (existsSync(path)) copyFileSync(path, tmp);
    const fd = openSync(tmp, 'a');
    try {
      writeSync(fd, JSON.stringify(rec) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
