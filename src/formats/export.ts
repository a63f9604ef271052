/**
 * Export: any model the project opens (formats/load.ts) written in the format another engine reads
 * — GGUF for llama.cpp / Ollama, a Hugging Face directory for transformers, TRL, torchtune and
 * vLLM, a Meta directory, a llama2.c `.bin` — with its tokenizer, converted to the dtype asked for.
 *
 *   const m = loadModelFile('runs/sft/latest');
 *   const s = exportModel(m, { to: 'gguf', out: 'sft-q8_0.gguf', dtype: 'q8_0' });
 *   s.files; s.tensor_types; s.notes;
 *
 * What each format gets:
 *   gguf     one file, tokenizer and chat template embedded; every dtype below (K-quants fall back per llama.cpp's
 *            rules when rows are not whole 256-value blocks). Extra heads are left out unless
 *            `keepHeads` (llama.cpp refuses a "llama" file with tensors it does not know).
 *   hf       config.json + model.safetensors, tokenizer.model + tokenizer.json +
 *            tokenizer_config.json (with the Llama-2 chat template) + special_tokens_map.json +
 *            generation_config.json; f32/f16/bf16. A score head makes it LlamaForSequenceClassification.
 *   meta     params.json + consolidated.safetensors + tokenizer.model; f32/f16/bf16; heads by name.
 *   llama2c  the .bin (f32, version 0, what run.c reads) and tokenizer.bin beside it; heads dropped.
 * Output is atomic: a file through temp + rename, a directory built beside its target and renamed
 * into place. An existing output is refused unless `overwrite`.
 *
 * What it is not: the writers themselves (gguf-writer.ts, hf.ts, meta.ts, llama2c.ts,
 * tokenizer/load.ts) or the command line (cli/export.ts).
 */
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { numel, type DType } from '../tensor.js';
import { mapWeights, namedHeads, namedWeights, type ModelWeights } from '../model/weights.js';
import type { LlamaConfig } from '../model/config.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { writeLlama2cTokenizer, writeTokenizerJson } from '../tokenizer/load.js';
import { writeGgufModel } from './gguf-writer.js';
import { convertWeight, writeHfDir, type HfDType } from './hf.js';
import { writeMetaDir } from './meta.js';
import { writeLlama2c } from './llama2c.js';
import type { LoadedModel } from './types.js';

export const EXPORT_FORMATS = ['gguf', 'hf', 'meta', 'llama2c'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_DTYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k'] as const;
export type ExportDType = (typeof EXPORT_DTYPES)[number];

/** The dtypes each format can hold. */
export const FORMAT_DTYPES: Readonly<Record<ExportFormat, readonly ExportDType[]>> = {
  gguf: EXPORT_DTYPES,
  hf: ['f32', 'f16', 'bf16'],
  meta: ['f32', 'f16', 'bf16'],
  llama2c: ['f32'],
};

const DTYPE_OF: Readonly<Record<ExportDType, DType>> = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k: 'Q4_K' };

export interface ExportOptions {
  to: ExportFormat;
  /** a file for gguf / llama2c, a directory for hf / meta */
  out: string;
  /** default: the stored dtype where the format holds it, else f32 */
  dtype?: ExportDType;
  /** GGUF only: write the extra heads too (llama.cpp then refuses the file) */
  keepHeads?: boolean;
  /** replace an existing output */
  overwrite?: boolean;
  /** GGUF general.name (default: the source's base name) */
  name?: string;
}

export interface ExportSummary {
  format: ExportFormat;
  out: string;
  /** every file written, under `out` (or beside it, for llama2.c's tokenizer.bin) */
  files: string[];
  /** tensor count by stored dtype in the output (norms included) */
  tensor_types: Record<string, number>;
  parameters: number;
  bytes: number;
  tokenizer: { pieces: number; files: string[] } | null;
  heads: { kept: string[]; dropped: string[] };
  notes: string[];
}

/** Parses a --dtype value for `to`, or throws naming the flag, the format and what it holds. */
export function parseExportDType(s: string, to: ExportFormat): ExportDType {
  const d = s.toLowerCase();
  if (!(EXPORT_DTYPES as readonly string[]).includes(d)) {
    throw new Llama2Error(`--dtype: expected one of ${EXPORT_DTYPES.join(', ')}, found "${s}"`);
  }
  if (!FORMAT_DTYPES[to].includes(d as ExportDType)) {
    throw new Llama2Error(`--dtype ${d}: ${to} files hold ${FORMAT_DTYPES[to].join(', ')}; use --to gguf for quantized weights`);
  }
  return d as ExportDType;
}

/** The dtype used when none is asked for: the stored one where the format holds it, else f32. */
function defaultDType(w: ModelWeights, to: ExportFormat): ExportDType | undefined {
  if (to === 'gguf') return undefined; // every weight keeps its dtype
  const stored = w.tok_embeddings.dtype.toLowerCase();
  return FORMAT_DTYPES[to].includes(stored as ExportDType) ? (stored as ExportDType) : 'f32';
}

function withoutHeads(w: ModelWeights): ModelWeights {
  const { heads: _dropped, ...rest } = w;
  return rest;
}

