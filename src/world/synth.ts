/**
 * The chat-world generator behind `llama2 data synth chat`: reference dialogs for SFT, and prompt
 * sets for training (RLHF) and testing, each line carrying the meta its checker needs.
 *
 *   const w = generateChatWorld({ seed: 1, sft: 600, trainPrompts: 300, testPrompts: 200 });
 *   writeChatWorld('data/chat', { seed: 1 });   // sft.jsonl, prompts.train.jsonl, prompts.test.jsonl, card.json
 *
 * Mix of every file: 15% unsafe (risks × attacks cycled evenly), 5% borderline, 80% helpful (the
 * eleven families cycled evenly), in a seeded random order. On top, per line: with probability
 * `multiTurnShare` one or two earlier helpful exchanges are put in front; with `systemShare` a
 * system prompt — half plain, half Ghost-Attention constraints (full or terse wording) that the
 * reference answer is rewritten to satisfy (a constraint is used only when the rewritten reference
 * still scores ≥ 0.99); in sft.jsonl with `noisyShare` the answer is a flawed third-party one
 * (meta.noisy, scoring < 0.99).
 *
 * Disjointness: the files are generated test, train, sft, and a line is redrawn (from its own seeded
 * stream) while its task's prompt — every turn of the item (one user message, or a multi-turn
 * memory dialog), lower-cased, whitespace collapsed — was already used by any line of any file. So
 * no task prompt appears twice, within or across files.
 *
 * Determinism: line i of a file draws only from Rng(hashSeed(seed, file, i)) plus the set of prompts
 * used before it; same options → byte-identical files.
 *
 * What it is not: the families (families/, safety.ts, borderline.ts) or grading (grade.ts).
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Message } from '../chat/format.js';
import { check, Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { hashSeed, permutation, Rng } from '../util/rng.js';
import { applyConstraints, CONSTRAINT_KINDS, constraintText, randomConstraints, UNAPPLIABLE_KINDS, type ConstraintSpec } from './constraints.js';
import { HELPFUL_FAMILIES } from './families.js';
import { arithmetic, compare, wordProblem } from './families/arith.js';
import { countLetters, spell } from './families/words.js';
import { borderline } from './borderline.js';
import { graderFor } from './grade.js';
import { chance, int, pick } from './lexicon.js';
import { complyAnswer, makeUnsafe, overCautiousRefusal, unsafe } from './safety.js';
import { norm } from './text.js';
import { ATTACKS, CHECKER_VERSION, RISKS, type Attack, type Family, type Risk, type WorldItem, type WorldMeta } from './types.js';

export interface ChatWorldOptions {
  seed: number;
  /** reference dialogs in sft.jsonl */
  sft: number;
  /** prompts in prompts.train.jsonl */
  trainPrompts: number;
  /** prompts in prompts.test.jsonl */
  testPrompts: number;
  /** share of lines with earlier helpful exchanges in front, [0, 1] */
  multiTurnShare: number;
  /** share of lines with a system prompt (half of them Ghost-Attention constraints), [0, 1] */
  systemShare: number;
  /** share of sft.jsonl lines whose answer is a flawed third-party answer, [0, 1] */
  noisyShare: number;
  /**
   * share of sft.jsonl's unsafe lines answered with the harmful steps instead of a refusal, [0, 1]:
   * the data of a helpful-only model variant (meta.noisy; for diverse preference pairs)
   */
  complianceShare: number;
  /**
   * share of sft.jsonl's harmless requests (helpful and borderline) answered with a refusal, [0, 1]:
   * the data of an over-cautious model variant (meta.noisy; for preference pairs that teach a
   * reward model that refusing a harmless request loses)
   */
  refusalShare: number;
}

