/**
 * ggml block quantization: decoding every supported dtype to float32, and reference encoders.
 *
 * This file holds the entry points (dequantizeBlocks, quantizeRow, quantizeTensor) and the
 * 32-value "legacy" formats; the 256-value K-quants live in quants-k.ts. Layouts follow ggml's
 * definitions (ggml-common.h / ggml-quants.c), re-derived from the spec, all little-endian:
 *
 *   Q4_0  (18 B)  f16 d, u8 qs[16]            x[j] = (lo(qs[j]) - 8)·d,  x[j+16] = (hi(qs[j]) - 8)·d
 *   Q4_1  (20 B)  f16 d, f16 m, u8 qs[16]     x[j] = lo(qs[j])·d + m,    x[j+16] = hi(qs[j])·d + m
 *   Q5_0  (22 B)  f16 d, u8 qh[4], u8 qs[16]  5th bit of value j (j < 32) is bit j of the u32 qh;
 *                                             x = (q5 - 16)·d
 *   Q5_1  (24 B)  f16 d, f16 m, u8 qh[4], u8 qs[16]               x = q5·d + m
 *   Q8_0  (34 B)  f16 d, i8 qs[32]            x[j] = qs[j]·d
 *
 * The encoders are round-to-nearest like ggml's `quantize_row_*_ref` (same formulas, float32
 * intermediate rounding), so Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 output matches llama.cpp's reference
 * quantizer. They are not the importance-weighted (imatrix) quantizers. Inputs must be finite.
 *
 * Not here: GGUF parsing (gguf.ts), matmuls on quantized data (backends).
 */
import { DTYPE_LAYOUT, f16Table, f32ToBf16, f32ToF16, numel, roundHalfAway, type DType, type WeightTensor } from '../dtype.js';
import { Llama2Error } from '../util/errors.js';
import { dequantizeK, quantizeK, type KQuantDType } from './quants-k.js';

const fr = Math.fround;

/** Little-endian f16 at src[p] as a number (via the 64K lookup table). */
function f16At(tab: Float32Array, src: Uint8Array, p: number): number {
  return tab[src[p]! | (src[p + 1]! << 8)]!;
}

function putF16(dst: Uint8Array, p: number, v: number): void {
  const h = f32ToF16(v);
  dst[p] = h & 0xff;
  dst[p + 1] = h >> 8;
}

function isK(dtype: DType): dtype is KQuantDType {
  return dtype === 'Q2_K' || dtype === 'Q3_K' || dtype === 'Q4_K' || dtype === 'Q5_K' || dtype === 'Q6_K';
}

// ---------------------------------------------------------------------------------------------
// decoding

/**
 * Decodes `nBlocks` consecutive blocks of `dtype` starting at byte `srcOff` of `src` into
 * `dst[dstOff ..]` (blockSize values per block; for F32/F16/BF16 a block is one value).
 */
