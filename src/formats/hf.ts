/**
 * Hugging Face Llama directories: config.json (LlamaForCausalLM) + model.safetensors, or shards
 * model-0000N-of-0000M.safetensors listed in model.safetensors.index.json (older repos:
 * pytorch_model*.bin, torch.save archives, read the same way), and tokenizer.model or
 * tokenizer.json. readHfDir returns Meta names and Meta layout: the q/k row permutation of HF's
 * converter is undone on the raw bytes, so dtypes stay as stored. writeHfDir does the reverse.
 *
 * Name map (HF → Meta), per layer N under model.layers.N.:
 *   self_attn.{q,k,v,o}_proj → attention.w{q,k,v,o}     mlp.gate_proj → feed_forward.w1
 *   mlp.down_proj → feed_forward.w2   mlp.up_proj → feed_forward.w3
 *   input_layernorm → attention_norm  post_attention_layernorm → ffn_norm
 * plus model.embed_tokens → tok_embeddings, model.norm → norm, lm_head → output (absent if tied).
 * Extra heads (model/weights.ts HEADS) keep their names: `score.weight` makes the directory
 * transformers' LlamaForSequenceClassification (a reward model); written with lm_head kept, read with
 * or without it (a classifier without lm_head gets the embedding as its output head).
 * Not supported: rope_scaling, attention/MLP biases, non-Llama architectures (clear errors).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Llama2Error, describe, quote, plain } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { f32ToBf16, f32ToF16, toFloat32, type WeightTensor } from '../tensor.js';
import { checkConfigFits, ffnHiddenDim, validateConfig, type LlamaConfig } from '../model/config.js';
import { HEADS, assembleWeights, checkHead, expectedShapes, namedHeads, namedWeights, type ModelWeights } from '../model/weights.js';
import { writeSafetensors, type StTensorOut } from './safetensors.js';
import { permuteQK, unpermuteQK } from './permute.js';
import { openTensorFile, readJsonFile, type TensorFile } from './meta.js';
import type { LoadedModel } from './types.js';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { readTokenizerJson, readTokenizerModel, writeTokenizerModel } from '../tokenizer/load.js';

// ---------------------------------------------------------------------------------------------
// names

const HF_LAYER: Readonly<Record<string, string>> = {
  'attention.wq': 'self_attn.q_proj', 'attention.wk': 'self_attn.k_proj',
  'attention.wv': 'self_attn.v_proj', 'attention.wo': 'self_attn.o_proj',
  'feed_forward.w1': 'mlp.gate_proj', 'feed_forward.w2': 'mlp.down_proj', 'feed_forward.w3': 'mlp.up_proj',
  attention_norm: 'input_layernorm', ffn_norm: 'post_attention_layernorm',
};
const HF_TOP: Readonly<Record<string, string>> = {
  'tok_embeddings.weight': 'model.embed_tokens.weight', 'norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight',
};

/** Meta name → HF name ("layers.3.attention.wq.weight" → "model.layers.3.self_attn.q_proj.weight"). */
export function hfName(metaName: string): string {
  const top = HF_TOP[metaName];
  if (top) return top;
  const m = /^layers\.(\d+)\.(.+)\.weight$/.exec(metaName);
  const sub = m ? HF_LAYER[m[2]!] : undefined;
  if (!m || !sub) throw new Llama2Error(`no Hugging Face name for Meta tensor "${metaName}"`);
  return `model.layers.${m[1]}.${sub}.weight`;
}

// ---------------------------------------------------------------------------------------------
// config.json

export interface HfReadOptions {
  /** overrides max_position_embeddings */
  maxSeqLen?: number;
  /** map safetensors files instead of reading them (default: with the native addon; see SafetensorsOptions) */
  mmap?: boolean;
}

