/**
 * `llama2 demo`: the whole Llama-2 recipe on a fresh clone — the quick pipeline (src/recipes/pipeline.ts:
 * chat world, pretraining, SFT, Ghost Attention, two RLHF versions with both reward models, rejection
 * sampling, PPO, context distillation, gold evaluation) into runs/demo, in about ten minutes on 2 cores.
 *
 * `--stories`: pretraining alone — the built-in stories corpus (seeded), a BPE tokenizer trained on
 * it, token shards, a small Llama trained from scratch, samples, the loss curve, and validation bits
 * per character next to the corpus's true entropy (the floor no model can beat). Its config is
 * PRETRAIN.defaults (src/recipes/pretrain.ts; configs/demo.json spells it out); --quick shrinks it to
 * seconds (for tests), --steps scales it.
 */
import { join } from 'node:path';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, num, str } from './args.js';
import { fmtTime } from './progress.js';
import { exitIfInterrupted, pretrainReport, runPretraining } from './train-run.js';
import { PRETRAIN, type PretrainConfig } from '../recipes/pretrain.js';
import { asciiPlot } from '../train/metrics.js';
import { Model } from '../model/forward.js';
import { selectBackend } from '../backend/select.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { generate } from '../generate/generate.js';
import { Llama2Error } from '../util/errors.js';
import { PIPELINE, QUICK_PIPELINE } from '../recipes/pipeline.js';
import { runPipelineCli } from './pipeline.js';

/** --quick: a model and corpus small enough for a test (seconds on the reference backend). */
export const QUICK: Partial<PretrainConfig> = {
  stories_count: 200, vocab_size: 384, seq_len: 64, dim: 32, n_layers: 2, n_heads: 2, batch_size: 4,
  steps: 20, warmup_steps: 2, eval_every: 10, eval_batches: 2, ckpt_every: 10, val_fraction: 0.05, lr: 3e-3,
};

export const PROMPTS = ['Once upon a time,', 'Lily', 'One day, Tom found'];

export const spec: CommandSpec = {
  name: 'demo',
  summary: 'The whole Llama-2 recipe on a small model in minutes (the quick pipeline); --stories: pretraining alone on the built-in stories.',
  usage: 'llama2 demo [--out DIR] [--seed S] [--json]\n       llama2 demo --stories [--out DIR] [--steps N] [--quick]',
  flags: [
    { name: 'stories', type: 'boolean', default: false, help: 'pretraining alone: stories corpus → tokenizer → model → samples, bits/char against the entropy floor' },
    { name: 'out', short: 'o', type: 'string', default: 'runs/demo', help: 'run directory (data, checkpoints, logs)' },
    { name: 'steps', type: 'int', meta: 'N', help: `--stories: training steps (default ${PRETRAIN.defaults.steps}; --quick ${QUICK.steps})` },
    { name: 'quick', type: 'boolean', default: false, help: '--stories on a tiny corpus and model that train in seconds (for tests)' },
    { name: 'threads', short: 't', type: 'int', meta: 'N', help: 'native backend threads (default: all cores)' },
    { name: 'seed', type: 'int', default: PRETRAIN.defaults.seed, help: 'seed of the weights and batch order' },
    { name: 'samples', type: 'int', default: PROMPTS.length, help: '--stories: stories to sample at the end' },
    { name: 'max-tokens', type: 'int', default: 160, help: '--stories: tokens per sample' },
    { name: 'resume', type: 'boolean', default: false, help: '--stories: continue an interrupted demo instead of starting over (the pipeline always continues)' },
    { name: 'json', type: 'boolean', default: false, help: 'print the summary and samples as one JSON object' },
    { name: 'quiet', short: 'q', type: 'boolean', default: false, help: 'no progress lines on stderr' },
  ],
  notes:
    'The pipeline demo is `llama2 pipeline --quick --out-dir runs/demo` (see llama2 pipeline --help); a rerun\n' +
    'skips finished stages and resumes an interrupted one.\n' +
    'Timing of --stories: the default (1M params, 1000 steps of 2048 tokens) takes about 3 minutes on 2 cores\n' +
    'with the native backend; the reference TypeScript backend (LLAMA2_BACKEND=ref) is about 40× slower\n' +
    '(~30 s per step) — use --steps to scale. A rerun reuses the prepared data in <out>/data.',
};

export function demoConfig(f: FlagValues): PretrainConfig {
  const base: PretrainConfig = { ...PRETRAIN.defaults, ...(bool(f, 'quick') ? QUICK : {}), out_dir: str(f, 'out') ?? 'runs/demo', seed: num(f, 'seed') ?? PRETRAIN.defaults.seed };
  const over: [string, string][] = [];
  const steps = num(f, 'steps');
  if (steps !== undefined) over.push(['steps', String(steps)]);
  const threads = num(f, 'threads');
  if (threads !== undefined) over.push(['threads', String(threads)]);
  // short runs: keep warm-up inside the run
  if (steps !== undefined && base.warmup_steps > steps) base.warmup_steps = Math.max(0, Math.floor(steps / 10));
  return PRETRAIN.applyOverrides(base, over);
}

