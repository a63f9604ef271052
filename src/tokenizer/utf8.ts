/**
 * UTF-8 helpers for the tokenizer: code point → bytes (byte fallback on encode) and the byte-run
 * decoder that turns `<0xNN>` pieces back into text exactly as sentencepiece does (a well-formed
 * sequence per Unicode Table 3-7 becomes its character; any other byte becomes one U+FFFD and the
 * scan resumes at the next byte).
 *
 * This is not a general text codec: Node's TextDecoder would merge some invalid sequences into a
 * single U+FFFD (maximal subparts), which is not what sentencepiece renders.
 */

export const REPLACEMENT_CHAR = '\uFFFD';

/** Appends the UTF-8 bytes of code point `cp` to `out`. */
export function pushUtf8(cp: number, out: number[]): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
}

/** Result of looking at the bytes from one offset: a whole character, a byte that can never start
 * one, or the start of a character whose remaining bytes have not arrived yet. */
export type Utf8Step = { kind: 'char'; length: number; cp: number } | { kind: 'invalid' } | { kind: 'incomplete' };

/** Allowed range of the second byte for each lead byte (Unicode Table 3-7); later bytes are 80..BF. */
function secondByteRange(lead: number): [number, number] {
  if (lead === 0xe0) return [0xa0, 0xbf];
  if (lead === 0xed) return [0x80, 0x9f];
  if (lead === 0xf0) return [0x90, 0xbf];
  if (lead === 0xf4) return [0x80, 0x8f];
  return [0x80, 0xbf];
}

function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0; // 80..C1 and F5..FF never start a character
}

/** Classifies the bytes `bytes[off..end)` as sentencepiece's decoder would at offset `off`. */
export function utf8Step(bytes: ArrayLike<number>, off: number, end: number): Utf8Step {
  const lead = bytes[off]!;
  const n = sequenceLength(lead);
  if (n === 0) return { kind: 'invalid' };
  if (n === 1) return { kind: 'char', length: 1, cp: lead };
  let cp = lead & (n === 2 ? 0x1f : n === 3 ? 0x0f : 0x07);
  for (let k = 1; k < n; k++) {
    if (off + k >= end) return { kind: 'incomplete' };
    const b = bytes[off + k]!;
    const [lo, hi] = k === 1 ? secondByteRange(lead) : [0x80, 0xbf];
    if (b < lo || b > hi) return { kind: 'invalid' };
    cp = (cp << 6) | (b & 0x3f);
  }
  return { kind: 'char', length: n, cp };
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
