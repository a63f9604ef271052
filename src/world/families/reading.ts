/**
 * Families that answer from text given earlier: reading comprehension over a short story in the
 * prompt (who / where / what colour / how many / what animal), and multi-turn memory, where the
 * user tells facts over several turns and then asks about one of them.
 *
 *   reading  "Mia and her dog Max went to the park. ... What colour was Mia's kite?"  → "It was red."
 *   memory   "My dog Rex is brown." ... "What colour is my dog Rex?"                   → "Rex is brown."
 *
 * Each answer is scored by keywordVerdict (check.ts): the right word, and none of the story's other
 * candidates (the other colour, the other place, the other child), or by numberVerdict.
 *
 * What it is not: the scoring rules themselves (check.ts).
 */
import type { Message } from '../../chat/format.js';
import type { Rng } from '../../util/rng.js';
import { ANIMALS, COLORS, COUNTABLES, PLACES, PET_NAMES, TOYS, article, chance, int, kid, pick, pickDistinct } from '../lexicon.js';
import { capitalize } from '../text.js';
import type { Family, WorldItem } from '../types.js';
import { ExpectedReader, keywordVerdict, numberVerdict } from './check.js';

/** Checker for { accept, distractors } or { answer: number } (shared by reading and memory). */
function keywordOrNumber(e: Record<string, unknown>, where: string): (ans: string) => ReturnType<typeof keywordVerdict> {
  const r = new ExpectedReader(e, where);
  if (r.has('answer')) {
    const n = r.num('answer');
    return (ans) => numberVerdict(ans, n, []);
  }
  const accept = r.strs('accept', 1);
  const distractors = r.strs('distractors');
  return (ans) => keywordVerdict(ans, accept, distractors);
}

function keywordFlaw(rng: Rng, item: WorldItem): string {
  const d = item.expected['distractors'] as string[] | undefined;
  if (item.expected['answer'] !== undefined) return `${(item.expected['answer'] as number) + int(rng, 1, 3)}.`;
  if (d && d.length > 0) return `${capitalize(pick(rng, d))}.`;
  return 'I do not remember.';
}

/** A pet name that is not also a word of the story (a pet "Cookie" next to "cookies"). */
function petName(rng: Rng, avoid: readonly string[]): string {
  let p: string;
  do p = pick(rng, PET_NAMES); while (avoid.some((a) => a.toLowerCase().startsWith(p.toLowerCase())));
  return p;
}

// ---------------------------------------------------------------------------------------------
// reading comprehension

