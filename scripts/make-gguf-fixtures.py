#!/usr/bin/python3
"""Regenerates the original float32 values of a few rows of the GGUF test models.

tests/fixtures/gguf/*.gguf were written by llama.cpp (gguf-py, then llama-quantize) from random
F32 weights; /work/shared/gguf/README.md states how: every tensor has its own generator
numpy.random.default_rng([1234, zlib.crc32(gguf_tensor_name)]) drawing float32 standard normals in
row-major order of the (out_features, in_features) matrix, times 0.02; RMSNorm weights are
1 + N(0, 1) * 0.02. Drawing only the first rows gives the same numbers as drawing the whole
matrix (the generator is sequential; checked below on one tensor).

Writes tests/fixtures/gguf/expected-rows.json:
  {file: {tensor: {"shape": [out, in] | [n], "rows": [[...], ...]}}}
holding the first ROWS rows of some 2-D tensors and the whole of some 1-D norms, each value the
shortest decimal that round-trips its float32. tests/gguf-models.test.ts compares our dequantized
rows with them. Run: /usr/bin/python3 scripts/make-gguf-fixtures.py
"""
import json
import os
import zlib

import numpy as np

ROWS = 2
OUT = os.path.join(os.path.dirname(__file__), '..', 'tests', 'fixtures', 'gguf', 'expected-rows.json')

# (file, tensor, shape in PyTorch order (out, in) or (n,))
WANT = {
    'stories15M-Q8_0.gguf': [
        ('token_embd.weight', (32000, 288)),
        ('blk.0.attn_q.weight', (288, 288)),
        ('blk.1.ffn_down.weight', (288, 768)),
        ('blk.5.attn_k.weight', (288, 288)),
        ('output_norm.weight', (288,)),
        ('blk.0.attn_norm.weight', (288,)),
    ],
    'tinyk-Q4_K_M.gguf': [
        ('token_embd.weight', (32000, 256)),
        ('output.weight', (32000, 256)),
        ('blk.0.attn_q.weight', (256, 256)),
        ('blk.0.attn_k.weight', (128, 256)),
        ('blk.1.attn_v.weight', (128, 256)),
        ('blk.0.ffn_down.weight', (256, 768)),
        ('blk.1.ffn_down.weight', (256, 768)),
        ('output_norm.weight', (256,)),
        ('blk.1.ffn_norm.weight', (256,)),
    ],
}


def rng(name):
    return np.random.default_rng([1234, zlib.crc32(name.encode('utf-8'))])


def rows_of(name, shape):
    if len(shape) == 1:
        return [1 + rng(name).standard_normal(shape[0], dtype=np.float32) * 0.02]
    first = rng(name).standard_normal((ROWS, shape[1]), dtype=np.float32) * 0.02
    return list(first)


def check_prefix_property():
    name, (o, i) = 'blk.0.attn_q.weight', (288, 288)
    full = rng(name).standard_normal((o, i), dtype=np.float32)
    part = rng(name).standard_normal((ROWS, i), dtype=np.float32)
    assert np.array_equal(full[:ROWS], part), 'numpy draws are not sequential'


def main():
    check_prefix_property()
    out = {}
    for fname, tensors in WANT.items():
        out[fname] = {}
        for name, shape in tensors:
            rows = rows_of(name, shape)
            for r in rows:
                assert r.dtype == np.float32
            out[fname][name] = {'shape': list(shape), 'rows': [[float(repr(v)) for v in r] for r in rows]}
    with open(OUT, 'w') as f:
        json.dump(out, f, separators=(',', ':'))
        f.write('\n')
    print('wrote', OUT, os.path.getsize(OUT), 'bytes')


if __name__ == '__main__':
    main()
