/**
 * Extra heads in model files (model/weights.ts HEADS): a reward model's score.weight and a PPO value
 * head survive every writer and reader — HF (transformers' LlamaForSequenceClassification names and
 * config), Meta (HF names in consolidated.safetensors), GGUF (cls.output.weight) and the training
 * checkpoint — byte for byte; llama2.c refuses them; wrong names and shapes are clean errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelFile } from '../src/formats/load.js';
import { writeGgufModel } from '../src/formats/gguf-writer.js';
import { openGguf } from '../src/formats/gguf.js';
import { writeMetaDir } from '../src/formats/meta.js';
import { writeHfDir } from '../src/formats/hf.js';
import { writeLlama2c } from '../src/formats/llama2c.js';
import { namedHeads, type ModelWeights } from '../src/model/weights.js';
import { f32Tensor, f16ToF32, type WeightTensor } from '../src/tensor.js';
import { Llama2Error } from '../src/util/errors.js';
import { oracleDir } from './helpers/oracle-case.js';
import { randn } from './helpers/random.js';

const dir = mkdtempSync(join(tmpdir(), 'heads-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const base = loadModelFile(join(oracleDir(), 'a_tiny_mha', 'hf'), { mmap: false });
const C = base.config.dim;
const heads: Record<string, WeightTensor> = {
  'score.weight': f32Tensor(randn(C, 1, 0.1), [1, C]),
  'v_head.summary.weight': f32Tensor(randn(C, 2, 0.1), [1, C]),
  'v_head.summary.bias': f32Tensor(Float32Array.of(0.25), [1]),
};
const withHeads: ModelWeights = { ...base.weights, heads };

function sameHeads(w: ModelWeights, where: string): void {
  const got = new Map(namedHeads(w));
  assert.deepEqual([...got.keys()], Object.keys(heads), `${where}: head names`);
  for (const [name, t] of Object.entries(heads)) {
    const u = got.get(name)!;
    assert.deepEqual(u.shape, t.shape, `${where}: ${name} shape`);
    assert.equal(u.dtype, 'F32', `${where}: ${name} dtype`);
    assert.deepEqual(Buffer.from(u.data), Buffer.from(t.data), `${where}: ${name} bytes`);
  }
}

test('HF: score.weight under its transformers name, config says LlamaForSequenceClassification', () => {
  const out = join(dir, 'hf');
  writeHfDir(out, base.config, withHeads, { vocab: base.vocab ?? undefined });
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(cfg['architectures'], ['LlamaForSequenceClassification']);
  assert.equal(cfg['num_labels'], 1);
  assert.equal(typeof cfg['pad_token_id'], 'number');
  const back = loadModelFile(out, { mmap: false });
  sameHeads(back.weights, 'HF');
  // a plain language model stays LlamaForCausalLM, with no heads
  const plain = join(dir, 'hf-plain');
  writeHfDir(plain, base.config, base.weights);
  assert.deepEqual((JSON.parse(readFileSync(join(plain, 'config.json'), 'utf8')) as { architectures: string[] }).architectures, ['LlamaForCausalLM']);
  assert.equal(loadModelFile(plain, { mmap: false }).weights.heads, undefined);
});

test('HF F16 export converts heads with the weights', () => {
  const out = join(dir, 'hf16');
  writeHfDir(out, base.config, withHeads, { dtype: 'F16' });
  const back = loadModelFile(out, { mmap: false });
  const s = back.weights.heads!['score.weight']!;
  assert.equal(s.dtype, 'F16');
  const want = new Float32Array(heads['score.weight']!.data.buffer.slice(0));
  const got = new Uint16Array(s.data.buffer.slice(s.data.byteOffset, s.data.byteOffset + s.data.byteLength));
  for (let i = 0; i < C; i++) assert.ok(Math.abs(f16ToF32(got[i]!) - want[i]!) <= 1e-3 * Math.abs(want[i]!) + 1e-6);
});

test('Meta and GGUF keep the heads; GGUF spells score.weight cls.output.weight', () => {
  const meta = join(dir, 'meta');
  writeMetaDir(meta, base.config, withHeads, base.vocab ?? undefined);
  sameHeads(loadModelFile(meta, { mmap: false }).weights, 'Meta');
  const gguf = join(dir, 'm.gguf');
  writeGgufModel(gguf, base.config, withHeads, base.vocab);
  const g = openGguf(gguf);
  try {
    assert.ok(g.tensors.has('cls.output.weight'));
    assert.ok(g.tensors.has('v_head.summary.bias'));
    assert.ok(!g.tensors.has('score.weight'));
  } finally {
    g.close();
  }
  for (const mmap of [false, true]) sameHeads(loadModelFile(gguf, { mmap }).weights, `GGUF mmap=${mmap}`);
  // heads: false leaves them out (llama.cpp refuses tensors it does not use)
  const bare = join(dir, 'bare.gguf');
  writeGgufModel(bare, base.config, withHeads, base.vocab, { heads: false });
  assert.equal(loadModelFile(bare, { mmap: false }).weights.heads, undefined);
});

test('llama2.c refuses heads; unknown names and wrong shapes are clean errors', () => {
  assert.throws(() => writeLlama2c(join(dir, 'x.bin'), base.config, withHeads),
    (e: unknown) => e instanceof Llama2Error && /score\.weight/.test(e.message) && /llama2\.c/.test(e.message));
  const odd: ModelWeights = { ...base.weights, heads: { 'reward.weight': heads['score.weight']! } };
  assert.throws(() => writeHfDir(join(dir, 'odd'), base.config, odd), (e: unknown) => e instanceof Llama2Error && /"reward\.weight" is not a known head/.test(e.message));
  const bad: ModelWeights = { ...base.weights, heads: { 'score.weight': f32Tensor(new Float32Array(C + 1), [1, C + 1]) } };
  writeHfDir(join(dir, 'badshape'), base.config, bad);
  assert.throws(() => loadModelFile(join(dir, 'badshape'), { mmap: false }),
    (e: unknown) => e instanceof Llama2Error && /head "score\.weight" has shape \[1, \d+\]/.test(e.message) && new RegExp(`\\[L, ${C}\\]`).test(e.message));
});
