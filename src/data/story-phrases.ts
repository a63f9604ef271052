/**
 * The phrases every plot of the story grammar uses: people (name and pronouns), the pet, feelings,
 * reactions, places and lines of dialogue, each spoken through a Teller so that every choice is a
 * pick (see story-teller.ts for why that keeps the grammar unambiguous).
 *
 * What it is not: the plots (story-plots.ts) or the story frame (story-grammar.ts).
 */
import { choice, oneOf, type Item, type Teller } from './story-teller.js';
import * as W from './story-words.js';

export interface Person {
  name: string;
  sub: string;
  Sub: string;
  obj: string;
  pos: string;
  Pos: string;
  hers: string;
}

export function kid(name: string, g: W.Gender): Person {
  return g === 'girl'
    ? { name, sub: 'she', Sub: 'She', obj: 'her', pos: 'her', Pos: 'Her', hers: 'hers' }
    : { name, sub: 'he', Sub: 'He', obj: 'him', pos: 'his', Pos: 'His', hers: 'his' };
}

export function elder(p: W.ParentItem): Person {
  return { name: p.title, sub: p.sub, Sub: p.Sub, obj: p.obj, pos: p.pos, Pos: p.pos === 'her' ? 'Her' : 'His', hers: p.pos === 'her' ? 'hers' : 'his' };
}

export interface Pet {
  name: string;
  kind: string;
}

export interface Cast {
  hero: Person;
  pet: Pet;
}

/** what the ending paragraph says: things the hero does from now on, and lessons */
export interface Moral {
  actions: string[];
  lessons: string[];
}


export type End = '.' | '!' | '?';
/** A line of dialogue as it reads after an interjection ("where is my ball"); `say` capitalises it. */
export interface Line extends Item {
  end: End;
}
export type Tone = keyof typeof W.INTERJECTIONS;

export const line = (text: string, end: End = '.'): Line => ({ text, end });
export const capital = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** The person as the subject: name or pronoun. */
export function subject(t: Teller, p: Person, cap: boolean): void {
  t.pick(oneOf(p.name, cap ? p.Sub : p.sub));
}

export function petRef(t: Teller, pet: Pet, cap: boolean): void {
  t.pick(oneOf(pet.name, (cap ? 'The ' : 'the ') + pet.kind));
}

/** "Lily and Max", "They", "The two friends" */
export function both(t: Teller, a: string, b: string): void {
  t.pick(oneOf(`${a} and ${b}`, 'They', 'The two friends'));
}

export function feel(t: Teller, p: Person, mood: W.Mood): void {
  subject(t, p, true);
  t.pick(W.FEEL_VERBS);
  const m = t.pick(W.MOODS[mood]);
  if (t.pick(W.MOOD_MORE).text === ' and ') {
    t.pick(W.MOODS[mood], m);
    t.say('.');
  }
}

/** "Lily smiled happily." */
export function react(t: Teller, p: Person): void {
  subject(t, p, true);
  t.pick(W.REACTIONS);
  t.pick(W.REACTION_ENDS);
}

/** "at the busy park" */
export function place(t: Teller): void {
  t.pick(W.AT);
  t.pick(W.PLACE_ADJ);
  sp(t);
  t.pick(W.PLACES);
}

/** The words inside the quotes: an interjection and a line, or a line alone. */
export function words(t: Teller, lines: Line[], tone: Tone): Line {
  const first = t.pick(choice<Item & { line?: Line }>([
    ...W.INTERJECTIONS[tone].map((text) => ({ text })),
    ...lines.map((l) => ({ text: capital(l.text), line: l })),
  ]));
  return first.line ?? t.pick(choice(lines));
}

const SPEECH_VERBS: Record<End, string[]> = {
  '.': ['said', 'whispered', 'replied', 'added'],
  '!': ['shouted', 'cried', 'said', 'yelled', 'called'],
  '?': ['asked', 'wondered'],
};
/** verb before the quote → the line endings it takes */
const LEAD_VERBS: [string, End[]][] = [
  ['said', ['.', '!']],
  ['asked', ['?']],
  ['shouted', ['!']],
  ['whispered', ['.']],
  ['cried', ['!']],
  ['replied', ['.', '!', '?']],
];

/** One line of dialogue: `"Oh no, where is it?" asked Lily.` or `Lily said, "Where is it?"` */
export function quote(t: Teller, s: Person, lines: Line[], tone: Tone): void {
  const form = t.pick(oneOf('"', s.name, s.Sub));
  if (form.text === '"') {
    const l = words(t, lines, tone);
    t.say(l.end === '.' ? ',"' : `${l.end}"`);
    const verbs = SPEECH_VERBS[l.end];
    t.pick(oneOf(...verbs.map((v) => ` ${v} ${s.name}.`), ...verbs.map((v) => ` ${s.sub} ${v}.`)));
    return;
  }
  const lead = LEAD_VERBS.filter(([, ends]) => lines.some((l) => ends.includes(l.end)));
  const verb = t.pick(choice(lead.map(([v, ends]) => ({ text: ` ${v}, "`, ends }))));
  const l = words(t, lines.filter((x) => verb.ends.includes(x.end)), tone);
  t.say(`${l.end}"`);
}

export function sp(t: Teller): void {
  t.say(' ');
}
