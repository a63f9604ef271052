/**
 * The learning-rate schedule of the Llama 2 paper: linear warm-up, then cosine decay to a fraction
 * of the peak (10% in the paper), then constant. A pure function of the step; no state.
 */
import { Llama2Error } from '../util/errors.js';

export interface ScheduleOptions {
  /** peak learning rate, reached at the end of warm-up */
  peak: number;
  /** warm-up steps (0: start at the peak) */
  warmup: number;
  /** step at which the cosine reaches the floor (≥ warmup) */
  total: number;
  /** floor as a fraction of peak; default 0.1 */
  minRatio?: number;
}

/**
 * Learning rate for 0-based `step`:
 *   step < warmup:          peak·(step + 1)/warmup
 *   warmup ≤ step < total:  floor + (peak − floor)·(1 + cos(π·(step − warmup)/(total − warmup)))/2
 *   step ≥ total:           floor                      (floor = minRatio·peak)
 */
export function lrAt(step: number, o: ScheduleOptions): number {
  const minRatio = o.minRatio ?? 0.1;
  if (!(o.peak >= 0) || !(o.warmup >= 0) || !(o.total >= o.warmup) || !(minRatio >= 0 && minRatio <= 1)) {
    throw new Llama2Error(
      `lr schedule: need peak ≥ 0, warmup ≥ 0, total ≥ warmup and 0 ≤ minRatio ≤ 1; found peak ${o.peak}, warmup ${o.warmup}, total ${o.total}, minRatio ${minRatio}`,
    );
  }
  const floor = minRatio * o.peak;
  if (step < o.warmup) return (o.peak * (step + 1)) / o.warmup;
  if (step >= o.total) return floor;
  const r = (step - o.warmup) / (o.total - o.warmup);
  return floor + ((o.peak - floor) * (1 + Math.cos(Math.PI * r))) / 2;
}
