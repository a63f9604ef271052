/**
 * llama.cpp as a baseline measured in the same run: `llama-bench` on the very GGUF files the
 * inference benchmark times, right after each of our rows, so both engines see the same machine
 * load, and `llama-batched-bench` likewise for batched decoding (bench/batch.ts). Not part of the
 * package; the binaries are found at `--llama-bench=PATH` / `--batched-bench=PATH`,
 * `$LLAMA_BENCH` / `$LLAMA_BATCHED_BENCH`, or bench/.cache/llama.cpp/build/bin/ as built by
 * `bash bench/build-llama-cpp.sh` (llama.cpp's own source as shipped inside the node-llama-cpp
 * npm package, built for the native ISA; nothing but the npm registry is needed).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR } from './model-files.js';

export const DEFAULT_LLAMA_BENCH = join(CACHE_DIR, 'llama.cpp', 'build', 'bin', 'llama-bench');

export interface LlamaCppFigures {
  /** tok/s of the prompt test (pp) and of the generation test (tg): best and mean of the repetitions */
  prefill: number;
  decode: number;
  prefillMean: number;
  decodeMean: number;
}

/** the llama-bench binary to use, or undefined (with the reason) */
export function findLlamaBench(explicit?: string): { path?: string; why?: string } {
  const path = explicit ?? process.env.LLAMA_BENCH ?? DEFAULT_LLAMA_BENCH;
  if (!existsSync(path)) return { why: `${path} not found (build it with: bash bench/build-llama-cpp.sh)` };
  const r = spawnSync(path, ['--help'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || !/-n-prompt|--n-prompt/.test(r.stdout + r.stderr)) return { why: `${path} does not look like llama-bench (${r.error?.message ?? 'unexpected --help'})` };
  return { path };
}

interface LlamaBenchRecord { n_prompt: number; n_gen: number; avg_ts: number; samples_ts?: number[] }

/**
 * Runs `llama-bench -m file -t threads -p prompt -n gen -r reps -o json` and returns its pp and tg
 * figures. llama-bench's tg test decodes `gen` tokens from an empty cache, its pp test evaluates a
 * `prompt`-token batch: the same two measurements as the inference benchmark's.
 */
export function runLlamaBench(bin: string, file: string, threads: number, prompt: number, gen: number, reps: number): LlamaCppFigures {
  const args = ['-m', file, '-t', String(threads), '-p', String(prompt), '-n', String(gen), '-r', String(reps), '-o', 'json'];
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 30 * 60_000, maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) {
    const tail = (r.stderr ?? '').trim().split('\n').slice(-3).join(' / ');
    throw new Error(`llama-bench ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${tail}`);
  }
  let records: LlamaBenchRecord[];
  try {
    records = JSON.parse(r.stdout) as LlamaBenchRecord[];
  } catch {
    throw new Error(`llama-bench printed no JSON array (first bytes: ${JSON.stringify(r.stdout.slice(0, 80))})`);
  }
  const pick = (f: (x: LlamaBenchRecord) => boolean, what: string) => {
    const rec = records.find(f);
    if (!rec) throw new Error(`llama-bench output has no ${what} record`);
    const samples = rec.samples_ts?.length ? rec.samples_ts : [rec.avg_ts];
    return { best: Math.max(...samples), mean: rec.avg_ts };
  };
  const pp = pick((x) => x.n_prompt === prompt && x.n_gen === 0, `pp${prompt}`);
  const tg = pick((x) => x.n_gen === gen && x.n_prompt === 0, `tg${gen}`);
  return { prefill: pp.best, decode: tg.best, prefillMean: pp.mean, decodeMean: tg.mean };
}

// ---- llama-batched-bench: B sequences decoding together (the baseline of bench/batch.ts)

export const DEFAULT_BATCHED_BENCH = join(CACHE_DIR, 'llama.cpp', 'build', 'bin', 'llama-batched-bench');

