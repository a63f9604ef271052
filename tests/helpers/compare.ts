/**
 * Element-wise comparison for the backend and kernel conformance suites: an assertion that prints
 * the first mismatches and the largest error, and the max |x| that tolerances are scaled by.
 * Not the oracle metrics (those are in oracle-metrics.ts).
 */
import assert from 'node:assert/strict';

/** max |x[i]| (0 for an empty array) */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** Asserts |got[i] − want[i]| ≤ tol(i) everywhere; on failure prints the first mismatches and the max error. */
export function expectClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const bad: string[] = [];
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tol(i))) {
      if (bad.length < 5) bad.push(`[${i}] got ${got[i]} want ${want[i]} (err ${err.toExponential(2)}, tol ${tol(i).toExponential(2)})`);
      if (!(err <= worst)) { worst = err; worstAt = i; }
    }
  }
  if (bad.length) assert.fail(`${what}: ${bad.length}+ mismatches, max err ${worst} at ${worstAt}\n  ${bad.join('\n  ')}`);
}
