/**
 * Random-weight GGUF model files for the benchmarks, written by the project itself
 * (writeGgufModel), cached under bench/.cache/ (gitignored) and reused when present.
 *
 * Weights are uniform with the standard deviation of a fresh llama2.c model (0.02), generated
 * per tensor only when the writer reaches it, so memory stays bounded by the largest tensor (a 7B
 * file never holds the whole model in memory). Norm weights are 1. Every file carries the real
 * Llama-2 vocabulary (from the stories15M test fixture) so `llama2 generate` can run on it.
 * This is not a model zoo: the values are noise, only shapes, dtypes and byte layouts matter.
 *
 * Usage as a script: npx tsx bench/model-files.ts <model> <dtype> [path]
 *   (model: stories15m | stories110m | tinyllama-1.1b | llama2-7b; dtype: F32 F16 Q8_0 Q4_0 Q4_K …)
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headDim, ffnHiddenDim, preset, type LlamaConfig } from '../src/model/config.js';
import type { LayerWeights, ModelWeights } from '../src/model/weights.js';
import { f32Tensor, isDType, type DType, type WeightTensor } from '../src/tensor.js';
import { writeGgufModel } from '../src/formats/gguf-writer.js';
import { readGgufModel } from '../src/formats/gguf.js';
import type { SpmVocab } from '../src/tokenizer/vocab.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** the repository root, from bench/ (tsx) or dist/bench/ (compiled) */
export const ROOT = HERE.includes(`${join('dist', 'bench')}`) ? join(HERE, '..', '..') : join(HERE, '..');
export const CACHE_DIR = join(ROOT, 'bench', '.cache');

export type BenchModel = 'stories15m' | 'stories110m' | 'tinyllama-1.1b' | 'llama2-7b';
export const MODEL_LABEL: Readonly<Record<BenchModel, string>> = {
  'stories15m': 'stories15M', 'stories110m': 'stories110M', 'tinyllama-1.1b': 'TinyLlama-1.1B', 'llama2-7b': 'Llama-2-7B',
};
/** llama2.c models tie the output head to the embedding; the released models do not */
const TIED: Readonly<Record<BenchModel, boolean>> = { 'stories15m': true, 'stories110m': true, 'tinyllama-1.1b': false, 'llama2-7b': false };

const STD = 0.02;

/** xorshift32 uniform values in [-a, a): fast and deterministic per seed */
function fillUniform(out: Float32Array, seed: number, a: number): void {
  let s = (seed >>> 0) || 0x9e3779b9;
  const k = (2 * a) / 4294967296;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    out[i] = (s >>> 0) * k - a;
  }
}

/** an F32 tensor whose bytes are generated each time `data` is read (the writer reads it once) */
function lazyRandom(shape: readonly number[], seed: number): WeightTensor {
  return {
    dtype: 'F32',
    shape,
    get data(): Uint8Array {
      const f = new Float32Array(shape.reduce((a, b) => a * b, 1));
      fillUniform(f, seed, STD * Math.sqrt(3));
      return new Uint8Array(f.buffer);
    },
  };
}

export function benchConfig(model: BenchModel): LlamaConfig {
  return preset(model);
}

/** Lazily generated random weights of a model (see lazyRandom). */
export function randomWeights(c: LlamaConfig, tied: boolean): ModelWeights {
  const C = c.dim, H = ffnHiddenDim(c), kvW = c.n_kv_heads * headDim(c);
  let seed = 1;
  const ones = () => f32Tensor(new Float32Array(C).fill(1), [C]);
  const tok = lazyRandom([c.vocab_size, C], seed++);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.n_layers; l++) {
    layers.push({
      attention_norm: ones(), ffn_norm: ones(),
      wq: lazyRandom([C, C], seed++), wk: lazyRandom([kvW, C], seed++), wv: lazyRandom([kvW, C], seed++),
      wo: lazyRandom([C, C], seed++), w1: lazyRandom([H, C], seed++), w2: lazyRandom([C, H], seed++),
      w3: lazyRandom([H, C], seed++),
    });
  }
  return { tok_embeddings: tok, layers, norm: ones(), output: tied ? tok : lazyRandom([c.vocab_size, C], seed++) };
}

let llamaVocab: SpmVocab | null = null;
/** the Llama-2 vocabulary (32000 pieces) from the repository's test fixture */
export function llamaVocabulary(): SpmVocab {
  if (!llamaVocab) llamaVocab = readGgufModel(join(ROOT, 'tests', 'fixtures', 'gguf', 'stories15M-Q8_0.gguf'), { mmap: false }).vocab!;
  return llamaVocab;
}

export function modelFilePath(model: BenchModel, dtype: DType): string {
  return join(CACHE_DIR, `${model}-${dtype}.gguf`);
}

/**
 * The cached file for (model, dtype), written first if missing. `onWrite` is told before a file
 * is generated (it can take minutes for the big models). Returns the path and whether it was made.
 */
export function ensureModelFile(model: BenchModel, dtype: DType, onWrite?: (path: string) => void, path = modelFilePath(model, dtype)): { path: string; created: boolean; seconds: number } {
  if (existsSync(path) && statSync(path).size > 0) return { path, created: false, seconds: 0 };
  mkdirSync(dirname(path), { recursive: true });
  onWrite?.(path);
  const t0 = performance.now();
  const c = benchConfig(model);
  writeGgufModel(path, c, randomWeights(c, TIED[model]), llamaVocabulary(), { dtype, name: `${MODEL_LABEL[model]} random ${dtype}` });
  return { path, created: true, seconds: (performance.now() - t0) / 1000 };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [model, dtype, path] = process.argv.slice(2);
  if (!model || !(model in MODEL_LABEL) || !dtype || !isDType(dtype)) {
    console.error(`usage: model-files <${Object.keys(MODEL_LABEL).join(' | ')}> <dtype> [path]`);
    process.exit(2);
  }
  const r = ensureModelFile(model as BenchModel, dtype, (p) => console.log(`writing ${p} …`), path);
  console.log(r.created ? `wrote ${r.path} (${(statSync(r.path).size / 1e9).toFixed(2)} GB) in ${r.seconds.toFixed(0)} s` : `${r.path} exists`);
}