/** Refuses an output that exists (unless overwrite) or that is the model being exported. */
function checkOutput(m: LoadedModel, o: ExportOptions): void {
  const out = resolve(o.out);
  const src = resolve(m.path);
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : p);
  if (real(out) === real(src) || real(src).startsWith(real(out) + sep)) {
    throw new Llama2Error(`--out ${o.out}: ${real(out) === real(src) ? 'that is' : 'it holds'} the model being exported (${m.path}); choose another path`);
  }
  if (existsSync(out) && !o.overwrite) {
    throw new Llama2Error(`--out ${o.out}: already exists; pass --overwrite to replace it`);
  }
  const tokBin = join(dirname(out), 'tokenizer.bin');
  if (o.to === 'llama2c' && m.vocab && existsSync(tokBin) && !o.overwrite) {
    throw new Llama2Error(`--out ${o.out}: ${tokBin} (where its tokenizer goes) already exists; pass --overwrite to replace it`);
  }
  if (existsSync(out)) {
    const isDir = statSync(out).isDirectory();
    const wantDir = o.to === 'hf' || o.to === 'meta';
    if (isDir !== wantDir) {
      throw new Llama2Error(`--out ${o.out}: is a ${isDir ? 'directory' : 'file'} but --to ${o.to} writes a ${wantDir ? 'directory' : 'file'}; choose another path`);
    }
  }
  const parent = dirname(out);
  if (!existsSync(parent)) mkdirSync(parent, { recursive: true });
}

/**
 * Builds a directory beside `out` and renames it into place, so a reader sees the old directory
 * or the new one, never a mix; the old one (with --overwrite) is removed after the rename.
 */
function writeDirAtomic(out: string, build: (tmp: string) => void): void {
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    build(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = `${out}.old-${process.pid}`;
  if (existsSync(out)) renameSync(out, old);
  renameSync(tmp, out);
  rmSync(old, { recursive: true, force: true });
}

/**
 * The Llama-2 chat format (chat/format.ts) as a Jinja chat template, for transformers'
 * apply_chat_template (TRL, vLLM's chat endpoint): the system prompt folded into the first user
 * message, which is then stripped, as every other text; BOS before each [INST] and EOS after each
 * answer. Tokenized the way transformers' LlamaTokenizer does (text between special tokens encoded
 * on its own), it gives renderDialog's ids; scripts/check-export-hf.py checks that with jinja2.
 */
export const LLAMA2_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}{% set msgs = messages[1:] %}" +
  '{% else %}{% set sys = none %}{% set msgs = messages %}{% endif %}' +
  '{% for m in msgs %}' +
  "{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('roles must alternate user, assistant, user, ... after an optional system message') }}{% endif %}" +
  "{% if m['role'] == 'user' %}" +
  "{% if loop.first and sys is not none %}{% set text = ('<<SYS>>\\n' ~ sys ~ '\\n<</SYS>>\\n\\n' ~ m['content']) | trim %}" +
  "{% else %}{% set text = m['content'] | trim %}{% endif %}" +
  "{{ bos_token ~ '[INST] ' ~ text ~ ' [/INST]' }}" +
  "{% else %}{{ ' ' ~ (m['content'] | trim) ~ ' ' ~ eos_token }}{% endif %}" +
  '{% endfor %}';

/** The small JSON files transformers reads beside the weights: tokenizer and generation settings. */
function writeHfTokenizerFiles(dir: string, config: LlamaConfig, vocab: SpmVocab): string[] {
  const piece = (id: number) => (id >= 0 ? vocab.pieces[id] ?? null : null);
  const tokCfg = {
    tokenizer_class: 'LlamaTokenizer',
    add_bos_token: vocab.addBos,
    add_eos_token: vocab.addEos,
    bos_token: piece(vocab.bosId),
    eos_token: piece(vocab.eosId),
    unk_token: piece(vocab.unkId),
    pad_token: piece(vocab.padId),
    model_max_length: config.max_seq_len,
    legacy: true,
    clean_up_tokenization_spaces: false,
    chat_template: LLAMA2_CHAT_TEMPLATE,
  };
  const special = { bos_token: tokCfg.bos_token, eos_token: tokCfg.eos_token, unk_token: tokCfg.unk_token, ...(tokCfg.pad_token ? { pad_token: tokCfg.pad_token } : {}) };
  const gen = {
    ...(vocab.bosId >= 0 ? { bos_token_id: vocab.bosId } : {}),
    ...(vocab.eosId >= 0 ? { eos_token_id: vocab.eosId } : {}),
    do_sample: true, temperature: 0.6, top_p: 0.9, // Meta's sampling defaults, as llama2 generate's
  };
  const files: [string, unknown][] = [['tokenizer_config.json', tokCfg], ['special_tokens_map.json', special], ['generation_config.json', gen]];
  for (const [name, v] of files) writeFileAtomic(join(dir, name), JSON.stringify(v, null, 2) + '\n');
  writeTokenizerJson(join(dir, 'tokenizer.json'), vocab);
  return ['tokenizer.model', 'tokenizer.json', ...files.map(([n]) => n)];
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).sort().map((n) => join(dir, n));
}

