/**
 * The q/k row permutation between Meta's and Hugging Face's Llama layouts.
 *
 * Meta's RoPE rotates interleaved pairs of a head's rows (2i, 2i+1); HF's rotate_half rotates
 * (i, i + HS/2). HF's converter (convert_llama_weights_to_hf.permute) reorders the rows of wq
 * (with n_heads) and wk (with n_kv_heads) so both compute the same thing:
 *
 *   hf = meta.view(NH, HS/2, 2, C).transpose(1, 2).reshape(NH*HS, C)
 *   i.e. hf row  h*HS + j*HS/2 + i  =  meta row  h*HS + 2*i + j   (j ∈ {0, 1}, i < HS/2)
 *
 * Rows move whole, as raw bytes, so any dtype (float or quantized) keeps its stored bytes.
 * This file only moves rows; it knows nothing about file names or configs.
 */
import { rowBytes, type WeightTensor } from '../tensor.js';
import { Llama2Error } from '../util/errors.js';

/** Meta → HF (what HF's converter does). `t`: (NH*HS, C). */
export function permuteQK(t: WeightTensor, nHeads: number): WeightTensor {
  return permuteRows(t, nHeads, true);
}

/** HF → Meta (undoes permuteQK). `t`: (NH*HS, C). */
export function unpermuteQK(t: WeightTensor, nHeads: number): WeightTensor {
  return permuteRows(t, nHeads, false);
}

function permuteRows(t: WeightTensor, nHeads: number, toHf: boolean): WeightTensor {
  const rows = t.shape[0] ?? 0;
  if (t.shape.length !== 2 || rows % (2 * nHeads) !== 0) {
    throw new Llama2Error(`q/k permutation: tensor of shape [${t.shape.join(', ')}] does not split into ${nHeads} heads of an even size`);
  }
  const hs = rows / nHeads;
  const half = hs / 2;
  const rb = rowBytes(t);
  const out = new Uint8Array(rows * rb);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const meta = h * hs + 2 * i + j;
        const hf = h * hs + j * half + i;
        const [src, dst] = toHf ? [meta, hf] : [hf, meta];
        out.set(t.data.subarray(src * rb, (src + 1) * rb), dst * rb);
      }
    }
  }
  return { dtype: t.dtype, shape: [...t.shape], data: out };
}
