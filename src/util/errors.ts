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

/** Most characters of file content that `quote` shows. */
export const QUOTE_MAX_CHARS = 80;

/** Characters `quote` escapes: controls (C0, DEL, C1), invisible and line-breaking format
 * characters, lone surrogates, and the quote and backslash. */
const UNPRINTABLE =
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const QUOTED = new RegExp(`${UNPRINTABLE.source}|["\\\\]`, 'g');
const UNQUOTED = new RegExp(UNPRINTABLE.source, 'g');

const ESCAPES: Readonly<Record<string, string>> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** The first `max` characters of s (a surrogate pair kept whole) with `re`'s matches escaped. */
function escaped(s: string, max: number, re: RegExp): { text: string; cut: boolean } {
  let head = s;
  if (s.length > max) {
    let n = max;
    const c = s.charCodeAt(n - 1);
    if (c >= 0xd800 && c <= 0xdbff) n--;
    head = s.slice(0, n);
  }
  const text = head.replace(re, (ch) => {
    const e = ESCAPES[ch];
    if (e !== undefined) return e;
    const u = ch.charCodeAt(0);
    return u < 0x100 ? `\\x${u.toString(16).padStart(2, '0')}` : `\\u${u.toString(16).padStart(4, '0')}`;
  });
  return { text, cut: head.length < s.length };
}

/**
 * Text read from a file (a key, a tensor name, a piece), fit for a one-line error message: in
 * double quotes, every non-printable character escaped (`\n`, `\x00`, `\u2028`, `\ufeff`), and
 * cut after `max` characters with the full length noted:
 *
 *   quote('blk.0\u0000x')        →  "blk.0\x00x"
 *   quote('a'.repeat(59000))    →  "aa…a"… (59000 characters)      (its first 80 shown)
 *
 * Every reader quotes file content through this, so a corrupt file cannot flood the terminal.
 */
export function quote(s: string, max = QUOTE_MAX_CHARS): string {
  const e = escaped(s, max, QUOTED);
  return e.cut ? `"${e.text}"… (${[...s].length} characters)` : `"${e.text}"`;
}

/**
 * Text shown without quotes, escaped as `quote` escapes it and cut after `max` characters: the
 * message of an error raised elsewhere (JSON.parse quotes the bad input), or a name read from a
 * file that reads best bare (a pickle global, a JSON value).
 */
export function plain(text: unknown, max = 160): string {
  const s = text instanceof Error ? text.message : String(text);
  const e = escaped(s, max, UNQUOTED);
  return e.cut ? `${e.text}…` : e.text;
}

/** A byte count for messages: "512.0 MiB", "1.21 TiB". */
export function formatBytes(b: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = b / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return b < 1024 ? `${b} bytes` : `${v.toFixed(u >= 2 ? 2 : 1)} ${units[u]}`;
}

/** Short description of a value for error messages (strings through `quote`). */
export function describe(v: unknown): string {
  if (typeof v === 'string') return quote(v, 60);
  if (Array.isArray(v)) return `[${v.slice(0, 6).map(describe).join(', ')}${v.length > 6 ? ', ...' : ''}]`;
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}
