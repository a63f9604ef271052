/**
 * `llama2 serve` throughput through HTTP, run by `npm run bench` (bench.ts, section "serve") or
 * alone: `node dist/bench/serve.js [--quick] [--json] [--threads=2] [--models=stories110m,tinyllama]
 * [--no-llama-cpp] [--batched-bench=PATH]`.
 *
 * For each file (a stories110M-shaped Q8_0 and a TinyLlama-shaped Q4_0 file from
 * bench/model-files.ts, random weights) a server is started as a user would (`llama2 serve
 * --parallel 16 --threads T`), then B = 1, 4, 16 clients stream /v1/completions at once (a
 * PP-token prompt each, distinct, TG greedy tokens, EOS ignored, one SSE chunk per token).
 * Aggregate decode tokens/s = the tokens that arrive while all B streams are decoding (from the
 * last stream's first token to the first stream's last token) ÷ that window: llama.cpp's S_TG
 * seen from the client, HTTP and JSON included. Time to first token (request sent → first chunk)
 * p50/p95 over the streams of the B = 16 runs. Next to it, in the same run: llama.cpp's
 * llama-batched-bench on the same file, PP, TG, B and threads (bench/llama-cpp.ts), and `llama2
 * generate` on the same file for the HTTP overhead of one stream. Best of the repetitions.
 * This file is not a test.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ensureModelFile, ROOT, type BenchModel } from './model-files.js';
import { batchedBenchFor, runBatchedBench } from './llama-cpp.js';
import { sectionArgs } from './util.js';
import type { BatchBenchOptions } from './batch.js';
import type { DType } from '../src/tensor.js';

/** the same options as the batched-decode section's */
export type ServeBenchOptions = BatchBenchOptions;

const PP = 16;
const STREAMS = [1, 4, 16];
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

interface Server { url: string; stop(): Promise<void> }

function startServer(file: string, threads: number, ctx: number): Promise<Server> {
  const p = spawn(process.execPath, [CLI, 'serve', '--model', file, '--port', '0', '--parallel', '16', '--threads', String(threads), '--ctx', String(ctx)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    const early = (code: number | null) => reject(new Error(`llama2 serve exited (${code}): ${err}`));
    p.once('exit', early);
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      p.off('exit', early);
      resolve({ url: m[1]!, stop: async () => { p.kill('SIGTERM'); await exited; } });
    });
  });
}

interface Stream { sent: number; times: number[] }

/** one streaming completion; the arrival time of each token */
async function stream(url: string, prompt: number[], tg: number): Promise<Stream> {
  const sent = performance.now();
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ prompt, max_tokens: tg, temperature: 0, ignore_eos: true, stream: true, logprobs: 0 }),
  });
  if (!r.ok || !r.body) throw new Error(`serve bench: HTTP ${r.status}: ${await r.text()}`);
  const times: number[] = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const part of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(part, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const c = JSON.parse(ev.slice(6)) as { choices: { logprobs: { tokens: string[] } | null }[] };
      const n = c.choices[0]?.logprobs?.tokens.length ?? 0;
      const t = performance.now();
      for (let i = 0; i < n; i++) times.push(t);
    }
  }
  return { sent, times };
}

/** B streams at once: aggregate decode tok/s while all decode, and each stream's time to first token */
async function concurrent(url: string, B: number, tg: number, vocab: number, salt: number): Promise<{ tokS: number; ttft: number[] }> {
  const prompts = Array.from({ length: B }, (_, b) => [1, ...Array.from({ length: PP - 1 }, (_, i) => 1 + ((salt * 31 + b * 7919 + i * 104729) % (vocab - 1)))]);
  const res = await Promise.all(prompts.map((p) => stream(url, p, tg)));
  for (const s of res) if (s.times.length !== tg) throw new Error(`serve bench: a stream got ${s.times.length} tokens, expected ${tg}`);
  const from = Math.max(...res.map((s) => s.times[0]!));
  const to = Math.min(...res.map((s) => s.times[s.times.length - 1]!));
  const inside = res.reduce((a, s) => a + s.times.filter((t) => t > from && t <= to).length, 0);
  return { tokS: inside / ((to - from) / 1000), ttft: res.map((s) => s.times[0]! - s.sent) };
}

