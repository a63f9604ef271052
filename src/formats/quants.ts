/**
 * ggml block quantization formats: decoding (and encoding, for the writer and tests).
 * Placeholder until the full set lands: only the entry point signature is fixed here.
 */
import type { DType } from '../tensor.js';
import { Llama2Error } from '../util/errors.js';

/**
 * Decodes `nBlocks` consecutive blocks of `dtype` starting at byte `srcOff` of `src` into
 * `dst[dstOff ..]` (blockSize values per block).
 */
export function dequantizeBlocks(
  dtype: DType, src: Uint8Array, srcOff: number, nBlocks: number, dst: Float32Array, dstOff: number,
): void {
  void src; void srcOff; void nBlocks; void dst; void dstOff;
  throw new Llama2Error(`dequantization of ${dtype} is not available yet`);
}
