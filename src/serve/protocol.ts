/**
 * The messages between the server's main thread (HTTP, src/serve/app.ts) and its engine worker
 * (src/serve/worker.ts): jobs of token ids in, token events out. Plain structured-clone data.
 *
 * What it is not: the HTTP API's shapes (src/serve/openai.ts) or any logic.
 */
import type { SamplerOptions } from '../generate/sampler.js';
import type { SeqFinishReason } from '../generate/scheduler.js';
import type { Message } from '../chat/format.js';
import type { SpmVocab } from '../tokenizer/vocab.js';

/** what the worker opens (workerData) */
export interface WorkerConfig {
  /** policy models: --model, then --model-b */
  models: { path: string; tokenizer?: string }[];
  /** reward models (--rm-helpful, --rm-safety), both or none */
  rewards?: { helpful: string; safety: string };
  threads?: number;
  ctx?: number;
  /** slots per model (--parallel) */
  parallel: number;
  prefillChunk: number;
}

export interface ModelInfo {
  /** the kernel backend the worker runs it on ('native', or 'ref' when the addon did not load there) */
  backend: string;
  ctx: number;
  vocabSize: number;
  /** the tokenizer's vocabulary, for tokenizing on the main thread (null: the model has none) */
  vocab: SpmVocab | null;
}

export interface GenerateJob {
  type: 'generate';
  id: number;
  /** index into WorkerConfig.models */
  model: number;
  prompt: number[];
  n: number;
  seed: number;
  maxTokens: number;
  sampler: Partial<Omit<SamplerOptions, 'seed'>>;
  stop: string[];
  /** end at EOS (default true) */
  stopAtEos: boolean;
  logprobs: boolean;
  topLogprobs: number;
}

export interface RewardJob {
  type: 'reward';
  id: number;
  messages: Message[];
}

export type ToWorker = GenerateJob | RewardJob | { type: 'cancel'; id: number };

/** one sampled token of choice k: its id, the text it released (stop strings held back), log-probs */
export interface TokenOut {
  id: number;
  k: number;
  token: number;
  text: string;
  logprob: number;
  top?: { id: number; logprob: number }[];
}

export interface DoneOut {
  id: number;
  k: number;
  finishReason: SeqFinishReason;
  /** the text held back until the end (no stop string came) */
  text: string;
  /** tokens generated (the ones a stop string cut are not counted) */
  tokens: number;
}

export type FromWorker =
  | { type: 'ready'; models: ModelInfo[]; rewards: boolean }
  | { type: 'fatal'; message: string }
  /** a step's token and done events, in order */
  | { type: 'events'; tokens: TokenOut[]; done: DoneOut[] }
  | { type: 'reward'; id: number; scores: { helpful: number; safety: number } }
  | { type: 'error'; id: number; message: string };
