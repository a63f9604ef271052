/**
 * Scoring dialogs with a reward model at inference time (Llama 2 paper, section 3.2.2): a reward
 * model is a chat model's trunk with a scalar head (`score.weight` (1, C), model/weights.ts HEADS);
 * the score of a dialog is that head applied to the final-RMSNorm'ed hidden state of its last token
 * (the dialog rendered in Llama-2's chat format, ending with the answer's EOS). Batched: each dialog
 * is one segment of a forward pass. The same computation as training's rewardScores (train/reward.ts).
 *
 *   const rm = openModel('runs/rm-helpful/latest');
 *   scoreDialogs(rm.model, rm.tokenizer!, [[{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }]]);  // [1.73]
 *   combinedReward({ helpful: 0.8, safety: 0.1, safetyPrompt: false })  // 0.1: the safety gate
 *
 * Scores are raw (any real number); toUnit() maps one to (0, 1) with the logistic function, the
 * scale on which the paper's safety threshold 0.15 and R_c are defined (see combinedReward).
 *
 * What it is not: reward-model training (train/reward.ts, the reward recipe) or PPO's whitening.
 */
import type { Model } from '../model/forward.js';
import { toFloat32 } from '../tensor.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { Llama2Error } from '../util/errors.js';
import { fitDialog, renderDialog, type Message } from './format.js';

/** The paper's safety threshold on the (0, 1) scale (section 3.2.2). */
export const SAFETY_THRESHOLD = 0.15;

/** The head of a reward model, or a Llama2Error naming what is missing. */
export function scoreHead(model: Model, where = 'reward model'): Float32Array {
  const h = model.weights.heads?.['score.weight'];
  if (!h) throw new Llama2Error(`${where}: the model has no "score.weight" head (train one with llama2 reward train, or pass a reward model)`);
  if (h.shape[0] !== 1 || h.shape[1] !== model.config.dim) throw new Llama2Error(`${where}: "score.weight" has shape [${h.shape.join(', ')}]; a reward model's head is [1, ${model.config.dim}]`);
  return toFloat32(h);
}

/** Raw scores of dialogs (each ends with the assistant answer to score), in batches of at most `batchTokens` tokens. */
export function scoreDialogs(model: Model, tok: Tokenizer, dialogs: readonly (readonly Message[])[], o: { batchTokens?: number; where?: string } = {}): number[] {
  const ids = dialogs.map((d, i) => {
    if (d[d.length - 1]?.role !== 'assistant') throw new Llama2Error(`reward: dialog ${i} must end with the assistant answer to score`);
    return fitForScoring(tok, d, model.config.max_seq_len);
  });
  return scoreIds(model, ids, o);
}

/**
 * A dialog (ending with the answer) as at most T tokens for scoring: the oldest turns are dropped
 * first (the system prompt stays); if the last exchange alone is longer, its last T tokens are kept,
 * so the answer — what is scored — is always there.
 */
export function fitForScoring(tok: Tokenizer, d: readonly Message[], T: number): number[] {
  const ids = renderDialog(tok, d, { allowSpecialTags: true }).ids;
  if (ids.length <= T) return ids;
  try {
    return fitDialog(tok, d, T, { allowSpecialTags: true }).ids;
  } catch {
    return renderDialog(tok, d.slice(-2), { allowSpecialTags: true }).ids.slice(-T);
  }
}

/** Raw scores of token rows (rendered dialogs), each a segment of a batched forward pass. */
export function scoreIds(model: Model, ids: readonly (readonly number[])[], o: { batchTokens?: number; where?: string } = {}): number[] {
  const w = scoreHead(model, o.where);
  const C = model.config.dim;
  const out = new Array<number>(ids.length);
  const budget = o.batchTokens ?? 4096;
  for (let i0 = 0; i0 < ids.length;) {
    let i1 = i0 + 1;
    let n = ids[i0]!.length;
    while (i1 < ids.length && n + ids[i1]!.length <= budget) n += ids[i1++]!.length;
    const segs = ids.slice(i0, i1).map((t) => ({ tokens: t, cache: model.newCache(t.length) }));
    const r = model.forward(segs, { logits: 'none', hidden: true });
    r.hidden.forEach((h, k) => {
      const last = h.subarray(h.length - C); // (C) the last token's final hidden state
      let s = 0;
      for (let c = 0; c < C; c++) s += w[c]! * last[c]!;
      out[i0 + k] = s;
    });
    i0 = i1;
  }
  return out;
}

/** A raw score on the (0, 1) scale: the logistic function. */
export function toUnit(score: number): number {
  return score >= 0 ? 1 / (1 + Math.exp(-score)) : Math.exp(score) / (1 + Math.exp(score));
}

/**
 * The paper's combined reward R_c (section 3.2.2, "safety-gated"): the safety model's score when
 * the prompt is a safety prompt or the safety score is below the threshold (strict <; default
 * 0.15, so 0.15 itself takes the helpfulness score), else the helpfulness score — both on the
 * (0, 1) scale of toUnit. PPO's per-batch version is src/rl/ppo-math.ts sequenceScores.
 */
export function combinedReward(r: { helpful: number; safety: number; safetyPrompt: boolean }, threshold = SAFETY_THRESHOLD): number {
  return r.safetyPrompt || r.safety < threshold ? r.safety : r.helpful;
}

/** The two reward models the RLHF stages use (each a Model with a score head). */
export interface RewardModels {
  helpful: Model;
  safety: Model;
}

export interface AnswerRewards {
  /** raw scores */
  helpful: number;
  safety: number;
  /** R_c on the (0, 1) scale (combinedReward of the unit scores) */
  combined: number;
}

/** Scores answers to dialogs with both reward models and combines them with the safety gate. */
export function scoreAnswers(
  rms: RewardModels, tok: Tokenizer, items: readonly { dialog: readonly Message[]; answer: string; safetyPrompt: boolean }[],
): AnswerRewards[] {
  const dialogs = items.map((x) => [...x.dialog, { role: 'assistant' as const, content: x.answer }]);
  const h = scoreDialogs(rms.helpful, tok, dialogs, { where: 'helpfulness reward model' });
  const s = scoreDialogs(rms.safety, tok, dialogs, { where: 'safety reward model' });
  return items.map((x, i) => ({ helpful: h[i]!, safety: s[i]!, combined: combinedReward({ helpful: toUnit(h[i]!), safety: toUnit(s[i]!), safetyPrompt: x.safetyPrompt }) }));
}

/** Mean rewards of answered dialogs on the (0, 1) scale: R_helpful, R_safety and the gated R_c. */
export interface MeanRewards { rm_helpful: number; rm_safety: number; rm_combined: number }

/** Scores each dialog's last message (the answer) with both models and averages (empty: NaN). */
export function meanRewards(rms: RewardModels, tok: Tokenizer, dialogs: readonly { messages: readonly Message[]; safetyPrompt: boolean }[]): MeanRewards {
  const rw = scoreAnswers(rms, tok, dialogs.map((d) => ({ dialog: d.messages.slice(0, -1), answer: d.messages[d.messages.length - 1]!.content, safetyPrompt: d.safetyPrompt })));
  const mean = (f: (x: AnswerRewards) => number): number => rw.reduce((s, x) => s + f(x), 0) / rw.length;
  return { rm_helpful: mean((x) => toUnit(x.helpful)), rm_safety: mean((x) => toUnit(x.safety)), rm_combined: mean((x) => x.combined) };
}