const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/** `llama2 generate` decode tok/s on the same file, prompt length and tokens (best of reps) */
function generateTokS(file: string, threads: number, tg: number, reps: number): number {
  let best = 0;
  for (let r = 0; r < reps; r++) {
    const ids = [1, ...Array.from({ length: PP - 1 }, (_, i) => 1 + ((r * 977 + i * 104729) % 31999))].join(',');
    const p = spawnSync(process.execPath, [CLI, 'generate', '--model', file, '--prompt-ids', ids, '--max-tokens', String(tg), '--temperature', '0', '--ignore-eos', '--json', '--threads', String(threads)], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (p.status !== 0) throw new Error(`llama2 generate failed: ${p.stderr}`);
    best = Math.max(best, (JSON.parse(p.stdout) as { timings: { decode_tokens_per_s: number } }).timings.decode_tokens_per_s);
  }
  return best;
}

export async function runServeBench(o: ServeBenchOptions): Promise<void> {
  const TG = o.quick ? 32 : 64;
  const reps = o.quick ? 1 : 2;
  const batched = batchedBenchFor(o.llamaCpp, o.log);
  o.log(`\n## serve: decode tok/s through HTTP (llama2 serve, ${STREAMS.join(' / ')} concurrent streams of a ${PP}-token prompt, ${TG} greedy tokens each; best of ${reps})`);
  o.log(`${'model'.padEnd(17)} | th | ${STREAMS.map((b) => `http ${b}`.padStart(8)).join(' | ')}${batched ? ` | ${STREAMS.map((b) => `llama.cpp ${b}`).join(' | ')} | ${STREAMS.map((b) => `ratio ${b}`).join(' | ')}` : ''} | generate 1 | http/gen | TTFT p50/p95 ms (16)`);
  const files: [string, BenchModel, DType][] = [['stories110m_q8_0', 'stories110m', 'Q8_0'], ['tinyllama_q4_0', 'tinyllama-1.1b', 'Q4_0']];
  for (const [name, model, dtype] of files) {
    if (o.models?.length && !o.models.some((m) => name.startsWith(m))) continue;
    const file = ensureModelFile(model, dtype, (p) => o.log(`(writing ${p} with random weights …)`)).path;
    for (const th of o.threads) {
      const srv = await startServer(file, th, PP + TG + 16);
      const best = new Map<number, number>();
      const ttft: number[] = [];
      try {
        await concurrent(srv.url, 2, 4, 32000, 99); // warm-up
        for (let r = 0; r < reps; r++) {
          for (const B of STREAMS) {
            const x = await concurrent(srv.url, B, TG, 32000, r);
            best.set(B, Math.max(best.get(B) ?? 0, x.tokS));
            if (B === 16) ttft.push(...x.ttft);
          }
        }
      } finally {
        await srv.stop();
      }
      const gen = generateTokS(file, th, TG, reps);
      const k = `serve_${name}_`;
      for (const B of STREAMS) o.results[`${k}http${B}_decode_tok_s_${th}t`] = round(best.get(B)!);
      o.results[`${k}generate1_decode_tok_s_${th}t`] = round(gen);
      o.results[`${k}http1_vs_generate_${th}t`] = round(best.get(1)! / gen, 3);
      o.results[`${k}ttft16_p50_ms_${th}t`] = round(pct(ttft, 0.5));
      o.results[`${k}ttft16_p95_ms_${th}t`] = round(pct(ttft, 0.95));
      let line = `${name.padEnd(17)} | ${String(th).padStart(2)} | ${STREAMS.map((b) => best.get(b)!.toFixed(0).padStart(8)).join(' | ')}`;
      if (batched) {
        const lc = runBatchedBench(batched, file, th, PP, TG, STREAMS);
        line += ` | ${STREAMS.map((b) => lc.get(b)!.decodeTokS.toFixed(0).padStart(11)).join(' | ')}`;
        line += ` | ${STREAMS.map((b) => `${(best.get(b)! / lc.get(b)!.decodeTokS).toFixed(2)}×`.padStart(7)).join(' | ')}`;
        for (const b of STREAMS) {
          o.results[`${k}llamacpp${b}_decode_tok_s_${th}t`] = round(lc.get(b)!.decodeTokS);
          o.results[`${k}http${b}_vs_llamacpp_${th}t`] = round(best.get(b)! / lc.get(b)!.decodeTokS, 3);
        }
      }
      line += ` | ${gen.toFixed(0).padStart(10)} | ${(best.get(1)! / gen).toFixed(2).padStart(7)}× | ${pct(ttft, 0.5).toFixed(0)} / ${pct(ttft, 0.95).toFixed(0)}`;
      o.log(line);
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const a = sectionArgs(process.argv.slice(2), '2', 'batched-bench');
  const results: Record<string, number | string> = {};
  await runServeBench({ ...a, log: (l) => process.stdout.write(l + '\n'), results });
  if (a.json) process.stdout.write(JSON.stringify(results) + '\n');
}
