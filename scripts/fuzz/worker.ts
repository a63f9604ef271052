/**
 * One fuzz worker process (started by main.ts): runs cases [start, end) of one target until the
 * deadline and reports each outcome to the parent over IPC — `ok` (read fine), `error` (a clean
 * Llama2Error), `crash` (any other exception), `memory` (the case grew ArrayBuffer memory or the
 * peak RSS by more than the cap: 64 MiB + 8 × the case's bytes). The inputs of a crash or memory
 * case are saved under <out>/findings/. Hangs and deaths (a signal, V8 out of memory) are for the
 * parent to notice; it replays the cases after the last one reported to find the culprit.
 *
 *   node dist/scripts/fuzz/worker.js '{"target":"gguf","seed":1,"start":0,"end":1000,"deadline":…,"tmp":…,"out":…}'
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Llama2Error } from '../../src/util/errors.js';
import { bundles, makeCase, writeCase, type Case, type TargetName } from './targets.js';

export interface WorkerJob {
  target: TargetName;
  seed: number;
  start: number;
  end: number;
  /** Date.now() after which no new case starts */
  deadline: number;
  tmp: string;
  out: string;
}

export type Outcome = 'ok' | 'error' | 'crash' | 'memory' | 'hang' | 'died';

export interface CaseReport {
  i: number;
  outcome: Outcome;
  detail?: string;
}

const MiB = 1 << 20;

/** A crash's one-line description: the exception's class, message and innermost frame of ours. */
export function describeCrash(e: unknown): string {
  const err = e instanceof Error ? e : new Error(String(e));
  const frame = (err.stack ?? '').split('\n').find((l) => /\/(src|scripts)\//.test(l))?.trim() ?? '';
  return `${err.name}: ${err.message.slice(0, 300)} ${frame}`;
}

/** Saves a case's files and what happened to it under <out>/findings/<target>-<index>/. */
export function saveFinding(out: string, c: Case, outcome: Outcome, detail: string): string {
  const dir = join(out, 'findings', `${c.target}-${c.index}`);
  mkdirSync(dir, { recursive: true });
  for (const [n, b] of Object.entries(c.files)) writeFileSync(join(dir, n), b);
  writeFileSync(join(dir, 'finding.json'), JSON.stringify({ target: c.target, index: c.index, bundle: c.bundle, mutated: c.mutated, entry: c.entry, mmap: c.mmap, outcome, detail }, null, 2) + '\n');
  return dir;
}

/** Runs one case in this process: the outcome and, for a crash or memory case, its description. */
export function runOne(c: Case, dir: string): { outcome: Outcome; detail?: string } {
  const path = writeCase(c, dir);
  const size = Object.values(c.files).reduce((s, b) => s + b.length, 0);
  const cap = 64 * MiB + 8 * size;
  const ab0 = process.memoryUsage().arrayBuffers;
  const rss0 = process.resourceUsage().maxRSS * 1024;
  let outcome: Outcome = 'ok';
  let detail: string | undefined;
  try {
    c.read(path, c.mmap);
  } catch (e) {
    if (e instanceof Llama2Error) outcome = 'error';
    else { outcome = 'crash'; detail = describeCrash(e); }
  }
  const grewAb = process.memoryUsage().arrayBuffers - ab0;
  const grewRss = process.resourceUsage().maxRSS * 1024 - rss0;
  if (outcome !== 'crash' && Math.max(grewAb, grewRss) > cap) {
    outcome = 'memory';
    detail = `ArrayBuffers +${(grewAb / MiB).toFixed(0)} MiB, peak RSS +${(grewRss / MiB).toFixed(0)} MiB for ${size} bytes of input (cap ${(cap / MiB).toFixed(0)} MiB)`;
  }
  return detail === undefined ? { outcome } : { outcome, detail };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as WorkerJob;
  const all = bundles(job.target, job.tmp);
  const dir = join(job.tmp, `case-${process.pid}`);
  const send = (r: CaseReport) => process.send!(r);
  for (let i = job.start; i < job.end && Date.now() < job.deadline; i++) {
    const c = makeCase(job.target, all, job.seed, i);
    const r = runOne(c, dir);
    if (r.outcome === 'crash' || r.outcome === 'memory') saveFinding(job.out, c, r.outcome, r.detail!);
    send({ i, ...r });
    if (r.outcome === 'memory') break; // the peak RSS is spent: the parent starts a fresh worker
    // a turn of the event loop: IPC messages go out, and the finalizers of dropped file mappings run
    // (they are deferred to the loop; without turns a worker's mappings pile up to its address-space limit)
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  process.disconnect?.();
}

if (process.argv[1]?.endsWith('worker.js') && process.send) void main();
