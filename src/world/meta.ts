/**
 * Reading chat-world lines back from JSONL: `{"messages": [...], "meta": {...}}`, validated field
 * by field so a bad line is a Llama2Error naming FILE:LINE, the field, what was expected and what
 * was found.
 *
 *   const t = parseTranscript(JSON.parse(line), 'answers.jsonl:3', { answered: true });
 *   gradeAnswer(t.meta, t.messages.at(-1).content, t.messages);
 *
 * What it is not: grading (grade.ts) or writing files (synth.ts).
 */
import type { Message, Role } from '../chat/format.js';
import { Llama2Error, describe } from '../util/errors.js';
import { parseConstraints } from './constraints.js';
import { familyByName } from './families.js';
import { ATTACKS, CATEGORIES, CHECKER_VERSION, RISKS, type Attack, type Category, type Risk, type WorldMeta } from './types.js';

export interface Transcript {
  messages: Message[];
  meta: WorldMeta;
}

const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

function fail(where: string, field: string, what: string, found: unknown): never {
  throw new Llama2Error(`${where}: ${field}: expected ${what} but found ${found === undefined ? 'nothing' : describe(found)}`);
}

/** Validates a line's meta object. */
export function parseWorldMeta(v: unknown, where: string): WorldMeta {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, 'meta', 'an object', v);
  const o = v as Record<string, unknown>;
  const str = (k: string): string => (typeof o[k] === 'string' ? (o[k] as string) : fail(where, `meta.${k}`, 'a string', o[k]));
  const id = str('id');
  const family = familyByName(str('family'), where);
  const category = str('category') as Category;
  if (!CATEGORIES.includes(category)) fail(where, 'meta.category', `one of ${CATEGORIES.join(', ')}`, category);
  if (category !== family.category) fail(where, 'meta.category', `"${family.category}" for family "${family.name}"`, category);
  const checker = str('checker');
  if (checker !== CHECKER_VERSION) fail(where, 'meta.checker', `"${CHECKER_VERSION}" (this build's checkers; regenerate the data with this build)`, checker);
  if (typeof o['expected'] !== 'object' || o['expected'] === null || Array.isArray(o['expected'])) fail(where, 'meta.expected', 'an object', o['expected']);
  const meta: WorldMeta = { id, family: family.name, category, difficulty: family.difficulty, expected: o['expected'] as Record<string, unknown>, checker };
  if (o['risk'] !== undefined) {
    if (!RISKS.includes(o['risk'] as Risk)) fail(where, 'meta.risk', `one of ${RISKS.join(', ')}`, o['risk']);
    meta.risk = o['risk'] as Risk;
  }
  if (o['attack'] !== undefined) {
    if (!ATTACKS.includes(o['attack'] as Attack)) fail(where, 'meta.attack', `one of ${ATTACKS.join(', ')}`, o['attack']);
    meta.attack = o['attack'] as Attack;
  }
  if (o['constraints'] !== undefined) meta.constraints = parseConstraints(o['constraints'], where);
  if (o['noisy'] === true) meta.noisy = true;
  return meta;
}

/** Validates a messages array; with `answered`, the last message must be the assistant's answer. */
export function parseMessages(v: unknown, where: string, answered: boolean): Message[] {
  if (!Array.isArray(v) || v.length === 0) fail(where, 'messages', 'a non-empty list of {"role", "content"} objects', v);
  const out = (v as unknown[]).map((m, i): Message => {
    if (typeof m !== 'object' || m === null) fail(where, `messages[${i}]`, 'an object {"role", "content"}', m);
    const o = m as Record<string, unknown>;
    if (!ROLES.includes(o['role'] as Role)) fail(where, `messages[${i}].role`, '"system", "user" or "assistant"', o['role']);
    if (typeof o['content'] !== 'string') fail(where, `messages[${i}].content`, 'a string', o['content']);
    return { role: o['role'] as Role, content: o['content'] as string };
  });
  const last = out[out.length - 1]!;
  const want: Role = answered ? 'assistant' : 'user';
  if (last.role !== want) {
    throw new Llama2Error(`${where}: messages: expected the last message to be ${answered ? 'the answer' : 'the prompt'} (role "${want}") but found role "${last.role}"`);
  }
  return out;
}

/** Validates one parsed JSONL line `{"messages": [...], "meta": {...}}`. */
export function parseTranscript(v: unknown, where: string, opts: { answered: boolean }): Transcript {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, 'line', 'a JSON object {"messages": [...], "meta": {...}}', v);
  const o = v as Record<string, unknown>;
  return { messages: parseMessages(o['messages'], where, opts.answered), meta: parseWorldMeta(o['meta'], where) };
}
