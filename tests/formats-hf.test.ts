// HF directories: the q/k permutation against the oracle's HF files, writeHfDir round trips
// (single file, shards, tied output, dtype conversion, tokenizer copy) and config / file errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile, writeSafetensors } from '../src/formats/safetensors.js';
import { readHfDir, writeHfDir } from '../src/formats/hf.js';
import { readMetaDir } from '../src/formats/meta.js';
import { permuteQK, unpermuteQK } from '../src/formats/permute.js';
import { f32ToF16, toFloat32, type WeightTensor } from '../src/tensor.js';
import { namedWeights, type ModelWeights } from '../src/model/weights.js';
import { Llama2Error } from '../src/util/errors.js';
import { writeTokenizerJson } from '../src/tokenizer/load.js';
import { nativeBackend, nativeLoadError } from '../src/backend/native.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}
const ORACLE = join(repoRoot(), 'tests/fixtures/oracle');

function throwsLlama(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, `expected a Llama2Error, got ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), `error must be one line: ${e.message}`);
    return true;
  });
}

function withTmp(fn: (dir: string) => void): void {
  const tmp = mkdtempSync(join(tmpdir(), 'hf-'));
  try {
    fn(tmp);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: byte length`);
  const i = a.findIndex((x, k) => x !== b[k]);
  assert.equal(i, -1, `${what}: first differing byte at ${i}`);
}

function sameWeights(got: ModelWeights, want: ModelWeights): void {
  const g = new Map(namedWeights(got));
  for (const [name, t] of namedWeights(want)) {
    const u = g.get(name);
    assert.ok(u, `missing ${name}`);
    assert.equal(u.dtype, t.dtype, `${name}: dtype`);
    assert.deepEqual(u.shape, t.shape, `${name}: shape`);
    sameBytes(u.data, t.data, name);
  }
  assert.equal(g.size, [...namedWeights(want)].length, 'tensor count');
}

test('permuteQK reproduces the oracle HF q_proj/k_proj (HF converter); unpermuteQK inverts it', () => {
  const meta = new SafetensorsFile(join(ORACLE, 'b_gqa/meta/consolidated.safetensors'));
  const hf = new SafetensorsFile(join(ORACLE, 'b_gqa/hf/model.safetensors'));
  try {
    for (const [m, h, n] of [['layers.1.attention.wq.weight', 'model.layers.1.self_attn.q_proj.weight', 6], ['layers.1.attention.wk.weight', 'model.layers.1.self_attn.k_proj.weight', 2]] as const) {
      const w = meta.weight(m);
      const p = permuteQK(w, n);
      sameBytes(p.data, hf.bytes(h), `permuteQK(${m})`);
      sameBytes(unpermuteQK(p, n).data, w.data, `unpermuteQK(permuteQK(${m}))`);
    }
  } finally {
    meta.close();
    hf.close();
  }
});

test('permuteQK moves whole rows of any dtype (a quantized Q8_0 row is 34 bytes)', () => {
  const rows = 8; // 2 heads of size 4, rows of 32 values = one Q8_0 block
  const data = new Uint8Array(rows * 34);
  for (let r = 0; r < rows; r++) data.fill(r, r * 34, (r + 1) * 34);
  const t: WeightTensor = { dtype: 'Q8_0', shape: [rows, 32], data };
  const p = permuteQK(t, 2);
  // head 0 rows (0,1,2,3) in Meta pairs (0,1),(2,3) → HF order 0,2,1,3; head 1: 4,6,5,7
  assert.deepEqual(Array.from({ length: rows }, (_, r) => p.data[r * 34]), [0, 2, 1, 3, 4, 6, 5, 7]);
  assert.equal(p.dtype, 'Q8_0');
  throwsLlama(() => permuteQK(t, 3), /does not split into 3 heads of an even size/);
});

