/**
 * The segment starts of packed training rows (AttnShape.starts in types.ts): their validation,
 * shared by every backend's attentionTrain / attentionTrainBackward and by the training model, so
 * a bad array is one Llama2Error naming the position, never a wrong answer or a native fault.
 * Not here: building starts from sample lengths (src/train/model.ts packedLayout) or using them.
 *
 * Legend: B = rows, T = positions per row.
 */
import { Llama2Error } from '../util/errors.js';
import type { AttnShape } from './types.js';

/**
 * Throws a Llama2Error unless starts (B*T) is a valid segmentation: starts[b*T] = 0 and
 * starts[b*T + t] ∈ {starts[b*T + t − 1], t} (which also keeps every start within 0..t and
 * non-decreasing). `what` names the caller in the message.
 */
export function checkAttnStarts(starts: Int32Array, B: number, T: number, what: string): void {
  if (starts.length !== B * T) {
    throw new Llama2Error(`${what}: starts has ${starts.length} entries, expected B·T = ${B}·${T} = ${B * T}`);
  }
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      const st = starts[n]!;
      const prev = t === 0 ? 0 : starts[n - 1]!;
      if (st === prev || st === t) continue;
      const want = t === 0 ? '0 (every row begins a segment)'
        : `${prev} (continuing the segment of position ${t - 1}) or ${t} (a segment beginning here)`;
      throw new Llama2Error(`${what}: starts[${n}] (row ${b}, position ${t}) is ${st}, expected ${want}`);
    }
  }
}

/** Validates s.starts when present (see checkAttnStarts). */
export function checkAttnShapeStarts(s: AttnShape, what: string): void {
  if (s.starts) checkAttnStarts(s.starts, s.B, s.T, what);
}