/** config.json → LlamaConfig (hidden_dim = intermediate_size) and whether the output is tied. */
export function parseHfConfig(raw: unknown, where: string, maxSeqLen?: number): { config: LlamaConfig; tied: boolean } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Llama2Error(`${where}: expected a JSON object, found ${describe(raw)}`);
  const c = raw as Record<string, unknown>;
  const num = (k: string, dflt?: number): number => {
    const v = c[k] ?? dflt;
    if (v === undefined) throw new Llama2Error(`${where}: missing field "${k}"`);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Llama2Error(`${where}: field "${k}" must be a number, found ${describe(v)}`);
    return v;
  };
  const modelType = c['model_type'];
  if (modelType !== undefined && modelType !== 'llama') {
    throw new Llama2Error(`${where}: model_type is ${describe(modelType)}; only "llama" (LlamaForCausalLM) is supported`);
  }
  const arch = c['architectures'];
  if (Array.isArray(arch) && !arch.includes('LlamaForCausalLM') && !arch.includes('LlamaForSequenceClassification')) {
    throw new Llama2Error(`${where}: architectures is ${describe(arch)}; expected LlamaForCausalLM (or LlamaForSequenceClassification, a reward model)`);
  }
  if (c['rope_scaling'] !== undefined && c['rope_scaling'] !== null) {
    throw new Llama2Error(`${where}: rope_scaling ${plain(JSON.stringify(c['rope_scaling']), 80)} is not supported (Llama-2 uses plain RoPE); expected null`);
  }
  if (c['hidden_act'] !== undefined && c['hidden_act'] !== 'silu') {
    throw new Llama2Error(`${where}: hidden_act is ${describe(c['hidden_act'])}; Llama uses "silu"`);
  }
  for (const k of ['attention_bias', 'mlp_bias']) {
    if (c[k] === true) throw new Llama2Error(`${where}: ${k} is true; Llama-2 layers have no biases and biases are not supported`);
  }
  const dim = num('hidden_size');
  const nHeads = num('num_attention_heads');
  if (c['head_dim'] !== undefined && c['head_dim'] !== null && c['head_dim'] !== dim / nHeads) {
    throw new Llama2Error(`${where}: head_dim ${describe(c['head_dim'])} differs from hidden_size / num_attention_heads = ${dim / nHeads}; not supported`);
  }
  const tie = c['tie_word_embeddings'] ?? false;
  if (typeof tie !== 'boolean') throw new Llama2Error(`${where}: field "tie_word_embeddings" must be true or false, found ${describe(tie)}`);
  const config: LlamaConfig = {
    dim,
    n_layers: num('num_hidden_layers'),
    n_heads: nHeads,
    n_kv_heads: num('num_key_value_heads', nHeads),
    vocab_size: num('vocab_size'),
    multiple_of: 256,
    ffn_dim_multiplier: null,
    norm_eps: num('rms_norm_eps', 1e-6),
    rope_theta: num('rope_theta', 10000),
    max_seq_len: maxSeqLen ?? num('max_position_embeddings', 2048),
    hidden_dim: num('intermediate_size'),
  };
  validateConfig(config, where);
  return { config, tied: tie };
}

// ---------------------------------------------------------------------------------------------
// reading

/** HF tensor name → the file that holds it, from the index or the single weights file. */
function weightMap(dir: string, where: string): { map: Map<string, string>; files: string[] } {
  for (const [index, single] of [
    ['model.safetensors.index.json', 'model.safetensors'],
    ['pytorch_model.bin.index.json', 'pytorch_model.bin'],
  ] as const) {
    const indexPath = join(dir, index);
    if (existsSync(indexPath)) {
      const raw = readJsonFile(indexPath, 'HF weight index') as { weight_map?: unknown } | null;
      const wm = raw?.weight_map;
      if (!wm || typeof wm !== 'object' || Array.isArray(wm)) throw new Llama2Error(`HF weight index ${indexPath}: missing object "weight_map"`);
      const map = new Map<string, string>();
      for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
        if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) {
          throw new Llama2Error(`HF weight index ${indexPath}: weight_map[${quote(name)}] must be a file name in the same directory, found ${describe(file)}`);
        }
        map.set(name, join(dir, file));
      }
      const files = [...new Set(map.values())].sort();
      for (const f of files) {
        if (!existsSync(f)) throw new Llama2Error(`HF weight index ${indexPath}: shard ${basename(f)} listed in weight_map is missing from ${dir}`);
      }
      return { map, files };
    }
    const singlePath = join(dir, single);
    if (existsSync(singlePath)) {
      const f = openTensorFile(singlePath);
      const map = new Map(f.names().map((n) => [n, singlePath] as const));
      f.close();
      return { map, files: [singlePath] };
    }
  }
  throw new Llama2Error(`${where}: no weights: expected model.safetensors, model.safetensors.index.json with its shards, or pytorch_model.bin`);
}

