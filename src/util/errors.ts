/**
 * Errors for user mistakes (bad files, flags, values). The CLI prints these as one line, without a
 * stack trace; anything else reaching the top level is a bug and keeps its stack.
 *
 * A message names the file / field / flag, what was expected and what was found:
 *   `GGUF model.gguf: expected magic "GGUF" but found "ggjt"`
 */

export class Llama2Error extends Error {
  override readonly name = 'Llama2Error';
  constructor(message: string) {
    super(message);
  }
}

/** Throws a Llama2Error when `cond` is false. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new Llama2Error(typeof message === 'string' ? message : message());
}

/** Short description of a value for error messages. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  if (Array.isArray(v)) return `[${v.slice(0, 6).map(describe).join(', ')}${v.length > 6 ? ', ...' : ''}]`;
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}
