/**
 * Meta's Llama-2 checkpoint directory: params.json + consolidated.00.pth … consolidated.NN.pth
 * (torch.save zip archives, one per model-parallel rank) or a single consolidated.safetensors,
 * and tokenizer.model in the directory or its parent (Meta ships it one level up).
 *
 * Multi-shard checkpoints (13B: 2, 70B: 8) are merged the way Meta's fairscale layers split them:
 *   ColumnParallelLinear (wq, wk, wv, w1, w3, output)  split dim 0 → concatenate rows
 *   RowParallelLinear    (wo, w2)                      split dim 1 → concatenate columns
 *   ParallelEmbedding    (tok_embeddings)              split dim 1 → concatenate columns
 *   RMSNorm weights (1-D)                              replicated  → take shard 0
 * Dtypes stay as stored (Meta ships BF16). Each merged tensor is read shard by shard, so the
 * checkpoint is never held twice. Also home of the small helpers hf.ts shares (JSON files and a
 * tensor-file abstraction over .safetensors / .pth). This file does not detect formats (load.ts).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Llama2Error, describe, quote, plain } from '../util/errors.js';
import { rowBytes, type WeightTensor } from '../tensor.js';
import { checkConfigFits, ffnHiddenDim, ffnHiddenDimRule, validateConfig, type LlamaConfig } from '../model/config.js';
import { HEADS, assembleWeights, checkHead, expectedShapes, namedHeads, namedWeights, type ModelWeights } from '../model/weights.js';
import { SafetensorsFile, writeSafetensors, type SafetensorsOptions, type StTensorOut } from './safetensors.js';
import { openPth, type PthOptions } from './pickle.js';
import type { LoadedModel } from './types.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { readTokenizerModel, writeTokenizerModel } from '../tokenizer/load.js';
import { writeFileAtomic } from '../util/fs.js';

// ---------------------------------------------------------------------------------------------
// shared helpers: JSON files and tensor files

/** Parses a JSON file; a missing file or bad JSON is a Llama2Error naming `what` and the path. */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Llama2Error(`${what}: cannot read ${path} (${code === 'ENOENT' ? 'no such file' : code ?? String(e)})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Llama2Error(`${what}: ${path} is not valid JSON (${plain(e)})`);
  }
}

/** A file of named tensors read lazily: safetensors or a torch.save checkpoint. */
export interface TensorFile {
  readonly path: string;
  names(): string[];
  /** shape of a tensor without reading it; undefined when absent */
  shape(name: string): readonly number[] | undefined;
  weight(name: string): WeightTensor;
  /** weights are views into a memory mapping of the file (safetensors with the native addon) */
  readonly mapped: boolean;
  close(): void;
}

export function openTensorFile(path: string, opts: SafetensorsOptions & PthOptions = {}): TensorFile {
  if (path.endsWith('.safetensors')) {
    const f = new SafetensorsFile(path, opts);
    return {
      path,
      names: () => [...f.entries.keys()],
      shape: (n) => f.entries.get(n)?.shape,
      weight: (n) => f.weight(n),
      mapped: f.mapsWeights,
      close: () => f.close(),
    };
  }
  const f = openPth(path, opts);
  return {
    path,
    names: () => [...f.tensors.keys()],
    shape: (n) => f.tensors.get(n)?.shape,
    weight: (n) => f.weight(n),
    mapped: f.mapsWeights,
    close: () => f.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// params.json

export interface MetaReadOptions {
  /** context length (params.json does not state it; Llama-2 default 4096) */
  maxSeqLen?: number;
  /** tokenizer.model to use instead of looking next to the checkpoint */
  tokenizerPath?: string;
  /** map the checkpoint instead of reading it (default: with the native addon; see PthOptions) */
  mmap?: boolean;
}

const LLAMA2_CONTEXT = 4096;

/** params.json → LlamaConfig; vocab_size −1 takes `vocabFallback` (tokenizer or embedding rows). */
export function parseMetaParams(raw: unknown, where: string, vocabFallback: () => number, maxSeqLen?: number): LlamaConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Llama2Error(`${where}: expected a JSON object, found ${describe(raw)}`);
  const p = raw as Record<string, unknown>;
  const num = (k: string, dflt?: number | null): number | null => {
    const v = p[k];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new Llama2Error(`${where}: missing field "${k}"`);
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Llama2Error(`${where}: field "${k}" must be a number, found ${describe(v)}`);
    return v;
  };
  if (p['use_scaled_rope'] === true) {
    throw new Llama2Error(`${where}: "use_scaled_rope": true is Llama 3.1 RoPE scaling, which this Llama-2 loader does not support`);
  }
  const nHeads = num('n_heads')!;
  let vocab = num('vocab_size', -1)!;
  if (vocab < 0) vocab = vocabFallback();
  const c: LlamaConfig = {
    dim: num('dim')!,
    n_layers: num('n_layers')!,
    n_heads: nHeads,
    n_kv_heads: num('n_kv_heads', nHeads)!,
    vocab_size: vocab,
    multiple_of: num('multiple_of', 256)!,
    ffn_dim_multiplier: num('ffn_dim_multiplier', null),
    norm_eps: num('norm_eps', 1e-5)!,
    rope_theta: num('rope_theta', 10000)!,
    max_seq_len: maxSeqLen ?? num('max_seq_len', LLAMA2_CONTEXT)!,
    hidden_dim: null,
  };
  validateConfig(c, where);
  return c;
}

// ---------------------------------------------------------------------------------------------
// shards

/** How Meta's model parallelism split a tensor: concatenation dim, or null for replicated. */
export function metaShardDim(name: string): 0 | 1 | null {
  if (/^output\.weight$|attention\.w[qkv]\.weight$|feed_forward\.w[13]\.weight$/.test(name)) return 0;
  if (/^tok_embeddings\.weight$|attention\.wo\.weight$|feed_forward\.w2\.weight$/.test(name)) return 1;
  return null;
}

/** The weight files of a Meta directory, in rank order. */
function findShards(dir: string, where: string): string[] {
  const single = join(dir, 'consolidated.safetensors');
  if (existsSync(single)) return [single];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new Llama2Error(`${where}: cannot list ${dir} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const ranks = new Map<number, string>();
  for (const n of names) {
    const m = /^consolidated\.(\d+)\.(pth|safetensors)$/.exec(n);
    if (!m) continue;
    const r = Number(m[1]);
    if (ranks.has(r)) throw new Llama2Error(`${where}: two files for shard ${r}: ${ranks.get(r)} and ${n}`);
    ranks.set(r, n);
  }
  if (ranks.size === 0) {
    throw new Llama2Error(`${where}: no weights in ${dir}: expected consolidated.00.pth (… consolidated.NN.pth) or consolidated.safetensors`);
  }
  const out: string[] = [];
  for (let r = 0; r < ranks.size; r++) {
    const n = ranks.get(r);
    if (!n) {
      throw new Llama2Error(`${where}: inconsistent shards: found ${[...ranks.values()].sort().join(', ')} but no shard ${String(r).padStart(2, '0')}`);
    }
    out.push(join(dir, n));
  }
  return out;
}

