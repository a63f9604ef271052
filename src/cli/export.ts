/**
 * `llama2 export`: writes a model the project opens or trained as GGUF (llama.cpp, Ollama), a
 * Hugging Face directory (transformers, TRL, torchtune, vLLM), a Meta directory or a llama2.c
 * `.bin`, tokenizer included. Only flag parsing and printing here; the work is formats/export.ts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandSpec, FlagValues } from './args.js';
import { bool, str } from './args.js';
import { requireModelPath, wantJson } from './common.js';
import { loadModelFile } from '../formats/load.js';
import { EXPORT_DTYPES, EXPORT_FORMATS, FORMAT_DTYPES, exportModel, parseExportDType, type ExportFormat } from '../formats/export.js';
import { latestCheckpoint } from '../train/checkpoint.js';
import { Llama2Error, formatBytes } from '../util/errors.js';

export const spec: CommandSpec = {
  name: 'export',
  summary: 'Write a model as GGUF, a Hugging Face or Meta directory, or a llama2.c file, tokenizer included.',
  usage: 'llama2 export --model PATH --to gguf|hf|meta|llama2c --out PATH [--dtype D] [--keep-heads] [--overwrite] [--json]',
  flags: [
    { name: 'model', short: 'm', type: 'string', meta: 'PATH', help: 'model: .gguf, llama2.c .bin, a Hugging Face / Meta directory, a checkpoint or a training run directory (required)' },
    { name: 'tokenizer', type: 'string', meta: 'FILE', help: 'tokenizer.model / tokenizer.json / tokenizer.bin (default: the one found with the model)' },
    { name: 'to', type: 'string', meta: EXPORT_FORMATS.join('|'), help: 'output format (required)' },
    { name: 'out', short: 'o', type: 'string', meta: 'PATH', help: 'output: a file for gguf and llama2c, a directory for hf and meta (required)' },
    { name: 'dtype', type: 'string', meta: EXPORT_DTYPES.join('|'), help: 'weight type (default: as stored where the format holds it, else f32)' },
    { name: 'keep-heads', type: 'boolean', default: false, help: 'gguf: also write extra heads (a reward model\'s score as cls.output.weight); llama.cpp then refuses the file' },
    { name: 'name', type: 'string', meta: 'TEXT', help: 'gguf general.name (default: the model\'s file or directory name)' },
    { name: 'overwrite', type: 'boolean', default: false, help: 'replace an existing output' },
    { name: 'json', type: 'boolean', default: false, help: 'print one JSON summary line' },
  ],
  notes:
    'Dtypes by format: ' + EXPORT_FORMATS.map((f) => `${f}: ${FORMAT_DTYPES[f].join(', ')}`).join('; ') + '.\n' +
    'gguf embeds the tokenizer; hf writes tokenizer.model, tokenizer.json, tokenizer_config.json (with\n' +
    'the Llama-2 chat template) and generation_config.json; meta writes tokenizer.model; llama2c writes\n' +
    'tokenizer.bin beside the .bin. Extra heads (a reward model\'s score.weight, a PPO value head) stay\n' +
    'in hf (LlamaForSequenceClassification) and meta, are left out of gguf unless --keep-heads, and of\n' +
    'llama2c always; each such choice is reported. Output is written atomically.\n' +
    'See docs/scale-out.md for taking the result to llama.cpp, vLLM, TRL and torchtune.',
};

/** A training run directory (latest.json, no config.json) stands for its latest checkpoint. */
function modelDir(path: string): string {
  if (existsSync(join(path, 'config.json')) || !existsSync(join(path, 'latest.json'))) return path;
  const latest = latestCheckpoint(path);
  if (!latest) throw new Llama2Error(`--model ${path}: latest.json names no complete checkpoint`);
  return latest.dir;
}

export async function run(f: FlagValues): Promise<void> {
  const path = modelDir(requireModelPath(f, 'export'));
  const to = str(f, 'to');
  if (!to) throw new Llama2Error(`export: --to is required (${EXPORT_FORMATS.join(', ')})`);
  if (!(EXPORT_FORMATS as readonly string[]).includes(to)) throw new Llama2Error(`--to: expected one of ${EXPORT_FORMATS.join(', ')}, found "${to}"`);
  const format = to as ExportFormat;
  const out = str(f, 'out');
  if (!out) throw new Llama2Error(`export: --out is required (a ${format === 'hf' || format === 'meta' ? 'directory' : 'file'})`);
  const d = str(f, 'dtype');
  const dtype = d === undefined ? undefined : parseExportDType(d, format);
  const t0 = performance.now();
  const m = loadModelFile(path, { tokenizer: str(f, 'tokenizer') });
  const s = exportModel(m, { to: format, out, dtype, keepHeads: bool(f, 'keep-heads'), overwrite: bool(f, 'overwrite'), name: str(f, 'name') });
  const seconds = (performance.now() - t0) / 1000;
  if (wantJson(f)) {
    process.stdout.write(JSON.stringify({ model: path, ...s, seconds }) + '\n');
    return;
  }
  for (const n of s.notes) process.stderr.write(`note: ${n}\n`);
  const types = Object.entries(s.tensor_types).map(([k, v]) => `${k} ×${v}`).join(', ');
  process.stdout.write(
    `wrote ${s.format} ${s.out} (${formatBytes(s.bytes)}, ${(s.parameters / 1e6).toFixed(2)}M parameters, ${types}) in ${seconds.toFixed(1)} s\n` +
      `tokenizer ${s.tokenizer ? `${s.tokenizer.pieces} pieces: ${s.tokenizer.files.join(', ')}` : 'none'}\n` +
      (s.heads.kept.length ? `heads     ${s.heads.kept.join(', ')}\n` : ''),
  );
}
