#!/usr/bin/env node
/**
 * The `llama2` command: dispatches to one module per subcommand. Each module exports a
 * CommandSpec (flags with defaults → --help) and a run function. User mistakes (Llama2Error)
 * print one line and exit 1; anything else is a bug and keeps its stack trace.
 */
import { Llama2Error } from '../util/errors.js';
import { helpText, parseArgs, type CommandSpec, type FlagValues } from './args.js';

interface CommandModule {
  spec: CommandSpec;
  run(flags: FlagValues, positionals: string[]): Promise<void>;
}

const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  generate: () => import('./generate.js'),
  chat: () => import('./chat.js'),
  tokenize: () => import('./tokenize.js'),
  perplexity: () => import('./perplexity.js'),
  info: () => import('./info.js'),
  pretrain: () => import('./pretrain.js'),
  sft: () => import('./sft.js'),
  reward: () => import('./reward.js'),
  rlhf: () => import('./rlhf.js'),
  demo: () => import('./demo.js'),
  data: () => import('./data.js'),
  tokenizer: () => import('./tokenizer-train.js'),
  eval: () => import('./eval.js'),
  serve: () => import('./serve.js'),
  export: () => import('./export.js'),
  pipeline: () => import('./pipeline.js'),
  report: () => import('./report.js'),
};

function usage(): string {
  return [
    'llama2 — run, train and serve Llama-2 models in TypeScript',
    '',
    'usage: llama2 <command> [options]      (llama2 <command> --help for its options)',
    '',
    'commands:',
    '  generate     continue a prompt (text or token ids); --json for scripts',
    '  chat         chat with a Llama-2 chat model (Meta\'s chat format)',
    '  tokenize     text → token ids',
    '  perplexity   perplexity of a model on a text file',
    '  info         architecture, tensor types, tokenizer and memory of a model file',
    '  pretrain     train a model from scratch (--config FILE, --KEY=VALUE, --resume)',
    '  sft          supervised fine-tuning on chat data, loss on answers only (--init, --data)',
    '  reward       reward models: train (margin ranking loss) | eval (accuracy by level) | score',
    '  rlhf         rs | ppo | iterate: rejection sampling, PPO and RLHF versions with the two reward models',
    '  pipeline     the whole recipe in one command: world → pretrain → SFT → GAtt → RLHF versions → evaluation',
    '  demo         stories corpus → tokenizer → train a tiny model → samples, in minutes',
    '  data         data synth stories | data synth chat (built-in corpora) | data prepare (corpus → token shards)',
    '  tokenizer    tokenizer train: a BPE tokenizer from corpus files',
    '  eval         grade chat-world answers: helpfulness, violation and refusal rates',
    '  serve        OpenAI-compatible server (continuous batching) and a chat page that collects preferences',
    '  export       write a model as GGUF, a Hugging Face or Meta directory, or a llama2.c file (--to, --dtype)',
    '  report       one self-contained HTML report of a run folder: compute, loss, reward models, RLHF, gold results',
    '',
    'Models: GGUF (F32/F16/BF16, Q4_0…Q8_0, K-quants), Hugging Face directories (safetensors),',
    'Meta directories (consolidated.*.pth / .safetensors), llama2.c .bin checkpoints.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(usage() + '\n');
    return cmd ? 0 : 1;
  }
  const load = COMMANDS[cmd];
  if (!load) throw new Llama2Error(`unknown command "${cmd}"; expected one of: ${Object.keys(COMMANDS).join(', ')}`);
  const mod = await load();
  const parsed = parseArgs(mod.spec, rest);
  if (parsed.help) {
    process.stdout.write(helpText(mod.spec) + '\n');
    return 0;
  }
  await mod.run(parsed.flags, parsed.positionals);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    if (e instanceof Llama2Error) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`internal error (please report): ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 2;
    }
  },
);
