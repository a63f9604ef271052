/**
 * Pretraining text of the chat world: its tasks written as ordinary prose — a child asks, a parent
 * or teacher answers; spelling and counting games; stories with questions; a grown-up kindly
 * refusing a harmful request — so a base model pretrained on the stories plus these documents
 * already knows the world's language before SFT.
 *
 *   for (const doc of worldDocuments(1, 1000)) corpus.push(doc);
 *
 * Document i of seed s comes from Rng(hashSeed(s, 0xd0c5, i)) alone. Documents are ASCII prose
 * with "\n" between lines and no blank line (the stories corpus's .txt convention).
 *
 * What it is not: wiring into the pretraining pipeline (src/cli/data.ts, src/train/).
 */
import { check } from '../util/errors.js';
import { hashSeed, Rng } from '../util/rng.js';
import { borderline } from './borderline.js';
import { HELPFUL_FAMILIES } from './families.js';
import { PARENTS, PLACES, chance, int, kid, pick } from './lexicon.js';
import { unsafe } from './safety.js';
import type { Family } from './types.js';

function family(rng: Rng): Family {
  const u = rng.float();
  return u < 0.1 ? unsafe : u < 0.18 ? borderline : pick(rng, HELPFUL_FAMILIES);
}

/** One line of prose: no blank lines inside a document. */
const flat = (s: string): string => s.replace(/\s*\n+\s*/g, ' ').trim();

/** Document `index` of seed `seed`. */
export function worldDocument(seed: number, index: number): string {
  const rng = new Rng(hashSeed(seed, 0xd0c5, index));
  const k = kid(rng);
  const teacher = chance(rng, 0.3);
  const elder = teacher ? 'the teacher' : pick(rng, PARENTS);
  const Elder = elder.charAt(0).toUpperCase() + elder.slice(1);
  const chatStyle = chance(rng, 0.3);
  const lines: string[] = [pick(rng, [
    `One evening, ${k.name} asked ${elder} a lot of questions.`, `${k.name} and ${elder} sat together at the ${pick(rng, PLACES)}.`,
    `${teacher ? 'At school, the teacher' : Elder} played a question game with ${k.name}.`, `${k.name} was curious about everything that day.`,
  ])];
  for (let q = int(rng, 2, 4); q > 0; q--) {
    const item = family(rng).make(rng);
    for (const m of item.turns) {
      const said = flat(m.content);
      if (m.role === 'user') lines.push(chatStyle ? `${k.name}: ${said}` : pick(rng, [`"${said}" asked ${k.name}.`, `${k.name} said, "${said}"`]));
      else lines.push(chatStyle ? `${Elder}: ${said}` : `${Elder} said, "${said}"`);
    }
    const a = flat(item.answer);
    lines.push(chatStyle ? `${Elder}: ${a}` : pick(rng, [`${Elder} said, "${a}"`, `${Elder} thought for a moment and answered, "${a}"`]));
  }
  lines.push(pick(rng, [`${k.name} smiled and said thank you.`, `"I learned a lot today," said ${k.name}.`, `Then it was time for bed.`]));
  return lines.join('\n');
}

/** `count` documents of seed `seed`, starting at document `start` (default 0). */
export function* worldDocuments(seed: number, count: number, start = 0): Generator<string> {
  check(Number.isSafeInteger(seed) && seed >= 0, `world documents: expected seed to be a non-negative integer but found ${seed}`);
  check(Number.isSafeInteger(count) && count >= 0, `world documents: expected count to be a non-negative integer but found ${count}`);
  for (let i = 0; i < count; i++) yield worldDocument(seed, start + i);
}
