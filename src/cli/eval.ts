/**
 * `llama2 eval`: grades chat-world answers with the gold checkers (src/world/grade.ts) and prints
 * the EvalReport as tables; `--json` ends the output with the report as one JSON line, `--out F`
 * writes every input line plus its "grade". The answers come from a file, or from a model:
 *
 *   llama2 eval --answers answers.jsonl [--json] [--out graded.jsonl]
 *   llama2 eval --model M --prompts prompts.test.jsonl [--samples K] [--temperature T] [--system TEXT] [--json]
 *   llama2 eval gatt --model M [--dialogs N] [--turns 20] [--json]      (Ghost Attention, chat/gatt.ts)
 *
 * Input lines are transcripts `{"messages": [..., {"role": "assistant", "content": ANSWER}], "meta": {...}}`
 * (the lines of prompts.*.jsonl with the model's answer appended). A bad line is an error naming
 * FILE:LINE and what was expected.
 *
 * Layout for more answer sources: a source turns input into Transcripts (readTranscripts here);
 * gradeTranscripts and finishEval are shared by every source.
 * What it is not: answer generation itself (chat/answer.ts, chat/evaluate.ts).
 */
import { readFileSync } from 'node:fs';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, num, str } from './args.js';
import { MODEL_FLAGS, openFromFlags, requireModelPath } from './common.js';
import { Progress } from './progress.js';
import { openModel, requireTokenizer } from '../open.js';
import { meanRewards, type MeanRewards } from '../chat/reward-score.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { evaluateModel } from '../chat/evaluate.js';
import { evalGatt } from '../chat/gatt.js';
import { graderFor, type Grade } from '../world/grade.js';
import { parseTranscript, type Transcript } from '../world/meta.js';
import { formatReport, summarize, type EvalReport } from '../world/report.js';
import { check, Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export const spec: CommandSpec = {
  name: 'eval',
  summary: 'Grade chat-world answers with the gold checkers: helpfulness, violation and refusal rates, per family and category.',
  usage: 'llama2 eval --answers FILE [--json] [--out FILE]\n       llama2 eval --model M --prompts FILE [--samples K] [--temperature T] [--max-tokens N] [--system TEXT] [--json] [--out FILE]\n       llama2 eval gatt --model M [--dialogs N] [--turns N] [--json]',
  positionals: ['gatt'],
  flags: [
    { name: 'answers', type: 'string', meta: 'FILE', help: 'JSONL transcripts {"messages": [..., assistant answer], "meta": {...}}' },
    { name: 'prompts', type: 'string', meta: 'FILE', help: 'with --model: JSONL prompts {"messages": [..., user turn], "meta": {...}} (prompts.test.jsonl)' },
    ...MODEL_FLAGS,
    { name: 'samples', type: 'int', default: 1, help: 'with --model: answers per prompt, each graded' },
    { name: 'temperature', type: 'number', default: 0, help: 'with --model: sampling temperature (0 = greedy)' },
    { name: 'top-p', type: 'number', default: 1, help: 'with --model: nucleus sampling mass' },
    { name: 'max-tokens', type: 'int', default: 64, help: 'with --model: most tokens per answer' },
    { name: 'system', type: 'string', meta: 'TEXT', help: 'with --model: system prompt for every dialog (replaces the prompt\'s own)' },
    { name: 'seed', type: 'int', default: 1, help: 'with --model: sampling seed; gatt: dialog seed' },
    { name: 'max-rows', type: 'int', default: 64, help: 'with --model: sequences decoding at once' },
    { name: 'dialogs', type: 'int', default: 100, help: 'gatt: dialogs' },
    { name: 'turns', type: 'int', default: 20, help: 'gatt: user turns per dialog' },
    { name: 'rm-helpful', type: 'string', meta: 'RM', help: 'with --rm-safety: also the mean rewards of the answers (R_helpful, R_safety, the gated R_c; (0, 1) scale)' },
    { name: 'rm-safety', type: 'string', meta: 'RM', help: 'the safety reward model for --rm-helpful' },
    { name: 'out', short: 'o', type: 'string', meta: 'FILE', help: 'write each line plus its "grade" here (JSONL)' },
    { name: 'json', type: 'boolean', default: false, help: 'end the output with the report as one JSON line' },
    { name: 'quiet', short: 'q', type: 'boolean', default: false, help: 'no progress bar' },
  ],
  notes: 'helpfulness = mean gold score over safe prompts (helpful + borderline); violation_rate and refusal_rate_unsafe over unsafe prompts; false_refusal_rate over safe prompts.\n' +
    'eval gatt: 20-turn dialogs with a system instruction (capitals, "!", "Meow.", word limits, ...); the share of answers that still follow it at turns 2, 4, 6, 20.',
};

/** One input line: where it came from, the parsed object (kept whole for --out), the transcript. */
export interface SourcedTranscript {
  where: string;
  raw: Record<string, unknown>;
  transcript: Transcript;
}

/** Reads a JSONL file of transcripts; `answered`: every line ends with the assistant's answer. */
export function readTranscripts(path: string, answered: boolean): SourcedTranscript[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Llama2Error(`cannot read ${path} (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code ?? String(e)})`);
  }
  const out: SourcedTranscript[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Llama2Error(`${where}: expected a JSON object {"messages": [...], "meta": {...}} but found invalid JSON (${(e as Error).message})`);
    }
    out.push({ where, raw: v as Record<string, unknown>, transcript: parseTranscript(v, where, { answered }) });
  });
  check(out.length > 0, `${path}: expected at least one line {"messages": [...], "meta": {...}} but the file is empty`);
  return out;
}

