// llama2.c .bin files: v2 (int8 groups) dequantization, writeLlama2c against the files written by
// scripts/make-format-fixtures.py, tokenizer.bin lookup and the errors for damaged files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { readLlama2c, writeLlama2c } from '../src/formats/llama2c.js';
import { readMetaDir } from '../src/formats/meta.js';
import { toFloat32 } from '../src/tensor.js';
import { namedWeights } from '../src/model/weights.js';
import { Llama2Error } from '../src/util/errors.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}
const ROOT = repoRoot();
const ORACLE = join(ROOT, 'tests/fixtures/oracle');
const L2C = join(ROOT, 'tests/fixtures/formats/llama2c');
const SEQ_LEN = 64; // what the fixture script wrote
/** |our freq_cis − torch's| (legacy v0 table, which readers skip) */
const FREQ_TOL = 1e-6;
const GROUP = 64;

function throwsLlama(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, `expected a Llama2Error, got ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), `error must be one line: ${e.message}`);
    return true;
  });
}

function withTmp(fn: (dir: string) => void): void {
  const tmp = mkdtempSync(join(tmpdir(), 'l2c-'));
  try {
    fn(tmp);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** torch.round: half to even. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

test('v2 (int8 groups of 64, shared classifier) dequantizes to exactly q * scale as export.py quantized it', () => {
  const m = readLlama2c(join(L2C, 'a_tiny_v2_shared.bin'));
  assert.equal(m.info['version'], 2);
  assert.equal(m.info['groupSize'], GROUP);
  assert.equal(m.weights.output, m.weights.tok_embeddings);
  const ref = new SafetensorsFile(join(ORACLE, 'a_tiny_mha/meta/consolidated.safetensors'));
  try {
    for (const [name, t] of namedWeights(m.weights)) {
      const got = toFloat32(t);
      const w = ref.f32(name);
      if (t.shape.length === 1) {
        assert.deepEqual([...got], [...w], `${name}: norms stay float32`);
        continue;
      }
      let bad = 0;
      let first = '';
      for (let g = 0; g < w.length; g += GROUP) {
        let max = 0;
        for (let i = g; i < g + GROUP; i++) max = Math.max(max, Math.abs(w[i]!));
        const scale = Math.fround(max / 127);
        for (let i = g; i < g + GROUP; i++) {
          const want = Math.fround(roundEven(Math.fround(w[i]! / scale)) * scale);
          if (got[i] !== want) {
            bad++;
            first ||= `[${i}] got ${got[i]} want ${want} (w ${w[i]})`;
          }
        }
      }
      assert.equal(bad, 0, `${name}: ${bad} values differ; first ${first}`);
    }
  } finally {
    ref.close();
  }
});

test('writeLlama2c v1 is byte-identical to export.py layout; v0 too apart from the legacy freq_cis table', () => {
  const src = readMetaDir(join(ORACLE, 'a_tiny_mha/meta'), { maxSeqLen: SEQ_LEN });
  withTmp((dir) => {
    const v1 = join(dir, 'v1.bin');
    writeLlama2c(v1, src.config, src.weights, { version: 1 });
    assert.ok(readFileSync(v1).equals(readFileSync(join(L2C, 'a_tiny_v1.bin'))), 'v1 bytes');

    const v0 = join(dir, 'v0.bin');
    writeLlama2c(v0, src.config, src.weights);
    const mine = readFileSync(v0);
    const ref = readFileSync(join(L2C, 'a_tiny_v0.bin'));
    assert.equal(mine.length, ref.length, 'v0 length');
    // freq_cis sits just before the classifier (V*C floats) and spans 2 * T * HS/2 floats
    const hs = src.config.dim / src.config.n_heads;
    const freqEnd = ref.length - src.config.vocab_size * src.config.dim * 4;
    const freqStart = freqEnd - 2 * SEQ_LEN * (hs / 2) * 4;
    assert.ok(mine.subarray(0, freqStart).equals(ref.subarray(0, freqStart)), 'v0 bytes before freq_cis');
    assert.ok(mine.subarray(freqEnd).equals(ref.subarray(freqEnd)), 'v0 classifier bytes');
    const a = new Float32Array(mine.buffer.slice(mine.byteOffset + freqStart, mine.byteOffset + freqEnd));
    const b = new Float32Array(ref.buffer.slice(ref.byteOffset + freqStart, ref.byteOffset + freqEnd));
    let maxErr = 0;
    for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs(a[i]! - b[i]!));
    assert.ok(maxErr <= FREQ_TOL, `freq_cis max |err| ${maxErr} > ${FREQ_TOL}`);

    // shared classifier: v0 says so with a positive vocab_size and omits wcls
    const shared = { ...src.weights, output: src.weights.tok_embeddings };
    writeLlama2c(v0, src.config, shared);
    const sharedRef = readFileSync(join(L2C, 'a_tiny_v0_shared.bin'));
    assert.equal(readFileSync(v0).length, sharedRef.length);
    assert.deepEqual([...new Int32Array(readFileSync(v0).buffer.slice(0, 28))], [...new Int32Array(sharedRef.buffer.slice(sharedRef.byteOffset, sharedRef.byteOffset + 28))]);
    const back = readLlama2c(v0);
    assert.equal(back.weights.output, back.weights.tok_embeddings);
    writeLlama2c(v0, src.config, shared, { version: 1 });
    assert.equal(readLlama2c(v0).info['sharedClassifier'], true);
  });
});

test('tokenizer.bin beside the model (or named) gives the vocabulary', () => {
  const src = readMetaDir(join(ORACLE, 'e_tok2k_chat/meta'), { maxSeqLen: 32 });
  withTmp((dir) => {
    const bin = join(dir, 'model.bin');
    writeLlama2c(bin, src.config, src.weights);
    assert.equal(readLlama2c(bin).vocab, null);
    const tok = join(ROOT, 'tests/fixtures/formats/llama2c_tokenizer/tokenizer.bin');
    const named = readLlama2c(bin, tok);
    assert.equal(named.vocab?.pieces.length, 2000);
    assert.equal(named.vocabSource, tok);
    copyFileSync(tok, join(dir, 'tokenizer.bin'));
    const beside = readLlama2c(bin);
    assert.equal(beside.vocab?.pieces.length, 2000);
    assert.equal(beside.vocabSource, join(dir, 'tokenizer.bin'));
  });
});

test('truncated, padded and foreign files are clear errors', () => {
  const whole = readFileSync(join(L2C, 'a_tiny_v0.bin'));
  withTmp((dir) => {
    const p = join(dir, 'm.bin');
    writeFileSync(p, whole.subarray(0, whole.length - 100));
    throwsLlama(() => readLlama2c(p), /m\.bin: file is truncated: the header \(v0: dim 64, hidden 192, 2 layers, 4\/4 heads, vocab 256, seq 64, separate classifier\) needs 562460 bytes but the file has 562360/);
    writeFileSync(p, Buffer.concat([whole, Buffer.alloc(8)]));
    throwsLlama(() => readLlama2c(p), /m\.bin: file has 8 bytes more than the header .* accounts for/);
    writeFileSync(p, 'this is a text file, not a model, but long enough to have a header');
    throwsLlama(() => readLlama2c(p), /m\.bin: header field .* is not a llama2\.c model file/);
    writeFileSync(p, whole.subarray(0, 10));
    throwsLlama(() => readLlama2c(p), /m\.bin: file is truncated: the header needs 28 bytes but the file has 10/);
    const v3 = Buffer.alloc(256);
    v3.writeUInt32LE(0x616b3432, 0);
    v3.writeInt32LE(3, 4);
    writeFileSync(p, v3);
    throwsLlama(() => readLlama2c(p), /llama2\.c file version 3; expected 0, 1 or 2/);
    throwsLlama(() => readLlama2c(join(dir, 'absent.bin')), /cannot open .*absent\.bin \(no such file\)/);
  });
});

test('writeLlama2c refuses a model llama2.c cannot represent (norm_eps, rope_theta)', () => {
  const src = readMetaDir(join(ORACLE, 'c_odd_ffn/meta'));
  withTmp((dir) => {
    throwsLlama(() => writeLlama2c(join(dir, 'x.bin'), src.config, src.weights), /llama2\.c fixes norm_eps 0\.00001 and rope_theta 10000; this model has 0\.000001 and 1000000/);
  });
});
