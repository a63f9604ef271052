/**
 * Ghost Attention (Llama 2 paper, section 3.3): data that teaches a chat model to keep a system
 * instruction for a whole dialog, and the evaluation of how long it does.
 *
 * Data (buildGattData): for each dialog of the chat world (world/gatt.ts: an instruction — answer
 * in capitals, end with "!", start with "Meow.", at most N words, … or a pair — and ≥ 6 short user
 * turns), the instruction is appended to EVERY user turn while the model answers turn by turn
 * (K samples per turn, the best one by the gold checker kept; if none satisfies the instruction, the
 * world's rewritten reference answer is used, and if there is none the dialog ends there). For
 * training, the instruction stays only in the first turn (as the system message) and each turn k
 * becomes one sample — the dialog up to answer k with "train_on": "last", so the loss is zero on
 * every token of the earlier turns, assistant ones included (the paper's fix for the mismatch).
 *
 * Evaluation (evalGatt, the paper's Table 30): 20-turn dialogs with the instruction as the system
 * message only; the model answers greedily, turn by turn, on its own answers; the share of answers
 * at turns 2, 4, 6, 20 that still satisfy the instruction.
 *
 * What it is not: the fine-tuning (llama2 sft on the data) or the world's constraints (world/constraints.ts).
 */
import type { Model } from '../model/forward.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Message } from './format.js';
import { answerDialogs, type Answer } from './answer.js';
import { checkConstraints, type ConstraintSpec } from '../world/constraints.js';
import { gattDialog, gattMessages, type GattDialog } from '../world/gatt.js';
import { graderFor } from '../world/grade.js';
import { Llama2Error } from '../util/errors.js';

export interface GattDataOptions {
  dialogs: number;
  /** user turns per dialog (≥ 6, the paper's multi-turn setting) */
  turns: number;
  seed: number;
  /** candidate answers sampled per turn (default 4) */
  samples?: number;
  temperature?: number;
  maxTokens?: number;
  maxRows?: number;
  onProgress?: (turn: number, turns: number) => void;
}

export interface GattDataStats {
  dialogs: number;
  /** answers chosen from the model's samples / rewritten references / dialogs cut short */
  sampled: number;
  rewritten: number;
  cut: number;
  /** training samples written (one per answered turn) */
  samples: number;
}

/** A user turn with the instruction appended, as the paper samples it. */
const withInstruction = (user: string, instruction: string): string => `${user} ${instruction}`;

/** Runs the dialogs turn by turn; `choose` picks each turn's answer from the model's samples (null ends the dialog). */
async function converse(
  model: Model, tok: Tokenizer, ds: readonly GattDialog[], turns: number, prompt: (d: GattDialog, t: number, answers: readonly string[]) => Message[],
  o: { samples: number; temperature: number; maxTokens: number; seed: number; maxRows?: number; onProgress?: (t: number, n: number) => void },
  choose: (d: GattDialog, t: number, answers: Answer[]) => string | null,
): Promise<string[][]> {
  const answers: string[][] = ds.map(() => []);
  for (let t = 0; t < turns; t++) {
    const live = ds.map((_, i) => i).filter((i) => answers[i]!.length === t);
    if (live.length === 0) break;
    const out = await answerDialogs(model, tok, live.map((i) => prompt(ds[i]!, t, answers[i]!)), {
      maxTokens: o.maxTokens, samples: o.samples, temperature: o.temperature, seed: o.seed + t * 100_003, maxRows: o.maxRows,
    });
    live.forEach((i, j) => {
      const a = choose(ds[i]!, t, out[j]!);
      if (a !== null) answers[i]!.push(a);
    });
    o.onProgress?.(t + 1, turns);
  }
  return answers;
}