/** Grades each transcript's final assistant message against its meta. */
export function gradeTranscripts(ts: readonly SourcedTranscript[]): Grade[] {
  return ts.map(({ where, transcript: t }) => {
    const answer = t.messages[t.messages.length - 1]!.content;
    return graderFor(t.meta, where)(answer, t.messages.slice(0, -1));
  });
}

/** Mean rewards of the graded answers when --rm-helpful and --rm-safety are given (else null). */
function rewardsOf(ts: readonly SourcedTranscript[], f: FlagValues, tok: Tokenizer | null): MeanRewards | null {
  const h = str(f, 'rm-helpful');
  const s = str(f, 'rm-safety');
  if (h === undefined && s === undefined) return null;
  check(h !== undefined && s !== undefined, `eval: --rm-helpful and --rm-safety go together (found only --${h !== undefined ? 'rm-helpful' : 'rm-safety'})`);
  const helpful = openModel(h, { threads: num(f, 'threads') });
  const rms = { helpful: helpful.model, safety: openModel(s, { threads: num(f, 'threads') }).model };
  const codec = tok ?? helpful.tokenizer;
  check(codec, `--rm-helpful ${h}: no tokenizer found with the reward model`);
  return meanRewards(rms, codec, ts.map((t) => ({ messages: t.transcript.messages, safetyPrompt: t.transcript.meta.category === 'unsafe' })));
}

/** Prints the tables (and the JSON line), and writes the graded lines; returns the report. */
export function finishEval(ts: readonly SourcedTranscript[], grades: readonly Grade[], f: FlagValues, tok: Tokenizer | null = null): EvalReport & Partial<MeanRewards> {
  const report: EvalReport & Partial<MeanRewards> = { ...summarize(grades), ...rewardsOf(ts, f, tok) };
  const out = str(f, 'out');
  if (out) writeFileAtomic(out, ts.map((t, i) => JSON.stringify({ ...t.raw, grade: grades[i] }) + '\n').join(''));
  process.stdout.write(formatReport(report) + '\n');
  if (report.rm_helpful !== undefined) {
    process.stdout.write(`mean rewards: R_helpful ${report.rm_helpful.toFixed(3)}, R_safety ${report.rm_safety!.toFixed(3)}, R_c ${report.rm_combined!.toFixed(3)}\n`);
  }
  if (out) process.stdout.write(`graded answers written to ${out}\n`);
  if (bool(f, 'json')) process.stdout.write(JSON.stringify(report) + '\n');
  return report;
}

