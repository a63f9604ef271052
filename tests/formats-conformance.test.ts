// One conformance suite for the HF, Meta and llama2.c readers: every file made from an oracle case
// (by the oracle itself, or by torch in scripts/make-format-fixtures.py) must yield the oracle's
// Meta weights — same names, shapes, config, and the same values bit for bit once the oracle's
// float32 values are rounded to the file's dtype (torch rounds to nearest even, as tensor.ts does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { readHfDir } from '../src/formats/hf.js';
import { readMetaDir } from '../src/formats/meta.js';
import { readLlama2c } from '../src/formats/llama2c.js';
import type { LoadedModel } from '../src/formats/types.js';
import { f32ToBf16, f32ToF16, type DType } from '../src/tensor.js';
import { ffnHiddenDim } from '../src/model/config.js';
import { namedWeights } from '../src/model/weights.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}
const ROOT = repoRoot();
const ORACLE = join(ROOT, 'tests/fixtures/oracle');
const FMT = join(ROOT, 'tests/fixtures/formats');
const CASES = ['a_tiny_mha', 'b_gqa', 'c_odd_ffn', 'd_stories260k', 'e_tok2k_chat'] as const;
type Case = (typeof CASES)[number];

/** Compares every weight with the oracle's consolidated.safetensors, rounded to `dtype`. */
function expectOracleWeights(m: LoadedModel, c: Case, dtype: DType, sharedOutput = false): void {
  const ref = new SafetensorsFile(join(ORACLE, c, 'meta/consolidated.safetensors'));
  try {
    const names = new Set<string>();
    for (const [name, t] of namedWeights(m.weights)) {
      names.add(name);
      assert.equal(t.dtype, dtype, `${name}: dtype`);
      const want = ref.f32(name);
      assert.deepEqual(t.shape, ref.entry(name).shape, `${name}: shape`);
      let got: Uint32Array | Uint16Array;
      let exp: Uint32Array | Uint16Array;
      if (dtype === 'F32') {
        got = new Uint32Array(t.data.slice().buffer);
        exp = new Uint32Array(want.buffer, want.byteOffset, want.length);
      } else {
        got = new Uint16Array(t.data.slice().buffer);
        const conv = dtype === 'F16' ? f32ToF16 : f32ToBf16;
        exp = Uint16Array.from(want, (v) => conv(v));
      }
      assert.equal(got.length, exp.length, `${name}: element count`);
      const bad: string[] = [];
      let nBad = 0;
      for (let i = 0; i < exp.length; i++) {
        if (got[i] !== exp[i]) {
          nBad++;
          if (bad.length < 5) bad.push(`[${i}] got 0x${got[i]!.toString(16)} want 0x${exp[i]!.toString(16)}`);
        }
      }
      assert.equal(nBad, 0, `${name}: ${nBad} of ${exp.length} values differ; first: ${bad.join(', ')}`);
    }
    const refNames = [...ref.entries.keys()].filter((n) => !(sharedOutput && n === 'output.weight'));
    assert.deepEqual([...names].sort(), refNames.sort(), 'tensor names');
    assert.equal(m.weights.output === m.weights.tok_embeddings, sharedOutput, 'tied output');
  } finally {
    ref.close();
  }
}

function expectOracleConfig(m: LoadedModel, c: Case, maxSeqLen?: number): void {
  const want = JSON.parse(readFileSync(join(ORACLE, c, 'case.json'), 'utf8')) as {
    config: Record<string, number>;
    hidden_dim: number;
  };
  for (const k of ['dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'norm_eps', 'rope_theta'] as const) {
    const v = want.config[k] ?? (k === 'n_kv_heads' ? want.config['n_heads'] : undefined); // null = MHA
    assert.equal(m.config[k], v, `config.${k}`);
  }
  assert.equal(ffnHiddenDim(m.config), want.hidden_dim, 'FFN hidden size');
  if (maxSeqLen !== undefined) assert.equal(m.config.max_seq_len, maxSeqLen, 'max_seq_len');
}

for (const c of CASES) {
  test(`HF oracle dir ${c}: q/k un-permuted, equals the Meta weights`, () => {
    const m = readHfDir(join(ORACLE, c, 'hf'));
    assert.equal(m.format, 'hf');
    expectOracleConfig(m, c, (JSON.parse(readFileSync(join(ORACLE, c, 'case.json'), 'utf8')) as { config: { max_seq_len: number } }).config.max_seq_len);
    expectOracleWeights(m, c, 'F32');
  });

  test(`Meta oracle dir ${c} (consolidated.safetensors)`, () => {
    const m = readMetaDir(join(ORACLE, c, 'meta'));
    assert.equal(m.format, 'meta');
    expectOracleConfig(m, c, 4096);
    expectOracleWeights(m, c, 'F32');
  });
}

test('Meta consolidated.00.pth (torch.save, OrderedDict with _metadata), F32', () => {
  const m = readMetaDir(join(FMT, 'pth_a_tiny'), { maxSeqLen: 128 });
  expectOracleConfig(m, 'a_tiny_mha', 128);
  expectOracleWeights(m, 'a_tiny_mha', 'F32');
  assert.equal(m.info['shards'], 1);
});

test('Meta 2-shard .pth, BF16, GQA (each shard holds 1 of 2 kv heads)', () => {
  const m = readMetaDir(join(FMT, 'pth2_b_gqa_bf16'));
  expectOracleConfig(m, 'b_gqa');
  expectOracleWeights(m, 'b_gqa', 'BF16');
  assert.equal(m.info['shards'], 2);
});

test('Meta 2-shard .pth, F16, multi-head attention', () => {
  const m = readMetaDir(join(FMT, 'pth2_a_tiny_f16'));
  expectOracleConfig(m, 'a_tiny_mha');
  expectOracleWeights(m, 'a_tiny_mha', 'F16');
});

test('HF 2-shard safetensors + index, BF16: dtype kept through the q/k un-permutation', () => {
  const m = readHfDir(join(FMT, 'hf2_b_gqa_bf16'));
  expectOracleConfig(m, 'b_gqa');
  expectOracleWeights(m, 'b_gqa', 'BF16');
  assert.equal(m.info['shards'], 2);
});

test('HF 2-shard pytorch_model-*.bin (torch.save) + index, F16: the same tensors as the safetensors', () => {
  const m = readHfDir(join(FMT, 'hf2_a_tiny_bin_f16'));
  expectOracleConfig(m, 'a_tiny_mha');
  expectOracleWeights(m, 'a_tiny_mha', 'F16');
  assert.equal(m.info['shards'], 2);
});

test('llama2.c v0 (separate classifier) and v1', () => {
  for (const f of ['a_tiny_v0.bin', 'a_tiny_v1.bin']) {
    const m = readLlama2c(join(FMT, 'llama2c', f));
    assert.equal(m.vocab, null, 'no tokenizer.bin beside the file');
    expectOracleConfig(m, 'a_tiny_mha', 64);
    expectOracleWeights(m, 'a_tiny_mha', 'F32');
  }
});

test('llama2.c v0 with a shared classifier (positive vocab_size): output is the embedding', () => {
  const m = readLlama2c(join(FMT, 'llama2c', 'a_tiny_v0_shared.bin'));
  expectOracleConfig(m, 'a_tiny_mha', 64);
  expectOracleWeights(m, 'a_tiny_mha', 'F32', true);
});
