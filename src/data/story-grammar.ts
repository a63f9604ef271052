/**
 * The story grammar: a TinyStories-like children's story told through a Teller (story-teller.ts).
 * A story is three paragraphs separated by "\n": the hero and the pet; the plot (one of seven:
 * a lost toy, a new toy to share, a fear, a hurt animal, a hard task, a found thing, an outing);
 * the moral. Every choice is a `pick` from a prefix-free list made exactly where its text goes,
 * which is what makes the grammar unambiguous (see story-teller.ts for the argument).
 *
 * Rules that keep it so, for whoever edits these files:
 *   - never emit text that depends on a choice that has not been emitted yet (pick, then use);
 *   - lists built on the fly (with names in them) are checked by `choice()` like the static ones;
 *   - no list holds "" (it begins every text; `choice()` refuses it next to anything else), so an
 *     optional part is a pick between the part and the text that follows without it.
 *
 * Files: story-words.ts (word lists), story-phrases.ts (shared phrases), story-plots.ts (plots).
 * What it is not: the sampler, the reader or the API (story-teller.ts, stories.ts).
 */
import { oneOf, type Teller } from './story-teller.js';
import * as W from './story-words.js';
import { kid, petRef, sp, subject, type Cast } from './story-phrases.js';
import { PLOTS } from './story-plots.js';

/** Tells one story: every word goes through `t`. */
export function tellStory(t: Teller): void {
  t.pick(W.OPEN_TIMES);
  if (t.pick(W.OPEN_FRAMES).town) {
    t.pick(W.TOWN_ADJ);
    sp(t);
    t.pick(W.TOWNS);
    t.pick(W.THERE);
  }
  const adj = t.pick(W.HERO_ADJ);
  if (t.pick(W.ADJ_MORE).text === ', ') {
    t.pick(W.HERO_ADJ, adj);
    sp(t);
  }
  const g = t.pick(W.GENDERS).g;
  t.say(' named ');
  const hero = kid(t.pick(g === 'girl' ? W.GIRL_NAMES : W.BOY_NAMES).text, g);
  t.say('. ');
  subject(t, hero, true);
  if (t.pick(W.HOME_VERBS).family) {
    t.say(`${hero.pos} `);
    t.pick(W.FAMILY);
  }
  t.pick(W.HOUSE_ADJ);
  sp(t);
  t.pick(W.HOUSES);
  t.pick(W.NEAR);
  t.pick(W.PLACES);
  t.say('. ');
  subject(t, hero, true);
  t.pick(W.LIKE_VERBS);
  const a1 = t.pick(W.ACTIVITIES);
  const more = t.pick(W.ACTIVITY_MORE).more;
  if (more === 2) {
    const a2 = t.pick(W.ACTIVITIES, a1);
    t.say(' and ');
    t.pick(W.ACTIVITIES, [a1, a2]);
  } else if (more === 1) {
    t.pick(W.ACTIVITIES, a1);
  }
  if (more > 0) t.pick(W.ACTIVITY_ENDS);
  sp(t);
  t.pick(oneOf(`${hero.name} had a `, `${hero.Sub} had a `, `${hero.name}'s best friend was a `, `${hero.Pos} best friend was a `));
  t.pick(W.PET_ADJ);
  sp(t);
  const kind = t.pick(W.ANIMALS).text;
  t.say(' named ');
  const pet = { name: t.pick(W.PET_NAMES).text, kind };
  t.say('. ');
  petRef(t, pet, true);
  t.pick(W.LIKE_VERBS);
  const p1 = t.pick(W.PET_ACTS);
  if (t.pick(W.PET_ACT_MORE).more > 0) {
    t.pick(W.PET_ACTS, p1);
    t.say('.');
  }
  t.say('\n');
  const cast: Cast = { hero, pet };
  t.pick(W.WHEN);
  subject(t, hero, false);
  const moral = t.pick(PLOTS).run(t, cast);
  t.say('\n');
  t.pick(W.MORAL_OPENERS);
  subject(t, hero, false);
  sp(t);
  const actions = oneOf(...moral.actions);
  const act = t.pick(actions);
  if (t.pick(oneOf('. ', ' and ')).text === ' and ') {
    t.pick(actions, act);
    t.say('. ');
  }
  subject(t, hero, true);
  t.pick(W.LEARNED);
  const lessons = oneOf(...moral.lessons);
  const lesson = t.pick(lessons);
  if (t.pick(oneOf('.', ', and that ')).text !== '.') {
    t.pick(lessons, lesson);
    t.say('.');
  }
}
