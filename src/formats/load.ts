/**
 * Format detection: one entry point that takes whatever the user points at (a GGUF file, a
 * llama2.c .bin, a Hugging Face directory, a Meta directory, or a file inside one of those
 * directories) and hands it to the right reader.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Llama2Error, quote } from '../util/errors.js';
import type { LoadedModel, ModelFormat } from './types.js';
import { readGgufModel } from './gguf.js';
import { readHfDir } from './hf.js';
import { readMetaDir } from './meta.js';
import { readLlama2c } from './llama2c.js';
import { loadVocab } from '../tokenizer/load.js';

export interface LoadOptions {
  /** a tokenizer file to use instead of (or when there is no) tokenizer next to the model */
  tokenizer?: string;
  /** map tensor data instead of reading it (GGUF, safetensors, torch.save; default: with the native addon) */
  mmap?: boolean;
}

function magic(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    const n = readSync(fd, b, 0, 4, 0);
    return b.subarray(0, n).toString('latin1');
  } finally {
    closeSync(fd);
  }
}

/** Which reader a path needs, or a Llama2Error explaining what was expected. */
export function detectFormat(path: string): { format: ModelFormat; path: string } {
  if (!existsSync(path)) throw new Llama2Error(`--model ${path}: no such file or directory`);
  const st = statSync(path);
  if (st.isDirectory()) {
    if (existsSync(join(path, 'config.json'))) return { format: 'hf', path };
    if (existsSync(join(path, 'params.json'))) return { format: 'meta', path };
    throw new Llama2Error(
      `--model ${path}: a model directory must hold config.json (Hugging Face) or params.json (Meta); found neither`,
    );
  }
  const name = basename(path);
  const m = magic(path);
  if (m === 'GGUF') return { format: 'gguf', path };
  if (name.endsWith('.gguf')) return { format: 'gguf', path }; // the reader explains the bad magic
  if (/^consolidated\.\d+\.pth$/.test(name) || name === 'consolidated.safetensors' || name === 'params.json') {
    return { format: 'meta', path: dirname(path) };
  }
  if (/\.safetensors$/.test(name) || name === 'config.json' || name === 'model.safetensors.index.json') {
    return { format: 'hf', path: dirname(path) };
  }
  if (name.endsWith('.bin')) return { format: 'llama2c', path };
  throw new Llama2Error(
    `--model ${path}: unrecognised model file (first bytes ${quote(m)}); expected a .gguf file, a llama2.c .bin, ` +
      `or a Hugging Face / Meta model directory`,
  );
}

/** Reads a model from any supported format. Tensors are read per tensor (never the file twice). */
export function loadModelFile(path: string, opts: LoadOptions = {}): LoadedModel {
  const d = detectFormat(path);
  let m: LoadedModel;
  switch (d.format) {
    case 'gguf': m = readGgufModel(d.path, { mmap: opts.mmap }); break;
    case 'hf': m = readHfDir(d.path, { mmap: opts.mmap }); break;
    case 'meta': m = readMetaDir(d.path, { mmap: opts.mmap }); break;
    case 'llama2c': m = readLlama2c(d.path, opts.tokenizer?.endsWith('.bin') ? opts.tokenizer : undefined); break;
  }
  if (opts.tokenizer && !(d.format === 'llama2c' && opts.tokenizer.endsWith('.bin'))) {
    m.vocab = loadVocab(opts.tokenizer);
    m.vocabSource = opts.tokenizer;
  }
  return m;
}