/** The quick pipeline into --out (default runs/demo). */
async function runPipelineDemo(f: FlagValues): Promise<void> {
  for (const k of ['steps', 'samples', 'max-tokens']) {
    if (f[k] !== undefined && f[k] !== spec.flags.find((x) => x.name === k)?.default) throw new Llama2Error(`demo: --${k} applies to --stories only`);
  }
  const c = PIPELINE.check({ ...PIPELINE.defaults, ...QUICK_PIPELINE, out_dir: str(f, 'out') ?? 'runs/demo', seed: num(f, 'seed') ?? 1, threads: num(f, 'threads') ?? null }, '--out');
  await runPipelineCli(c, {
    quiet: bool(f, 'quiet'), json: bool(f, 'json'), tag: 'demo',
    intro: `llama2 demo → ${c.out_dir}: the Llama-2 recipe on a 1M-parameter model (chat world → pretraining → SFT → Ghost Attention → RLHF V1, V2 → evaluation), about ten minutes on 2 cores`,
  });
}

export async function run(f: FlagValues): Promise<void> {
  if (!bool(f, 'stories') && !bool(f, 'quick')) return runPipelineDemo(f);
  const t0 = performance.now();
  const c = demoConfig(f);
  const quiet = bool(f, 'quiet');
  const json = bool(f, 'json');
  const nSamples = num(f, 'samples')!;
  const maxTokens = num(f, 'max-tokens')!;
  if (nSamples < 0) throw new Llama2Error(`--samples: expected an integer ≥ 0, found ${nSamples}`);
  if (maxTokens < 1) throw new Llama2Error(`--max-tokens: expected an integer ≥ 1, found ${maxTokens}`);
  const say = (m: string) => {
    if (!quiet) process.stderr.write(m + '\n');
  };
  say(`llama2 demo → ${c.out_dir}: stories corpus → BPE tokenizer (${c.vocab_size}) → Llama (${c.steps} steps) → samples`);
  const backend = selectBackend({ threads: c.threads ?? undefined });
  if (backend.name === 'ref' && !bool(f, 'quick') && num(f, 'steps') === undefined) {
    say(`note: the reference backend trains this model about 40× slower than the native addon (~30 s per step on 2 cores: ` +
      `hours for ${c.steps} steps); pass --steps 20 for a short look, or build the native addon (npm run build:native)`);
  }
  const { result: r, data } = await runPretraining(c, { resume: bool(f, 'resume'), overwrite: !bool(f, 'resume'), quiet });
  exitIfInterrupted(r.status, r.step, 'demo');

  const model = new Model(r.model.config, r.model.weights, backend);
  const tok = new Tokenizer(r.vocab);
  const samples: { prompt: string; text: string }[] = [];
  for (let i = 0; i < nSamples; i++) {
    const prompt = PROMPTS[i % PROMPTS.length]!;
    const ids = tok.encode(prompt, { bos: true });
    const g = await generate(model, tok, ids, { temperature: 0.8, topP: 0.95, seed: i + 1, maxTokens: Math.min(maxTokens, model.config.max_seq_len - ids.length) });
    samples.push({ prompt, text: tok.decode([...ids, ...g.ids]) }); // decoded together: the space after the prompt stays
  }
  const s = r.summary;
  const seconds = (performance.now() - t0) / 1000;
  if (json) {
    process.stdout.write(JSON.stringify({ ...s, demo_seconds: seconds, samples, out_dir: c.out_dir, data_dir: data.dir }) + '\n');
    return;
  }
  const out: string[] = [];
  out.push('', asciiPlot(r.plot), '');
  for (const [i, sm] of samples.entries()) out.push(`--- sample ${i + 1} (temperature 0.8) ---`, sm.text.trim(), '');
  out.push(pretrainReport(s, c.out_dir));
  if (s.final_val_bpc !== null && s.entropy_floor_bpc !== null) {
    out.push(
      `validation: ${s.final_val_bpc.toFixed(4)} bits/char vs the corpus's true entropy ${s.entropy_floor_bpc.toFixed(4)} bits/char ` +
        `(a perfect model would reach the floor; gap ${(s.final_val_bpc - s.entropy_floor_bpc).toFixed(4)})`,
    );
  }
  out.push(`demo finished in ${fmtTime(seconds)}. Next: llama2 generate --model ${join(c.out_dir, 'latest')} --prompt "Once upon a time"`);
  process.stdout.write(out.join('\n') + '\n');
}
