/**
 * Gold evaluation of a chat model on chat-world prompts: answer every prompt (chat/answer.ts,
 * batched; greedy by default) and grade each answer with the world's checkers (src/world/grade.ts).
 * The same function serves `llama2 eval --model`, and every stage that reports gold numbers.
 *
 *   const r = await evaluateModel(model, tok, readWorldPrompts('world/prompts.test.jsonl'), { maxTokens: 64 });
 *   r.report.helpfulness, r.report.violation_rate, r.report.by_family …
 *
 * What it is not: the checkers, or reading answers made elsewhere (llama2 eval --answers).
 */
import type { Model } from '../model/forward.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { graderFor, type Grade } from '../world/grade.js';
import type { Transcript } from '../world/meta.js';
import { summarize, type EvalReport } from '../world/report.js';
import { answerDialogs, withSystem, type AnswerOptions } from './answer.js';

export interface GradedAnswer {
  /** the prompt's messages (with the system message used) and the answer */
  messages: Transcript['messages'];
  meta: Transcript['meta'];
  /** index of the prompt and of the sample */
  prompt: number;
  sample: number;
  grade: Grade;
}

export interface ModelEval {
  graded: GradedAnswer[];
  report: EvalReport;
}

/** Answers `samples` times per prompt (default greedy, once) and grades every answer. */
export async function evaluateModel(model: Model, tok: Tokenizer, prompts: readonly Transcript[], o: AnswerOptions): Promise<ModelEval> {
  const answers = await answerDialogs(model, tok, prompts.map((p) => p.messages), { temperature: 0, ...o });
  const graded: GradedAnswer[] = [];
  prompts.forEach((p, i) => {
    const dialog = withSystem(p.messages, o.system);
    answers[i]!.forEach((a, k) => {
      const grade = graderFor(p.meta, `prompt ${i}`)(a.text, dialog);
      graded.push({ messages: [...dialog, { role: 'assistant', content: a.text }], meta: p.meta, prompt: i, sample: k, grade });
    });
  });
  return { graded, report: summarize(graded.map((g) => g.grade)) };
}
