/**
 * What every model-file reader returns. Readers live beside this file, one per format:
 * gguf.ts (GGUF v2/v3), hf.ts (Hugging Face directory), meta.ts (params.json + consolidated.*),
 * llama2c.ts (llama2.c .bin). load.ts picks one by looking at the path.
 */
import type { LlamaConfig } from '../model/config.js';
import type { ModelWeights } from '../model/weights.js';
import type { SpmVocab } from '../tokenizer/vocab.js';

export type ModelFormat = 'gguf' | 'hf' | 'meta' | 'llama2c';

export interface LoadedModel {
  format: ModelFormat;
  /** the file or directory the user named */
  path: string;
  config: LlamaConfig;
  /** Meta names and layout (HF q/k permutation undone) */
  weights: ModelWeights;
  /** the tokenizer found with the model, or null (the caller may pass --tokenizer) */
  vocab: SpmVocab | null;
  /** where the vocabulary came from, for `llama2 info` ("GGUF metadata", ".../tokenizer.model") */
  vocabSource: string | null;
  /** format-specific facts shown by `llama2 info` (GGUF version, file type, shard count, ...) */
  info: Record<string, string | number | boolean>;
}