/**
 * Merges one tensor from all shards; `shapes` were already read from the headers.
 * dim 0: (R0+R1+…, C) rows appended; dim 1: (R, C0+C1+…) each row is the shards' rows side by side.
 */
function mergeShards(parts: WeightTensor[], dim: 0 | 1, name: string, where: string): WeightTensor {
  const first = parts[0]!;
  if (parts.length === 1) return first;
  for (const t of parts) {
    if (t.dtype !== first.dtype) throw new Llama2Error(`${where}: shards disagree on the dtype of ${quote(name)} (${first.dtype} vs ${t.dtype})`);
  }
  if (dim === 0) {
    const rows = parts.reduce((s, t) => s + t.shape[0]!, 0);
    const out = new Uint8Array(parts.reduce((s, t) => s + t.data.length, 0));
    let off = 0;
    for (const t of parts) {
      out.set(t.data, off);
      off += t.data.length;
    }
    return { dtype: first.dtype, shape: [rows, ...first.shape.slice(1)], data: out }; // (ΣR, C)
  }
  const rows = first.shape[0]!;
  const rbs = parts.map(rowBytes);
  const outRow = rbs.reduce((a, b) => a + b, 0);
  const out = new Uint8Array(rows * outRow);
  for (let r = 0; r < rows; r++) {
    let off = r * outRow;
    parts.forEach((t, s) => {
      out.set(t.data.subarray(r * rbs[s]!, (r + 1) * rbs[s]!), off);
      off += rbs[s]!;
    });
  }
  return { dtype: first.dtype, shape: [rows, parts.reduce((s, t) => s + t.shape[1]!, 0)], data: out }; // (R, ΣC)
}

