/**
 * Families whose prompts demand a form as well as content: format instructions (one word, a
 * numbered list of exactly N items, capital letters, end with "!") and short constrained stories
 * (must mention given things, in a given number of sentences).
 *
 *   format  "Name three animals as a numbered list."  → "1. Dog\n2. Owl\n3. Frog"
 *   story   "Write a two-sentence story about a cat named Pip and a red ball." → two sentences naming all four
 *
 * Score = content × (0.7 + 0.3 × format): the right content in the wrong form keeps 70%, a list
 * with N−1 of N items loses both a share of content and of form.
 *
 * What it is not: system-prompt constraints (../constraints.ts), which apply to any answer.
 */
import { ANIMALS, CATEGORY_WORDS, COLORS, COLOR_FACTS, PET_NAMES, PLACES, TOYS, article, chance, int, kid, pick, pickDistinct, type WordCategory } from '../lexicon.js';
import { capitalize, hasPhrase, norm, numberToWords, numberedItems, sentencesOf, wordCount } from '../text.js';
import type { Family, Verdict, WorldItem } from '../types.js';
import { ExpectedReader, keywordVerdict, verdict, withFormat } from './check.js';

const user = (content: string): WorldItem['turns'] => [{ role: 'user', content }];

const PLURAL: Record<WordCategory, string> = { animal: 'animals', colour: 'colours', toy: 'toys', place: 'places', fruit: 'fruits' };
const GREETINGS = ['good morning', 'happy birthday', 'well done', 'good night', 'thank you', 'see you soon', 'good luck', 'welcome home'];
const FORMATS = ['one_word', 'numbered_list', 'caps', 'exclaim'] as const;
type Format = (typeof FORMATS)[number];

/** Share of `words` the text mentions (whole words, plurals allowed). */
export function mentionShare(text: string, words: readonly string[]): number {
  return words.length === 0 ? 1 : words.filter((w) => hasPhrase(text, [w], true)).length / words.length;
}

