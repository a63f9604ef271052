/**
 * Weight tensors as they come out of model files: raw bytes plus a dtype and a shape.
 *
 * Shapes are written in PyTorch order, outermost first: a linear weight is [out_features, in_features]
 * and rows (the last dim) are contiguous. GGUF lists dims the other way round (ne0 = contiguous);
 * its reader reverses them. Quantized types pack each row as whole blocks of `blockSize` values.
 *
 * The dtypes, their block layout and the scalar conversions live in dtype.ts (re-exported here); the
 * block *decoding* of the quantized ones lives in formats/quants.ts. Nothing here does math on whole
 * tensors; that is the backend's job.
 */
import { Llama2Error } from './util/errors.js';
import { dequantizeBlocks } from './formats/quants.js';
import { DTYPE_LAYOUT, f16Table, numel, type WeightTensor } from './dtype.js';

export * from './dtype.js';

// ---------------------------------------------------------------------------------------------
// decoding rows

/**
 * Decodes values [start, start+n) of `t` (flat, row-major) into dst[dstOff..]. For quantized
 * dtypes start and n must fall on block boundaries (whole rows always do).
 */
export function decodeRange(t: WeightTensor, start: number, n: number, dst: Float32Array, dstOff = 0): void {
  const d = t.data;
  switch (t.dtype) {
    case 'F32': {
      const byteOff = d.byteOffset + start * 4;
      if (byteOff % 4 === 0) {
        dst.set(new Float32Array(d.buffer, byteOff, n), dstOff);
      } else {
        const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
        for (let i = 0; i < n; i++) dst[dstOff + i] = dv.getFloat32((start + i) * 4, true);
      }
      return;
    }
    case 'F16': {
      const tab = f16Table();
      for (let i = 0, p = start * 2; i < n; i++, p += 2) dst[dstOff + i] = tab[d[p]! | (d[p + 1]! << 8)]!;
      return;
    }
    case 'BF16': {
      const u = new Uint32Array(1);
      const f = new Float32Array(u.buffer);
      for (let i = 0, p = start * 2; i < n; i++, p += 2) {
        u[0] = (d[p]! | (d[p + 1]! << 8)) << 16;
        dst[dstOff + i] = f[0]!;
      }
      return;
    }
    default: {
      const { blockSize, typeSize } = DTYPE_LAYOUT[t.dtype];
      if (start % blockSize !== 0 || n % blockSize !== 0) {
        throw new Llama2Error(`${t.dtype}: range [${start}, ${start + n}) does not fall on ${blockSize}-value blocks`);
      }
      dequantizeBlocks(t.dtype, d, (start / blockSize) * typeSize, n / blockSize, dst, dstOff);
    }
  }
}

/** The whole tensor as float32 (a copy unless it is an aligned F32 tensor). */
export function toFloat32(t: WeightTensor): Float32Array {
  const n = numel(t.shape);
  if (t.dtype === 'F32' && t.data.byteOffset % 4 === 0) return new Float32Array(t.data.buffer, t.data.byteOffset, n);
  const out = new Float32Array(n);
  decodeRange(t, 0, n, out, 0);
  return out;
}

/** Wraps a Float32Array as an F32 WeightTensor (no copy). */
export function f32Tensor(data: Float32Array, shape: readonly number[]): WeightTensor {
  if (data.length !== numel(shape)) {
    throw new Llama2Error(`tensor of shape [${shape.join(', ')}] needs ${numel(shape)} values, got ${data.length}`);
  }
  return { dtype: 'F32', shape: [...shape], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
