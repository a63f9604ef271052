/**
 * Word-game families of the chat world — hard for a small BPE model, which sees pieces, not
 * letters: spelling letter by letter, reversing a word or a short list, counting letters, and
 * sorting words alphabetically.
 *
 *   spell          "Spell the word 'kitten' letter by letter."   → "K-I-T-T-E-N"
 *   reverse        "Say these words in reverse order: cat, kite, park." → "park, kite, cat"
 *   count_letters  "How many letters are in the word 'pony'?"    → "There are 4 letters in "pony"."
 *   sort_words     "Put these words in alphabetical order: pony, duck, owl." → "duck, owl, pony"
 *
 * What it is not: the scoring rules themselves (check.ts).
 */
import type { Rng } from '../../util/rng.js';
import { SIMPLE_WORDS, chance, int, kid, pick, pickDistinct } from '../lexicon.js';
import { capitalize, similarity, spelledRuns, wordsOf } from '../text.js';
import type { Family, Verdict, WorldItem } from '../types.js';
import { ExpectedReader, numberVerdict, orderVerdict, verdict } from './check.js';

const user = (content: string): WorldItem['turns'] => [{ role: 'user', content }];
const q = (w: string, rng: Rng): string => pick(rng, [`'${w}'`, `"${w}"`, w]);
const dashed = (w: string): string => w.toUpperCase().split('').join('-');
const reversed = (w: string): string => w.split('').reverse().join('');

// ---------------------------------------------------------------------------------------------
// spelling

export const spell: Family = {
  name: 'spell',
  category: 'helpful',
  difficulty: 'medium',
  about: 'spell a story-world word letter by letter (any one separator: "K-I-T-E", "k i t e", "k, i, t, e")',
  make(rng) {
    const w = pick(rng, SIMPLE_WORDS);
    const k = kid(rng);
    const prompt = pick(rng, [
      `Spell the word ${q(w, rng)} letter by letter.`, `How do you spell ${q(w, rng)}? Say each letter.`,
      `Can you spell ${q(w, rng)} one letter at a time?`, `Please spell out the word ${q(w, rng)}.`,
      `${k.name} wants to write ${q(w, rng)}. Spell it for ${k.obj}, letter by letter.`,
      `Spell ${q(w, rng)} with a dash between the letters.`, `What are the letters in ${q(w, rng)}, in order?`,
    ]);
    const answer = pick(rng, [`${dashed(w)}`, `${capitalize(w)} is spelled ${dashed(w)}.`, `${dashed(w)}.`]);
    return { turns: user(prompt), answer, expected: { word: w } };
  },
  checker(e, where) {
    const w = new ExpectedReader(e, where).str('word').toLowerCase();
    return (ans): Verdict => {
      const runs = spelledRuns(ans);
      if (runs.includes(w)) return verdict(1, { spelled: 1, letters: 1 });
      const best = Math.max(0, ...runs.map((r) => similarity(r, w)));
      if (best > 0) return verdict(0.6 * best, { spelled: 1, letters: best });
      // the right word, not spelled out: right content, wrong format
      return verdict(wordsOf(ans).includes(w) ? 0.3 : 0, { spelled: 0, letters: 0 });
    };
  },
  flaw(rng, item) {
    const w = item.expected['word'] as string;
    const i = rng.below(w.length);
    return chance(rng, 0.5) ? dashed(w.slice(0, i) + w.slice(i + 1)) : `${w[0]!.toUpperCase()}${w.slice(1)}.`;
  },
};

// ---------------------------------------------------------------------------------------------
// reversing

