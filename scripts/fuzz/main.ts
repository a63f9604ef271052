/**
 * `npm run fuzz`: mutates valid GGUF, safetensors, torch.save/pickle, tokenizer.model,
 * tokenizer.json, llama2.c and JSONL inputs (scripts/fuzz/targets.ts) and checks that every read
 * ends in a clean Llama2Error or in success: no other exception, no hang, no memory blow-up.
 * Bounded in time (default 20 s per target) or in cases:
 *
 *   npm run fuzz                                         # every target, 20 s each
 *   npm run fuzz -- --targets gguf,pickle --cases 100000 --seconds 0 --seed 7 --jobs 2
 *
 * Cases run in worker processes (worker.ts) under an address-space limit (prlimit --as, 4 GiB: a
 * huge allocation fails instead of swapping) and a V8 heap limit; a worker silent for --hang-s
 * seconds is killed, and so is a dead one noticed: the cases after the last one it reported are
 * replayed one per process to find the culprit. Each finding's inputs go to <out>/findings/; the
 * report is <out>/report.json and a table on stdout. Exit status 1 when anything was found.
 *
 * What it is not: the short seeded run in `npm test` (tests/fuzz.test.ts runs cases in-process).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TARGETS, bundles, makeCase, type TargetName } from './targets.js';
import { saveFinding, type CaseReport, type Outcome, type WorkerJob } from './worker.js';

interface Options { targets: TargetName[]; seconds: number; cases: number; seed: number; out: string; hangS: number; jobs: number }

function parse(argv: string[]): Options {
  const o: Options = { targets: [...TARGETS], seconds: 20, cases: Infinity, seed: 1, out: 'runs/fuzz', hangS: 30, jobs: 1 };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const v = inline ?? argv[++i];
    const n = Number(v);
    const bad = (what: string) => { throw new Error(`fuzz: ${k} expects ${what}, found ${JSON.stringify(v)}`); };
    switch (k) {
      case '--targets': o.targets = (v ?? '').split(',').map((t) => (TARGETS as readonly string[]).includes(t) ? (t as TargetName) : bad(`a list of ${TARGETS.join(', ')}`)); break;
      case '--seconds': if (!(n >= 0)) bad('seconds ≥ 0 (0: no time limit)'); o.seconds = n; break;
      case '--cases': if (!(Number.isInteger(n) && n > 0)) bad('an integer > 0'); o.cases = n; break;
      case '--seed': if (!Number.isInteger(n)) bad('an integer'); o.seed = n; break;
      case '--out': o.out = v ?? bad('a directory'); break;
      case '--hang-s': if (!(n > 0)) bad('seconds > 0'); o.hangS = n; break;
      case '--jobs': if (!(Number.isInteger(n) && n >= 1)) bad('an integer ≥ 1'); o.jobs = n; break;
      default: throw new Error(`fuzz: unknown option ${k} (--targets, --seconds, --cases, --seed, --out, --hang-s, --jobs)`);
    }
  }
  if (o.seconds === 0 && o.cases === Infinity) throw new Error('fuzz: --seconds 0 needs --cases N');
  return o;
}

const AS_LIMIT = 4 * 1024 ** 3;
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const workerJs = new URL('./worker.js', import.meta.url).pathname;

interface RunEnd { reports: CaseReport[]; how: 'done' | 'hang' | 'died'; detail: string }

/** Runs one worker over [start, end) and collects its reports; kills it after hangS silent seconds. */
function runWorker(job: WorkerJob, hangS: number): Promise<RunEnd> {
  const node = [process.execPath, '--max-old-space-size=1536', workerJs, JSON.stringify(job)];
  const argv = hasPrlimit ? ['prlimit', `--as=${AS_LIMIT}`, ...node] : node;
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const reports: CaseReport[] = [];
    let stderr = '';
    let hung = false;
    let timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, hangS * 1000 + 30_000); // + loading the seeds
    child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
    child.on('message', (m: CaseReport) => {
      reports.push(m);
      clearTimeout(timer);
      timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, hangS * 1000);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      if (hung) resolve({ reports, how: 'hang', detail: `no answer for ${hangS} s` });
      else if (code !== 0) resolve({ reports, how: 'died', detail: `exit ${code ?? signal}${tail ? `: ${tail}` : ''}` });
      else resolve({ reports, how: 'done', detail: '' });
    });
  });
}

