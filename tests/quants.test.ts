// Block decoding of every ggml quantization type against values derived from the format
// definitions, and quantize → dequantize error bounds for the encoders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dequantizeBlocks, quantizeRow, quantizeTensor } from '../src/formats/quants.js';
import { DTYPE_LAYOUT, f16ToF32, f32ToF16, toFloat32, type DType } from '../src/tensor.js';
import { Llama2Error } from '../src/util/errors.js';

// ---------------------------------------------------------------------------------------------
// helpers

/** Deterministic uniform [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function normals(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()) * scale;
  return out;
}
function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}
function setF16(b: Uint8Array, p: number, v: number): void {
  const h = f32ToF16(v);
  b[p] = h & 0xff;
  b[p + 1] = h >> 8;
}
function decode(dtype: DType, block: Uint8Array): Float32Array {
  const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
  const n = block.length / typeSize;
  const out = new Float32Array(n * blockSize);
  dequantizeBlocks(dtype, block, 0, n, out, 0);
  return out;
}
/** Asserts exact equality (as float32) and prints the first mismatches. */
function assertValues(got: Float32Array, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const bad: string[] = [];
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== Math.fround(want[i]!)) bad.push(`[${i}] got ${got[i]} want ${want[i]}`);
  }
  assert.ok(bad.length === 0, `${what}: ${bad.length} mismatches, first: ${bad.slice(0, 5).join('; ')}`);
}
const u8 = (x: number) => x & 0xff;
const i8 = (x: number) => (x << 24) >> 24;

// ---------------------------------------------------------------------------------------------
// 32-value formats: hand-built blocks

test('Q4_0: (nibble − 8)·d, low nibbles first, nibble 0 → −8d and 15 → 7d', () => {
  const b = new Uint8Array(18);
  setF16(b, 0, 0.5);
  for (let j = 0; j < 16; j++) b[2 + j] = j | ((15 - j) << 4);
  const want = [...Array(32)].map((_, i) => (i < 16 ? i - 8 : 15 - (i - 16) - 8) * 0.5);
  assertValues(decode('Q4_0', b), want, 'Q4_0');
  const y = decode('Q4_0', b);
  assert.equal(y[0], -4); // nibble 0
  assert.equal(y[15], 3.5); // nibble 15
  assert.equal(y[16], 3.5); // high nibble 15
  assert.equal(y[31], -4);
});

test('Q4_1: nibble·d + m', () => {
  const b = new Uint8Array(20);
  setF16(b, 0, 0.25);
  setF16(b, 2, -1);
  for (let j = 0; j < 16; j++) b[4 + j] = j | ((15 - j) << 4);
  const want = [...Array(32)].map((_, i) => (i < 16 ? i : 31 - i) * 0.25 - 1);
  assertValues(decode('Q4_1', b), want, 'Q4_1');
  assert.equal(decode('Q4_1', b)[15], 2.75);
});

test('Q5_0 / Q5_1: 5th bit of value j is bit j of qh (LE u32)', () => {
  const qh = 0xf0f0_0ff1 >>> 0;
  for (const dtype of ['Q5_0', 'Q5_1'] as const) {
    const withMin = dtype === 'Q5_1';
    const b = new Uint8Array(withMin ? 24 : 22);
    const h = withMin ? 4 : 2;
    setF16(b, 0, 0.5);
    if (withMin) setF16(b, 2, 3);
    new DataView(b.buffer).setUint32(h, qh, true);
    for (let j = 0; j < 16; j++) b[h + 4 + j] = (j * 7) % 16 | ((15 - j) << 4);
    const want = [...Array(32)].map((_, i) => {
      const nib = i < 16 ? (i * 7) % 16 : 15 - (i - 16);
      const q = nib + 16 * ((qh >>> i) & 1);
      return withMin ? q * 0.5 + 3 : (q - 16) * 0.5;
    });
    assertValues(decode(dtype, b), want, dtype);
  }
  // literal corners of Q5_0: value 0 has nibble 0 and bit 1 → 0; value 1 nibble 7, bit 0 → (7 − 16)/2
  const b = new Uint8Array(22);
  setF16(b, 0, 0.5);
  new DataView(b.buffer).setUint32(2, 0x8000_0001, true);
  b[2 + 4 + 0] = 0xf0; // value 0: nibble 0; value 16: nibble 15
  b[2 + 4 + 15] = 0xff; // value 15: nibble 15 (bit 0); value 31: nibble 15 (bit 1)
  const y = decode('Q5_0', b);
  assert.equal(y[0], 0);
  assert.equal(y[16], (15 - 16) * 0.5);
  assert.equal(y[15], (15 - 16) * 0.5);
  assert.equal(y[31], (31 - 16) * 0.5);
  assert.equal(y[1], -8); // nibble 0, bit 0 → −16·d
});