// ---------------------------------------------------------------------------------------------
// the reader

function findTokenizer(dir: string, given?: string): string | null {
  if (given) return given;
  for (const p of [join(dir, 'tokenizer.model'), join(dirname(dir), 'tokenizer.model')]) if (existsSync(p)) return p;
  return null;
}

/** Reads a Meta checkpoint directory into Meta-named weights (dtype as stored). */
export function readMetaDir(dir: string, opts: MetaReadOptions = {}): LoadedModel {
  const where = `Meta ${dir}`;
  const paramsPath = join(dir, 'params.json');
  const raw = readJsonFile(paramsPath, 'Meta params.json');
  const shardPaths = findShards(dir, where);
  const tokPath = findTokenizer(dir, opts.tokenizerPath);
  let vocab: SpmVocab | null = null;
  if (tokPath) vocab = readTokenizerModel(tokPath);

  const shards: ReturnType<typeof openTensorFile>[] = [];
  try {
    for (const p of shardPaths) shards.push(openTensorFile(p, { mmap: opts.mmap }));
    const s0 = shards[0]!;
    const fileList = shardPaths.map((p) => basename(p)).join(', ');
    const config = parseMetaParams(raw, `Meta ${paramsPath}`, () => {
      if (vocab) return vocab.pieces.length;
      const rows = s0.shape('tok_embeddings.weight')?.[0];
      if (rows === undefined) throw new Llama2Error(`${where}: params.json has vocab_size -1, no tokenizer.model was found and ${basename(s0.path)} lacks tok_embeddings.weight`);
      return rows;
    }, opts.maxSeqLen);
    checkConfigFits(config, shardPaths.reduce((s, p) => s + statSync(p).size, 0), 2, where, true); // F16/BF16 at the least

    // every shard must hold the same names; check the shard count against the embedding width
    const names0 = new Set(s0.names());
    for (const s of shards.slice(1)) {
      const names = s.names();
      const extra = names.find((n) => !names0.has(n)) ?? [...names0].find((n) => s.shape(n) === undefined);
      if (extra !== undefined) throw new Llama2Error(`${where}: inconsistent shards: ${quote(extra)} is in one of ${fileList} but not in all`);
    }
    const embCols = s0.shape('tok_embeddings.weight')?.[1];
    if (embCols !== undefined && embCols * shards.length !== config.dim && config.dim % embCols === 0) {
      throw new Llama2Error(
        `${where}: inconsistent shards: each shard holds ${embCols} of the ${config.dim} embedding columns, so this checkpoint has ` +
          `${config.dim / embCols} shards, but ${shards.length} ${shards.length === 1 ? 'is' : 'are'} present (${fileList})`,
      );
    }

    const expected = expectedShapes(config);
    const get = (name: string): WeightTensor | undefined => {
      const shapes = shards.map((s) => s.shape(name));
      if (shapes[0] === undefined) return undefined;
      const dim = shards.length > 1 ? metaShardDim(name) : null;
      const merged = [...shapes[0]];
      if (dim !== null) merged[dim] = shapes.reduce((a, s) => a + (s?.[dim] ?? 0), 0);
      const want = expected.get(name);
      if (want && (merged.length !== want.length || merged.some((d, i) => d !== want[i]))) {
        throw new Llama2Error(
          `${where}: tensor "${name}" in ${fileList} has shape [${merged.join(', ')}] but params.json (dim ${config.dim}, ` +
            `${config.n_heads}/${config.n_kv_heads} heads, vocab ${config.vocab_size}) expects [${want.join(', ')}]`,
        );
      }
      if (dim === null) return s0.weight(name); // replicated (or a single shard)
      return mergeShards(shards.map((s) => s.weight(name)), dim, name, where);
    };
    const weights = assembleWeights(config, get, `${where} (${fileList})`);
    for (const name of Object.keys(HEADS)) {
      if (s0.shape(name) === undefined) continue; // heads are replicated across shards
      weights.heads ??= {};
      weights.heads[name] = checkHead(config, name, s0.weight(name), `${where} (${basename(s0.path)})`);
    }
    return {
      format: 'meta',
      path: dir,
      config,
      weights,
      vocab,
      vocabSource: tokPath,
      info: {
        shards: shards.length, files: fileList, dtype: weights.tok_embeddings.dtype,
        // several shards are merged into copies (from the mapping when there is one)
        tensor_data: shards.length === 1 && s0.mapped ? 'memory-mapped' : 'read',
      },
    };
  } finally {
    for (const s of shards) s.close();
  }
}

