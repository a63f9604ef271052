/**
 * The chat world's vocabulary: the story world's names, animals, toys, colours and places
 * (src/data/story-words.ts, so a model pretrained on the stories already knows the words), plus
 * the few things the tasks need beyond them (countable things, colour facts, word categories),
 * and small seeded helpers to draw from them.
 *
 * What it is not: templates of any task (families/), or the harmful-content lexicon (safety.ts).
 */
import * as W from '../data/story-words.js';
import type { Rng } from '../util/rng.js';

const texts = (c: { items: readonly { text: string }[] }): string[] => c.items.map((it) => it.text);

export const GIRLS = texts(W.GIRL_NAMES);
export const BOYS = texts(W.BOY_NAMES);
export const KIDS = [...GIRLS, ...BOYS];
export const PET_NAMES = texts(W.PET_NAMES);
export const ANIMALS = texts(W.ANIMALS);
export const COLORS = texts(W.TOY_COLORS);
export const TOYS = texts(W.TOYS);
export const PLACES = texts(W.PLACES);
export const PARENTS = ['Mom', 'Dad', 'Grandma', 'Grandpa'];

/** Things children count in word problems (plural, singular). */
export const COUNTABLES: readonly (readonly [string, string])[] = [
  ['apples', 'apple'], ['cookies', 'cookie'], ['shells', 'shell'], ['flowers', 'flower'], ['marbles', 'marble'],
  ['stickers', 'sticker'], ['crayons', 'crayon'], ['balloons', 'balloon'], ['eggs', 'egg'], ['carrots', 'carrot'],
  ['berries', 'berry'], ['stones', 'stone'], ['books', 'book'], ['cupcakes', 'cupcake'], ['leaves', 'leaf'], ['buttons', 'button'],
];

/** "What colour is X?" facts everyone in the story world knows. */
export const COLOR_FACTS: readonly (readonly [string, string])[] = [
  ['the sky on a sunny day', 'blue'], ['grass', 'green'], ['snow', 'white'], ['a banana', 'yellow'], ['a ripe tomato', 'red'],
  ['a strawberry', 'red'], ['coal', 'black'], ['a carrot', 'orange'], ['a lemon', 'yellow'], ['milk', 'white'],
  ['a frog', 'green'], ['chocolate', 'brown'], ['a crow', 'black'], ['a pig', 'pink'], ['an elephant', 'gray'],
  ['a grape', 'purple'], ['a leaf in summer', 'green'], ['the sun in a drawing', 'yellow'], ['a fire truck', 'red'], ['a cloud', 'white'],
];

/** Word categories the format tasks ask for, with every word the checker accepts. */
export const CATEGORY_WORDS: Record<'animal' | 'colour' | 'toy' | 'place' | 'fruit', readonly string[]> = {
  animal: [...ANIMALS, 'bird', 'cow', 'horse', 'pig', 'sheep', 'lion', 'tiger', 'bear', 'elephant', 'monkey', 'rabbit', 'fish',
    'hen', 'deer', 'whale', 'snake', 'bee', 'zebra', 'giraffe', 'kangaroo', 'penguin', 'squirrel', 'wolf', 'donkey', 'camel', 'seal', 'crab'],
  colour: [...COLORS, 'gold', 'violet', 'grey', 'tan', 'beige', 'navy', 'teal', 'cream'],
  toy: [...TOYS, 'top', 'yo yo', 'jigsaw', 'car', 'bear', 'plane', 'bike', 'skateboard', 'slide', 'swing', 'blocks', 'lego'],
  place: [...PLACES, 'home', 'house', 'shop', 'store', 'city', 'town', 'sea', 'ocean', 'field', 'kitchen', 'garden', 'bedroom'],
  fruit: ['apple', 'banana', 'pear', 'orange', 'grape', 'cherry', 'plum', 'peach', 'lemon', 'mango', 'melon', 'strawberry', 'berry', 'kiwi', 'lime', 'apricot'],
};
export type WordCategory = keyof typeof CATEGORY_WORDS;

/** Single words of the story world, 3–9 letters, for spelling, reversing and sorting. */
export const SIMPLE_WORDS: readonly string[] = [...new Set([
  ...ANIMALS, ...COLORS, ...TOYS, ...PLACES, ...texts(W.HERO_ADJ), ...texts(W.PET_ADJ), ...texts(W.TOY_QUALITY),
  ...CATEGORY_WORDS.fruit, ...COUNTABLES.map((c) => c[1]),
].filter((w) => /^[a-z]{3,9}$/.test(w)))].sort();

/** Colours as the checker recognises them in any answer (for "always mention a colour"). */
export const ALL_COLOURS = CATEGORY_WORDS.colour;

// ---------------------------------------------------------------------------------------------
// seeded helpers

/** An integer in [lo, hi]. */
export function int(rng: Rng, lo: number, hi: number): number {
  return lo + rng.below(hi - lo + 1);
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return rng.pick(items);
}

/** k distinct elements, in random order. */
export function pickDistinct<T>(rng: Rng, items: readonly T[], k: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  for (let i = 0; i < k && pool.length > 0; i++) out.push(pool.splice(rng.below(pool.length), 1)[0]!);
  return out;
}

/** True with probability p. */
export function chance(rng: Rng, p: number): boolean {
  return rng.float() < p;
}

export interface Kid {
  name: string;
  /** he / she */
  sub: string;
  /** his / her */
  pos: string;
  /** him / her */
  obj: string;
}

export function kid(rng: Rng, not: readonly string[] = []): Kid {
  const girl = rng.below(2) === 0;
  let name: string;
  do name = pick(rng, girl ? GIRLS : BOYS); while (not.includes(name));
  return girl ? { name, sub: 'she', pos: 'her', obj: 'her' } : { name, sub: 'he', pos: 'his', obj: 'him' };
}

/** "a" or "an" before a word. */
export function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}
