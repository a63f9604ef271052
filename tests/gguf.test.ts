// GGUF container: metadata of every value type, tensors of every dtype, v2/v3, the writer's
// round trips (writeGgufModel → readGgufModel), and one-line Llama2Errors for bad files.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gv, openGguf, readGgufModel, type GgufValue } from '../src/formats/gguf.js';
import { writeGguf, writeGgufModel, type GgufTensorOut } from '../src/formats/gguf-writer.js';
import { quantizeTensor } from '../src/formats/quants.js';
import { makeConfig, type LlamaConfig } from '../src/model/config.js';
import { expectedShapes, assembleWeights, namedWeights, type ModelWeights } from '../src/model/weights.js';
import { DTYPE_LAYOUT, f32Tensor, toFloat32, type DType, type WeightTensor } from '../src/tensor.js';
import { PieceType, type SpmVocab } from '../src/tokenizer/vocab.js';
import { Llama2Error } from '../src/util/errors.js';

const TMP = mkdtempSync(join(tmpdir(), 'gguf-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
let fileNo = 0;
const tmpPath = (tag: string) => join(TMP, `${tag}-${fileNo++}.gguf`);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randomF32(n: number, seed: number, scale = 0.02, offset = 0): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => offset + (r() * 2 - 1) * scale);
}

/** A tiny Llama model: dim 64, 2 layers, GQA 4/2, ffn 96, vocab 40 (F32 weights). */
const CONFIG: LlamaConfig = makeConfig({
  dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 40, hidden_dim: 96, max_seq_len: 64, norm_eps: 1e-6, rope_theta: 500000,
});
function tinyWeights(c: LlamaConfig, tied: boolean): ModelWeights {
  const ts = new Map<string, WeightTensor>();
  let seed = 1;
  for (const [name, shape] of expectedShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    ts.set(name, f32Tensor(shape.length === 1 ? randomF32(n, seed++, 0.1, 1) : randomF32(n, seed++), shape));
  }
  if (tied) ts.delete('output.weight');
  return assembleWeights(c, (n) => ts.get(n), 'test');
}
function tinyVocab(n: number): SpmVocab {
  const pieces = ['<unk>', '<s>', '</s>', '<0x0A>', ...Array.from({ length: n - 4 }, (_, i) => `▁tok${i}é`)];
  const types = Uint8Array.from(pieces, (_, i) => (i === 0 ? PieceType.UNKNOWN : i < 3 ? PieceType.CONTROL : i === 3 ? PieceType.BYTE : PieceType.NORMAL));
  return {
    pieces, scores: Float32Array.from(pieces, (_, i) => -i * 0.5), types,
    bosId: 1, eosId: 2, unkId: 0, padId: 3, addDummyPrefix: false, addBos: true, addEos: true,
  };
}

