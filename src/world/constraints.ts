/**
 * Ghost Attention constraints: system instructions that must hold for every answer of a dialog
 * ("Always answer in capital letters", "Act as Captain Tom: start with 'Ahoy!'"), each with a
 * checker on one answer, a full instruction text and a terse rewrite (the paper's "Always act as
 * Napoleon" → "Figure: Napoleon"), and — where it can be done without changing what the answer
 * says — `apply(answer)`, which turns a reference answer into one that satisfies it.
 *
 *   const c: ConstraintSpec = { kind: 'max_words', n: 8 };
 *   constraintText([c], false)  → "Answer in at most 8 words."
 *   constraintText([c], true)   → "Length: at most 8 words"
 *   checkConstraint(c, 'Yes.')  → 1
 *
 * Kinds without apply (see UNAPPLIABLE_KINDS): "colour" — adding a colour would change the answer.
 * What it is not: the multi-turn dialogs that use them (gatt.ts).
 */
import type { Rng } from '../util/rng.js';
import { Llama2Error, describe } from '../util/errors.js';
import { ALL_COLOURS, BOYS, GIRLS, PET_NAMES, chance, int, pick } from './lexicon.js';
import { digitsToWords, hasDigits, hasPhrase, norm, sentencesOf } from './text.js';

export type ConstraintSpec =
  | { kind: 'caps' }
  | { kind: 'lowercase' }
  | { kind: 'exclaim' }
  | { kind: 'meow' }
  | { kind: 'max_words'; n: number }
  | { kind: 'colour' }
  | { kind: 'character'; name: string; greeting: string }
  | { kind: 'no_digits' }
  | { kind: 'call_name'; name: string }
  | { kind: 'one_sentence' };
export type ConstraintKind = ConstraintSpec['kind'];

type Of<K extends ConstraintKind> = Extract<ConstraintSpec, { kind: K }>;

interface KindDef<K extends ConstraintKind> {
  full(c: Of<K>): string;
  terse(c: Of<K>): string;
  /** 1 when the answer satisfies it; partial credit where it makes sense */
  check(c: Of<K>, answer: string): number;
  /** a rewrite that satisfies it without changing the content, or absent */
  apply?(c: Of<K>, answer: string): string;
  /** apply order: content edits, then prefixes, then letter case, then the final mark */
  stage: number;
}

/** Whitespace-separated tokens that hold a letter or digit ("K-I-T-E" is one word). */
export function spacedWords(s: string): string[] {
  return s.trim().split(/\s+/).filter((t) => /[A-Za-z0-9]/.test(t));
}

const startsWith = (answer: string, prefix: string): boolean => norm(answer).startsWith(norm(prefix).replace(/[.!]+$/, ''));