/** GAtt training data: JSONL records {"messages", "train_on": "last", "meta"} and what was done. */
export async function buildGattData(model: Model, tok: Tokenizer, o: GattDataOptions): Promise<{ records: object[]; stats: GattDataStats }> {
  if (!(Number.isInteger(o.turns) && o.turns >= 2)) throw new Llama2Error(`gatt data: turns must be an integer ≥ 2, found ${o.turns}`);
  const ds = Array.from({ length: o.dialogs }, (_, i) => gattDialog(o.seed, i, { turns: o.turns }));
  const stats: GattDataStats = { dialogs: ds.length, sampled: 0, rewritten: 0, cut: 0, samples: 0 };
  const answers = await converse(model, tok, ds, o.turns, (d, t, prev) => {
    const msgs: Message[] = [];
    for (let k = 0; k <= t; k++) {
      msgs.push({ role: 'user', content: withInstruction(d.turns[k]!.user, d.system) });
      if (k < t) msgs.push({ role: 'assistant', content: prev[k]! });
    }
    return msgs;
  }, { samples: o.samples ?? 4, temperature: o.temperature ?? 0.7, maxTokens: o.maxTokens ?? 64, seed: o.seed, maxRows: o.maxRows, onProgress: o.onProgress },
  (d, t, samples) => {
    const grade = graderFor(d.turns[t]!.meta);
    let best: string | null = null;
    let bestScore = -1;
    for (const { text: x } of samples) {
      if (checkConstraints(d.constraints, x) < 1) continue;
      const s = grade(x).score;
      if (s > bestScore) [best, bestScore] = [x, s];
    }
    if (best !== null) {
      stats.sampled++;
      return best;
    }
    const ref = d.turns[t]!.answer;
    if (ref !== null) stats.rewritten++;
    else stats.cut++;
    return ref;
  });
  const records: object[] = [];
  ds.forEach((d, i) => {
    const a = answers[i]!;
    for (let k = 0; k < a.length; k++) {
      const messages: Message[] = [{ role: 'system', content: d.system }];
      for (let j = 0; j <= k; j++) messages.push({ role: 'user', content: d.turns[j]!.user }, { role: 'assistant', content: a[j]! });
      records.push({ messages, train_on: 'last', meta: { ...d.turns[k]!.meta, gatt: { dialog: i, turn: k + 1, terse: d.terse } } });
    }
  });
  stats.samples = records.length;
  return { records, stats };
}

export interface GattEval {
  dialogs: number;
  /** turn (1-based) → share of answers that satisfy the instruction, for the turns asked */
  at: Record<string, number>;
  /** the same for every turn 1..turns */
  curve: number[];
  /** dialogs whose whole history did not fit the context by the last turn (the oldest turns were dropped) */
  truncated: number;
  /** with keep: each dialog's system message, user turns and the model's answers */
  transcripts?: Message[][];
}

/** The paper's Table 30 for one model: instruction kept at turns `report` (default 2, 4, 6, 20). */
export async function evalGatt(
  model: Model, tok: Tokenizer,
  o: { dialogs: number; turns?: number; seed: number; report?: number[]; maxTokens?: number; maxRows?: number; keep?: boolean; onProgress?: (t: number, n: number) => void },
): Promise<GattEval> {
  const turns = o.turns ?? 20;
  const report = o.report ?? [2, 4, 6, 20].filter((t) => t <= turns);
  const ds = Array.from({ length: o.dialogs }, (_, i) => gattDialog(o.seed, i, { turns }));
  const ok = new Array<number>(turns).fill(0);
  const count = new Array<number>(turns).fill(0);
  let truncated = 0;
  const prompt = (d: GattDialog, t: number, prev: readonly string[]): Message[] => {
    const msgs: Message[] = [{ role: 'system', content: d.system }];
    for (let k = 0; k <= t; k++) {
      msgs.push({ role: 'user', content: d.turns[k]!.user });
      if (k < t) msgs.push({ role: 'assistant', content: prev[k]! });
    }
    return msgs;
  };
  const answers = await converse(model, tok, ds, turns, prompt, { samples: 1, temperature: 0, maxTokens: o.maxTokens ?? 48, seed: o.seed, maxRows: o.maxRows, onProgress: o.onProgress },
    (d, t, [a]) => {
      count[t]!++;
      if (satisfies(d.constraints, a!.text)) ok[t]!++;
      if (t === turns - 1 && a!.droppedPairs > 0) truncated++;
      return a!.text;
    });
  const curve = ok.map((n, t) => (count[t]! > 0 ? n / count[t]! : 0));
  const r: GattEval = { dialogs: ds.length, at: Object.fromEntries(report.map((t) => [String(t), curve[t - 1]!])), curve, truncated };
  if (o.keep) r.transcripts = ds.map((d, i) => gattMessages(d, answers[i]!));
  return r;
}

const satisfies = (cs: readonly ConstraintSpec[], text: string): boolean => checkConstraints(cs, text) >= 1;