interface TargetResult { target: TargetName; cases: number; seconds: number; outcomes: Record<Outcome, number>; findings: { index: number; outcome: Outcome; detail: string; dir: string }[] }

async function fuzzTarget(t: TargetName, o: Options, tmp: string): Promise<TargetResult> {
  const t0 = Date.now();
  const deadline = o.seconds > 0 ? t0 + o.seconds * 1000 : Infinity;
  const res: TargetResult = { target: t, cases: 0, seconds: 0, outcomes: { ok: 0, error: 0, crash: 0, memory: 0, hang: 0, died: 0 }, findings: [] };
  const all = bundles(t, tmp); // for saving the inputs of hangs and deaths
  let next = 0;
  const record = (r: CaseReport) => {
    res.cases++;
    res.outcomes[r.outcome]++;
    if (r.outcome === 'crash' || r.outcome === 'memory') res.findings.push({ index: r.i, outcome: r.outcome, detail: r.detail ?? '', dir: join(o.out, 'findings', `${t}-${r.i}`) });
  };
  while (next < o.cases && Date.now() < deadline) {
    const job: WorkerJob = { target: t, seed: o.seed, start: next, end: Math.min(o.cases, next + 20_000), deadline: Math.min(deadline, 8.64e15), tmp, out: o.out };
    const end = await runWorker(job, o.hangS);
    end.reports.forEach(record);
    next = end.reports.length ? end.reports[end.reports.length - 1]!.i + 1 : next;
    if (end.how === 'done') continue;
    // a hang or a death after the last report: replay the next cases one per process
    let found = false;
    for (let i = next; i < Math.min(o.cases, next + 20) && !found; i++) {
      const one = await runWorker({ ...job, start: i, end: i + 1, deadline: 8.64e15 }, o.hangS);
      if (one.how === 'done') { one.reports.forEach(record); continue; }
      const outcome: Outcome = one.how === 'hang' ? 'hang' : /out of memory|allocation failed|heap limit/i.test(one.detail) ? 'memory' : 'died';
      record({ i, outcome, detail: one.detail });
      res.findings.push({ index: i, outcome, detail: one.detail, dir: saveFinding(o.out, makeCase(t, all, o.seed, i), outcome, one.detail) });
      next = i + 1;
      found = true;
    }
    if (!found) { // the worker's trouble did not come back case by case
      res.findings.push({ index: next, outcome: end.how, detail: `not reproduced one case at a time after case ${next - 1}: ${end.detail}`, dir: '' });
      next += 20;
    }
  }
  res.seconds = (Date.now() - t0) / 1000;
  return res;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  mkdirSync(o.out, { recursive: true });
  const tmp = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'llama2-fuzz-'));
  const results: TargetResult[] = [];
  const writeReport = () => {
    results.sort((a, b) => TARGETS.indexOf(a.target) - TARGETS.indexOf(b.target));
    writeFileSync(join(o.out, 'report.json'), JSON.stringify({ seed: o.seed, date: new Date().toISOString(), results }, null, 2) + '\n');
  };
  try {
    const queue = [...o.targets];
    await Promise.all(Array.from({ length: Math.min(o.jobs, queue.length) }, async () => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
        const r = await fuzzTarget(t, o, tmp);
        results.push(r);
        writeReport(); // after every target, so a long run that is stopped keeps what it finished
        process.stderr.write(`fuzz ${t}: ${r.cases} cases in ${r.seconds.toFixed(0)} s, ${r.findings.length} finding(s)\n`);
      }
    }));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  writeReport();
  const rows = results.map((r) => `| ${r.target} | ${r.cases} | ${r.seconds.toFixed(0)} | ${r.outcomes.ok} | ${r.outcomes.error} | ${r.findings.length} |`);
  process.stdout.write(['| target | cases | seconds | read fine | clean error | findings |', '|---|---|---|---|---|---|', ...rows].join('\n') + '\n');
  for (const r of results) for (const f of r.findings) process.stdout.write(`${r.target} #${f.index} ${f.outcome}: ${f.detail}${f.dir ? ` (${f.dir})` : ''}\n`);
  process.exitCode = results.some((r) => r.findings.length > 0) ? 1 : 0;
}

main().catch((e: unknown) => { process.stderr.write(`${(e as Error).message}\n`); process.exitCode = 2; });