export function dequantizeBlocks(
  dtype: DType, src: Uint8Array, srcOff: number, nBlocks: number, dst: Float32Array, dstOff: number,
): void {
  const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
  if (srcOff < 0 || srcOff + nBlocks * typeSize > src.length) {
    throw new Llama2Error(`${dtype}: ${nBlocks} blocks at byte ${srcOff} run past the ${src.length}-byte buffer`);
  }
  if (dstOff < 0 || dstOff + nBlocks * blockSize > dst.length) {
    throw new Llama2Error(`${dtype}: ${nBlocks * blockSize} values at ${dstOff} do not fit a ${dst.length}-value output`);
  }
  if (isK(dtype)) {
    dequantizeK(dtype, src, srcOff, nBlocks, dst, dstOff);
    return;
  }
  const tab = f16Table();
  switch (dtype) {
    case 'F32': {
      const dv = new DataView(src.buffer, src.byteOffset + srcOff, nBlocks * 4);
      for (let i = 0; i < nBlocks; i++) dst[dstOff + i] = dv.getFloat32(i * 4, true);
      return;
    }
    case 'F16':
      for (let i = 0, p = srcOff; i < nBlocks; i++, p += 2) dst[dstOff + i] = f16At(tab, src, p);
      return;
    case 'BF16': {
      const u = new Uint32Array(1);
      const f = new Float32Array(u.buffer);
      for (let i = 0, p = srcOff; i < nBlocks; i++, p += 2) {
        u[0] = (src[p]! | (src[p + 1]! << 8)) << 16;
        dst[dstOff + i] = f[0]!;
      }
      return;
    }
    case 'Q4_0':
      for (let b = 0; b < nBlocks; b++) {
        const p = srcOff + b * 18;
        const o = dstOff + b * 32;
        const d = f16At(tab, src, p);
        for (let j = 0; j < 16; j++) {
          const q = src[p + 2 + j]!;
          dst[o + j] = ((q & 15) - 8) * d;
          dst[o + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return;
    case 'Q4_1':
      for (let b = 0; b < nBlocks; b++) {
        const p = srcOff + b * 20;
        const o = dstOff + b * 32;
        const d = f16At(tab, src, p);
        const m = f16At(tab, src, p + 2);
        for (let j = 0; j < 16; j++) {
          const q = src[p + 4 + j]!;
          dst[o + j] = (q & 15) * d + m;
          dst[o + j + 16] = (q >> 4) * d + m;
        }
      }
      return;
    case 'Q5_0':
    case 'Q5_1': {
      const hasMin = dtype === 'Q5_1';
      const size = hasMin ? 24 : 22;
      const hOff = hasMin ? 4 : 2;
      for (let b = 0; b < nBlocks; b++) {
        const p = srcOff + b * size;
        const o = dstOff + b * 32;
        const d = f16At(tab, src, p);
        const m = hasMin ? f16At(tab, src, p + 2) : 0;
        const bias = hasMin ? 0 : -16;
        const qh = (src[p + hOff]! | (src[p + hOff + 1]! << 8) | (src[p + hOff + 2]! << 16) | (src[p + hOff + 3]! << 24)) >>> 0;
        for (let j = 0; j < 16; j++) {
          const q = src[p + hOff + 4 + j]!;
          const lo = (q & 15) | (((qh >>> j) & 1) << 4);
          const hi = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
          dst[o + j] = (lo + bias) * d + m;
          dst[o + j + 16] = (hi + bias) * d + m;
        }
      }
      return;
    }
    case 'Q8_0':
      for (let b = 0; b < nBlocks; b++) {
        const p = srcOff + b * 34;
        const o = dstOff + b * 32;
        const d = f16At(tab, src, p);
        for (let j = 0; j < 32; j++) dst[o + j] = ((src[p + 2 + j]! << 24) >> 24) * d;
      }
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// encoding (ggml's reference round-to-nearest quantizers)

function quantQ4_0(x: Float32Array, xo: number, nb: number, y: Uint8Array, yo: number): void {
  for (let b = 0; b < nb; b++, xo += 32, yo += 18) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j]!;
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    putF16(y, yo, d);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.max(0, Math.min(15, Math.trunc(fr(fr(x[xo + j]! * id) + 8.5))));
      const q1 = Math.max(0, Math.min(15, Math.trunc(fr(fr(x[xo + j + 16]! * id) + 8.5))));
      y[yo + 2 + j] = q0 | (q1 << 4);
    }
  }
}

function quantQ4_1(x: Float32Array, xo: number, nb: number, y: Uint8Array, yo: number): void {
  for (let b = 0; b < nb; b++, xo += 32, yo += 20) {
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr((max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    putF16(y, yo, d);
    putF16(y, yo + 2, min);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(fr(x[xo + j]! - min) * id) + 0.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(fr(x[xo + j + 16]! - min) * id) + 0.5)));
      y[yo + 4 + j] = q0 | (q1 << 4);
    }
  }
}

/** Q5_0 (hasMin false: d = signed max / -16, q = x/d + 16) or Q5_1 (d = (max-min)/31, m = min). */
function quantQ5(x: Float32Array, xo: number, nb: number, y: Uint8Array, yo: number, hasMin: boolean): void {
  const size = hasMin ? 24 : 22;
  const hOff = hasMin ? 4 : 2;
  for (let b = 0; b < nb; b++, xo += 32, yo += size) {
    let d: number;
    let base: number; // value subtracted before scaling
    let add: number; // added after scaling, before truncation
    if (hasMin) {
      let min = Infinity;
      let max = -Infinity;
      for (let j = 0; j < 32; j++) {
        const v = x[xo + j]!;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      d = fr((max - min) / 31);
      base = min;
      add = 0.5;
      putF16(y, yo + 2, min);
    } else {
      let amax = 0;
      let max = 0;
      for (let j = 0; j < 32; j++) {
        const v = x[xo + j]!;
        if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
      }
      d = fr(max / -16);
      base = 0;
      add = 16.5;
    }
    const id = d ? fr(1 / d) : 0;
    putF16(y, yo, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.max(0, Math.min(31, Math.trunc(fr(fr(fr(x[xo + j]! - base) * id) + add))));
      const q1 = Math.max(0, Math.min(31, Math.trunc(fr(fr(fr(x[xo + j + 16]! - base) * id) + add))));
      y[yo + hOff + 4 + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 >> 4) << j) | ((q1 >> 4) << (j + 16));
    }
    y[yo + hOff] = qh & 0xff;
    y[yo + hOff + 1] = (qh >>> 8) & 0xff;
    y[yo + hOff + 2] = (qh >>> 16) & 0xff;
    y[yo + hOff + 3] = (qh >>> 24) & 0xff;
  }
}

