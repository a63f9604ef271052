/** Seeded test data: the same numbers on every run and machine. */
import { uniform } from '../../src/util/rng.js';

/** uniform [0, 1) (the project's generator, src/util/rng.ts) */
export const rng = uniform;

/** n normal values (Box–Muller) times scale */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return out;
}
