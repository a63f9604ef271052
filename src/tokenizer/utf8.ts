/**
 * UTF-8 helpers for the tokenizer: code point → bytes (byte fallback on encode) and the byte-run
 * decoder that turns `<0xNN>` pieces back into text exactly as sentencepiece does (a well-formed
 * sequence per Unicode Table 3-7 becomes its character; any other byte becomes one U+FFFD and the
 * scan resumes at the next byte).
 *
 * This is not a general text codec: Node's TextDecoder would merge some invalid sequences into a
 * single U+FFFD (maximal subparts), which is not what sentencepiece renders. Input text is decoded
 * strictly by src/util/utf8.ts, which also holds the well-formedness rule (utf8Step) used here.
 */
import { utf8Step } from '../util/utf8.js';

export const REPLACEMENT_CHAR = '\uFFFD';

/** Appends the UTF-8 bytes of code point `cp` to `out`. */
export function pushUtf8(cp: number, out: number[]): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
}

const CHUNK = 4096; // code points per String.fromCodePoint call (argument-count limit)

/**
 * Decodes bytes[start..end) as one run of byte pieces. With `final` false, a trailing sequence
 * that may still be completed is left alone; the return value says where decoding stopped.
 */
export function decodeByteRun(
  bytes: ArrayLike<number>,
  start: number,
  end: number,
  final: boolean,
  out: string[],
): number {
  const cps: number[] = [];
  let off = start;
  while (off < end) {
    const step = utf8Step(bytes, off, end);
    if (step.kind === 'char') {
      cps.push(step.cp);
      off += step.length;
    } else if (step.kind === 'incomplete' && !final) {
      break;
    } else {
      cps.push(0xfffd);
      off += 1;
    }
  }
  for (let i = 0; i < cps.length; i += CHUNK) out.push(String.fromCodePoint(...cps.slice(i, i + CHUNK)));
  return off;
}
