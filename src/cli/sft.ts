/**
 * `llama2 sft`: flags → the SFT config → the recipe (src/recipes/sft.ts), with a progress bar,
 * Ctrl-C / SIGTERM handling and a closing report (cli/train-run.ts).
 *
 *   llama2 sft --init runs/base/latest --data world/sft.jsonl --out-dir runs/sft
 *   llama2 sft --config configs/sft.json --resume
 */
import { join } from 'node:path';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, num } from './args.js';
import { RUN_FLAGS, exitIfInterrupted, formatReport, runRecipe } from './train-run.js';
import { SFT, sft } from '../recipes/sft.js';
import { asciiPlot } from '../train/metrics.js';
import { siNumber } from '../train/compute.js';
import { Llama2Error } from '../util/errors.js';

export const spec: CommandSpec = {
  name: 'sft',
  summary: 'Supervised fine-tuning on chat data, the loss on answer tokens only (Llama 2 paper, section 3.1).',
  usage: 'llama2 sft --init CKPT --data FILE[,FILE...] --out-dir DIR [--config FILE] [--KEY=VALUE ...] [--resume]',
  flags: [...RUN_FLAGS, ...SFT.flags()],
  notes:
    'Every config key is a flag (snake_case key ↔ --kebab-case flag); [x] is the default in code.\n' +
    'Data (JSONL, recognised per line): {"messages": [{"role", "content"}, ...]} (OpenAI / TRL; optional\n' +
    '"train_on": "last" learns only the final answer), {"prompt", "completion"} (TRL), HH-RLHF {"text"} or\n' +
    '{"chosen"} transcripts. A bad line stops with FILE:LINE (--skip-bad counts and skips it).\n' +
    'Writes to out_dir what pretraining writes (checkpoints in HF layout with the tokenizer, metrics.jsonl,\n' +
    'loss.svg, summary.json); a checkpoint chats directly: llama2 chat --model <out_dir>/latest',
};

export async function run(f: FlagValues): Promise<void> {
  const c = SFT.fromFlags(f);
  const stopAfter = num(f, 'stop-after');
  if (stopAfter !== undefined && stopAfter < 1) throw new Llama2Error(`--stop-after: expected an integer ≥ 1, found ${stopAfter}`);
  const r = await runRecipe((signal, onEvent) => sft({ config: c, resume: bool(f, 'resume'), overwrite: bool(f, 'overwrite'), stopAfter, signal, onEvent }),
    { quiet: bool(f, 'quiet'), logEvery: c.log_every, outDir: c.out_dir });
  const s = r.summary;
  if (bool(f, 'json')) process.stdout.write(JSON.stringify(s) + '\n');
  else {
    const loss = s.final_train_loss === null ? undefined
      : `loss on answer tokens: train ${s.final_train_loss.toFixed(4)}${s.final_val_loss !== null ? `, validation ${s.final_val_loss.toFixed(4)}` : ''} nats/token; ` +
        `${siNumber(s.answer_tokens)} answer tokens (${Math.round(s.answer_tokens_per_s)}/s) of ${siNumber(s.tokens)} positions, ${s.packing} packing`;
    process.stdout.write(asciiPlot(r.plot) + '\n\n' + formatReport(s, c.out_dir, { lossLine: loss, tryCommand: `llama2 chat --model ${join(c.out_dir, 'latest')}` }) + '\n');
  }
  exitIfInterrupted(r.status, r.step, 'sft');
}