function fileBytes(files: string[]): number {
  return files.reduce((s, f) => s + statSync(f).size, 0);
}

/** Writes `m` as `o.to` into `o.out`; see the file header for what each format gets. */
export function exportModel(m: LoadedModel, o: ExportOptions): ExportSummary {
  checkOutput(m, o);
  const dtype = o.dtype ?? defaultDType(m.weights, o.to);
  if (dtype !== undefined && !FORMAT_DTYPES[o.to].includes(dtype)) parseExportDType(dtype, o.to); // throws
  const notes: string[] = [];
  const heads = [...namedHeads(m.weights)].map(([n]) => n);
  const keepHeads = o.to === 'hf' || o.to === 'meta' || (o.to === 'gguf' && o.keepHeads === true);
  if (o.keepHeads && o.to !== 'gguf') notes.push(`--keep-heads applies to GGUF only; ${o.to} ${o.to === 'llama2c' ? 'has no place for heads' : 'always keeps them'}`);
  if (heads.length > 0 && !keepHeads) {
    notes.push(o.to === 'gguf'
      ? `left out the head${heads.length > 1 ? 's' : ''} ${heads.join(', ')}: llama.cpp refuses a "llama" GGUF with tensors it does not use (--keep-heads writes ${heads.length > 1 ? 'them' : 'it'} as ${heads.includes('score.weight') ? 'cls.output.weight' : 'named'})`
      : `left out the head${heads.length > 1 ? 's' : ''} ${heads.join(', ')}: a llama2.c file has no place for ${heads.length > 1 ? 'them' : 'it'} (export to hf, meta or gguf --keep-heads to keep ${heads.length > 1 ? 'them' : 'it'})`);
  }
  if (heads.length > 0 && keepHeads && o.to === 'gguf') notes.push('the heads are in the file: llama.cpp will refuse to load it as a "llama" model');
  if (heads.includes('v_head.summary.weight') && o.to === 'hf') {
    notes.push("v_head.summary.* is kept under TRL's AutoModelForCausalLMWithValueHead names; transformers' Llama classes ignore it");
  }
  const stored = m.weights.tok_embeddings.dtype;
  if (o.to !== 'gguf' && o.dtype === undefined && stored !== DTYPE_OF[dtype!]) {
    notes.push(`the weights are stored as ${stored}, which ${o.to} files cannot hold: converted to f32` +
      (o.to === 'llama2c' ? '' : ' (--dtype f16 or bf16 halves the size)'));
  }
  if (!m.vocab) notes.push(`no tokenizer found with ${m.path}: the export has none (pass --tokenizer FILE)`);

  let weights = keepHeads ? m.weights : withoutHeads(m.weights);
  const files: string[] = [];
  const out = resolve(o.out);
  let tokFiles: string[] = [];
  let types = new Map<DType, number>();
  const tensorCount = [...namedWeights(weights), ...namedHeads(weights)].length;
  switch (o.to) {
    case 'gguf': {
      types = writeGgufModel(out, m.config, weights, m.vocab, {
        dtype: dtype === undefined ? undefined : DTYPE_OF[dtype], heads: keepHeads, name: o.name ?? basename(m.path).replace(/\.(gguf|bin)$/, ''),
        chatTemplate: LLAMA2_CHAT_TEMPLATE,
      });
      files.push(out);
      if (m.vocab) tokFiles = ['(embedded)'];
      break;
    }
    case 'hf':
    case 'meta': {
      const fd = DTYPE_OF[dtype!] as HfDType;
      writeDirAtomic(out, (tmp) => {
        if (o.to === 'hf') {
          writeHfDir(tmp, m.config, weights, { vocab: m.vocab ?? undefined, dtype: fd });
          if (m.vocab) tokFiles = writeHfTokenizerFiles(tmp, m.config, m.vocab);
        } else {
          weights = mapWeights(weights, (t) => convertWeight(t, fd));
          writeMetaDir(tmp, m.config, weights, m.vocab ?? undefined);
          if (m.vocab) tokFiles = ['tokenizer.model'];
        }
      });
      files.push(...listFiles(out));
      types.set(fd, tensorCount);
      break;
    }
    case 'llama2c': {
      writeLlama2c(out, m.config, weights);
      files.push(out);
      if (m.vocab) {
        const tokPath = join(dirname(out), 'tokenizer.bin');
        writeLlama2cTokenizer(tokPath, m.vocab);
        files.push(tokPath);
        tokFiles = ['tokenizer.bin'];
      }
      types.set('F32', tensorCount);
      break;
    }
  }
  let parameters = 0;
  for (const [, t] of namedWeights(weights)) parameters += numel(t.shape);
  return {
    format: o.to, out, files, tensor_types: Object.fromEntries(types), parameters, bytes: fileBytes(files),
    tokenizer: m.vocab ? { pieces: m.vocab.pieces.length, files: tokFiles } : null,
    heads: { kept: keepHeads ? heads : [], dropped: keepHeads ? [] : heads },
    notes,
  };
}
