/**
 * The machinery under the story grammar: weighted choice lists and the two "tellers" that run the
 * same grammar code, one sampling a story (and adding up the information of every choice), one
 * reading a given story back (recovering every choice and the same information).
 *
 * The grammar talks only to a Teller: `say(text)` emits fixed text (text the choices so far
 * dictate), `pick(list)` chooses an item, emits the item's text at once and returns the item.
 * Every list is prefix-free (no item's text is a prefix of another's; `choice()` checks it), and
 * the item is emitted at the position where the choice is made. Hence a reader who knows the
 * choices so far — and so where the grammar is — finds at most one item of the list that begins
 * the remaining text: the text fixes every choice, one after another. Two different choice
 * sequences first differ at some pick, where both items would begin the same remaining text,
 * which a prefix-free list forbids. So the grammar is unambiguous and the language is prefix-free
 * (no story is the beginning of another), and −log2 P(story) is exactly the story's information,
 * including the fact that it ends there.
 *
 * What it is not: the grammar itself (story-grammar.ts) or the public API (stories.ts).
 */
import { Rng } from '../util/rng.js';

export interface Item {
  readonly text: string;
  /** positive integer weight (default 1) */
  readonly w?: number;
}

export interface Choice<T extends Item> {
  readonly items: readonly T[];
  readonly total: number;
}

/** Thrown when a grammar list breaks the rules (a bug in the grammar, not a user mistake). */
export class GrammarError extends Error {
  override readonly name = 'GrammarError';
}

/** Builds a weighted list; throws GrammarError unless weights are positive integers and texts prefix-free. */
export function choice<T extends Item>(items: readonly T[]): Choice<T> {
  if (items.length === 0) throw new GrammarError('choice: empty list');
  let total = 0;
  for (const it of items) {
    const w = it.w ?? 1;
    if (!Number.isInteger(w) || w < 1) throw new GrammarError(`choice: weight of ${JSON.stringify(it.text)} must be a positive integer, found ${w}`);
    total += w;
  }
  const clash = prefixClash(items.map((it) => it.text));
  if (clash) throw new GrammarError(`choice: ${JSON.stringify(clash[0])} is a prefix of ${JSON.stringify(clash[1])}`);
  return { items, total };
}

/** Uniform list of plain strings. */
export function oneOf(...texts: string[]): Choice<Item> {
  return choice(texts.map((text) => ({ text })));
}

/** The first pair [a, b] with a a prefix of b (or a duplicate), or null when the texts are prefix-free. */
export function prefixClash(texts: readonly string[]): [string, string] | null {
  const sorted = [...texts].sort();
  for (let i = 1; i < sorted.length; i++) {
    // in sorted order, a string that is a prefix of others sits right before the first of them
    if (sorted[i]!.startsWith(sorted[i - 1]!)) return [sorted[i - 1]!, sorted[i]!];
  }
  return null;
}

/** items a pick must not return (each at most once in the list) */
export type Exclude<T> = T | readonly T[] | undefined;

const excluded = <T>(ex: Exclude<T>, it: T): boolean => (Array.isArray(ex) ? ex.includes(it) : ex === it);

/** Weight left after removing the excluded items. */
function remaining<T extends Item>(list: Choice<T>, ex: Exclude<T>): number {
  if (ex === undefined) return list.total;
  const xs: readonly T[] = Array.isArray(ex) ? ex : [ex as T];
  let total = list.total;
  for (const x of new Set(xs)) total -= x.w ?? 1;
  return total;
}

export interface Teller {
  /** emits fixed text */
  say(text: string): void;
  /** chooses an item (never one of `exclude`), emits its text, returns it */
  pick<T extends Item>(list: Choice<T>, exclude?: Exclude<T>): T;
}

/** Information in bits of picking `item` from `list` (with `exclude` removed). */
function pickBits<T extends Item>(list: Choice<T>, item: T, exclude: Exclude<T>): number {
  return Math.log2(remaining(list, exclude) / (item.w ?? 1));
}

/** Samples a story: exact categorical draws from the seeded generator. */
export class SamplingTeller implements Teller {
  private readonly parts: string[] = [];
  bits = 0;
  picks = 0;
  constructor(private readonly rng: Rng) {}

  say(text: string): void {
    this.parts.push(text);
  }

  pick<T extends Item>(list: Choice<T>, exclude?: Exclude<T>): T {
    const total = remaining(list, exclude);
    if (total <= 0) throw new GrammarError('pick: every item is excluded');
    let r = this.rng.below(total);
    for (const it of list.items) {
      if (excluded(exclude, it)) continue;
      r -= it.w ?? 1;
      if (r < 0) {
        this.parts.push(it.text);
        this.bits += pickBits(list, it, exclude);
        this.picks++;
        return it;
      }
    }
    throw new GrammarError('pick: weights do not add up'); // unreachable when total is right
  }

  text(): string {
    return this.parts.join('');
  }
}

/** Why a text is not a story of the grammar. */
export class NotAStoryError extends Error {
  override readonly name = 'NotAStoryError';
}

/** Reads a story back: each pick is the unique item that begins the remaining text. */
export class ReadingTeller implements Teller {
  pos = 0;
  bits = 0;
  picks = 0;
  constructor(private readonly story: string) {}

  say(text: string): void {
    if (!this.story.startsWith(text, this.pos)) throw this.fail(`expected ${JSON.stringify(text)}`);
    this.pos += text.length;
  }

  pick<T extends Item>(list: Choice<T>, exclude?: Exclude<T>): T {
    let found: T | undefined;
    for (const it of list.items) {
      if (excluded(exclude, it) || !this.story.startsWith(it.text, this.pos)) continue;
      if (found) throw new GrammarError(`ambiguous pick at ${this.pos}: ${JSON.stringify(found.text)} and ${JSON.stringify(it.text)}`);
      found = it;
    }
    if (!found) throw this.fail(`expected one of ${list.items.slice(0, 5).map((it) => JSON.stringify(it.text)).join(', ')}${list.items.length > 5 ? ', ...' : ''}`);
    this.pos += found.text.length;
    this.bits += pickBits(list, found, exclude);
    this.picks++;
    return found;
  }

  private fail(what: string): NotAStoryError {
    const at = JSON.stringify(this.story.slice(this.pos, this.pos + 30));
    return new NotAStoryError(`not a story of the grammar: at character ${this.pos} ${what} but found ${at}`);
  }
}
