/** `llama2 info`: what a model file holds — architecture, shapes, tensor types, tokenizer, sizes. */
import type { CommandSpec, FlagValues } from './args.js';
import { MODEL_FLAGS, requireModelPath, wantJson } from './common.js';
import { loadModelFile } from '../formats/load.js';
import { ffnHiddenDim, headDim, kvCacheBytes } from '../model/config.js';
import { namedHeads, namedWeights } from '../model/weights.js';
import { numel } from '../tensor.js';
import { num, str } from './args.js';
import { Llama2Error, formatBytes } from '../util/errors.js';

export const spec: CommandSpec = {
  name: 'info',
  summary: 'Describe a model: architecture, shapes, quantization, tokenizer, parameters, memory.',
  usage: 'llama2 info --model PATH [--json]',
  flags: [
    ...MODEL_FLAGS.filter((f) => f.name === 'model' || f.name === 'tokenizer' || f.name === 'ctx'),
    { name: 'json', type: 'boolean', default: false, help: 'print one JSON object' },
  ],
};

export async function run(f: FlagValues): Promise<void> {
  const path = requireModelPath(f, 'info');
  const m = loadModelFile(path, { tokenizer: str(f, 'tokenizer') });
  const c = m.config;
  const ctx = num(f, 'ctx') ?? c.max_seq_len;
  if (!(Number.isSafeInteger(ctx) && ctx >= 1)) throw new Llama2Error(`--ctx: expected an integer ≥ 1, found ${ctx}`);
  const types: Record<string, number> = {};
  let params = 0;
  let weightBytes = 0;
  for (const [, t] of namedWeights(m.weights)) {
    types[t.dtype] = (types[t.dtype] ?? 0) + 1;
    params += numel(t.shape);
    weightBytes += t.data.byteLength;
  }
  const tied = m.weights.output === m.weights.tok_embeddings;
  const kv = kvCacheBytes(c, ctx);
  const out = {
    path: m.path,
    format: m.format,
    architecture: 'llama',
    config: { ...c, hidden_dim: ffnHiddenDim(c), head_dim: headDim(c) },
    tied_embeddings: tied,
    parameters: params,
    tensor_types: types,
    weight_bytes: weightBytes,
    bits_per_weight: (weightBytes * 8) / params,
    kv_cache_bytes: kv,
    kv_cache_ctx: ctx,
    memory_estimate_bytes: weightBytes + kv,
    tokenizer: m.vocab
      ? { source: m.vocabSource, pieces: m.vocab.pieces.length, bos_id: m.vocab.bosId, eos_id: m.vocab.eosId, unk_id: m.vocab.unkId }
      : null,
    heads: Object.fromEntries([...namedHeads(m.weights)].map(([n, t]) => [n, t.shape])),
    info: m.info,
  };
  if (wantJson(f)) {
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  const lines = [
    `model        ${m.path} (${m.format})`,
    `architecture llama: dim ${c.dim}, ${c.n_layers} layers, ${c.n_heads} heads / ${c.n_kv_heads} kv heads (head ${headDim(c)}), ` +
      `FFN ${ffnHiddenDim(c)}, vocab ${c.vocab_size}, context ${c.max_seq_len}`,
    `             norm_eps ${c.norm_eps}, rope_theta ${c.rope_theta}, output ${tied ? 'tied to embeddings' : 'separate'}`,
    `parameters   ${(params / 1e6).toFixed(2)}M`,
    `tensor types ${Object.entries(types).map(([k, v]) => `${k} ×${v}`).join(', ')} (${out.bits_per_weight.toFixed(2)} bits/weight)`,
    `tokenizer    ${out.tokenizer ? `${out.tokenizer.pieces} pieces from ${out.tokenizer.source} (bos ${out.tokenizer.bos_id}, eos ${out.tokenizer.eos_id})` : 'none found'}`,
    `memory       weights ${formatBytes(weightBytes)} + KV cache ${formatBytes(kv)} at ctx ${ctx} (f32) ≈ ${formatBytes(weightBytes + kv)}`,
  ];
  for (const [n, t] of namedHeads(m.weights)) lines.push(`head         ${n} [${t.shape.join(', ')}] ${t.dtype}`);
  for (const [k, v] of Object.entries(m.info)) lines.push(`${k.padEnd(12)} ${String(v)}`);
  process.stdout.write(lines.join('\n') + '\n');
}