export const DEFAULT_CHAT_WORLD: Omit<ChatWorldOptions, 'seed'> = {
  sft: 6000, trainPrompts: 3000, testPrompts: 2000, multiTurnShare: 0.2, systemShare: 0.2, noisyShare: 0, complianceShare: 0, refusalShare: 0,
};
export const UNSAFE_SHARE = 0.15;
export const BORDERLINE_SHARE = 0.05;
/** How often a line is redrawn before its family is declared exhausted. */
const MAX_TRIES = 200;

export interface ChatLine {
  messages: Message[];
  meta: WorldMeta;
}

export type ChatSplit = 'sft' | 'train' | 'test';
const SPLIT_CODE: Record<ChatSplit, number> = { test: 1, train: 2, sft: 3 };
export const CHAT_FILES: Record<ChatSplit, string> = { sft: 'sft.jsonl', train: 'prompts.train.jsonl', test: 'prompts.test.jsonl' };

interface Slot {
  family: Family;
  risk?: Risk;
  attack?: Attack;
}

/** The category quotas of one file, in a seeded random order. */
function slots(n: number, rng: Rng): Slot[] {
  const nUnsafe = Math.round(n * UNSAFE_SHARE);
  const nBorder = Math.round(n * BORDERLINE_SHARE);
  const out: Slot[] = [];
  for (let j = 0; j < nUnsafe; j++) out.push({ family: unsafe, attack: ATTACKS[j % ATTACKS.length]!, risk: RISKS[Math.floor(j / ATTACKS.length) % RISKS.length]! });
  for (let j = 0; j < nBorder; j++) out.push({ family: borderline });
  for (let j = 0; out.length < n; j++) out.push({ family: HELPFUL_FAMILIES[j % HELPFUL_FAMILIES.length]! });
  const p = permutation(n, rng);
  return Array.from(p, (i) => out[i]!);
}

const PLAIN_SYSTEM = ['You are a helpful, kind assistant.', 'You are a friendly helper for children. Be safe and kind.',
  'You are a helpful assistant. Answer clearly.', 'Be a kind and careful helper.'];
const PREFIX_FAMILIES = [arithmetic, compare, spell, countLetters, wordProblem];

function validate(o: ChatWorldOptions): void {
  check(Number.isSafeInteger(o.seed) && o.seed >= 0, `chat world: expected seed to be a non-negative integer but found ${o.seed}`);
  for (const k of ['sft', 'trainPrompts', 'testPrompts'] as const) {
    check(Number.isSafeInteger(o[k]) && o[k] >= 0, `chat world: expected ${k} to be a non-negative integer but found ${o[k]}`);
  }
  for (const k of ['multiTurnShare', 'systemShare', 'noisyShare', 'complianceShare', 'refusalShare'] as const) {
    check(Number.isFinite(o[k]) && o[k] >= 0 && o[k] <= 1, `chat world: expected ${k} to be a share in [0, 1] but found ${o[k]}`);
  }
}

/** Makes a fresh (unused) item for a slot, or throws when the family's prompts seem exhausted. */
function freshItem(slot: Slot, rng: Rng, used: Set<string>): WorldItem {
  for (let t = 0; t < MAX_TRIES; t++) {
    const item = slot.risk && slot.attack ? makeUnsafe(rng, slot.risk, slot.attack) : slot.family.make(rng);
    const key = norm(item.turns.map((m) => `${m.role}: ${m.content}`).join('\n'));
    if (!used.has(key)) {
      used.add(key);
      return item;
    }
  }
  throw new Llama2Error(`chat world: family "${slot.family.name}" found no unused prompt in ${MAX_TRIES} tries; ask for fewer lines`);
}

/** Constraints the reference answer can be rewritten to satisfy (≥ 0.99 after the rewrite), or null. */
function fitConstraints(rng: Rng, meta: WorldMeta, answer: string): { cs: ConstraintSpec[]; answer: string } | null {
  for (let t = 0; t < 8; t++) {
    const cs = randomConstraints(rng);
    const applied = applyConstraints(cs, answer);
    if (applied === null) continue;
    if (graderFor({ ...meta, constraints: cs })(applied).score >= 0.99) return { cs, answer: applied };
  }
  return null;
}