/** the llama-batched-bench binary to use, or undefined (with the reason) */
export function findBatchedBench(explicit?: string): { path?: string; why?: string } {
  const path = explicit ?? process.env.LLAMA_BATCHED_BENCH ?? DEFAULT_BATCHED_BENCH;
  if (!existsSync(path)) return { why: `${path} not found (build it with: bash bench/build-llama-cpp.sh)` };
  const r = spawnSync(path, ['--help'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || !/-npl/.test(r.stdout + r.stderr)) return { why: `${path} does not look like llama-batched-bench (${r.error?.message ?? 'unexpected --help'})` };
  return { path };
}

/** one row of llama-batched-bench's table: B sequences of a PP-token prompt, TG tokens each */
export interface BatchedBenchRow {
  pp: number;
  tg: number;
  batch: number;
  /** S_PP t/s: B·PP prompt tokens ÷ their time */
  prefillTokS: number;
  /** S_TG t/s: B·TG generated tokens ÷ the time of the TG decode steps */
  decodeTokS: number;
}

/** The llama-batched-bench a section asked for (true: the default binary, a string: its path, false: none), or undefined with the reason logged. */
export function batchedBenchFor(want: boolean | string | undefined, log: (line: string) => void): string | undefined {
  if (!want) return undefined;
  const found = findBatchedBench(typeof want === 'string' ? want : undefined);
  if (!found.path) log(`(llama.cpp batched baseline skipped: ${found.why})`);
  return found.path;
}

/**
 * Reads llama-batched-bench's markdown table (`|    PP |     TG |    B |   N_KV |   T_PP s | S_PP
 * t/s | …`), finding the columns by their headers; other lines (logs) are skipped.
 */
export function parseBatchedBench(output: string): BatchedBenchRow[] {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('|'));
  const cells = (l: string) => l.slice(1, l.endsWith('|') ? -1 : undefined).split('|').map((c) => c.trim());
  const head = lines.findIndex((l) => /\bS_TG t\/s\b/.test(l));
  if (head < 0) throw new Error(`llama-batched-bench printed no table with an "S_TG t/s" column (first bytes: ${JSON.stringify(output.slice(0, 80))})`);
  const names = cells(lines[head]!);
  const col = (name: string) => {
    const i = names.indexOf(name);
    if (i < 0) throw new Error(`llama-batched-bench table has no "${name}" column (columns: ${names.join(', ')})`);
    return i;
  };
  const [pp, tg, b, spp, stg] = ['PP', 'TG', 'B', 'S_PP t/s', 'S_TG t/s'].map(col) as [number, number, number, number, number];
  const rows: BatchedBenchRow[] = [];
  for (const l of lines.slice(head + 1)) {
    const c = cells(l);
    if (c.every((x) => /^-*$/.test(x))) continue; // the |---|---| rule
    const num = (i: number) => Number(c[i]);
    const row = { pp: num(pp), tg: num(tg), batch: num(b), prefillTokS: num(spp), decodeTokS: num(stg) };
    if (Object.values(row).some((v) => !Number.isFinite(v))) throw new Error(`llama-batched-bench: unreadable row ${JSON.stringify(l)}`);
    rows.push(row);
  }
  return rows;
}

/**
 * Runs `llama-batched-bench -m file -t threads -c ctx -npp pp -ntg tg -npl b1,b2,…` `reps` times;
 * per batch size, the row with the best decode rate.
 */
export function runBatchedBench(bin: string, file: string, threads: number, pp: number, tg: number, batches: number[], reps = 2): Map<number, BatchedBenchRow> {
  const ctx = Math.max(4096, Math.ceil((Math.max(...batches) * (pp + tg)) / 256) * 256);
  const args = ['-m', file, '-t', String(threads), '-tb', String(threads), '-c', String(ctx), '-b', '2048', '-ub', '512',
    '-npp', String(pp), '-ntg', String(tg), '-npl', batches.join(',')];
  const best = new Map<number, BatchedBenchRow>();
  for (let r = 0; r < reps; r++) {
    const p = spawnSync(bin, args, { encoding: 'utf8', timeout: 30 * 60_000, maxBuffer: 64 << 20 });
    if (p.error || p.status !== 0) {
      const tail = (p.stderr ?? '').trim().split('\n').slice(-3).join(' / ');
      throw new Error(`llama-batched-bench ${args.join(' ')} failed (${p.error?.message ?? `exit ${p.status}`}): ${tail}`);
    }
    for (const row of parseBatchedBench(p.stdout + '\n' + p.stderr)) {
      if (row.pp !== pp || row.tg !== tg) continue;
      const old = best.get(row.batch);
      if (!old || row.decodeTokS > old.decodeTokS) best.set(row.batch, row);
    }
  }
  for (const b of batches) if (!best.has(b)) throw new Error(`llama-batched-bench output has no row for PP ${pp}, TG ${tg}, B ${b}`);
  return best;
}