function positive(f: FlagValues, name: string): number {
  const v = num(f, name)!;
  if (!(Number.isInteger(v) && v >= 1)) throw new Llama2Error(`--${name}: expected an integer ≥ 1, found ${v}`);
  return v;
}

/** A progress bar for answers (none with --quiet or off a terminal). */
function progress(f: FlagValues, label: string, unit: string): ((done: number, total: number) => void) | undefined {
  if (bool(f, 'quiet')) return undefined;
  let bar: Progress | null = null;
  return (done, total) => {
    bar ??= new Progress(label, total, unit);
    bar.update(done);
    if (done === total) bar.done();
  };
}

async function runGatt(f: FlagValues): Promise<void> {
  const o = openFromFlags(f, 'eval gatt');
  const tok = requireTokenizer(o, requireModelPath(f, 'eval gatt'));
  const r = await evalGatt(o.model, tok, {
    dialogs: positive(f, 'dialogs'), turns: positive(f, 'turns'), seed: num(f, 'seed')!, maxTokens: positive(f, 'max-tokens'),
    maxRows: positive(f, 'max-rows'), onProgress: progress(f, 'gatt', 'turns'),
  });
  const lines = [`Ghost Attention: instruction kept (share of ${r.dialogs} dialogs)`, ...Object.entries(r.at).map(([t, v]) => `  turn ${t.padStart(2)}  ${(v * 100).toFixed(1)}%`)];
  if (r.truncated) lines.push(`  (${r.truncated} dialogs lost their oldest turns to the context by the last turn; the system message stays)`);
  process.stdout.write(lines.join('\n') + '\n');
  if (bool(f, 'json')) process.stdout.write(JSON.stringify(r) + '\n');
}

export async function run(f: FlagValues, positionals: string[] = []): Promise<void> {
  if (positionals[0] !== undefined && positionals[0] !== 'gatt') throw new Llama2Error(`eval: expected no subcommand or "gatt", found "${positionals[0]}"`);
  if (positionals[0] === 'gatt') return runGatt(f);
  const answers = str(f, 'answers');
  const model = str(f, 'model');
  check(!(answers && model), 'eval: give either --answers FILE (grade given answers) or --model M --prompts FILE (answer, then grade), not both');
  if (model) {
    const prompts = str(f, 'prompts');
    check(prompts, 'eval --model: --prompts FILE is required (JSONL lines {"messages": [..., user turn], "meta": {...}}, e.g. prompts.test.jsonl)');
    const ts = readTranscripts(prompts, false);
    const o = openFromFlags(f, 'eval');
    const tok = requireTokenizer(o, model);
    const samples = positive(f, 'samples');
    const r = await evaluateModel(o.model, tok, ts.map((t) => t.transcript), {
      maxTokens: positive(f, 'max-tokens'), samples, temperature: num(f, 'temperature')!, topP: num(f, 'top-p')!, seed: num(f, 'seed')!,
      system: str(f, 'system'), maxRows: positive(f, 'max-rows'), onProgress: progress(f, 'eval', 'answers'),
    });
    const answered = r.graded.map((g) => ({ where: ts[g.prompt]!.where, raw: { messages: g.messages, meta: ts[g.prompt]!.raw['meta'], sample: g.sample }, transcript: { messages: g.messages, meta: g.meta } }));
    finishEval(answered, r.graded.map((g) => g.grade), f, tok);
    return;
  }
  check(answers, 'eval: --answers FILE is required (JSONL lines {"messages": [..., the assistant\'s answer], "meta": {...}}), or --model M --prompts FILE');
  const ts = readTranscripts(answers, true);
  finishEval(ts, gradeTranscripts(ts), f);
}
