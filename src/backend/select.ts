/**
 * Chooses the kernel backend for a run: the native addon when it loaded, else the reference
 * backend (with a one-line notice on stderr, once per process). LLAMA2_BACKEND=ref|native
 * forces one; forcing native when the addon is unavailable is an error that says why.
 * This file does not build or load anything itself (native.ts does).
 */
import { availableParallelism } from 'node:os';
import type { Backend } from './types.js';
import { refBackend } from './ref.js';
import { nativeBackend, nativeLoadError } from './native.js';
import { Llama2Error, check, describe } from '../util/errors.js';

export type BackendName = 'ref' | 'native';

export interface SelectOptions {
  /** Native thread-pool size; default os.availableParallelism(). Ignored by ref. */
  threads?: number;
}

let noticeShown = false;

/** The backend to use, honouring LLAMA2_BACKEND. */
export function selectBackend(opts: SelectOptions = {}): Backend {
  const env = process.env['LLAMA2_BACKEND'] ?? '';
  if (env !== '' && env !== 'ref' && env !== 'native') {
    throw new Llama2Error(`LLAMA2_BACKEND: expected "ref" or "native" but found ${describe(env)}`);
  }
  const threads = opts.threads ?? availableParallelism();
  check(Number.isInteger(threads) && threads >= 1 && threads <= 256,
    () => `threads: expected an integer from 1 to 256 but found ${describe(opts.threads)}`);
  if (env === 'ref') return refBackend;
  if (nativeBackend) {
    nativeBackend.setThreads(threads);
    return nativeBackend;
  }
  if (env === 'native') {
    throw new Llama2Error(`LLAMA2_BACKEND=native: the native addon is not available (${nativeLoadError}); build it with npm run build:native, or unset LLAMA2_BACKEND`);
  }
  if (!noticeShown) {
    noticeShown = true;
    process.stderr.write(`llama2: native backend unavailable (${nativeLoadError}); using the slower reference backend\n`);
  }
  return refBackend;
}
