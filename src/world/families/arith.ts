/**
 * Number families of the chat world: small arithmetic (some prompts also demand a format: just
 * the number, or the number in words), story word problems, and comparisons between two numbers
 * or two children's counts.
 *
 *   arithmetic    "What is 3 plus 4? Answer with just the number."      → "7"
 *   word_problem  "Mia has 3 apples and finds 2 more. How many ...?"    → "Mia has 5 apples now."
 *   compare       "Tom has 5 shells and Mia has 8. Who has more?"       → "Mia has more shells."
 *
 * What it is not: the scoring rules themselves (check.ts).
 */
import type { Rng } from '../../util/rng.js';
import { COUNTABLES, chance, int, kid, pick } from '../lexicon.js';
import { capitalize, hasDigits, numberToWords, numbersIn } from '../text.js';
import type { Family, WorldItem } from '../types.js';
import { ExpectedReader, choiceVerdict, isBareNumber, numberVerdict, withFormat } from './check.js';

const user = (content: string): WorldItem['turns'] => [{ role: 'user', content }];

// ---------------------------------------------------------------------------------------------
// arithmetic

type Op = 'add' | 'sub' | 'mul';
const OP_TEMPLATES: Record<Op, ((a: number, b: number) => string)[]> = {
  add: [
    (a, b) => `What is ${a} plus ${b}?`, (a, b) => `What is ${a} + ${b}?`, (a, b) => `Add ${a} and ${b}.`,
    (a, b) => `How much is ${a} and ${b} together?`, (a, b) => `${a} + ${b} = ?`, (a, b) => `Can you tell me what ${a} plus ${b} makes?`,
    (a, b) => `If you put ${a} and ${b} together, how many do you get?`, (a, b) => `What do you get when you add ${b} to ${a}?`,
  ],
  sub: [
    (a, b) => `What is ${a} minus ${b}?`, (a, b) => `What is ${a} - ${b}?`, (a, b) => `Take ${b} away from ${a}. What is left?`,
    (a, b) => `${a} - ${b} = ?`, (a, b) => `How much is ${a} take away ${b}?`, (a, b) => `Subtract ${b} from ${a}.`,
    (a, b) => `If you have ${a} and lose ${b}, how many are left?`,
  ],
  mul: [
    (a, b) => `What is ${a} times ${b}?`, (a, b) => `What is ${a} x ${b}?`, (a, b) => `Multiply ${a} by ${b}.`,
    (a, b) => `How much is ${a} groups of ${b}?`, (a, b) => `${a} * ${b} = ?`,
  ],
};
const OP_WORD: Record<Op, string> = { add: 'plus', sub: 'minus', mul: 'times' };
type NumFormat = 'none' | 'number_only' | 'words';
const FORMAT_ASK: Record<Exclude<NumFormat, 'none'>, string[]> = {
  number_only: ['Answer with just the number.', 'Only say the number.', 'Reply with the number and nothing else.'],
  words: ['Write the answer in words, not digits.', 'Spell the number out in words.', 'Give the answer as a word.'],
};

export const arithmetic: Family = {
  name: 'arithmetic',
  category: 'helpful',
  difficulty: 'easy',
  about: 'small sums, differences and products; some prompts demand just the number or the number in words',
  make(rng: Rng): WorldItem {
    const op: Op = pick(rng, ['add', 'add', 'sub', 'sub', 'mul'] as const);
    let a = op === 'mul' ? int(rng, 2, 9) : int(rng, 1, 20);
    let b = op === 'mul' ? int(rng, 2, 9) : int(rng, 1, 20);
    if (op === 'sub' && b >= a) [a, b] = [b + 1, a];
    const c = op === 'add' ? a + b : op === 'sub' ? a - b : a * b;
    const format: NumFormat = pick(rng, ['none', 'none', 'none', 'number_only', 'words'] as const);
    let q = pick(rng, OP_TEMPLATES[op])(a, b);
    let answer: string;
    if (format === 'none') answer = pick(rng, [`${a} ${OP_WORD[op]} ${b} is ${c}.`, `The answer is ${c}.`, `It is ${c}.`, `${c}`]);
    else {
      q += ' ' + pick(rng, FORMAT_ASK[format]);
      answer = format === 'number_only' ? String(c) : capitalize(numberToWords(c)) + '.';
    }
    return { turns: user(q), answer, expected: { answer: c, operands: [a, b], format } };
  },
  checker(e, where) {
    const r = new ExpectedReader(e, where);
    const c = r.num('answer');
    const ops = r.nums('operands');
    const format = r.has('format') ? r.oneOf('format', ['none', 'number_only', 'words'] as const) : 'none';
    return (ans) => {
      const v = numberVerdict(ans, c, ops);
      if (format === 'none') return v;
      const ok = format === 'number_only' ? isBareNumber(ans, c) : !hasDigits(ans) && numbersIn(ans).some((n) => n.value === c);
      return withFormat(v, ok ? 1 : 0);
    };
  },
  flaw(rng, item) {
    const c = item.expected['answer'] as number;
    const kind = rng.below(3);
    if (kind === 0) return `The answer is ${c + int(rng, 1, 3)}.`;
    if (kind === 1) return `It is ${c} or maybe ${c + 1}.`;
    return item.expected['format'] === 'number_only' ? `I think the answer is ${c}.` : `${c + 10 * int(rng, 1, 2)}`;
  },
};

