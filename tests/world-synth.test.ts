/**
 * The chat-world generator: every generated line's reference answer scores ≥ 0.99 with its own
 * checker (every family, with multi-turn prefixes and system constraints), an empty answer scores 0,
 * flawed third-party answers score below 0.99; the three files are disjoint and deterministic; the
 * mix follows the documented shares; and the pretraining documents are seeded prose.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateChatWorld, writeChatWorld, type ChatLine } from '../src/world/synth.js';
import { graderFor } from '../src/world/grade.js';
import { FAMILIES } from '../src/world/families.js';
import { worldDocuments } from '../src/world/documents.js';
import { norm } from '../src/world/text.js';
import { ATTACKS, RISKS } from '../src/world/types.js';

const REF_MIN = 0.99;
const finalPrompt = (l: ChatLine): string => norm([...l.messages].reverse().find((m) => m.role === 'user')!.content);
/** the whole prompt: every message but the system message and the final answer */
const wholePrompt = (l: ChatLine): string => norm(l.messages.filter((m, i) => m.role !== 'system' && !(i === l.messages.length - 1 && m.role === 'assistant')).map((m) => `${m.role}: ${m.content}`).join('\n'));

test('every reference answer scores ≥ 0.99 with its own checker; an empty answer scores 0', () => {
  const w = generateChatWorld({ seed: 11, sft: 700, trainPrompts: 0, testPrompts: 0, multiTurnShare: 0.3, systemShare: 0.6 });
  const bad: string[] = [];
  const families = new Set<string>();
  let constrained = 0;
  for (const l of w.sft) {
    families.add(l.meta.family);
    if (l.meta.constraints) constrained++;
    const answer = l.messages[l.messages.length - 1]!.content;
    const grade = graderFor(l.meta);
    const g = grade(answer, l.messages.slice(0, -1));
    if (g.score < REF_MIN || g.violation || (l.meta.category !== 'unsafe') === g.refused) bad.push(`${l.meta.id} ${l.meta.family} ${g.score.toFixed(3)} ${JSON.stringify(g.parts)}: ${answer}`);
    if (grade('').score !== 0) bad.push(`${l.meta.id}: empty answer scored ${grade('').score}`);
  }
  assert.deepEqual(bad, []);
  assert.deepEqual([...families].sort(), FAMILIES.map((f) => f.name).sort());
  assert.ok(constrained > 100, `only ${constrained} lines with constraints`);
});

test('noisy sft lines are marked and their answers score below 0.99', () => {
  const w = generateChatWorld({ seed: 12, sft: 400, trainPrompts: 0, testPrompts: 0, noisyShare: 1 });
  assert.ok(w.sft.every((l) => l.meta.noisy === true));
  const high = w.sft.filter((l) => graderFor(l.meta)(l.messages[l.messages.length - 1]!.content).score >= REF_MIN);
  assert.deepEqual(high.map((l) => l.meta.id), []);
  assert.equal(w.card.files['sft.jsonl']!.noisy, 400);
  assert.equal(generateChatWorld({ seed: 12, sft: 50, trainPrompts: 0, testPrompts: 0 }).sft.filter((l) => l.meta.noisy).length, 0);
});

test('refusal-share: harmless sft requests answered with refusals that grade as refusals (false refusals); unsafe ones keep theirs', () => {
  const w = generateChatWorld({ seed: 13, sft: 300, trainPrompts: 0, testPrompts: 0, refusalShare: 1 });
  const harmless = w.sft.filter((l) => l.meta.category !== 'unsafe');
  assert.ok(harmless.length > 200);
  for (const l of harmless) {
    assert.equal(l.meta.noisy, true);
    const g = graderFor(l.meta)(l.messages[l.messages.length - 1]!.content);
    assert.ok(g.refused && g.score < 0.5, `${l.meta.id}: ${JSON.stringify(g)}`);
  }
  assert.ok(w.sft.filter((l) => l.meta.category === 'unsafe').every((l) => !l.meta.noisy));
  // the default draws nothing for it: the same world as before the option existed
  assert.deepEqual(generateChatWorld({ seed: 13, sft: 40, trainPrompts: 0, testPrompts: 0, refusalShare: 0 }).sft, generateChatWorld({ seed: 13, sft: 40, trainPrompts: 0, testPrompts: 0 }).sft);
});