function quantQ8_0(x: Float32Array, xo: number, nb: number, y: Uint8Array, yo: number): void {
  for (let b = 0; b < nb; b++, xo += 32, yo += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    putF16(y, yo, d);
    for (let j = 0; j < 32; j++) y[yo + 2 + j] = roundHalfAway(fr(x[xo + j]! * id)) & 0xff;
  }
}

/**
 * Encodes src[srcOff .. srcOff+n) as `dtype` into dst[dstOff ..]. n must be a whole number of
 * blocks. K-quants use a simple min/max scale search (see quants-k.ts), not ggml's iterative one.
 */
export function quantizeRow(
  dtype: DType, src: Float32Array, srcOff: number, n: number, dst: Uint8Array, dstOff: number,
): void {
  const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
  if (n % blockSize !== 0) {
    throw new Llama2Error(`${dtype}: cannot quantize ${n} values: not a whole number of ${blockSize}-value blocks`);
  }
  const nb = n / blockSize;
  if (srcOff < 0 || srcOff + n > src.length) throw new Llama2Error(`${dtype}: ${n} input values at ${srcOff} run past the ${src.length}-value input`);
  if (dstOff < 0 || dstOff + nb * typeSize > dst.length) {
    throw new Llama2Error(`${dtype}: ${nb * typeSize} output bytes at ${dstOff} do not fit a ${dst.length}-byte buffer`);
  }
  if (isK(dtype)) {
    quantizeK(dtype, src, srcOff, nb, dst, dstOff);
    return;
  }
  switch (dtype) {
    case 'F32': {
      const dv = new DataView(dst.buffer, dst.byteOffset + dstOff, n * 4);
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, src[srcOff + i]!, true);
      return;
    }
    case 'F16':
      for (let i = 0; i < n; i++) putF16(dst, dstOff + 2 * i, src[srcOff + i]!);
      return;
    case 'BF16':
      for (let i = 0; i < n; i++) {
        const h = f32ToBf16(src[srcOff + i]!);
        dst[dstOff + 2 * i] = h & 0xff;
        dst[dstOff + 2 * i + 1] = h >> 8;
      }
      return;
    case 'Q4_0': quantQ4_0(src, srcOff, nb, dst, dstOff); return;
    case 'Q4_1': quantQ4_1(src, srcOff, nb, dst, dstOff); return;
    case 'Q5_0': quantQ5(src, srcOff, nb, dst, dstOff, false); return;
    case 'Q5_1': quantQ5(src, srcOff, nb, dst, dstOff, true); return;
    case 'Q8_0': quantQ8_0(src, srcOff, nb, dst, dstOff); return;
  }
}

/**
 * Converts a float32 tensor (row-major, PyTorch shape order) to `dtype`. The row length (last
 * dim) must be a whole number of blocks, so every row starts on a block.
 */
export function quantizeTensor(dtype: DType, f32: Float32Array, shape: readonly number[]): WeightTensor {
  const n = numel(shape);
  if (f32.length !== n) throw new Llama2Error(`quantize ${dtype}: shape [${shape.join(', ')}] needs ${n} values, got ${f32.length}`);
  const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
  const cols = shape[shape.length - 1] ?? 1;
  if (cols % blockSize !== 0) {
    throw new Llama2Error(`quantize ${dtype}: row length ${cols} of shape [${shape.join(', ')}] is not a multiple of the ${blockSize}-value block`);
  }
  const data = new Uint8Array((n / blockSize) * typeSize);
  quantizeRow(dtype, f32, 0, n, data, 0);
  return { dtype, shape: [...shape], data };
}