const KINDS: { [K in ConstraintKind]: KindDef<K> } = {
  caps: {
    full: () => 'Always answer in capital letters only.', terse: () => 'Style: ALL CAPS',
    check: (_c, a) => (/[A-Z]/.test(a) && !/[a-z]/.test(a) ? 1 : 0), apply: (_c, a) => a.toUpperCase(), stage: 3,
  },
  lowercase: {
    full: () => 'Always answer in lowercase letters only, with no capital letters.', terse: () => 'Style: lowercase only',
    check: (_c, a) => (/[a-z]/.test(a) && !/[A-Z]/.test(a) ? 1 : 0), apply: (_c, a) => a.toLowerCase(), stage: 3,
  },
  exclaim: {
    full: () => 'End every answer with an exclamation mark (!).', terse: () => 'Style: end with "!"',
    check: (_c, a) => (/![\s"')\]]*$/.test(a) ? 1 : 0), apply: (_c, a) => a.trimEnd().replace(/[.?,;:]+$/, '') + (a.trimEnd().endsWith('!') ? '' : '!'), stage: 4,
  },
  meow: {
    full: () => 'You are a cat. Start every answer with "Meow."', terse: () => 'Persona: cat ("Meow.")',
    check: (_c, a) => (startsWith(a, 'Meow') ? 1 : 0), apply: (_c, a) => `Meow. ${a}`, stage: 2,
  },
  max_words: {
    full: (c) => `Answer in at most ${c.n} words.`, terse: (c) => `Length: at most ${c.n} words`,
    check: (c, a) => {
      const w = spacedWords(a).length;
      return w <= c.n ? 1 : Math.max(0, 1 - (w - c.n) / c.n);
    },
    apply: (c, a) => {
      const w = a.trim().split(/(\s+)/);
      let kept = 0;
      let out = '';
      for (const t of w) {
        if (/[A-Za-z0-9]/.test(t)) { if (kept === c.n) break; kept++; }
        out += t;
      }
      return out.trimEnd();
    },
    stage: 0,
  },
  colour: {
    full: () => 'Always mention a colour in your answer.', terse: () => 'Rule: mention a colour',
    check: (_c, a) => (hasPhrase(a, ALL_COLOURS) ? 1 : 0), stage: 0,
  },
  character: {
    full: (c) => `Always act as ${c.name}: start every answer with "${c.greeting}"`, terse: (c) => `Figure: ${c.name} ("${c.greeting}")`,
    check: (c, a) => (startsWith(a, c.greeting) ? 1 : 0), apply: (c, a) => `${c.greeting} ${a}`, stage: 2,
  },
  no_digits: {
    full: () => 'Write every number in words, never with digits.', terse: () => 'Numbers: words only',
    check: (_c, a) => (hasDigits(a) ? 0 : 1), apply: (_c, a) => digitsToWords(a), stage: 0,
  },
  call_name: {
    full: (c) => `The user's name is ${c.name}. Always call them by their name.`, terse: (c) => `User: ${c.name}`,
    check: (c, a) => (hasPhrase(a, [c.name]) ? 1 : 0), apply: (c, a) => `${c.name}, ${a}`, stage: 1,
  },
  one_sentence: {
    full: () => 'Answer in one sentence.', terse: () => 'Length: one sentence',
    check: (_c, a) => {
      const n = sentencesOf(a).length;
      return n === 1 ? 1 : n === 0 ? 0 : 1 / n;
    },
    apply: (_c, a) => sentencesOf(a)[0] ?? a, stage: 0,
  },
};

export const CONSTRAINT_KINDS = Object.keys(KINDS) as ConstraintKind[];
/** Kinds whose `apply` does not exist: a reference answer cannot be rewritten to satisfy them. */
export const UNAPPLIABLE_KINDS = CONSTRAINT_KINDS.filter((k) => KINDS[k].apply === undefined);

/** Pairs that cannot hold together (or fight over the start of the answer). */
const CONFLICTS: readonly (readonly [ConstraintKind, ConstraintKind])[] = [
  ['caps', 'lowercase'], ['meow', 'character'], ['meow', 'one_sentence'], ['character', 'one_sentence'],
];

export function compatible(a: ConstraintKind, b: ConstraintKind): boolean {
  return a !== b && !CONFLICTS.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
}

function def<K extends ConstraintKind>(c: Of<K>): KindDef<K> {
  return KINDS[c.kind] as unknown as KindDef<K>;
}

/** The system text for a set of constraints: full instructions, or their terse rewrites. */
export function constraintText(cs: readonly ConstraintSpec[], terse: boolean): string {
  return cs.map((c) => (terse ? def(c).terse(c) : def(c).full(c))).join(terse ? '; ' : ' ');
}

/** How well one answer satisfies one constraint, in [0, 1]. */
export function checkConstraint(c: ConstraintSpec, answer: string): number {
  return answer.trim().length === 0 ? 0 : def(c).check(c, answer);
}

/** Mean satisfaction over the constraints (1 when there are none). */
export function checkConstraints(cs: readonly ConstraintSpec[], answer: string): number {
  return cs.length === 0 ? 1 : cs.reduce((s, c) => s + checkConstraint(c, answer), 0) / cs.length;
}

/** The answer rewritten to satisfy every constraint, or null when some kind cannot be applied. */
export function applyConstraints(cs: readonly ConstraintSpec[], answer: string): string | null {
  if (cs.some((c) => def(c).apply === undefined)) {
    return cs.every((c) => def(c).apply !== undefined || checkConstraint(c, answer) === 1) ? applyConstraints(cs.filter((c) => def(c).apply !== undefined), answer) : null;
  }
  let out = answer;
  for (const c of [...cs].sort((x, y) => def(x).stage - def(y).stage)) out = def(c).apply!(c, out);
  return out;
}

/** One random constraint of `kind` (or of any kind). */
export function randomConstraint(rng: Rng, kind: ConstraintKind = pick(rng, CONSTRAINT_KINDS)): ConstraintSpec {
  switch (kind) {
    case 'max_words': return { kind, n: pick(rng, [5, 8, 10, 12, 15, 20]) };
    case 'character': {
      const [title, greeting, names] = pick(rng, [['Captain', 'Ahoy!', BOYS], ['Queen', 'Hear ye!', GIRLS], ['Robot', 'Beep boop!', PET_NAMES], ['Wizard', 'Abracadabra!', BOYS]] as const);
      return { kind, name: `${title} ${pick(rng, names)}`, greeting };
    }
    case 'call_name': return { kind, name: pick(rng, [...GIRLS, ...BOYS]) };
    default: return { kind } as ConstraintSpec;
  }
}

/** One constraint, or (with probability `pairShare`) a compatible pair. */
export function randomConstraints(rng: Rng, pairShare = 0.3): ConstraintSpec[] {
  const a = randomConstraint(rng);
  if (!chance(rng, pairShare)) return [a];
  const others = CONSTRAINT_KINDS.filter((k) => compatible(a.kind, k));
  return [a, randomConstraint(rng, others[int(rng, 0, others.length - 1)]!)];
}

/** Validates constraint specs read from a file; `where` names the line. */
export function parseConstraints(v: unknown, where: string): ConstraintSpec[] {
  const fail = (what: string, found: unknown): never => {
    throw new Llama2Error(`${where}: meta.constraints: expected ${what} but found ${describe(found)}`);
  };
  if (!Array.isArray(v)) return fail('a list of {"kind": ...} objects', v);
  return v.map((c: unknown) => {
    if (typeof c !== 'object' || c === null) return fail('an object {"kind": ...}', c);
    const o = c as Record<string, unknown>;
    const kind = o['kind'];
    if (!CONSTRAINT_KINDS.includes(kind as ConstraintKind)) return fail(`a kind among ${CONSTRAINT_KINDS.join(', ')}`, kind);
    if (kind === 'max_words' && !(Number.isInteger(o['n']) && (o['n'] as number) > 0)) return fail('"n" (a positive integer) for max_words', o['n']);
    if (kind === 'character' && (typeof o['name'] !== 'string' || typeof o['greeting'] !== 'string')) return fail('"name" and "greeting" strings for character', o);
    if (kind === 'call_name' && typeof o['name'] !== 'string') return fail('"name" (a string) for call_name', o['name']);
    return o as unknown as ConstraintSpec;
  });
}