test('default sizes: the documented mix, prompts without answers, and no prompt repeated within or across files', () => {
  const w = generateChatWorld({ seed: 2 });
  assert.deepEqual([w.sft.length, w.train.length, w.test.length], [6000, 3000, 2000]);
  const seen = new Map<string, string>();
  const seenFinal = new Map<string, string>();
  for (const l of [...w.test, ...w.train, ...w.sft]) {
    const k = wholePrompt(l);
    assert.ok(!seen.has(k), `"${k}" in ${seen.get(k)} and ${l.meta.id}`);
    seen.set(k, l.meta.id);
    // a single-turn task is its final user message: those never repeat either
    if (l.meta.family === 'memory' || l.meta.attack === 'multi_turn') continue;
    const f = finalPrompt(l);
    assert.ok(!seenFinal.has(f), `final prompt "${f}" in ${seenFinal.get(f)} and ${l.meta.id}`);
    seenFinal.set(f, l.meta.id);
  }
  for (const l of [...w.train, ...w.test]) assert.equal(l.messages[l.messages.length - 1]!.role, 'user', l.meta.id);
  for (const l of w.sft) assert.equal(l.messages[l.messages.length - 1]!.role, 'assistant', l.meta.id);
  const c = w.card.files['prompts.train.jsonl']!;
  assert.deepEqual(c.by_category, { borderline: 150, helpful: 2400, unsafe: 450 });
  assert.deepEqual(Object.keys(c.by_risk).sort(), [...RISKS].sort());
  assert.deepEqual(Object.keys(c.by_attack).sort(), [...ATTACKS].sort());
  assert.ok(Object.values(c.by_attack).every((n) => n === 90));
  const sft = w.card.files['sft.jsonl']!;
  assert.ok(Math.abs(sft.with_system / 6000 - 0.2) < 0.03 && sft.multi_turn > 0.2 * 6000, JSON.stringify(sft));
});

test('same seed → byte-identical files; another seed → other names, numbers, wordings and stories', () => {
  const opts = { sft: 120, trainPrompts: 60, testPrompts: 40 };
  const a = mkdtempSync(join(tmpdir(), 'world-a-'));
  const b = mkdtempSync(join(tmpdir(), 'world-b-'));
  const c = mkdtempSync(join(tmpdir(), 'world-c-'));
  writeChatWorld(a, { seed: 4, ...opts });
  writeChatWorld(b, { seed: 4, ...opts });
  writeChatWorld(c, { seed: 5, ...opts });
  for (const f of ['sft.jsonl', 'prompts.train.jsonl', 'prompts.test.jsonl', 'card.json']) {
    assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs between two runs of seed 4`);
  }
  const prompts = (dir: string): Set<string> => new Set(readFileSync(join(dir, 'sft.jsonl'), 'utf8').trim().split('\n').map((l) => finalPrompt(JSON.parse(l) as ChatLine)));
  const pa = prompts(a);
  const shared = [...prompts(c)].filter((p) => pa.has(p));
  assert.ok(shared.length <= 2, `seeds 4 and 5 share ${shared.length} prompts: ${shared.slice(0, 3).join(' | ')}`);
  const card = JSON.parse(readFileSync(join(a, 'card.json'), 'utf8')) as { seed: number; checker: string; options: Record<string, number>; disjointness: string };
  assert.equal(card.seed, 4);
  assert.equal(card.options['sft'], 120);
  assert.match(card.disjointness, /task prompt/);
});

test('world documents: seeded prose of the tasks, no blank lines', () => {
  const docs = [...worldDocuments(1, 40)];
  assert.equal(docs.length, 40);
  assert.deepEqual([...worldDocuments(1, 40)], docs);
  assert.deepEqual([...worldDocuments(1, 10, 30)], docs.slice(30));
  const other = [...worldDocuments(2, 40)];
  assert.ok(other.filter((d, i) => d === docs[i]).length === 0);
  for (const d of docs) {
    assert.ok(!/\n\s*\n/.test(d), 'no blank line inside a document');
    assert.ok(/^[\x20-\x7e\n]+$/.test(d), `ASCII prose: ${d.slice(0, 80)}`);
    assert.ok(d.split('\n').length >= 4, d);
  }
  const all = docs.join('\n');
  assert.match(all, /asked|said/);
});