// ---------------------------------------------------------------------------------------------
// word problems

interface Problem {
  q: string;
  answer: string;
  c: number;
}
type ProblemMaker = (rng: Rng) => Problem & { a: number; b: number };

const PROBLEMS: ProblemMaker[] = [
  (rng) => {
    const k = kid(rng); const [things] = pick(rng, COUNTABLES); const a = int(rng, 2, 12); const b = int(rng, 2, 9);
    return { a, b, c: a + b, q: pick(rng, [
      `${k.name} has ${a} ${things} and finds ${b} more. How many ${things} does ${k.name} have now?`,
      `${k.name} had ${a} ${things}. Then ${k.sub} found ${b} more. How many ${things} does ${k.sub} have now?`,
      `There were ${a} ${things} in ${k.name}'s basket, and ${k.sub} put in ${b} more. How many ${things} are in the basket?`]),
    answer: pick(rng, [`${k.name} has ${a + b} ${things} now.`, `${a} + ${b} = ${a + b}, so ${k.sub} has ${a + b} ${things}.`, `${a + b} ${things}.`]) };
  },
  (rng) => {
    const k = kid(rng); const f = kid(rng, [k.name]); const [things] = pick(rng, COUNTABLES); const a = int(rng, 4, 15); const b = int(rng, 1, a - 1);
    return { a, b, c: a - b, q: pick(rng, [
      `${k.name} had ${a} ${things}. ${capitalize(k.sub)} gave ${b} to ${f.name}. How many ${things} does ${k.name} have left?`,
      `${k.name} has ${a} ${things} and gives ${b} of them to ${f.name}. How many are left?`,
      `There are ${a} ${things} on the table. ${f.name} takes ${b}. How many ${things} are still on the table?`]),
    answer: pick(rng, [`${a - b} ${things} are left.`, `${a} - ${b} = ${a - b}, so there are ${a - b} left.`, `There are ${a - b} left.`]) };
  },
  (rng) => {
    const k = kid(rng); const [things] = pick(rng, COUNTABLES); const a = int(rng, 2, 5); const b = int(rng, 2, 5);
    return { a, b, c: a * b, q: pick(rng, [
      `${k.name} has ${a} bags with ${b} ${things} in each bag. How many ${things} does ${k.name} have in all?`,
      `${k.name} made ${a} piles of ${things} with ${b} in each pile. How many ${things} are there?`]),
    answer: pick(rng, [`${k.name} has ${a * b} ${things} in all.`, `${a} times ${b} is ${a * b}, so there are ${a * b} ${things}.`]) };
  },
  (rng) => {
    const k = kid(rng); const f = kid(rng, [k.name]); const [things] = pick(rng, COUNTABLES); const a = int(rng, 2, 12); const b = int(rng, 2, 12);
    return { a, b, c: a + b, q: pick(rng, [
      `${k.name} picked ${a} ${things} and ${f.name} picked ${b}. How many ${things} did they pick together?`,
      `${k.name} has ${a} ${things}. ${f.name} has ${b} ${things}. How many ${things} do they have together?`]),
    answer: pick(rng, [`Together they have ${a + b} ${things}.`, `They picked ${a + b} ${things} together.`, `${a + b}.`]) };
  },
  (rng) => {
    const k = kid(rng); const f = kid(rng, [k.name]); const [things] = pick(rng, COUNTABLES); const a = int(rng, 2, 10); const b = int(rng, 1, 6);
    return { a, b, c: a + b, q: `${k.name} has ${a} ${things}. ${f.name} has ${b} more than ${k.name}. How many ${things} does ${f.name} have?`,
      answer: pick(rng, [`${f.name} has ${a + b} ${things}.`, `${a} + ${b} = ${a + b}, so ${f.name} has ${a + b}.`]) };
  },
];

