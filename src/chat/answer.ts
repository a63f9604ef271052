/**
 * A chat model answering many dialogs at once: each dialog (ending with a user turn) is rendered in
 * Llama-2's chat format (chat/format.ts; the oldest turns dropped when it does not fit the context
 * with room for the answer — a last turn too long for that gets what the context has left), K
 * answers per dialog are sampled through generateBatch (one prefill per dialog, every row decoding
 * together), and decoded to text. What gold evaluation, Ghost Attention
 * data, rejection sampling and preference collection all need.
 *
 *   const out = await answerDialogs(model, tok, dialogs, { maxTokens: 64, temperature: 0, samples: 1 });
 *   out[i][k].text                    // answer k of dialog i (stripped); out[i][k].ids, logprobs …
 *
 * What it is not: grading (src/world/grade.ts) or the batching engine (generate/batch.ts).
 */
import type { Model } from '../model/forward.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { generateBatch, type BatchSample, type BatchStats } from '../generate/batch.js';
import type { SamplerOptions } from '../generate/sampler.js';
import { Llama2Error } from '../util/errors.js';
import { fitDialog, type Message } from './format.js';

export interface AnswerOptions extends Partial<SamplerOptions> {
  /** most tokens per answer */
  maxTokens: number;
  /** answers per dialog (default 1) */
  samples?: number;
  /** dialog i's answers are seeded by hashSeed(seed + i, k) through generateBatch (default 0) */
  seed?: number;
  /** replace (or add) the system message of every dialog */
  system?: string;
  /** per-token log-probs of the answers (generateBatch's logprobs) */
  logprobs?: boolean;
  /** a frozen reference model's log-probs of the same tokens */
  reference?: Model;
  maxRows?: number;
  signal?: AbortSignal;
  /** called as answers finish: (done, total) */
  onProgress?: (done: number, total: number) => void;
  onStats?: (s: BatchStats) => void;
}

export interface Answer extends BatchSample {
  /** the answer's text, stripped of surrounding whitespace */
  text: string;
  /** the prompt ids the answer continues (the fitted dialog) */
  prompt: number[];
  /** user/assistant pairs dropped from the front of the dialog to fit the context */
  droppedPairs: number;
}

/** The dialog with `system` as its system message. */
export function withSystem(dialog: readonly Message[], system: string | undefined): Message[] {
  if (system === undefined) return [...dialog];
  const rest = dialog[0]?.role === 'system' ? dialog.slice(1) : dialog;
  return [{ role: 'system', content: system }, ...rest];
}

/** Answers to every dialog: out[i] holds `samples` answers of dialog i. */
export async function answerDialogs(model: Model, tok: Tokenizer, dialogs: readonly (readonly Message[])[], o: AnswerOptions): Promise<Answer[][]> {
  const ctx = model.config.max_seq_len;
  if (o.maxTokens >= ctx) throw new Llama2Error(`answers: maxTokens ${o.maxTokens} leaves no room for a prompt in the model's context of ${ctx}`);
  const prompts = dialogs.map((d, i) => {
    const msgs = withSystem(d, o.system);
    if (msgs[msgs.length - 1]?.role !== 'user') throw new Llama2Error(`answers: dialog ${i} must end with a user message`);
    try {
      return fitDialog(tok, msgs, ctx - o.maxTokens, { allowSpecialTags: true });
    } catch {
      // the last turn alone leaves less than maxTokens: answer in what the context has left
      try {
        return fitDialog(tok, msgs, ctx - 1, { allowSpecialTags: true });
      } catch (e) {
        throw new Llama2Error(`answers: dialog ${i}: ${(e as Error).message}`);
      }
    }
  });
  const n = o.samples ?? 1;
  const total = prompts.length * n;
  let done = 0;
  const out = await generateBatch(model, prompts.map((p, i) => ({ prompt: p.ids, n, seed: (o.seed ?? 0) + i })), {
    ...o, eosId: tok.eosId, logprobs: o.logprobs, reference: o.reference, maxRows: o.maxRows, signal: o.signal,
    onRow: () => o.onProgress?.(++done, total), onStats: o.onStats,
  });
  return out.map((samples, i) => samples.map((s) => ({ ...s, text: tok.decode(s.ids).trim(), prompt: prompts[i]!.ids, droppedPairs: prompts[i]!.droppedPairs })));
}
