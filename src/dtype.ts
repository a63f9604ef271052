/**
 * Element types of weight tensors and their scalars: the dtype names, the ggml block layout of each
 * (values and bytes per block), the WeightTensor record (raw bytes + dtype + shape), sizes, and the
 * IEEE half / bfloat16 conversions — plus the rounding the ggml quantizers use.
 *
 * This is the bottom of the numeric modules: it imports nothing of the project but errors, so the
 * block codecs (formats/quants.ts, formats/quants-k.ts) and tensor.ts (which decodes whole tensors
 * through them) can all build on it without importing each other in a circle.
 */
import { Llama2Error } from './util/errors.js';

export type DType =
  | 'F32' | 'F16' | 'BF16'
  | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0'
  | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K';

/** Values per block and bytes per block (ggml's definitions). */
export const DTYPE_LAYOUT: Readonly<Record<DType, { blockSize: number; typeSize: number }>> = {
  F32: { blockSize: 1, typeSize: 4 },
  F16: { blockSize: 1, typeSize: 2 },
  BF16: { blockSize: 1, typeSize: 2 },
  Q4_0: { blockSize: 32, typeSize: 2 + 16 },
  Q4_1: { blockSize: 32, typeSize: 2 + 2 + 16 },
  Q5_0: { blockSize: 32, typeSize: 2 + 4 + 16 },
  Q5_1: { blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  Q8_0: { blockSize: 32, typeSize: 2 + 32 },
  Q2_K: { blockSize: 256, typeSize: 256 / 16 + 256 / 4 + 2 + 2 },
  Q3_K: { blockSize: 256, typeSize: 256 / 8 + 256 / 4 + 12 + 2 },
  Q4_K: { blockSize: 256, typeSize: 2 + 2 + 12 + 256 / 2 },
  Q5_K: { blockSize: 256, typeSize: 2 + 2 + 12 + 256 / 8 + 256 / 2 },
  Q6_K: { blockSize: 256, typeSize: 256 / 2 + 256 / 4 + 256 / 16 + 2 },
};

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_LAYOUT, s);
}

/** A weight as stored: `data` holds the raw bytes (little-endian), rows contiguous. */
export interface WeightTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Bytes needed for `n` values of `dtype` (n must be a whole number of blocks). */
export function byteSize(dtype: DType, n: number): number {
  const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
  if (n % blockSize !== 0) {
    throw new Llama2Error(`${dtype}: ${n} values is not a whole number of ${blockSize}-value blocks`);
  }
  return (n / blockSize) * typeSize;
}

/** Bytes per row of a 2-D (or N-D, last dim = row) tensor. */
export function rowBytes(t: WeightTensor): number {
  const cols = t.shape[t.shape.length - 1] ?? 1;
  return byteSize(t.dtype, cols);
}

// ---------------------------------------------------------------------------------------------
// half / bfloat16 scalars

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** IEEE half (as uint16 bits) → number. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 5.960464477539063e-8; // 2^-24
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** number → IEEE half bits, round to nearest even. */
export function f32ToF16(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

export function bf16ToF32(b: number): number {
  u32buf[0] = b << 16;
  return f32buf[0]!;
}

export function f32ToBf16(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Lookup table for all 65536 half values (built once, 256 KiB). */
let F16_TABLE: Float32Array | null = null;
export function f16Table(): Float32Array {
  if (!F16_TABLE) {
    F16_TABLE = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) F16_TABLE[i] = f16ToF32(i);
  }
  return F16_TABLE;
}

/** Rounds half away from zero (C's roundf, which ggml's quantizers use). */
export function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}