export const reverse: Family = {
  name: 'reverse',
  category: 'helpful',
  difficulty: 'hard',
  about: 'write a word backwards, or say a list of 3–5 words in reverse order',
  make(rng) {
    if (chance(rng, 0.5)) {
      let w: string;
      do w = pick(rng, SIMPLE_WORDS); while (reversed(w) === w);
      const prompt = pick(rng, [`Write the word ${q(w, rng)} backwards.`, `What is ${q(w, rng)} spelled backwards?`,
        `Reverse the letters of ${q(w, rng)}.`, `Turn ${q(w, rng)} around so the last letter comes first.`, `Say ${q(w, rng)} backwards.`]);
      const answer = pick(rng, [reversed(w), `${capitalize(w)} backwards is ${reversed(w)}.`, `It is ${reversed(w)}.`]);
      return { turns: user(prompt), answer, expected: { mode: 'word', word: w } };
    }
    const items = pickDistinct(rng, SIMPLE_WORDS, int(rng, 3, 5));
    const list = items.join(', ');
    const prompt = pick(rng, [`Say these words in reverse order: ${list}.`, `Reverse the order of this list: ${list}.`,
      `Read this list from the end to the start: ${list}.`, `Here is a list: ${list}. Write it backwards, last word first.`]);
    const answer = [...items].reverse().join(', ');
    return { turns: user(prompt), answer, expected: { mode: 'list', items } };
  },
  checker(e, where) {
    const r = new ExpectedReader(e, where);
    if (r.oneOf('mode', ['word', 'list'] as const) === 'list') {
      const items = r.strs('items', 2);
      const target = [...items].reverse();
      return (ans) => orderVerdict(ans, items, target);
    }
    const w = r.str('word').toLowerCase();
    const rev = reversed(w);
    return (ans) => {
      const cands = [...wordsOf(ans), ...spelledRuns(ans)];
      if (cands.includes(rev)) return verdict(1, { reversed: 1 });
      const best = Math.max(0, ...cands.filter((c) => c !== w).map((c) => similarity(c, rev)));
      return verdict(best >= 0.5 ? 0.5 * best : 0, { reversed: best });
    };
  },
  flaw(rng, item) {
    if (item.expected['mode'] === 'word') {
      const w = item.expected['word'] as string;
      return chance(rng, 0.5) ? w : reversed(w).slice(1) + w[0]!;
    }
    const items = item.expected['items'] as string[];
    return items.join(', ');
  },
};

// ---------------------------------------------------------------------------------------------
// counting letters

export const countLetters: Family = {
  name: 'count_letters',
  category: 'helpful',
  difficulty: 'hard',
  about: 'how many letters a word has, or how many times a letter appears in it',
  make(rng) {
    const w = pick(rng, SIMPLE_WORDS);
    if (chance(rng, 0.5)) {
      const prompt = pick(rng, [`How many letters are in the word ${q(w, rng)}?`, `How many letters does ${q(w, rng)} have?`,
        `Count the letters in ${q(w, rng)}.`, `How long is the word ${q(w, rng)}, in letters?`]);
      const n = w.length;
      return { turns: user(prompt), answer: pick(rng, [`There are ${n} letters in "${w}".`, `${n}`, `"${w}" has ${n} letters.`]), expected: { mode: 'length', word: w, answer: n } };
    }
    const letter = pick(rng, w.split(''));
    const n = w.split('').filter((c) => c === letter).length;
    const prompt = pick(rng, [`How many times does the letter '${letter}' appear in ${q(w, rng)}?`,
      `How many ${letter}'s are in the word ${q(w, rng)}?`, `Count the letter ${letter.toUpperCase()} in ${q(w, rng)}.`]);
    const answer = pick(rng, [`The letter "${letter}" appears ${n} time${n > 1 ? 's' : ''} in "${w}".`, `${n}`, `There ${n > 1 ? 'are' : 'is'} ${n} in "${w}".`]);
    return { turns: user(prompt), answer, expected: { mode: 'letter', word: w, letter, answer: n } };
  },
  checker(e, where) {
    const r = new ExpectedReader(e, where);
    const n = r.num('answer');
    return (ans) => numberVerdict(ans, n, []);
  },
  flaw(rng, item) {
    const n = item.expected['answer'] as number;
    return `${n + (chance(rng, 0.5) ? 1 : n > 1 ? -1 : 2)}`;
  },
};

// ---------------------------------------------------------------------------------------------
// sorting

export const sortWords: Family = {
  name: 'sort_words',
  category: 'helpful',
  difficulty: 'hard',
  about: 'put 3–5 words in alphabetical order',
  make(rng) {
    let items: string[];
    do items = pickDistinct(rng, SIMPLE_WORDS, int(rng, 3, 5)); while (items.join() === [...items].sort().join());
    const list = items.join(', ');
    const prompt = pick(rng, [`Put these words in alphabetical order: ${list}.`, `Sort these words from A to Z: ${list}.`,
      `Write these words in ABC order: ${list}.`, `Can you sort ${list} alphabetically?`, `Which order would these words have in a dictionary? ${list}`]);
    return { turns: user(prompt), answer: [...items].sort().join(', '), expected: { items } };
  },
  checker(e, where) {
    const items = new ExpectedReader(e, where).strs('items', 2);
    const target = [...items].sort();
    return (ans) => orderVerdict(ans, items, target);
  },
  flaw(rng, item) {
    const items = item.expected['items'] as string[];
    const sorted = [...items].sort();
    return chance(rng, 0.5) ? items.join(', ') : sorted.slice(0, -1).join(', ');
  },
};