test('writeHfDir writes what the HF converter writes; readHfDir reads it back exactly', () => {
  const src = readMetaDir(join(ORACLE, 'b_gqa/meta'), { maxSeqLen: 128 });
  withTmp((dir) => {
    writeHfDir(dir, src.config, src.weights);
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
    const mine = new SafetensorsFile(join(dir, 'model.safetensors'));
    const ref = new SafetensorsFile(join(ORACLE, 'b_gqa/hf/model.safetensors'));
    try {
      assert.deepEqual([...mine.entries.keys()].sort(), [...ref.entries.keys()].sort());
      for (const n of ref.entries.keys()) sameBytes(mine.bytes(n), ref.bytes(n), n);
    } finally {
      mine.close();
      ref.close();
    }
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const refCfg = JSON.parse(readFileSync(join(ORACLE, 'b_gqa/hf/config.json'), 'utf8')) as Record<string, unknown>;
    for (const k of ['hidden_size', 'intermediate_size', 'num_attention_heads', 'num_key_value_heads', 'num_hidden_layers', 'vocab_size', 'rms_norm_eps', 'rope_theta', 'max_position_embeddings', 'tie_word_embeddings', 'model_type']) {
      assert.deepEqual(cfg[k], refCfg[k], `config.json ${k}`);
    }
    const back = readHfDir(dir);
    assert.deepEqual(back.config, { ...src.config, hidden_dim: 256, multiple_of: 256 });
    sameWeights(back.weights, src.weights);
  });
});

test('writeHfDir shards with an index, removes stale files when the layout changes', () => {
  const src = readMetaDir(join(ORACLE, 'a_tiny_mha/meta'));
  withTmp((dir) => {
    writeHfDir(dir, src.config, src.weights, { shardBytes: 150_000 });
    const shards = readdirSync(dir).filter((f) => f.startsWith('model-'));
    assert.ok(shards.length >= 3, shards.join(', '));
    assert.ok(shards.every((f) => /^model-0000\d-of-0000\d\.safetensors$/.test(f)));
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    assert.equal(Object.keys(index.weight_map).length, [...namedWeights(src.weights)].length);
    const back = readHfDir(dir);
    assert.equal(back.info['shards'], shards.length);
    sameWeights(back.weights, src.weights);
    writeHfDir(dir, src.config, src.weights);
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
    sameWeights(readHfDir(dir).weights, src.weights);
  });
});

test('tied output: tie_word_embeddings true, no lm_head; dtype option converts (F16)', () => {
  const src = readMetaDir(join(ORACLE, 'a_tiny_mha/meta'));
  const tied: ModelWeights = { ...src.weights, output: src.weights.tok_embeddings };
  withTmp((dir) => {
    writeHfDir(dir, src.config, tied, { dtype: 'F16' });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(cfg['tie_word_embeddings'], true);
    assert.equal(cfg['torch_dtype'], 'float16');
    const f = new SafetensorsFile(join(dir, 'model.safetensors'));
    assert.ok(!f.has('lm_head.weight'));
    f.close();
    const back = readHfDir(dir);
    assert.equal(back.weights.output, back.weights.tok_embeddings);
    for (const [name, t] of namedWeights(back.weights)) {
      assert.equal(t.dtype, 'F16', name);
      const want = Uint16Array.from(toFloat32([...namedWeights(tied)].find(([n]) => n === name)![1]), (v) => f32ToF16(v));
      sameBytes(t.data, new Uint8Array(want.buffer), name);
    }
  });
});

test('tokenizer: written from a vocab or copied by writeHfDir; tokenizer.model preferred over tokenizer.json', () => {
  const src = readMetaDir(join(ORACLE, 'e_tok2k_chat/meta'), { tokenizerPath: join(ORACLE, 'tokenizer/tokenizer.model') });
  assert.ok(src.vocab);
  withTmp((dir) => {
    writeHfDir(dir, src.config, src.weights, { vocab: src.vocab! });
    const fromVocab = readHfDir(dir);
    assert.deepEqual(fromVocab.vocab?.pieces, src.vocab!.pieces);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([cfg['bos_token_id'], cfg['eos_token_id']], [src.vocab!.bosId, src.vocab!.eosId]);
    writeHfDir(dir, src.config, src.weights, { tokenizerFile: join(ORACLE, 'tokenizer/tokenizer.model') });
    assert.ok(readFileSync(join(dir, 'tokenizer.model')).equals(readFileSync(join(ORACLE, 'tokenizer/tokenizer.model'))));
    assert.equal(readHfDir(dir).vocab?.pieces.length, 2000);
    writeFileSync(join(dir, 'tokenizer.json'), 'not json: must never be read while tokenizer.model exists');
    const m = readHfDir(dir);
    assert.equal(m.vocabSource, join(dir, 'tokenizer.model'));
    rmSync(join(dir, 'tokenizer.model'));
    writeTokenizerJson(join(dir, 'tokenizer.json'), src.vocab!);
    const fromJson = readHfDir(dir);
    assert.equal(fromJson.vocabSource, join(dir, 'tokenizer.json'));
    assert.deepEqual(fromJson.vocab?.pieces, src.vocab!.pieces);
    rmSync(join(dir, 'tokenizer.json'));
    assert.equal(readHfDir(dir).vocab, null);
  });
});

