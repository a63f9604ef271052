/**
 * Zero-copy GGUF loading: readGgufModel over a memory mapping (native addon) gives the same
 * config, vocabulary and tensor bytes as the positioned-read path, F32 views are aligned, the
 * mapping is used by default and can be switched off, and mmapRanges refuses ranges outside the
 * file. Skipped with a notice when the addon is not built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readGgufModel } from '../src/formats/gguf.js';
import { namedWeights } from '../src/model/weights.js';
import { nativeBackend, nativeLoadError } from '../src/backend/native.js';
import { toFloat32 } from '../src/tensor.js';
import { Model } from '../src/model/forward.js';
import { fixture } from './helpers/cli.js';

const FILES = ['stories15M-Q8_0.gguf', 'tinyk-Q4_K_M.gguf'];

if (!nativeBackend) {
  test('GGUF memory mapping', { skip: `native addon not loaded: ${nativeLoadError}` }, () => {});
} else {
  const nb = nativeBackend;
  for (const file of FILES) {
    test(`${file}: mapped and read weights are the same bytes`, () => {
      const path = fixture('gguf', file);
      const mapped = readGgufModel(path, { mmap: true });
      const read = readGgufModel(path, { mmap: false });
      assert.equal(mapped.info['tensor_data'], 'memory-mapped');
      assert.equal(read.info['tensor_data'], 'read');
      assert.deepEqual(mapped.config, read.config);
      assert.deepEqual(mapped.vocab, read.vocab);
      const a = [...namedWeights(mapped.weights)], b = [...namedWeights(read.weights)];
      assert.equal(a.length, b.length);
      a.forEach(([name, t], i) => {
        const [nameB, u] = b[i]!;
        assert.equal(name, nameB);
        assert.equal(t.dtype, u.dtype, name);
        assert.deepEqual(t.shape, u.shape, name);
        assert.ok(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength)), `${name}: bytes differ`);
        if (t.dtype === 'F32') assert.equal(t.data.byteOffset % 4, 0, `${name}: F32 view not aligned`);
      });
      // views decode like copies (norms are F32 views: toFloat32 gives a view, not a copy)
      const norm = toFloat32(mapped.weights.norm);
      assert.equal(norm.buffer, mapped.weights.norm.data.buffer);
      assert.deepEqual(norm, toFloat32(read.weights.norm));
    });
  }

  test('engines over a mapped file: regrouped copies shared, the file bytes still readable after their pages are released', () => {
    for (const file of FILES) {
      const path = fixture('gguf', file);
      const mapped = readGgufModel(path, { mmap: true });
      const read = readGgufModel(path, { mmap: false });
      const config = { ...mapped.config, max_seq_len: 16 };
      const a = new Model(config, mapped.weights, nb);
      const la = a.step([1, 2, 3, 4], a.newCache(8), 'all');
      const b = new Model(config, mapped.weights, nb); // shares a's regrouped copies
      const lb = b.step([1, 2, 3, 4], b.newCache(8), 'all');
      assert.deepEqual(Array.from(lb), Array.from(la), `${file}: a second engine over the same weights`);
      // the engine dropped the pages of the matrices it regrouped; reading them faults the file back in
      const wa = [...namedWeights(mapped.weights)], wb = [...namedWeights(read.weights)];
      wa.forEach(([name, t], i) => {
        const u = wb[i]![1];
        assert.ok(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength)), `${file} ${name}: bytes differ after the engine`);
      });
    }
  });

  test('the mapping is the default with the addon; LLAMA2_MMAP=0 switches it off', () => {
    const path = fixture('gguf', FILES[0]!);
    const saved = process.env['LLAMA2_MMAP'];
    try {
      delete process.env['LLAMA2_MMAP'];
      assert.equal(readGgufModel(path).info['tensor_data'], 'memory-mapped');
      process.env['LLAMA2_MMAP'] = '0';
      assert.equal(readGgufModel(path).info['tensor_data'], 'read');
    } finally {
      if (saved === undefined) delete process.env['LLAMA2_MMAP']; else process.env['LLAMA2_MMAP'] = saved;
    }
  });

  test('mmapRanges: windows of one mapping; ranges outside the file and missing files throw', () => {
    const path = fixture('gguf', FILES[0]!);
    const [head, empty] = nb.mmapRanges(path, [{ offset: 0, length: 4 }, { offset: 10, length: 0 }]);
    assert.deepEqual([...new Uint8Array(head!)], [0x47, 0x47, 0x55, 0x46]); // "GGUF"
    assert.equal(empty!.byteLength, 0);
    assert.throws(() => nb.mmapRanges(path, [{ offset: 1e15, length: 1 }]), /range 0 .* is not inside the \d+-byte file/);
    assert.throws(() => nb.mmapRanges(path, [{ offset: 0, length: -1 }]), /not inside/);
    assert.throws(() => nb.mmapRanges(join(path, 'nope'), []), /cannot open/);
  });
}