/** Reads an HF Llama directory into Meta names and layout (dtype as stored). */
export function readHfDir(dir: string, opts: HfReadOptions = {}): LoadedModel {
  const where = `HF ${dir}`;
  const configPath = join(dir, 'config.json');
  const { config, tied } = parseHfConfig(readJsonFile(configPath, 'HF config.json'), `HF ${configPath}`, opts.maxSeqLen);
  const { map, files } = weightMap(dir, where);
  checkConfigFits(config, files.reduce((s, f) => s + statSync(f).size, 0), 2, where, true); // F16/BF16 at the least
  const open = new Map<string, TensorFile>();
  const fileOf = (path: string): TensorFile => {
    let f = open.get(path);
    if (!f) {
      f = openTensorFile(path, { mmap: opts.mmap });
      open.set(path, f);
    }
    return f;
  };
  const expected = expectedShapes(config);
  try {
    const get = (metaName: string): WeightTensor | undefined => {
      if (metaName === 'output.weight' && tied) return undefined; // HF ties lm_head to embed_tokens
      const name = hfName(metaName);
      const path = map.get(name);
      if (!path && metaName === 'output.weight' && map.has('score.weight')) return undefined; // a classifier without lm_head
      if (!path) {
        const hint = metaName === 'output.weight' ? ' (and tie_word_embeddings is false)' : '';
        throw new Llama2Error(`${where}: missing tensor "${name}"${hint} in ${files.map((f) => basename(f)).join(', ')}`);
      }
      const f = fileOf(path);
      const shape = f.shape(name);
      if (!shape) throw new Llama2Error(`${where}: tensor "${name}" is listed for ${basename(path)} but that file lacks it`);
      const want = expected.get(metaName)!;
      if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
        throw new Llama2Error(
          `${where}: tensor "${name}" in ${basename(path)} has shape [${shape.join(', ')}] but config.json (hidden ${config.dim}, ` +
            `${config.n_heads}/${config.n_kv_heads} heads, intermediate ${ffnHiddenDim(config)}, vocab ${config.vocab_size}) expects [${want.join(', ')}]`,
        );
      }
      const t = f.weight(name);
      if (metaName.endsWith('attention.wq.weight')) return unpermuteQK(t, config.n_heads);
      if (metaName.endsWith('attention.wk.weight')) return unpermuteQK(t, config.n_kv_heads);
      return t;
    };
    const weights = assembleWeights(config, get, where);
    for (const name of Object.keys(HEADS)) {
      const path = map.get(name);
      if (!path) continue;
      weights.heads ??= {};
      weights.heads[name] = checkHead(config, name, fileOf(path).weight(name), `${where} (${basename(path)})`);
    }
    const tokModel = join(dir, 'tokenizer.model');
    const tokJson = join(dir, 'tokenizer.json');
    let vocab: SpmVocab | null = null;
    let vocabSource: string | null = null;
    if (existsSync(tokModel)) [vocab, vocabSource] = [readTokenizerModel(tokModel), tokModel];
    else if (existsSync(tokJson)) [vocab, vocabSource] = [readTokenizerJson(tokJson), tokJson];
    return {
      format: 'hf',
      path: dir,
      config,
      weights,
      vocab,
      vocabSource,
      info: {
        shards: files.length, files: files.map((f) => basename(f)).join(', '), dtype: weights.tok_embeddings.dtype, tied,
        tensor_data: [...open.values()].every((f) => f.mapped) ? 'memory-mapped' : 'read',
      },
    };
  } finally {
    for (const f of open.values()) f.close();
  }
}

// ---------------------------------------------------------------------------------------------
// writing

export type HfDType = 'F32' | 'F16' | 'BF16';

export interface HfWriteOptions {
  /** written as tokenizer.model (unless tokenizerFile is given); its bos/eos ids go to config.json */
  vocab?: SpmVocab;
  /** tokenizer.model or tokenizer.json to copy into the directory as it is */
  tokenizerFile?: string;
  /** split weights into shards of at most this many bytes (a larger tensor gets a shard of its own) */
  shardBytes?: number;
  /** convert every weight to this dtype; by default F32/F16/BF16 stay as they are */
  dtype?: HfDType;
}

const TORCH_DTYPE: Readonly<Record<HfDType, string>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** A float weight in `dtype` (a copy unless it already is). */
export function convertWeight(t: WeightTensor, dtype: HfDType): WeightTensor {
  if (t.dtype === dtype) return t;
  const f = toFloat32(t);
  if (dtype === 'F32') return { dtype, shape: [...t.shape], data: new Uint8Array(f.slice().buffer) };
  const out = new Uint16Array(f.length);
  const conv = dtype === 'F16' ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < f.length; i++) out[i] = conv(f[i]!);
  return { dtype, shape: [...t.shape], data: new Uint8Array(out.buffer) };
}

/**
 * Writes config.json + model.safetensors (or shards + model.safetensors.index.json) in HF layout.
 * Weight files are written first, each atomically, and config.json last; stale weight files of
 * the other layout (single vs sharded) are removed so a reader never mixes them.
 */