/** A copy of the oracle's b_gqa HF dir whose config.json is patched. */
function hfCopy(dir: string, patch: Record<string, unknown> = {}): string {
  const d = join(dir, 'model');
  mkdirSync(d);
  copyFileSync(join(ORACLE, 'b_gqa/hf/model.safetensors'), join(d, 'model.safetensors'));
  const cfg = JSON.parse(readFileSync(join(ORACLE, 'b_gqa/hf/config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, ...patch }));
  return d;
}

test('config.json errors: missing, malformed, unsupported rope_scaling / model_type / biases', () => {
  withTmp((tmp) => {
    const d = hfCopy(tmp);
    rmSync(join(d, 'config.json'));
    throwsLlama(() => readHfDir(d), /HF config\.json: cannot read .*model\/config\.json \(no such file\)/);
    writeFileSync(join(d, 'config.json'), '{"hidden_size": 96,');
    throwsLlama(() => readHfDir(d), /HF config\.json: .*config\.json is not valid JSON \(.+\)/);
  });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ rope_scaling: { type: 'linear', factor: 2 } }, /rope_scaling \{"type":"linear","factor":2\} is not supported/],
    [{ model_type: 'mistral' }, /model_type is "mistral"; only "llama"/],
    [{ architectures: ['MistralForCausalLM'] }, /architectures is \["MistralForCausalLM"\]; expected LlamaForCausalLM/],
    [{ attention_bias: true }, /attention_bias is true/],
    [{ hidden_size: undefined }, /config\.json: missing field "hidden_size"/],
    [{ num_key_value_heads: 4 }, /n_heads 6 is not a multiple of n_kv_heads 4/],
  ];
  for (const [patch, re] of cases) withTmp((tmp) => throwsLlama(() => readHfDir(hfCopy(tmp, patch)), re));
});

test('weight errors: wrong shape, missing tensor, missing shard, unsupported dtype, no weights', () => {
  withTmp((tmp) => {
    throwsLlama(
      () => readHfDir(hfCopy(tmp, { intermediate_size: 255 })),
      /tensor "model\.layers\.0\.mlp\.gate_proj\.weight" in model\.safetensors has shape \[256, 96\] but config\.json \(hidden 96, 6\/2 heads, intermediate 255, vocab 300\) expects \[255, 96\]/,
    );
  });
  withTmp((tmp) => {
    const d = hfCopy(tmp);
    const f = new SafetensorsFile(join(d, 'model.safetensors'));
    const names = [...f.entries.keys()];
    const bytes = new Map(names.map((n) => [n, f.bytes(n)] as const));
    const shapes = new Map(names.map((n) => [n, f.entry(n).shape] as const));
    f.close();
    // two shards, with one tensor left out of both
    const [a, b] = [names.slice(0, 10), names.slice(10).filter((n) => n !== 'model.layers.2.mlp.up_proj.weight')];
    const out = (ns: string[]) => ns.map((n) => ({ name: n, dtype: 'F32' as const, shape: shapes.get(n)!, data: bytes.get(n)! }));
    rmSync(join(d, 'model.safetensors'));
    writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), out(a));
    writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), out(b));
    const wm: Record<string, string> = {};
    for (const n of a) wm[n] = 'model-00001-of-00002.safetensors';
    for (const n of b) wm[n] = 'model-00002-of-00002.safetensors';
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: wm }));
    throwsLlama(() => readHfDir(d), /missing tensor "model\.layers\.2\.mlp\.up_proj\.weight" in model-00001-of-00002\.safetensors, model-00002-of-00002\.safetensors/);
    rmSync(join(d, 'model-00002-of-00002.safetensors'));
    throwsLlama(() => readHfDir(d), /model\.safetensors\.index\.json: shard model-00002-of-00002\.safetensors listed in weight_map is missing from /);
    writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": ');
    throwsLlama(() => readHfDir(d), /HF weight index: .*model\.safetensors\.index\.json is not valid JSON/);
    rmSync(join(d, 'model.safetensors.index.json'));
    rmSync(join(d, 'model-00001-of-00002.safetensors'));
    throwsLlama(() => readHfDir(d), /no weights: expected model\.safetensors/);
    // an integer tensor where a weight belongs
    const ints = out(names).map((t) => (t.name === 'model.norm.weight' ? { ...t, dtype: 'I32' as const } : t));
    writeSafetensors(join(d, 'model.safetensors'), ints);
    throwsLlama(() => readHfDir(d), /tensor "model\.norm\.weight" has dtype I32; a weight must be F32, F16, BF16 or F64/);
  });
});