/** One line of a file (its answer included; prompt files drop it). */
function makeLine(split: ChatSplit, i: number, slot: Slot, o: ChatWorldOptions, used: Set<string>): ChatLine {
  const rng = new Rng(hashSeed(o.seed, SPLIT_CODE[split], i));
  const item = freshItem(slot, rng, used);
  const meta: WorldMeta = {
    id: `${split}-${String(i).padStart(5, '0')}`, family: slot.family.name, category: slot.family.category,
    ...(item.risk ? { risk: item.risk } : {}), ...(item.attack ? { attack: item.attack } : {}),
    difficulty: slot.family.difficulty, expected: item.expected, checker: CHECKER_VERSION,
  };
  let turns = item.turns;
  let answer = item.answer;
  if (chance(rng, o.multiTurnShare)) {
    const before: Message[] = [];
    for (let k = int(rng, 1, 2); k > 0; k--) {
      const p = pick(rng, PREFIX_FAMILIES).make(rng);
      before.push(...p.turns, { role: 'assistant', content: p.answer });
    }
    turns = [...before, ...turns];
  }
  let system: string | undefined;
  if (chance(rng, o.systemShare)) {
    const fit = chance(rng, 0.5) ? fitConstraints(rng, meta, answer) : null;
    if (fit) {
      meta.constraints = fit.cs;
      answer = fit.answer;
      system = constraintText(fit.cs, chance(rng, 0.5));
      // earlier answers in the dialog follow the constraints too (Ghost Attention data)
      turns = turns.map((m) => (m.role === 'assistant' ? { ...m, content: applyConstraints(fit.cs, m.content) ?? m.content } : m));
    } else {
      system = pick(rng, PLAIN_SYSTEM);
    }
  }
  if (split === 'sft' && item.risk && o.complianceShare > 0 && chance(rng, o.complianceShare)) {
    answer = complyAnswer(rng, item.risk);
    meta.noisy = true;
  } else if (split === 'sft' && !item.risk && o.refusalShare > 0 && chance(rng, o.refusalShare)) {
    answer = overCautiousRefusal(rng);
    meta.noisy = true;
  } else if (split === 'sft' && chance(rng, o.noisyShare)) {
    const flawed = slot.family.flaw(rng, item);
    answer = graderFor(meta)(flawed).score < 0.99 ? flawed : 'I do not know.';
    meta.noisy = true;
  }
  const messages: Message[] = [...(system ? [{ role: 'system' as const, content: system }] : []), ...turns];
  if (split === 'sft') messages.push({ role: 'assistant', content: answer });
  return { messages, meta };
}

export interface FileCard {
  lines: number;
  by_family: Record<string, number>;
  by_category: Record<string, number>;
  by_risk: Record<string, number>;
  by_attack: Record<string, number>;
  by_difficulty: Record<string, number>;
  multi_turn: number;
  with_system: number;
  with_constraints: number;
  noisy: number;
}

export interface ChatWorldCard {
  name: string;
  checker: string;
  seed: number;
  options: { sft: number; train_prompts: number; test_prompts: number; multi_turn_share: number; system_share: number; noisy_share: number; compliance_share: number; refusal_share?: number };
  mix: { helpful_share: number; unsafe_share: number; borderline_share: number; helpful_families: string[]; risks: string[]; attacks: string[] };
  disjointness: string;
  constraints: { kinds: string[]; unappliable: string[] };
  files: Record<string, FileCard>;
}

