/**
 * One model through every writer and reader: HF safetensors → GGUF F32 → Meta layout → HF,
 * with tensors byte-identical and logits bit-identical at every stop, tokenizer included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from './helpers/cli.js';
import { loadModelFile } from '../src/formats/load.js';
import { writeGgufModel } from '../src/formats/gguf-writer.js';
import { writeMetaDir } from '../src/formats/meta.js';
import { writeHfDir } from '../src/formats/hf.js';
import { namedWeights } from '../src/model/weights.js';
import { ffnHiddenDim } from '../src/model/config.js';
import { Model } from '../src/model/forward.js';
import { refBackend } from '../src/backend/ref.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import type { LoadedModel } from '../src/formats/types.js';

const TEXT = 'Hello! How are you today? 42 cats.';

function logitsOf(m: LoadedModel, ids: number[]): Float32Array {
  const model = new Model(m.config, m.weights, refBackend);
  return model.step(ids, model.newCache(ids.length), 'all');
}

function assertSameModel(a: LoadedModel, b: LoadedModel, stage: string): void {
  for (const k of ['dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'norm_eps', 'rope_theta'] as const) {
    assert.equal(b.config[k], a.config[k], `${stage}: config.${k}`);
  }
  assert.equal(ffnHiddenDim(b.config), ffnHiddenDim(a.config), `${stage}: FFN size`);
  const wa = new Map(namedWeights(a.weights));
  const wb = new Map(namedWeights(b.weights));
  assert.deepEqual([...wb.keys()].sort(), [...wa.keys()].sort(), `${stage}: tensor names`);
  for (const [name, t] of wa) {
    const u = wb.get(name)!;
    assert.equal(u.dtype, t.dtype, `${stage}: ${name} dtype`);
    assert.deepEqual(u.shape, t.shape, `${stage}: ${name} shape`);
    assert.ok(Buffer.from(u.data).equals(Buffer.from(t.data)), `${stage}: ${name} bytes differ`);
  }
  assert.ok(b.vocab, `${stage}: tokenizer lost`);
  assert.deepEqual(b.vocab!.pieces, a.vocab!.pieces, `${stage}: tokenizer pieces`);
}

test('HF → GGUF F32 → Meta → HF keeps tensors, tokenizer and logits identical', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llama2-rt-'));
  const hf0 = loadModelFile(fixture('oracle', 'e_tok2k_chat', 'hf'), { tokenizer: fixture('oracle', 'tokenizer', 'tokenizer.model') });
  const ids = new Tokenizer(hf0.vocab!).encode(TEXT, { bos: true });
  const ref = logitsOf(hf0, ids);

  writeGgufModel(join(dir, 'm.gguf'), hf0.config, hf0.weights, hf0.vocab);
  const gguf = loadModelFile(join(dir, 'm.gguf'));
  assert.equal(gguf.format, 'gguf');
  assertSameModel(hf0, gguf, 'GGUF');
  assert.deepEqual(new Tokenizer(gguf.vocab!).encode(TEXT, { bos: true }), ids);
  assert.deepEqual(logitsOf(gguf, ids), ref, 'GGUF logits');

  writeMetaDir(join(dir, 'meta'), gguf.config, gguf.weights, gguf.vocab!);
  const meta = loadModelFile(join(dir, 'meta'));
  assert.equal(meta.format, 'meta');
  assertSameModel(hf0, meta, 'Meta');
  assert.deepEqual(logitsOf(meta, ids), ref, 'Meta logits');

  writeHfDir(join(dir, 'hf'), meta.config, meta.weights, { vocab: meta.vocab! });
  const hf1 = loadModelFile(join(dir, 'hf'));
  assert.equal(hf1.format, 'hf');
  assertSameModel(hf0, hf1, 'HF');
  assert.deepEqual(logitsOf(hf1, ids), ref, 'HF logits');
});
