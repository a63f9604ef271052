/**
 * Collecting preference pairs the paper's way (section 3.2.1): for each prompt, two answers from
 * two model variants and/or two temperatures (to diversify), judged by the chat world's simulated
 * annotators (world/annotate.ts), written as PreferenceRecords (data/preferences.ts) tagged with
 * the batch and the models that produced them.
 *
 *   const { records, stats } = await collectPreferences(
 *     [{ name: 'sft', model, temperature: 0.7 }, { name: 'sft', model, temperature: 1.0 }], tok, prompts, { batch: 1, seed: 1 });
 *
 * Answer A of prompt i comes from variant 0, answer B from variant 1 (one model at two temperatures
 * is two variants). Pairs whose two answers are the same text are dropped (nothing to compare).
 *
 * What it is not: the annotator's rules (world/annotate.ts) or reward training.
 */
import type { Model } from '../model/forward.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Transcript } from '../world/meta.js';
import { annotatePair, ANNOTATOR_DEFAULTS, type AnnotatorOptions } from '../world/annotate.js';
import { LEVELS, SAFETY_BINS, type Level, type PreferenceRecord, type SafetyBin } from '../data/preferences.js';
import { hashSeed, Rng } from '../util/rng.js';
import { Llama2Error } from '../util/errors.js';
import { answerDialogs, type Answer } from './answer.js';

export interface Variant {
  /** recorded in meta.models */
  name: string;
  model: Model;
  temperature: number;
  topP?: number;
}

export interface CollectOptions {
  batch: number;
  seed: number;
  maxTokens?: number;
  maxRows?: number;
  annotator?: AnnotatorOptions;
  onProgress?: (done: number, total: number) => void;
}

export interface CollectStats {
  pairs: number;
  /** pairs dropped because both answers were the same text */
  identical: number;
  by_level: Record<Level, number>;
  by_safety_bin: Record<SafetyBin, number>;
  /** share of pairs where the gold-better answer was chosen (ties excluded) */
  agreement_with_gold: number;
}

export async function collectPreferences(variants: readonly Variant[], tok: Tokenizer, prompts: readonly Transcript[], o: CollectOptions): Promise<{ records: PreferenceRecord[]; stats: CollectStats }> {
  if (variants.length !== 2) throw new Llama2Error(`preferences: expected two answer variants (two models, or one model at two temperatures), found ${variants.length}`);
  const dialogs = prompts.map((p) => p.messages);
  const total = prompts.length * 2;
  let done = 0;
  const answers: Answer[][][] = [];
  for (const [v, x] of variants.entries()) {
    answers.push(await answerDialogs(x.model, tok, dialogs, {
      maxTokens: o.maxTokens ?? 64, temperature: x.temperature, topP: x.topP ?? 1, seed: hashSeed(o.seed, o.batch, v), maxRows: o.maxRows,
      onProgress: () => o.onProgress?.(++done, total),
    }));
  }
  const by_level = Object.fromEntries(LEVELS.map((l) => [l, 0])) as Record<Level, number>;
  const by_safety_bin = Object.fromEntries(SAFETY_BINS.map((b) => [b, 0])) as Record<SafetyBin, number>;
  const records: PreferenceRecord[] = [];
  let identical = 0;
  let agree = 0;
  let decided = 0;
  prompts.forEach((p, i) => {
    const a = answers[0]![i]![0]!.text;
    const b = answers[1]![i]![0]!.text;
    if (a === b) {
      identical++;
      return;
    }
    const rng = new Rng(hashSeed(o.seed, o.batch, i, 0x616e6e));
    const n = annotatePair(p.meta, p.messages, a, b, rng, o.annotator ?? ANNOTATOR_DEFAULTS);
    const [chosen, rejected] = n.chosen === 'a' ? [a, b] : [b, a];
    const [gc, gr] = n.chosen === 'a' ? [n.gold.a, n.gold.b] : [n.gold.b, n.gold.a];
    if (gc !== gr) {
      decided++;
      if (gc > gr) agree++;
    }
    by_level[n.level]++;
    by_safety_bin[n.safetyBin]++;
    records.push({
      prompt: p.messages.map((m) => ({ ...m })),
      chosen: [{ role: 'assistant', content: chosen }],
      rejected: [{ role: 'assistant', content: rejected }],
      meta: {
        level: n.level, safety_bin: n.safetyBin, is_safety_prompt: n.safetyPrompt, batch: o.batch,
        models: [variants[n.chosen === 'a' ? 0 : 1]!.name, variants[n.chosen === 'a' ? 1 : 0]!.name],
        source: 'simulated', gold: { chosen: gc, rejected: gr }, world: p.meta,
      },
    });
  });
  return { records, stats: { pairs: records.length, identical, by_level, by_safety_bin, agreement_with_gold: decided ? agree / decided : 0 } };
}