/** Runs fn, expecting a one-line Llama2Error whose message contains the path and every pattern. */
function expectError(fn: () => unknown, path: string, ...patterns: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, `expected a Llama2Error, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `message is one line: ${e.message}`);
    assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
    for (const p of patterns) {
      assert.ok(typeof p === 'string' ? e.message.includes(p) : p.test(e.message), `message ${JSON.stringify(e.message)} should match ${p}`);
    }
    return true;
  });
}

/** Byte offset just after the GGUF string `s` (a key or tensor name) in the file bytes. */
function endOf(bytes: Buffer, s: string): number {
  const at = bytes.indexOf(Buffer.from(s, 'utf8'));
  assert.ok(at > 0, `"${s}" not found`);
  return at + Buffer.byteLength(s);
}

// ---------------------------------------------------------------------------------------------
// container round trips

test('metadata of every value type round-trips through writeGguf / openGguf', () => {
  const md: [string, GgufValue][] = [
    ['t.u8', { type: 'u8', value: 255 }], ['t.i8', { type: 'i8', value: -128 }],
    ['t.u16', { type: 'u16', value: 65535 }], ['t.i16', { type: 'i16', value: -32768 }],
    ['t.u32', gv.u32(4294967295)], ['t.i32', gv.i32(-2147483648)], ['t.f32', gv.f32(1.5)],
    ['t.bool', gv.bool(true)], ['t.string', gv.string('héllo ▁ 世界')],
    ['t.u64', gv.u64(2n ** 63n + 5n)], ['t.i64', { type: 'i64', value: -(2n ** 62n) }], ['t.f64', gv.f64(Math.PI)],
    ['a.u8', gv.array('u8', [0, 1, 255])], ['a.i32', gv.array('i32', Int32Array.from([-1, 7]))],
    ['a.f32', gv.array('f32', [0.5, -2])], ['a.f64', gv.array('f64', [1e-300])], ['a.bool', gv.array('bool', [true, false])],
    ['a.string', gv.array('string', ['a', '', 'ü'])], ['a.empty', gv.array('string', [])],
    ['a.u64', { type: 'array', itemType: 'u64', value: [1n, 2n ** 64n - 1n] }],
    ['a.nested', { type: 'array', itemType: 'array', value: [{ type: 'array', itemType: 'i16', value: [1, -2] }, { type: 'array', itemType: 'string', value: ['x'] }] }],
  ];
  const path = tmpPath('md');
  writeGguf(path, { metadata: md, tensors: [] });
  const g = openGguf(path);
  try {
    assert.equal(g.version, 3);
    assert.equal(g.metadata.size, md.length);
    const plain = (v: GgufValue): unknown =>
      v.type === 'array' ? { itemType: v.itemType, value: Array.from(v.value as ArrayLike<unknown>, (x) => (typeof x === 'object' && x ? plain(x as GgufValue) : x)) } : v;
    for (const [k, v] of md) assert.deepEqual(plain(g.metadata.get(k)!), plain(v), k);
    assert.equal(g.tensors.size, 0);
  } finally {
    g.close();
  }
});

test('tensors of every dtype round-trip (bytes, shapes, custom alignment) and v2 files read the same', () => {
  const tensors: GgufTensorOut[] = (Object.keys(DTYPE_LAYOUT) as DType[]).map((dtype, i) => ({
    name: `t.${dtype}`, tensor: quantizeTensor(dtype, randomF32(2 * 3 * 256, i + 10), [2, 3, 256]),
  }));
  tensors.push({ name: 'scalarish', tensor: f32Tensor(Float32Array.from([7]), [1]) });
  const path = tmpPath('dtypes');
  writeGguf(path, { metadata: [['general.alignment', gv.u32(64)]], tensors });
  const bytes = readFileSync(path);
  for (const version of [3, 2]) {
    bytes.writeUInt32LE(version, 4);
    writeFileSync(path, bytes);
    const g = openGguf(path);
    try {
      assert.equal(g.version, version);
      assert.equal(g.alignment, 64);
      assert.equal(g.dataOffset % 64, 0);
      for (const { name, tensor } of tensors) {
        const t = tensor as WeightTensor;
        const info = g.tensors.get(name)!;
        assert.equal(info.offset % 64, 0, `${name} aligned`);
        const back = g.readTensor(name);
        assert.equal(back.dtype, t.dtype);
        assert.deepEqual(back.shape, t.shape);
        assert.ok(Buffer.from(back.data).equals(Buffer.from(t.data)), `${name} bytes`);
      }
    } finally {
      g.close();
    }
  }
  assert.equal(readdirSync(TMP).filter((f) => f.includes('.tmp-')).length, 0, 'no temp files left');
});

// ---------------------------------------------------------------------------------------------
// model round trips

test('writeGgufModel → readGgufModel: F32 model reads back identically (config, tensors, vocab)', () => {
  for (const tied of [false, true]) {
    const w = tinyWeights(CONFIG, tied);
    const vocab = tinyVocab(CONFIG.vocab_size);
    const path = tmpPath('f32');
    const counts = writeGgufModel(path, CONFIG, w, vocab, { name: 'tiny' });
    assert.equal(counts.get('F32'), tied ? 20 : 21);
    const m = readGgufModel(path);
    assert.deepEqual(m.config, CONFIG);
    assert.deepEqual(m.vocab, vocab);
    assert.equal(m.info['name'], 'tiny');
    assert.equal(m.info['file_type'], 'ALL_F32 (0)');
    assert.equal(m.weights.output === m.weights.tok_embeddings, tied);
    const back = new Map(namedWeights(m.weights));
    for (const [name, t] of namedWeights(w)) {
      const b = back.get(name)!;
      assert.equal(b.dtype, 'F32', name);
      assert.deepEqual(b.shape, t.shape, name);
      assert.ok(Buffer.from(b.data).equals(Buffer.from(t.data)), `${name} bytes`);
    }
  }
});

test('writeGgufModel with dtype Q8_0 / Q4_0: matrices equal quantizeTensor output, norms stay F32', () => {
  const w = tinyWeights(CONFIG, false);
  for (const dtype of ['Q8_0', 'Q4_0'] as const) {
    const path = tmpPath(dtype);
    writeGgufModel(path, CONFIG, w, null, { dtype });
    const m = readGgufModel(path);
    assert.equal(m.vocab, null);
    assert.equal(m.config.vocab_size, CONFIG.vocab_size);
    const back = new Map(namedWeights(m.weights));
    for (const [name, t] of namedWeights(w)) {
      const b = back.get(name)!;
      const want = t.shape.length === 1 ? t : quantizeTensor(dtype, toFloat32(t), t.shape);
      assert.equal(b.dtype, want.dtype, name);
      assert.ok(Buffer.from(b.data).equals(Buffer.from(want.data)), `${name} bytes`);
    }
  }
});

test('writeGgufModel with a K-quant falls back like llama.cpp when rows are not 256-value blocks', () => {
  const c = makeConfig({ dim: 256, n_layers: 1, n_heads: 4, vocab_size: 32, hidden_dim: 96, max_seq_len: 16 });
  const w = tinyWeights(c, true);
  const path = tmpPath('q4k');
  const counts = writeGgufModel(path, c, w, null, { dtype: 'Q4_K' });
  // rows of 256 (dim): tok_embeddings, wq, wk, wv, wo, w1, w3 → Q4_K; w2 has rows of 96 → Q5_0
  assert.deepEqual(Object.fromEntries(counts), { Q4_K: 7, Q5_0: 1, F32: 3 });
  const m = readGgufModel(path);
  assert.equal(m.weights.layers[0]!.w2.dtype, 'Q5_0');
  assert.equal(m.info['file_type'], 'MOSTLY_Q4_K_S (14)');
  const x = toFloat32(w.layers[0]!.wq);
  const y = toFloat32(m.weights.layers[0]!.wq);
  const maxErr = x.reduce((e, v, i) => Math.max(e, Math.abs(v - y[i]!)), 0);
  assert.ok(maxErr <= 0.6 * (0.04 / 15), `Q4_K max error ${maxErr}`); // values in ±0.02: a step is at most 0.04/15
});

// ---------------------------------------------------------------------------------------------
// bad input

function tinyFile(tag: string, dtype?: DType): string {
  const path = tmpPath(tag);
  writeGgufModel(path, CONFIG, tinyWeights(CONFIG, false), tinyVocab(CONFIG.vocab_size), dtype ? { dtype } : {});
  return path;
}

test('bad files: truncation anywhere gives a one-line error naming the file', () => {
  const path = tinyFile('trunc', 'Q8_0');
  const full = readFileSync(path);
  const tokensAt = endOf(full, 'tokenizer.ggml.tokens');
  const infoAt = endOf(full, 'blk.0.attn_q.weight');
  const cases: [number, string | RegExp][] = [
    [2, 'expected magic "GGUF" but found only 2 bytes'],
    [10, /truncated.*tensor_count/],
    [tokensAt + 40, /truncated.*metadata "tokenizer.ggml.tokens"/],
    [infoAt + 6, /truncated.*tensor "blk.0.attn_q.weight"/],
    [full.length - 100, /tensor "[^"]+" data .* runs past the end .*truncated/],
  ];
  for (const [len, pattern] of cases) {
    const p = tmpPath('cut');
    writeFileSync(p, full.subarray(0, len));
    expectError(() => readGgufModel(p), p, pattern);
  }
});

test('bad files: wrong magic, version 1, newer versions', () => {
  const full = readFileSync(tinyFile('magic'));
  const p = tmpPath('bad');
  writeFileSync(p, Buffer.concat([Buffer.from('ggjt'), full.subarray(4)]));
  expectError(() => openGguf(p), p, 'expected magic "GGUF" but found "ggjt"', 'pre-GGUF');
  writeFileSync(p, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), full.subarray(4)]));
  expectError(() => openGguf(p), p, 'found bytes 89 50 4e 47');
  const v = Buffer.from(full);
  v.writeUInt32LE(1, 4);
  writeFileSync(p, v);
  expectError(() => openGguf(p), p, 'version 1 is too old');
  v.writeUInt32LE(4, 4);
  writeFileSync(p, v);
  expectError(() => openGguf(p), p, 'version 4 is not supported');
  v.writeUInt32BE(3, 4);
  writeFileSync(p, v);
  expectError(() => openGguf(p), p, 'big-endian');
  expectError(() => openGguf(join(TMP, 'nope.gguf')), join(TMP, 'nope.gguf'), 'no such file');
});

test('bad files: unknown tensor type id, unknown metadata value type, data beyond EOF, partial blocks', () => {
  const full = readFileSync(tinyFile('ids', 'Q8_0'));
  const p = tmpPath('bad');
  const name = 'blk.1.attn_k.weight';
  const typeAt = endOf(full, name) + 4 + 2 * 8; // n_dims, ne[2], then the type
  assert.equal(full.readUInt32LE(typeAt), 8); // Q8_0

  const b = Buffer.from(full);
  b.writeUInt32LE(99, typeAt);
  writeFileSync(p, b);
  expectError(() => openGguf(p), p, `tensor "${name}"`, 'ggml type 99, which is unknown');
  b.writeUInt32LE(16, typeAt);
  writeFileSync(p, b);
  expectError(() => openGguf(p), p, `tensor "${name}"`, 'IQ2_XXS (16)', 'cannot decode');

  const c = Buffer.from(full);
  c.writeBigUInt64LE(BigInt(full.length), typeAt + 4); // offset past the end
  writeFileSync(p, c);
  expectError(() => openGguf(p), p, `tensor "${name}" data`, 'runs past the end');

  const d = Buffer.from(full);
  d.writeBigUInt64LE(48n, typeAt - 16); // ne0 48: not whole 32-value blocks
  writeFileSync(p, d);
  expectError(() => openGguf(p), p, `tensor "${name}"`, 'rows of 48 values', '32-value blocks');

  const e = Buffer.from(full);
  e.writeUInt32LE(13, endOf(full, 'llama.rope.freq_base'));
  writeFileSync(p, e);
  expectError(() => openGguf(p), p, 'metadata "llama.rope.freq_base" has value type 13');
});

test('bad models: architecture not llama, wrong shape, missing and unexpected tensors, bad metadata types', () => {
  const t = (shape: number[]) => f32Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  const model = (arch: string, over: Record<string, WeightTensor | null> = {}, extra: [string, GgufValue][] = []) => {
    const tensors: GgufTensorOut[] = [];
    const byName: Record<string, WeightTensor | null> = {
      'token_embd.weight': t([40, 64]), 'output_norm.weight': t([64]),
      'blk.0.attn_norm.weight': t([64]), 'blk.0.ffn_norm.weight': t([64]),
      'blk.0.attn_q.weight': t([64, 64]), 'blk.0.attn_k.weight': t([32, 64]), 'blk.0.attn_v.weight': t([32, 64]),
      'blk.0.attn_output.weight': t([64, 64]), 'blk.0.ffn_gate.weight': t([96, 64]), 'blk.0.ffn_up.weight': t([96, 64]),
      'blk.0.ffn_down.weight': t([64, 96]), ...over,
    };
    for (const [name, tensor] of Object.entries(byName)) if (tensor) tensors.push({ name, tensor });
    const md: [string, GgufValue][] = [
      ['general.architecture', gv.string(arch)], ['llama.embedding_length', gv.u32(64)], ['llama.block_count', gv.u32(1)],
      ['llama.attention.head_count', gv.u32(4)], ['llama.attention.head_count_kv', gv.u32(2)],
      ['llama.feed_forward_length', gv.u32(96)], ['llama.context_length', gv.u32(64)], ['llama.vocab_size', gv.u32(40)], ...extra,
    ];
    const path = tmpPath('model');
    writeGguf(path, { metadata: md, tensors });
    return path;
  };
  const ok = model('llama');
  assert.equal(readGgufModel(ok).config.n_kv_heads, 2);
  let p = model('gemma');
  expectError(() => readGgufModel(p), p, 'general.architecture', '"gemma"');
  p = model('llama', { 'blk.0.attn_k.weight': t([64, 64]) });
  expectError(() => readGgufModel(p), p, 'tensor "blk.0.attn_k.weight" has shape [64, 64]', '[32, 64]');
  p = model('llama', { 'blk.0.ffn_up.weight': null });
  expectError(() => readGgufModel(p), p, 'missing tensor "blk.0.ffn_up.weight"');
  p = model('llama', { 'rope_freqs.weight': t([8]) });
  expectError(() => readGgufModel(p), p, 'unexpected tensor "rope_freqs.weight"');
  p = model('llama', {}, [['llama.rope.dimension_count', gv.u32(8)]]);
  expectError(() => readGgufModel(p), p, 'llama.rope.dimension_count', 'partial RoPE');
  p = model('llama', {}, [['llama.rope.freq_base', gv.string('10000')]]);
  expectError(() => readGgufModel(p), p, 'metadata "llama.rope.freq_base" must be a number, found string "10000"');
  p = model('llama', {}, [['llama.expert_count', gv.u32(8)]]);
  expectError(() => readGgufModel(p), p, 'mixture-of-experts');
  p = model('llama', {}, [['tokenizer.ggml.model', gv.string('llama')], ['tokenizer.ggml.tokens', gv.array('string', ['a', 'b'])]]);
  expectError(() => readGgufModel(p), p, '"llama.vocab_size" is 40', 'holds 2 tokens');
  p = model('llama', {}, [['llama.attention.layer_norm_rms_epsilon', gv.f32(Infinity)]]);
  expectError(() => readGgufModel(p), p, '"norm_eps" must be > 0 and finite, found Infinity');
  p = model('llama', {}, [['llama.rope.freq_base', gv.f32(NaN)]]);
  expectError(() => readGgufModel(p), p, '"rope_theta" must be > 0 and finite, found NaN');
});

test('names read from a corrupt file appear escaped and cut short in messages', () => {
  const junk = 'blk.0\u0000\u001b[31m' + 'x\n'.repeat(30000); // NUL, an escape sequence, 30000 lines
  const t = f32Tensor(new Float32Array(4), [4]);
  const path = tmpPath('junk');
  const md: [string, GgufValue][] = [
    ['general.architecture', gv.string('llama')], ['llama.embedding_length', gv.u32(64)], ['llama.block_count', gv.u32(1)],
    ['llama.attention.head_count', gv.u32(4)], ['llama.feed_forward_length', gv.u32(96)], ['llama.context_length', gv.u32(64)],
    ['llama.vocab_size', gv.u32(40)], [junk, gv.string(junk)],
  ];
  writeGguf(path, { metadata: md, tensors: [{ name: junk, tensor: t }] }); // an unexpected tensor
  const g = openGguf(path);
  assert.equal(g.tensors.has(junk), true, 'the name itself is read exactly');
  g.close();
  assert.throws(() => readGgufModel(path), (e: unknown) => {
    assert.ok(e instanceof Llama2Error);
    assert.ok(!/[\u0000-\u001f]/.test(e.message), `no control characters: ${JSON.stringify(e.message.slice(0, 200))}`);
    assert.ok(e.message.length < 400, `short: ${e.message.length} characters`);
    assert.match(e.message, /unexpected tensor "blk\.0\\x00\\x1b\[31mx\\nx\\n.*"… \(60011 characters\) for a 1-layer/);
    return true;
  });
  // a metadata value of the wrong type quotes the value the same way
  const p2 = tmpPath('junkval');
  writeGguf(p2, { metadata: [['general.architecture', gv.string(junk)]], tensors: [] });
  expectError(() => readGgufModel(p2), p2, '"general.architecture" is "blk.0\\x00', '(60011 characters)');
});

test('strings keep a leading U+FEFF (keys, values, string arrays)', () => {
  const path = tmpPath('bom');
  writeGguf(path, { metadata: [['\ufeffkey', gv.string('\ufeffvalue')], ['list', gv.array('string', ['\ufeff', 'a'])]], tensors: [] });
  const g = openGguf(path);
  assert.deepEqual(g.metadata.get('\ufeffkey'), { type: 'string', value: '\ufeffvalue' });
  assert.deepEqual(Array.from((g.metadata.get('list') as { value: ArrayLike<string> }).value), ['\ufeff', 'a']);
  g.close();
});

test('writer rejects what it cannot write', () => {
  const p = tmpPath('w');
  assert.throws(() => writeGguf(p, { metadata: [['k', gv.u32(-1)]], tensors: [] }), /metadata "k" must be a u32/);
  assert.throws(() => writeGguf(p, { metadata: [['k', gv.u8(1)], ['k', gv.u8(2)]], tensors: [] }), /given twice/);
  const bad = { dtype: 'Q8_0' as const, shape: [1, 32], data: new Uint8Array(10) };
  assert.throws(() => writeGguf(p, { metadata: [], tensors: [{ name: 'x', tensor: bad }] }), /needs 34 bytes, got 10/);
  assert.equal(readdirSync(TMP).filter((f) => f.includes('.tmp-')).length, 0, 'failed writes leave no temp file');
  assert.throws(() => writeGgufModel(p, { ...CONFIG, vocab_size: 41 }, tinyWeights(CONFIG, true), null), /expects \[41, 64\]/);
});
