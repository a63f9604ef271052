/**
 * Building blocks the gold checkers share: reading a family's `expected` record from a file with
 * clear errors, and the scoring rules several families use (a stated number, a keyword answer with
 * distractors, a choice between two options, ordered lists, and content × format credit).
 *
 *   numberVerdict("3 plus 4 is 7.", 7, [3, 4]) → { score: 1, parts: { correct: 1, single: 1 } }
 *
 * What it is not: any family's templates (arith.ts, words.ts, reading.ts, format.ts).
 */
import { Llama2Error, describe } from '../../util/errors.js';
import { lcsLength, mentionOrder, norm, numbersIn, numberToWords, phraseRe, wordsOf } from '../text.js';
import type { Verdict } from '../types.js';

// ---------------------------------------------------------------------------------------------
// reading `expected` from a file

export class ExpectedReader {
  constructor(private readonly e: Record<string, unknown>, private readonly where: string) {}

  private fail(key: string, what: string): never {
    throw new Llama2Error(`${this.where}: meta.expected.${key}: expected ${what} but found ${describe(this.e[key])}`);
  }

  num(key: string): number {
    const v = this.e[key];
    return typeof v === 'number' && Number.isFinite(v) ? v : this.fail(key, 'a number');
  }

  str(key: string): string {
    const v = this.e[key];
    return typeof v === 'string' ? v : this.fail(key, 'a string');
  }

  strs(key: string, min = 0): string[] {
    const v = this.e[key];
    return Array.isArray(v) && v.length >= min && v.every((x) => typeof x === 'string') ? (v as string[]) : this.fail(key, `a list of at least ${min} strings`);
  }

  nums(key: string): number[] {
    const v = this.e[key];
    return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : this.fail(key, 'a list of numbers');
  }

  /** A non-empty list of non-empty lists of strings (any-of groups). */
  groups(key: string): string[][] {
    const v = this.e[key];
    const ok = Array.isArray(v) && v.length > 0 && v.every((g) => Array.isArray(g) && g.length > 0 && g.every((x) => typeof x === 'string'));
    return ok ? (v as string[][]) : this.fail(key, 'a non-empty list of non-empty lists of strings');
  }

  oneOf<T extends string>(key: string, options: readonly T[]): T {
    const v = this.e[key];
    return options.includes(v as T) ? (v as T) : this.fail(key, `one of ${options.map((o) => `"${o}"`).join(', ')}`);
  }

  has(key: string): boolean {
    return this.e[key] !== undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// scoring rules

export const verdict = (score: number, parts: Record<string, number>): Verdict => ({ score: Math.max(0, Math.min(1, score)), parts });

/** Content × format: a right answer in the wrong format keeps 70% (it loses only the format credit). */
export function withFormat(content: Verdict, format: number): Verdict {
  return verdict(content.score * (0.7 + 0.3 * format), { ...content.parts, format });
}

/**
 * A numeric answer: full credit when the answer states `answer` and no other number except the
 * question's own `operands` ("3 plus 4 is 7"); half when it also states another number; 0 when
 * `answer` is missing.
 */
export function numberVerdict(text: string, answer: number, operands: readonly number[] = []): Verdict {
  const nums = numbersIn(text).map((n) => n.value);
  const correct = nums.includes(answer) ? 1 : 0;
  const others = nums.filter((v) => v !== answer && !operands.includes(v));
  const single = others.length === 0 ? 1 : 0;
  return verdict(correct * (single ? 1 : 0.5), { correct, single });
}

/** The answer is just the number (digits or words), maybe with a final "." or "!". */
export function isBareNumber(text: string, answer: number): boolean {
  const s = norm(text).replace(/[.!]+$/, '').replace(/-/g, ' ');
  return s === String(answer) || s === numberToWords(answer).replace(/-/g, ' ');
}

/**
 * A short factual answer: full credit when it names one of `accept` (whole words, plural allowed)
 * and none of the `distractors`; half when it names the answer and a distractor; else 0.
 */
export function keywordVerdict(text: string, accept: readonly string[], distractors: readonly string[]): Verdict {
  const s = norm(text);
  const has = (p: string): boolean => phraseRe(p, true).test(s);
  const correct = accept.some(has) ? 1 : 0;
  const distracted = distractors.some((d) => !accept.includes(d) && has(d)) ? 1 : 0;
  return verdict(correct * (distracted ? 0.5 : 1), { correct, single: 1 - distracted });
}

const MORE_WORDS = ['more', 'bigger', 'larger', 'greater', 'taller', 'older', 'most', 'biggest', 'largest', 'higher', 'longer'];
const LESS_WORDS = ['fewer', 'less', 'smaller', 'shorter', 'younger', 'least', 'smallest', 'fewest', 'lower'];

/**
 * A choice between two options ("Mia or Tom", "14 or 9") for a question asking for the one with
 * `ask` = more/less. The first comparison word in the answer tells which option it claims:
 * "Mia has more" and "Tom has fewer than Mia" both claim Mia. Numbers may be written as words.
 */
export function choiceVerdict(text: string, answer: string, other: string, ask: 'more' | 'less'): Verdict {
  const w = wordsOf(text);
  const numeric = /^\d+$/.test(answer) && /^\d+$/.test(other);
  const at = (opt: string): number => {
    if (numeric) return numbersIn(text).find((n) => String(n.value) === opt)?.word ?? -1;
    const target = wordsOf(opt);
    for (let i = 0; i + target.length <= w.length; i++) if (target.every((t, j) => w[i + j] === t || w[i + j] === t + "'s")) return i;
    return -1;
  };
  const ia = at(answer);
  const io = at(other);
  if (ia < 0 && io < 0) return verdict(0, { correct: 0 });
  const firstIsAnswer = ia >= 0 && (io < 0 || ia < io);
  const dir = w.find((x) => MORE_WORDS.includes(x) || LESS_WORDS.includes(x));
  const flips = dir !== undefined && (MORE_WORDS.includes(dir) ? 'more' : 'less') !== ask;
  const claimsAnswer = firstIsAnswer !== flips;
  return verdict(claimsAnswer ? 1 : 0, { correct: claimsAnswer ? 1 : 0 });
}

/**
 * An ordered list answer: the items as first mentioned, compared with `target` order by the
 * longest common subsequence. Full credit only for the whole list in order; else half of the
 * share in order.
 */
export function orderVerdict(text: string, items: readonly string[], target: readonly string[]): Verdict {
  const seen = mentionOrder(text, items).map((i) => items[i]!);
  const inOrder = lcsLength(seen, target) / target.length;
  const exact = inOrder === 1 && seen.length === target.length ? 1 : 0;
  return verdict(exact ? 1 : 0.5 * inOrder, { in_order: inOrder, complete: seen.length / target.length });
}
