/** Small helpers shared by the benchmark scripts (not part of the package). */

/** n uniform values in [−0.5, 0.5) from a 32-bit LCG: the same data on every run and machine */
export function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}