test('Q8_0: signed int8 · d', () => {
  const b = new Uint8Array(34);
  setF16(b, 0, 0.25);
  for (let j = 0; j < 32; j++) b[2 + j] = u8(j * 8 - 128);
  assertValues(decode('Q8_0', b), [...Array(32)].map((_, j) => (j * 8 - 128) * 0.25), 'Q8_0');
});

// ---------------------------------------------------------------------------------------------
// K-quants: random blocks against decoders written in the shape of ggml's loops

const f16 = (b: Uint8Array, p: number) => f16ToF32(b[p]! | (b[p + 1]! << 8));

function refQ2K(b: Uint8Array): number[] {
  const y: number[] = [];
  const d = f16(b, 80), dmin = f16(b, 82);
  let is = 0;
  for (let n = 0; n < 2; n++) {
    const q = 16 + 32 * n;
    for (let shift = 0; shift < 8; shift += 2) {
      for (const half of [0, 16]) {
        const sc = b[is++]!;
        for (let l = 0; l < 16; l++) y.push(d * (sc & 15) * ((b[q + half + l]! >> shift) & 3) - dmin * (sc >> 4));
      }
    }
  }
  return y;
}

function refQ3K(b: Uint8Array): number[] {
  // 16 scales of 6 bits: low 4 bits from bytes 0..7 (low nibbles for 0-7, high for 8-15),
  // high 2 bits from bytes 8..11 (scale i: byte 8 + i%4, bit pair i/4)
  const s: number[] = [];
  for (let i = 0; i < 16; i++) {
    const low = i < 8 ? b[96 + i]! & 15 : b[96 + i - 8]! >> 4;
    s.push((low | (((b[96 + 8 + (i % 4)]! >> (2 * Math.floor(i / 4))) & 3) << 4)) - 32);
  }
  const d = f16(b, 108);
  const y: number[] = [];
  let is = 0, m = 1;
  for (let n = 0; n < 2; n++) {
    for (let shift = 0; shift < 8; shift += 2, m <<= 1) {
      for (const half of [0, 16]) {
        const dl = d * s[is++]!;
        for (let l = 0; l < 16; l++) {
          const q = (b[32 + 32 * n + half + l]! >> shift) & 3;
          y.push(dl * (q - (b[half + l]! & m ? 0 : 4)));
        }
      }
    }
  }
  return y;
}

function scaleMin(q: Uint8Array, j: number): [number, number] {
  return j < 4
    ? [q[4 + j]! & 63, q[4 + j + 4]! & 63]
    : [(q[4 + j + 4]! & 0xf) | ((q[4 + j - 4]! >> 6) << 4), (q[4 + j + 4]! >> 4) | ((q[4 + j]! >> 6) << 4)];
}

