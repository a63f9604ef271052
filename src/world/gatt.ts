/**
 * Ghost Attention dialogs: one system instruction (constraints.ts) and a long run of short helpful
 * world prompts (20 by default), each with its meta — constraints included — so every turn can be
 * graded on its own, and its reference answer rewritten to satisfy the instruction.
 *
 *   const d = gattDialog(1, 0, { turns: 20, terse: false });
 *   d.system                         // "Always answer in capital letters only."
 *   d.turns[19].meta                 // grade turn 20: gradeAnswer(d.turns[19].meta, answer)
 *   gattMessages(d, answers)         // [system, user1, answer1, ..., userN]
 *
 * `answer` is null where the constraint cannot be applied to that turn's reference (a kind without
 * apply, or a rewrite that breaks the task); a GAtt data builder samples those turns from a model.
 *
 * What it is not: the GAtt training recipe (train/), only its data and evaluation prompts.
 */
import type { Message } from '../chat/format.js';
import { hashSeed, Rng } from '../util/rng.js';
import { applyConstraints, constraintText, randomConstraints, type ConstraintSpec } from './constraints.js';
import { arithmetic, compare, wordProblem } from './families/arith.js';
import { format, story } from './families/format.js';
import { countLetters, reverse, sortWords, spell } from './families/words.js';
import { graderFor } from './grade.js';
import { chance, pick } from './lexicon.js';
import { CHECKER_VERSION, type WorldMeta } from './types.js';

/** Single-turn helpful families with short prompts. */
const TURN_FAMILIES = [arithmetic, wordProblem, compare, spell, reverse, countLetters, sortWords, format, story];

export interface GattTurn {
  user: string;
  /** the family's reference answer */
  reference: string;
  /** the reference rewritten to satisfy the constraints (scores ≥ 0.99), or null */
  answer: string | null;
  meta: WorldMeta;
}

export interface GattDialog {
  constraints: ConstraintSpec[];
  /** the instruction as the system message */
  system: string;
  terse: boolean;
  turns: GattTurn[];
}

export interface GattOptions {
  /** number of user turns (default 20) */
  turns?: number;
  /** the instruction (default: one random constraint, or a compatible pair 30% of the time) */
  constraints?: ConstraintSpec[];
  /** use the terse rewrite of the instruction (default: a fair coin) */
  terse?: boolean;
}

/** Dialog `index` of seed `seed` (independent of every other index). */
export function gattDialog(seed: number, index: number, o: GattOptions = {}): GattDialog {
  const rng = new Rng(hashSeed(seed, 0x6a77, index));
  const constraints = o.constraints ?? randomConstraints(rng);
  const terse = o.terse ?? chance(rng, 0.5);
  const turns: GattTurn[] = [];
  for (let t = 0; t < (o.turns ?? 20); t++) {
    const fam = pick(rng, TURN_FAMILIES);
    const item = fam.make(rng);
    const meta: WorldMeta = {
      id: `gatt-${seed}-${index}-${t}`, family: fam.name, category: fam.category, difficulty: fam.difficulty,
      expected: item.expected, constraints, checker: CHECKER_VERSION,
    };
    const applied = applyConstraints(constraints, item.answer);
    const answer = applied !== null && graderFor(meta)(applied).score >= 0.99 ? applied : null;
    turns.push({ user: item.turns[item.turns.length - 1]!.content, reference: item.answer, answer, meta });
  }
  return { constraints, system: constraintText(constraints, terse), terse, turns };
}

/**
 * The dialog as chat messages: the system message, then each user turn followed by its answer from
 * `answers` (default: the rewritten references; a missing or null answer ends the dialog there, on a
 * user turn).
 */
export function gattMessages(d: GattDialog, answers: readonly (string | null)[] = d.turns.map((t) => t.answer)): Message[] {
  const out: Message[] = [{ role: 'system', content: d.system }];
  for (let i = 0; i < d.turns.length; i++) {
    out.push({ role: 'user', content: d.turns[i]!.user });
    const a = answers[i];
    if (a === undefined || a === null) break;
    out.push({ role: 'assistant', content: a });
  }
  return out;
}