/** The answer ends with "!" (closing quotes or brackets after it allowed). */
export function endsWithBang(text: string): boolean {
  return /![\s"')\]]*$/.test(text);
}

/** Every letter of the answer is a capital (and there is at least one letter). */
export function isAllCaps(text: string): boolean {
  return /[A-Z]/.test(text) && !/[a-z]/.test(text);
}

export const format: Family = {
  name: 'format',
  category: 'helpful',
  difficulty: 'medium',
  about: 'content plus a demanded form: one word, a numbered list of exactly N items, capital letters, end with "!"',
  make(rng) {
    const k = kid(rng);
    const f: Format = pick(rng, FORMATS);
    if (f === 'one_word') {
      if (chance(rng, 0.6)) {
        const [thing, colour] = pick(rng, COLOR_FACTS);
        const prompt = pick(rng, [`${k.name} asks: what colour is ${thing}? Answer in one word.`, `What color is ${thing}? Use only one word, please, ${k.name} is learning colours.`,
          `One word only: what colour is ${thing}?`]);
        return { turns: user(prompt), answer: `${capitalize(colour)}.`, expected: { format: f, accept: [colour] } };
      }
      const cat = pick(rng, ['animal', 'colour', 'fruit', 'toy'] as const);
      const prompt = pick(rng, [`${k.name} is playing a word game. Name ${article(cat)} ${cat} in one word.`, `Name ${article(cat)} ${cat} that ${k.name} might like. Reply with a single word.`,
        `Give me one ${cat} for ${k.name}'s list, just one word.`]);
      const answer = capitalize(pick(rng, CATEGORY_WORDS[cat].filter((w) => !w.includes(' ')).slice(0, 12))) + '.';
      return { turns: user(prompt), answer, expected: { format: f, accept: [...CATEGORY_WORDS[cat]] } };
    }
    if (f === 'numbered_list') {
      const cat = pick(rng, ['animal', 'colour', 'fruit', 'toy', 'place'] as const);
      const n = int(rng, 2, 5);
      const nw = pick(rng, [String(n), numberToWords(n)]);
      const prompt = pick(rng, [`Name ${nw} ${PLURAL[cat]} as a numbered list.`, `${k.name} needs ${nw} ${PLURAL[cat]} for a game. Write them as a numbered list.`,
        `List exactly ${nw} ${PLURAL[cat]}, numbered 1 to ${n}. ${k.name} will read them.`, `Give ${k.name} a numbered list of ${nw} ${PLURAL[cat]}.`]);
      const pool = CATEGORY_WORDS[cat].filter((w) => !w.includes(' ')).slice(0, 16);
      const answer = pickDistinct(rng, pool, n).map((w, i) => `${i + 1}. ${capitalize(w)}`).join('\n');
      return { turns: user(prompt), answer, expected: { format: f, n, category: cat } };
    }
    if (f === 'caps') {
      const g = pick(rng, GREETINGS);
      const prompt = pick(rng, [`Say "${g}" to ${k.name} in capital letters.`, `Write "${g}, ${k.name}" using only capital letters.`, `Shout "${g}" to ${k.name}: all caps, please.`]);
      return { turns: user(prompt), answer: `${g.toUpperCase()}, ${k.name.toUpperCase()}!`, expected: { format: f, mentions: [g, k.name] } };
    }
    const toy = pick(rng, TOYS);
    const colour = pick(rng, COLORS);
    const prompt = pick(rng, [`Tell ${k.name} that ${k.pos} ${colour} ${toy} is nice, and end with an exclamation mark.`,
      `Write one sentence for ${k.name} about ${k.pos} ${colour} ${toy}. It must end with "!".`, `Cheer for ${k.name}'s ${colour} ${toy}, ending your answer with an exclamation mark.`]);
    const answer = pick(rng, [`${k.name}, your ${colour} ${toy} is really nice!`, `What a great ${colour} ${toy}, ${k.name}!`]);
    return { turns: user(prompt), answer, expected: { format: 'exclaim', mentions: [k.name, toy] } };
  },
  checker(e, where) {
    const r = new ExpectedReader(e, where);
    const f = r.oneOf('format', FORMATS);
    if (f === 'one_word') {
      const accept = r.strs('accept', 1);
      return (ans) => withFormat(keywordVerdict(ans, accept, []), wordCount(ans) === 1 ? 1 : 0);
    }
    if (f === 'numbered_list') {
      const n = r.num('n');
      const words = CATEGORY_WORDS[r.oneOf('category', ['animal', 'colour', 'toy', 'place', 'fruit'] as const)];
      return (ans): Verdict => {
        const { items, numbering } = numberedItems(ans);
        const pieces = items.length > 0 ? items : norm(ans).split(/[,\n;]|\band\b/);
        const good = new Set(pieces.map((p) => words.find((w) => hasPhrase(p, [w], true))).filter((w) => w !== undefined));
        const content = verdict(Math.min(good.size, n) / n, { items: Math.min(good.size, n) / n });
        const form = numbering ? Math.max(0, 1 - Math.abs(items.length - n) / n) : 0;
        return withFormat(content, form);
      };
    }
    const mentions = r.strs('mentions', 1);
    const formOk = f === 'caps' ? isAllCaps : endsWithBang;
    return (ans) => withFormat(verdict(mentionShare(ans, mentions), { mentions: mentionShare(ans, mentions) }), formOk(ans) ? 1 : 0);
  },
  flaw(rng, item) {
    const e = item.expected;
    if (e['format'] === 'numbered_list') return item.answer.split('\n').slice(0, -1).join('\n');
    if (e['format'] === 'one_word') return `I think it is ${item.answer.toLowerCase().replace(/\.$/, '')}, of course.`;
    if (e['format'] === 'caps') return capitalize(item.answer.toLowerCase());
    return chance(rng, 0.5) ? item.answer.replace(/!$/, '.') : 'That is nice.';
  },
};

// ---------------------------------------------------------------------------------------------
// constrained stories

const COUNT_WORDS = ['one', 'two', 'three', 'four'];

export const story: Family = {
  name: 'story',
  category: 'helpful',
  difficulty: 'hard',
  about: 'a short story that must mention given characters and things, in a given number of sentences',
  make(rng) {
    const n = int(rng, 2, 3);
    const colour = pick(rng, COLORS);
    const toy = pick(rng, TOYS);
    const place = pick(rng, PLACES);
    if (chance(rng, 0.5)) {
      const animal = pick(rng, ANIMALS);
      const p = pick(rng, PET_NAMES);
      const prompt = pick(rng, [`Write a ${COUNT_WORDS[n - 1]}-sentence story about ${article(animal)} ${animal} named ${p} and ${article(colour)} ${colour} ${toy}.`,
        `Tell me a story in ${n} sentences about ${p} the ${animal} and ${article(colour)} ${colour} ${toy}.`,
        `In exactly ${COUNT_WORDS[n - 1]} sentences, tell a story about ${article(animal)} ${animal} called ${p} who finds ${article(colour)} ${colour} ${toy}.`]);
      const s = [
        pick(rng, [`There was ${article(animal)} ${animal} named ${p} who loved ${article(colour)} ${colour} ${toy}.`, `${p} was a happy ${animal} with ${article(colour)} ${colour} ${toy}.`]),
        pick(rng, [`One day, ${p} took the ${toy} to the ${place} and played all day.`, `Every morning, ${p} carried the ${toy} to the ${place}.`]),
        pick(rng, [`When the sun went down, ${p} went home happy.`, `At night, ${p} slept next to it.`]),
      ];
      return { turns: user(prompt), answer: s.slice(0, n).join(' '), expected: { mentions: [animal, p, colour, toy], sentences: [n, n] } };
    }
    const k = kid(rng);
    const prompt = pick(rng, [`Tell me a short story, ${n} sentences long, about ${k.name} and ${k.pos} ${colour} ${toy} at the ${place}.`,
      `Write a story of ${COUNT_WORDS[n - 1]} sentences where ${k.name} finds ${article(colour)} ${colour} ${toy} at the ${place}.`,
      `Can you make up a ${COUNT_WORDS[n - 1]}-sentence story about ${k.name}, the ${place} and ${article(colour)} ${colour} ${toy}?`]);
    const s = [
      pick(rng, [`${k.name} went to the ${place} one morning.`, `One sunny day, ${k.name} walked to the ${place}.`]),
      pick(rng, [`There ${k.sub} found ${article(colour)} ${colour} ${toy} under a bush.`, `${capitalize(k.sub)} played with ${k.pos} ${colour} ${toy} for hours.`]),
      pick(rng, [`${k.name} smiled all the way home.`, `It was the best day ever.`]),
    ];
    return { turns: user(prompt), answer: s.slice(0, n).join(' '), expected: { mentions: [k.name, colour, toy, place], sentences: [n, n] } };
  },
  checker(e, where) {
    const r = new ExpectedReader(e, where);
    const mentions = r.strs('mentions', 1);
    const range = r.nums('sentences');
    const [lo, hi] = [range[0] ?? 1, range[1] ?? range[0] ?? 1];
    return (ans) => {
      const s = sentencesOf(ans).length;
      const off = s < lo ? lo - s : s > hi ? s - hi : 0;
      const m = mentionShare(ans, mentions);
      return withFormat(verdict(m, { mentions: m }), off === 0 ? 1 : off === 1 && s > 0 ? 0.5 : 0);
    };
  },
  flaw(rng, item) {
    const mentions = item.expected['mentions'] as string[];
    const drop = pick(rng, mentions);
    if (chance(rng, 0.5)) return item.answer.split(' ').filter((w) => !norm(w).startsWith(norm(drop))).join(' ');
    return `${item.answer} Then they all had cake. The end.`;
  },
};