export function writeHfDir(dir: string, config: LlamaConfig, weights: ModelWeights, opts: HfWriteOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const tied = weights.output === weights.tok_embeddings;
  const tensors: StTensorOut[] = [];
  for (const [metaName, w] of namedWeights(weights)) {
    let t = w;
    if (opts.dtype) t = convertWeight(t, opts.dtype);
    else if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
      throw new Llama2Error(`HF export ${dir}: tensor "${metaName}" is ${t.dtype}; safetensors holds F32/F16/BF16 — choose a dtype to convert to`);
    }
    if (metaName.endsWith('attention.wq.weight')) t = permuteQK(t, config.n_heads);
    if (metaName.endsWith('attention.wk.weight')) t = permuteQK(t, config.n_kv_heads);
    tensors.push({ name: hfName(metaName), dtype: t.dtype as HfDType, shape: t.shape, data: t.data });
  }
  for (const [name, h] of namedHeads(weights)) {
    const t = convertWeight(h, opts.dtype ?? (h.dtype === 'F16' || h.dtype === 'BF16' ? h.dtype : 'F32'));
    tensors.push({ name, dtype: t.dtype as HfDType, shape: t.shape, data: t.data });
  }
  const dtype = opts.dtype ?? (weights.tok_embeddings.dtype as HfDType);

  // group into shards
  const groups: StTensorOut[][] = [];
  if (opts.shardBytes === undefined) groups.push(tensors);
  else {
    let cur: StTensorOut[] = [];
    let bytes = 0;
    for (const t of tensors) {
      if (cur.length && bytes + t.data.length > opts.shardBytes) {
        groups.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(t);
      bytes += t.data.length;
    }
    if (cur.length) groups.push(cur);
  }
  const meta = { format: 'pt' };
  const isShard = (n: string) => /^model-\d+-of-\d+\.safetensors$/.test(n);
  const written = new Set<string>();
  if (opts.shardBytes === undefined) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors, meta);
  } else {
    const n = groups.length;
    const weightMap: Record<string, string> = {};
    groups.forEach((g, i) => {
      const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
      writeSafetensors(join(dir, file), g, meta);
      written.add(file);
      for (const t of g) weightMap[t.name] = file;
    });
    const totalSize = tensors.reduce((s, t) => s + t.data.length, 0);
    writeFileAtomic(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n');
  }
  const stale = readdirSync(dir).filter((n) =>
    opts.shardBytes === undefined ? isShard(n) || n === 'model.safetensors.index.json' : n === 'model.safetensors' || (isShard(n) && !written.has(n)),
  );
  for (const f of stale) unlinkSync(join(dir, f));

  if (opts.tokenizerFile) {
    const name = basename(opts.tokenizerFile);
    if (name !== 'tokenizer.model' && name !== 'tokenizer.json') {
      throw new Llama2Error(`HF export ${dir}: tokenizer file must be named tokenizer.model or tokenizer.json, found ${name}`);
    }
    const tmp = join(dir, `${name}.tmp-${process.pid}`);
    copyFileSync(opts.tokenizerFile, tmp);
    renameSync(tmp, join(dir, name));
  } else if (opts.vocab) {
    writeTokenizerModel(join(dir, 'tokenizer.model'), opts.vocab);
  }
  // a score head makes the directory a transformers LlamaForSequenceClassification (lm_head stays,
  // unused there, so the same directory still generates text here)
  const score = weights.heads?.['score.weight'];
  const classifier = score ? {
    num_labels: score.shape[0]!,
    id2label: Object.fromEntries(Array.from({ length: score.shape[0]! }, (_, i) => [String(i), `LABEL_${i}`])),
    label2id: Object.fromEntries(Array.from({ length: score.shape[0]! }, (_, i) => [`LABEL_${i}`, i])),
    pad_token_id: opts.vocab && opts.vocab.padId >= 0 ? opts.vocab.padId : opts.vocab && opts.vocab.eosId >= 0 ? opts.vocab.eosId : 2,
  } : {};
  const cfg = {
    architectures: [score ? 'LlamaForSequenceClassification' : 'LlamaForCausalLM'],
    ...classifier,
    attention_bias: false,
    bos_token_id: opts.vocab && opts.vocab.bosId >= 0 ? opts.vocab.bosId : 1,
    eos_token_id: opts.vocab && opts.vocab.eosId >= 0 ? opts.vocab.eosId : 2,
    hidden_act: 'silu',
    hidden_size: config.dim,
    intermediate_size: ffnHiddenDim(config),
    max_position_embeddings: config.max_seq_len,
    model_type: 'llama',
    num_attention_heads: config.n_heads,
    num_hidden_layers: config.n_layers,
    num_key_value_heads: config.n_kv_heads,
    rms_norm_eps: config.norm_eps,
    rope_scaling: null,
    rope_theta: config.rope_theta,
    tie_word_embeddings: tied,
    torch_dtype: TORCH_DTYPE[dtype] ?? 'float32',
    vocab_size: config.vocab_size,
  };
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
}
