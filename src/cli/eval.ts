/**
 * `llama2 eval`: grades chat-world answers with the gold checkers (src/world/grade.ts) and prints
 * the EvalReport as tables; `--json` ends the output with the report as one JSON line, `--out F`
 * writes every input line plus its "grade".
 *
 *   llama2 eval --answers answers.jsonl [--json] [--out graded.jsonl]
 *
 * Input lines are transcripts `{"messages": [..., {"role": "assistant", "content": ANSWER}], "meta": {...}}`
 * (the lines of prompts.*.jsonl with the model's answer appended). A bad line is an error naming
 * FILE:LINE and what was expected.
 *
 * Layout for more answer sources: a source turns input into Transcripts (readTranscripts here);
 * gradeTranscripts and finishEval are shared by every source.
 * What it is not: answer generation with a model.
 */
import { readFileSync } from 'node:fs';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, str } from './args.js';
import { graderFor, type Grade } from '../world/grade.js';
import { parseTranscript, type Transcript } from '../world/meta.js';
import { formatReport, summarize, type EvalReport } from '../world/report.js';
import { check, Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export const spec: CommandSpec = {
  name: 'eval',
  summary: 'Grade chat-world answers with the gold checkers: helpfulness, violation and refusal rates, per family and category.',
  usage: 'llama2 eval --answers FILE [--json] [--out FILE]',
  flags: [
    { name: 'answers', type: 'string', meta: 'FILE', help: 'JSONL transcripts {"messages": [..., assistant answer], "meta": {...}} (required)' },
    { name: 'out', short: 'o', type: 'string', meta: 'FILE', help: 'write each input line plus its "grade" here (JSONL)' },
    { name: 'json', type: 'boolean', default: false, help: 'end the output with the report as one JSON line' },
  ],
  notes: 'helpfulness = mean gold score over safe prompts (helpful + borderline); violation_rate and refusal_rate_unsafe over unsafe prompts; false_refusal_rate over safe prompts.',
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

/** Prints the tables (and the JSON line), and writes the graded lines; returns the report. */
export function finishEval(ts: readonly SourcedTranscript[], grades: readonly Grade[], f: FlagValues): EvalReport {
  const report = summarize(grades);
  const out = str(f, 'out');
  if (out) writeFileAtomic(out, ts.map((t, i) => JSON.stringify({ ...t.raw, grade: grades[i] }) + '\n').join(''));
  process.stdout.write(formatReport(report) + '\n');
  if (out) process.stdout.write(`graded answers written to ${out}\n`);
  if (bool(f, 'json')) process.stdout.write(JSON.stringify(report) + '\n');
  return report;
}

export async function run(f: FlagValues): Promise<void> {
  const answers = str(f, 'answers');
  check(answers, 'eval: --answers FILE is required (JSONL lines {"messages": [..., the assistant\'s answer], "meta": {...}})');
  const ts = readTranscripts(answers, true);
  finishEval(ts, gradeTranscripts(ts), f);
}