// ---------------------------------------------------------------------------------------------
// writing

/**
 * Writes a Meta-layout directory: params.json (Meta's fields; n_kv_heads / ffn_dim_multiplier /
 * rope_theta only when they differ from the defaults) and consolidated.safetensors under Meta
 * names (heads under their HF names, model/weights.ts HEADS), plus tokenizer.model when a vocabulary
 * is given. F32/F16/BF16 weights only.
 */
export function writeMetaDir(dir: string, config: LlamaConfig, weights: ModelWeights, vocab?: SpmVocab): void {
  mkdirSync(dir, { recursive: true });
  const tensors: StTensorOut[] = [];
  for (const [name, t] of [...namedWeights(weights), ...namedHeads(weights)]) {
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
      throw new Llama2Error(`Meta export ${dir}: tensor "${name}" is ${t.dtype}; consolidated.safetensors holds F32/F16/BF16`);
    }
    tensors.push({ name, dtype: t.dtype, shape: t.shape, data: t.data });
  }
  writeSafetensors(join(dir, 'consolidated.safetensors'), tensors, { format: 'pt' });
  if (vocab) writeTokenizerModel(join(dir, 'tokenizer.model'), vocab);
  const params: Record<string, number> = {
    dim: config.dim, n_layers: config.n_layers, n_heads: config.n_heads, vocab_size: config.vocab_size,
    multiple_of: config.multiple_of, norm_eps: config.norm_eps,
  };
  if (config.n_kv_heads !== config.n_heads) params['n_kv_heads'] = config.n_kv_heads;
  if (config.ffn_dim_multiplier !== null) params['ffn_dim_multiplier'] = config.ffn_dim_multiplier;
  if (config.rope_theta !== 10000) params['rope_theta'] = config.rope_theta;
  // params.json has no FFN size: pick a multiple_of under which Meta's rule gives the model's
  // (files such as GGUF state the size itself and lose the multiple_of it came from)
  const hidden = ffnHiddenDim(config);
  const mult = [config.multiple_of, 4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1].find(
    (m) => ffnHiddenDimRule(config.dim, m, config.ffn_dim_multiplier) === hidden,
  );
  if (mult === undefined) {
    throw new Llama2Error(
      `Meta export ${dir}: FFN size ${hidden} does not follow Meta's rule for dim ${config.dim} with any multiple_of, ` +
        'so params.json cannot express it; export to HF or GGUF instead',
    );
  }
  params['multiple_of'] = mult;
  writeFileAtomic(join(dir, 'params.json'), JSON.stringify(params, null, 2) + '\n');
}
