/**
 * llama.cpp as a baseline measured in the same run: `llama-bench` on the very GGUF files the
 * inference benchmark times, right after each of our rows, so both engines see the same machine
 * load. Not part of the package; the binary is found at `--llama-bench=PATH`, `$LLAMA_BENCH`, or
 * bench/.cache/llama.cpp/build/bin/llama-bench as built by `bash bench/build-llama-cpp.sh`
 * (llama.cpp's own source as shipped inside the node-llama-cpp npm package, built for the native
 * ISA; nothing but the npm registry is needed).
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
