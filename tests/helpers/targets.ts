/**
 * The backends a kernel conformance suite runs against: the reference backend (src/backend/ref.ts,
 * the spec) and the native addon at every ISA level this CPU supports, each with the given thread
 * counts. When the addon did not load there are no native targets, and a skipped test (plus a
 * notice on stdout) says why, so a missing build is visible in the report.
 */
import { test } from 'node:test';
import type { Backend } from '../../src/backend/types.js';
import { refBackend } from '../../src/backend/ref.js';
import { nativeBackend, nativeLoadError, type NativeIsa } from '../../src/backend/native.js';

export interface Target {
  name: string;
  be: Backend;
  /** selects the ISA and thread count (call in a `before` hook) */
  setup: () => void;
  isRef: boolean;
}

/** ref, then native/<isa>/<n>t for every supported ISA and each n of threads(isa, isLastIsa). */
export function kernelTargets(what: string, threads: (isa: NativeIsa, last: boolean) => number[]): Target[] {
  const targets: Target[] = [{ name: 'ref', be: refBackend, setup: () => {}, isRef: true }];
  const nb = nativeBackend;
  if (!nb) {
    console.log(`# NOTICE: native ${what} not tested — the addon did not load: ${nativeLoadError}`);
    test(`native ${what} (addon not loaded)`, { skip: `native addon not loaded: ${nativeLoadError}` }, () => {});
    return targets;
  }
  const isas = nb.supportedIsas();
  for (const isa of isas) {
    for (const th of threads(isa, isa === isas[isas.length - 1])) {
      targets.push({ name: `native/${isa}/${th}t`, be: nb, isRef: false, setup: () => { nb.setIsa(isa); nb.setThreads(th); } });
    }
  }
  return targets;
}