export const wordProblem: Family = {
  name: 'word_problem',
  category: 'helpful',
  difficulty: 'medium',
  about: 'one-step story problems with children and things they count (add, take away, groups)',
  make(rng) {
    const p = pick(rng, PROBLEMS)(rng);
    return { turns: user(p.q), answer: p.answer, expected: { answer: p.c, operands: [p.a, p.b] } };
  },
  checker(e, where) {
    const r = new ExpectedReader(e, where);
    const c = r.num('answer');
    const ops = r.nums('operands');
    return (ans) => numberVerdict(ans, c, ops);
  },
  flaw(rng, item) {
    const [a, b] = item.expected['operands'] as number[];
    const c = item.expected['answer'] as number;
    const wrong = pick(rng, [a! + b!, Math.abs(a! - b!), a! * b!, c + 1, c - 1].filter((x) => x !== c && x >= 0));
    return `The answer is ${wrong}.`;
  },
};

// ---------------------------------------------------------------------------------------------
// comparisons

export const compare: Family = {
  name: 'compare',
  category: 'helpful',
  difficulty: 'easy',
  about: 'which of two numbers is bigger/smaller; which of two children has more/fewer things or is older',
  make(rng) {
    const ask = chance(rng, 0.5) ? 'more' : 'less';
    const kind = rng.below(3);
    let x: number;
    let y: number;
    do { x = int(rng, 1, 60); y = int(rng, 1, 60); } while (x === y);
    if (kind === 0) {
      const word = ask === 'more' ? pick(rng, ['bigger', 'larger', 'greater']) : pick(rng, ['smaller', 'less']);
      const q = pick(rng, [`Which is ${word}, ${x} or ${y}?`, `Which number is ${word}: ${x} or ${y}?`, `Of ${x} and ${y}, which one is ${word}?`, `Tell me which is ${word}, ${x} or ${y}.`]);
      const [c, o] = (ask === 'more') === (x > y) ? [x, y] : [y, x];
      return { turns: user(q), answer: pick(rng, [`${c} is ${word} than ${o}.`, `${c}.`, `The ${word} number is ${c}.`]), expected: { answer: String(c), other: String(o), ask } };
    }
    const a = kid(rng);
    const b = kid(rng, [a.name]);
    if (kind === 1) {
      x = x % 15 + 1; y = y % 15 + 1;
      if (x === y) y = x + 1;
      const [things] = pick(rng, COUNTABLES);
      const word = ask === 'more' ? 'more' : 'fewer';
      const q = pick(rng, [`${a.name} has ${x} ${things} and ${b.name} has ${y} ${things}. Who has ${word} ${things}?`,
        `${a.name} found ${x} ${things}. ${b.name} found ${y}. Who found ${word}?`, `If ${a.name} has ${x} ${things} and ${b.name} has ${y}, who has ${word}?`]);
      const [c, o] = (ask === 'more') === (x > y) ? [a.name, b.name] : [b.name, a.name];
      return { turns: user(q), answer: pick(rng, [`${c} has ${word} ${things}.`, `${c}.`, `${c} does.`]), expected: { answer: c, other: o, ask } };
    }
    x = x % 11 + 2; y = y % 11 + 2;
    if (x === y) y = x + 1;
    const word = ask === 'more' ? 'older' : 'younger';
    const q = pick(rng, [`${a.name} is ${x} years old and ${b.name} is ${y}. Who is ${word}?`, `${b.name} is ${y} and ${a.name} is ${x}. Which of them is ${word}?`]);
    const [c, o] = (ask === 'more') === (x > y) ? [a.name, b.name] : [b.name, a.name];
    return { turns: user(q), answer: pick(rng, [`${c} is ${word}.`, `${c} is ${word} than ${o}.`, `${c}.`]), expected: { answer: c, other: o, ask } };
  },
  checker(e, where) {
    const r = new ExpectedReader(e, where);
    const c = r.str('answer');
    const o = r.str('other');
    const ask = r.oneOf('ask', ['more', 'less'] as const);
    return (ans) => choiceVerdict(ans, c, o, ask);
  },
  flaw(_rng, item) {
    return `${item.expected['other'] as string}.`;
  },
};