function refQ45K(b: Uint8Array, five: boolean): number[] {
  const d = f16(b, 0), dmin = f16(b, 2);
  const qs = five ? 48 : 16;
  const y: number[] = [];
  let u1 = 1, u2 = 2;
  for (let j = 0, is = 0; j < 256; j += 64, is += 2, u1 <<= 2, u2 <<= 2) {
    const [sc1, m1] = scaleMin(b, is);
    const [sc2, m2] = scaleMin(b, is + 1);
    const ql = qs + j / 2;
    for (let l = 0; l < 32; l++) y.push(d * sc1 * ((b[ql + l]! & 15) + (five && b[16 + l]! & u1 ? 16 : 0)) - dmin * m1);
    for (let l = 0; l < 32; l++) y.push(d * sc2 * ((b[ql + l]! >> 4) + (five && b[16 + l]! & u2 ? 16 : 0)) - dmin * m2);
  }
  return y;
}

function refQ6K(b: Uint8Array): number[] {
  const d = f16(b, 208);
  const y = new Array<number>(256);
  for (let n = 0; n < 2; n++) {
    const ql = 64 * n, qh = 128 + 32 * n, sc = 192 + 8 * n;
    for (let l = 0; l < 32; l++) {
      const is = Math.floor(l / 16);
      const q1 = ((b[ql + l]! & 15) | (((b[qh + l]! >> 0) & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32]! & 15) | (((b[qh + l]! >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l]! >> 4) | (((b[qh + l]! >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32]! >> 4) | (((b[qh + l]! >> 6) & 3) << 4)) - 32;
      y[128 * n + l] = d * i8(b[sc + is]!) * q1;
      y[128 * n + l + 32] = d * i8(b[sc + is + 2]!) * q2;
      y[128 * n + l + 64] = d * i8(b[sc + is + 4]!) * q3;
      y[128 * n + l + 96] = d * i8(b[sc + is + 6]!) * q4;
    }
  }
  return y;
}

const K_REFS: [DType, number[], (b: Uint8Array) => number[]][] = [
  ['Q2_K', [80, 82], refQ2K],
  ['Q3_K', [108], refQ3K],
  ['Q4_K', [0, 2], (b) => refQ45K(b, false)],
  ['Q5_K', [0, 2], (b) => refQ45K(b, true)],
  ['Q6_K', [208], refQ6K],
];

test('K-quants: random blocks decode like the spec-shaped loops (all bits exercised)', () => {
  for (const [dtype, dAt, ref] of K_REFS) {
    const size = DTYPE_LAYOUT[dtype].typeSize;
    for (let seed = 1; seed <= 20; seed++) {
      const b = randomBytes(size, seed * 31 + size);
      dAt.forEach((p, k) => setF16(b, p, (k === 0 ? 0.01 : 0.003) * (1 + (seed % 5)))); // sane f16 scales
      assertValues(decode(dtype, b), ref(b), `${dtype} seed ${seed}`);
    }
  }
});

test('K-quants: hand-computed corner values', () => {
  // Q2_K: scale byte 15 = 0xF7 → sub-block 15 has sc 7, min 15; value 255 = plane 3 of qs[32 + 31]
  {
    const b = new Uint8Array(84);
    setF16(b, 80, 0.5);
    setF16(b, 82, 0.25);
    b[15] = 0xf7;
    b[16 + 63] = 0b11_00_00_00;
    const y = decode('Q2_K', b);
    assert.equal(y[255], 0.5 * 7 * 3 - 0.25 * 15);
    assert.equal(y[254], -0.25 * 15); // q = 0
  }
  // Q3_K: scale 0 stored 33 (low 1, high 2) → +1; scale 15 stored 63 → +31; hmask bit set → no −4
  {
    const b = new Uint8Array(110);
    setF16(b, 108, 1);
    b[96 + 0] = 0x01; // scale 0 low nibble
    b[96 + 8] = 0x02 | 0xc0; // scale 0 high bits = 2, scale 12 (i=12 → bits 6-7 of byte 8) = 3
    b[96 + 7] = 0xf0; // scale 15 low nibble (high nibble of byte 7)
    b[96 + 11] = 0xc0; // scale 15 high bits
    b[32 + 0] = 3; // value 0: low bits 3
    b[32 + 1] = 3; // value 1: low bits 3
    b[0] = 0x01; // value 0: hmask bit 0 set; value 1 not
    b[32 + 32 + 31] = 0b10_00_00_00; // value 255 (half 1, plane 3, l 31): low bits 2
    b[31] = 0x80; // value 255: hmask bit 4·1 + 3 = 7
    const y = decode('Q3_K', b);
    assert.equal(y[0], 3);
    assert.equal(y[1], -1);
    assert.equal(y[2], -4);
    assert.equal(y[255], 31 * 2);
    assert.equal(y[192], 16 * -4); // scale 12: low 0, high bits 3 (byte 8, bits 6-7) → 48 − 32; q = 0 − 4
  }
  // Q4_K: sub-block 6 uses the packed path (scale index ≥ 4): sc = (q[10] & 15) | (q[2] >> 6) << 4
  {
    const b = new Uint8Array(144);
    setF16(b, 0, 1);
    setF16(b, 2, 0.5);
    b[4 + 2] = 0xc0 | 5; // sub-block 2: sc 5; top bits 3 → sub-block 6 sc bits 4-5
    b[4 + 6] = 0x40 | 9; // sub-block 2: m 9; top bits 1 → sub-block 6 m bits 4-5
    b[4 + 10] = 0x21; // sub-block 6: sc low 1, m low 2
    b[16 + 32 * 3 + 0] = 0x0f; // value 192 (sub-block 6, first) nibble 15; value 224 nibble 0
    b[16 + 32 * 1 + 0] = 0x03; // value 64 (sub-block 2) nibble 3
    const y = decode('Q4_K', b);
    assert.equal(y[192], 1 * (1 | (3 << 4)) * 15 - 0.5 * (2 | (1 << 4)));
    assert.equal(y[64], 5 * 3 - 0.5 * 9);
    assert.equal(y[224], 0); // sub-block 7: scale and min 0
  }
  // Q5_K: qh bit 2c / 2c+1 of qh[l] adds 16 to quarter c's low / high nibble
  {
    const b = new Uint8Array(176);
    setF16(b, 0, 1);
    b[4 + 0] = 1; // sc of sub-block 0 = 1, m 0
    b[4 + 1] = 2; // sc of sub-block 1 = 2
    b[16 + 5] = 0b11; // qh[5]: bits for values 5 and 37
    b[48 + 5] = 0xff; // nibbles 15, 15
    const y = decode('Q5_K', b);
    assert.equal(y[5], 31);
    assert.equal(y[37], 62);
    assert.equal(y[6], 0);
  }
  // Q6_K: negative int8 scale; q 63 → 31, q 0 → −32
  {
    const b = new Uint8Array(210);
    setF16(b, 208, 0.5);
    b[192 + 15] = u8(-3);
    b[64 + 32 + 31] = 0xf0; // value 255: high nibble of ql[64 + 32 + 31]
    b[128 + 32 + 31] = 0xc0; // value 255: qh bits 6-7
    const y = decode('Q6_K', b);
    assert.equal(y[255], 0.5 * -3 * 31);
    assert.equal(y[254], 0.5 * -3 * -32);
    assert.ok(y[0] === 0, `value 0 is ${y[0]}`); // scale 0 (−0 is fine)
  }
});

test('dequantizeBlocks: offsets and bounds', () => {
  const b = new Uint8Array(3 * 34);
  for (let k = 0; k < 3; k++) {
    setF16(b, 34 * k, k + 1);
    b[34 * k + 2] = 1;
  }
  const out = new Float32Array(70);
  dequantizeBlocks('Q8_0', b, 34, 2, out, 6);
  assert.equal(out[6], 2);
  assert.equal(out[38], 3);
  assert.equal(out[5], 0);
  assert.throws(() => dequantizeBlocks('Q8_0', b, 34, 3, out, 0), Llama2Error);
  assert.throws(() => dequantizeBlocks('Q8_0', b, 0, 3, new Float32Array(64), 0), Llama2Error);
});

// ---------------------------------------------------------------------------------------------
// encoders

test('legacy quantizers reproduce values that lie on their grid exactly', () => {
  const d = 0.125;
  const levels = (lo: number, hi: number) => [...Array(32)].map((_, i) => lo + (i % (hi - lo + 1)));
  const cases: [DType, number[]][] = [
    ['Q4_0', levels(-8, 7).map((q) => q * d)], // −8d is the extreme → d = −8d / −8
    ['Q5_0', levels(-16, 15).map((q) => q * d)],
    ['Q8_0', levels(-127, 127).map((q, i) => (i === 0 ? 127 : q) * d)],
    ['Q4_1', levels(0, 15).map((q) => q * d - 1)],
    ['Q5_1', levels(0, 31).map((q) => q * d + 0.5)],
  ];
  for (const [dtype, xs] of cases) {
    const x = Float32Array.from(xs);
    const t = quantizeTensor(dtype, x, [1, 32]);
    assertValues(toFloat32(t), x, dtype);
  }
});

test('Q4_0 encoder matches ggml reference rounding on a known block', () => {
  // max |x| = −4 → d = 0.5, id = 2; q = min(15, trunc(x·2 + 8.5))
  const x = Float32Array.from([...Array(32)].map((_, i) => (i - 8) * 0.3).map((v, i) => (i === 0 ? -4 : Math.max(-4, Math.min(3.9, v)))));
  const t = quantizeTensor('Q4_0', x, [32]);
  assert.equal(f16ToF32(t.data[0]! | (t.data[1]! << 8)), 0.5);
  for (let j = 0; j < 32; j++) {
    const want = Math.min(15, Math.trunc(Math.fround(x[j]! * 2) + 8.5));
    const got = j < 16 ? t.data[2 + j]! & 15 : t.data[2 + j - 16]! >> 4;
    assert.equal(got, want, `value ${j} (${x[j]})`);
  }
});

/**
 * Max |error| allowed per block, as a fraction of one quantization step of that block. The step
 * is (max − min)/levels for the asymmetric types and max|x|/half-levels for the symmetric ones;
 * the extra is f16 scale rounding and (for K-quants) the 4/6/8-bit rounding of sub-block scales.
 */
const STEP_TOLERANCE: Record<Exclude<DType, 'F32' | 'F16' | 'BF16'>, number> = {
  Q4_0: 1.0, Q5_0: 1.0, // the value opposite the extreme may clamp one step short
  Q8_0: 0.57, // 0.5 + 127·2^-11 (f16 d)
  Q4_1: 0.55, Q5_1: 0.55,
  // K-quants, measured against the super-block's step (sub-blocks are finer)
  Q2_K: 0.6, Q3_K: 0.85, Q4_K: 0.6, Q5_K: 0.6, Q6_K: 0.6,
};
function stepOf(dtype: DType, x: Float32Array): number {
  let mn = 0, mx = 0, amax = 0;
  for (const v of x) { mn = Math.min(mn, v); mx = Math.max(mx, v); amax = Math.max(amax, Math.abs(v)); }
  switch (dtype) {
    case 'Q4_0': return amax / 8;
    case 'Q5_0': return amax / 16;
    case 'Q8_0': return amax / 127;
    case 'Q4_1': return (Math.max(...x) - Math.min(...x)) / 15;
    case 'Q5_1': return (Math.max(...x) - Math.min(...x)) / 31;
    case 'Q2_K': return (mx - mn) / 3;
    case 'Q3_K': return amax / 4;
    case 'Q4_K': return (mx - mn) / 15;
    case 'Q5_K': return (mx - mn) / 31;
    case 'Q6_K': return amax / 32;
    default: return 0;
  }
}

test('quantize → dequantize error stays within a step of each block', () => {
  const n = 4 * 256;
  const inputs: [string, Float32Array][] = [
    ['normal', normals(n, 7, 0.02)],
    ['shifted', normals(n, 8, 0.02).map((v) => v + 0.05)],
    ['heavy-tailed', normals(n, 9, 0.02).map((v, i) => (i % 97 === 0 ? v * 20 : v))],
    ['zeros', new Float32Array(n)],
  ];
  for (const dtype of Object.keys(STEP_TOLERANCE) as (keyof typeof STEP_TOLERANCE)[]) {
    const { blockSize } = DTYPE_LAYOUT[dtype];
    for (const [name, x] of inputs) {
      const y = toFloat32(quantizeTensor(dtype, x, [4, 256]));
      let worst = 0;
      let where = -1;
      for (let b = 0; b < n / blockSize; b++) {
        const xs = x.subarray(b * blockSize, (b + 1) * blockSize);
        const step = stepOf(dtype, xs);
        for (let i = 0; i < blockSize; i++) {
          const err = Math.abs(y[b * blockSize + i]! - xs[i]!);
          const ratio = step > 0 ? err / step : err > 0 ? Infinity : 0;
          if (ratio > worst) { worst = ratio; where = b * blockSize + i; }
        }
      }
      assert.ok(worst <= STEP_TOLERANCE[dtype], `${dtype} ${name}: max error ${worst.toFixed(3)} steps at ${where} (x ${x[where]}, got ${y[where]})`);
    }
  }
});

test('quantize → dequantize: RMS error near the uniform-rounding ideal', () => {
  // RMS of a round-to-nearest error is step/√12 ≈ 0.29 step; allow up to 0.45 step
  const RMS_TOLERANCE = 0.45;
  const x = normals(16 * 256, 11, 1);
  for (const dtype of Object.keys(STEP_TOLERANCE) as (keyof typeof STEP_TOLERANCE)[]) {
    const { blockSize } = DTYPE_LAYOUT[dtype];
    const y = toFloat32(quantizeTensor(dtype, x, [16, 256]));
    let se = 0, steps = 0;
    for (let b = 0; b < x.length / blockSize; b++) {
      const xs = x.subarray(b * blockSize, (b + 1) * blockSize);
      const step = stepOf(dtype, xs);
      for (let i = 0; i < blockSize; i++) se += (y[b * blockSize + i]! - xs[i]!) ** 2;
      steps += step * step * blockSize;
    }
    const rel = Math.sqrt(se / steps);
    assert.ok(rel <= RMS_TOLERANCE, `${dtype}: RMS error ${rel.toFixed(3)} steps`);
  }
});

test('F16 / BF16 / F32 conversions through quantizeTensor', () => {
  const x = normals(64, 3);
  assertValues(toFloat32(quantizeTensor('F32', x, [2, 32])), x, 'F32');
  const h = toFloat32(quantizeTensor('F16', x, [2, 32]));
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(h[i]! - x[i]!) <= Math.abs(x[i]!) * 2 ** -11 + 1e-7, `F16 [${i}]`);
  const bf = toFloat32(quantizeTensor('BF16', x, [2, 32]));
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(bf[i]! - x[i]!) <= Math.abs(x[i]!) * 2 ** -8, `BF16 [${i}]`);
});

test('quantizers reject rows that are not whole blocks', () => {
  assert.throws(() => quantizeTensor('Q4_K', new Float32Array(288), [1, 288]), (e: unknown) => e instanceof Llama2Error && /288.*256/.test(e.message));
  assert.throws(() => quantizeTensor('Q8_0', new Float32Array(10), [1, 32]), Llama2Error);
  assert.throws(() => quantizeRow('Q4_0', new Float32Array(48), 0, 48, new Uint8Array(100), 0), Llama2Error);
  assert.throws(() => quantizeRow('Q4_0', new Float32Array(64), 0, 64, new Uint8Array(20), 0), Llama2Error);
});
