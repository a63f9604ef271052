/**
 * `llama2 data synth chat`: the chat world's files (src/world/synth.ts) — sft.jsonl,
 * prompts.train.jsonl, prompts.test.jsonl and card.json — in one directory.
 *
 *   llama2 data synth chat --seed 1 --out data/chat [--sft 6000] [--train-prompts 3000] [--test-prompts 2000]
 *                          [--multi-turn-share 0.2] [--system-share 0.2] [--noisy-share 0] [--json]
 *
 * src/cli/data.ts declares these flags (CHAT_FLAGS) and dispatches "synth chat" here.
 * What it is not: the generator itself (src/world/synth.ts).
 */
import type { FlagSpec, FlagValues } from './args.js';
import { bool, num, str } from './args.js';
import { DEFAULT_CHAT_WORLD, writeChatWorld } from '../world/synth.js';
import { check, Llama2Error } from '../util/errors.js';

const D = DEFAULT_CHAT_WORLD;

/** Flags of `data synth chat` beyond --out, --seed and --json (defaults shown in the help, applied here). */
export const CHAT_FLAGS: FlagSpec[] = [
  { name: 'sft', type: 'int', meta: 'N', help: `synth chat: reference dialogs in sft.jsonl (default ${D.sft})` },
  { name: 'train-prompts', type: 'int', meta: 'N', help: `synth chat: prompts in prompts.train.jsonl (default ${D.trainPrompts})` },
  { name: 'test-prompts', type: 'int', meta: 'N', help: `synth chat: prompts in prompts.test.jsonl (default ${D.testPrompts})` },
  { name: 'multi-turn-share', type: 'number', meta: 'F', help: `synth chat: share of lines with earlier turns in front (default ${D.multiTurnShare})` },
  { name: 'system-share', type: 'number', meta: 'F', help: `synth chat: share of lines with a system prompt, half of them GAtt constraints (default ${D.systemShare})` },
  { name: 'noisy-share', type: 'number', meta: 'F', help: `synth chat: share of flawed third-party answers in sft.jsonl (default ${D.noisyShare})` },
  { name: 'refusal-share', type: 'number', meta: 'F', help: `synth chat: share of sft.jsonl's harmless requests answered with a refusal — an over-cautious variant's data (default ${D.refusalShare})` },
  { name: 'compliance-share', type: 'number', meta: 'F', help: `synth chat: share of sft.jsonl's unsafe requests answered with the harmful steps — a helpful-only variant's data (default ${D.complianceShare})` },
];

const ALLOWED = new Set(['out', 'seed', 'json', ...CHAT_FLAGS.map((f) => f.name)]);

export async function runSynthChat(f: FlagValues, extra: string[]): Promise<void> {
  check(extra.length === 0, `data synth chat: unexpected argument "${extra[0]}"`);
  for (const [k, v] of Object.entries(f)) {
    if (v !== undefined && !ALLOWED.has(k) && !(k === 'json' && v === false)) throw new Llama2Error(`data synth chat: --${k} does not apply here (see llama2 data --help)`);
  }
  const out = str(f, 'out');
  check(out, 'data synth chat: --out DIR is required (the directory for sft.jsonl, prompts.*.jsonl and card.json)');
  for (const flag of CHAT_FLAGS) {
    const v = num(f, flag.name);
    if (v === undefined) continue;
    if (flag.type === 'int') check(v >= 0, `--${flag.name}: expected an integer ≥ 0, found ${v}`);
    else check(v >= 0 && v <= 1, `--${flag.name}: expected a share in [0, 1], found ${v}`);
  }
  const r = writeChatWorld(out, {
    seed: num(f, 'seed') ?? 1,
    sft: num(f, 'sft') ?? D.sft, trainPrompts: num(f, 'train-prompts') ?? D.trainPrompts, testPrompts: num(f, 'test-prompts') ?? D.testPrompts,
    multiTurnShare: num(f, 'multi-turn-share') ?? D.multiTurnShare, systemShare: num(f, 'system-share') ?? D.systemShare, noisyShare: num(f, 'noisy-share') ?? D.noisyShare,
    complianceShare: num(f, 'compliance-share') ?? D.complianceShare,
    refusalShare: num(f, 'refusal-share') ?? D.refusalShare,
  });
  if (bool(f, 'json')) {
    process.stdout.write(JSON.stringify({ dir: r.dir, files: r.files, card: r.card }) + '\n');
    return;
  }
  const lines = Object.entries(r.card.files).map(([name, c]) =>
    `  ${name.padEnd(20)} ${String(c.lines).padStart(6)} lines: ${c.by_category['helpful'] ?? 0} helpful, ${c.by_category['unsafe'] ?? 0} unsafe, ${c.by_category['borderline'] ?? 0} borderline; ${c.multi_turn} multi-turn, ${c.with_system} with a system prompt${c.noisy ? `, ${c.noisy} noisy` : ''}`);
  process.stdout.write([`wrote the chat world (seed ${r.card.seed}, checker ${r.card.checker}) to ${r.dir}`, ...lines, `  card.json: counts per family, category, risk and attack`].join('\n') + '\n');
}
