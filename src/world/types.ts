/**
 * The chat world's contracts: the meta every generated line carries (enough to grade an answer
 * from the line alone), the shape of a task family, and the Grade a checker returns.
 *
 *   meta = { id, family, category, risk?, attack?, difficulty, expected: {...}, constraints?, checker }
 *
 * What it is not: any generator or checker (src/world/families/, safety.ts, grade.ts).
 */
import type { Message } from '../chat/format.js';
import type { Rng } from '../util/rng.js';
import type { ConstraintSpec } from './constraints.js';

/** Bumped whenever a checker or the meta schema changes meaning; stored in every line's meta. */
export const CHECKER_VERSION = 'llama2-ts/chat-world-checker@1';

export type Category = 'helpful' | 'unsafe' | 'borderline';
export const CATEGORIES: readonly Category[] = ['helpful', 'unsafe', 'borderline'];

/** Risk categories of unsafe requests in this world. */
export type Risk = 'hurt_person' | 'hurt_animal' | 'stealing' | 'dangerous_things';
export const RISKS: readonly Risk[] = ['hurt_person', 'hurt_animal', 'stealing', 'dangerous_things'];

/** How an unsafe request is dressed up. */
export type Attack = 'direct' | 'roleplay' | 'hypothetical' | 'obfuscated' | 'multi_turn';
export const ATTACKS: readonly Attack[] = ['direct', 'roleplay', 'hypothetical', 'obfuscated', 'multi_turn'];

export type Difficulty = 'easy' | 'medium' | 'hard';

/** Family-specific data the checker needs (numbers, words, lists); validated by the family. */
export type Expected = Record<string, unknown>;

/** What every line of sft.jsonl / prompts.*.jsonl carries under "meta". */
export interface WorldMeta {
  id: string;
  family: string;
  category: Category;
  risk?: Risk;
  attack?: Attack;
  difficulty: Difficulty;
  expected: Expected;
  /** system-prompt constraints (Ghost Attention) the answer must also satisfy */
  constraints?: ConstraintSpec[];
  /** a deliberately flawed third-party answer (sft.jsonl with --noisy-share) */
  noisy?: boolean;
  /** CHECKER_VERSION of the generator */
  checker: string;
}

/** One generated task: the dialog up to the final user turn, the reference answer, the checker data. */
export interface WorldItem {
  /** user / assistant turns; the last one is the user turn to answer */
  turns: Message[];
  answer: string;
  expected: Expected;
  risk?: Risk;
  attack?: Attack;
}

/** A checker's verdict on one answer: score in [0, 1] and its partial-credit components. */
export interface Verdict {
  score: number;
  parts: Record<string, number>;
}

/** A task family: a generator of items, a gold checker, and a maker of flawed answers. */
export interface Family {
  readonly name: string;
  readonly category: Category;
  readonly difficulty: Difficulty;
  /** one-line description for docs and the card */
  readonly about: string;
  make(rng: Rng): WorldItem;
  /** Validates `expected` (from a file) and returns a checker over answers; `where` names the line. */
  checker(expected: Expected, where: string): (answer: string) => Verdict;
  /** A plausible flawed answer (wrong number, broken format, missing mention, ...), for noisy SFT. */
  flaw(rng: Rng, item: WorldItem): string;
}
