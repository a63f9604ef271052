/**
 * Strict UTF-8: the well-formedness rule (Unicode Table 3-7) and the decoder every text input
 * goes through — prompt files, stdin, perplexity texts, corpora. Bytes that are not UTF-8 are a
 * Llama2Error naming the input, the byte offset and the line of the first bad byte; they are never
 * silently replaced by U+FFFD. A leading byte-order mark is text and is kept (U+FEFF is a Llama-2
 * piece), unless the caller asks to drop it.
 *
 *   const d = new StrictUtf8Decoder('--file wiki.txt');
 *   const text = d.push(chunk1) + d.push(chunk2) + d.end();      // or decodeUtf8(bytes, what)
 *
 * Not here: the tokenizer's rendering of byte pieces, which replaces bad bytes the way
 * sentencepiece does (src/tokenizer/utf8.ts).
 */
import { Llama2Error } from './errors.js';

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

/** Classifies the bytes `bytes[off..end)` at offset `off` (Unicode Table 3-7). */
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

/** Offset of the first byte of `bytes` that is not part of a well-formed character, or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let off = 0; off < bytes.length;) {
    if (bytes[off]! < 0x80) { off++; continue; }
    const s = utf8Step(bytes, off, bytes.length);
    if (s.kind !== 'char') return off;
    off += s.length;
  }
  return -1;
}

/** Where `bytes` stops being whole characters: the start of a character cut off by the end, else its length. */
function wholeCharsEnd(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i >= Math.max(0, bytes.length - 3); i--) {
    const b = bytes[i]!;
    if (b >= 0x80 && b <= 0xbf) continue; // a continuation byte: look further back
    return utf8Step(bytes, i, bytes.length).kind === 'incomplete' ? i : bytes.length;
  }
  return bytes.length;
}

function countNewlines(bytes: Uint8Array, end: number): number {
  let n = 0;
  for (let i = bytes.indexOf(0x0a); i >= 0 && i < end; i = bytes.indexOf(0x0a, i + 1)) n++;
  return n;
}

/**
 * Decodes a byte stream chunk by chunk. Each `push` returns the text of the whole characters so
 * far (a character split across chunks comes out with the chunk that completes it); `end` checks
 * that the input did not stop inside a character.
 */
export class StrictUtf8Decoder {
  private readonly td = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  private tail: Uint8Array = new Uint8Array(0); // the start of a character cut by the last chunk
  private offset = 0; // input offset of tail[0]
  private lines = 0; // "\n" bytes before `offset`

  /** `what` names the input in errors ("--file wiki.txt"); `dropBom` drops a leading U+FEFF. */
  constructor(private readonly what: string, private readonly opts: { dropBom?: boolean } = {}) {}

  push(chunk: Uint8Array): string {
    return this.decode(chunk, false);
  }

  end(): string {
    return this.decode(new Uint8Array(0), true);
  }

  private decode(chunk: Uint8Array, final: boolean): string {
    let bytes = chunk;
    if (this.tail.length > 0) {
      bytes = new Uint8Array(this.tail.length + chunk.length);
      bytes.set(this.tail);
      bytes.set(chunk, this.tail.length);
    }
    const end = final ? bytes.length : wholeCharsEnd(bytes);
    const body = bytes.subarray(0, end);
    let text: string;
    try {
      text = this.td.decode(body);
    } catch {
      this.fail(body);
    }
    if (this.offset === 0 && this.opts.dropBom && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    this.lines += countNewlines(body, body.length);
    this.offset += end;
    this.tail = bytes.slice(end);
    return text;
  }

  private fail(body: Uint8Array): never {
    const at = Math.max(0, firstInvalidUtf8(body));
    const line = this.lines + countNewlines(body, at) + 1;
    const bad = Buffer.from(body.subarray(at, at + 4)).toString('hex').replace(/(..)(?!$)/g, '$1 ');
    const found = utf8Step(body, at, body.length).kind === 'incomplete'
      ? `a character cut off by the end of the input (bytes ${bad})`
      : `invalid bytes (${bad})`;
    throw new Llama2Error(`${this.what}: expected UTF-8 text but found ${found} at byte ${this.offset + at} (line ${line})`);
  }
}

/** The text of `bytes`, or a Llama2Error naming `what`, the byte offset and line of the first bad byte. */
export function decodeUtf8(bytes: Uint8Array, what: string, opts: { dropBom?: boolean } = {}): string {
  const d = new StrictUtf8Decoder(what, opts);
  return d.push(bytes) + d.end();
}
