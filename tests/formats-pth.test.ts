// The zip reader and the restricted pickle VM (openZip / openPth / unpickle) on checkpoints written
// by torch.save (scripts/make-format-fixtures.py), plus hostile and damaged files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { openZip } from '../src/formats/zip.js';
import { openPth, unpickle, PyDict, type PyValue } from '../src/formats/pickle.js';
import { toFloat32 } from '../src/tensor.js';
import { Llama2Error } from '../src/util/errors.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}
const MISC = join(repoRoot(), 'tests/fixtures/formats/pth_misc');

function throwsLlama(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, `expected a Llama2Error, got ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), `error must be one line: ${e.message}`);
    return true;
  });
}

test('openZip lists torch.save entries, all stored', () => {
  const z = openZip(join(MISC, 'misc.pth'));
  try {
    const names = [...z.entries.keys()];
    assert.ok(names.includes('misc/data.pkl'), names.join(', '));
    for (const e of z.entries.values()) assert.equal(e.method, 0, e.name);
    assert.equal(new TextDecoder().decode(z.read('misc/version')).trim(), '3');
  } finally {
    z.close();
  }
});

test('openPth rebuilds tensors, views, parameters and plain values', () => {
  const f = openPth(join(MISC, 'misc.pth'));
  try {
    assert.deepEqual([...f.tensors.keys()].sort(), ['nested.f64', 'nested.i64', 'nested.same_storage', 'nested.view', 'param', 'transposed']);
    assert.deepEqual([...toFloat32(f.weight('param'))], [1.5, -2, 0.25, 8]);
    // base = arange(24).reshape(4, 6); view = base[1:3] shares its storage at offset 6
    const view = f.tensors.get('nested.view')!;
    assert.equal(view.storageOffset, 6);
    assert.equal(view.storageKey, f.tensors.get('nested.same_storage')!.storageKey);
    assert.deepEqual([...toFloat32(f.weight('nested.view'))], Array.from({ length: 12 }, (_, i) => i + 6));
    assert.deepEqual(f.weight('nested.view').shape, [2, 6]);
    const f64 = f.weight('nested.f64');
    assert.equal(f64.dtype, 'F32');
    assert.deepEqual([...toFloat32(f64)], [1, -0.5]);
    assert.deepEqual([...new BigInt64Array(f.bytes('nested.i64').slice().buffer)], [3n, -4n]);
    assert.ok(f.root instanceof PyDict);
    const plain = (f.root as PyDict).map.get('plain') as PyValue[];
    assert.deepEqual(plain.slice(0, 9), [1, -7, 2 ** 40, -(2n ** 70n), 3.25, 'héllo', null, true, false]);
    assert.deepEqual([...(plain[9] as PyValue[])], [1, 'a']);
    assert.deepEqual([...(plain[10] as Uint8Array)], [0, 255]);
  } finally {
    f.close();
  }
});

test('openPth: non-contiguous tensors and integer weights are clear errors', () => {
  const f = openPth(join(MISC, 'misc.pth'));
  try {
    throwsLlama(() => f.weight('transposed'), /misc\.pth: tensor "transposed" is not contiguous \(shape \[6, 4\], stride \[1, 6\]\)/);
    throwsLlama(() => f.weight('nested.i64'), /tensor "nested\.i64" has dtype I64; a weight must be F32, F16, BF16 or F64/);
    throwsLlama(() => f.weight('nope'), /no tensor named "nope"/);
  } finally {
    f.close();
  }
});

test('a pickle that calls os.system is refused without running it', () => {
  const marker = 'PICKLE_CODE_WAS_EXECUTED';
  throwsLlama(() => openPth(join(MISC, 'evil.pth')), /evil\.pth: refusing to execute code from pickle: posix\.system/);
  assert.ok(!existsSync(marker) && !existsSync(join(MISC, marker)));
});

test('unpickle refuses every global off the whitelist and calls of type tags', () => {
  const g = new Map([['torch.FloatStorage', null]]);
  // PROTO 2, GLOBAL 'builtins eval', STOP
  const evalPkl = Buffer.from('\x80\x02cbuiltins\neval\n.', 'latin1');
  throwsLlama(() => unpickle(evalPkl, { what: 'x', globals: g }), /refusing to execute code from pickle: builtins\.eval/);
  // GLOBAL torch FloatStorage, EMPTY_TUPLE, REDUCE → calling a value-only tag
  const callTag = Buffer.from('\x80\x02ctorch\nFloatStorage\n)R.', 'latin1');
  throwsLlama(() => unpickle(callTag, { what: 'x', globals: g }), /calls torch\.FloatStorage, which may only be used as a value/);
  // STACK_GLOBAL with names pushed as strings
  const stackGlobal = Buffer.from('\x80\x04\x8c\x02os\x8c\x06system\x93.', 'latin1');
  throwsLlama(() => unpickle(stackGlobal, { what: 'x', globals: g }), /refusing to execute code from pickle: os\.system/);
  // BUILD on a non-dict, and an unknown opcode
  throwsLlama(() => unpickle(Buffer.from('\x80\x02]}b.', 'latin1'), { what: 'x', globals: g }), /BUILD on a list is not allowed/);
  throwsLlama(() => unpickle(Buffer.from('\x80\x02\xff', 'latin1'), { what: 'x', globals: g }), /opcode 0xff is not supported/);
  throwsLlama(() => unpickle(Buffer.from('\x80\x02X\x10\x00\x00\x00ab', 'latin1'), { what: 'x', globals: g }), /pickle is truncated/);
});

test('unpickle: text-protocol opcodes, memo and containers', () => {
  // {'k': [1, 2.5, True]} from MARK, BINUNICODE, PUT, INT, FLOAT, LIST, DICT
  const p0 = Buffer.from('(X\x01\x00\x00\x00kp0\n(I1\nF2.5\nI01\nlp1\nd.', 'latin1');
  const v = unpickle(p0, { what: 'x', globals: new Map() }) as PyDict;
  assert.ok(v instanceof PyDict);
  assert.deepEqual(v.map.get('k'), [1, 2.5, true]);
  // ('k', 'k') through BINPUT / BINGET and TUPLE2; LONG1 of -1 and BININT2
  const memo = Buffer.from('\x80\x02X\x01\x00\x00\x00kq\x00h\x00\x86.', 'latin1');
  assert.deepEqual([...(unpickle(memo, { what: 'x', globals: new Map() }) as PyValue[])], ['k', 'k']);
  const ints = Buffer.from('\x80\x02\x8a\x01\xffM\x01\x02\x86.', 'latin1');
  assert.deepEqual([...(unpickle(ints, { what: 'x', globals: new Map() }) as PyValue[])], [-1, 0x0201]);
});

test('compressed entries, legacy files, odd storages and truncation are clear errors', () => {
  throwsLlama(() => openPth(join(MISC, 'compressed.pth')), /compressed\.pth: entry "small\/data\.pkl" is compressed \(method 8\); only stored entries/);
  throwsLlama(() => openPth(join(MISC, 'legacy.pth')), /legacy \(pre-PyTorch 1\.6\) torch\.save format/);
  throwsLlama(() => openPth(join(MISC, 'complex.pth')), /storage type torch\.ComplexFloatStorage is not supported/);
  const tmp = mkdtempSync(join(tmpdir(), 'pth-'));
  try {
    const whole = readFileSync(join(MISC, 'misc.pth'));
    const cut = join(tmp, 'cut.pth');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
    throwsLlama(() => openPth(cut), /cut\.pth: no zip end-of-central-directory record: the file is truncated or is not a zip archive/);
    throwsLlama(() => openPth(join(tmp, 'missing.pth')), /cannot open .*missing\.pth \(no such file\)/);
    copyFileSync(join(MISC, 'misc.pth'), join(tmp, 'x.pth'));
    writeFileSync(join(tmp, 'not-a-zip.pth'), 'hello world, not a checkpoint at all');
    throwsLlama(() => openPth(join(tmp, 'not-a-zip.pth')), /not-a-zip\.pth: no zip end-of-central-directory record/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('ZIP64 archives (written by Python zipfile with zip64 records forced) read the same', () => {
  const f = openPth(join(MISC, 'zip64.pth'));
  try {
    assert.deepEqual([...toFloat32(f.weight('w'))], [1, 2, 3]);
  } finally {
    f.close();
  }
});

test('unpickle: APPENDS of 300,000 items, str with a leading U+FEFF, latin-1 bytes 80..9F, hostile names escaped', () => {
  // PROTO 2, EMPTY_LIST, MARK, 300000 × BININT1 i%256, APPENDS, STOP
  const n = 300_000;
  const body = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) { body[2 * i] = 0x4b; body[2 * i + 1] = i % 256; }
  const list = unpickle(Buffer.concat([Buffer.from('\x80\x02](', 'latin1'), body, Buffer.from('e.', 'latin1')]), { what: 'x', globals: new Map() }) as number[];
  assert.equal(list.length, n);
  assert.equal(list[n - 1], (n - 1) % 256);
  // BINUNICODE "\ufeffa" (5 bytes) and SHORT_BINSTRING of bytes 0x80 0x9f, in a tuple
  const bom = Buffer.from('\ufeffa', 'utf8');
  const pkl = Buffer.concat([Buffer.from('\x80\x02X', 'latin1'), Buffer.from([bom.length, 0, 0, 0]), bom, Buffer.from('U\x02\x80\x9f\x86.', 'latin1')]);
  assert.deepEqual(unpickle(pkl, { what: 'x', globals: new Map() }), ['\ufeffa', '\u0080\u009f']);
  // a global whose name holds a newline-free control character and is very long
  const evil = Buffer.from(`\x80\x02cos\nsys\x1btem${'x'.repeat(5000)}\n.`, 'latin1');
  throwsLlama(() => unpickle(evil, { what: 'x', globals: new Map() }), /refusing to execute code from pickle: os\.sys\\x1btemx+…$/);
});
