/**
 * Reading answer text for the checkers: normalised words, numbers written as digits or words,
 * sentences, numbered lists, spelled-out letters, phrase search, and the two similarity measures
 * partial credit uses (edit distance, longest common subsequence).
 *
 * Everything here is plain string work on short answers (1–60 words); nothing is tokenizer- or
 * model-specific. What it is not: any checker's scoring rule (families/, safety.ts).
 */

/** Lower case, straight quotes, single spaces, trimmed. */
export function norm(s: string): string {
  return s.toLowerCase().replace(/[\u2018\u2019\u02bc`]/g, "'").replace(/[\u201c\u201d]/g, '"').replace(/\s+/g, ' ').trim();
}

/** Word tokens of the text, lower case ("don't" stays one token; hyphens and digits split). */
export function wordsOf(s: string): string[] {
  return norm(s).match(/[a-z]+(?:'[a-z]+)*|\d+/g) ?? [];
}

/** Number of words in the text (letter or digit runs). */
export function wordCount(s: string): number {
  return wordsOf(s).length;
}

export function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// ---------------------------------------------------------------------------------------------
// numbers

const UNITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve',
  'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** 0..999 as English words: 21 → "twenty-one", 105 → "one hundred and five". */
export function numberToWords(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 999) return String(n);
  if (n < 20) return UNITS[n]!;
  if (n < 100) return TENS[Math.floor(n / 10)]! + (n % 10 ? '-' + UNITS[n % 10]! : '');
  const rest = n % 100;
  return `${UNITS[Math.floor(n / 100)]!} hundred${rest ? ' and ' + numberToWords(rest) : ''}`;
}

/** Replaces every run of digits (0..999) by its words: "3 cats" → "three cats". */
export function digitsToWords(s: string): string {
  return s.replace(/\d+/g, (d) => numberToWords(Number(d)));
}

const UNIT_VALUE = new Map(UNITS.map((w, i) => [w, i]));
const TENS_VALUE = new Map<string, number>(TENS.map((w, i): [string, number] => [w, i * 10]).filter(([w]) => w !== ''));
/** "one" is a pronoun, not a number, after these words ("the red one") or before these ("one day") */
const ONE_BEFORE = new Set(['the', 'this', 'that', 'which', 'every', 'each', 'any', 'no', 'another', 'other', 'a', 'big', 'small', 'little', 'right', 'last', 'first', 'next', 'only', 'new', 'old']);
const ONE_AFTER = new Set(['day', 'time', 'morning', 'afternoon', 'evening', 'night', 'of', 'another', 'more', 'by', 'after', 'is', 'was']);

export interface NumberMention {
  value: number;
  /** index of its first word in wordsOf(text) */
  word: number;
}

/**
 * The numbers an answer states, as digits ("7", "12") or words ("seven", "twenty-one",
 * "one hundred and five", "once", "twice"), in order. "one" used as a pronoun ("the blue one", "one day")
 * and "once upon" are skipped.
 */
export function numbersIn(text: string): NumberMention[] {
  const w = wordsOf(text);
  const out: NumberMention[] = [];
  for (let i = 0; i < w.length; i++) {
    const t = w[i]!;
    if (/^\d+$/.test(t)) {
      out.push({ value: Number(t), word: i });
      continue;
    }
    if (t === 'one' && (ONE_BEFORE.has(w[i - 1] ?? '') || ONE_AFTER.has(w[i + 1] ?? ''))) continue;
    if ((t === 'once' && w[i + 1] !== 'upon') || t === 'twice') {
      out.push({ value: t === 'once' ? 1 : 2, word: i });
      continue;
    }
    const head = under100(w, i);
    if (!head) continue;
    let { value, next } = head;
    if (value > 0 && value < 10 && w[next] === 'hundred') {
      value *= 100;
      next++;
      const tail = under100(w, w[next] === 'and' ? next + 1 : next);
      if (tail && tail.value > 0) {
        value += tail.value;
        next = tail.next;
      }
    }
    out.push({ value, word: i });
    i = next - 1;
  }
  return out;
}

/** A number below 100 written in words starting at w[i] ("seven", "twenty", "twenty-one"). */
function under100(w: readonly string[], i: number): { value: number; next: number } | null {
  const t = w[i] ?? '';
  const tens = TENS_VALUE.get(t);
  if (tens !== undefined) {
    const u = UNIT_VALUE.get(w[i + 1] ?? '');
    return u !== undefined && u > 0 && u < 10 ? { value: tens + u, next: i + 2 } : { value: tens, next: i + 1 };
  }
  const u = UNIT_VALUE.get(t);
  return u === undefined ? null : { value: u, next: i + 1 };
}

/** True when the text contains a digit. */
export function hasDigits(s: string): boolean {
  return /\d/.test(s);
}

// ---------------------------------------------------------------------------------------------
// sentences, lists, letters

/** The sentences of a text: pieces ending in . ! ? (or the end) that hold at least one letter or digit. */
export function sentencesOf(text: string): string[] {
  return text.split(/(?<=[.!?])["')\]]*\s+|\n+/).map((s) => s.trim()).filter((s) => /[A-Za-z0-9]/.test(s));
}

/**
 * Items of a numbered list, in order: "1. cat\n2. dog" or "1) cat 2) dog". `numbering` is true when
 * the items are numbered 1, 2, 3, ... without gaps.
 */
export function numberedItems(text: string): { items: string[]; numbering: boolean } {
  const parts = text.split(/(?:^|\s)(\d{1,2})[.)]\s+/);
  // parts: [before, n1, item1, n2, item2, ...]
  const items: string[] = [];
  let numbering = true;
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const n = Number(parts[i]);
    if (n !== items.length + 1) numbering = false;
    const item = parts[i + 1]!.trim();
    if (item.length > 0) items.push(item);
  }
  return { items, numbering: numbering && items.length > 0 };
}

/**
 * Words spelled out letter by letter with one repeated separator: "K-I-T-T-E-N", "k i t t e n",
 * "k, i, t, t, e, n", "K. I. T." → ["kitten", ...] (lower case), longest first.
 */
export function spelledRuns(text: string): string[] {
  const s = norm(text);
  const runs: string[] = [];
  const re = /(?<![a-z])[a-z](-|, ?| |\. ?)[a-z](?![a-z])(?:\1[a-z](?![a-z]))*/g;
  for (const m of s.matchAll(re)) runs.push(m[0].replace(/[^a-z]/g, ''));
  return runs.sort((a, b) => b.length - a.length);
}

// ---------------------------------------------------------------------------------------------
// phrases

/** The string with regex metacharacters escaped. */
export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A case-insensitive whole-word regex for a phrase; `plural` also accepts a final "s"/"es". */
export function phraseRe(phrase: string, plural = false): RegExp {
  const body = norm(phrase).split(' ').map(escapeRe).join('[\\s-]+');
  return new RegExp(`(?<![a-z0-9])${body}${plural ? '(?:s|es)?' : ''}(?![a-z0-9])`, 'i');
}

/** Index in norm(text) of the first whole-word occurrence of any phrase, or -1. */
export function findPhrase(text: string, phrases: readonly string[], plural = false): number {
  const s = norm(text);
  let best = -1;
  for (const p of phrases) {
    const m = phraseRe(p, plural).exec(s);
    if (m && (best < 0 || m.index < best)) best = m.index;
  }
  return best;
}

export function hasPhrase(text: string, phrases: readonly string[], plural = false): boolean {
  return findPhrase(text, phrases, plural) >= 0;
}

// ---------------------------------------------------------------------------------------------
// similarity

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** 1 − edit distance / max length, in [0, 1]. */
export function similarity(a: string, b: string): number {
  const m = Math.max(a.length, b.length);
  return m === 0 ? 1 : 1 - editDistance(a, b) / m;
}

/** Length of the longest common subsequence of two sequences. */
export function lcsLength<T>(a: readonly T[], b: readonly T[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const cur = [0];
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The order in which the given items are first mentioned in the text (each item once), as
 * indices into `items`. Items are matched as whole words/phrases, case-insensitive.
 */
export function mentionOrder(text: string, items: readonly string[]): number[] {
  const s = norm(text);
  const found: { i: number; at: number }[] = [];
  items.forEach((it, i) => {
    const m = phraseRe(it).exec(s);
    if (m) found.push({ i, at: m.index });
  });
  return found.sort((x, y) => x.at - y.at).map((f) => f.i);
}
