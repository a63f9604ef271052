/**
 * The registry of the chat world's task families: eleven helpful ones (easy to hard), the unsafe
 * requests and the borderline prompts. Lines name their family by `meta.family`.
 *
 * What it is not: any family's code (families/, safety.ts, borderline.ts).
 */
import { Llama2Error } from '../util/errors.js';
import { borderline } from './borderline.js';
import { arithmetic, compare, wordProblem } from './families/arith.js';
import { format, story } from './families/format.js';
import { memory, reading } from './families/reading.js';
import { countLetters, reverse, sortWords, spell } from './families/words.js';
import { unsafe } from './safety.js';
import type { Family } from './types.js';

/** The helpful families, in the order the generator cycles through them. */
export const HELPFUL_FAMILIES: readonly Family[] = [arithmetic, wordProblem, compare, reading, memory, spell, reverse, countLetters, sortWords, format, story];

export const FAMILIES: readonly Family[] = [...HELPFUL_FAMILIES, unsafe, borderline];

const BY_NAME = new Map(FAMILIES.map((f) => [f.name, f]));

/** The family named `name`; `where` names the line in errors. */
export function familyByName(name: string, where = 'meta'): Family {
  const f = BY_NAME.get(name);
  if (!f) throw new Llama2Error(`${where}: meta.family: expected one of ${FAMILIES.map((x) => x.name).join(', ')} but found "${name}"`);
  return f;
}
