/**
 * Simulated annotators (Llama 2 paper, section 3.2.1): shown two answers to the same prompt, they
 * choose one, say by how much it is better and label each answer's safety — with the chat world's
 * gold checkers standing in for the person's judgement, and human-like noise:
 *
 *   P(choose A) = σ((gold_A − gold_B) / τ)            near-equal answers are close to coin flips
 *   level from the gold gap g = |gold_A − gold_B| when the gold-better answer was chosen:
 *     g ≥ 0.5 significantly_better, ≥ 0.25 better, ≥ 0.1 slightly_better, else negligibly_better;
 *   an annotator who picked the gold-worse answer saw no clear difference: negligibly_better.
 *   safety: an answer is unsafe when it gives the world's harmful content (grade.violation); the
 *   bin is the paper's (chosen safe & other unsafe, both safe, both unsafe) or the fourth case
 *   (the unsafe one chosen), which safety reward training leaves out.
 *
 * Defaults (τ = 0.1, thresholds 0.5 / 0.25 / 0.1) are in ANNOTATOR_DEFAULTS; the level mix they give
 * on a model's answers is reported by `llama2 data synth prefs` (docs/chat-world.md compares it with
 * the paper's). Deterministic: the coin comes from the caller's Rng.
 *
 * What it is not: answer generation (chat/preferences.ts) or the file format (data/preferences.ts).
 */
import type { Message } from '../chat/format.js';
import type { Level, SafetyBin } from '../data/preferences.js';
import type { Rng } from '../util/rng.js';
import { graderFor, type Grade } from './grade.js';
import type { WorldMeta } from './types.js';

export interface AnnotatorOptions {
  /** noise temperature of the choice (on the gold score's 0–1 scale) */
  tau: number;
  /** minimum gold gaps for significantly_better, better, slightly_better */
  thresholds: readonly [number, number, number];
}

export const ANNOTATOR_DEFAULTS: Readonly<AnnotatorOptions> = { tau: 0.1, thresholds: [0.5, 0.25, 0.1] };

export interface Annotation {
  /** which answer was chosen */
  chosen: 'a' | 'b';
  level: Level;
  safetyBin: SafetyBin;
  /** the safety prompt flag: the prompt asks for something harmful */
  safetyPrompt: boolean;
  gold: { a: number; b: number };
  grades: { a: Grade; b: Grade };
}

/** The level of a gold gap (the chosen answer gold-better by `gap`). */
export function levelOf(gap: number, t: AnnotatorOptions['thresholds']): Level {
  return gap >= t[0] ? 'significantly_better' : gap >= t[1] ? 'better' : gap >= t[2] ? 'slightly_better' : 'negligibly_better';
}

export function safetyBinOf(chosenSafe: boolean, otherSafe: boolean): SafetyBin {
  if (chosenSafe) return otherSafe ? 'both_safe' : 'safe_over_unsafe';
  return otherSafe ? 'unsafe_over_safe' : 'both_unsafe';
}

/** One annotator's verdict on answers a and b to the prompt `dialog` (ending with the user turn). */
export function annotatePair(meta: WorldMeta, dialog: readonly Message[], a: string, b: string, rng: Rng, o: AnnotatorOptions = ANNOTATOR_DEFAULTS): Annotation {
  const grade = graderFor(meta);
  const ga = grade(a, dialog);
  const gb = grade(b, dialog);
  const d = ga.score - gb.score;
  const pA = 1 / (1 + Math.exp(-d / o.tau));
  const chosen = rng.float() < pA ? 'a' : 'b';
  const better = chosen === 'a' ? d : -d; // > 0 when the gold-better answer was chosen
  const level = better > 0 ? levelOf(better, o.thresholds) : 'negligibly_better';
  const [cg, og] = chosen === 'a' ? [ga, gb] : [gb, ga];
  return {
    chosen, level, safetyBin: safetyBinOf(!cg.violation, !og.violation), safetyPrompt: meta.category === 'unsafe',
    gold: { a: ga.score, b: gb.score }, grades: { a: ga, b: gb },
  };
}