export const reading: Family = {
  name: 'reading',
  category: 'helpful',
  difficulty: 'medium',
  about: 'a 4–5 sentence story in the prompt, then one question (who, where, what colour, how many, what animal)',
  make(rng) {
    const h = kid(rng);
    const f = kid(rng, [h.name]);
    const animal = pick(rng, ANIMALS);
    const [place1, place2] = pickDistinct(rng, PLACES, 2) as [string, string];
    const [toy1, toy2] = pickDistinct(rng, TOYS, 2) as [string, string];
    const [c1, c2] = pickDistinct(rng, COLORS, 2) as [string, string];
    const [things, thing] = pick(rng, COUNTABLES);
    const p = petName(rng, [things, thing, toy1, toy2, place1, place2]);
    const n = int(rng, 2, 12);
    const story = [
      pick(rng, [`${h.name} and ${h.pos} ${animal} ${p} went to the ${place1}.`, `One day, ${h.name} took ${h.pos} ${animal} ${p} to the ${place1}.`,
        `${h.name} went to the ${place1} with ${h.pos} ${animal}, ${p}.`]),
      pick(rng, [`${h.name} brought ${article(c1)} ${c1} ${toy1}, and ${f.name} brought ${article(c2)} ${c2} ${toy2}.`,
        `${capitalize(h.sub)} had ${article(c1)} ${c1} ${toy1}. ${f.name} came too, with ${article(c2)} ${c2} ${toy2}.`]),
      pick(rng, [`${f.name} found ${n} ${things} under a tree.`, `Then ${f.name} found ${n} ${things} by the path.`, `${f.name} counted ${n} ${things} on the ground.`]),
      pick(rng, [`Later, they all walked to the ${place2}.`, `After that, they went on to the ${place2}.`, `When it got late, they walked over to the ${place2}.`]),
      pick(rng, [`${p} was tired but happy.`, `Everyone had a good day.`, `It was a fun day for ${h.name} and ${p}.`]),
    ].join(' ');
    type QA = { q: string; answer: string; expected: Record<string, unknown> };
    const qas: QA[] = [
      { q: pick(rng, [`Where did ${h.name} go first?`, `Where did ${h.name} and ${p} go first?`]),
        answer: pick(rng, [`To the ${place1}.`, `${h.name} went to the ${place1} first.`]), expected: { accept: [place1], distractors: [place2] } },
      { q: pick(rng, [`Where did they go after the ${place1}?`, `Where did they walk to later?`]),
        answer: pick(rng, [`To the ${place2}.`, `They went to the ${place2}.`]), expected: { accept: [place2], distractors: [place1] } },
      { q: pick(rng, [`What colour was ${h.name}'s ${toy1}?`, `What color was the ${toy1}?`]),
        answer: pick(rng, [`It was ${c1}.`, `${capitalize(c1)}.`, `The ${toy1} was ${c1}.`]), expected: { accept: [c1], distractors: [c2] } },
      { q: pick(rng, [`What colour was the ${toy2} that ${f.name} brought?`, `What color was ${f.name}'s ${toy2}?`]),
        answer: pick(rng, [`It was ${c2}.`, `${capitalize(c2)}.`]), expected: { accept: [c2], distractors: [c1] } },
      { q: pick(rng, [`Who brought the ${toy2}?`, `Who found the ${things}?`]),
        answer: pick(rng, [`${f.name} did.`, `${f.name}.`]), expected: { accept: [f.name], distractors: [h.name, p] } },
      { q: pick(rng, [`How many ${things} did ${f.name} find?`, `How many ${things} were there?`]),
        answer: pick(rng, [`${f.name} found ${n} ${things}.`, `${n}.`, `There were ${n}.`]), expected: { answer: n } },
      { q: pick(rng, [`What kind of animal is ${p}?`, `What animal did ${h.name} take to the ${place1}?`]),
        answer: pick(rng, [`${p} is ${article(animal)} ${animal}.`, `${capitalize(article(animal))} ${animal}.`]), expected: { accept: [animal], distractors: [] } },
      { q: pick(rng, [`What is the name of ${h.name}'s ${animal}?`, `What is the ${animal} called?`]),
        answer: pick(rng, [`${p}.`, `The ${animal} is called ${p}.`]), expected: { accept: [p], distractors: [h.name, f.name] } },
    ];
    const qa = pick(rng, qas);
    const prompt = pick(rng, [
      `Read the story and answer the question.\n\n${story}\n\nQuestion: ${qa.q}`, `${story}\n\n${qa.q}`,
      `Here is a short story: ${story} ${qa.q}`, `Story: ${story}\nQuestion: ${qa.q}`,
    ]);
    return { turns: [{ role: 'user', content: prompt }], answer: qa.answer, expected: qa.expected };
  },
  checker: keywordOrNumber,
  flaw: keywordFlaw,
};

// ---------------------------------------------------------------------------------------------
// multi-turn memory

const ACKS = ['That sounds lovely!', 'How nice!', 'Thank you for telling me.', 'I will remember that.', 'That is great to hear.', 'Oh, how fun!'];

