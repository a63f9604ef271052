/**
 * Opening a model for use: read the file (any format), pick the backend, build the tokenizer,
 * and check that the tokenizer and the model agree on the vocabulary.
 */
import { loadModelFile } from './formats/load.js';
import type { LoadedModel } from './formats/types.js';
import { Model } from './model/forward.js';
import { Tokenizer } from './tokenizer/tokenizer.js';
import { selectBackend } from './backend/select.js';
import type { Backend } from './backend/types.js';
import { Llama2Error } from './util/errors.js';

export interface OpenOptions {
  tokenizer?: string;
  backend?: Backend;
  threads?: number;
  /** context length to run with (default: the model's max_seq_len) */
  ctx?: number;
  /** build the backend's engine now, so the first forward call does not pay for it (default true) */
  prepare?: boolean;
  /** see ModelOptions.repack (default 'mapped': regroup quantized matrices of memory-mapped files) */
  repack?: 'never' | 'mapped' | 'always';
}

export interface OpenedModel {
  model: Model;
  tokenizer: Tokenizer | null;
  loaded: LoadedModel;
}

export function openModel(path: string, opts: OpenOptions = {}): OpenedModel {
  const loaded = loadModelFile(path, { tokenizer: opts.tokenizer });
  if (opts.ctx !== undefined) {
    if (!Number.isInteger(opts.ctx) || opts.ctx < 2) throw new Llama2Error(`--ctx: expected an integer ≥ 2, found ${opts.ctx}`);
    loaded.config.max_seq_len = opts.ctx;
  }
  const backend = opts.backend ?? selectBackend({ threads: opts.threads });
  const model = new Model(loaded.config, loaded.weights, backend, { repack: opts.repack });
  if (opts.prepare ?? true) model.prepare();
  let tokenizer: Tokenizer | null = null;
  if (loaded.vocab) {
    tokenizer = new Tokenizer(loaded.vocab);
    // every id the model can produce must decode, and every id the tokenizer makes must embed
    if (tokenizer.vocabSize !== loaded.config.vocab_size) {
      throw new Llama2Error(
        `tokenizer ${loaded.vocabSource ?? ''}: it has ${tokenizer.vocabSize} pieces but the model's vocabulary has ` +
          `${loaded.config.vocab_size} rows; expected the same size — pass the tokenizer the model was trained with`,
      );
    }
  }
  return { model, tokenizer, loaded };
}

/** The tokenizer, or an error telling the user how to supply one. */
export function requireTokenizer(o: OpenedModel, path: string): Tokenizer {
  if (!o.tokenizer) {
    throw new Llama2Error(`--model ${path}: no tokenizer found with the model; pass --tokenizer <tokenizer.model|tokenizer.json|tokenizer.bin>`);
  }
  return o.tokenizer;
}