test('safetensors weights: mapped with the native addon (the same bytes as read), LLAMA2_MMAP=0 reads', { skip: nativeBackend ? false : `native addon not loaded: ${nativeLoadError}` }, () => {
  for (const dir of [join(ORACLE, 'b_gqa/hf'), join(repoRoot(), 'tests/fixtures/formats/hf2_b_gqa_bf16')]) {
    const mapped = readHfDir(dir, { mmap: true });
    const read = readHfDir(dir, { mmap: false });
    assert.equal(mapped.info['tensor_data'], 'memory-mapped', dir);
    assert.equal(read.info['tensor_data'], 'read', dir);
    sameWeights(mapped.weights, read.weights);
    assert.equal(readHfDir(dir).info['tensor_data'], 'memory-mapped', `${dir}: the default with the addon`);
    const saved = process.env['LLAMA2_MMAP'];
    process.env['LLAMA2_MMAP'] = '0';
    try {
      assert.equal(readHfDir(dir).info['tensor_data'], 'read', `${dir}: LLAMA2_MMAP=0`);
    } finally {
      if (saved === undefined) delete process.env['LLAMA2_MMAP'];
      else process.env['LLAMA2_MMAP'] = saved;
    }
    // a mapped weight is writable and private: the file keeps its bytes
    const t = mapped.weights.norm;
    const before = read.weights.norm.data[0];
    t.data[0] = (t.data[0]! + 1) & 0xff;
    assert.equal(readHfDir(dir, { mmap: false }).weights.norm.data[0], before);
  }
  // torch.save shards (pytorch_model-*.bin) are mapped the same way
  const bin = join(repoRoot(), 'tests/fixtures/formats/hf2_a_tiny_bin_f16');
  const binMapped = readHfDir(bin, { mmap: true }), binRead = readHfDir(bin, { mmap: false });
  assert.equal(binMapped.info['tensor_data'], 'memory-mapped');
  assert.equal(binRead.info['tensor_data'], 'read');
  sameWeights(binMapped.weights, binRead.weights);
});

test('Meta .pth: one shard mapped (the same bytes as read), several shards merged into copies', { skip: nativeBackend ? false : `native addon not loaded: ${nativeLoadError}` }, () => {
  const one = join(repoRoot(), 'tests/fixtures/formats/pth_a_tiny');
  const mapped = readMetaDir(one, { mmap: true }), read = readMetaDir(one, { mmap: false });
  assert.equal(mapped.info['tensor_data'], 'memory-mapped');
  assert.equal(read.info['tensor_data'], 'read');
  sameWeights(mapped.weights, read.weights);
  const two = join(repoRoot(), 'tests/fixtures/formats/pth2_b_gqa_bf16');
  const merged = readMetaDir(two, { mmap: true });
  assert.equal(merged.info['tensor_data'], 'read');
  sameWeights(merged.weights, readMetaDir(two, { mmap: false }).weights);
});