export const memory: Family = {
  name: 'memory',
  category: 'helpful',
  difficulty: 'medium',
  about: 'multi-turn: the user tells facts (pet, toy, friend) over 2–4 turns, then asks about one of them',
  make(rng) {
    const me = kid(rng);
    const friend = kid(rng, [me.name]);
    const animal = pick(rng, ANIMALS);
    const [petColour, toyColour] = pickDistinct(rng, COLORS, 2) as [string, string];
    const toy = pick(rng, TOYS);
    const pet = petName(rng, [toy]);
    const place = pick(rng, PLACES);
    const facts: Message[][] = [
      [{ role: 'user', content: pick(rng, [`My ${animal} ${pet} is ${petColour}.`, `I have a ${petColour} ${animal} called ${pet}.`, `My pet is ${article(animal)} ${animal} named ${pet}, and ${pet} is ${petColour}.`]) },
        { role: 'assistant', content: `${pick(rng, ACKS)} ${pet} sounds like a sweet ${animal}.` }],
      [{ role: 'user', content: pick(rng, [`My favourite toy is ${article(toyColour)} ${toyColour} ${toy}.`, `I love my ${toyColour} ${toy} more than anything.`]) },
        { role: 'assistant', content: `${pick(rng, ACKS)} ${capitalize(article(toyColour))} ${toyColour} ${toy} sounds like fun.` }],
      [{ role: 'user', content: pick(rng, [`My best friend is called ${friend.name}.`, `I play with my friend ${friend.name} every day.`]) },
        { role: 'assistant', content: `${pick(rng, ACKS)} It is good to have a friend like ${friend.name}.` }],
      [{ role: 'user', content: pick(rng, [`We often go to the ${place} on Sundays.`, `I live near the ${place}.`]) },
        { role: 'assistant', content: `${pick(rng, ACKS)} The ${place} is a nice place.` }],
    ];
    const shown = [facts[0]!, ...pickDistinct(rng, facts.slice(1), int(rng, 1, 3))];
    const order = pickDistinct(rng, shown, shown.length);
    const turns: Message[] = [];
    if (chance(rng, 0.5)) turns.push({ role: 'user', content: pick(rng, [`Hi! I am ${me.name}.`, `Hello, my name is ${me.name}.`]) }, { role: 'assistant', content: `Hello, ${me.name}! How can I help you today?` });
    for (const f of order) turns.push(...f);
    const toyShown = shown.includes(facts[1]!);
    type QA = { q: string; answer: string; expected: Record<string, unknown> };
    const qas: QA[] = [
      { q: pick(rng, [`What colour is my ${animal} ${pet}?`, `Do you remember what colour ${pet} is?`, `What color did I say ${pet} is?`]),
        answer: pick(rng, [`${pet} is ${petColour}.`, `Your ${animal} ${pet} is ${petColour}.`, `${capitalize(petColour)}.`]),
        expected: { accept: [petColour], distractors: toyShown ? [toyColour] : [] } },
      { q: pick(rng, [`What is the name of my ${petColour} ${animal}?`, `What did I say my ${animal} is called?`]),
        answer: pick(rng, [`Your ${animal} is called ${pet}.`, `${pet}.`]), expected: { accept: [pet], distractors: [friend.name, me.name] } },
      { q: pick(rng, [`What kind of animal is ${pet}?`, `Remind me, what animal is ${pet}?`]),
        answer: pick(rng, [`${pet} is ${article(animal)} ${animal}.`, `${capitalize(article(animal))} ${animal}.`]), expected: { accept: [animal], distractors: [] } },
    ];
    if (toyShown) {
      qas.push({ q: pick(rng, [`What colour is my ${toy}?`, `Do you remember the colour of my ${toy}?`]),
        answer: pick(rng, [`Your ${toy} is ${toyColour}.`, `${capitalize(toyColour)}.`]), expected: { accept: [toyColour], distractors: [petColour] } });
    }
    const qa = pick(rng, qas);
    turns.push({ role: 'user', content: qa.q });
    return { turns, answer: qa.answer, expected: qa.expected };
  },
  checker: keywordOrNumber,
  flaw: keywordFlaw,
};