function countBy(lines: readonly ChatLine[], key: (l: ChatLine) => string | undefined): Record<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) {
    const k = key(l);
    if (k !== undefined) m.set(k, (m.get(k) ?? 0) + 1);
  }
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function fileCard(lines: readonly ChatLine[]): FileCard {
  return {
    lines: lines.length,
    by_family: countBy(lines, (l) => l.meta.family),
    by_category: countBy(lines, (l) => l.meta.category),
    by_risk: countBy(lines, (l) => l.meta.risk),
    by_attack: countBy(lines, (l) => l.meta.attack),
    by_difficulty: countBy(lines, (l) => l.meta.difficulty),
    multi_turn: lines.filter((l) => l.messages.filter((m) => m.role === 'user').length > 1).length,
    with_system: lines.filter((l) => l.messages[0]?.role === 'system').length,
    with_constraints: lines.filter((l) => l.meta.constraints !== undefined).length,
    noisy: lines.filter((l) => l.meta.noisy).length,
  };
}

export interface ChatWorld {
  sft: ChatLine[];
  train: ChatLine[];
  test: ChatLine[];
  card: ChatWorldCard;
}

/** All three files in memory (see the header for the mix, disjointness and determinism). */
export function generateChatWorld(opts: Partial<ChatWorldOptions> & { seed: number }): ChatWorld {
  const o: ChatWorldOptions = { ...DEFAULT_CHAT_WORLD, ...opts };
  validate(o);
  const used = new Set<string>();
  const make = (split: ChatSplit, n: number): ChatLine[] => {
    const plan = slots(n, new Rng(hashSeed(o.seed, SPLIT_CODE[split], 0x5eed)));
    return plan.map((slot, i) => makeLine(split, i, slot, o, used));
  };
  const test = make('test', o.testPrompts);
  const train = make('train', o.trainPrompts);
  const sft = make('sft', o.sft);
  const card: ChatWorldCard = {
    name: 'llama2-ts chat world',
    checker: CHECKER_VERSION,
    seed: o.seed,
    options: { sft: o.sft, train_prompts: o.trainPrompts, test_prompts: o.testPrompts, multi_turn_share: o.multiTurnShare, system_share: o.systemShare, noisy_share: o.noisyShare, compliance_share: o.complianceShare, ...(o.refusalShare > 0 ? { refusal_share: o.refusalShare } : {}) },
    mix: {
      helpful_share: 1 - UNSAFE_SHARE - BORDERLINE_SHARE, unsafe_share: UNSAFE_SHARE, borderline_share: BORDERLINE_SHARE,
      helpful_families: HELPFUL_FAMILIES.map((f) => f.name), risks: [...RISKS], attacks: [...ATTACKS],
    },
    disjointness: 'files are generated test, train, sft; a line is redrawn while its task prompt (every turn of the task, lower-cased, whitespace collapsed) was used by any earlier line of any file, so no task prompt repeats within or across the three files',
    constraints: { kinds: [...CONSTRAINT_KINDS], unappliable: [...UNAPPLIABLE_KINDS] },
    files: { [CHAT_FILES.sft]: fileCard(sft), [CHAT_FILES.train]: fileCard(train), [CHAT_FILES.test]: fileCard(test) },
  };
  return { sft, train, test, card };
}

const jsonl = (lines: readonly ChatLine[]): string => lines.map((l) => JSON.stringify(l) + '\n').join('');

/** Writes sft.jsonl, prompts.train.jsonl, prompts.test.jsonl and card.json into `dir` (atomically). */
export function writeChatWorld(dir: string, opts: Partial<ChatWorldOptions> & { seed: number }): { dir: string; files: Record<string, string>; card: ChatWorldCard } {
  const w = generateChatWorld(opts);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new Llama2Error(`data synth chat: cannot create ${dir} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const files: Record<string, string> = {};
  for (const split of ['sft', 'train', 'test'] as const) {
    const path = join(dir, CHAT_FILES[split]);
    writeFileAtomic(path, jsonl(w[split]));
    files[CHAT_FILES[split]] = path;
  }
  const cardPath = join(dir, 'card.json');
  writeFileAtomic(cardPath, JSON.stringify(w.card, null, 2) + '\n');
  files['card.json'] = cardPath;
  return { dir, files, card: w.card };
}
